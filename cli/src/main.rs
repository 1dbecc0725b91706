//! `bondlake`: the local pipeline and the tools around it. Every rule lives in the `bondlake`
//! library; this binary parses arguments, calls it, and maps outcomes to exit codes.

mod backfill;
mod bench;
mod bench_kernels;
mod bench_load;
mod bench_weekly;
mod feed;
mod handoff;
mod local;
mod notify;
mod s3;
mod topology;
mod warehouse;
mod weekly;

use bondlake_core::contract::{self, Contract};
use bondlake_core::manifest::{SourceRef, Status};
use bondlake_core::output::OutputOptions;
use bondlake_core::pipeline;
use bondlake_core::store::{LocalStore, ObjectStore};
use bondlake_testkit::synth;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "bondlake",
    version,
    about = "bondlake: fixed-income data pipelines, on a laptop or on AWS Lambda"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a realistic, deterministic synthetic vendor file (optionally with known defects).
    Gen(GenArgs),
    /// Clean one local file into DIR with the layout the Lambda uses in S3.
    Process(ProcessArgs),
    /// Measure the cleaner on a holdings file, side by side with DuckDB and Polars when present.
    Bench(bench::BenchArgs),
    /// Watch ROOT/raw (the raw bucket) and clean each new file as the csv-processor Lambda does,
    /// into ROOT/processed, ROOT/quarantine and ROOT/manifests, with events in ROOT/events.
    Run(local::RunArgs),
    /// Run the raw objects that arrived on some days through the chain again (a backfill): the
    /// same contract converges on what is there, a new contract version is merged by the loader.
    Replay(local::ReplayArgs),
    /// Generate one business day of vendor files (every dataset and profile) into a fresh
    /// ROOT/raw and run the local pipeline over them once.
    Demo {
        /// The local lake's root folder.
        #[arg(long, default_value = "bondlake-demo")]
        root: PathBuf,
        /// Share of records carrying one defect.
        #[arg(long, default_value_t = 0.03)]
        dirty: f64,
        /// Seed for the generated files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also post the demo's notifications to this Slack incoming webhook.
        #[arg(long, env = "BONDLAKE_SLACK_WEBHOOK", hide_env_values = true)]
        slack_webhook: Option<String>,
        /// Export the weekly trends into this MySQL (mysql://user:password@host:port/database)
        /// instead of the embedded warehouse.
        #[arg(long, env = "BONDLAKE_MYSQL", hide_env_values = true)]
        mysql: Option<String>,
    },
    /// Process a handed-off object to the end from its hand-off request: the EMR step's command
    /// (emr-launcher's backends submit it), with csv-processor's engine and output keys.
    Handoff(handoff::HandoffArgs),
    /// Print the EMR step the launcher submits for a request (command-runner.jar's arguments,
    /// as JSON): to add it by hand, or to try its exact script elsewhere.
    EmrStep(handoff::EmrStepArgs),
    /// A backfill over S3, as EMR runs it: store a request, plan its objects, run one, finish
    /// (emr/backfill.py spreads the objects over a cluster), or run it all here.
    Backfill(backfill::BackfillArgs),
    /// Publish a vendor file's records to a Kafka topic as a producer would, land them with
    /// msk-lander's code into ROOT/raw, and run the local chain over them.
    Feed(feed::FeedArgs),
    /// Land the Kafka batches the MSK event source mapping gave up on, from its S3 on-failure
    /// destination's records, each offset once.
    KafkaReplay(feed::ReplayArgs),
    /// Receive Slack webhook posts on 127.0.0.1 and print them: a stand-in for Slack, to see
    /// what `run`, `demo` and `feed` post (point BONDLAKE_SLACK_WEBHOOK at the URL it prints).
    WebhookReceiver {
        /// Address to listen on (loopback only: the webhook path is printed for anyone to use).
        #[arg(long, default_value = "127.0.0.1:8089")]
        listen: String,
    },
    /// Serve a folder over the S3 protocol on 127.0.0.1 (each sub-folder a bucket), to try the
    /// Lambda or `process --input s3://...` without AWS.
    S3Server(s3::ServerArgs),
    /// The weekly job: trend features over each series' whole history from the lake's
    /// processed weekly_series data, written as the weekly_trends dataset, then exported into
    /// MySQL (--mysql) or the lake's embedded warehouse.
    Weekly(weekly::WeeklyArgs),
    /// Load processed files (their manifests) into a warehouse, once each, reconciled.
    Load(warehouse::LoadArgs),
    /// Run a query on a warehouse (validation, the BI views) and print the rows.
    Sql(warehouse::SqlArgs),
    /// Check contract files: load each and report the first problem with its file and entry.
    Contracts {
        /// Folder of `<dataset>.toml` files (default: the contracts built into this binary).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct GenArgs {
    /// Dataset: investor_holdings, market_daily, weekly_series.
    #[arg(long)]
    dataset: String,
    /// Vendor profile (default: the contract's default; market_daily: us, jpx, bse).
    #[arg(long)]
    profile: Option<String>,
    /// Data records to write.
    #[arg(long)]
    rows: u64,
    /// Seed; the same seed writes the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of records carrying exactly one defect (rejectable or repairable), 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    dirty: f64,
    /// Output file; gzip-compressed when it ends in `.gz`.
    #[arg(long)]
    out: PathBuf,
    /// Write the records that must be rejected, with their reason codes, as JSON here.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Folder of contract files (default: the contracts built into this binary). A dataset
    /// without a tailored generator gets a file drawn from its contract.
    #[arg(long)]
    contracts: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ProcessArgs {
    /// Dataset: investor_holdings, market_daily, weekly_series.
    #[arg(long)]
    dataset: String,
    /// Vendor profile (default: the contract's default).
    #[arg(long)]
    profile: Option<String>,
    /// The input file (gzip or plain CSV; detected from the content), or `s3://bucket/key`.
    #[arg(long)]
    input: PathBuf,
    /// Output folder, or `s3://bucket`: processed/, quarantine/ and manifests/ go under it.
    #[arg(long)]
    out: PathBuf,
    /// S3-protocol endpoint for `s3://` paths (e.g. `bondlake s3-server`'s); AWS when absent.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The S3 key this file stands for (the exchange, BSE date and weekly fields come from it).
    /// Default: the input path as given.
    #[arg(long)]
    source_key: Option<String>,
    /// Folder of contract files (default: the contracts built into this binary).
    #[arg(long)]
    contracts: Option<PathBuf>,
    /// Threads: 1 runs the stages in turn; 0 means all cores.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Records per batch (small batches stay in the CPU's caches).
    #[arg(long, default_value_t = 4096)]
    batch_rows: usize,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = 256 * 1024)]
    row_group_rows: usize,
    /// Start a new Parquet part past this many MiB.
    #[arg(long, default_value_t = 128)]
    part_mb: u64,
    /// Longest field in bytes; a longer one rejects its record as field_too_long.
    #[arg(long, default_value_t = 65_536)]
    max_field_bytes: usize,
    /// Most decompressed bytes per file (gzip-bomb guard: the absolute ceiling).
    #[arg(long, default_value_t = 64 << 30)]
    max_decompressed_bytes: u64,
    /// Most decompressed bytes per compressed byte, past the first 64 MiB (gzip-bomb guard;
    /// CSV compresses 5 to 30 to 1, a bomb about 1000 to 1; 0: off).
    #[arg(long, default_value_t = 200)]
    max_inflate_ratio: u64,
    /// Print the process's peak RSS on stderr at the end (used by `bondlake bench`).
    #[arg(long, hide = true)]
    report_rss: bool,
    /// Print the time spent in each stage on stderr at the end (used by `bondlake bench`).
    #[arg(long, hide = true)]
    stage_times: bool,
}

