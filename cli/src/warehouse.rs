//! `bondlake load` and `bondlake sql`, and the warehouse the local chain loads into: a URL names
//! the backend (`duckdb:///path/file.duckdb`, `postgres://user@host:port/db`,
//! `mysql://user:password@host:port/db`, where the weekly trends are exported).

use bondlake_core::contract::{self, Contract};
use bondlake_core::store::LocalStore;
use bondlake_core::warehouse::{
    CellKind, Dialect, LoadJob, Loaded, Loader, ResultSet, Rows, Warehouse, WarehouseError,
    load_and_report,
};
use bondlake_warehouse_duckdb::DuckDb;
use bondlake_warehouse_mysql::MySql;
use bondlake_warehouse_postgres::Postgres;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Either backend the CLI can open.
pub enum AnyWarehouse {
    Duck(DuckDb),
    Pg(Postgres),
    My(MySql),
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
        if url.starts_with("mysql://") {
            return MySql::connect(url)
                .map(AnyWarehouse::My)
                .map_err(|e| e.to_string());
        }
        Err(format!(
            "`{url}` is not a warehouse URL: use duckdb:///path/file.duckdb, postgres://user@host:port/db or mysql://user:password@host:port/db"
        ))
    }

    /// Runs a query and returns its columns and text cells.
    pub fn query_table(&mut self, sql: &str) -> Result<ResultSet, String> {
        match self {
            AnyWarehouse::Duck(d) => d.query_table(sql).map_err(|e| e.to_string()),
            AnyWarehouse::Pg(p) => p.query_table(sql).map_err(|e| e.to_string()),
            AnyWarehouse::My(m) => m.query_table(sql).map_err(|e| e.to_string()),
        }
    }

    /// The schema a loader on this warehouse uses: MySQL's is the URL's database (a schema is
    /// a database there); the others take `schema` as given.
    pub fn schema_for<'s>(&'s self, schema: &'s str) -> &'s str {
        match self {
            AnyWarehouse::My(m) => m.database(),
            _ => schema,
        }
    }
}

