//! The invocation: the manifests an S3 notification (or an SQS batch of them) names, each loaded
//! by [`load_and_report`] on a blocking thread. A failure worth retrying (throttling, an
//! unreachable warehouse) goes back to the queue; any other outcome is an event, not a retry loop.
//!
//! The same function, configured with `WAREHOUSE=mysql`, is the weekly chain's export (the Sqoop
//! export it replaces): cued by the weekly job's result (`weeklies/<id>.result.json`, its S3
//! notification through the weekly-results queue) or invoked with `{"weekly_export": {}}`, it
//! loads every weekly_trends manifest its MySQL ledger does not hold yet, oldest first.

use aws_lambda_events::event::sqs::SqsEvent;
use bondlake_core::contract::{self, Contract};
use bondlake_core::events::{EventSink, Outcome, PipelineEvent};
use bondlake_core::failure::HandleError;
use bondlake_core::manifest::SourceRef;
use bondlake_core::processor::ObjectCreated;
use bondlake_core::store::ObjectStore;
use bondlake_core::vars::Vars;
use bondlake_core::warehouse::{Loader, STAGE, Warehouse, load_and_report};
use bondlake_lambda::FunctionError;
use bondlake_lambda::{BatchOutcome, Incoming, for_each_message, parse};
use bondlake_warehouse_redshift::{Redshift, RedshiftTarget};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Which warehouse the function loads into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseKind {
    /// Redshift, through the Data API (`target`).
    Redshift,
    /// MySQL (RDS), the weekly trends' export: the connection from the Secrets Manager secret
    /// `secret_arn` (RDS's JSON: host, port, username, password, dbname).
    MySql {
        /// The secret's ARN.
        secret_arn: String,
        /// RDS's CA bundle (a PEM file shipped with the function): TLS, verified, when given.
        tls_ca: Option<PathBuf>,
    },
}

/// The function's configuration, from its environment (README, "warehouse-loader").
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which warehouse.
    pub warehouse: WarehouseKind,
    /// Where and as whom to load (Redshift's; for MySQL only the bucket is read).
    pub target: RedshiftTarget,
    /// The schema the tables live in.
    pub schema: String,
    /// The `pipeline-events` topic (`stdout` prints events instead).
    pub events_topic_arn: String,
    /// A folder of contract files; the built-in contracts when absent.
    pub contracts_dir: Option<PathBuf>,
}

impl Settings {
    /// Reads the settings through `var` (the environment); every error names the variable.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, HandleError> {
        let vars = Vars::new(var);
        let need = |name: &str| vars.required(name).map_err(HandleError::Config);
        let some = |name: &str| vars.get(name);
        if some("WAREHOUSE").as_deref() == Some("mysql") {
            let mut settings = Settings::local(&need("PROCESSED_BUCKET")?);
            settings.warehouse = WarehouseKind::MySql {
                secret_arn: need("MYSQL_SECRET_ARN")?,
                tls_ca: some("MYSQL_TLS_CA").map(PathBuf::from),
            };
            settings.events_topic_arn = need("PIPELINE_EVENTS_TOPIC_ARN")?;
            settings.contracts_dir = some("CONTRACTS_DIR").map(PathBuf::from);
            return Ok(settings);
        }
        if let Some(other) = some("WAREHOUSE").filter(|w| w != "redshift") {
            return Err(HandleError::Config(format!(
                "WAREHOUSE `{other}`: redshift or mysql"
            )));
        }
        Ok(Settings {
            warehouse: WarehouseKind::Redshift,
            target: RedshiftTarget {
                cluster_id: some("REDSHIFT_CLUSTER_ID"),
                workgroup: some("REDSHIFT_WORKGROUP"),
                database: need("REDSHIFT_DATABASE")?,
                db_user: some("REDSHIFT_DB_USER"),
                secret_arn: some("REDSHIFT_SECRET_ARN"),
                copy_role: some("REDSHIFT_COPY_ROLE").unwrap_or_else(|| "default".into()),
                bucket: need("PROCESSED_BUCKET")?,
            },
            schema: some("WAREHOUSE_SCHEMA").unwrap_or_else(|| "bondlake".into()),
            events_topic_arn: need("PIPELINE_EVENTS_TOPIC_ARN")?,
            contracts_dir: some("CONTRACTS_DIR").map(PathBuf::from),
        })
    }

    /// The settings of a local run (`bondlake run`), which loads from the folder standing in for
    /// the processed bucket `bucket` into a warehouse of its own, not Redshift.
    pub fn local(bucket: &str) -> Self {
        Settings {
            warehouse: WarehouseKind::Redshift,
            target: RedshiftTarget {
                cluster_id: None,
                workgroup: None,
                database: String::new(),
                db_user: None,
                secret_arn: None,
                copy_role: String::new(),
                bucket: bucket.to_string(),
            },
            schema: "bondlake".into(),
            events_topic_arn: "local".into(),
            contracts_dir: None,
        }
    }

    /// Every dataset's contract: only weekly_trends' for the MySQL export.
    pub fn contracts(&self) -> Result<Vec<Contract>, HandleError> {
        let mut all = contract::load_all(self.contracts_dir.as_deref())
            .map_err(|e| HandleError::Config(e.to_string()))?;
        if matches!(self.warehouse, WarehouseKind::MySql { .. }) {
            all.retain(|c| c.dataset == bondlake_core::weekly::TRENDS);
        }
        Ok(all)
    }
}

