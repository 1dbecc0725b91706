//! `bondlake backfill`: a backfill's parts over S3, as EMR runs them. The launcher stores the
//! request (`request` does the same by hand); the Spark driver (`emr/backfill.py`) asks for the
//! `plan` on the primary node, runs `object` for each planned object on the executors, and
//! `finish`es with their outcomes; `run` does all of it in turn on this machine (the launcher's
//! local backend). Locally, `bondlake replay` runs a lake's days through the whole chain.

use crate::s3::{Session, split_url};
use bondlake_core::backfill::{self, BackfillRequest, ObjectOutcome, Planned};
use bondlake_core::events::{EventSink, StderrSink, StdoutSink};
use bondlake_core::launch;
use bondlake_core::processor::{Processor, Settings};
use bondlake_core::route::Routes;
use bondlake_core::store::ObjectStore as _;
use clap::Subcommand;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct BackfillArgs {
    #[command(subcommand)]
    command: Step,
}

#[derive(Subcommand)]
enum Step {
    /// Store a backfill request in the processed bucket and print its location (what
    /// emr-launcher does with a `{"backfill": …}` invocation).
    Request {
        /// The raw bucket, and a prefix: `s3://raw-bucket/holdings/`.
        #[arg(long)]
        raw: String,
        /// The processed bucket: `s3://processed-bucket`.
        #[arg(long)]
        processed: String,
        /// The first day (YYYY-MM-DD, UTC) the objects were last written on.
        #[arg(long)]
        from: Option<String>,
        /// The last day, inclusive.
        #[arg(long)]
        to: Option<String>,
        /// Only this dataset's objects.
        #[arg(long)]
        dataset: Option<String>,
        /// Run the same selection again under a new id.
        #[arg(long, default_value = "")]
        label: String,
        /// S3-protocol endpoint (e.g. `bondlake s3-server`'s); AWS when absent.
        #[arg(long)]
        endpoint_url: Option<String>,
    },
    /// List the raw objects a request selects, one JSON line each.
    Plan(Common),
    /// Run one planned object (a JSON line of `plan`) as csv-processor would; print its outcome
    /// as one JSON line. Exits 0 whatever the object came to: the outcome says.
    Object {
        #[command(flatten)]
        common: Common,
        /// The planned object, as `plan` printed it.
        #[arg(long)]
        object: String,
    },
    /// Write the backfill's result from the objects' outcomes (JSON lines on stdin); exits 1
    /// when an object did not run to the end.
    Finish(Common),
    /// Plan, run each object in turn, and finish, on this machine.
    Run(Common),
}

#[derive(clap::Args)]
struct Common {
    /// The request: `s3://processed-bucket/backfills/<id>.json`.
    #[arg(long)]
    request: String,
    /// S3-protocol endpoint (e.g. `bondlake s3-server`'s); AWS when absent.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Folder of contract files: those the Lambda runs with (the artifacts bundle's).
    #[arg(long)]
    contracts: Option<PathBuf>,
    /// Routing table (TOML); default: the built-in one, as the Lambda's.
    #[arg(long)]
    routes: Option<PathBuf>,
    /// Where each object's event goes: the pipeline-events topic's ARN, or `stdout` (stderr for
    /// `object`, whose stdout is its outcome).
    #[arg(long, default_value = "stdout")]
    events_topic_arn: String,
    /// Threads per object: 0, all cores.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// The buckets of a request, its S3 session, and the request itself.
struct Opened {
    session: Session,
    processed_bucket: String,
    request: BackfillRequest,
}

impl Common {
    fn open(&self) -> Result<Opened, String> {
        let (bucket, key) = split_url(&self.request)
            .filter(|(_, k)| !k.is_empty())
            .ok_or_else(|| format!("--request {}: not s3://bucket/key", self.request))?;
        let session = Session::connect(self.endpoint_url.as_deref())?;
        let request =
            backfill::read_request(&session.store(bucket), key).map_err(|e| e.to_string())?;
        Ok(Opened {
            session,
            processed_bucket: bucket.to_string(),
            request,
        })
    }

    fn routes(&self) -> Result<Routes, String> {
        match &self.routes {
            None => Ok(Routes::builtin()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Routes::from_toml(&text, &path.display().to_string()).map_err(|e| e.to_string())
            }
        }
    }

