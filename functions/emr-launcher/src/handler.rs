//! The invocation: `handoff` events from the pipeline-events topic (through the launcher's queue,
//! whose subscription lets only `kind = handoff` through), EMR state changes from EventBridge,
//! the sweep's schedule, retries by hand, and backfills (`{"backfill": {"prefix": …, "from": …,
//! "to": …}}`: one EMR job over the raw objects they select), and the weekly schedule's
//! `{"weekly": {"scheduled": …}}` (the weekly job, once per scheduled time). Each is launched once
//! ([`bondlake_core::launch`]); a failure worth retrying (throttling, storage) goes back to the
//! queue, anything else to its dead-letter queue for a person.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use bondlake_core::backfill::BackfillRequest;
use bondlake_core::events::{self, EventError};
use bondlake_core::failure::HandleError;
use bondlake_core::launch::{Launched, Launcher, StateChange};
use bondlake_core::vars::Vars;
use bondlake_core::weekly::WeeklyRequest;
use bondlake_emr::{ClusterShape, StepCommand, log_location};
use bondlake_lambda::{FunctionError, TopicDelivery, TopicMessage, topic_messages};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Where hand-offs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSettings {
    /// A cluster per hand-off, of this shape.
    Transient(ClusterShape),
    /// Steps on this running cluster.
    Steps {
        /// The cluster's id (`j-…`).
        cluster_id: String,
    },
}

/// The function's configuration, from its environment (template.yaml sets every variable).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The raw bucket: what a backfill selects from.
    pub raw_bucket: String,
    /// The processed bucket: hand-off requests, claims, outputs.
    pub processed_bucket: String,
    /// The `pipeline-events` topic (`stdout` prints events instead).
    pub events_topic_arn: String,
    /// Where hand-offs run.
    pub backend: BackendSettings,
    /// The step every backend submits.
    pub step: StepCommand,
    /// Where EMR writes cluster logs.
    pub log_uri: String,
    /// A claim older than this with no manifest is reported stuck by the sweep.
    pub stuck_after: Duration,
    /// The weekly job's Hive database, and where a new one keeps its tables.
    pub hive: Hive,
}

/// The weekly job's Hive database (`HIVE_DATABASE`, `HIVE_DATABASE_LOCATION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hive {
    /// The database's name.
    pub database: String,
    /// Where a new database keeps its tables; empty: the metastore's default.
    pub location: String,
}

impl Default for Hive {
    fn default() -> Self {
        Hive {
            database: "bondlake".into(),
            location: String::new(),
        }
    }
}

