//! What the team is told: each message on the `pipeline-events` topic becomes a [`Notice`], and a
//! window's notices become [`Message`]s: failures (and anything else that needs a person) one by
//! one, routine outcomes one message per file, or one digest once there are [`Digest::after`]
//! files. Each message has
//! a Slack Block Kit form and a plain-text form (e-mail through SNS, the console locally).
//!
//! Duplicates are dropped by event id ([`crate::events::PipelineEvent::id`]) through a
//! [`SentLog`]: a marker object per id that was posted, written after the post succeeds. A crash
//! between the two can repeat one message; nothing is ever lost.

mod render;

pub use render::{render_alarm, render_digest, render_notice, render_unreadable};

use crate::events::{self, EventError, EventKind, PipelineEvent};
use crate::manifest::Status;
use crate::store::ObjectStore;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};

/// A CloudWatch alarm notification (the dead-letter queues' alarms publish to the topic).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Alarm {
    /// The alarm's name.
    pub alarm_name: String,
    /// What it watches, as the template describes it.
    #[serde(default)]
    pub alarm_description: Option<String>,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub new_state_value: String,
    /// CloudWatch's explanation.
    #[serde(default)]
    pub new_state_reason: String,
    /// When the state changed.
    #[serde(default)]
    pub state_change_time: String,
}

/// An S3 event notification (the Kafka failures bucket announces each object on the topic).
#[derive(Debug, Deserialize)]
struct S3Notification {
    #[serde(rename = "Records", default)]
    records: Vec<S3Record>,
    #[serde(rename = "Event")]
    event: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Record {
    #[serde(default)]
    event_time: String,
    s3: S3Entity,
}

#[derive(Debug, Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Debug, Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct S3Object {
    key: String,
    #[serde(default)]
    size: u64,
}

/// One message from the topic, as the notifier understands it.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A pipeline event.
    Event(Box<PipelineEvent>),
    /// A CloudWatch alarm changing state.
    Alarm(Alarm),
    /// A batch the MSK event source mapping gave up on after its retries: it committed past
    /// the batch and kept the records in the Kafka failures bucket, announced by S3.
    KafkaGivenUp {
        /// The failures bucket.
        bucket: String,
        /// The object holding the batch's records.
        key: String,
        /// Its size in bytes.
        size: u64,
        /// When S3 wrote it.
        time: String,
    },
    /// A message this build cannot read (a newer event version, or not an event at all): reported,
    /// never retried.
    Unreadable {
        /// The delivery's id (SNS MessageId), for finding it.
        message_id: String,
        /// Why it cannot be read.
        reason: String,
    },
}

impl Notice {
    /// Reads one message body, which may carry several notices (an S3 notification lists
    /// records) or none (the `s3:TestEvent` S3 sends when notifications are configured).
    pub fn read_all(body: &str, message_id: &str) -> Vec<Notice> {
        match serde_json::from_str::<S3Notification>(body) {
            Ok(n) if n.event.as_deref() == Some("s3:TestEvent") => Vec::new(),
            Ok(n) if !n.records.is_empty() => n
                .records
                .into_iter()
                .map(|r| Notice::KafkaGivenUp {
                    bucket: r.s3.bucket.name,
                    key: crate::processor::decode_event_key(&r.s3.object.key)
                        .unwrap_or(r.s3.object.key),
                    size: r.s3.object.size,
                    time: r.event_time,
                })
                .collect(),
            _ => vec![Notice::read(body, message_id)],
        }
    }

    /// Reads one message body; `message_id` identifies the delivery in reports.
    pub fn read(body: &str, message_id: &str) -> Notice {
        if let Ok(alarm) = serde_json::from_str::<Alarm>(body) {
            return Notice::Alarm(alarm);
        }
        match events::parse(body) {
            Ok(e) => Notice::Event(Box::new(e)),
            Err(e @ EventError::UnknownVersion { .. }) | Err(e @ EventError::Invalid(_)) => {
                Notice::Unreadable {
                    message_id: message_id.to_string(),
                    reason: e.to_string(),
                }
            }
        }
    }

