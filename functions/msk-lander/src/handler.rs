//! The invocation: an MSK event's records, landed by [`Lander::land`] on a blocking thread. Any
//! storage or publish failure fails the whole invocation, so the event source mapping retries the
//! batch; the keys and bytes are a pure function of the records, which makes the retry harmless.

use bondlake_core::events::EventSink;
use bondlake_core::failure::HandleError;
use bondlake_core::kafka::{Lander, Topics};
use bondlake_core::store::ObjectStore;
use bondlake_core::vars::Vars;
use bondlake_lambda::{FunctionError, KafkaBatch};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// The function's configuration, from its environment (README, "msk-lander").
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where landed objects go.
    pub raw_bucket: String,
    /// Where quarantined records go (under `quarantine/kafka/`).
    pub processed_bucket: String,
    /// The `pipeline-events` topic (`stdout` prints events instead).
    pub events_topic_arn: String,
    /// The topic table's TOML; the built-in table when absent.
    pub topics_toml: Option<String>,
    /// A folder of contract files; the built-in contracts when absent.
    pub contracts_dir: Option<PathBuf>,
}

impl Settings {
    /// Reads the settings through `var` (the environment); every error names the variable.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, HandleError> {
        let vars = Vars::new(var);
        let need = |name: &str| vars.required(name).map_err(HandleError::Config);
        Ok(Settings {
            raw_bucket: need("RAW_BUCKET")?,
            processed_bucket: need("PROCESSED_BUCKET")?,
            events_topic_arn: need("PIPELINE_EVENTS_TOPIC_ARN")?,
            topics_toml: vars.get("TOPICS"),
            contracts_dir: vars.get("CONTRACTS_DIR").map(PathBuf::from),
        })
    }

    /// The lander these settings describe.
    pub fn lander(&self) -> Result<Lander, HandleError> {
        let topics = match &self.topics_toml {
            Some(text) => Topics::from_toml(text, "TOPICS"),
            None => Ok(Topics::builtin()),
        };
        topics
            .and_then(|t| Lander::new(t, self.contracts_dir.as_deref(), &self.raw_bucket))
            .map_err(|e| HandleError::Config(e.to_string()))
    }
}

/// What every invocation shares.
pub struct State {
    pub lander: Lander,
    pub raw: Arc<dyn ObjectStore>,
    pub quarantine: Arc<dyn ObjectStore>,
    pub events: Arc<dyn EventSink>,
}

/// The Lambda handler.
pub async fn handle(
    state: Arc<State>,
    event: LambdaEvent<KafkaBatch>,
) -> Result<Value, FunctionError> {
    tracing::info!(request_id = %event.context.request_id, "invocation");
    let KafkaBatch(records) = event.payload;
    tokio::task::spawn_blocking(move || run(&state, &records))
        .await
        .map_err(|e| FunctionError(HandleError::Retryable(format!("worker thread: {e}"))))?
}

/// Lands the records; the response lists each topic-partition's outcome.
pub fn run(
    state: &State,
    records: &[bondlake_core::kafka::KafkaRecord],
) -> Result<Value, FunctionError> {
    let landed = state
        .lander
        .land(
            records,
            state.raw.as_ref(),
            state.quarantine.as_ref(),
            state.events.as_ref(),
        )
        .map_err(|e| {
            tracing::error!(error = %e, retryable = e.is_retryable(), "batch not landed");
            FunctionError(if e.is_retryable() {
                HandleError::Retryable(e.to_string())
            } else {
                HandleError::Config(e.to_string())
            })
        })?;
    for l in &landed {
        let k = l.event.kafka();
        tracing::info!(
            topic = k.map_or("", |k| k.topic.as_str()),
            partition = k.map_or(0, |k| k.partition),
            records = l.event.rows_read,
            landed = l.event.rows_ok,
            quarantined = l.event.rows_rejected,
            key = l.key.as_deref().unwrap_or(""),
            "landed"
        );
    }
    Ok(json!({
        "landed": landed.iter().map(|l| json!({
            "key": l.key,
            "quarantine": l.quarantine_key,
            "records": l.event.rows_read,
            "landed": l.event.rows_ok,
            "quarantined": l.event.rows_rejected,
        })).collect::<Vec<_>>()
    }))
}

#[cfg(test)]
mod tests {
    //! The lander over the sample events in `events/`, with folders standing in for the buckets
    //! (the end-to-end run against an S3-protocol server is in `tests/tests/kafka.rs`).

    use super::*;
    use bondlake_core::events::JsonLinesSink;
    use bondlake_core::store::LocalStore;
    use bondlake_lambda::kafka_records;

    fn state(dir: &std::path::Path) -> State {
        // The settings `sam local invoke --env-vars events/env.json` gives the function.
        let env = bondlake_core::vars::sam_env_vars(
            include_str!("../../../events/env.json"),
            "MskLanderFunction",
        )
        .expect("env.json");
        let settings = Settings::from_vars(&|name| env.get(name).cloned()).expect("settings");
        State {
            lander: settings.lander().expect("lander"),
            raw: Arc::new(LocalStore::new(dir.join("raw"))),
            quarantine: Arc::new(LocalStore::new(dir.join("processed"))),
            events: Arc::new(JsonLinesSink::new(dir.join("events.jsonl"))),
        }
    }

    fn records(json: &str) -> Vec<bondlake_core::kafka::KafkaRecord> {
        kafka_records(serde_json::from_str(json).expect("JSON")).expect("an MSK event")
    }

    #[test]
    fn the_sample_batches_land_and_the_poison_record_is_quarantined() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = state(dir.path());
        let out = run(
            &s,
            &records(include_str!("../../../events/msk-holdings.json")),
        )
        .expect("ok");
        let landed = out["landed"].as_array().expect("array");
        assert_eq!(landed.len(), 2, "two partitions: {out}");
        assert!(landed.iter().all(|l| l["quarantined"] == 0));
        let out = run(
            &s,
            &records(include_str!("../../../events/msk-poison.json")),
        )
        .expect("ok");
        let landed = out["landed"].as_array().expect("array");
        let poisoned: u64 = landed
            .iter()
            .map(|l| l["quarantined"].as_u64().unwrap_or(0))
            .sum();
        let good: u64 = landed
            .iter()
            .map(|l| l["landed"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!((good, poisoned), (2, 1), "{out}");
        let out = run(&s, &records(include_str!("../../../events/msk-empty.json"))).expect("ok");
        assert_eq!(out["landed"], json!([]));
    }

    #[test]
    fn settings_name_the_missing_variable() {
        let e = Settings::from_vars(&|_| None)
            .expect_err("missing")
            .to_string();
        assert_eq!(e, "configuration: RAW_BUCKET is not set");
    }
}
