//! `bondlake bench`: the cleaner's throughput and memory on a holdings file, side by side in one
//! run with DuckDB and Polars (when their Python packages are installed), at one thread and at all.
//!
//! Every engine runs as its own process on the same file, so wall time includes start-up and
//! peak RSS is each process's own high-water mark (bondlake: VmHWM; Python: ru_maxrss).

use bondlake_testkit::synth;
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Rows of the generated holdings file (ignored with --input).
    #[arg(long, default_value_t = 2_000_000)]
    rows: u64,
    /// Use this holdings file instead of generating one.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Working folder for the generated input and the outputs.
    #[arg(long, default_value = "bench-out")]
    work: PathBuf,
    /// Python interpreter with `duckdb` and `polars` (see README); peers are skipped without them.
    #[arg(long, env = "BONDLAKE_BENCH_PYTHON", default_value = "python3")]
    python: String,
    /// Skip DuckDB and Polars.
    #[arg(long)]
    no_peers: bool,
    /// Repeat each measurement and keep the fastest.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also run bondlake with the file read from, and outputs written to, an S3-protocol server
    /// on 127.0.0.1 (s3s-fs, in this process), alternating with the local-file runs.
    #[arg(long)]
    s3: bool,
    /// Instead: time loading the file's Parquet into PostgreSQL and DuckDB, each beside its own
    /// bulk path (psql \copy of the same rows as CSV; DuckDB's INSERT ... read_parquet).
    #[arg(long)]
    load: bool,
    /// PostgreSQL for --load.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres: String,
    /// Instead: the weekly chain on generated series (--series over --years): the weekly job in
    /// Rust, and on Spark with --spark-python, then the export into --mysql beside LOAD DATA
    /// LOCAL INFILE and a multi-row INSERT of the same rows.
    #[arg(long)]
    weekly: bool,
    /// Series for --weekly.
    #[arg(long, default_value_t = 200)]
    series: u32,
    /// Years of weekly history for --weekly.
    #[arg(long, default_value_t = 10)]
    years: u32,
    /// MySQL for --weekly's export (mysql://user:password@host:port/database).
    #[arg(long)]
    mysql: Option<String>,
    /// A Python with pyspark (emr/requirements.txt) for --weekly's Spark job.
    #[arg(long)]
    spark_python: Option<String>,
    /// Instead: time a Lambda binary's cold start (exec to its first request for an event,
    /// against a stand-in runtime API on 127.0.0.1) and report its size.
    #[arg(long, value_name = "BINARY")]
    cold_start: Option<PathBuf>,
    /// Instead: the engine's hot kernels, each beside the path it replaced (decimal parsing
    /// through a 64-bit accumulator against the 128-bit one; the duplicate-key set's batched
    /// inserts against one at a time; CSV splitting with the plain-line path against csv-core
    /// alone), best of --repeat.
    #[arg(long)]
    kernels: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Measure {
    engine: String,
    threads: String,
    seconds: f64,
    mb_per_s: f64,
    rows_per_s: f64,
    peak_rss_mib: f64,
    /// CPU time (user and system) of the run's process, all its threads: over `seconds`, how
    /// many cores it kept busy on average.
    cpu_seconds: f64,
    note: String,
    /// Seconds per stage, summed over threads (bondlake only).
    stages: Vec<(String, f64)>,
}

