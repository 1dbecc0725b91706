//! The wiring of `template.yaml`, on this machine: the events AWS would deliver to each function,
//! made here so that `bondlake run` and `bondlake demo` call each function's own handler with
//! them, as Lambda does.
//!
//! - raw bucket ObjectCreated → S3 notification → `raw-events` queue → csv-processor;
//! - processed bucket `manifests/` ObjectCreated → `manifest-events` queue → warehouse-loader;
//! - each stage's event → `pipeline-events` topic → SNS envelope → `notify` queue → notifier;
//! - a `handoff` event → the same topic → `handoffs` queue (the subscription's filter policy lets
//!   only `kind = handoff` through) → emr-launcher.
//!
//! The events are built as JSON and read with the same parsers the functions use, so what the
//! handlers receive here is what they receive in AWS (the sample events in `events/` have the
//! same shape).

use aws_lambda_events::event::sqs::SqsEvent;
use bondlake_core::events::PipelineEvent;
use bondlake_core::failure::HandleError;
use bondlake_core::processor::ObjectCreated;
use bondlake_lambda::{Incoming, TopicDelivery};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

/// The local account and region in the ARNs (never a real account).
const ARN_PREFIX: &str = "arn:aws:sqs:local:000000000000";
const TOPIC_ARN: &str = "arn:aws:sns:local:000000000000:pipeline-events";

/// What S3 leaves unescaped in a notification's key (it escapes as a form does: space as `+`).
const KEY_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b' ');

static MESSAGES: AtomicU64 = AtomicU64::new(0);

fn message_id() -> String {
    format!(
        "local-{}-{}",
        std::process::id(),
        MESSAGES.fetch_add(1, Ordering::Relaxed)
    )
}

/// The S3 event notification (version 2.1) S3 sends for `object`.
pub fn s3_notification(object: &ObjectCreated) -> Value {
    let key = utf8_percent_encode(&object.key, KEY_SAFE)
        .to_string()
        .replace(' ', "+");
    let mut s3_object = json!({ "key": key, "size": 0 });
    if let Some(etag) = &object.etag {
        s3_object["eTag"] = etag.as_str().into();
    }
    if let Some(sequencer) = &object.sequencer {
        s3_object["sequencer"] = sequencer.as_str().into();
    }
    json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "local",
        "eventTime": object.event_time.as_deref().unwrap_or("1970-01-01T00:00:00Z"),
        "eventName": "ObjectCreated:Put",
        "userIdentity": { "principalId": "local" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": { "name": object.bucket, "arn": format!("arn:aws:s3:::{}", object.bucket) },
            "object": s3_object,
        },
    }]})
}

/// One SQS message on `queue` with `body`, as the event source mapping hands it to a function.
fn sqs_batch(
    queue: &str,
    bodies: impl IntoIterator<Item = String>,
) -> Result<SqsEvent, HandleError> {
    let records: Vec<Value> = bodies
        .into_iter()
        .map(|body| {
            json!({
                "messageId": message_id(),
                "receiptHandle": "local",
                "body": body,
                "attributes": { "ApproximateReceiveCount": "1" },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("{ARN_PREFIX}:{queue}"),
                "awsRegion": "local",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
        .map_err(|e| HandleError::Config(format!("a local SQS event: {e}")))
}

/// What csv-processor receives for a new raw object: its notification on the `raw-events` queue.
pub fn raw_events(object: &ObjectCreated) -> Result<Incoming, HandleError> {
    sqs_batch("raw-events", [s3_notification(object).to_string()]).map(Incoming::Sqs)
}

/// What warehouse-loader receives for a new manifest: its notification on the `manifest-events`
/// queue.
pub fn manifest_events(manifest: &ObjectCreated) -> Result<SqsEvent, HandleError> {
    sqs_batch("manifest-events", [s3_notification(manifest).to_string()])
}

/// What the notifier receives for events published to `pipeline-events`: each in SNS's envelope,
/// on the `notify` queue.
pub fn notify_queue(events: &[PipelineEvent]) -> Result<TopicDelivery, HandleError> {
    topic_queue("notify", events.iter())
}

/// What emr-launcher receives for the events published to `pipeline-events`: the `handoff` ones
/// (its subscription's filter policy), each in SNS's envelope, on the `handoffs` queue.
pub fn handoff_queue(events: &[PipelineEvent]) -> Result<TopicDelivery, HandleError> {
    topic_queue(
        "handoffs",
        events
            .iter()
            .filter(|e| e.kind() == bondlake_core::events::EventKind::Handoff),
    )
}

/// Topic messages as a subscribed queue delivers them.
fn topic_queue<'e>(
    queue: &str,
    events: impl Iterator<Item = &'e PipelineEvent>,
) -> Result<TopicDelivery, HandleError> {
    let bodies = events.map(|e| {
        json!({
            "Type": "Notification",
            "MessageId": message_id(),
            "TopicArn": TOPIC_ARN,
            "Message": e.to_json(),
            "Timestamp": e.at,
        })
        .to_string()
    });
    let batch = sqs_batch(queue, bodies)?;
    bondlake_lambda::topic_messages(
        serde_json::to_value(batch).map_err(|e| HandleError::Config(e.to_string()))?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_object_reaches_the_processor_as_the_object_it_is() {
        let object = ObjectCreated {
            bucket: "raw".into(),
            key: "holdings/acme/Q4 reporté+final.csv.gz".into(),
            etag: Some("abc-1".into()),
            event_time: Some("2026-11-25T21:04:05.123456Z".into()),
            sequencer: Some("0A1B".into()),
        };
        let Incoming::Sqs(batch) = raw_events(&object).expect("event") else {
            panic!("not SQS");
        };
        let body = batch.records[0].body.as_deref().expect("body");
        let objects =
            bondlake_lambda::notification(serde_json::from_str(body).expect("json")).expect("s3");
        assert_eq!(objects, [object]);
    }
}
