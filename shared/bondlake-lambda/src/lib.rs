//! What the Lambda functions are invoked with, parsed once for all of them: S3 notifications,
//! direct or through an SQS queue, and the invocation's deadline.

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use bondlake_core::failure::{Disposition, HandleError};
use bondlake_core::processor::{ObjectCreated, decode_event_key};
use serde::Deserialize as _;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the function was invoked with: the runtime deserialises the invocation into it, through
/// [`parse`], so a handler receives typed input (`aws_lambda_events`' SQS event, or the objects of
/// its S3 event) and never digs in JSON.
#[derive(Debug, serde::Deserialize)]
#[serde(try_from = "Value")]
pub enum Incoming {
    /// Messages from the raw-events queue, each an S3 notification.
    Sqs(SqsEvent),
    /// An S3 notification delivered directly.
    S3(Vec<ObjectCreated>),
}

impl TryFrom<Value> for Incoming {
    type Error = HandleError;
    fn try_from(payload: Value) -> Result<Self, HandleError> {
        parse(payload)
    }
}

/// Tells SQS batches from S3 notifications by the records' `eventSource`.
pub fn parse(payload: Value) -> Result<Incoming, HandleError> {
    let source = payload
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        .unwrap_or("");
    if source == "aws:sqs" {
        return serde_json::from_value(payload)
            .map(Incoming::Sqs)
            .map_err(|e| HandleError::InvalidInput(format!("SQS event: {e}")));
    }
    notification(payload).map(Incoming::S3)
}

/// The objects an S3 notification names; S3's `s3:TestEvent` names none.
pub fn notification(payload: Value) -> Result<Vec<ObjectCreated>, HandleError> {
    if payload.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let event: S3Event = serde_json::from_value(payload)
        .map_err(|e| HandleError::InvalidInput(format!("not an S3 notification: {e}")))?;
    event
        .records
        .into_iter()
        .filter(|r| {
            r.event_name
                .as_deref()
                .is_none_or(|n| n.starts_with("ObjectCreated"))
        })
        .map(|r| {
            let bucket = r.s3.bucket.name.unwrap_or_default();
            let raw_key = r.s3.object.key.ok_or_else(|| {
                HandleError::InvalidInput("S3 record without an object key".into())
            })?;
            Ok(ObjectCreated {
                bucket,
                key: decode_event_key(&raw_key).map_err(HandleError::InvalidInput)?,
                etag: r.s3.object.e_tag.filter(|e| !e.is_empty()),
                event_time: Some(bondlake_core::manifest::rfc3339(
                    r.event_time.timestamp_micros(),
                )),
                sequencer: r.s3.object.sequencer.filter(|s| !s.is_empty()),
            })
        })
        .collect()
}

/// The context's deadline (milliseconds since the epoch) as an `Instant`; `None` when it is not
/// in the future, which Lambda never sends but emulators do (cargo lambda's sends 600000, a
/// duration rather than an instant).
pub fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = deadline_ms.checked_sub(now_ms).filter(|&ms| ms > 0);
    if left.is_none() {
        tracing::warn!(
            deadline_ms,
            "no deadline in the future: running without one"
        );
    }
    left.map(|ms| Instant::now() + Duration::from_millis(ms))
}

/// What an SQS batch came to: the partial batch response, and each failed message's id and error.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Every failed message, returned to the queue: retried, and after the queue's
    /// maxReceiveCount held in its dead-letter queue, where a person looks (a message that can
    /// never be handled is not deleted: it is kept for that look).
    pub response: SqsBatchResponse,
    /// The failures, in order, for the function to report.
    pub failures: Vec<(String, HandleError)>,
    /// The messages whose disposition is [`Disposition::RetryNow`] (deferred): returned unprocessed, to be made visible again at
    /// once ([`bondlake_aws::sqs::release`]) rather than after the queue's visibility timeout.
    pub deferred: Vec<Deferral>,
}

pub use bondlake_aws::sqs::Deferral;

