//! The warehouse loader: each processed file's Parquet parts in the warehouse once, exactly, with
//! proof that what arrived equals what the manifest says.
//!
//! [`Loader::load`] is the one flow every backend follows: skip a manifest the ledger already
//! holds; record one that is not loadable (`rejected_over_threshold`, `failed`); otherwise stage
//! the parts, reconcile the staged rows against the manifest (count and control totals), drop
//! from the stage the rows a newer input already gave the table (the newest input wins a key,
//! whatever order loads run in: [`TableDef::newer_sql`]), MERGE on the dataset's key, reconcile
//! the merged rows against what was left to merge, and only then record the load in the ledger,
//! all in one transaction, the target and the ledger locked. The backends ([`Warehouse`]) only differ in how they run SQL and fill the stage:
//! PostgreSQL by `COPY FROM STDIN`, DuckDB by `read_parquet`, Redshift by `COPY ... FORMAT AS
//! PARQUET` through the Data API.

pub mod result;
pub mod sql;
pub mod views;

pub use result::{CellKind, ResultColumn, ResultSet};
pub use sql::{Dialect, Ident, TableDef, ident};

use crate::contract::Contract;
use crate::events::{LoadInfo, Outcome, PipelineEvent};
use crate::manifest::{Manifest, Status};
use crate::parse::parse_decimal;
use crate::store::ObjectStore;
use std::collections::BTreeMap;
use std::time::Instant;

/// What kind of failure a load met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Configuration or a contract the warehouse cannot take; retrying will not help.
    Config,
    /// The warehouse refused a statement (its message is kept).
    Sql,
    /// The parts or the manifest could not be read.
    Source,
    /// The warehouse's rows differ from the manifest's numbers.
    Mismatch,
    /// Throttled or unreachable: worth retrying.
    Transient,
}

/// A load that did not happen; the message names the manifest and, for SQL, the server's words.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct WarehouseError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What went wrong.
    pub message: String,
}

impl WarehouseError {
    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        WarehouseError {
            kind: ErrorKind::Config,
            message: message.into(),
        }
    }

    /// A statement the warehouse refused.
    pub fn sql(message: impl Into<String>) -> Self {
        WarehouseError {
            kind: ErrorKind::Sql,
            message: message.into(),
        }
    }

    /// An input that could not be read.
    pub fn source(message: impl Into<String>) -> Self {
        WarehouseError {
            kind: ErrorKind::Source,
            message: message.into(),
        }
    }

    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        WarehouseError {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// The same error, its message prefixed with `what`.
    pub fn context(self, what: &str) -> Self {
        WarehouseError {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }
}

/// Rows as text cells (NULL is `None`).
pub type Rows = Vec<Vec<Option<String>>>;

/// Which rows a reconciliation counted, in the order a load counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// The staged rows, before anything else: they must equal the manifest.
    Staged,
    /// The staged rows no newer input superseded: what the MERGE is to write.
    Fresh,
    /// The table's rows that are the stage's, after the MERGE: they must equal the fresh ones.
    Merged,
}

impl Checkpoint {
    fn as_str(self) -> &'static str {
        match self {
            Checkpoint::Staged => "staged rows",
            Checkpoint::Fresh => "rows to merge",
            Checkpoint::Merged => "merged rows",
        }
    }
}

/// A reconciliation's numbers: a row count and the control totals (exact, as the warehouse
/// printed them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measure {
    /// Rows.
    pub rows: u64,
    /// Control totals by column.
    pub totals: BTreeMap<String, String>,
}

/// What a backend's load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// Merged and recorded.
    Merged {
        /// The fresh rows, merged.
        fresh: Measure,
        /// Staged rows a newer input had already given the table.
        superseded: u64,
    },
    /// Another delivery of the same manifest recorded it first (found under the lock).
    AlreadyLoaded,
}

