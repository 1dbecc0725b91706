//! `bondlake bench --load`: the warehouse-loader on a processed holdings file, side by side in one
//! run with each warehouse's own bulk path into the same table:
//!
//! - PostgreSQL: bondlake's load (COPY FROM STDIN of the Parquet into a stage, reconcile, MERGE,
//!   reconcile, ledger, one transaction) against `psql \copy` of the same rows as CSV;
//! - DuckDB: bondlake's load (read_parquet into a stage, the same steps) against DuckDB's own
//!   `INSERT INTO ... SELECT * FROM read_parquet(...)`.
//!
//! Each measurement starts from an empty table (fresh schema or database file), runs `repeat`
//! times alternating ours and the peer's, and keeps the fastest.

use crate::warehouse::contracts;
use bondlake_core::manifest::{Manifest, SourceRef};
use bondlake_core::store::{LocalStore, ObjectStore};
use bondlake_core::warehouse::{LoadOutcome, Loader, Warehouse, part_batches};
use bondlake_core::{Options, pipeline};
use bondlake_warehouse_duckdb::DuckDb;
use bondlake_warehouse_postgres::{Postgres, write_csv};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

const DATASET: &str = "investor_holdings";

struct Row {
    warehouse: &'static str,
    engine: &'static str,
    seconds: f64,
    rows: u64,
}

pub fn run(input: &Path, work: &Path, pg_url: &str, repeat: usize) -> Result<ExitCode, String> {
    let root = work.join("load");
    let _ = std::fs::remove_dir_all(&root);
    let store = LocalStore::new(&root);
    let (manifest_key, manifest) = clean(input, &store)?;
    let rows = manifest.rows_written;
    let parts: Vec<String> = manifest
        .outputs
        .iter()
        .map(|o| store.locate(&o.key))
        .collect();
    println!(
        "input: {} cleaned into {} Parquet part(s), {rows} rows",
        input.display(),
        parts.len()
    );
    let csv = root.join("holdings-clean.csv");
    write_clean_csv(&store, &manifest, &csv)?;
    let contracts: Vec<_> = contracts(None)?
        .into_iter()
        .filter(|c| c.dataset == DATASET)
        .collect();

    let mut results: Vec<Row> = Vec::new();
    let mut best = |warehouse, engine, seconds: f64| match results
        .iter_mut()
        .find(|r| r.warehouse == warehouse && r.engine == engine)
    {
        Some(r) => r.seconds = r.seconds.min(seconds),
        None => results.push(Row {
            warehouse,
            engine,
            seconds,
            rows,
        }),
    };

    let psql = Command::new("psql").arg("--version").output().is_ok();
    for _ in 0..repeat {
        // PostgreSQL: ours, then psql \copy into the same table in its own schema.
        let mut loader = fresh_pg(pg_url, "bench_ours", &contracts)?;
        let t = Instant::now();
        expect_loaded(loader.load(&manifest_key, &manifest, &store), rows)?;
        best(
            "PostgreSQL",
            "bondlake load (Parquet)",
            t.elapsed().as_secs_f64(),
        );
        if psql {
            let loader = fresh_pg(pg_url, "bench_peer", &contracts)?;
            drop(loader);
            let copy = format!(
                "\\copy bench_peer.investor_holdings FROM '{}' WITH (FORMAT csv)",
                csv.display()
            );
            let t = Instant::now();
            let out = Command::new("psql")
                .args([pg_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", &copy])
                .output()
                .map_err(|e| format!("psql: {e}"))?;
            let secs = t.elapsed().as_secs_f64();
            if !out.status.success() {
                return Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr)));
            }
            best("PostgreSQL", "psql \\copy (CSV)", secs);
        }
        // DuckDB: ours, then INSERT ... read_parquet, each into a new database file.
        let mut loader = fresh_duck(&root.join("ours.duckdb"), &contracts)?;
        let t = Instant::now();
        expect_loaded(loader.load(&manifest_key, &manifest, &store), rows)?;
        best(
            "DuckDB",
            "bondlake load (Parquet)",
            t.elapsed().as_secs_f64(),
        );
        drop(loader);
        let mut loader = fresh_duck(&root.join("peer.duckdb"), &contracts)?;
        let list: Vec<String> = parts
            .iter()
            .map(|p| format!("'{}'", p.replace('\'', "''")))
            .collect();
        let insert = format!(
            "INSERT INTO bondlake.investor_holdings SELECT * FROM read_parquet([{}])",
            list.join(", ")
        );
        let t = Instant::now();
        loader
            .warehouse()
            .execute(&insert, &[])
            .map_err(|e| e.to_string())?;
        best(
            "DuckDB",
            "INSERT ... read_parquet",
            t.elapsed().as_secs_f64(),
        );
    }
    if !psql {
        println!("psql: not installed; the PostgreSQL peer is skipped");
    }
    println!(
        "\n{:<11} {:<26} {:>9} {:>12} {:>14}",
        "warehouse", "engine", "seconds", "rows/s", "vs its peer"
    );
    for r in &results {
        let peer = results
            .iter()
            .find(|p| p.warehouse == r.warehouse && !p.engine.starts_with("bondlake"));
        let ratio = match peer {
            Some(p) if r.engine.starts_with("bondlake") => {
                format!("{:.0}% speed", 100.0 * p.seconds / r.seconds)
            }
            _ => String::new(),
        };
        println!(
            "{:<11} {:<26} {:>9.2} {:>12.0} {:>14}",
            r.warehouse,
            r.engine,
            r.seconds,
            r.rows as f64 / r.seconds,
            ratio
        );
    }
    println!(
        "\nbondlake load = stage + reconcile + MERGE on the key + reconcile + ledger, in one transaction; \
         the peers only insert. Best of {repeat}."
    );
    Ok(ExitCode::SUCCESS)
}