    /// The id duplicates share.
    pub fn id(&self) -> String {
        match self {
            Notice::Event(e) => e.id(),
            Notice::Alarm(a) => short_hash(&[
                "alarm",
                &a.alarm_name,
                &a.new_state_value,
                &a.state_change_time,
            ]),
            Notice::KafkaGivenUp {
                bucket, key, time, ..
            } => short_hash(&["kafka-given-up", bucket, key, time]),
            Notice::Unreadable { message_id, .. } => short_hash(&["unreadable", message_id]),
        }
    }

    /// Whether it needs a person: it then goes out alone, never inside a digest.
    pub fn needs_attention(&self) -> bool {
        match self {
            Notice::Event(e) => match e.kind() {
                EventKind::Failed | EventKind::LoadFailed | EventKind::Other => true,
                EventKind::Processed => e.status == Some(Status::RejectedOverThreshold),
                EventKind::Landed => e.rows_rejected > 0,
                EventKind::Loaded => e.load().is_some_and(|l| l.outcome == "not_loaded"),
                // The launcher takes a hand-off; a person is needed when its run fails or sticks.
                EventKind::Handoff | EventKind::Launched => false,
                EventKind::LaunchFailed | EventKind::LaunchStuck => true,
            },
            Notice::Alarm(a) => a.new_state_value == "ALARM",
            Notice::KafkaGivenUp { .. } | Notice::Unreadable { .. } => true,
        }
    }
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(&h.finalize()[..12])
}

/// One message to send: Slack's Block Kit payload and the plain-text form of the same thing.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// A one-line summary (Slack's notification text, the e-mail subject).
    pub title: String,
    /// The plain-text form (e-mail, console).
    pub text: String,
    /// The webhook's JSON body: `text` (the fallback) and `blocks`.
    pub slack: Value,
    /// The ids of the notices it reports (marked sent once it is posted).
    pub ids: Vec<String>,
    /// Whether it reports something that needs a person.
    pub attention: bool,
}

/// When routine outcomes are sent as one digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    /// A window with routine notices for at least this many files sends them as one digest;
    /// fewer go one message per file. `usize::MAX` never digests.
    pub after: usize,
}

impl Default for Digest {
    fn default() -> Self {
        Digest { after: 3 }
    }
}

/// The messages for one window of notices, in order: each notice that needs attention alone (in
/// arrival order), then the routine ones. Routine notices are grouped by file (a file's `landed`,
/// `processed` and `loaded` events together): with [`Digest::after`] files or more, one digest;
/// with fewer, one message per file.
pub fn plan(notices: &[Notice], digest: Digest) -> Vec<Message> {
    let (attention, routine): (Vec<&Notice>, Vec<&Notice>) =
        notices.iter().partition(|n| n.needs_attention());
    let mut out: Vec<Message> = attention.into_iter().map(render_notice).collect();
    let mut files: Vec<(Option<&str>, Vec<&Notice>)> = Vec::new();
    for n in routine {
        let key = match n {
            Notice::Event(e) => Some(e.source.key.as_str()),
            _ => None,
        };
        match files.iter_mut().find(|(k, _)| key.is_some() && *k == key) {
            Some((_, group)) => group.push(n),
            None => files.push((key, vec![n])),
        }
    }
    if files.len() >= digest.after.max(1) && files.len() > 1 {
        let all: Vec<&Notice> = files.into_iter().flat_map(|(_, g)| g).collect();
        out.push(render_digest(&all));
    } else {
        for (_, group) in files {
            out.push(match group.as_slice() {
                [one] => render_notice(one),
                several => render_digest(several),
            });
        }
    }
    out
}

/// The ids already notified: marker objects `notifications/sent/<id>` in a store (the processed
/// bucket, or the local lake), with a memory in front for this process.
pub struct SentLog {
    store: Arc<dyn ObjectStore>,
    memory: Mutex<HashSet<String>>,
}