/// One load, as a backend runs it.
pub struct LoadJob<'a> {
    /// The target table.
    pub table: &'a TableDef,
    /// The manifest's key in the processed bucket.
    pub manifest_key: &'a str,
    /// The manifest.
    pub manifest: &'a Manifest,
    /// The processed bucket, where the parts are.
    pub store: &'a dyn ObjectStore,
    /// The ledger row's values ([`sql::LEDGER_COLUMNS`] but `loaded_at`), filled in by the loader
    /// but `rows_loaded` and `load_ms`, which follow the load.
    pub ledger: Vec<String>,
    /// Reads a reconciliation query's first row and checks it: the staged rows against the
    /// manifest, the merged rows against the fresh ones; an error aborts the load.
    pub check: &'a dyn Fn(Checkpoint, &Rows) -> Result<Measure, WarehouseError>,
    /// When the load started (for the ledger's `load_ms`).
    pub started: Instant,
}

impl LoadJob<'_> {
    /// The ledger row's parameters, with the rows merged and the time taken so far.
    pub fn ledger_params(&self, rows_loaded: u64) -> Vec<String> {
        let mut values = self.ledger.clone();
        values[LEDGER_ROWS_LOADED] = rows_loaded.to_string();
        values[LEDGER_LOAD_MS] = self.started.elapsed().as_millis().to_string();
        values
    }

    /// The stage's columns: those the parts hold (the manifest lists them), typed as the
    /// table's; every table column for a manifest from before manifests listed them, if it was
    /// written under the table's contract version.
    pub fn stage_columns(&self) -> Result<Vec<&sql::ColumnDef>, WarehouseError> {
        let listed = &self.manifest.columns;
        if listed.is_empty() {
            if self.manifest.contract_version != self.table.contract_version {
                return Err(WarehouseError::source(format!(
                    "{}: written under contract {} by a build that did not list its columns; the table is at {}: reprocess the file",
                    self.manifest_key, self.manifest.contract_version, self.table.contract_version
                )));
            }
            return Ok(self.table.stage_columns(None));
        }
        if let Some(unknown) = listed.iter().find(|n| {
            !self
                .table
                .columns
                .iter()
                .any(|c| c.name.name() == n.as_str())
        }) {
            return Err(WarehouseError::config(format!(
                "{}: the parts hold column `{unknown}`, which table {} does not have",
                self.manifest_key,
                self.table.qualified()
            )));
        }
        // In the parts' order, which Redshift's COPY maps by position.
        Ok(listed
            .iter()
            .filter_map(|n| {
                self.table
                    .columns
                    .iter()
                    .find(|c| c.name.name() == n.as_str())
            })
            .collect())
    }

    /// The parts' keys, in manifest order.
    pub fn part_keys(&self) -> impl Iterator<Item = &str> {
        self.manifest.outputs.iter().map(|o| o.key.as_str())
    }
}

/// A warehouse: runs SQL and loads a staged file in one transaction.
pub trait Warehouse {
    /// Its SQL dialect.
    fn dialect(&self) -> Dialect;
    /// Runs a statement on its own (DDL, a ledger row); parameters are text.
    fn execute(&mut self, sql: &str, params: &[&str]) -> Result<(), WarehouseError>;
    /// Runs a query; cells come back as text.
    fn query(&mut self, sql: &str, params: &[&str]) -> Result<Rows, WarehouseError>;
    /// Stages the job's parts, reconciles ([`Checkpoint`]s in order), drops superseded rows,
    /// merges, and records the ledger row last, in one transaction with the target and the
    /// ledger locked: either all of it happens or none.
    fn load(&mut self, job: &LoadJob<'_>) -> Result<Loaded, WarehouseError>;
}

/// What became of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// Loaded now.
    Loaded {
        /// Rows merged.
        rows: u64,
        /// Rows of the file a newer input had already given the table (not merged).
        superseded: u64,
        /// Control totals of the merged rows, as the warehouse summed them.
        totals: BTreeMap<String, String>,
        /// Time taken.
        millis: u64,
    },
    /// The ledger already holds it (a second delivery): nothing done.
    AlreadyLoaded,
    /// Not loadable (`rejected_over_threshold` or `failed`): recorded in the ledger, not loaded.
    NotLoaded(Status),
}

/// Loads manifests into one warehouse, creating and migrating the tables first.
pub struct Loader<W: Warehouse> {
    warehouse: W,
    schema: Ident,
    tables: BTreeMap<String, TableDef>,
}

