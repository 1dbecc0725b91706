//! `bondlake bench`: the cleaner's throughput and memory on a holdings file, side by side in one
//! run with DuckDB and Polars (when their Python packages are installed), at one thread and at all.
//!
//! Every engine runs as its own process on the same file, so wall time includes start-up and
//! peak RSS is each process's own high-water mark (bondlake: VmHWM; Python: ru_maxrss).

use bondlake::synth;
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
}

#[derive(Debug, Clone, Serialize)]
struct Measure {
    engine: String,
    threads: String,
    seconds: f64,
    mb_per_s: f64,
    rows_per_s: f64,
    peak_rss_mib: f64,
    note: String,
}

pub fn run(a: BenchArgs) -> Result<ExitCode, String> {
    if cfg!(debug_assertions) {
        eprintln!(
            "bondlake bench: this is a debug build; numbers will be slow. Use `cargo run --release -p bondlake-cli -- bench`."
        );
    }
    std::fs::create_dir_all(&a.work).map_err(|e| format!("{}: {e}", a.work.display()))?;
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
                let mut enc = flate2::write::GzEncoder::new(
                    std::io::BufWriter::with_capacity(1 << 20, f),
                    flate2::Compression::default(),
                );
                let spec = synth::Spec {
                    dataset: "investor_holdings".into(),
                    profile: "standard".into(),
                    rows: a.rows,
                    seed: 7,
                    dirty: 0.0,
                };
                synth::generate(&spec, &mut enc).map_err(|e| e.to_string())?;
                enc.finish().map_err(|e| e.to_string())?;
                std::fs::rename(&tmp, &p).map_err(|e| e.to_string())?;
            }
            p
        }
    };
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
    for threads in [1usize, cores] {
        let out = a.work.join(format!("bondlake-t{threads}"));
        let best = best_of(a.repeat, || {
            let _ = std::fs::remove_dir_all(&out);
            let mut cmd = Command::new(&exe);
            cmd.args([
                "process",
                "--dataset",
                "investor_holdings",
                "--report-rss",
                "--threads",
            ])
            .arg(threads.to_string())
            .arg("--input")
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .arg("--source-key")
            .arg("holdings/bench/holdings.csv.gz");
            run_child(cmd)
        })?;
        results.push(measure("bondlake", threads, best, mb, rows, ""));
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

struct Run {
    seconds: f64,
    rss_kib: u64,
}

fn best_of(n: usize, mut f: impl FnMut() -> Result<Run, String>) -> Result<Run, String> {
    let mut best: Option<Run> = None;
    for _ in 0..n.max(1) {
        let r = f()?;
        if best.as_ref().is_none_or(|b| r.seconds < b.seconds) {
            best = Some(r);
        }
    }
    best.ok_or_else(|| "no run".to_string())
}

fn run_child(mut cmd: Command) -> Result<Run, String> {
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
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
    Ok(Run { seconds, rss_kib })
}

fn measure(engine: &str, threads: usize, r: Run, mb: f64, rows: u64, note: &str) -> Measure {
    Measure {
        engine: engine.into(),
        threads: threads.to_string(),
        seconds: r.seconds,
        mb_per_s: mb / r.seconds,
        rows_per_s: rows as f64 / r.seconds,
        peak_rss_mib: r.rss_kib as f64 / 1024.0,
        note: note.into(),
    }
}

fn print_table(results: &[Measure], cores: usize) {
    println!();
    println!("engine     threads   seconds      MB/s       rows/s   peak MiB  note");
    for m in results {
        println!(
            "{:<10} {:>7} {:>9.2} {:>9.1} {:>12.0} {:>10.1}  {}",
            m.engine, m.threads, m.seconds, m.mb_per_s, m.rows_per_s, m.peak_rss_mib, m.note
        );
    }
    let get = |e: &str, t: usize| {
        results
            .iter()
            .find(|m| m.engine == e && m.threads == t.to_string())
            .map(|m| m.mb_per_s)
    };
    println!();
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