/// Cleans the input into the store, as the csv-processor would.
fn clean(input: &Path, store: &LocalStore) -> Result<(String, Manifest), String> {
    let file = std::fs::File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let contract = bondlake_core::load_dataset(DATASET, None).map_err(|e| e.to_string())?;
    let source = SourceRef {
        bucket: "raw".into(),
        key: "holdings/bench/holdings.csv.gz".into(),
        etag: "bench".into(),
        bytes,
        ..Default::default()
    };
    let outcome = pipeline::process(
        &contract,
        None,
        source,
        Box::new(file),
        store,
        &Options::default(),
    )
    .map_err(|e| e.to_string())?;
    Ok((outcome.manifest_key, outcome.manifest))
}

/// The clean rows as CSV, written the way the PostgreSQL backend writes COPY's input.
fn write_clean_csv(store: &LocalStore, m: &Manifest, path: &Path) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    for o in &m.outputs {
        let batches = part_batches(store, &o.key).map_err(|e| e.to_string())?;
        write_csv(batches, &o.key, &mut out).map_err(|e| e.to_string())?;
    }
    std::io::Write::flush(&mut out).map_err(|e| e.to_string())
}

fn fresh_pg(
    url: &str,
    schema: &str,
    contracts: &[bondlake_core::Contract],
) -> Result<Loader<Postgres>, String> {
    let mut pg = Postgres::connect(url).map_err(|e| e.to_string())?;
    pg.execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"), &[])
        .map_err(|e| e.to_string())?;
    Loader::new(pg, schema, contracts).map_err(|e| e.to_string())
}

fn fresh_duck(
    path: &Path,
    contracts: &[bondlake_core::Contract],
) -> Result<Loader<DuckDb>, String> {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("duckdb.wal"));
    let db = DuckDb::open(path).map_err(|e| e.to_string())?;
    Loader::new(db, "bondlake", contracts).map_err(|e| e.to_string())
}

fn expect_loaded(
    outcome: Result<LoadOutcome, bondlake_core::warehouse::WarehouseError>,
    rows: u64,
) -> Result<(), String> {
    match outcome.map_err(|e| e.to_string())? {
        LoadOutcome::Loaded { rows: n, .. } if n == rows => Ok(()),
        other => Err(format!("expected {rows} rows loaded, got {other:?}")),
    }
}