/// Where the sent markers go.
pub const SENT_PREFIX: &str = "notifications/sent/";

impl SentLog {
    /// A log kept in `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        SentLog {
            store,
            memory: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `id` was notified before.
    pub fn contains(&self, id: &str) -> io::Result<bool> {
        if self.memory.lock().is_ok_and(|m| m.contains(id)) {
            return Ok(true);
        }
        let found = self.store.exists(&format!("{SENT_PREFIX}{id}"))?;
        if found && let Ok(mut m) = self.memory.lock() {
            m.insert(id.to_string());
        }
        Ok(found)
    }

    /// Records `id` as notified.
    pub fn insert(&self, id: &str) -> io::Result<()> {
        let mut w = self.store.create(&format!("{SENT_PREFIX}{id}"))?;
        io::Write::write_all(&mut w, b"sent\n")?;
        w.commit()?;
        if let Ok(mut m) = self.memory.lock() {
            m.insert(id.to_string());
        }
        Ok(())
    }

    /// The notices not notified before, each once (a batch may hold the same one twice).
    pub fn fresh(&self, notices: Vec<Notice>) -> io::Result<Vec<Notice>> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(notices.len());
        for n in notices {
            let id = n.id();
            if !seen.insert(id.clone()) || self.contains(&id)? {
                tracing::info!(event_id = %id, "duplicate delivery dropped");
                continue;
            }
            out.push(n);
        }
        Ok(out)
    }
}

/// Where the plain-text form goes: e-mail through SNS, or the console.
pub trait TextOutlet: Send + Sync {
    /// Sends one message's text (its title as the subject).
    fn send(&self, message: &Message) -> io::Result<()>;

    /// Whether anyone receives what is sent (an SNS topic with no confirmed subscription tells
    /// nobody): a notifier with no Slack and no listener must not mark anything sent.
    fn has_listeners(&self) -> io::Result<bool> {
        Ok(true)
    }
}

/// Prints each message's text: the local stand-in for e-mail.
#[derive(Debug, Default)]
pub struct Console;

impl TextOutlet for Console {
    fn send(&self, message: &Message) -> io::Result<()> {
        let mut out = io::stdout().lock();
        for (i, line) in message.text.lines().enumerate() {
            let lead = if i == 0 { "notify: " } else { "        " };
            io::Write::write_all(&mut out, format!("{lead}{line}\n").as_bytes())?;
        }
        Ok(())
    }
}

/// Posts one message's Slack form (blocking the calling thread).
pub trait SlackOutlet: Send + Sync {
    /// Posts the payload; `Err` carries whether a later try may work.
    fn post(&self, payload: &Value) -> Result<(), (String, bool)>;
}

/// What one delivery did.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Messages sent everywhere they had to go (their notices are marked sent).
    pub sent: Vec<Message>,
    /// Messages not sent, with why and whether a retry may work; their notices are not marked,
    /// so redelivering them sends them.
    pub failed: Vec<(Message, String, bool)>,
    /// Notices dropped as already sent.
    pub duplicates: usize,
}