/// What every invocation shares (generic over the warehouse so tests can stand one in).
pub struct State<W: Warehouse = Redshift> {
    pub settings: Settings,
    pub loader: Mutex<Loader<W>>,
    pub processed: Arc<dyn ObjectStore>,
    pub events: Arc<dyn EventSink>,
}

/// The Lambda handler.
pub async fn handle<W: Warehouse + Send + 'static>(
    state: Arc<State<W>>,
    event: LambdaEvent<Invocation>,
) -> Result<Value, FunctionError> {
    tracing::info!(request_id = %event.context.request_id, "invocation");
    let invocation = event.payload;
    tokio::task::spawn_blocking(move || dispatch(&state, invocation))
        .await
        .map_err(|e| FunctionError(HandleError::Retryable(format!("worker thread: {e}"))))?
}

/// What an invocation does. Exporting to MySQL, whatever arrives is only the cue: the export
/// loads what its ledger lacks, so a batch of result notifications is one export, answered as
/// a whole (no item failures; an error retries the batch, which loads nothing twice).
pub fn dispatch<W: Warehouse>(
    state: &State<W>,
    invocation: Invocation,
) -> Result<Value, FunctionError> {
    let exporting = matches!(state.settings.warehouse, WarehouseKind::MySql { .. });
    match invocation {
        Invocation::WeeklyExport => export_weekly(state),
        Invocation::Manifests(_) if exporting => export_weekly(state).map(|mut done| {
            done["batchItemFailures"] = json!([]);
            done
        }),
        Invocation::Manifests(incoming) => run(state, incoming),
    }
}

/// The invocation, deserialised by the runtime through [`incoming`].
#[derive(Debug, serde::Deserialize)]
#[serde(try_from = "Value")]
pub enum Invocation {
    /// Manifests to load: S3 notifications, an SQS batch of them, `processed` events.
    Manifests(Incoming),
    /// `{"weekly_export": {}}`: every weekly_trends manifest the ledger lacks (a person asking
    /// for the export again, by `aws lambda invoke`).
    WeeklyExport,
}

impl TryFrom<Value> for Invocation {
    type Error = HandleError;
    fn try_from(payload: Value) -> Result<Self, HandleError> {
        if payload.get("weekly_export").is_some() {
            return Ok(Invocation::WeeklyExport);
        }
        incoming(payload).map(Invocation::Manifests)
    }
}