/// Runs `handle` on every object each message of an SQS batch names, with the message's
/// receive count (1 on its first delivery), and returns the partial batch response with every
/// failed message in it.
pub fn for_each_message(
    batch: SqsEvent,
    mut handle: impl FnMut(&ObjectCreated, u32) -> Result<(), HandleError>,
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    for message in batch.records {
        let id = message.message_id.clone().unwrap_or_default();
        let receives = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let result = message
            .body
            .as_deref()
            .ok_or_else(|| HandleError::InvalidInput(format!("SQS message {id} has no body")))
            .and_then(|body| {
                serde_json::from_str(body).map_err(|e| {
                    HandleError::InvalidInput(format!("SQS message {id}: not JSON: {e}"))
                })
            })
            .and_then(notification)
            .and_then(|objects| objects.iter().try_for_each(|o| handle(o, receives)));
        let disposition = result.as_ref().err().map(HandleError::disposition);
        if let (Some(Disposition::RetryNow), Err(why)) = (disposition, &result) {
            tracing::info!(message_id = %id, receives, reason = %why, "deferred to a fresh invocation");
            if let (Some(queue_arn), Some(receipt_handle)) = (
                message.event_source_arn.clone(),
                message.receipt_handle.clone(),
            ) {
                outcome.deferred.push(Deferral {
                    queue_arn,
                    receipt_handle,
                });
            }
        } else if let Err(e) = &result {
            tracing::error!(message_id = %id, error_type = e.error_type(), error = %e, "message failed");
        }
        if let Err(e) = result {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.clone();
            outcome.response.batch_item_failures.push(failure);
            outcome.failures.push((id, e));
        }
    }
    outcome
}

/// An invocation's failure, with the `errorType` the retry policy keys on (`InvalidInput`,
/// `Retryable`, `Configuration`): the one mapping every function's handler returns.
#[derive(Debug)]
pub struct FunctionError(pub HandleError);

impl From<FunctionError> for lambda_runtime::Diagnostic {
    fn from(e: FunctionError) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic {
            error_type: e.0.error_type().to_string(),
            error_message: e.0.to_string(),
        }
    }
}

/// JSON log lines for CloudWatch Logs Insights, without timestamps (CloudWatch adds them), at
/// the level the function's `ApplicationLogLevel` sets (Lambda passes it as AWS_LAMBDA_LOG_LEVEL).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_max_level(log_level(
            std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        ))
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
}

/// Lambda's log level names as tracing's levels (FATAL is ERROR); INFO when unset or unknown.
/// Kept rather than `lambda_runtime::tracing::init_default_subscriber`: that one reads FATAL as
/// INFO (tracing has no FATAL, and its parse fails), logs JSON only when the function's log format
/// is JSON, and needs tracing-subscriber's `env-filter` (regex) in every binary.
pub fn log_level(name: Option<&str>) -> tracing::Level {
    match name.map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => tracing::Level::TRACE,
        Some("DEBUG") => tracing::Level::DEBUG,
        Some("WARN") => tracing::Level::WARN,
        Some("ERROR" | "FATAL") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    }
}

/// An MSK event as the event source mapping sends it. Read here rather than with
/// `aws_lambda_events`' Kafka type, whose timestamp goes through an `f64` and can lose a
/// millisecond (1795644000010 came back as ...009), and which panics on a fractional timestamp.
/// Each record is read on its own: one malformed record (a null header value, say) is
/// quarantined by the lander, never the reason a whole batch fails.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MskEvent {
    #[serde(default)]
    records: Option<std::collections::HashMap<String, Vec<Value>>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MskRecord {
    #[serde(default)]
    topic: Option<String>,
    /// A number, or (in some of AWS's own examples) a string of digits.
    #[serde(deserialize_with = "number_or_digits")]
    partition: i64,
    #[serde(deserialize_with = "number_or_digits")]
    offset: i64,
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    value: Option<String>,
    /// Each header a one-entry map of name → bytes (Java's signed bytes).
    #[serde(default)]
    headers: Vec<std::collections::BTreeMap<String, Vec<i64>>>,
}

