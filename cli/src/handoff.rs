//! `bondlake handoff`: one handed-off object processed to the end, as the EMR step runs it (and
//! as emr-launcher's local backend does in `bondlake run`): csv-processor's engine, contract,
//! profile and output keys, with no deadline. `bondlake emr-step` prints the step itself.

use crate::s3::{Session, split_url};
use bondlake_core::events::{EventSink, JsonLinesSink, StdoutSink};
use bondlake_core::processor::{Processor, Settings, read_handoff};
use bondlake_core::store::{LocalStore, ObjectStore};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct HandoffArgs {
    /// The hand-off request: `s3://processed-bucket/handoffs/....json`, or with `--root` its key
    /// in the local lake (`handoffs/....json`).
    #[arg(long)]
    request: String,
    /// The local lake (ROOT/raw the raw bucket, ROOT the processed one), for a local request.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Folder of contract files: those the Lambda ran with (the artifacts bucket's `contracts/`).
    #[arg(long)]
    contracts: Option<PathBuf>,
    /// Where the `processed` event goes: the pipeline-events topic's ARN, or `stdout`.
    #[arg(long, default_value = "stdout")]
    events_topic_arn: String,
    /// S3-protocol endpoint for `s3://` requests (e.g. `bondlake s3-server`'s); AWS when absent.
    #[arg(long)]
    endpoint_url: Option<String>,
}

/// Where the request's raw bucket is: S3 (or an S3-protocol server), or a local lake's raw/.
enum Buckets {
    S3(Session),
    Local(LocalStore),
}

impl Buckets {
    fn raw(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        match self {
            Buckets::S3(session) => Arc::new(session.store(bucket)),
            Buckets::Local(raw) => Arc::new(raw.clone()),
        }
    }
}

pub fn run(a: HandoffArgs) -> Result<ExitCode, String> {
    let (buckets, processed, key): (Buckets, Arc<dyn ObjectStore>, String) =
        match (split_url(&a.request), &a.root) {
            (Some((bucket, key)), _) => {
                let session = Session::connect(a.endpoint_url.as_deref())?;
                let processed = Arc::new(session.store(bucket));
                (Buckets::S3(session), processed, key.to_string())
            }
            (None, Some(root)) => (
                Buckets::Local(LocalStore::new(root.join("raw"))),
                Arc::new(LocalStore::new(root)),
                a.request.clone(),
            ),
            (None, None) => {
                return Err(format!(
                    "--request {}: an s3:// location, or a key with --root",
                    a.request
                ));
            }
        };
    // The topic's client blocks on its session's runtime, so the session lives as long as the
    // run: a temporary one would be dropped, and its runtime with it, before the event is sent.
    let topic_session;
    let events: Arc<dyn EventSink> = match (&a.root, a.events_topic_arn.as_str(), &buckets) {
        (Some(root), "stdout", _) => Arc::new(JsonLinesSink::new(crate::local::events_path(root))),
        (_, "stdout", _) => Arc::new(StdoutSink),
        (_, arn, Buckets::S3(session)) => session.events(arn)?,
        (_, arn, Buckets::Local(_)) => {
            topic_session = Session::connect(None)?;
            topic_session.events(arn)?
        }
    };
    let request = read_handoff(processed.as_ref(), &key).map_err(|e| e.to_string())?;
    let processed_bucket = split_url(&a.request).map_or(crate::local::PROCESSED_BUCKET, |(b, _)| b);
    let mut settings = Settings::new(&request.source.bucket, processed_bucket);
    settings.contracts_dir = a.contracts.clone();
    let processor = Processor::new(
        settings,
        buckets.raw(&request.source.bucket),
        processed,
        events,
    )
    .map_err(|e| e.to_string())?;
    match processor.run_handoff(&request).map_err(|e| e.to_string())? {
        Some(event) => {
            eprintln!(
                "bondlake handoff: {} ({}): {} records read, {} clean, {} quarantined; manifest {}",
                request.source.key,
                event.kind().as_str(),
                event.rows_read,
                event.rows_ok,
                event.rows_rejected,
                event.manifest.as_deref().unwrap_or("none"),
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "bondlake handoff: {} was replaced since its hand-off; the new version has its own event",
                request.source.key
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(clap::Args)]
pub struct EmrStepArgs {
    /// The request the step runs: `s3://processed-bucket/handoffs/....json`,
    /// `.../backfills/<id>.json` or `.../weeklies/<id>.json`.
    #[arg(long)]
    request: String,
    /// Where the bundle is: `s3://artifacts-bucket/bondlake/` (the stack's ArtifactsBucketName).
    #[arg(long)]
    artifacts: String,
    /// The pipeline-events topic the step publishes to (`stdout` prints the events).
    #[arg(long, default_value = "stdout")]
    events_topic_arn: String,
    /// The run's name (its scratch folder on the node; the launcher's are
    /// `bondlake-<id>-a<attempt>`).
    #[arg(long, default_value = "bondlake-manual-a1")]
    name: String,
    /// S3-protocol endpoint to read the request from (e.g. `bondlake s3-server`'s).
    #[arg(long)]
    endpoint_url: Option<String>,
}

/// `bondlake emr-step`: the arguments of `command-runner.jar` that the launcher submits for a
/// request, as JSON (for `aws emr add-steps`, or to try the step's exact script elsewhere).
pub fn emr_step(a: EmrStepArgs) -> Result<ExitCode, String> {
    use bondlake_core::launch::{Job, Work};
    let (bucket, key) = split_url(&a.request)
        .filter(|(_, k)| !k.is_empty())
        .ok_or_else(|| format!("--request {}: not s3://bucket/key", a.request))?;
    let session = Session::connect(a.endpoint_url.as_deref())?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut session
            .store(bucket)
            .open(key)
            .map_err(|e| format!("{}: {e}", a.request))?,
        &mut text,
    )
    .map_err(|e| format!("{}: {e}", a.request))?;
    let work: Work = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{}: not a hand-off, backfill or weekly request: {e}",
            a.request
        )
    })?;
    let job = Job {
        handoff_event_id: String::new(),
        attempt: 1,
        name: a.name,
        request_key: key.to_string(),
        request_location: a.request.clone(),
        work,
    };
    let step = bondlake_emr::StepCommand {
        artifacts: a.artifacts,
        events_topic_arn: a.events_topic_arn,
    };
    println!(
        "{}",
        serde_json::to_string(&step.args(&job)).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}
