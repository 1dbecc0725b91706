//! Every sample event in `events/`, both ways: read into its `aws_lambda_events` type and written
//! back, it keeps every field it had; and every pipeline event those envelopes carry (SNS
//! messages, SQS bodies under SNS's envelope) reads as a `PipelineEvent` and writes back as
//! exactly the JSON it was, so the schema of `docs/pipeline-events.md` is what the type says.

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use bondlake_core::events::PipelineEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;

/// Whether `typed` (what the type wrote) holds every field of `original` with the same value; a
/// type may add fields of its own (as nulls or defaults), never drop or change one.
fn keeps(original: &Value, typed: &Value, path: &str, diffs: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let at = format!("{path}/{k}");
                match b.get(k) {
                    Some(w) => keeps(v, w, &at, diffs),
                    None if v.is_null() => {}
                    None => diffs.push(format!("{at}: dropped")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                keeps(v, w, &format!("{path}/{i}"), diffs);
            }
        }
        (a, b) if a == b => {}
        (a, b) => diffs.push(format!("{path}: {a} became {b}")),
    }
}

/// Reads `value` as `T`, writes it back, and checks that nothing was lost and that the written
/// JSON reads as the same `T`.
fn both_ways<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    name: &str,
    value: &Value,
) -> T {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{name}: not a {}: {e}", std::any::type_name::<T>()));
    let written = serde_json::to_value(&typed).expect("serialise");
    let mut diffs = Vec::new();
    keeps(value, &written, "", &mut diffs);
    assert!(diffs.is_empty(), "{name}: {diffs:#?}");
    let again: T = serde_json::from_value(written).expect("the written JSON reads again");
    assert_eq!(again, typed, "{name}");
    typed
}

/// A pipeline event's JSON, read and written back: exactly the same JSON. (A sample of a newer
/// version is there to be refused, and is.)
fn pipeline_event_both_ways(name: &str, text: &str) -> Option<PipelineEvent> {
    let value: Value = serde_json::from_str(text).expect("JSON");
    if value["event_version"] != 1 {
        let refused = bondlake_core::events::parse(text);
        assert!(
            matches!(
                refused,
                Err(bondlake_core::events::EventError::UnknownVersion { .. })
            ),
            "{name}: {refused:?}"
        );
        return None;
    }
    let event = bondlake_core::events::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        serde_json::to_value(&event).expect("serialise"),
        value,
        "{name}: a pipeline event writes back as it was read"
    );
    assert_eq!(
        bondlake_core::events::parse(&event.to_json())
            .expect("reads")
            .outcome,
        event.outcome
    );
    Some(event)
}

/// An MSK event read by the lander's own type: every record keeps its topic, partition, offset,
/// timestamp and value exactly. (Not `aws_lambda_events`' `KafkaEvent`: it writes the timestamp
/// back as a string, and reads 1795644000007 as 1795644000006, a millisecond lost on the way
/// through a float.)
fn kafka_records_as_sent(name: &str, value: &Value) {
    let records =
        bondlake_lambda::kafka_records(value.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let sent: Vec<&Value> = value["records"]
        .as_object()
        .expect("records")
        .values()
        .flat_map(|v| v.as_array().expect("a partition's records"))
        .collect();
    assert_eq!(records.len(), sent.len(), "{name}");
    // The partitions come in no fixed order: match each record to what was sent by its place.
    let by_place: std::collections::HashMap<(i64, i64), &Value> = sent
        .iter()
        .filter_map(|v| Some(((v["partition"].as_i64()?, v["offset"].as_i64()?), *v)))
        .collect();
    for r in &records {
        if r.malformed.is_some() {
            continue; // the poison record: quarantined by the lander, its tests say how
        }
        let v = by_place
            .get(&(r.partition, r.offset))
            .unwrap_or_else(|| panic!("{name}: no record sent at {}/{}", r.partition, r.offset));
        assert_eq!(Some(r.topic.as_str()), v["topic"].as_str(), "{name}");
        assert_eq!(Some(r.timestamp_ms), v["timestamp"].as_i64(), "{name}");
        assert_eq!(r.value.as_deref(), v["value"].as_str(), "{name}");
    }
}

/// The message an SQS body carries: SNS's envelope's `Message`, or the body itself.
fn sqs_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    match v.get("Type").and_then(Value::as_str) {
        Some("Notification") => v.get("Message")?.as_str().map(str::to_string),
        _ => Some(body.to_string()),
    }
}

#[test]
fn every_sample_event_reads_into_its_type_and_writes_back_unchanged() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("events/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let (mut envelopes, mut pipeline_events, mut notifications) = (0, 0, 0);
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let value: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect(name);
        if name == "env.json" {
            continue; // `sam local invoke --env-vars`, not an event
        }
        envelopes += 1;
        let source = value
            .pointer("/Records/0/eventSource")
            .or_else(|| value.pointer("/Records/0/EventSource"))
            .or_else(|| value.get("eventSource"))
            .and_then(Value::as_str);
        match source {
            Some("aws:s3") => {
                both_ways::<S3Event>(name, &value);
            }
            Some("aws:sqs") => {
                let sqs: SqsEvent = both_ways(name, &value);
                for m in &sqs.records {
                    let body = m.body.as_deref().expect("body");
                    let Some(message) = sqs_message(body) else {
                        continue; // a deliberately broken body: the handlers' tests cover it
                    };
                    let inner: Value = match serde_json::from_str(&message) {
                        Ok(v) => v,
                        Err(_) => continue,
                    };
                    if inner.get("event_version").is_some() {
                        pipeline_events +=
                            usize::from(pipeline_event_both_ways(name, &message).is_some());
                    } else if inner.pointer("/Records/0/eventSource") == Some(&"aws:s3".into()) {
                        both_ways::<S3Event>(name, &inner);
                        notifications += 1;
                    }
                }
            }
            Some("aws:sns") => {
                let sns: SnsEvent = both_ways(name, &value);
                for r in &sns.records {
                    let inner: Value = serde_json::from_str(&r.sns.message).expect("JSON");
                    if inner.get("event_version").is_some() {
                        pipeline_events +=
                            usize::from(pipeline_event_both_ways(name, &r.sns.message).is_some());
                    }
                }
            }
            Some("aws:kafka") => kafka_records_as_sent(name, &value),
            _ if value.get("Event") == Some(&"s3:TestEvent".into()) => {}
            // EventBridge's EMR state changes: emr-launcher's own tests read them.
            _ if value.get("source") == Some(&"aws.emr".into()) => {}
            // The weekly schedule's input to emr-launcher: its own tests read it.
            _ if value.get("weekly").is_some() => {}
            other => panic!("{name}: an event of an unknown source {other:?}"),
        }
    }
    assert!(envelopes >= 24, "{envelopes} sample events");
    assert!(pipeline_events >= 8, "{pipeline_events} pipeline events");
    assert!(
        notifications >= 8,
        "{notifications} S3 notifications in SQS bodies"
    );
}