fn main() -> ExitCode {
    bondlake_core::alloc::tune_allocator();
    quiet_on_closed_stdout();
    // BONDLAKE_LOG=info|debug|trace shows more; a level is all the CLI needs (env-filter's
    // directives would pull in regex for nothing).
    let level = std::env::var("BONDLAKE_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gen(a) => generate(a),
        Command::Process(a) => process(a),
        Command::Bench(a) => bench::run(a),
        Command::Run(a) => local::run(a),
        Command::Replay(a) => local::replay(a),
        Command::Demo {
            root,
            dirty,
            seed,
            slack_webhook,
            mysql,
        } => local::demo(
            &root,
            dirty,
            seed,
            slack_webhook.as_deref(),
            mysql.as_deref().filter(|u| !u.is_empty()),
        ),
        Command::Handoff(a) => handoff::run(a),
        Command::Backfill(a) => backfill::run(a),
        Command::EmrStep(a) => handoff::emr_step(a),
        Command::Feed(a) => feed::feed(a),
        Command::KafkaReplay(a) => feed::replay(a),
        Command::WebhookReceiver { listen } => notify::receive(&listen),
        Command::S3Server(a) => s3::serve(a),
        Command::Weekly(a) => weekly::run(a),
        Command::Load(a) => warehouse::load(a),
        Command::Sql(a) => warehouse::sql(a),
        Command::Contracts { dir } => check_contracts(dir.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("bondlake: {message}");
            ExitCode::from(1)
        }
    }
}