/// Loads, oldest first, every weekly_trends manifest in the processed bucket that the ledger
/// does not hold: the one the weekly job just wrote, and any an earlier export missed. A later
/// trends manifest's rows then win their keys, as they should.
pub fn export_weekly<W: Warehouse>(state: &State<W>) -> Result<Value, FunctionError> {
    let prefix = format!("manifests/{}/", bondlake_core::weekly::TRENDS);
    let keys = state.processed.list(&prefix).map_err(|e| {
        FunctionError(HandleError::storage(
            format_args!("listing {}", state.processed.locate(&prefix)),
            &e,
        ))
    })?;
    let recorded = state
        .loader
        .lock()
        .map_err(|_| FunctionError(HandleError::Retryable("loader lock poisoned".into())))?
        .recorded()
        .map_err(|e| FunctionError(HandleError::Retryable(e.to_string())))?;
    let mut pending = Vec::new();
    for key in keys
        .iter()
        .filter(|k| k.ends_with(".json") && !recorded.contains(*k))
    {
        let finished = match bondlake_core::warehouse::read_manifest(state.processed.as_ref(), key)
        {
            Ok(m) => m.finished_at,
            // Unreadable: the load reports it as load_failed.
            Err(_) => String::new(),
        };
        pending.push((finished, key.clone()));
    }
    pending.sort();
    let mut events = Vec::new();
    for (_, key) in &pending {
        let object = ObjectCreated {
            bucket: state.settings.target.bucket.clone(),
            key: key.clone(),
            etag: None,
            event_time: None,
            sequencer: None,
        };
        events.extend(load_one(state, &object).map_err(FunctionError)?);
    }
    let failed = events.iter().filter(|e| e.load().is_none()).count();
    if failed > 0 {
        // Each load_failed was told, with what to do; the error retries the cue.
        return Err(FunctionError(HandleError::Config(format!(
            "{failed} of {} weekly trends manifests did not load (see their load_failed events)",
            events.len()
        ))));
    }
    Ok(json!({
        "exported": events.len(),
        "events": events.iter().map(summary).collect::<Vec<_>>(),
    }))
}

/// What the function was invoked with: S3 notifications of manifests (direct or through SQS), or
/// `processed` pipeline events delivered by an SNS subscription, each naming its manifest.
pub fn incoming(payload: Value) -> Result<Incoming, HandleError> {
    if payload
        .pointer("/Records/0/EventSource")
        .and_then(Value::as_str)
        == Some("aws:sns")
    {
        return processed_manifests(payload).map(Incoming::S3);
    }
    parse(payload)
}

/// The manifests named by the `processed` events of an SNS delivery; other kinds are not the
/// loader's, and an event of an unknown version is reported and skipped.
fn processed_manifests(payload: Value) -> Result<Vec<ObjectCreated>, HandleError> {
    let mut objects = Vec::new();
    for m in bondlake_lambda::sns_messages(payload)? {
        let message = m.message.as_str();
        let event = match bondlake_core::events::parse(message) {
            Ok(e) => e,
            Err(e @ bondlake_core::events::EventError::UnknownVersion { .. }) => {
                tracing::warn!(error = %e, "pipeline event skipped");
                continue;
            }
            Err(e) => return Err(HandleError::InvalidInput(format!("SNS message: {e}"))),
        };
        if event.kind() != bondlake_core::events::EventKind::Processed {
            continue;
        }
        let location = event.manifest.as_deref().unwrap_or("");
        let Some((bucket, key)) = location
            .strip_prefix("s3://")
            .and_then(|l| l.split_once('/'))
        else {
            return Err(HandleError::InvalidInput(format!(
                "processed event names no s3:// manifest: `{location}`"
            )));
        };
        objects.push(ObjectCreated {
            bucket: bucket.to_string(),
            key: key.to_string(),
            etag: None,
            event_time: None,
            sequencer: None,
        });
    }
    Ok(objects)
}

/// Loads every manifest of the invocation in turn.
pub fn run<W: Warehouse>(state: &State<W>, incoming: Incoming) -> Result<Value, FunctionError> {
    match incoming {
        Incoming::S3(objects) => {
            let mut events = Vec::new();
            for object in &objects {
                events.extend(load_one(state, object).map_err(FunctionError)?);
            }
            Ok(json!({ "events": events.iter().map(summary).collect::<Vec<_>>() }))
        }
        Incoming::Sqs(batch) => serde_json::to_value(load_batch(state, batch)?.response)
            .map_err(|e| FunctionError(HandleError::Config(e.to_string()))),
    }
}

