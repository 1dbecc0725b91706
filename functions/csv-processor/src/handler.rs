//! The invocation: parse the event (S3 notification, or an SQS batch of them), hand each object
//! to [`Processor::handle_within`] on a blocking thread, and map the results: a partial batch
//! response for SQS, so one bad object never re-runs the others; an error with its `errorType`
//! otherwise. The objects of a batch share one invocation's time: one that would fit in a fresh
//! invocation but not in what the others left is deferred, given back to the queue unprocessed
//! and made visible again at once, instead of being handed off to EMR.

use bondlake_core::events::PipelineEvent;
use bondlake_core::failure::HandleError;
use bondlake_core::processor::{Budget, Processor};
use bondlake_lambda::{Deferral, FunctionError};
use bondlake_lambda::{Incoming, deadline_instant, for_each_message};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// What the function holds between invocations.
pub struct Function {
    pub processor: Processor,
    /// Makes deferred messages visible again (None: they reappear after the visibility timeout).
    pub sqs: Option<aws_sdk_sqs::Client>,
}

/// The Lambda handler.
pub async fn handle(
    function: Arc<Function>,
    event: LambdaEvent<Incoming>,
) -> Result<Value, FunctionError> {
    let deadline = deadline_instant(event.context.deadline);
    let now = Instant::now();
    tracing::info!(
        request_id = %event.context.request_id,
        remaining_ms = deadline.map(|d| d.saturating_duration_since(now).as_millis() as u64),
        "invocation"
    );
    let incoming = event.payload;
    let budget = Budget {
        deadline,
        // What this invocation has is what a fresh one would have.
        whole: deadline.map(|d| d.saturating_duration_since(now)),
    };
    let worker = function.clone();
    let ran = tokio::task::spawn_blocking(move || run(&worker.processor, incoming, budget))
        .await
        .map_err(|e| FunctionError(HandleError::Retryable(format!("worker thread: {e}"))))??;
    if let (Some(sqs), false) = (&function.sqs, ran.deferred.is_empty()) {
        match bondlake_aws::sqs::release(sqs, &ran.deferred).await {
            Ok(n) => tracing::info!(released = n, "deferred messages visible again"),
            Err(e) => {
                tracing::warn!(error = %e, "deferred messages return after the visibility timeout")
            }
        }
    }
    Ok(ran.response)
}

/// An invocation's answer, the messages it deferred, and why each failed message failed.
#[derive(Debug)]
pub struct Ran {
    pub response: Value,
    pub deferred: Vec<Deferral>,
    pub failures: Vec<HandleError>,
}

/// Runs every object of the invocation in turn (each uses every core).
pub fn run(
    processor: &Processor,
    incoming: Incoming,
    budget: Budget,
) -> Result<Ran, FunctionError> {
    match incoming {
        Incoming::S3(objects) => {
            // A direct invocation has no queue to give an object back to.
            let budget = Budget {
                whole: None,
                ..budget
            };
            let mut events = Vec::new();
            for object in &objects {
                events.extend(
                    processor
                        .handle_within(object, budget)
                        .map_err(FunctionError)?,
                );
            }
            Ok(Ran {
                response: json!({ "events": summary(&events) }),
                deferred: Vec::new(),
                failures: Vec::new(),
            })
        }
        Incoming::Sqs(batch) => {
            let max_deferrals = processor.settings().max_deferrals;
            // Every failure back to the queue; after maxReceiveCount, the dead-letter queue. A
            // message deferred `max_deferrals` times is no longer deferred (it is handed off if
            // it must be), so deferrals never carry it to the dead-letter queue.
            let outcome = for_each_message(batch, |o, receives| {
                let budget = Budget {
                    whole: budget.whole.filter(|_| receives <= max_deferrals),
                    ..budget
                };
                processor.handle_within(o, budget).map(|_| ())
            });
            Ok(Ran {
                response: serde_json::to_value(outcome.response)
                    .map_err(|e| FunctionError(HandleError::Config(e.to_string())))?,
                deferred: outcome.deferred,
                failures: outcome.failures.into_iter().map(|(_, e)| e).collect(),
            })
        }
    }
}

