//! `bondlake bench --weekly`: the weekly chain on years of generated series, side by side in one
//! run: the weekly job in Rust (`bondlake weekly`'s) and on Spark (`emr/weekly_trends.py`,
//! local mode, when a Python with pyspark is given), then the export into MySQL beside the
//! server's own bulk path (`LOAD DATA LOCAL INFILE` of the same rows into a plain table) and a
//! multi-row INSERT batch, each into an empty table.

use crate::local::PROCESSED_BUCKET;
use crate::warehouse::contracts;
use bondlake_core::output::OutputOptions;
use bondlake_core::processor::{Processor, Settings};
use bondlake_core::store::{LocalStore, ObjectStore};
use bondlake_core::warehouse::{LoadOutcome, Loader, Warehouse};
use bondlake_core::weekly;
use bondlake_warehouse_mysql::{MySql, StageBy};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

/// What to generate and where the peers are.
pub struct WeeklyBench<'a> {
    pub work: &'a Path,
    pub series: u32,
    pub years: u32,
    pub mysql: Option<&'a str>,
    pub spark_python: Option<&'a str>,
    /// The exports are measured this many times, alternating, and the fastest kept.
    pub repeat: usize,
}

/// Series per vendor file.
const PER_FILE: u32 = 10;

pub fn run(b: &WeeklyBench<'_>) -> Result<ExitCode, String> {
    let root = b.work.join("weekly");
    let _ = std::fs::remove_dir_all(&root);
    let weeks = 52 * b.years;
    let last_friday = bondlake_core::parse::days_from_civil(2026, 11, 20).ok_or("no such day")?;
    // The vendors' files: PER_FILE series each, every business day of the years.
    let raw = LocalStore::new(root.join("raw"));
    let sources = ["FT", "QUANDL", "DOWJONES"];
    let files = b.series.div_ceil(PER_FILE);
    let mut keys = Vec::new();
    for f in 0..files {
        let names: Vec<String> = (0..PER_FILE.min(b.series - f * PER_FILE))
            .map(|k| format!("S{:03}", f * PER_FILE + k))
            .collect();
        let key = format!(
            "weekly/{}/BENCH-{f:02}/{}.csv",
            sources[f as usize % 3],
            bondlake_core::parse::format_date(last_friday + 1)
        );
        let mut w = raw.create(&key).map_err(|e| e.to_string())?;
        bondlake_testkit::synth::weekly::history_of(
            &names,
            last_friday,
            weeks,
            u64::from(f),
            &mut w,
        )
        .map_err(|e| e.to_string())?;
        w.commit().map_err(|e| e.to_string())?;
        keys.push(key);
    }
    // Cleaned as csv-processor would (not timed).
    let processor = Processor::new(
        Settings::new(crate::local::RAW_BUCKET, PROCESSED_BUCKET),
        Arc::new(raw.clone()),
        Arc::new(LocalStore::new(&root)),
        Arc::new(bondlake_core::events::JsonLinesSink::new(
            root.join("events.jsonl"),
        )),
    )
    .map_err(|e| e.to_string())?;
    for key in &keys {
        let meta = std::fs::metadata(raw.root().join(key)).map_err(|e| e.to_string())?;
        let object = bondlake_core::processor::ObjectCreated {
            bucket: crate::local::RAW_BUCKET.into(),
            key: key.clone(),
            etag: Some(bondlake_core::store::file_etag(&meta)),
            event_time: bondlake_core::store::file_event_time(&meta),
            sequencer: None,
        };
        processor.handle(&object, None).map_err(|e| e.to_string())?;
    }
    let spark_root = b.work.join("weekly-spark");
    let _ = std::fs::remove_dir_all(&spark_root);
    copy_dir(&root, &spark_root)?;
    println!(
        "input: {} series over {weeks} weeks in {files} vendor files, cleaned into weekly_series",
        b.series
    );

    let mut results: Vec<(String, f64, u64)> = Vec::new();
    // The weekly job in Rust.
    let contract =
        bondlake_core::contract::load_dataset(weekly::TRENDS, None).map_err(|e| e.to_string())?;
    let store = LocalStore::new(&root);
    let t = Instant::now();
    let ran = weekly::run(
        &store,
        PROCESSED_BUCKET,
        &contract,
        OutputOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let (key, manifest) = ran.manifest.ok_or("the weekly job wrote nothing")?;
    let rows = manifest.rows_written;
    results.push(("bondlake weekly (Rust, one process)".into(), secs, rows));
    // The same job on Spark.
    match b.spark_python {
        Some(python) => {
            let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("../emr/weekly_trends.py");
            let contracts_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts");
            let submit = Path::new(python).with_file_name("spark-submit");
            let t = Instant::now();
            let out = Command::new(&submit)
                .args(["--master", "local[2]", "--conf", "spark.ui.enabled=false"])
                .arg(&job)
                .arg("--processed")
                .arg(format!(
                    "file://{}",
                    std::fs::canonicalize(&spark_root)
                        .map_err(|e| e.to_string())?
                        .display()
                ))
                .args([
                    "--bucket",
                    PROCESSED_BUCKET,
                    "--database",
                    "bench_weekly",
                    "--contracts",
                ])
                .arg(&contracts_dir)
                .current_dir(&spark_root)
                .env("PYSPARK_PYTHON", python)
                .output()
                .map_err(|e| format!("{}: {e}", submit.display()))?;
            let secs = t.elapsed().as_secs_f64();
            if !out.status.success() {
                return Err(format!(
                    "the Spark job failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            results.push((
                "emr/weekly_trends.py (Spark local[2], with its JVM's start)".into(),
                secs,
                rows,
            ));
        }
        None => println!("Spark: no --spark-python given; the Spark job is skipped"),
    }
    // The export into MySQL, beside LOAD DATA LOCAL INFILE and a multi-row INSERT batch.
    if let Some(url) = b.mysql {
        let trends: Vec<_> = contracts(None)?
            .into_iter()
            .filter(|c| c.dataset == weekly::TRENDS)
            .collect();
        // The peers: the same rows into a plain table of the same columns, no stage, no checks.
        let batches = trends_batches(&store, &manifest)?;
        let table = "\"bench_weekly_peer\".\"weekly_trends\"";
        let mut best: Vec<(String, f64)> = Vec::new();
        let mut keep = |label: &str, secs: f64| match best.iter_mut().find(|b| b.0 == label) {
            Some(b) => b.1 = b.1.min(secs),
            None => best.push((label.to_string(), secs)),
        };
        for _ in 0..b.repeat.max(1) {
            for (label, by) in [
                (
                    "bondlake export (LOAD DATA stage, reconciled, upsert)",
                    StageBy::LoadData,
                ),
                (
                    "bondlake export (INSERT stage, reconciled, upsert)",
                    StageBy::Insert,
                ),
            ] {
                let mut loader = fresh_mysql(url, "bench_weekly_ours", &trends, by)?;
                let t = Instant::now();
                match loader
                    .load(&key, &manifest, &store)
                    .map_err(|e| e.to_string())?
                {
                    LoadOutcome::Loaded { rows: r, .. } if r == rows => {}
                    other => return Err(format!("the export did not load every row: {other:?}")),
                }
                keep(label, t.elapsed().as_secs_f64());
            }
            for (label, by) in [
                (
                    "LOAD DATA LOCAL INFILE (the server's bulk path)",
                    StageBy::LoadData,
                ),
                ("multi-row INSERT batch", StageBy::Insert),
            ] {
                let mut loader = fresh_mysql(url, "bench_weekly_peer", &trends, by)?;
                let t = Instant::now();
                loader
                    .warehouse()
                    .bulk_insert(table, &batches)
                    .map_err(|e| e.to_string())?;
                keep(label, t.elapsed().as_secs_f64());
            }
        }
        let peer = best
            .iter()
            .find(|b| b.0.starts_with("LOAD DATA"))
            .map(|b| b.1);
        for (label, secs) in best {
            let vs = match peer {
                Some(p) if label.starts_with("bondlake") => {
                    format!(" ({:.0}% of LOAD DATA's speed)", 100.0 * p / secs)
                }
                _ => String::new(),
            };
            results.push((format!("{label}{vs}"), secs, rows));
        }
    } else {
        println!("MySQL: no --mysql given; the export is skipped");
    }
    println!(
        "\n{:<86} {:>9} {:>10} {:>12}",
        "step", "seconds", "rows", "rows/s"
    );
    for (name, secs, rows) in &results {
        println!(
            "{name:<86} {secs:>9.2} {rows:>10} {:>12.0}",
            *rows as f64 / secs
        );
    }
    println!(
        "(the exports: best of {}, alternating; the jobs: one run each)",
        b.repeat.max(1)
    );
    Ok(ExitCode::SUCCESS)
}

fn fresh_mysql(
    url: &str,
    db: &str,
    contracts: &[bondlake_core::Contract],
    by: StageBy,
) -> Result<Loader<MySql>, String> {
    let mut admin = MySql::connect(url).map_err(|e| e.to_string())?;
    admin
        .execute(&format!("DROP DATABASE IF EXISTS \"{db}\""), &[])
        .and_then(|_| admin.execute(&format!("CREATE DATABASE \"{db}\""), &[]))
        .map_err(|e| e.to_string())?;
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    let w = MySql::connect(&format!("{base}/{db}"))
        .map_err(|e| e.to_string())?
        .stage_by(by);
    Loader::new(w, db, contracts).map_err(|e| e.to_string())
}

/// The trends' rows, read before the clock starts.
fn trends_batches(
    store: &LocalStore,
    m: &bondlake_core::Manifest,
) -> Result<Vec<arrow_array::RecordBatch>, String> {
    let mut out = Vec::new();
    for o in &m.outputs {
        for batch in
            bondlake_core::warehouse::part_batches(store, &o.key).map_err(|e| e.to_string())?
        {
            out.push(batch.map_err(|e| e.to_string())?);
        }
    }
    Ok(out)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    for entry in walk(from)? {
        let rel = entry.strip_prefix(from).map_err(|e| e.to_string())?;
        let dest = to.join(rel);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::copy(&entry, &dest).map_err(|e| format!("{}: {e}", entry.display()))?;
    }
    Ok(())
}

fn walk(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let p = e.map_err(|e| e.to_string())?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    Ok(out)
}