/// Loads the manifests an SQS batch names. Every failed message goes back to the queue: a
/// retryable one is tried again, and one that can never be loaded ends in the dead-letter queue,
/// told to the team now.
pub fn load_batch<W: Warehouse>(
    state: &State<W>,
    batch: SqsEvent,
) -> Result<BatchOutcome, FunctionError> {
    let outcome = for_each_message(batch, |o, _| load_one(state, o).map(|_| ()));
    for (message_id, e) in &outcome.failures {
        if !e.is_retryable() {
            report_unusable(state, message_id, e).map_err(FunctionError)?;
        }
    }
    Ok(outcome)
}

/// Publishes `load_failed` for an SQS message the loader cannot act on (not an S3 notification,
/// another bucket, not a manifest), so the team hears of it before the dead-letter alarm.
fn report_unusable<W: Warehouse>(
    state: &State<W>,
    message_id: &str,
    error: &HandleError,
) -> Result<(), HandleError> {
    let source = SourceRef {
        bucket: String::new(),
        key: format!("SQS message {message_id}"),
        etag: String::new(),
        bytes: 0,
        ..Default::default()
    };
    let mut event = PipelineEvent::new(Outcome::LoadFailed, STAGE, source);
    event.error = Some(format!(
        "{error}; the message goes to the dead-letter queue after its retries"
    ));
    state
        .events
        .publish(&event)
        .map_err(|e| HandleError::Retryable(format!("publishing the event: {e}")))
}

/// Loads one manifest and publishes what happened. An object that is not a manifest of the
/// processed bucket is an invalid input: the notification was misrouted.
fn load_one<W: Warehouse>(
    state: &State<W>,
    object: &ObjectCreated,
) -> Result<Option<PipelineEvent>, HandleError> {
    let bucket = &state.settings.target.bucket;
    if object.bucket != *bucket {
        return Err(HandleError::InvalidInput(format!(
            "s3://{}/{}: an event for bucket `{}`, but this function loads from `{bucket}`",
            object.bucket, object.key, object.bucket
        )));
    }
    if !object.key.starts_with("manifests/") || !object.key.ends_with(".json") {
        return Err(HandleError::InvalidInput(format!(
            "s3://{bucket}/{}: not a manifest (manifests/<dataset>/<name>.json)",
            object.key
        )));
    }
    let mut loader = state
        .loader
        .lock()
        .map_err(|_| HandleError::Retryable("loader lock poisoned".into()))?;
    let event = load_and_report(&mut loader, state.processed.as_ref(), &object.key)
        .map_err(|e| HandleError::Retryable(e.to_string()))?;
    tracing::info!(kind = event.kind().as_str(), manifest = %object.key, error = event.error.as_deref().unwrap_or(""), "load");
    state
        .events
        .publish(&event)
        .map_err(|e| HandleError::Retryable(format!("publishing the event: {e}")))?;
    Ok(Some(event))
}

fn summary(e: &PipelineEvent) -> Value {
    json!({
        "kind": e.kind().as_str(),
        "manifest": e.manifest,
        "load": e.load(),
        "error": e.error,
    })
}

#[cfg(test)]
mod tests {
    //! The handler over the sample events in `events/`, with a stand-in warehouse that records
    //! what it is asked (the Data API itself is tested in `tests/tests/redshift.rs`).

    use super::*;
    use bondlake_core::events::{EventKind, JsonLinesSink};
    use bondlake_core::manifest::SourceRef;
    use bondlake_core::store::LocalStore;
    use bondlake_core::warehouse::{Dialect, LoadJob, Loaded, Rows, WarehouseError};

    /// Loads everything but manifests whose key contains `throttled`, which fail as retryable.
    #[derive(Default)]
    struct Recording {
        loaded: Vec<String>,
    }