impl<W: Warehouse> Loader<W> {
    /// Brings the warehouse's schema up to the contracts: creates the schema, each dataset's table
    /// (adding columns a newer contract brought; never dropping any), the ledger and the views.
    pub fn new(
        mut warehouse: W,
        schema: &str,
        contracts: &[Contract],
    ) -> Result<Self, WarehouseError> {
        let schema = ident(schema)?;
        let d = warehouse.dialect();
        warehouse.execute(&sql::create_schema_sql(&schema), &[])?;
        let mut tables = BTreeMap::new();
        for contract in contracts {
            let table = TableDef::from_contract(contract, schema.name())?;
            warehouse.execute(&table.create_sql(d), &[])?;
            let existing: Vec<String> = warehouse
                .query(&sql::columns_query(d), &[schema.name(), table.name.name()])?
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect();
            for column in &table.columns {
                if !existing.iter().any(|c| c == column.name.name()) {
                    warehouse.execute(&table.add_column_sql(column, d), &[])?;
                }
            }
            tables.insert(contract.dataset.clone(), table);
        }
        warehouse.execute(&sql::ledger_create_sql(&schema, d), &[])?;
        // A view is created where the warehouse loads every table it reads: the views name
        // datasets, the loader does not.
        for view in &views::VIEWS {
            if view.reads().iter().all(|t| tables.contains_key(*t)) {
                warehouse.execute(&view.create_sql(&schema), &[])?;
            }
        }
        Ok(Loader {
            warehouse,
            schema,
            tables,
        })
    }

