//! Notices into words: Slack Block Kit and plain text from the same lines.

use super::{Alarm, Message, Notice};
use crate::events::{EventKind, PipelineEvent};
use crate::manifest::Status;
use serde_json::{Value, json};

/// Slack refuses a header over 150 characters and a text block over 3000.
const HEADER_MAX: usize = 150;
const TEXT_MAX: usize = 2900;
/// Lines a digest lists before "and N more".
const DIGEST_LINES: usize = 20;

/// The message for one notice.
pub fn render_notice(n: &Notice) -> Message {
    match n {
        Notice::Event(e) => render_event(e, n.id()),
        Notice::Alarm(a) => render_alarm(a, n.id()),
        Notice::KafkaGivenUp {
            bucket,
            key,
            size,
            time,
        } => render_kafka_given_up(bucket, key, *size, time, n.id()),
        Notice::Unreadable { message_id, reason } => render_unreadable(message_id, reason, n.id()),
    }
}

/// The message for a Kafka batch the event source mapping gave up on: its records are kept in
/// the failures bucket, not in the raw bucket, until someone replays them.
pub fn render_kafka_given_up(
    bucket: &str,
    key: &str,
    size: u64,
    time: &str,
    id: String,
) -> Message {
    let title = "a Kafka batch was given up on: its records are not landed".to_string();
    let location = format!("s3://{bucket}/{key}");
    // The template names the stack's buckets alike: bondlake-<stage>-<role>-<account>.
    let sibling = |role: &str| match bucket.split_once("-kafka-failures-") {
        Some((stage, account)) => format!("s3://{stage}-{role}-{account}"),
        None => format!("s3://<the {role} bucket>"),
    };
    let about = format!(
        "msk-lander failed this batch on every retry, so the event source mapping committed past it and kept its records in `{location}` ({size} bytes, written {time}). Its offsets are missing from the raw bucket."
    );
    let next = format!(
        "Find the cause in msk-lander's log around {time} and fix it, then land the records, each offset once: `bondlake kafka-replay {location} --raw {} --processed {}`",
        sibling("raw"),
        sibling("processed")
    );
    Message {
        slack: json!({"text": title, "blocks": [
            header(&format!(":rotating_light: {title}")),
            section(&about),
            section(&format!("*What to do:* {next}")),
            context("kafka on-failure destination"),
        ]}),
        text: format!("{title}\n{about}\nWhat to do: {next}"),
        title,
        ids: vec![id],
        attention: true,
    }
}

