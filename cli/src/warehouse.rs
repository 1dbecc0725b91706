//! `bondlake load` and `bondlake sql`, and the warehouse the local chain loads into: a URL names
//! the backend (`duckdb:///path/file.duckdb`, `postgres://user@host:port/db`).

use bondlake::contract::{self, Contract};
use bondlake::store::LocalStore;
use bondlake::warehouse::postgres::Postgres;
use bondlake::warehouse::{
    Dialect, LoadJob, Loader, Rows, Warehouse, WarehouseError, load_and_report,
};
use bondlake_duckdb::DuckDb;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Either backend the CLI can open.
pub enum AnyWarehouse {
    Duck(DuckDb),
    Pg(Postgres),
}

impl AnyWarehouse {
    /// Opens the warehouse a URL names (a DuckDB file only for reading with `read_only`, so
    /// several readers can share it).
    pub fn open(url: &str, read_only: bool) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("duckdb://") {
            if path.is_empty() {
                return Err("duckdb:// needs a file: duckdb:///path/to/file.duckdb".into());
            }
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let opened = if read_only {
                DuckDb::open_read_only(Path::new(path))
            } else {
                DuckDb::open(Path::new(path))
            };
            return opened.map(AnyWarehouse::Duck).map_err(|e| e.to_string());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Postgres::connect(url)
                .map(AnyWarehouse::Pg)
                .map_err(|e| e.to_string());
        }
        Err(format!(
            "`{url}` is not a warehouse URL: use duckdb:///path/file.duckdb or postgres://user@host:port/db"
        ))
    }

    /// Runs a query and returns its column names and text cells.
    pub fn query_table(&mut self, sql: &str) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
        match self {
            AnyWarehouse::Duck(d) => d.query_table(sql).map_err(|e| e.to_string()),
            AnyWarehouse::Pg(p) => p.query_table(sql).map_err(|e| e.to_string()),
        }
    }
}

impl Warehouse for AnyWarehouse {
    fn dialect(&self) -> Dialect {
        match self {
            AnyWarehouse::Duck(d) => d.dialect(),
            AnyWarehouse::Pg(p) => p.dialect(),
        }
    }
    fn execute(&mut self, sql: &str, params: &[&str]) -> Result<(), WarehouseError> {
        match self {
            AnyWarehouse::Duck(d) => d.execute(sql, params),
            AnyWarehouse::Pg(p) => p.execute(sql, params),
        }
    }
    fn query(&mut self, sql: &str, params: &[&str]) -> Result<Rows, WarehouseError> {
        match self {
            AnyWarehouse::Duck(d) => d.query(sql, params),
            AnyWarehouse::Pg(p) => p.query(sql, params),
        }
    }
    fn load(&mut self, job: &LoadJob<'_>) -> Result<(), WarehouseError> {
        match self {
            AnyWarehouse::Duck(d) => d.load(job),
            AnyWarehouse::Pg(p) => p.load(job),
        }
    }
}

/// Every dataset's contract, from `dir` or the built-in ones.
pub fn contracts(dir: Option<&Path>) -> Result<Vec<Contract>, String> {
    contract::load_all(dir).map_err(|e| e.to_string())
}

/// A loader on the warehouse `url`, its schema brought up to the contracts.
pub fn loader(url: &str, schema: &str, dir: Option<&Path>) -> Result<Loader<AnyWarehouse>, String> {
    // DuckDB names a file's catalog after the file: one named like the schema makes every
    // `schema.table` ambiguous.
    if let Some(path) = url.strip_prefix("duckdb://")
        && Path::new(path).file_stem().is_some_and(|s| s == schema)
    {
        return Err(format!(
            "{path}: a DuckDB file named like the schema `{schema}` makes its tables' names ambiguous; name the file otherwise (e.g. warehouse.duckdb)"
        ));
    }
    Loader::new(AnyWarehouse::open(url, false)?, schema, &contracts(dir)?)
        .map_err(|e| e.to_string())
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// The manifests to load (`<root>/manifests/<dataset>/<name>.json`); several may follow one
    /// flag, as a shell glob gives them.
    #[arg(long, required = true, num_args = 1..)]
    manifest: Vec<PathBuf>,
    /// The warehouse: duckdb:///path/file.duckdb or postgres://user@host:port/db.
    #[arg(long)]
    warehouse: String,
    /// The schema the tables live in.
    #[arg(long, default_value = "bondlake")]
    schema: String,
    /// The processed bucket's folder (default: the folder holding `manifests/`).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Folder of contract files (default: the contracts built into this binary).
    #[arg(long)]
    contracts: Option<PathBuf>,
}

/// `bondlake load`: each manifest into the warehouse; exit 2 when any did not load.
pub fn load(a: LoadArgs) -> Result<ExitCode, String> {
    let mut loader = loader(&a.warehouse, &a.schema, a.contracts.as_deref())?;
    let mut failed = false;
    for path in &a.manifest {
        let (root, key) = split_manifest_path(path, a.root.as_deref())?;
        let store = LocalStore::new(root);
        let event = load_and_report(&mut loader, &store, &key).map_err(|e| e.to_string())?;
        println!(
            "{}",
            serde_json::to_string(&event).map_err(|e| e.to_string())?
        );
        failed |= event.error.is_some();
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The processed bucket's folder and the manifest's key in it.
fn split_manifest_path(path: &Path, root: Option<&Path>) -> Result<(PathBuf, String), String> {
    let root = match root {
        Some(r) => r.to_path_buf(),
        None => path
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == "manifests"))
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .ok_or_else(|| {
                format!(
                    "{}: not under a manifests/ folder; say where the processed bucket is with --root",
                    path.display()
                )
            })?,
    };
    let key = path
        .strip_prefix(&root)
        .map_err(|_| format!("{} is not under {}", path.display(), root.display()))?;
    let key = key
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    Ok((root, key))
}

#[derive(clap::Args)]
pub struct SqlArgs {
    /// The warehouse: duckdb:///path/file.duckdb or postgres://user@host:port/db.
    #[arg(long)]
    warehouse: String,
    /// The query (the views are in schema `bondlake`: v_portfolio_exposure, v_top_issuers,
    /// v_market_summary, v_data_quality).
    query: String,
}

/// `bondlake sql`: runs one query and prints its rows as a table.
pub fn sql(a: SqlArgs) -> Result<ExitCode, String> {
    let mut w = AnyWarehouse::open(&a.warehouse, true)?;
    let (names, rows) = w.query_table(&a.query)?;
    print!("{}", render_table(&names, &rows));
    println!("({} rows)", rows.len());
    Ok(ExitCode::SUCCESS)
}

/// Rows as an aligned text table; numbers right-aligned.
pub fn render_table(names: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let numeric = |s: &str| !s.is_empty() && s.parse::<f64>().is_ok();
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let pad = w.saturating_sub(c.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if numeric(c) {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(names);
    out.push_str(&line(
        &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
    ));
    for r in rows {
        out.push_str(&line(r));
    }
    out
}