fn number_or_digits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a whole number"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a whole number"))),
        other => Err(serde::de::Error::custom(format!(
            "{other} is not a whole number"
        ))),
    }
}

/// One message of an SNS topic as a function receives it: from SNS directly, or as the body of
/// an SQS message subscribed to the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMessage {
    /// The delivery to answer for: the SQS message id (a partial batch response names it), or
    /// SNS's message id.
    pub delivery_id: String,
    /// SNS's id of the message (under raw delivery SQS's, the only one there is).
    pub message_id: String,
    /// The message as published.
    pub message: String,
}

/// How a topic's messages arrived (the runtime deserialises an invocation into it, through
/// [`topic_messages`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "Value")]
pub enum TopicDelivery {
    /// Through an SQS queue: failures are answered per message.
    Sqs(Vec<TopicMessage>),
    /// From an SNS subscription: the invocation succeeds or fails whole.
    Sns(Vec<TopicMessage>),
}

impl TryFrom<Value> for TopicDelivery {
    type Error = HandleError;
    fn try_from(payload: Value) -> Result<Self, HandleError> {
        topic_messages(payload)
    }
}

/// SNS's JSON envelope around a message in an SQS body (a subscription without raw delivery).
#[derive(serde::Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "MessageId")]
    message_id: Option<String>,
    #[serde(rename = "Message", default)]
    message: String,
}

/// The topic messages an invocation carries, read with `aws_lambda_events`' SQS and SNS types
/// (told apart by the records' event source, as [`parse`] does).
pub fn topic_messages(payload: Value) -> Result<TopicDelivery, HandleError> {
    let source = |pointer: &str| {
        payload
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if source("/Records/0/eventSource").as_deref() == Some("aws:sqs") {
        let batch: SqsEvent = serde_json::from_value(payload)
            .map_err(|e| HandleError::InvalidInput(format!("SQS event: {e}")))?;
        let messages = batch
            .records
            .into_iter()
            .map(|m| {
                let id = m.message_id.unwrap_or_default();
                let body = m.body.unwrap_or_default();
                match serde_json::from_str::<SnsEnvelope>(&body) {
                    Ok(env) if env.kind == "Notification" => TopicMessage {
                        message_id: env.message_id.unwrap_or_else(|| id.clone()),
                        delivery_id: id,
                        message: env.message,
                    },
                    _ => TopicMessage {
                        message_id: id.clone(),
                        delivery_id: id,
                        message: body,
                    },
                }
            })
            .collect();
        return Ok(TopicDelivery::Sqs(messages));
    }
    let no_records = payload
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty);
    if no_records || source("/Records/0/EventSource").as_deref() == Some("aws:sns") {
        return sns_messages(payload).map(TopicDelivery::Sns);
    }
    Err(HandleError::InvalidInput(
        "neither an SQS nor an SNS event".into(),
    ))
}

/// The messages of a direct SNS delivery.
pub fn sns_messages(payload: Value) -> Result<Vec<TopicMessage>, HandleError> {
    let event: SnsEvent = serde_json::from_value(payload)
        .map_err(|e| HandleError::InvalidInput(format!("SNS event: {e}")))?;
    Ok(event
        .records
        .into_iter()
        .map(|r| TopicMessage {
            delivery_id: r.sns.message_id.clone(),
            message_id: r.sns.message_id,
            message: r.sns.message,
        })
        .collect())
}

/// The records of a batch the Kafka event source mapping gave up on, from the record its S3
/// on-failure destination keeps: the invocation's own event is its `payload` (an object, or the
/// object as a JSON string).
pub fn kafka_failure_records(
    text: &str,
) -> Result<Vec<bondlake_core::kafka::KafkaRecord>, HandleError> {
    let record: Value = serde_json::from_str(text)
        .map_err(|e| HandleError::InvalidInput(format!("not JSON: {e}")))?;
    let payload = match record.get("payload") {
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|e| HandleError::InvalidInput(format!("the payload is not JSON: {e}")))?,
        Some(p @ Value::Object(_)) => p.clone(),
        _ => {
            return Err(HandleError::InvalidInput(
                "no payload: not an S3 on-failure record (SQS and SNS destinations keep only the offsets)"
                    .into(),
            ));
        }
    };
    kafka_records(payload)
}