/// Tells the team about a window of notices: drops those sent before, plans the messages
/// ([`plan`]), sends each to Slack (when configured) and to `text`, and marks its notices sent.
/// Storage errors of the sent log are returned (the window is then retried whole).
pub fn deliver(
    notices: Vec<Notice>,
    log: &SentLog,
    digest: Digest,
    slack: Option<&dyn SlackOutlet>,
    text: &dyn TextOutlet,
) -> io::Result<Delivery> {
    let total = notices.len();
    let fresh = log.fresh(notices)?;
    let mut delivery = Delivery {
        duplicates: total - fresh.len(),
        ..Delivery::default()
    };
    for message in plan(&fresh, digest) {
        let posted = match slack {
            Some(s) => s.post(&message.slack),
            None => Ok(()),
        };
        let result = posted.and_then(|()| {
            text.send(&message)
                .map_err(|e| (format!("plain-text outlet: {e}"), true))
        });
        match result {
            Ok(()) => {
                for id in &message.ids {
                    log.insert(id)?;
                }
                delivery.sent.push(message);
            }
            Err((why, retryable)) => {
                tracing::error!(title = %message.title, error = %why, retryable, "notification not sent");
                delivery.failed.push((message, why, retryable));
            }
        }
    }
    Ok(delivery)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventKind, Outcome, PipelineEvent};
    use crate::manifest::SourceRef;
    use crate::store::LocalStore;

    fn event(outcome: Outcome, key: &str) -> PipelineEvent {
        let mut e = PipelineEvent::new(
            outcome,
            "csv-processor",
            SourceRef {
                bucket: "raw".into(),
                key: key.into(),
                etag: "e1".into(),
                bytes: 10,
                ..Default::default()
            },
        );
        e.dataset = Some("investor_holdings".into());
        e
    }

    #[test]
    fn failures_go_alone_and_routine_outcomes_become_one_digest() {
        let mut notices: Vec<Notice> = (0..4)
            .map(|i| {
                let mut e = event(Outcome::Processed, &format!("holdings/v/{i}.csv"));
                e.status = Some(Status::Ok);
                Notice::Event(Box::new(e))
            })
            .collect();
        notices.insert(
            2,
            Notice::Event(Box::new(event(Outcome::Failed, "holdings/v/bad.csv"))),
        );
        let messages = plan(&notices, Digest { after: 3 });
        assert_eq!(messages.len(), 2);
        assert!(messages[0].attention && messages[0].title.contains("failed"));
        assert_eq!(messages[1].ids.len(), 4);
        assert!(
            messages[1].title.starts_with("4 files"),
            "{}",
            messages[1].title
        );
        let few = plan(&notices[..2], Digest { after: 3 });
        assert_eq!(few.len(), 2, "two routine files go one by one");
        // One file's processing and loading: one message.
        let load = crate::events::LoadInfo {
            table: "bondlake.investor_holdings".into(),
            outcome: "loaded".into(),
            rows: 0,
            superseded: 0,
            control_totals: Default::default(),
        };
        let loaded = event(Outcome::Loaded { load }, "holdings/v/0.csv");
        let one_file = [notices[0].clone(), Notice::Event(Box::new(loaded))];
        let messages = plan(&one_file, Digest { after: 3 });
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].title,
            "investor_holdings: 0.csv: 0 ok, 0 rejected, loaded 0"
        );
        assert_eq!(messages[0].ids.len(), 2);
    }

    #[test]
    fn an_unknown_version_is_reported_and_unknown_fields_are_ignored() {
        let mut v = serde_json::to_value(event(Outcome::Processed, "k")).expect("json");
        v["brand_new_field"] = serde_json::json!({"x": 1});
        let n = Notice::read(&v.to_string(), "m-1");
        assert!(matches!(n, Notice::Event(_)), "{n:?}");
        v["event_version"] = 2.into();
        match Notice::read(&v.to_string(), "m-2") {
            Notice::Unreadable { message_id, reason } => {
                assert_eq!(message_id, "m-2");
                assert!(reason.contains("version 2 is newer"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        v["event_version"] = 1.into();
        v["kind"] = "reticulated".into();
        match Notice::read(&v.to_string(), "m-3") {
            Notice::Event(e) => assert_eq!(e.kind(), EventKind::Other),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_sent_log_drops_what_was_posted_before() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = SentLog::new(Arc::new(LocalStore::new(dir.path())));
        let a = Notice::Event(Box::new(event(Outcome::Failed, "a")));
        let fresh = log.fresh(vec![a.clone(), a.clone()]).expect("fresh");
        assert_eq!(fresh.len(), 1, "the same event twice in one batch");
        log.insert(&a.id()).expect("marked");
        let reopened = SentLog::new(Arc::new(LocalStore::new(dir.path())));
        assert!(reopened.fresh(vec![a]).expect("fresh").is_empty());
    }
}