/// `bondlake ... | head` ends quietly, as Unix tools do: killed by SIGPIPE, nothing on stderr.
/// SIGPIPE itself stays ignored (Rust's default): the S3 client and the local servers write to
/// sockets with writev(2), which raises it when the peer has gone, and `bondlake s3-server`
/// used to die of it whenever a client dropped a download half read (csv-processor handing a
/// file off does). So a write to the closed stdout fails as an error instead, `println!` panics
/// with "failed printing to stdout", and this hook turns that one panic into the signal's death.
#[allow(unsafe_code)]
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        #[cfg(unix)]
        if message.starts_with("failed printing to stdout")
            && message.ends_with(&std::io::Error::from_raw_os_error(libc::EPIPE).to_string())
        {
            // SAFETY: restores the default action of one signal and raises it: the process
            // ends here, as a Unix tool writing into a closed pipe does.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
        }
        default(info);
    }));
}

fn load(dataset: &str, dir: Option<&Path>) -> Result<Contract, String> {
    contract::load_dataset(dataset, dir).map_err(|e| e.to_string())
}

fn generate(a: GenArgs) -> Result<ExitCode, String> {
    let c = load(&a.dataset, a.contracts.as_deref())?;
    let profile = c.profile(a.profile.as_deref())?.name.clone();
    if !(0.0..=1.0).contains(&a.dirty) {
        return Err(format!("--dirty {} is not between 0 and 1", a.dirty));
    }
    let spec = synth::Spec {
        dataset: a.dataset.clone(),
        profile: profile.clone(),
        rows: a.rows,
        seed: a.seed,
        dirty: a.dirty,
    };
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let file = std::fs::File::create(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
    let gz = a
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let generated = synth::generate_for(&c, &spec, gz, &mut file).map_err(|e| e.to_string())?;
    file.flush().map_err(|e| e.to_string())?;
    if let Some(truth) = &a.truth {
        let json = serde_json::to_string_pretty(&generated.truth).map_err(|e| e.to_string())?;
        std::fs::write(truth, json).map_err(|e| format!("{}: {e}", truth.display()))?;
    }
    eprintln!(
        "wrote {} records of {} ({profile}) to {}: {} must be rejected, {} carry a repairable defect; process it with --source-key {}",
        generated.records,
        a.dataset,
        a.out.display(),
        generated.truth.len(),
        generated.repaired,
        synth::suggested_key(&a.dataset, &profile)
    );
    Ok(ExitCode::SUCCESS)
}

fn process(a: ProcessArgs) -> Result<ExitCode, String> {
    let c = load(&a.dataset, a.contracts.as_deref())?;
    let input = a.input.to_string_lossy().into_owned();
    let out = a.out.to_string_lossy().into_owned();
    let s3_paths = (s3::split_url(&input), s3::split_url(&out));
    let session = match s3_paths {
        (None, None) => None,
        _ => Some(s3::Session::connect(a.endpoint_url.as_deref())?),
    };
    let (source, body): (SourceRef, Box<dyn std::io::Read + Send>) = match (s3_paths.0, &session) {
        (Some((bucket, key)), Some(session)) => {
            let object = session
                .store(bucket)
                .get(key, None)
                .map_err(|e| e.to_string())?;
            let source = SourceRef {
                bucket: bucket.into(),
                key: a.source_key.clone().unwrap_or_else(|| key.into()),
                etag: object.etag,
                bytes: object.size,
                ..Default::default()
            };
            (source, object.body)
        }
        _ => {
            let file =
                std::fs::File::open(&a.input).map_err(|e| format!("{}: {e}", a.input.display()))?;
            let meta = file
                .metadata()
                .map_err(|e| format!("{}: {e}", a.input.display()))?;
            let source = SourceRef {
                bucket: "local".into(),
                key: a
                    .source_key
                    .clone()
                    .unwrap_or_else(|| input.replace('\\', "/")),
                etag: bondlake_core::store::file_etag(&meta),
                bytes: meta.len(),
                ..Default::default()
            };
            (source, Box::new(file))
        }
    };
    let store: Box<dyn ObjectStore> = match (s3_paths.1, &session) {
        (Some((bucket, _)), Some(session)) => Box::new(session.store(bucket)),
        _ => Box::new(LocalStore::new(&a.out)),
    };
    let defaults = pipeline::Options::default();
    let opts = pipeline::Options {
        threads: if a.threads == 0 {
            defaults.threads
        } else {
            a.threads
        },
        batch_rows: a.batch_rows.max(1),
        limits: bondlake_core::input::Limits {
            max_field_bytes: a.max_field_bytes,
            max_decompressed_bytes: a.max_decompressed_bytes,
            max_inflate_ratio: a.max_inflate_ratio,
            ..defaults.limits
        },
        output: OutputOptions {
            part_bytes: a.part_mb.max(1) << 20,
            row_group_rows: a.row_group_rows.max(1),
            ..OutputOptions::default()
        },
        stage_times: a
            .stage_times
            .then(|| Arc::new(bondlake_core::stages::StageTimes::default())),
        ..defaults
    };
    let outcome = pipeline::process(
        &c,
        a.profile.as_deref(),
        source,
        body,
        store.as_ref(),
        &opts,
    )
    .map_err(|e| e.to_string())?;
    if a.report_rss {
        eprintln!("peak_rss_kib={}", peak_rss_kib());
    }
    if let Some(times) = &opts.stage_times {
        eprint!("{}", times.lines());
    }
    println!("{}", store.locate(&outcome.manifest_key));
    let m = &outcome.manifest;
    match m.status {
        Status::Failed => {
            eprintln!("bondlake: {}", m.error.as_deref().unwrap_or("failed"));
            Ok(ExitCode::from(2))
        }
        Status::RejectedOverThreshold => {
            eprintln!(
                "bondlake: {}: {} of {} records rejected, over the {:.0}% threshold; outputs kept for inspection, not to be loaded",
                m.source.key,
                m.rows_rejected,
                m.rows_read,
                c.reject_threshold * 100.0
            );
            Ok(ExitCode::SUCCESS)
        }
        Status::Ok => Ok(ExitCode::SUCCESS),
    }
}

/// The process's peak resident set (VmHWM), in KiB; 0 where /proc is not available.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn check_contracts(dir: Option<&Path>) -> Result<ExitCode, String> {
    let names: Vec<String> = match dir {
        None => contract::BUILTIN
            .iter()
            .map(|(n, _)| n.to_string())
            .collect(),
        Some(d) => {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .map_err(|e| format!("{}: {e}", d.display()))?
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension().is_some_and(|x| x == "toml"))
                        .then(|| p.file_stem()?.to_str().map(String::from))?
                })
                .collect();
            v.sort();
            v
        }
    };
    let mut failed = false;
    for n in names {
        match contract::load_dataset(&n, dir) {
            Ok(c) => println!(
                "ok  {} {} ({} columns, {} derived, profiles: {})",
                c.dataset,
                c.version,
                c.columns.len(),
                c.derived.len(),
                c.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            Err(e) => {
                println!("bad {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