    /// The warehouse, for queries.
    pub fn warehouse(&mut self) -> &mut W {
        &mut self.warehouse
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &Ident {
        &self.schema
    }

    /// Every manifest key the ledger holds: the manifests loaded, or recorded as not loadable.
    pub fn recorded(&mut self) -> Result<std::collections::HashSet<String>, WarehouseError> {
        let sql = format!(
            "SELECT \"manifest_key\" FROM {}",
            sql::ledger_table(&self.schema)
        );
        Ok(self
            .warehouse
            .query(&sql, &[])?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }

    /// Loads one manifest whose parts are in `store`; see the module's documentation.
    pub fn load(
        &mut self,
        manifest_key: &str,
        manifest: &Manifest,
        store: &dyn ObjectStore,
    ) -> Result<LoadOutcome, WarehouseError> {
        let started = Instant::now();
        let d = self.warehouse.dialect();
        let seen = self
            .warehouse
            .query(&sql::ledger_lookup_sql(&self.schema, d), &[manifest_key])?;
        if !seen.is_empty() {
            return Ok(LoadOutcome::AlreadyLoaded);
        }
        check_manifest(manifest_key, manifest)?;
        let table = self.tables.get(&manifest.dataset).ok_or_else(|| {
            WarehouseError::config(format!(
                "{manifest_key}: dataset `{}` has no contract here",
                manifest.dataset
            ))
        })?;
        let ledger = ledger_values(manifest_key, manifest);
        // A file with a header and no records has no parts: nothing to stage or merge (and an
        // empty COPY manifest or read_parquet list is an error), but it is recorded as loaded.
        let nothing = manifest.status == Status::Ok && manifest.outputs.is_empty();
        if nothing && manifest.rows_written > 0 {
            return Err(WarehouseError::source(format!(
                "{manifest_key}: {} rows written but no parts listed",
                manifest.rows_written
            )));
        }
        if manifest.status != Status::Ok || nothing {
            let params: Vec<&str> = ledger.iter().map(String::as_str).collect();
            self.warehouse.execute(
                &sql::ledger_insert_sql(&sql::ledger_table(&self.schema), d),
                &params,
            )?;
            if nothing {
                return Ok(LoadOutcome::Loaded {
                    rows: 0,
                    superseded: 0,
                    totals: BTreeMap::new(),
                    millis: started.elapsed().as_millis() as u64,
                });
            }
            return Ok(LoadOutcome::NotLoaded(manifest.status));
        }
        let expected = Expected::from_manifest(manifest, table)?;
        // The fresh rows' numbers, once counted: what the merged rows must equal.
        let fresh = std::cell::RefCell::new(None::<Parsed>);
        let check = |at: Checkpoint, rows: &Rows| {
            let got = expected.parse(at, rows)?;
            match at {
                Checkpoint::Staged => {
                    expected.compare(at, &expected.manifest, &got, manifest_key)?
                }
                Checkpoint::Fresh => *fresh.borrow_mut() = Some(got.clone()),
                Checkpoint::Merged => {
                    let want = fresh.borrow().clone().ok_or_else(|| {
                        WarehouseError::sql("merged rows counted before the rows to merge")
                    })?;
                    expected.compare(at, &want, &got, manifest_key)?;
                }
            }
            Ok(got.measure)
        };
        let job = LoadJob {
            table,
            manifest_key,
            manifest,
            store,
            ledger,
            check: &check,
            started,
        };
        let loaded = self
            .warehouse
            .load(&job)
            .map_err(|e| e.context(&format!("loading {manifest_key}")))?;
        Ok(match loaded {
            Loaded::AlreadyLoaded => LoadOutcome::AlreadyLoaded,
            Loaded::Merged { fresh, superseded } => LoadOutcome::Loaded {
                rows: fresh.rows,
                superseded,
                totals: fresh.totals,
                millis: started.elapsed().as_millis() as u64,
            },
        })
    }
}

/// Refuses a manifest the loader cannot trust: a layout version it does not know, counts that do
/// not conserve the input's records, or a part outside the dataset's own prefix (the key reaches
/// the backend: a path such as `../../etc/passwd` must never be read).
fn check_manifest(manifest_key: &str, m: &Manifest) -> Result<(), WarehouseError> {
    let refuse = |why: String| Err(WarehouseError::source(format!("{manifest_key}: {why}")));
    if m.manifest_version != crate::manifest::MANIFEST_VERSION {
        return refuse(format!(
            "manifest version {} is not one this loader knows ({}); upgrade the loader",
            m.manifest_version,
            crate::manifest::MANIFEST_VERSION
        ));
    }
    if let Some(folder) = manifest_key
        .strip_prefix("manifests/")
        .and_then(|rest| rest.split('/').next())
        && folder != m.dataset
    {
        return refuse(format!(
            "a manifest of dataset `{}` under manifests/{folder}/",
            crate::error::clip(&m.dataset, 64)
        ));
    }
    if m.rows_ok.checked_add(m.rows_rejected) != Some(m.rows_read) {
        return refuse(format!(
            "the counts do not conserve the input: rows_read {} is not rows_ok {} + rows_rejected {}",
            m.rows_read, m.rows_ok, m.rows_rejected
        ));
    }
    let listed = m
        .outputs
        .iter()
        .try_fold(0u64, |sum, o| sum.checked_add(o.rows));
    if m.status == Status::Ok && listed != Some(m.rows_written) {
        return refuse(format!(
            "rows_written {} is not the sum of the parts' rows ({})",
            m.rows_written,
            listed.map_or("overflow".to_string(), |n| n.to_string())
        ));
    }
    if let Some(q) = &m.quarantine
        && q.rows != m.rows_rejected
    {
        return refuse(format!(
            "the quarantine holds {} records, rows_rejected is {}",
            q.rows, m.rows_rejected
        ));
    }
    let prefix = format!("processed/{}/", m.dataset);
    for o in &m.outputs {
        let inside = o.key.strip_prefix(&prefix).is_some_and(|rest| {
            o.key.ends_with(".parquet")
                && !rest.is_empty()
                && rest
                    .split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
                && !o.key.contains(['\\', '\0', '\'', '?', '*', '['])
        });
        if !inside {
            return refuse(format!(
                "part `{}` is not under {prefix}",
                crate::error::clip(&o.key, 120)
            ));
        }
    }
    Ok(())
}

/// The stage name in the events the loader publishes.
pub const STAGE: &str = "warehouse-loader";

/// Reads the manifest at `manifest_key` in `store`, loads it, and says what happened as a
/// `loaded` or `load_failed` pipeline event. Only a failure worth retrying (throttling, an
/// unreachable warehouse or bucket) is an `Err`: the caller retries the delivery; any other
/// failure is a `load_failed` event, not a retry loop.
pub fn load_and_report<W: Warehouse>(
    loader: &mut Loader<W>,
    store: &dyn ObjectStore,
    manifest_key: &str,
) -> Result<PipelineEvent, WarehouseError> {
    let started = Instant::now();
    let manifest = match read_manifest(store, manifest_key) {
        Ok(m) => m,
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => {
            let source = crate::manifest::SourceRef {
                bucket: String::new(),
                key: String::new(),
                etag: String::new(),
                bytes: 0,
                ..Default::default()
            };
            return Ok(PipelineEvent {
                manifest: Some(store.locate(manifest_key)),
                error: Some(e.message),
                ..PipelineEvent::new(Outcome::LoadFailed, STAGE, source)
            });
        }
    };
    let mut event = PipelineEvent::from_manifest(STAGE, &manifest, manifest_key, store);
    event.output_prefix = None;
    let table = format!("{}.{}", loader.schema().name(), manifest.dataset);
    let result = loader.load(manifest_key, &manifest, store);
    event.duration_ms = started.elapsed().as_millis() as u64;
    let info = |outcome: &str, rows: u64, superseded: u64, control_totals| LoadInfo {
        table: table.clone(),
        outcome: outcome.to_string(),
        rows,
        superseded,
        control_totals,
    };
    match result {
        Ok(LoadOutcome::Loaded {
            rows,
            superseded,
            totals,
            ..
        }) => {
            event.outcome = Outcome::Loaded {
                load: info("loaded", rows, superseded, totals),
            };
        }
        Ok(LoadOutcome::AlreadyLoaded) => {
            event.outcome = Outcome::Loaded {
                load: info("already_loaded", 0, 0, BTreeMap::new()),
            };
        }
        Ok(LoadOutcome::NotLoaded(_)) => {
            event.outcome = Outcome::Loaded {
                load: info("not_loaded", 0, 0, BTreeMap::new()),
            };
        }
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => {
            event.outcome = Outcome::LoadFailed;
            event.error = Some(e.message);
        }
    }
    Ok(event)
}

/// Reads and parses a manifest.
pub fn read_manifest(store: &dyn ObjectStore, key: &str) -> Result<Manifest, WarehouseError> {
    use std::io::Read;
    let mut text = Vec::new();
    match store.open(key).and_then(|mut r| r.read_to_end(&mut text)) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(WarehouseError::source(format!(
                "manifest {} does not exist",
                store.locate(key)
            )));
        }
        Err(e) => {
            return Err(WarehouseError::transient(format!(
                "cannot read manifest {}: {e}",
                store.locate(key)
            )));
        }
    }
    serde_json::from_slice(&text).map_err(|e| {
        WarehouseError::source(format!("{} is not a manifest: {e}", store.locate(key)))
    })
}