pub fn run(a: BenchArgs) -> Result<ExitCode, String> {
    if cfg!(debug_assertions) {
        eprintln!(
            "bondlake bench: this is a debug build; numbers will be slow. Use `cargo run --release -p bondlake-cli -- bench`."
        );
    }
    if let Some(binary) = &a.cold_start {
        return cold_start(binary, a.repeat.max(20));
    }
    if a.kernels {
        return crate::bench_kernels::run(a.repeat);
    }
    std::fs::create_dir_all(&a.work).map_err(|e| format!("{}: {e}", a.work.display()))?;
    if a.weekly {
        return crate::bench_weekly::run(&crate::bench_weekly::WeeklyBench {
            work: &a.work,
            series: a.series,
            years: a.years,
            mysql: a.mysql.as_deref(),
            spark_python: a.spark_python.as_deref(),
            repeat: a.repeat,
        });
    }
    let input = input_file(&a)?;
    if a.load {
        return crate::bench_load::run(&input, &a.work, &a.postgres, a.repeat.max(1));
    }
    let (csv_bytes, rows) = measure_input(&input)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mb = csv_bytes as f64 / 1e6;
    println!(
        "input: {} ({:.1} MB gzip, {:.1} MB of CSV, {rows} rows); {cores} cores",
        input.display(),
        std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
        mb
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut results: Vec<Measure> = Vec::new();
    let s3 = if a.s3 {
        Some(S3Bench::start(&a.work, &input)?)
    } else {
        None
    };
    for threads in [1usize, cores] {
        let out = a.work.join(format!("bondlake-t{threads}"));
        let process = |input: &str, out: &str| {
            let mut cmd = Command::new(&exe);
            cmd.args(["process", "--dataset", "investor_holdings", "--report-rss"])
                .arg("--stage-times")
                .args(["--threads", &threads.to_string()])
                .args(["--input", input, "--out", out])
                .args(["--source-key", "holdings/bench/holdings.csv.gz"]);
            cmd
        };
        // Local file and S3 in turn, so both see the same machine conditions.
        let (mut local, mut remote): (Option<Run>, Option<Run>) = (None, None);
        for _ in 0..a.repeat.max(1) {
            let _ = std::fs::remove_dir_all(&out);
            let r = run_child(process(&input.to_string_lossy(), &out.to_string_lossy()))?;
            keep_fastest(&mut local, r);
            if let Some(s3) = &s3 {
                s3.clear_outputs()?;
                let mut cmd = process(S3Bench::INPUT_URL, S3Bench::OUTPUT_URL);
                cmd.args(["--endpoint-url", s3.server.endpoint()]);
                keep_fastest(&mut remote, run_child(cmd)?);
            }
        }
        if let Some(r) = local {
            results.push(measure("bondlake", threads, r, mb, rows, "local file"));
        }
        if let Some(r) = remote {
            results.push(measure(
                "bondlake",
                threads,
                r,
                mb,
                rows,
                "via S3 on 127.0.0.1 (GetObject stream, multipart upload)",
            ));
        }
    }
    if !a.no_peers {
        for (engine, script) in [("duckdb", DUCKDB), ("polars", POLARS)] {
            let probe = Command::new(&a.python)
                .args(["-c", &format!("import {engine}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !probe.is_ok_and(|s| s.success()) {
                println!(
                    "{engine}: not installed for `{}`; see README (Benchmark) to install it",
                    a.python
                );
                continue;
            }
            for threads in [1usize, cores] {
                let out = a.work.join(format!("{engine}-t{threads}.parquet"));
                let best = best_of(a.repeat, || {
                    let _ = std::fs::remove_file(&out);
                    let mut cmd = Command::new(&a.python);
                    cmd.args(["-c", script])
                        .arg(&input)
                        .arg(&out)
                        .arg(threads.to_string())
                        .env("POLARS_MAX_THREADS", threads.to_string());
                    run_child(cmd)
                });
                match best {
                    Ok(b) => results.push(measure(
                        engine,
                        threads,
                        b,
                        mb,
                        rows,
                        "no validation; types inferred",
                    )),
                    Err(e) => println!("{engine} ({threads} threads) failed: {e}"),
                }
            }
        }
    }
    print_table(&results, cores);
    if let Some(path) = &a.json {
        let json = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The benchmark's holdings file: `--input`, or a generated one kept in the work folder.
fn input_file(a: &BenchArgs) -> Result<PathBuf, String> {
    let input = match &a.input {
        Some(p) => p.clone(),
        None => {
            let p = a.work.join(format!("holdings-{}-seed7.csv.gz", a.rows));
            if !p.exists() {
                eprintln!(
                    "generating {} rows of investor_holdings into {} ...",
                    a.rows,
                    p.display()
                );
                let tmp = p.with_extension("tmp");
                let f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
                let spec = synth::Spec {
                    dataset: "investor_holdings".into(),
                    profile: "standard".into(),
                    rows: a.rows,
                    seed: 7,
                    dirty: 0.0,
                };
                synth::generate_file(&spec, true, &mut out).map_err(|e| e.to_string())?;
                std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
                std::fs::rename(&tmp, &p).map_err(|e| e.to_string())?;
            }
            p
        }
    };
    Ok(input)
}

struct Run {
    seconds: f64,
    cpu_seconds: f64,
    rss_kib: u64,
    /// bondlake's time per stage (`--stage-times`), seconds, in pipeline order.
    stages: Vec<(String, f64)>,
}

fn keep_fastest(best: &mut Option<Run>, r: Run) {
    if best.as_ref().is_none_or(|b| r.seconds < b.seconds) {
        *best = Some(r);
    }
}

/// An S3-protocol server holding the input, for the `--s3` runs.
struct S3Bench {
    _runtime: tokio::runtime::Runtime,
    server: bondlake_testkit::s3_server::S3Server,
}

impl S3Bench {
    const INPUT_URL: &str = "s3://raw/holdings/bench/holdings.csv.gz";
    const OUTPUT_URL: &str = "s3://processed";

    fn start(work: &Path, input: &Path) -> Result<S3Bench, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let root = work.join("s3");
        let _ = std::fs::remove_dir_all(&root);
        let server =
            bondlake_testkit::s3_server::S3Server::start(&root, "127.0.0.1:0", runtime.handle())
                .map_err(|e| e.to_string())?;
        for b in ["raw", "processed"] {
            server.create_bucket(b).map_err(|e| e.to_string())?;
        }
        let client = server.client();
        let put = async {
            let body = aws_sdk_s3::primitives::ByteStream::from_path(input)
                .await
                .map_err(|e| e.to_string())?;
            client
                .put_object()
                .bucket("raw")
                .key("holdings/bench/holdings.csv.gz")
                .body(body)
                .send()
                .await
                .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(&e).to_string())
        };
        runtime.block_on(put)?;
        Ok(S3Bench {
            _runtime: runtime,
            server,
        })
    }

    fn clear_outputs(&self) -> Result<(), String> {
        let bucket = self.server.root().join("processed");
        let _ = std::fs::remove_dir_all(&bucket);
        std::fs::create_dir_all(&bucket).map_err(|e| e.to_string())
    }
}

/// Starts `binary` as Lambda would, against a stand-in runtime API, and times exec to its first
/// `GET .../invocation/next`: the init a cold start pays before the first event.
fn cold_start(binary: &Path, runs: usize) -> Result<ExitCode, String> {
    use std::io::{BufRead, BufReader};
    let mut times = Vec::new();
    for _ in 0..runs {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let api = listener.local_addr().map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "csv-processor")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3538")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("RAW_BUCKET", "raw")
            .env("PROCESSED_BUCKET", "processed")
            .env(
                "PIPELINE_EVENTS_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:pipeline-events-dev",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let elapsed = start.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        if !line.contains("/runtime/invocation/next") {
            return Err(format!("unexpected first request: {line}"));
        }
        times.push(elapsed.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let size = std::fs::metadata(binary).map_err(|e| e.to_string())?.len();
    let stripped = std::env::temp_dir().join(format!("bondlake-strip-{}", std::process::id()));
    let stripped_size = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(binary)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&stripped).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&stripped);
    println!(
        "cold start of {} ({runs} runs, exec to first invocation/next): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        binary.display(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    println!(
        "binary size: {:.1} MB{}",
        size as f64 / 1e6,
        stripped_size.map_or(String::new(), |s| format!(
            " ({:.1} MB stripped)",
            s as f64 / 1e6
        ))
    );
    Ok(ExitCode::SUCCESS)
}

fn best_of(n: usize, mut f: impl FnMut() -> Result<Run, String>) -> Result<Run, String> {
    let mut best: Option<Run> = None;
    for _ in 0..n.max(1) {
        keep_fastest(&mut best, f()?);
    }
    best.ok_or_else(|| "no run".to_string())
}

fn run_child(mut cmd: Command) -> Result<Run, String> {
    let cpu_before = children_cpu_seconds();
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = children_cpu_seconds() - cpu_before;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "{:?} exited with {}: {}",
            cmd.get_program(),
            out.status,
            stderr.trim()
        ));
    }
    let rss_kib = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let stages = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("stage_ns."))
        .filter_map(|l| l.split_once('='))
        .filter_map(|(name, ns)| Some((name.to_string(), ns.trim().parse::<f64>().ok()? / 1e9)))
        .collect();
    Ok(Run {
        seconds,
        cpu_seconds,
        rss_kib,
        stages,
    })
}