impl Settings {
    /// Reads the settings through `var`; every error names the variable.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, HandleError> {
        let vars = Vars::new(var);
        let need = |name: &str| vars.required(name).map_err(HandleError::Config);
        let number =
            |name: &str, default: u64| vars.number(name, default).map_err(HandleError::Config);
        let log_uri = need("EMR_LOG_URI")?;
        let backend = match vars
            .get("EMR_BACKEND")
            .as_deref()
            .unwrap_or("transient_cluster")
        {
            "transient_cluster" => {
                let seed = ClusterShape::default();
                BackendSettings::Transient(ClusterShape {
                    release_label: vars.get("EMR_RELEASE_LABEL").unwrap_or(seed.release_label),
                    primary_type: vars
                        .get("EMR_PRIMARY_INSTANCE_TYPE")
                        .unwrap_or(seed.primary_type),
                    core_type: vars.get("EMR_CORE_INSTANCE_TYPE").unwrap_or(seed.core_type),
                    core_count: number("EMR_CORE_INSTANCE_COUNT", seed.core_count as u64)?
                        .clamp(1, 256) as i32,
                    spot: vars.get("EMR_CORE_SPOT").is_some_and(|v| v == "true"),
                    idle_timeout_seconds: number(
                        "EMR_IDLE_TIMEOUT_SECONDS",
                        seed.idle_timeout_seconds as u64,
                    )?
                    .clamp(60, 7 * 86_400) as i64,
                    subnet_ids: vars
                        .get("EMR_SUBNET_IDS")
                        .map(|s| {
                            s.split(',')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default(),
                    service_role: need("EMR_SERVICE_ROLE")?,
                    instance_profile: need("EMR_INSTANCE_PROFILE")?,
                    log_uri: log_uri.clone(),
                })
            }
            "steps" => BackendSettings::Steps {
                cluster_id: need("EMR_CLUSTER_ID")?,
            },
            other => {
                return Err(HandleError::Config(format!(
                    "EMR_BACKEND `{other}`: transient_cluster or steps"
                )));
            }
        };
        let events_topic_arn = need("PIPELINE_EVENTS_TOPIC_ARN")?;
        Ok(Settings {
            raw_bucket: need("RAW_BUCKET")?,
            processed_bucket: need("PROCESSED_BUCKET")?,
            step: StepCommand {
                artifacts: need("ARTIFACTS")?,
                events_topic_arn: events_topic_arn.clone(),
            },
            events_topic_arn,
            backend,
            log_uri,
            stuck_after: Duration::from_secs(number("STUCK_AFTER_MINUTES", 240)?.max(1) * 60),
            hive: Hive {
                database: vars
                    .get("HIVE_DATABASE")
                    .unwrap_or_else(|| Hive::default().database),
                location: vars.get("HIVE_DATABASE_LOCATION").unwrap_or_default(),
            },
        })
    }
}

/// What one invocation needs, built once per container.
pub struct State {
    /// Claims, submits and reports.
    pub launcher: Launcher,
    /// The raw bucket a backfill selects from.
    pub raw_bucket: String,
    /// The processed bucket the weekly job reads and writes.
    pub processed_bucket: String,
    /// The weekly job's Hive database.
    pub hive: Hive,
    /// The sweep's bound.
    pub stuck_after: Duration,
    /// Where EMR writes cluster logs (to point a failure's notice at its step's log).
    pub log_uri: String,
}

/// What the function is invoked with (the runtime deserialises it through [`invocation`]).
#[derive(Debug, serde::Deserialize)]
#[serde(try_from = "Value")]
pub enum Invocation {
    /// Hand-off events from the topic: through the queue, or an SNS subscription.
    Topic(TopicDelivery),
    /// An EMR step or cluster state change (EventBridge `aws.emr`).
    Emr(StateChange),
    /// A hand-off sent again, after its attempt failed: `{"retry": {"handoff_event_id": …,
    /// "request": …}}` (the `launch_failed` notice gives the command).
    Retry {
        /// The hand-off event's id.
        handoff_event_id: String,
        /// The hand-off request's location.
        request: String,
    },
    /// The schedule's `{"sweep": {}}`.
    Sweep,
    /// `{"backfill": {"prefix": "holdings/", "from": "2026-11-01", "to": "2026-11-30",
    /// "dataset": "investor_holdings", "label": ""}}`, every field optional: the raw objects
    /// under the prefix last written on those days (UTC), run again by one EMR job.
    Backfill(BackfillSelection),
    /// The weekly schedule's `{"weekly": {"scheduled": "<aws.scheduler.scheduled-time>"}}`
    /// (`label` to run the same time again on purpose): the weekly job, once per scheduled time.
    Weekly(WeeklyRun),
}

/// Which weekly run an invocation asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyRun {
    /// When the schedule meant it to run (RFC 3339).
    pub scheduled: String,
    /// A new label runs the same scheduled time again on purpose.
    #[serde(default)]
    pub label: String,
}

/// What a backfill invocation selects (the raw bucket is the stack's).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillSelection {
    /// Only keys under this prefix.
    #[serde(default)]
    pub prefix: String,
    /// The first day (YYYY-MM-DD) an object was last written on.
    pub from: Option<String>,
    /// The last day, inclusive.
    pub to: Option<String>,
    /// Only this dataset's objects.
    pub dataset: Option<String>,
    /// A new label runs the same selection again on purpose (after a fix).
    #[serde(default)]
    pub label: String,
}

impl TryFrom<Value> for Invocation {
    type Error = HandleError;
    fn try_from(payload: Value) -> Result<Self, HandleError> {
        invocation(payload)
    }
}

/// Tells the four kinds of invocation apart.
pub fn invocation(payload: Value) -> Result<Invocation, HandleError> {
    if payload.get("source").and_then(Value::as_str) == Some("aws.emr") {
        return emr_change(&payload).map(Invocation::Emr);
    }
    if let Some(retry) = payload.get("retry") {
        let field = |name: &str| {
            retry
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .ok_or_else(|| HandleError::InvalidInput(format!("retry: `{name}` is missing")))
        };
        return Ok(Invocation::Retry {
            handoff_event_id: field("handoff_event_id")?,
            request: field("request")?,
        });
    }
    if payload.get("sweep").is_some() {
        return Ok(Invocation::Sweep);
    }
    if let Some(selection) = payload.get("backfill") {
        return serde_json::from_value(selection.clone())
            .map(Invocation::Backfill)
            .map_err(|e| HandleError::InvalidInput(format!("backfill: {e}")));
    }
    if let Some(run) = payload.get("weekly") {
        return serde_json::from_value(run.clone())
            .map(Invocation::Weekly)
            .map_err(|e| HandleError::InvalidInput(format!("weekly: {e}")));
    }
    topic_messages(payload).map(Invocation::Topic)
}

