//! What the Lambda functions are invoked with, parsed once for all of them: S3 notifications,
//! direct or through an SQS queue, and the invocation's deadline.

use crate::processor::{HandleError, ObjectCreated, decode_event_key};
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the function was invoked with.
#[derive(Debug)]
pub enum Incoming {
    /// Messages from the raw-events queue, each an S3 notification.
    Sqs(SqsEvent),
    /// An S3 notification delivered directly.
    S3(Vec<ObjectCreated>),
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
}

/// Runs `handle` on every object each message of an SQS batch names, and returns the partial
/// batch response with every failed message in it.
pub fn for_each_message(
    batch: SqsEvent,
    mut handle: impl FnMut(&ObjectCreated) -> Result<(), HandleError>,
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    for message in batch.records {
        let id = message.message_id.clone().unwrap_or_default();
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
            .and_then(|objects| objects.iter().try_for_each(&mut handle));
        if let Err(e) = result {
            tracing::error!(message_id = %id, error_type = e.error_type(), error = %e, "message failed");
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
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MskEvent {
    #[serde(default)]
    records: Option<std::collections::HashMap<String, Vec<MskRecord>>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MskRecord {
    #[serde(default)]
    topic: Option<String>,
    partition: i64,
    offset: i64,
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    value: Option<String>,
    /// Each header a one-entry map of name → bytes (Java's signed bytes).
    #[serde(default)]
    headers: Vec<std::collections::BTreeMap<String, Vec<i64>>>,
}

/// The records of an MSK event, in the lander's terms (values stay base64 until the lander
/// decodes them, so a bad one is quarantined rather than failing the batch).
pub fn kafka_records(payload: Value) -> Result<Vec<crate::kafka::KafkaRecord>, HandleError> {
    let event: MskEvent = serde_json::from_value(payload)
        .map_err(|e| HandleError::InvalidInput(format!("not an MSK event: {e}")))?;
    Ok(event
        .records
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(topic_partition, records)| {
            records.into_iter().map(move |r| crate::kafka::KafkaRecord {
                // Records name their topic; the map key (`topic-partition`) is the fallback.
                topic: r.topic.unwrap_or_else(|| {
                    topic_partition
                        .rsplit_once('-')
                        .map_or(topic_partition.clone(), |(t, _)| t.to_string())
                }),
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
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_log_level_names_map_to_tracing_levels() {
        assert_eq!(log_level(Some("DEBUG")), tracing::Level::DEBUG);
        assert_eq!(log_level(Some("warn")), tracing::Level::WARN);
        assert_eq!(log_level(Some("FATAL")), tracing::Level::ERROR);
        assert_eq!(log_level(Some("TRACE")), tracing::Level::TRACE);
        assert_eq!(log_level(None), tracing::Level::INFO);
        assert_eq!(log_level(Some("loud")), tracing::Level::INFO);
    }
}