/// Index of `rows_loaded` in the ledger's parameters.
const LEDGER_ROWS_LOADED: usize = 10;
/// Index of `load_ms` in the ledger's parameters.
const LEDGER_LOAD_MS: usize = 14;

/// The ledger row's parameters for a manifest ([`sql::LEDGER_COLUMNS`] but `loaded_at`).
fn ledger_values(manifest_key: &str, m: &Manifest) -> Vec<String> {
    let status = match m.status {
        Status::Ok => "loaded",
        Status::RejectedOverThreshold => "rejected_over_threshold",
        Status::Failed => "failed",
    };
    let rows_loaded = if m.status == Status::Ok {
        m.rows_written
    } else {
        0
    };
    let values = vec![
        manifest_key.to_string(),
        m.dataset.clone(),
        m.contract_version.clone(),
        m.source.bucket.clone(),
        m.source.key.clone(),
        m.source.etag.clone(),
        status.to_string(),
        m.rows_read.to_string(),
        m.rows_ok.to_string(),
        m.rows_rejected.to_string(),
        rows_loaded.to_string(),
        serde_json::to_string(&m.reject_reasons).unwrap_or_default(),
        serde_json::to_string(&m.control_totals).unwrap_or_default(),
        m.finished_at.clone(),
        "0".to_string(),
    ];
    debug_assert_eq!(values.len(), sql::LEDGER_COLUMNS.len() - 1);
    debug_assert_eq!(sql::LEDGER_COLUMNS[LEDGER_LOAD_MS].0, "load_ms");
    debug_assert_eq!(sql::LEDGER_COLUMNS[LEDGER_ROWS_LOADED].0, "rows_loaded");
    values
}

