//! `bondlake`: the local pipeline and the tools around it. Every rule lives in the `bondlake`
//! library; this binary parses arguments, calls it, and maps outcomes to exit codes.

mod bench;

use bondlake::contract::{self, Contract};
use bondlake::manifest::{SourceRef, Status};
use bondlake::output::OutputOptions;
use bondlake::store::{LocalStore, ObjectStore};
use bondlake::{pipeline, synth};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Generate one business day of vendor files (every dataset and profile) into ROOT/raw and
    /// process each, routed by its key, into ROOT/processed, ROOT/quarantine and ROOT/manifests.
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
    },
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
}

#[derive(clap::Args)]
struct ProcessArgs {
    /// Dataset: investor_holdings, market_daily, weekly_series.
    #[arg(long)]
    dataset: String,
    /// Vendor profile (default: the contract's default).
    #[arg(long)]
    profile: Option<String>,
    /// The input file (gzip or plain CSV; detected from the content).
    #[arg(long)]
    input: PathBuf,
    /// Output folder: processed/, quarantine/ and manifests/ are written under it.
    #[arg(long)]
    out: PathBuf,
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
    /// Most decompressed bytes per file (gzip-bomb guard).
    #[arg(long, default_value_t = 64 << 30)]
    max_decompressed_bytes: u64,
    /// Print the process's peak RSS on stderr at the end (used by `bondlake bench`).
    #[arg(long, hide = true)]
    report_rss: bool,
}

fn main() -> ExitCode {
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
        Command::Demo { root, dirty, seed } => demo(&root, dirty, seed),
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

fn load(dataset: &str, dir: Option<&Path>) -> Result<Contract, String> {
    contract::load_dataset(dataset, dir).map_err(|e| e.to_string())
}

fn generate(a: GenArgs) -> Result<ExitCode, String> {
    let c = load(&a.dataset, None)?;
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
    let generated = if gz {
        let mut enc = flate2::write::GzEncoder::new(&mut file, flate2::Compression::default());
        let g = synth::generate(&spec, &mut enc).map_err(|e| e.to_string())?;
        enc.finish().map_err(|e| e.to_string())?;
        g
    } else {
        synth::generate(&spec, &mut file).map_err(|e| e.to_string())?
    };
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
    let meta = std::fs::metadata(&a.input).map_err(|e| format!("{}: {e}", a.input.display()))?;
    let file = std::fs::File::open(&a.input).map_err(|e| format!("{}: {e}", a.input.display()))?;
    let key = a
        .source_key
        .clone()
        .unwrap_or_else(|| a.input.to_string_lossy().replace('\\', "/"));
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let source = SourceRef {
        bucket: "local".into(),
        key,
        etag: format!("{}-{mtime}", meta.len()),
        bytes: meta.len(),
    };
    let defaults = pipeline::Options::default();
    let opts = pipeline::Options {
        threads: if a.threads == 0 {
            defaults.threads
        } else {
            a.threads
        },
        batch_rows: a.batch_rows.max(1),
        limits: bondlake::input::Limits {
            max_field_bytes: a.max_field_bytes,
            max_decompressed_bytes: a.max_decompressed_bytes,
            ..defaults.limits
        },
        output: OutputOptions {
            part_bytes: a.part_mb.max(1) << 20,
            row_group_rows: a.row_group_rows.max(1),
            ..OutputOptions::default()
        },
        ..defaults
    };
    let store = LocalStore::new(&a.out);
    let outcome = pipeline::process(&c, a.profile.as_deref(), source, file, &store, &opts)
        .map_err(|e| e.to_string())?;
    if a.report_rss {
        eprintln!("peak_rss_kib={}", peak_rss_kib());
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

fn demo(root: &Path, dirty: f64, seed: u64) -> Result<ExitCode, String> {
    let store = LocalStore::new(root);
    let raw = LocalStore::new(root.join("raw"));
    println!(
        "bondlake demo: one business day of vendor files into {}/raw, cleaned into {}\n",
        root.display(),
        root.display()
    );
    println!(
        "{:<48} {:<18} {:>8} {:>8} {:>8}  {:<24} top reasons",
        "raw object", "dataset/profile", "read", "ok", "rejected", "status"
    );
    let started = std::time::Instant::now();
    let (mut read, mut ok, mut rejected) = (0, 0, 0);
    for (k, (key, dataset, profile, rows)) in synth::DAY.iter().enumerate() {
        let spec = synth::Spec {
            dataset: dataset.to_string(),
            profile: profile.to_string(),
            rows: *rows,
            seed: seed + k as u64,
            dirty,
        };
        let mut w = raw
            .create(key)
            .map_err(|e| format!("{}: {e}", raw.locate(key)))?;
        if key.ends_with(".gz") {
            let mut enc = flate2::write::GzEncoder::new(&mut w, flate2::Compression::default());
            synth::generate(&spec, &mut enc).map_err(|e| e.to_string())?;
            enc.finish().map_err(|e| e.to_string())?;
        } else {
            synth::generate(&spec, &mut w).map_err(|e| e.to_string())?;
        }
        let bytes = w.commit().map_err(|e| e.to_string())?;
        let route = bondlake::route::route(key).ok_or_else(|| format!("{key}: no route"))?;
        let c = load(route.dataset, None)?;
        let source = SourceRef {
            bucket: "raw".into(),
            key: key.to_string(),
            etag: format!("{bytes}-seed{}", seed + k as u64),
            bytes,
        };
        let body = raw.open(key).map_err(|e| e.to_string())?;
        let outcome = pipeline::process(
            &c,
            Some(route.profile),
            source,
            body,
            &store,
            &pipeline::Options::default(),
        )
        .map_err(|e| e.to_string())?;
        let m = &outcome.manifest;
        let mut reasons: Vec<(&String, &u64)> = m.reject_reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = reasons
            .iter()
            .take(3)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        println!(
            "{:<48} {:<18} {:>8} {:>8} {:>8}  {:<24} {}",
            key,
            format!(
                "{}/{}",
                route.dataset.split('_').next().unwrap_or(""),
                route.profile
            ),
            m.rows_read,
            m.rows_ok,
            m.rows_rejected,
            format!("{:?}", m.status).to_lowercase(),
            top.join(", ")
        );
        read += m.rows_read;
        ok += m.rows_ok;
        rejected += m.rows_rejected;
    }
    println!(
        "\n{read} records read: {ok} clean, {rejected} quarantined, none lost ({:.1}s).",
        started.elapsed().as_secs_f64()
    );
    println!(
        "Parquet:     {}/processed/<dataset>/<partition>=<value>/",
        root.display()
    );
    println!(
        "Quarantine:  {}/quarantine/<dataset>/*.csv.gz (record_number,column,reason,value,record)",
        root.display()
    );
    println!("Manifests:   {}/manifests/<dataset>/*.json", root.display());
    Ok(ExitCode::SUCCESS)
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