/// An MSK event's records, as the runtime deserialises the invocation (through
/// [`kafka_records`]).
#[derive(Debug, serde::Deserialize)]
#[serde(try_from = "Value")]
pub struct KafkaBatch(pub Vec<bondlake_core::kafka::KafkaRecord>);

impl TryFrom<Value> for KafkaBatch {
    type Error = HandleError;
    fn try_from(payload: Value) -> Result<Self, HandleError> {
        kafka_records(payload).map(KafkaBatch)
    }
}

/// The records of an MSK event, in the lander's terms (values stay base64 until the lander
/// decodes them, so a bad one is quarantined rather than failing the batch).
pub fn kafka_records(
    payload: Value,
) -> Result<Vec<bondlake_core::kafka::KafkaRecord>, HandleError> {
    let event: MskEvent = serde_json::from_value(payload)
        .map_err(|e| HandleError::InvalidInput(format!("not an MSK event: {e}")))?;
    let mut out = Vec::new();
    for (topic_partition, records) in event.records.unwrap_or_default() {
        // Records name their topic and partition; the map key (`topic-partition`) is the fallback.
        let (map_topic, map_partition) = match topic_partition.rsplit_once('-') {
            Some((t, p)) => (t.to_string(), p.parse::<i64>().ok()),
            None => (topic_partition.clone(), None),
        };
        for raw in records {
            let record = match serde_json::from_value::<MskRecord>(raw.clone()) {
                Ok(r) => bondlake_core::kafka::KafkaRecord {
                    topic: r.topic.unwrap_or_else(|| map_topic.clone()),
                    partition: r.partition,
                    offset: r.offset,
                    timestamp_ms: r.timestamp,
                    value: r.value,
                    headers: r
                        .headers
                        .into_iter()
                        .flat_map(|h| {
                            h.into_iter()
                                .map(|(k, v)| (k, v.into_iter().map(|b| b as u8).collect()))
                        })
                        .collect(),
                    malformed: None,
                },
                Err(e) => bondlake_core::kafka::KafkaRecord {
                    topic: raw
                        .get("topic")
                        .and_then(Value::as_str)
                        .map_or_else(|| map_topic.clone(), str::to_string),
                    partition: raw
                        .get("partition")
                        .and_then(Value::as_i64)
                        .or(map_partition)
                        .unwrap_or(-1),
                    offset: raw.get("offset").and_then(Value::as_i64).unwrap_or(-1),
                    timestamp_ms: raw.get("timestamp").and_then(Value::as_i64).unwrap_or(0),
                    value: raw.get("value").and_then(Value::as_str).map(str::to_string),
                    headers: Vec::new(),
                    malformed: Some(format!("the record does not parse: {e}")),
                },
            };
            out.push(record);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    #[test]
    fn topic_messages_are_read_from_sns_and_from_sqs_with_or_without_the_envelope() {
        let TopicDelivery::Sns(sns) = topic_messages(sample("sns-pipeline-events.json"))
            .unwrap_or(TopicDelivery::Sqs(Vec::new()))
        else {
            panic!("an SNS delivery");
        };
        assert_eq!(sns.len(), 3);
        assert_eq!(sns[0].delivery_id, "7b0c4a5e-0000-4000-8000-000000000001");
        assert_eq!(sns[0].message_id, sns[0].delivery_id);
        assert!(sns.iter().all(|m| m.message.contains("event_version")));

        let TopicDelivery::Sqs(sqs) = topic_messages(sample("sqs-notifications.json"))
            .unwrap_or(TopicDelivery::Sns(Vec::new()))
        else {
            panic!("an SQS delivery");
        };
        assert_eq!(sqs.len(), 8);
        // The SQS message is what a partial batch response names; the id inside is SNS's.
        assert_eq!(sqs[0].delivery_id, "5f1e2d3c-0000-4000-8000-000000000001");
        assert_eq!(sqs[0].message_id, "7b0c4a5e-0000-4000-8000-000000000001");
        assert!(
            !sqs[0].message.starts_with("{\"Type\""),
            "the envelope is taken off"
        );

        // Raw delivery: the body is the message itself.
        let raw = serde_json::json!({"Records": [{
            "eventSource": "aws:sqs", "messageId": "m-1", "body": "{\"event_version\": 1}"
        }]});
        assert_eq!(
            topic_messages(raw).ok(),
            Some(TopicDelivery::Sqs(vec![TopicMessage {
                delivery_id: "m-1".into(),
                message_id: "m-1".into(),
                message: "{\"event_version\": 1}".into(),
            }]))
        );
        assert_eq!(
            topic_messages(serde_json::json!({"Records": []})).ok(),
            Some(TopicDelivery::Sns(Vec::new()))
        );
        let neither = topic_messages(serde_json::json!({"detail": {}})).err();
        assert_eq!(neither.map(|e| e.error_type()), Some("InvalidInput"));
    }

    #[test]
    fn lambdas_log_level_names_map_to_tracing_levels() {
        assert_eq!(log_level(Some("DEBUG")), tracing::Level::DEBUG);
        assert_eq!(log_level(Some("warn")), tracing::Level::WARN);
        assert_eq!(log_level(Some("FATAL")), tracing::Level::ERROR);
        assert_eq!(log_level(Some("TRACE")), tracing::Level::TRACE);
        assert_eq!(log_level(None), tracing::Level::INFO);
        assert_eq!(log_level(Some("loud")), tracing::Level::INFO);
    }

    #[test]
    fn a_failure_record_gives_back_its_batch_and_partitions_may_be_strings() {
        let event = serde_json::json!({"eventSource": "aws:kafka", "records": {"prices-3": [
            {"topic": "prices", "partition": "3", "offset": 41, "timestamp": 1, "value": "YQ=="}
        ]}});
        let as_object = serde_json::json!({
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
            "KafkaBatchInfo": {"topic": "prices", "partition": 3, "firstOffset": 41, "lastOffset": 41, "batchSize": 1},
            "version": "1.0",
            "payload": event
        });
        let as_string = serde_json::json!({"version": "1.0", "payload": event.to_string()});
        for record in [as_object, as_string] {
            let records = kafka_failure_records(&record.to_string()).expect("records");
            assert_eq!(records.len(), 1);
            assert_eq!((records[0].partition, records[0].offset), (3, 41));
            assert!(records[0].malformed.is_none());
        }
        let metadata_only = serde_json::json!({"KafkaBatchInfo": {"topic": "prices"}});
        let err = kafka_failure_records(&metadata_only.to_string()).expect_err("no payload");
        assert!(err.to_string().contains("no payload"), "{err}");
    }

    #[test]
    fn a_malformed_kafka_record_is_marked_and_the_others_read() {
        let event = serde_json::json!({"eventSource": "aws:kafka", "records": {"prices-0": [
            {"topic": "prices", "partition": 0, "offset": 7, "timestamp": 1, "value": "YQ==",
             "headers": [{"trace": [116, 45, 49]}]},
            {"topic": "prices", "partition": 0, "offset": 8, "timestamp": 2, "value": "Yg==",
             "headers": [{"trace": null}]},
            {"topic": "prices", "partition": 0, "offset": 9, "timestamp": 3, "value": "Yw=="}
        ]}});
        let mut records = kafka_records(event).expect("an MSK event");
        records.sort_by_key(|r| r.offset);
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[0].headers,
            vec![("trace".to_string(), b"t-1".to_vec())]
        );
        assert!(records[0].malformed.is_none() && records[2].malformed.is_none());
        let why = records[1].malformed.as_deref().expect("marked");
        assert!(why.starts_with("the record does not parse: "), "{why}");
        assert_eq!((records[1].partition, records[1].offset), (0, 8));
        assert_eq!(records[1].value.as_deref(), Some("Yg=="));
    }
}