/// CPU seconds (user and system) of every child this process has waited for so far: the
/// difference across one run is that run's, whatever threads it used.
#[allow(unsafe_code)]
fn children_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage through the pointer, which points at one.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn measure(engine: &str, threads: usize, r: Run, mb: f64, rows: u64, note: &str) -> Measure {
    Measure {
        engine: engine.into(),
        threads: threads.to_string(),
        seconds: r.seconds,
        mb_per_s: mb / r.seconds,
        rows_per_s: rows as f64 / r.seconds,
        peak_rss_mib: r.rss_kib as f64 / 1024.0,
        cpu_seconds: r.cpu_seconds,
        note: note.into(),
        stages: r.stages,
    }
}

fn print_table(results: &[Measure], cores: usize) {
    println!();
    println!("engine     threads   seconds      MB/s       rows/s   peak MiB   CPU s  busy  note");
    for m in results {
        println!(
            "{:<10} {:>7} {:>9.2} {:>9.1} {:>12.0} {:>10.1} {:>7.2} {:>5.2}  {}",
            m.engine,
            m.threads,
            m.seconds,
            m.mb_per_s,
            m.rows_per_s,
            m.peak_rss_mib,
            m.cpu_seconds,
            m.cpu_seconds / m.seconds.max(f64::MIN_POSITIVE),
            m.note
        );
    }
    println!(
        "(CPU s: user and system time of the run's process, all threads; busy: CPU s over seconds, \
         the cores kept busy on average)"
    );
    for m in results.iter().filter(|m| !m.stages.is_empty()) {
        let total: f64 = m.stages.iter().map(|(_, s)| s).sum();
        println!();
        println!(
            "{} at {} thread(s), {}: where the time goes (seconds summed over threads)",
            m.engine, m.threads, m.note
        );
        for (name, s) in &m.stages {
            println!(
                "  {name:<13} {s:>7.2} s  {:>5.1}%",
                100.0 * s / total.max(f64::MIN_POSITIVE)
            );
        }
        println!(
            "  {:<13} {:>7.2} s  (the rest of {:.2} s: start-up, waiting, the manifest)",
            "stages", total, m.seconds
        );
    }
    let get = |e: &str, t: usize| {
        results
            .iter()
            .find(|m| m.engine == e && m.threads == t.to_string())
            .map(|m| m.mb_per_s)
    };
    println!();
    for t in [1, cores] {
        let remote = results
            .iter()
            .find(|m| {
                m.engine == "bondlake" && m.threads == t.to_string() && m.note.starts_with("via S3")
            })
            .map(|m| m.mb_per_s);
        if let (Some(local), Some(remote)) = (get("bondlake", t), remote) {
            println!(
                "bondlake via S3 / local file at {t} thread(s): {:.0}%",
                100.0 * remote / local
            );
        }
    }
    if let (Some(one), Some(all)) = (get("bondlake", 1), get("bondlake", cores)) {
        println!("bondlake {cores} threads / 1 thread: {:.2}x", all / one);
    }
    for peer in ["duckdb", "polars"] {
        for t in [1, cores] {
            if let (Some(b), Some(p)) = (get("bondlake", t), get(peer, t)) {
                println!("bondlake / {peer} at {t} thread(s): {:.2}x", b / p);
            }
        }
    }
}

/// Uncompressed size and record count of the input (one pass, not timed against anyone).
fn measure_input(path: &Path) -> Result<(u64, u64), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, f));
    let mut buf = vec![0u8; 1 << 20];
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        let n = r.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok((bytes, lines.saturating_sub(1)))
}

const DUCKDB: &str = r#"
import sys, resource, duckdb
src, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
con.execute(f"SET threads={threads}")
con.execute(f"COPY (SELECT * FROM read_csv('{src}')) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
print(f"peak_rss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"#;

const POLARS: &str = r#"
import sys, resource, polars as pl
src, out = sys.argv[1], sys.argv[2]
pl.scan_csv(src).sink_parquet(out, compression="zstd")
print(f"peak_rss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"#;