    impl Warehouse for Recording {
        fn dialect(&self) -> Dialect {
            Dialect::Redshift
        }
        fn execute(&mut self, _: &str, _: &[&str]) -> Result<(), WarehouseError> {
            Ok(())
        }
        fn query(&mut self, _: &str, _: &[&str]) -> Result<Rows, WarehouseError> {
            Ok(Vec::new())
        }
        fn load(&mut self, job: &LoadJob<'_>) -> Result<Loaded, WarehouseError> {
            if job.manifest_key.contains("throttled") {
                return Err(WarehouseError::transient(
                    "ThrottlingException: Rate exceeded",
                ));
            }
            let m = job.manifest;
            let mut row = vec![Some(m.rows_written.to_string())];
            row.extend(m.control_totals.values().map(|v| Some(v.clone())));
            let staged = vec![row];
            (job.check)(bondlake_core::warehouse::Checkpoint::Staged, &staged)?;
            let fresh = (job.check)(bondlake_core::warehouse::Checkpoint::Fresh, &staged)?;
            (job.check)(bondlake_core::warehouse::Checkpoint::Merged, &staged)?;
            self.loaded.push(job.manifest_key.to_string());
            Ok(Loaded::Merged {
                fresh,
                superseded: 0,
            })
        }
    }

    /// The settings `sam local invoke --env-vars events/env.json` gives the function.
    fn settings() -> Settings {
        let env = bondlake_core::vars::sam_env_vars(
            include_str!("../../../events/env.json"),
            "WarehouseLoaderFunction",
        )
        .expect("env.json");
        Settings::from_vars(&|name| env.get(name).cloned()).expect("settings")
    }