/// A reconciliation row read at the totals' scales: the values to compare, and the text to show.
#[derive(Debug, Clone)]
struct Parsed {
    rows: u64,
    totals: Vec<i128>,
    measure: Measure,
}

/// The manifest's numbers (rows written, control totals scaled like their columns), and how to
/// read and compare a reconciliation row.
struct Expected {
    /// (name, scale) of each control total.
    scales: Vec<(String, u8)>,
    manifest: Parsed,
}

impl Expected {
    fn from_manifest(m: &Manifest, table: &TableDef) -> Result<Self, WarehouseError> {
        let mut scales = Vec::new();
        let mut totals = Vec::new();
        for t in &table.totals {
            let scale = table
                .columns
                .iter()
                .find(|c| &c.name == t)
                .map(|c| match c.ty {
                    sql::SqlType::Decimal(_, s) => s,
                    _ => 0,
                })
                .unwrap_or(0);
            let text = m.control_totals.get(t.name()).ok_or_else(|| {
                WarehouseError::source(format!(
                    "the manifest has no control total for {}",
                    t.name()
                ))
            })?;
            let value = parse_total(text, scale).ok_or_else(|| {
                WarehouseError::source(format!(
                    "the manifest's control total {} = {text:?} is not a number",
                    t.name()
                ))
            })?;
            scales.push((t.name().to_string(), scale));
            totals.push(value);
        }
        let measure = Measure {
            rows: m.rows_written,
            totals: m.control_totals.clone(),
        };
        Ok(Expected {
            scales,
            manifest: Parsed {
                rows: m.rows_written,
                totals,
                measure,
            },
        })
    }

    /// Reads a reconciliation row: count, then one sum per total (NULL, an empty set's sum, is 0).
    fn parse(&self, at: Checkpoint, rows: &Rows) -> Result<Parsed, WarehouseError> {
        let row = rows.first().ok_or_else(|| {
            WarehouseError::sql(format!("{}: reconciliation returned no row", at.as_str()))
        })?;
        let cell = |i: usize| row.get(i).cloned().flatten();
        let count: u64 = cell(0).and_then(|c| c.trim().parse().ok()).unwrap_or(0);
        let mut totals = Vec::with_capacity(self.scales.len());
        let mut text = BTreeMap::new();
        for (i, (name, scale)) in self.scales.iter().enumerate() {
            let shown = cell(i + 1).unwrap_or_else(|| "0".into());
            let value = parse_total(&shown, *scale).ok_or_else(|| {
                WarehouseError::sql(format!(
                    "{}: the warehouse's {name} total `{shown}` is not a number",
                    at.as_str()
                ))
            })?;
            totals.push(value);
            text.insert(name.clone(), shown.trim().to_string());
        }
        Ok(Parsed {
            rows: count,
            totals,
            measure: Measure {
                rows: count,
                totals: text,
            },
        })
    }

    /// `got` must equal `want` in count and every total; a mismatch names both numbers.
    fn compare(
        &self,
        at: Checkpoint,
        want: &Parsed,
        got: &Parsed,
        manifest_key: &str,
    ) -> Result<(), WarehouseError> {
        let against = match at {
            Checkpoint::Merged => "rows to merge",
            _ => "manifest",
        };
        let mut problems = Vec::new();
        if got.rows != want.rows {
            problems.push(format!(
                "rows: {against} {}, warehouse {}",
                want.rows, got.rows
            ));
        }
        for (i, (name, scale)) in self.scales.iter().enumerate() {
            if got.totals[i] != want.totals[i] {
                problems.push(format!(
                    "{name}: {against} {}, warehouse {}",
                    crate::parse::format_decimal(want.totals[i], *scale),
                    got.measure.totals.get(name).map_or("", String::as_str)
                ));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let of = match at {
            Checkpoint::Merged => "the rows left to merge",
            _ => "the manifest",
        };
        Err(WarehouseError {
            kind: ErrorKind::Mismatch,
            message: format!(
                "{manifest_key}: {} do not match {of} ({})",
                at.as_str(),
                problems.join("; ")
            ),
        })
    }
}

/// A total as an integer at `scale` (the warehouse may print more or fewer decimals).
fn parse_total(text: &str, scale: u8) -> Option<i128> {
    let t = text.trim();
    // Trailing zeros past the scale carry no value ("12.3400" at scale 2).
    let t = match t.split_once('.') {
        Some((int, frac)) if frac.len() > scale as usize => {
            let (keep, rest) = frac.split_at(scale as usize);
            if !rest.bytes().all(|b| b == b'0') {
                return None;
            }
            if keep.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{keep}")
            }
        }
        _ => t.to_string(),
    };
    parse_decimal(t.as_bytes(), 38, scale).ok()
}

/// The record batches of one Parquet part in `store` (parts are bounded in size by the writer, so
/// one is read whole).
pub fn part_batches(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader, WarehouseError> {
    use std::io::Read;
    let mut body = Vec::new();
    store
        .open(key)
        .and_then(|mut r| r.read_to_end(&mut body))
        .map_err(|e| WarehouseError::source(format!("cannot read part {key}: {e}")))?;
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body))
        .and_then(|b| b.with_batch_size(8192).build())
        .map_err(|e| WarehouseError::source(format!("part {key} is not readable Parquet: {e}")))
}