    /// csv-processor's engine over the request's buckets, handing nothing off.
    fn processor(&self, opened: &Opened, events_to_stderr: bool) -> Result<Processor, String> {
        let events: Arc<dyn EventSink> = match self.events_topic_arn.as_str() {
            "stdout" if events_to_stderr => Arc::new(StderrSink),
            "stdout" => Arc::new(StdoutSink),
            arn => opened.session.events(arn)?,
        };
        let mut settings = Settings::new(&opened.request.raw_bucket, &opened.processed_bucket);
        settings.routes = self.routes()?;
        settings.contracts_dir = self.contracts.clone();
        settings.handoff_max_bytes = u64::MAX;
        if self.threads > 0 {
            settings.options.threads = self.threads;
        }
        Processor::new(
            settings,
            Arc::new(opened.session.store(&opened.request.raw_bucket)),
            Arc::new(opened.session.store(&opened.processed_bucket)),
            events,
        )
        .map_err(|e| e.to_string())
    }
}

pub fn run(a: BackfillArgs) -> Result<ExitCode, String> {
    match a.command {
        Step::Request {
            raw,
            processed,
            from,
            to,
            dataset,
            label,
            endpoint_url,
        } => {
            let (raw_bucket, prefix) =
                split_url(&raw).ok_or_else(|| format!("--raw {raw}: not s3://bucket[/prefix]"))?;
            let (processed_bucket, _) = split_url(&processed)
                .ok_or_else(|| format!("--processed {processed}: not s3://bucket"))?;
            let request = BackfillRequest::new(
                raw_bucket,
                prefix,
                from.as_deref(),
                to.as_deref(),
                dataset.as_deref(),
                &label,
            )
            .map_err(|e| e.to_string())?;
            let session = Session::connect(endpoint_url.as_deref())?;
            let location =
                launch::store_request(&session.store(processed_bucket), &request.key(), &request)
                    .map_err(|e| e.to_string())?;
            println!("{location}");
            Ok(ExitCode::SUCCESS)
        }
        Step::Plan(common) => {
            let opened = common.open()?;
            let raw = opened.session.store(&opened.request.raw_bucket);
            let (planned, skipped) = backfill::plan(&raw, &common.routes()?, &opened.request)
                .map_err(|e| e.to_string())?;
            for p in &planned {
                println!("{}", serde_json::to_string(p).map_err(|e| e.to_string())?);
            }
            eprintln!(
                "bondlake backfill: {}: {} objects ({} bytes), {skipped} under the prefix not taken",
                opened.request.describe(),
                planned.len(),
                planned.iter().map(|p| p.bytes).sum::<u64>()
            );
            Ok(ExitCode::SUCCESS)
        }
        Step::Object { common, object } => {
            let planned: Planned = serde_json::from_str(&object)
                .map_err(|e| format!("--object: not a planned object: {e}"))?;
            let opened = common.open()?;
            let processor = common.processor(&opened, true)?;
            let outcome = backfill::run_object(&processor, &opened.request, &planned);
            println!(
                "{}",
                serde_json::to_string(&outcome).map_err(|e| e.to_string())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Step::Finish(common) => {
            let opened = common.open()?;
            let mut outcomes = Vec::new();
            for (n, line) in std::io::stdin().lock().lines().enumerate() {
                let line = line.map_err(|e| format!("stdin: {e}"))?;
                if line.trim().is_empty() {
                    continue;
                }
                let outcome: ObjectOutcome = serde_json::from_str(&line)
                    .map_err(|e| format!("stdin line {}: not an object's outcome: {e}", n + 1))?;
                outcomes.push(outcome);
            }
            let processed = opened.session.store(&opened.processed_bucket);
            let result = backfill::finish(&processed, &opened.request, &outcomes)
                .map_err(|e| e.to_string())?;
            report(&result, &processed.locate(&opened.request.result_key()))
        }
        Step::Run(common) => {
            let opened = common.open()?;
            let processor = common.processor(&opened, false)?;
            let result =
                backfill::run_here(&processor, &opened.request).map_err(|e| e.to_string())?;
            let location = processor.processed().locate(&opened.request.result_key());
            report(&result, &location)
        }
    }
}

/// Prints the result's summary and its problems; exit 1 when an object did not run to the end.
fn report(result: &backfill::BackfillResult, location: &str) -> Result<ExitCode, String> {
    eprintln!(
        "bondlake backfill {}: {}: {} objects, {} ran to the end; {} records read, {} clean, {} quarantined; result {location}",
        result.backfill_id,
        result.selection,
        result.objects,
        result.ran,
        result.rows_read,
        result.rows_ok,
        result.rows_rejected
    );
    for p in &result.problems {
        eprintln!(
            "  {}: {} {}",
            p.key,
            p.outcome,
            p.error.as_deref().unwrap_or("")
        );
    }
    Ok(if result.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