    /// A processed bucket holding one cleaned market file, as `key`'s manifest.
    fn state(dir: &std::path::Path, keys: &[&str]) -> State<Recording> {
        let store = LocalStore::new(dir);
        let contract = bondlake_core::load_dataset("market_daily", None).expect("contract");
        let mut bytes = Vec::new();
        bondlake_testkit::synth::generate(
            &bondlake_testkit::synth::Spec {
                dataset: "market_daily".into(),
                profile: "us".into(),
                rows: 100,
                seed: 1,
                dirty: 0.0,
            },
            &mut bytes,
        )
        .expect("generate");
        let source = SourceRef {
            bucket: "raw".into(),
            key: "market/NYSE/nyse_eod_20261125.csv".into(),
            etag: "e".into(),
            bytes: 1,
            ..Default::default()
        };
        let out = bondlake_core::process(
            &contract,
            None,
            source,
            std::io::Cursor::new(bytes),
            &store,
            &bondlake_core::Options::default(),
        )
        .expect("process");
        let manifest = std::fs::read(dir.join(&out.manifest_key)).expect("manifest");
        for key in keys {
            let path = dir.join(key);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, &manifest).expect("write");
        }
        let settings = settings();
        let contracts = settings.contracts().expect("contracts");
        State {
            settings,
            loader: Mutex::new(
                Loader::new(Recording::default(), "bondlake", &contracts).expect("loader"),
            ),
            processed: Arc::new(store),
            events: Arc::new(JsonLinesSink::new(dir.join("events.jsonl"))),
        }
    }

    #[test]
    fn processed_events_from_sns_name_the_manifests_to_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let payload: Value =
            serde_json::from_str(include_str!("../../../events/sns-pipeline-events.json"))
                .expect("json");
        let keys = ["manifests/market_daily/nyse_eod_20261125-0123456789abcdef.json"];
        let state = state(dir.path(), &keys);
        let response = run(&state, incoming(payload).expect("parse")).expect("run");
        // The processed event's manifest is loaded; the handoff and the version-9 event are not.
        let events = response["events"].as_array().expect("events");
        assert_eq!(events.len(), 1, "{response}");
        assert_eq!(events[0]["kind"], "loaded");
        assert_eq!(
            state.loader.lock().expect("lock").warehouse().loaded,
            vec![keys[0].to_string()]
        );
        let bad = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "not json"}}]});
        assert!(matches!(incoming(bad), Err(HandleError::InvalidInput(_))));
    }

    #[test]
    fn settings_name_the_missing_variable_and_need_no_password() {
        let err = Settings::from_vars(&|_| None).expect_err("nothing set");
        assert!(err.to_string().contains("REDSHIFT_DATABASE"), "{err}");
        let s = settings();
        assert_eq!(s.target.copy_role, "default");
        assert_eq!(s.schema, "bondlake");
        assert!(s.target.secret_arn.is_none() && s.target.db_user.is_none());
    }

    #[test]
    fn an_sqs_batch_of_manifest_notifications_loads_each_and_retries_only_the_throttled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let payload: Value =
            serde_json::from_str(include_str!("../../../events/sqs-manifests.json")).expect("json");
        let keys = [
            "manifests/market_daily/nyse_eod_20261125-0123456789abcdef.json",
            "manifests/market_daily/throttled-0123456789abcdef.json",
        ];
        let state = state(dir.path(), &keys);
        let response = run(&state, parse(payload).expect("parse")).expect("run");
        // Message 1 loaded; 2 throttled (back to the queue); 3 names a Parquet part: not a
        // manifest, so it goes back too, to end in the dead-letter queue, and is told.
        assert_eq!(
            response,
            json!({"batchItemFailures": [
                {"itemIdentifier": "20000000-0000-4000-8000-000000000002"},
                {"itemIdentifier": "20000000-0000-4000-8000-000000000003"}
            ]})
        );
        let mut loader = state.loader.lock().expect("lock");
        assert_eq!(loader.warehouse().loaded, vec![keys[0].to_string()]);
        drop(loader);
        let events = JsonLinesSink::new(dir.path().join("events.jsonl"))
            .read_all()
            .expect("events");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind(), EventKind::Loaded);
        assert_eq!(events[0].stage, "warehouse-loader");
        assert_eq!(events[0].load().expect("load").outcome, "loaded");
        assert_eq!(events[1].kind(), EventKind::LoadFailed);
        assert_eq!(
            events[1].source.key,
            "SQS message 20000000-0000-4000-8000-000000000003"
        );
        assert_eq!(
            events[1].error.as_deref(),
            Some(
                "invalid input: s3://bondlake-dev-processed-123456789012/processed/market_daily/trade_date=2026-11-25/nyse_eod_20261125-0123456789abcdef-0000.parquet: not a manifest (manifests/<dataset>/<name>.json); the message goes to the dead-letter queue after its retries"
            )
        );
    }

    #[test]
    fn messages_the_loader_cannot_act_on_go_to_the_dead_letter_queue_and_are_told() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path(), &[]);
        let good: Value =
            serde_json::from_str(include_str!("../../../events/sqs-manifests.json")).expect("json");
        let s3 = good["Records"][0]["body"].as_str().expect("body");
        let foreign = s3.replace(
            "\"name\": \"bondlake-dev-processed-123456789012\"",
            "\"name\": \"someone-else\"",
        );
        let batch = json!({"Records": [
            {"messageId": "m-not-json", "body": "{not json", "eventSource": "aws:sqs"},
            {"messageId": "m-foreign", "body": foreign, "eventSource": "aws:sqs"},
            {"messageId": "m-no-body", "eventSource": "aws:sqs"}
        ]});
        let response = run(&state, parse(batch).expect("parse")).expect("run");
        assert_eq!(
            response,
            json!({"batchItemFailures": [
                {"itemIdentifier": "m-not-json"},
                {"itemIdentifier": "m-foreign"},
                {"itemIdentifier": "m-no-body"}
            ]})
        );
        let events = JsonLinesSink::new(dir.path().join("events.jsonl"))
            .read_all()
            .expect("events");
        let errors: Vec<&str> = events
            .iter()
            .map(|e| {
                assert_eq!(e.kind(), EventKind::LoadFailed);
                e.error.as_deref().unwrap_or("")
            })
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("invalid input: SQS message m-not-json: not JSON: "),
            "{}",
            errors[0]
        );
        assert_eq!(
            errors[1],
            "invalid input: s3://someone-else/manifests/market_daily/nyse_eod_20261125-0123456789abcdef.json: an event for bucket `someone-else`, but this function loads from `bondlake-dev-processed-123456789012`; the message goes to the dead-letter queue after its retries"
        );
        assert_eq!(
            errors[2],
            "invalid input: SQS message m-no-body has no body; the message goes to the dead-letter queue after its retries"
        );
        assert!(
            state
                .loader
                .lock()
                .expect("lock")
                .warehouse()
                .loaded
                .is_empty()
        );
    }
}