/// A staging table's name for a manifest: fixed text and a hash, never data.
pub fn stage_name(manifest_key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(manifest_key.as_bytes());
    let hex = hex::encode(&digest[..8]);
    format!("bondlake_stage_{hex}")
}

/// The staging table's name as SQL writes it: quoted, as every identifier is.
pub fn stage_table(manifest_key: &str) -> String {
    format!("\"{}\"", stage_name(manifest_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_compare_by_value_not_by_text() {
        assert_eq!(parse_total("12.3400", 2), Some(1234));
        assert_eq!(parse_total("12.34", 2), Some(1234));
        assert_eq!(parse_total("12", 2), Some(1200));
        assert_eq!(parse_total("12.345", 2), None);
        assert_eq!(parse_total("-0.5", 2), Some(-50));
        assert_eq!(parse_total("42", 0), Some(42));
    }

    #[test]
    fn identifiers_outside_the_safe_set_are_refused() {
        assert!(ident("investor_holdings").is_ok());
        for bad in [
            "",
            "Robert",
            "a;drop",
            "1abc",
            "a\"b",
            "naïve",
            &"x".repeat(64),
        ] {
            assert!(ident(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_merge_matches_on_the_key_and_updates_the_rest() {
        let c = crate::load_dataset("market_daily", None).expect("contract");
        let t = TableDef::from_contract(&c, "bl").expect("table");
        let m = t.merge_sql("\"stage\"", &t.stage_columns(None));
        // The target by its name, never an alias (Redshift's MERGE takes none on the target).
        assert!(m.starts_with(
            "MERGE INTO \"bl\".\"market_daily\" USING \"stage\" AS \"s\" ON \"bl\".\"market_daily\".\"exchange\" = \"s\".\"exchange\" AND \"bl\".\"market_daily\".\"symbol\" = \"s\".\"symbol\" AND \"bl\".\"market_daily\".\"trade_date\" = \"s\".\"trade_date\""
        ), "{m}");
        assert!(!m.contains("SET \"exchange\""));
        assert!(m.contains("\"volume\" = \"s\".\"volume\""));
        // A stage from an older contract version lacks the newer columns: they merge as NULL.
        let old: Vec<String> = ["exchange", "symbol", "trade_date", "volume"]
            .map(String::from)
            .to_vec();
        let m = t.merge_sql("\"stage\"", &t.stage_columns(Some(&old)));
        assert!(m.contains("\"isin\" = NULL"), "{m}");
        assert!(m.contains("\"volume\" = \"s\".\"volume\""), "{m}");
        let r = t.create_sql(Dialect::Redshift);
        assert!(
            r.contains("DISTKEY (\"symbol\")")
                && r.contains("COMPOUND SORTKEY (\"trade_date\", \"exchange\")"),
            "{r}"
        );
        assert!(r.contains("\"symbol\" VARCHAR(128)"), "{r}");
        assert!(
            t.create_sql(Dialect::Postgres)
                .contains("\"symbol\" VARCHAR(32)")
        );
    }
}