fn summary(events: &[PipelineEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            json!({
                "kind": e.kind().as_str(),
                "key": e.source.key,
                "rows_read": e.rows_read,
                "rows_rejected": e.rows_rejected,
                "manifest": e.manifest,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The handler over every sample event in `events/`, against local folders standing in for
    //! the buckets (the S3 protocol itself is tested end to end in `tests/`).

    use super::*;
    use aws_lambda_events::event::sqs::SqsEvent;
    use bondlake_core::events::{EventKind, JsonLinesSink};
    use bondlake_core::processor::Settings;
    use bondlake_core::store::{LocalStore, ObjectStore};
    use bondlake_lambda::parse;
    use bondlake_testkit::synth;
    use std::io::Write as _;

    const EVENTS: &[(&str, &str)] = &[
        (
            "s3-holdings.json",
            include_str!("../../../events/s3-holdings.json"),
        ),
        (
            "s3-market-nyse.json",
            include_str!("../../../events/s3-market-nyse.json"),
        ),
        (
            "s3-market-nasdaq.json",
            include_str!("../../../events/s3-market-nasdaq.json"),
        ),
        (
            "s3-market-jpx.json",
            include_str!("../../../events/s3-market-jpx.json"),
        ),
        (
            "s3-market-bse.json",
            include_str!("../../../events/s3-market-bse.json"),
        ),
        (
            "s3-weekly.json",
            include_str!("../../../events/s3-weekly.json"),
        ),
        (
            "sqs-holdings.json",
            include_str!("../../../events/sqs-holdings.json"),
        ),
        (
            "sqs-market-nyse.json",
            include_str!("../../../events/sqs-market-nyse.json"),
        ),
        (
            "sqs-market-nasdaq.json",
            include_str!("../../../events/sqs-market-nasdaq.json"),
        ),
        (
            "sqs-market-jpx.json",
            include_str!("../../../events/sqs-market-jpx.json"),
        ),
        (
            "sqs-market-bse.json",
            include_str!("../../../events/sqs-market-bse.json"),
        ),
        (
            "sqs-weekly.json",
            include_str!("../../../events/sqs-weekly.json"),
        ),
        (
            "s3-key-with-spaces-and-unicode.json",
            include_str!("../../../events/s3-key-with-spaces-and-unicode.json"),
        ),
        (
            "s3-superseded.json",
            include_str!("../../../events/s3-superseded.json"),
        ),
        (
            "s3-test-event.json",
            include_str!("../../../events/s3-test-event.json"),
        ),
        (
            "sqs-mixed-batch.json",
            include_str!("../../../events/sqs-mixed-batch.json"),
        ),
    ];

    const UNICODE_KEY: &str = "holdings/custodian b/Q4 holdings été 20261125.csv.gz";

    struct Lake {
        _dir: tempfile::TempDir,
        processed: LocalStore,
        events: Arc<JsonLinesSink>,
        processor: Processor,
    }

    /// The raw bucket holds a generated day of vendor files (and one key with spaces and
    /// unicode), as the sample events name them.
    fn lake() -> Lake {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = LocalStore::new(dir.path().join("raw"));
        let mut files: Vec<(&str, &str, &str, u64)> = synth::DAY.to_vec();
        files.push((UNICODE_KEY, "investor_holdings", "standard", 500));
        for (i, (key, dataset, profile, rows)) in files.into_iter().enumerate() {
            let spec = synth::Spec {
                dataset: dataset.into(),
                profile: profile.into(),
                rows: rows.min(2_000),
                seed: i as u64 + 1,
                dirty: 0.02,
            };
            let mut w = raw.create(key).expect("create");
            if key.ends_with(".gz") {
                let mut gz = flate2::write::GzEncoder::new(&mut w, flate2::Compression::fast());
                synth::generate(&spec, &mut gz).expect("generate");
                gz.finish().expect("gzip");
            } else {
                synth::generate(&spec, &mut w).expect("generate");
            }
            w.flush().expect("flush");
            w.commit().expect("commit");
        }
        let processed = LocalStore::new(dir.path().join("lake"));
        let events = Arc::new(JsonLinesSink::new(dir.path().join("events.jsonl")));
        // The settings `sam local invoke --env-vars events/env.json` gives the function.
        let env = bondlake_core::vars::sam_env_vars(
            include_str!("../../../events/env.json"),
            "CsvProcessorFunction",
        )
        .expect("env.json");
        let settings = Settings::from_vars(&|name| env.get(name).cloned()).expect("settings");
        let processor = Processor::new(
            settings,
            Arc::new(raw),
            Arc::new(processed.clone()),
            events.clone(),
        )
        .expect("processor");
        Lake {
            _dir: dir,
            processed,
            events,
            processor,
        }
    }

    fn invoke(lake: &Lake, text: &str) -> Result<Value, FunctionError> {
        let payload: Value = serde_json::from_str(text).expect("sample event is JSON");
        let incoming = parse(payload).map_err(FunctionError)?;
        run(&lake.processor, incoming, Budget::default()).map(|r| r.response)
    }

    #[test]
    fn every_sample_event_parses_and_round_trips() {
        for (name, text) in EVENTS {
            let value: Value = serde_json::from_str(text).expect(name);
            match parse(value.clone()).unwrap_or_else(|e| panic!("{name}: {e}")) {
                Incoming::Sqs(sqs) => {
                    let back = serde_json::to_value(&sqs).expect("serialize");
                    let again: SqsEvent = serde_json::from_value(back).expect("reparse");
                    assert_eq!(again, sqs, "{name}");
                }
                Incoming::S3(objects) => {
                    let expected = usize::from(!name.contains("test-event"));
                    assert_eq!(objects.len(), expected, "{name}");
                }
            }
        }
    }

    #[test]
    fn each_dataset_event_processes_its_object_direct_and_through_sqs() {
        let lake = lake();
        for (name, text) in EVENTS.iter().filter(|(n, _)| {
            !n.contains("superseded") && !n.contains("test-event") && !n.contains("mixed")
        }) {
            let out = invoke(&lake, text).unwrap_or_else(|e| panic!("{name}: {}", e.0));
            if name.starts_with("sqs-") {
                assert_eq!(out, json!({ "batchItemFailures": [] }), "{name}");
            } else {
                let kinds = out["events"].as_array().expect("events");
                assert_eq!(kinds.len(), 1, "{name}: {out}");
                assert_eq!(kinds[0]["kind"], "processed", "{name}: {out}");
            }
        }
        let events = lake.events.read_all().expect("events");
        assert_eq!(events.len(), 13);
        for e in &events {
            assert_eq!(e.kind(), EventKind::Processed, "{}", e.source.key);
            assert_eq!(e.rows_read, e.rows_ok + e.rows_rejected);
            let manifest = e.manifest.as_deref().expect("manifest");
            assert!(std::path::Path::new(manifest).is_file(), "{manifest}");
        }
        // The S3 and the SQS delivery of one object wrote the same manifest.
        let unicode: Vec<_> = events
            .iter()
            .filter(|e| e.source.key == UNICODE_KEY)
            .collect();
        assert_eq!(unicode.len(), 1, "the decoded key reached the processor");
        let manifests = lake.processed.list("manifests/").expect("list");
        assert_eq!(manifests.len(), 7, "{manifests:?}");
    }

    #[test]
    fn superseded_test_and_mixed_events() {
        let lake = lake();
        let skipped = invoke(&lake, EVENTS[13].1).map_err(|e| e.0.to_string());
        assert_eq!(skipped.expect("superseded"), json!({ "events": [] }));
        let test = invoke(&lake, EVENTS[14].1).map_err(|e| e.0.to_string());
        assert_eq!(test.expect("test event"), json!({ "events": [] }));
        let mixed = invoke(&lake, EVENTS[15].1).map_err(|e| e.0.to_string());
        // Only the malformed message goes back to the queue; the unroutable key is reported.
        assert_eq!(
            mixed.expect("mixed"),
            json!({ "batchItemFailures": [{ "itemIdentifier": "0c7a3b52-1d6f-4d0e-9a5c-000000000002" }] })
        );
        let events = lake.events.read_all().expect("events");
        let kinds: Vec<_> = events
            .iter()
            .map(|e| (e.kind(), e.source.key.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (EventKind::Processed, "market/JPX/jpx_daily_20261125.csv"),
                (EventKind::Failed, "unsorted/readme.txt"),
            ]
        );
        let error = events[1].error.as_deref().unwrap_or_default();
        assert!(
            error.ends_with(
                "/raw/unsorted/readme.txt: no route for this key (see the routing table, ROUTES)"
            ),
            "{error}"
        );
    }

    /// The SQS sample for holdings, received `receives` times.
    fn holdings_batch(receives: u32) -> Incoming {
        let text = EVENTS[6].1.replace(
            "\"ApproximateReceiveCount\": \"1\"",
            &format!("\"ApproximateReceiveCount\": \"{receives}\""),
        );
        parse(serde_json::from_str(&text).expect("json")).expect("sqs")
    }

    /// Late in a batch: 30 s left of a 900 s invocation, and the processor believes it reads
    /// 1 KB/s, so the holdings file (tens of KB) needs more than is left but far less than a
    /// fresh invocation has.
    fn late_in_a_batch() -> Budget {
        Budget {
            deadline: Some(Instant::now() + std::time::Duration::from_secs(30)),
            whole: Some(std::time::Duration::from_secs(900)),
        }
    }

    fn slow(lake: &mut Lake) {
        let mut settings = lake.processor.settings().clone();
        settings.assumed_bytes_per_second = 1_000;
        lake.processor = Processor::new(
            settings,
            Arc::new(LocalStore::new(lake._dir.path().join("raw"))),
            Arc::new(lake.processed.clone()),
            lake.events.clone(),
        )
        .expect("processor");
    }

    #[test]
    fn a_file_that_fits_a_fresh_invocation_but_not_what_is_left_goes_back_unprocessed() {
        let mut lake = lake();
        slow(&mut lake);
        let ran = run(&lake.processor, holdings_batch(1), late_in_a_batch()).expect("ran");
        assert_eq!(
            ran.response,
            json!({ "batchItemFailures": [{ "itemIdentifier": "0c7a3b52-1d6f-4d0e-9a5c-000000000001" }] })
        );
        assert_eq!(
            ran.deferred,
            [Deferral {
                queue_arn: "arn:aws:sqs:us-east-1:123456789012:bondlake-dev-raw-events".into(),
                receipt_handle: "AQEBexample1==".into(),
            }]
        );
        assert!(
            lake.processed.list("").expect("list").is_empty(),
            "no hand-off request, no outputs"
        );
        assert!(
            lake.events.read_all().expect("events").is_empty(),
            "nothing told"
        );
    }

    #[test]
    fn a_file_deferred_max_deferrals_times_is_handed_off_not_deferred_again() {
        let mut lake = lake();
        slow(&mut lake);
        let receives = lake.processor.settings().max_deferrals + 1;
        let ran = run(&lake.processor, holdings_batch(receives), late_in_a_batch()).expect("ran");
        assert_eq!(ran.response, json!({ "batchItemFailures": [] }));
        assert!(ran.deferred.is_empty());
        let events = lake.events.read_all().expect("events");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind(), EventKind::Handoff);
        assert_eq!(events[0].handoff().expect("info").reason, "throughput");
    }

    #[test]
    fn a_file_too_slow_for_even_a_fresh_invocation_is_handed_off_at_once() {
        let mut lake = lake();
        slow(&mut lake);
        let budget = Budget {
            whole: Some(std::time::Duration::from_secs(20)),
            ..late_in_a_batch()
        };
        let ran = run(&lake.processor, holdings_batch(1), budget).expect("ran");
        assert!(ran.deferred.is_empty());
        let events = lake.events.read_all().expect("events");
        assert_eq!(events[0].kind(), EventKind::Handoff, "{events:?}");
    }

    #[test]
    fn an_event_for_another_bucket_is_invalid_input_not_a_retry() {
        let lake = lake();
        let text = EVENTS[0]
            .1
            .replace("bondlake-dev-raw-123456789012", "someone-elses-bucket");
        let err = invoke(&lake, &text).expect_err("rejected").0;
        assert_eq!(err.error_type(), "InvalidInput");
        assert_eq!(
            err.to_string(),
            "invalid input: event for bucket `someone-elses-bucket`, but this function reads `bondlake-dev-raw-123456789012`"
        );
        let d: lambda_runtime::Diagnostic = FunctionError(err).into();
        assert_eq!(d.error_type, "InvalidInput");
        let garbage = parse(json!({"Records": [{"eventSource": "aws:s3", "s3": 1}]}));
        assert!(matches!(garbage, Err(HandleError::InvalidInput(_))));
    }
}