/// The state change an `EMR Step Status Change` or `EMR Cluster State Change` event reports
/// (EventBridge's reference: `detail` holds `name`, `clusterId`, `stepId` for steps, `state`,
/// `message`, and for clusters a `stateChangeReason` JSON text with `code` and `message`).
pub fn emr_change(payload: &Value) -> Result<StateChange, HandleError> {
    let detail = payload
        .get("detail")
        .ok_or_else(|| HandleError::InvalidInput("aws.emr event without detail".into()))?;
    let text = |name: &str| {
        detail
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let cluster = text("clusterId");
    let step = text("stepId");
    let mut message = text("message");
    if let Some(reason) = detail
        .get("stateChangeReason")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        let part = |k: &str| {
            reason
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (code, why) = (part("code"), part("message"));
        if !code.is_empty() || !why.is_empty() {
            message = format!("{message} ({code}: {why})").trim().to_string();
        }
    }
    Ok(StateChange {
        name: text("name"),
        id: if step.is_empty() {
            cluster
        } else {
            format!("{cluster}/{step}")
        },
        state: text("state"),
        message,
        logs: None,
    })
}

/// Runs the invocation on a blocking thread (the stores and EMR block on the runtime).
pub async fn handle(
    state: Arc<State>,
    event: LambdaEvent<Invocation>,
) -> Result<Value, FunctionError> {
    tracing::info!(request_id = %event.context.request_id, "invocation");
    let invocation = event.payload;
    tokio::task::spawn_blocking(move || run(&state, invocation))
        .await
        .map_err(|e| FunctionError(HandleError::Retryable(format!("worker thread: {e}"))))?
        .map_err(FunctionError)
}

/// What each delivered message came to.
#[derive(Debug, Default)]
pub struct Batch {
    /// The partial batch response: every failed message back to the queue.
    pub response: SqsBatchResponse,
    /// The failures, by message.
    pub failures: Vec<(String, HandleError)>,
    /// What each launched message did.
    pub launched: Vec<Launched>,
}

/// Handles one invocation.
pub fn run(state: &State, invocation: Invocation) -> Result<Value, HandleError> {
    match invocation {
        Invocation::Topic(TopicDelivery::Sqs(messages)) => {
            let batch = launch_all(&state.launcher, &messages);
            serde_json::to_value(&batch.response).map_err(|e| HandleError::Config(e.to_string()))
        }
        Invocation::Topic(TopicDelivery::Sns(messages)) => {
            let batch = launch_all(&state.launcher, &messages);
            match batch.failures.into_iter().next() {
                Some((_, e)) => Err(e),
                None => Ok(json!({ "launched": batch.launched.len() })),
            }
        }
        Invocation::Emr(mut change) => {
            if let Some((cluster, step)) = change.id.split_once('/') {
                change.logs =
                    log_location(&state.log_uri, cluster).map(|l| format!("{l}steps/{step}/"));
            } else {
                change.logs = log_location(&state.log_uri, &change.id);
            }
            let told = state.launcher.state_changed(&change)?;
            Ok(json!({ "told": told.map(|e| e.kind().as_str()) }))
        }
        Invocation::Retry {
            handoff_event_id,
            request,
        } => {
            let launched = state.launcher.launch(&handoff_event_id, &request)?;
            Ok(json!({ "launched": format!("{launched:?}") }))
        }
        Invocation::Sweep => {
            let stuck = state.launcher.sweep(state.stuck_after)?;
            Ok(json!({ "stuck": stuck.len() }))
        }
        Invocation::Backfill(s) => {
            let request = BackfillRequest::new(
                &state.raw_bucket,
                &s.prefix,
                s.from.as_deref(),
                s.to.as_deref(),
                s.dataset.as_deref(),
                &s.label,
            )?;
            let launched = state.launcher.backfill(&request)?;
            Ok(json!({
                "backfill": request.id(),
                "selection": request.describe(),
                "launched": format!("{launched:?}"),
            }))
        }
        Invocation::Weekly(run) => {
            let request = WeeklyRequest::new(
                &state.processed_bucket,
                &run.scheduled,
                &state.hive.database,
                &state.hive.location,
                &run.label,
            )?;
            let launched = state.launcher.weekly(&request)?;
            Ok(json!({
                "weekly": request.id(),
                "run": request.describe(),
                "launched": format!("{launched:?}"),
            }))
        }
    }
}

/// Launches the hand-off each message carries; other kinds (the subscription's filter keeps
/// them out) and newer event versions are skipped, not failed.
pub fn launch_all(launcher: &Launcher, messages: &[TopicMessage]) -> Batch {
    let mut batch = Batch::default();
    for m in messages {
        let result = match events::parse(&m.message) {
            Ok(event) => match event.handoff() {
                Some(h) => launcher.launch(&event.id(), &h.request).map(Some),
                None => Ok(None),
            },
            Err(e @ EventError::UnknownVersion { .. }) => {
                tracing::warn!(message_id = %m.message_id, error = %e, "skipped");
                Ok(None)
            }
            Err(e) => Err(HandleError::InvalidInput(format!(
                "message {}: {e}",
                m.message_id
            ))),
        };
        match result {
            Ok(Some(launched)) => batch.launched.push(launched),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(message_id = %m.delivery_id, error_type = e.error_type(), error = %e, "message failed");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = m.delivery_id.clone();
                batch.response.batch_item_failures.push(failure);
                batch.failures.push((m.delivery_id.clone(), e));
            }
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
    }

    #[test]
    fn emr_state_changes_name_their_run_state_and_reason() {
        let Invocation::Emr(step) = invocation(fixture("emr-step-failed.json")).expect("step")
        else {
            panic!("not an EMR change")
        };
        assert_eq!(step.name, "bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a1");
        assert_eq!(step.id, "j-2AXXXXXXGAPLF/s-1XXXXXXXXW4A8");
        assert_eq!(step.state, "FAILED");
        assert!(step.message.contains("failed"), "{}", step.message);
        let Invocation::Emr(cluster) =
            invocation(fixture("emr-cluster-terminated-with-errors.json")).expect("cluster")
        else {
            panic!("not an EMR change")
        };
        assert_eq!(cluster.state, "TERMINATED_WITH_ERRORS");
        assert!(
            cluster.message.contains("STEP_FAILURE"),
            "{}",
            cluster.message
        );
        let Invocation::Emr(done) = invocation(fixture("emr-step-completed.json")).expect("done")
        else {
            panic!("not an EMR change")
        };
        assert_eq!(done.state, "COMPLETED");
    }

    #[test]
    fn retries_and_the_sweep_are_told_apart_from_topic_deliveries() {
        let retry =
            json!({"retry": {"handoff_event_id": "ab12", "request": "s3://p/handoffs/x.json"}});
        assert!(matches!(invocation(retry), Ok(Invocation::Retry { .. })));
        assert!(matches!(
            invocation(json!({"retry": {}})),
            Err(HandleError::InvalidInput(_))
        ));
        assert!(matches!(
            invocation(json!({"sweep": {}})),
            Ok(Invocation::Sweep)
        ));
        assert!(matches!(
            invocation(fixture("sqs-handoffs.json")),
            Ok(Invocation::Topic(TopicDelivery::Sqs(_)))
        ));
        let Ok(Invocation::Backfill(selection)) = invocation(
            json!({"backfill": {"prefix": "holdings/", "from": "2026-11-01", "dataset": "investor_holdings"}}),
        ) else {
            panic!("not a backfill")
        };
        assert_eq!(selection.prefix, "holdings/");
        assert_eq!(selection.to, None);
        let e = invocation(json!({"backfill": {"form": "2026-11-01"}})).expect_err("typo");
        assert!(e.to_string().contains("form"), "{e}");
        let Ok(Invocation::Weekly(run)) =
            invocation(fixture("scheduler-weekly.json")).map_err(|e| e.to_string())
        else {
            panic!("not a weekly run")
        };
        assert_eq!(run.scheduled, "2026-12-05T11:00:00Z");
        assert!(
            invocation(json!({"weekly": {}})).is_err(),
            "the time is needed"
        );
    }

    #[test]
    fn the_settings_default_to_the_seed_cluster_and_name_a_bad_variable() {
        let env = |name: &str| {
            match name {
                "RAW_BUCKET" => Some("raw"),
                "PROCESSED_BUCKET" => Some("processed"),
                "PIPELINE_EVENTS_TOPIC_ARN" => {
                    Some("arn:aws:sns:us-east-1:123456789012:pipeline-events-dev")
                }
                "ARTIFACTS" => Some("s3://artifacts/bondlake/"),
                "EMR_LOG_URI" => Some("s3://logs/emr/"),
                "EMR_SERVICE_ROLE" => Some("bondlake-dev-emr-service"),
                "EMR_INSTANCE_PROFILE" => Some("bondlake-dev-emr-nodes"),
                _ => None,
            }
            .map(String::from)
        };
        let s = Settings::from_vars(&env).expect("settings");
        let BackendSettings::Transient(shape) = &s.backend else {
            panic!("transient by default")
        };
        assert_eq!(
            (
                shape.primary_type.as_str(),
                shape.core_type.as_str(),
                shape.core_count,
                shape.spot
            ),
            ("m5.xlarge", "c5.xlarge", 4, false)
        );
        assert_eq!(shape.idle_timeout_seconds, 3600);
        let bad = |name: &str| {
            if name == "EMR_BACKEND" {
                Some("serverless".to_string())
            } else {
                env(name)
            }
        };
        let e = Settings::from_vars(&bad).expect_err("unknown backend");
        assert!(e.to_string().contains("EMR_BACKEND"), "{e}");
    }
}