/// What one event reports, as labelled facts and what to do next.
struct Facts {
    icon: &'static str,
    title: String,
    fields: Vec<(&'static str, String)>,
    notes: Vec<String>,
    next: Option<String>,
}

fn facts(e: &PipelineEvent) -> Facts {
    let dataset = e.dataset.as_deref().unwrap_or("(no route)");
    let file = e.source.key.as_str();
    let mut fields = vec![
        (
            "Dataset",
            match &e.profile {
                Some(p) => format!("{dataset} ({p})"),
                None => dataset.to_string(),
            },
        ),
        ("File", file.to_string()),
    ];
    let rows = if e.kind() == EventKind::Landed {
        format!(
            "{} landed, {} quarantined of {} records",
            count(e.rows_ok),
            count(e.rows_rejected),
            count(e.rows_read)
        )
    } else {
        format!(
            "{} ok, {} rejected of {} read",
            count(e.rows_ok),
            count(e.rows_rejected),
            count(e.rows_read)
        )
    };
    fields.push(("Rows", rows));
    fields.push(("Duration", duration(e.duration_ms)));
    let mut notes = Vec::new();
    if !e.top_reasons.is_empty() {
        let reasons: Vec<String> = e
            .top_reasons
            .iter()
            .map(|r| format!("{} {}", r.reason, count(r.count)))
            .collect();
        notes.push(format!("Top reasons: {}", reasons.join(", ")));
    }
    if let Some(k) = e.kafka() {
        notes.push(format!(
            "Kafka: {} partition {}, offsets {} to {}",
            k.topic, k.partition, k.first_offset, k.last_offset
        ));
    }
    if let Some(q) = &e.quarantine {
        notes.push(format!("Quarantine: {q}"));
    }
    if let Some(l) = e.load() {
        let totals: Vec<String> = l
            .control_totals
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        notes.push(format!(
            "Warehouse: {} {} rows into {}{}{}",
            l.outcome.replace('_', " "),
            count(l.rows),
            l.table,
            if l.superseded > 0 {
                format!(
                    " ({} superseded by newer input, kept as it was)",
                    count(l.superseded)
                )
            } else {
                String::new()
            },
            if totals.is_empty() {
                String::new()
            } else {
                format!("; reconciled {}", totals.join(", "))
            }
        ));
    }
    if let Some(h) = e.handoff() {
        notes.push(format!("Handed off ({}): {}", h.reason, h.detail));
    }
    if let Some(t) = &e.trends {
        notes.push(format!(
            "Weekly trends: {}, {} rows written",
            trends_done(t),
            count(t.rows)
        ));
    }
    if let Some(l) = e.launch() {
        let on = if l.id.is_empty() {
            l.name.clone()
        } else {
            format!("{} ({})", l.name, l.id)
        };
        notes.push(format!(
            "EMR ({}): attempt {} {on}, {}",
            l.backend.replace('_', " "),
            l.attempt,
            l.state
        ));
        if let Some(logs) = &l.logs {
            notes.push(format!("Logs: {logs}"));
        }
    }
    if let Some(m) = &e.manifest {
        notes.push(format!("Manifest: {m}"));
    }
    if let Some(err) = &e.error {
        notes.push(format!("Error: {err}"));
    }
    let (icon, verb, next) = match (e.kind(), e.status) {
        (EventKind::Failed, _) if e.dataset.is_none() => (
            ":x:",
            "not processed".to_string(),
            Some("No route matches this key: add one to contracts/routes.toml (or the ROUTES variable), then copy the file in again.".to_string()),
        ),
        (EventKind::Failed, _) => (
            ":x:",
            "failed".to_string(),
            Some("Nothing was loaded. Read the error, get a corrected file from the vendor, and upload it under the same key: the new version is processed on its own.".to_string()),
        ),
        (EventKind::Processed, Some(Status::RejectedOverThreshold)) => (
            ":warning:",
            "rejected over threshold".to_string(),
            Some("Too many records were rejected, so the file is not loaded; its outputs are kept for inspection. Look at the quarantine file and ask the vendor for a corrected file.".to_string()),
        ),
        (EventKind::Processed, _) => (":white_check_mark:", "processed".to_string(), None),
        (EventKind::Handoff, _) => (
            ":hourglass_flowing_sand:",
            "handed off to EMR".to_string(),
            None,
        ),
        (EventKind::Launched, _) => (
            ":rocket:",
            if e.launch().is_some_and(|l| l.state == "RUNNING") {
                "started on EMR".to_string()
            } else {
                "submitted to EMR".to_string()
            },
            None,
        ),
        (EventKind::LaunchFailed, _) => (
            ":x:",
            "failed on EMR".to_string(),
            Some(launch_next(e)),
        ),
        (EventKind::LaunchStuck, _) => (
            ":hourglass:",
            "stuck on EMR".to_string(),
            Some(format!("No manifest yet. Look at the cluster in the EMR console; if it is gone, {}", send_again(e))),
        ),
        (EventKind::Loaded, _) => match e.load().map(|l| l.outcome.as_str()) {
            Some("not_loaded") => (
                ":warning:",
                "not loaded".to_string(),
                Some("Its manifest's status forbids loading; it is recorded in the ledger. Fix the file upstream.".to_string()),
            ),
            Some("already_loaded") => (":repeat:", "already loaded".to_string(), None),
            _ => (":bank:", "loaded".to_string(), None),
        },
        (EventKind::LoadFailed, _) => (
            ":x:",
            "load failed".to_string(),
            Some("Nothing was merged. Read the error; once fixed, redrive the manifest from the loader's dead-letter queue (locally: bondlake load --manifest ...).".to_string()),
        ),
        (EventKind::Landed, _) if e.rows_rejected > 0 => (
            ":warning:",
            "landed with poison records".to_string(),
            Some("The partition moved on; the undecodable records are in the quarantine file with their offsets and reasons. Fix the producer and publish them again.".to_string()),
        ),
        (EventKind::Landed, _) => (":inbox_tray:", "landed from Kafka".to_string(), None),
        (EventKind::Other, _) => (
            ":grey_question:",
            format!("reported an event kind this notifier does not know ({})", e.stage),
            Some("Upgrade the notifier to read it in full.".to_string()),
        ),
    };
    Facts {
        icon,
        title: format!("{dataset}: {} {verb}", file_label(e)),
        fields,
        notes,
        next,
    }
}

/// What to do with a handed-off file while no EMR launcher is deployed: run the same engine where
/// there is time for it, which writes the manifest the loader then loads.
/// What to do when an EMR run failed: read its log, fix, send the hand-off again.
fn launch_next(e: &PipelineEvent) -> String {
    let logs = e
        .launch()
        .and_then(|l| l.logs.as_deref())
        .map_or(String::new(), |l| format!(" at {l}"));
    if e.launch().is_some_and(|l| l.work == "weekly") {
        return format!(
            "The trends were not rebuilt and nothing was exported; the last run's stay as they were. Read the step's log{logs} (the Spark driver's stderr says which input or week failed), fix the cause (an input, the contract, the Glue Data Catalog's permissions, or the cluster's capacity), then {} Running it twice does no harm: the same inputs give the same trends.",
            send_again(e)
        );
    }
    format!(
        "Nothing was loaded. Read the step's log{logs} (stderr names the file, record and column), fix the cause (the file, the contract, or the cluster's capacity), then {}",
        send_again(e)
    )
}

/// How to send a hand-off to the launcher again (a new attempt, since the last one ended).
fn send_again(e: &PipelineEvent) -> String {
    let (id, request) = e.launch().map_or(("HANDOFF_EVENT_ID", "REQUEST"), |l| {
        (l.handoff_event_id.as_str(), l.request.as_str())
    });
    format!(
        "send it again: `aws lambda invoke --function-name <stack>-emr-launcher --cli-binary-format raw-in-base64-out --payload '{{\"retry\":{{\"handoff_event_id\":\"{id}\",\"request\":\"{request}\"}}}}' out.json` (locally it runs again with the next `bondlake run`)."
    )
}

fn render_event(e: &PipelineEvent, id: String) -> Message {
    let f = facts(e);
    let attention = f.next.is_some();
    let mut text = vec![f.title.clone()];
    text.extend(f.fields.iter().map(|(k, v)| format!("{k}: {v}")));
    text.extend(f.notes.iter().cloned());
    if let Some(next) = &f.next {
        text.push(format!("What to do: {next}"));
    }
    text.push(format!("Event {id} from {} at {}", e.stage, e.at));
    let mut blocks = vec![
        header(&format!("{} {}", f.icon, f.title)),
        json!({"type": "section", "fields": f.fields.iter().map(|(k, v)| mrkdwn(&format!("*{k}*\n{}", code_if_path(k, v)))).collect::<Vec<_>>()}),
    ];
    if !f.notes.is_empty() {
        blocks.push(section(&f.notes.join("\n")));
    }
    if let Some(next) = &f.next {
        blocks.push(section(&format!("*What to do:* {next}")));
    }
    blocks.push(context(&format!("event `{id}` · {} · {}", e.stage, e.at)));
    Message {
        slack: json!({"text": format!("{} {}", f.icon, f.title), "blocks": blocks}),
        title: f.title,
        text: text.join("\n"),
        ids: vec![id],
        attention,
    }
}

/// One message for many routine notices: one line per file (its processing, loading and
/// landing together), in the order files first appear.
pub fn render_digest(notices: &[&Notice]) -> Message {
    let (mut read, mut ok, mut rejected, mut loaded_rows) = (0u64, 0u64, 0u64, 0u64);
    // File key → (icon, label, what happened to it).
    let mut files: Vec<(String, &'static str, String, Vec<String>)> = Vec::new();
    let mut others = Vec::new();
    for n in notices {
        let Notice::Event(e) = n else {
            others.push(render_notice(n).title);
            continue;
        };
        let (icon, part) = match (e.kind(), &e.trends) {
            (EventKind::Loaded, Some(_)) => {
                let (outcome, rows, table) = e.load().map_or(("loaded", 0, ""), |l| {
                    (l.outcome.as_str(), l.rows, l.table.as_str())
                });
                loaded_rows += rows;
                let part = match outcome {
                    "loaded" => format!("{} rows exported to {table}, reconciled", count(rows)),
                    other => format!("{} ({table})", other.replace('_', " ")),
                };
                (":bank:", part)
            }
            (_, Some(t)) => (":chart_with_upwards_trend:", trends_done(t)),
            (EventKind::Loaded, None) => {
                let (outcome, rows) = e
                    .load()
                    .map_or(("loaded", 0), |l| (l.outcome.as_str(), l.rows));
                loaded_rows += rows;
                (
                    ":bank:",
                    format!("{} {}", outcome.replace('_', " "), count(rows)),
                )
            }
            (EventKind::Landed, None) => (
                ":inbox_tray:",
                format!("landed {} from Kafka", count(e.rows_ok)),
            ),
            (EventKind::Handoff, None) => (
                ":hourglass_flowing_sand:",
                format!(
                    "handed off to EMR ({})",
                    e.handoff().map_or("", |h| h.reason.as_str())
                ),
            ),
            (EventKind::Launched, None) => (
                ":rocket:",
                match e.launch() {
                    Some(l) if l.state == "RUNNING" => format!("started on EMR ({})", l.id),
                    Some(l) => format!(
                        "submitted to EMR ({}, attempt {})",
                        l.backend.replace('_', " "),
                        l.attempt
                    ),
                    None => "submitted to EMR".to_string(),
                },
            ),
            _ => {
                read += e.rows_read;
                ok += e.rows_ok;
                rejected += e.rows_rejected;
                (
                    ":white_check_mark:",
                    format!(
                        "{} ok, {} rejected",
                        count(e.rows_ok),
                        count(e.rows_rejected)
                    ),
                )
            }
        };
        match files.iter_mut().find(|f| f.0 == e.source.key) {
            Some(f) => f.3.push(part),
            None => files.push((
                e.source.key.clone(),
                icon,
                match &e.trends {
                    Some(_) => file_label(e),
                    None => format!(
                        "{}: {}",
                        e.dataset.as_deref().unwrap_or("(no route)"),
                        file_label(e)
                    ),
                },
                vec![part],
            )),
        }
    }
    let title = match files.as_slice() {
        // One file's events together: the file is the title.
        [(_, _, label, parts)] if others.is_empty() => format!("{label}: {}", parts.join(", ")),
        _ => format!(
            "{} files: {} ok, {} rejected, {} rows loaded",
            files.len(),
            count(ok),
            count(rejected),
            count(loaded_rows)
        ),
    };
    let lines = |with_icons: bool| -> String {
        let mut lines: Vec<String> = files
            .iter()
            .map(|(_, icon, label, parts)| {
                let text = format!("{label}: {}", parts.join(", "));
                if with_icons {
                    format!("{icon} {text}")
                } else {
                    format!("- {text}")
                }
            })
            .chain(others.iter().cloned())
            .collect();
        if lines.len() > DIGEST_LINES {
            let more = lines.len() - DIGEST_LINES;
            lines.truncate(DIGEST_LINES);
            lines.push(format!("... and {more} more"));
        }
        lines.join("\n")
    };
    let ids: Vec<String> = notices.iter().map(|n| n.id()).collect();
    // A digest of derived runs alone (the weekly trends) read no records of its own.
    let read_line = if read > 0 {
        format!(
            "Read {} records; every outcome below went well.",
            count(read)
        )
    } else {
        "Every outcome below went well.".to_string()
    };
    let text = format!("{title}\n{read_line}\n{}", lines(false));
    Message {
        slack: json!({"text": title, "blocks": [
            header(&format!(":package: {title}")),
            section(&lines(true)),
            context(&format!("digest of {} events · {} records read", ids.len(), count(read))),
        ]}),
        title,
        text,
        ids,
        attention: false,
    }
}

/// The message for an alarm.
pub fn render_alarm(a: &Alarm, id: String) -> Message {
    let firing = a.new_state_value == "ALARM";
    let title = if firing {
        format!("stuck: {}", a.alarm_name)
    } else {
        format!("{}: {}", a.alarm_name, a.new_state_value)
    };
    let about = a.alarm_description.as_deref().unwrap_or("");
    let next = firing.then_some(alarm_next_step(&a.alarm_name));
    let mut text = vec![title.clone(), about.to_string(), a.new_state_reason.clone()];
    if let Some(n) = next {
        text.push(format!("What to do: {n}"));
    }
    let mut blocks = vec![
        header(&format!(
            "{} {title}",
            if firing {
                ":rotating_light:"
            } else {
                ":large_green_circle:"
            }
        )),
        section(&format!("{about}\n{}", a.new_state_reason)),
    ];
    if let Some(n) = next {
        blocks.push(section(&format!("*What to do:* {n}")));
    }
    blocks.push(context(&format!("alarm · {}", a.state_change_time)));
    Message {
        slack: json!({"text": title, "blocks": blocks}),
        title,
        text: text.join("\n"),
        ids: vec![id],
        attention: firing,
    }
}

/// What to do about a firing alarm, by what it watches: CloudFormation names an alarm
/// `<stack>-<logical id>-<suffix>`, and the template's logical ids end in what they watch.
fn alarm_next_step(name: &str) -> &'static str {
    if name.contains("DeadLetter") {
        "Messages are waiting in a dead-letter queue: look at them (the stack's outputs name the queues), fix the cause, then redrive them."
    } else if name.contains("OffsetLag") {
        "msk-lander is falling behind its topics: look at its log for failing batches and throttles, and raise its reserved concurrency or batch size if it is only slow. Records past Kafka's retention are lost, so act before then."
    } else if name.contains("Throttles") {
        "The account's Lambda concurrency is exhausted: work waits in its queue. Look at what else runs in the account, or ask AWS for a higher concurrency quota."
    } else if name.contains("Duration") {
        "Invocations come close to the function's timeout: large files are handed off or deferred, but raise the timeout or memory if this keeps firing."
    } else if name.contains("QueueAge") {
        "A queue's oldest message keeps waiting: its function is failing, throttled or capped. Its errors and throttles alarms, and its log group, say which."
    } else {
        "Look at the function's log group around the time above: each failure is logged with its cause. SQS messages go back to their queue, and after five tries to its dead-letter queue."
    }
}

/// The message for a message that could not be read.
pub fn render_unreadable(message_id: &str, reason: &str, id: String) -> Message {
    let title = "a message on pipeline-events could not be read".to_string();
    let next = "If the version is newer, upgrade the notifier; the message itself was not retried.";
    Message {
        slack: json!({"text": title, "blocks": [
            header(&format!(":grey_question: {title}")),
            section(&format!("Message `{message_id}`: {reason}")),
            section(&format!("*What to do:* {next}")),
        ]}),
        text: format!("{title}\nMessage {message_id}: {reason}\nWhat to do: {next}"),
        title,
        ids: vec![id],
        attention: true,
    }
}

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_MAX), "emoji": true}})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(text, TEXT_MAX)}})
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [mrkdwn(text)]})
}

fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": clip(text, 1900)})
}

fn code_if_path(label: &str, v: &str) -> String {
    if label == "File" {
        format!("`{v}`")
    } else {
        v.to_string()
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// What people call the file: the last segment of its key; for a landed Kafka object
/// (`kafka/<dataset>/<date>/<topic>/p<n>/<first>-<last>.csv.gz`), its topic, partition and offsets.
fn short_file(key: &str) -> String {
    let parts: Vec<&str> = key.split('/').collect();
    if let ["kafka", _, _, topic, partition, span] = parts.as_slice()
        && let Ok(first) = span.trim_end_matches(".csv.gz").parse::<u64>()
    {
        return format!("{topic} {partition} from offset {first}");
    }
    parts.last().copied().unwrap_or(key).to_string()
}

/// A notice's file as its title names it: a landed span by its offsets, a file by its name.
fn file_label(e: &PipelineEvent) -> String {
    if e.trends.is_some() {
        return "weekly trends".into();
    }
    match e.kafka() {
        Some(k) => format!(
            "{} p{} offsets {}-{}",
            k.topic, k.partition, k.first_offset, k.last_offset
        ),
        None => short_file(&e.source.key),
    }
}

/// What a weekly trends run rebuilt: `52 series, 2 weeks rebuilt (2026-11-20 to 2026-11-27)`.
fn trends_done(t: &crate::events::TrendsInfo) -> String {
    let span = match (t.first_week.as_str(), t.last_week.as_str()) {
        ("", _) => String::new(),
        (a, b) if a == b || b.is_empty() => format!(" ({a})"),
        (a, b) => format!(" ({a} to {b})"),
    };
    let series = if t.series > 0 {
        format!("{} series, ", count(t.series))
    } else {
        String::new()
    };
    format!("{series}{} weeks rebuilt{span}", count(t.weeks))
}

/// 1234567 as `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(1500), "1.5 s");
        assert_eq!(duration(185_000), "3 min 5 s");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(
            short_file(
                "kafka/investor_holdings/2026-11-25/investor-holdings/p2/00000000000000000007.csv.gz"
            ),
            "investor-holdings p2 from offset 7"
        );
        assert_eq!(short_file("market/NYSE/nyse.csv.gz"), "nyse.csv.gz");
    }

    #[test]
    fn a_hand_off_is_routine_and_a_failed_emr_run_is_told_alone_with_its_log_and_retry() {
        use crate::events::{HandoffInfo, LaunchInfo, Outcome};
        use crate::manifest::SourceRef;
        let source = SourceRef {
            bucket: "bondlake-dev-raw-1".into(),
            key: "holdings/custodian_a/big.csv.gz".into(),
            etag: "e".into(),
            bytes: 5 << 30,
            ..Default::default()
        };
        let request = "s3://bondlake-dev-processed-1/handoffs/investor_holdings/big-0123.json";
        let handoff = HandoffInfo {
            reason: "size".into(),
            detail: "5368709120 bytes is over the limit".into(),
            request: request.into(),
        };
        let mut e = PipelineEvent::new(
            Outcome::Handoff { handoff },
            "csv-processor",
            source.clone(),
        );
        e.dataset = Some("investor_holdings".into());
        e.profile = Some("standard".into());
        let handed_off = Notice::Event(Box::new(e.clone()));
        assert!(
            !handed_off.needs_attention(),
            "the launcher takes it: a digest line"
        );
        assert_eq!(
            render_notice(&handed_off).title,
            "investor_holdings: big.csv.gz handed off to EMR"
        );
        let launch = LaunchInfo {
            work: "handoff".into(),
            backend: "transient_cluster".into(),
            handoff_event_id: "5d0c0f1a9b7e3c21d4e8a6f0".into(),
            attempt: 1,
            name: "bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a1".into(),
            id: "j-2AXXXXXXGAPLF/s-1XXXXXXXXW4A8".into(),
            state: "FAILED".into(),
            request: request.into(),
            logs: Some("s3://logs/emr/j-2AXXXXXXGAPLF/steps/s-1XXXXXXXXW4A8/".into()),
        };
        let mut failed =
            PipelineEvent::new(Outcome::LaunchFailed { launch }, "emr-launcher", source);
        failed.dataset = Some("investor_holdings".into());
        failed.error = Some("EMR j-2AXXXXXXGAPLF/s-1XXXXXXXXW4A8 FAILED: Step failed".into());
        let notice = Notice::Event(Box::new(failed));
        assert!(notice.needs_attention(), "never inside a digest");
        let m = render_notice(&notice);
        assert_eq!(m.title, "investor_holdings: big.csv.gz failed on EMR");
        assert!(m.attention);
        for part in [
            "Logs: s3://logs/emr/j-2AXXXXXXGAPLF/steps/s-1XXXXXXXXW4A8/",
            "Read the step's log at s3://logs/emr/j-2AXXXXXXGAPLF/steps/s-1XXXXXXXXW4A8/",
            r#"--payload '{"retry":{"handoff_event_id":"5d0c0f1a9b7e3c21d4e8a6f0","request":"s3://bondlake-dev-processed-1/handoffs/investor_holdings/big-0123.json"}}'"#,
        ] {
            assert!(m.text.contains(part), "{part} in {}", m.text);
        }
        let digest = super::super::plan(
            &[notice.clone(), handed_off.clone(), handed_off],
            super::super::Digest { after: 1 },
        );
        assert_eq!(
            digest.len(),
            2,
            "the failure alone, the hand-offs in one digest"
        );
    }

    #[test]
    fn a_kafka_batch_given_up_on_is_told_alone_with_the_replay_command() {
        // An S3 event notification as S3 publishes it to SNS (version 2.1 of the format), for an
        // object the MSK event source mapping's on-failure destination wrote.
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
            "eventTime":"2026-12-01T09:15:02.123Z","eventName":"ObjectCreated:Put",
            "s3":{"s3SchemaVersion":"1.0","configurationId":"x",
              "bucket":{"name":"bondlake-dev-kafka-failures-123456789012","arn":"arn:aws:s3:::bondlake-dev-kafka-failures-123456789012"},
              "object":{"key":"aws/lambda/3f1a/investor-holdings-2/2026/12/01/2026-12-01T09.15.01-1b2c%3Dx","size":48213,"sequencer":"0A1B"}}}]}"#;
        let notices = Notice::read_all(body, "m-1");
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(notices[0].needs_attention(), "never inside a digest");
        let m = render_notice(&notices[0]);
        assert!(m.attention);
        assert!(m.title.contains("given up on"), "{}", m.title);
        assert!(
            m.text.contains("`bondlake kafka-replay s3://bondlake-dev-kafka-failures-123456789012/aws/lambda/3f1a/investor-holdings-2/2026/12/01/2026-12-01T09.15.01-1b2c=x --raw s3://bondlake-dev-raw-123456789012 --processed s3://bondlake-dev-processed-123456789012`"),
            "{}",
            m.text
        );
        assert!(m.text.contains("48213 bytes"), "{}", m.text);
        // The test event S3 sends when the notification is configured tells nobody anything.
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-01T09:00:00.000Z","Bucket":"bondlake-dev-kafka-failures-123456789012","RequestId":"r","HostId":"h"}"#;
        assert!(Notice::read_all(test_event, "m-2").is_empty());
        // Everything else reads as before.
        let alarm = r#"{"AlarmName":"bondlake-dev-MskOffsetLagAlarm-1X","NewStateValue":"ALARM"}"#;
        assert!(matches!(
            Notice::read_all(alarm, "m-3").as_slice(),
            [Notice::Alarm(_)]
        ));
    }

    #[test]
    fn each_alarm_says_what_to_do_about_what_it_watches() {
        let advice = |name: &str| {
            let a = Alarm {
                alarm_name: name.into(),
                alarm_description: None,
                new_state_value: "ALARM".into(),
                new_state_reason: "Threshold Crossed".into(),
                state_change_time: "2026-12-01T09:00:00Z".into(),
            };
            render_alarm(&a, "id".into()).text
        };
        assert!(advice("bondlake-dev-ManifestDeadLetterAlarm-1AB").contains("redrive"));
        assert!(advice("bondlake-dev-MskOffsetLagAlarm-1AB").contains("falling behind"));
        assert!(advice("bondlake-dev-NotifierThrottlesAlarm-1AB").contains("concurrency"));
        assert!(advice("bondlake-dev-CsvProcessorDurationAlarm-1AB").contains("timeout"));
        assert!(advice("bondlake-dev-RawEventsQueueAgeAlarm-1AB").contains("oldest message"));
        let errors = advice("bondlake-dev-MskLanderErrorsAlarm-1AB");
        assert!(
            errors.contains("log group") && !errors.contains("redrive them"),
            "{errors}"
        );
        let ok = Alarm {
            alarm_name: "bondlake-dev-DeadLetterAlarm-1AB".into(),
            alarm_description: None,
            new_state_value: "OK".into(),
            new_state_reason: String::new(),
            state_change_time: String::new(),
        };
        assert!(!render_alarm(&ok, "id".into()).text.contains("What to do"));
    }
}