impl Warehouse for AnyWarehouse {
    fn dialect(&self) -> Dialect {
        match self {
            AnyWarehouse::Duck(d) => d.dialect(),
            AnyWarehouse::Pg(p) => p.dialect(),
            AnyWarehouse::My(m) => m.dialect(),
        }
    }
    fn execute(&mut self, sql: &str, params: &[&str]) -> Result<(), WarehouseError> {
        match self {
            AnyWarehouse::Duck(d) => d.execute(sql, params),
            AnyWarehouse::Pg(p) => p.execute(sql, params),
            AnyWarehouse::My(m) => m.execute(sql, params),
        }
    }
    fn query(&mut self, sql: &str, params: &[&str]) -> Result<Rows, WarehouseError> {
        match self {
            AnyWarehouse::Duck(d) => d.query(sql, params),
            AnyWarehouse::Pg(p) => p.query(sql, params),
            AnyWarehouse::My(m) => m.query(sql, params),
        }
    }
    fn load(&mut self, job: &LoadJob<'_>) -> Result<Loaded, WarehouseError> {
        match self {
            AnyWarehouse::Duck(d) => d.load(job),
            AnyWarehouse::Pg(p) => p.load(job),
            AnyWarehouse::My(m) => m.load(job),
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
    let warehouse = AnyWarehouse::open(url, false)?;
    let schema = warehouse.schema_for(schema).to_string();
    let mut contracts = contracts(dir)?;
    // MySQL is the weekly trends' export, for the data scientists: their table only.
    if matches!(warehouse, AnyWarehouse::My(_)) {
        contracts.retain(|c| c.dataset == bondlake_core::weekly::TRENDS);
    }
    Loader::new(warehouse, &schema, &contracts).map_err(|e| e.to_string())
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
    /// How to print the rows: an aligned table, CSV (RFC 4180, a header, NULL as an empty
    /// field) or JSON (an array of objects; numbers exact, NULL as null).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// The query (the views are in schema `bondlake`: v_portfolio_exposure, v_top_issuers,
    /// v_market_summary, v_data_quality).
    query: String,
}

/// `bondlake sql --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// `bondlake sql`: runs one query and prints its rows.
pub fn sql(a: SqlArgs) -> Result<ExitCode, String> {
    let mut w = AnyWarehouse::open(&a.warehouse, true)?;
    let result = w.query_table(&a.query)?;
    let mut out = std::io::stdout().lock();
    let written = match a.format {
        Format::Table => writeln!(out, "{}({} rows)", render_table(&result), result.rows.len()),
        Format::Csv => write_csv(&result, &mut out),
        Format::Json => out.write_all(render_json(&result).as_bytes()),
    };
    written.map_err(|e| format!("stdout: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Rows as an aligned text table; number columns right-aligned; NULL shown as `NULL`.
pub fn render_table(result: &ResultSet) -> String {
    let cells: Vec<Vec<&str>> = result
        .rows
        .iter()
        .map(|r| r.iter().map(|c| c.as_deref().unwrap_or("NULL")).collect())
        .collect();
    let mut widths: Vec<usize> = result
        .columns
        .iter()
        .map(|c| c.name.chars().count())
        .collect();
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right: Vec<bool> = result
        .columns
        .iter()
        .map(|c| c.kind == CellKind::Number)
        .collect();
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(c.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let mut out = line(&names);
    out.push_str(&line(&rules.iter().map(String::as_str).collect::<Vec<_>>()));
    for r in &cells {
        out.push_str(&line(r));
    }
    out
}

/// Rows as CSV with a header (csv's RFC 4180 quoting); NULL is an empty field.
fn write_csv(result: &ResultSet, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(result.columns.iter().map(|c| c.name.as_str()))?;
    for r in &result.rows {
        w.write_record(r.iter().map(|c| c.as_deref().unwrap_or("")))?;
    }
    w.flush()
}

/// Rows as a JSON array of objects, one a line. A number is written as the warehouse printed
/// it (exact decimals, never through a float), unless it is not a JSON number (`NaN`,
/// `Infinity`), which is then a string.
pub fn render_json(result: &ResultSet) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let names: Vec<String> = result.columns.iter().map(|c| quote(&c.name)).collect();
    let mut out = String::from("[");
    for (n, row) in result.rows.iter().enumerate() {
        out.push_str(if n == 0 { "\n{" } else { ",\n{" });
        for (i, (column, cell)) in result.columns.iter().zip(row).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&names[i]);
            out.push(':');
            match (column.kind, cell.as_deref()) {
                (_, None) => out.push_str("null"),
                (CellKind::Number, Some(v)) if is_json_number(v) => out.push_str(v),
                (CellKind::Boolean, Some(v @ ("true" | "false"))) => out.push_str(v),
                (_, Some(v)) => out.push_str(&quote(v)),
            }
        }
        out.push('}');
    }
    out.push_str(if result.rows.is_empty() {
        "]\n"
    } else {
        "\n]\n"
    });
    out
}

/// Whether `v` is a number as JSON's grammar has it (`-?int frac? exp?`).
fn is_json_number(v: &str) -> bool {
    let b = v.strip_prefix('-').unwrap_or(v).as_bytes();
    let digits = |b: &[u8]| b.iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(b);
    if int == 0 || (int > 1 && b[0] == b'0') {
        return false;
    }
    let mut rest = &b[int..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = digits(frac);
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if let Some(exp) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exp = exp
            .strip_prefix(b"+")
            .or_else(|| exp.strip_prefix(b"-"))
            .unwrap_or(exp);
        let n = digits(exp);
        if n == 0 {
            return false;
        }
        rest = &exp[n..];
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> ResultSet {
        let column = |name: &str, kind| bondlake_core::warehouse::ResultColumn {
            name: name.into(),
            kind,
        };
        ResultSet {
            columns: vec![
                column("amount", CellKind::Number),
                column("ok", CellKind::Boolean),
                column("name", CellKind::Text),
            ],
            rows: vec![
                vec![
                    Some("12345678901234567.891".into()),
                    Some("true".into()),
                    Some("O'Brien, \"Jr\"".into()),
                ],
                vec![Some("NaN".into()), None, None],
            ],
        }
    }

    #[test]
    fn json_keeps_every_digit_and_writes_nulls_as_null() {
        assert_eq!(
            render_json(&result()),
            "[\n{\"amount\":12345678901234567.891,\"ok\":true,\"name\":\"O'Brien, \\\"Jr\\\"\"},\n{\"amount\":\"NaN\",\"ok\":null,\"name\":null}\n]\n"
        );
        let empty = ResultSet {
            rows: Vec::new(),
            ..result()
        };
        assert_eq!(render_json(&empty), "[]\n");
        for good in ["0", "-1", "1.50", "2e10", "1.5E-7"] {
            assert!(is_json_number(good), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "inf", "Infinity", "1e", "0x10", "1 ",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn csv_quotes_as_rfc_4180_says_and_tables_show_null() {
        let mut out = Vec::new();
        write_csv(&result(), &mut out).expect("csv");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "amount,ok,name\n12345678901234567.891,true,\"O'Brien, \"\"Jr\"\"\"\nNaN,,\n"
        );
        assert_eq!(
            render_table(&result()),
            "               amount  ok    name\n---------------------  ----  -------------\n12345678901234567.891  true  O'Brien, \"Jr\"\n                  NaN  NULL  NULL\n"
        );
    }
}
