//! The SQL the loader sends, generated from the contracts: one function per statement, with the
//! dialects differing only where they must. Identifiers come from contracts and configuration and
//! are validated and quoted ([`ident`]); values travel as parameters (all text, cast in SQL), so
//! nothing from the data is ever spliced into a statement.

use super::WarehouseError;
use crate::contract::{ColumnType, Contract, DerivedKind};
use crate::schema::{INGESTED_AT, RECORD_NUMBER, SOURCE_KEY, SOURCE_ORDER, output_schema};
use arrow_schema::{DataType, TimeUnit};

/// The SQL dialect of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Amazon Redshift, through the Data API.
    Redshift,
    /// PostgreSQL 15 or later (MERGE).
    Postgres,
    /// DuckDB, embedded.
    DuckDb,
    /// MySQL 8 and MariaDB 10.11, with `ANSI_QUOTES` in the session's `sql_mode` (so identifiers
    /// are quoted as everywhere else): the weekly trends' export.
    MySql,
}

impl Dialect {
    /// The `n`th (1-based) parameter of a statement, named `name` where the dialect names them.
    pub fn param(self, n: usize, name: &str) -> String {
        match self {
            Dialect::Redshift => format!(":{name}"),
            Dialect::Postgres | Dialect::DuckDb => format!("${n}"),
            Dialect::MySql => "?".into(),
        }
    }

    /// A text parameter cast to `ty`: parameters are always sent as text, so each backend infers
    /// the same type for them.
    pub fn typed_param(self, n: usize, name: &str, ty: &str) -> String {
        if self == Dialect::MySql {
            // MySQL binds text as text; CAST takes its own type names (CHAR, SIGNED).
            let ty = match ty {
                t if t.starts_with("VARCHAR") => "CHAR",
                "BIGINT" | "INTEGER" => "SIGNED",
                // RFC 3339 in UTC (`2026-11-25T22:15:09.410000Z`), which DATETIME does not read.
                "DATETIME(6)" => {
                    return format!(
                        "CAST(REPLACE(REPLACE({}, 'T', ' '), 'Z', '') AS DATETIME(6))",
                        self.param(n, name)
                    );
                }
                t => t,
            };
            return format!("CAST({} AS {ty})", self.param(n, name));
        }
        let ty = if ty == "VARCHAR" { self.text() } else { ty };
        format!(
            "CAST(CAST({} AS {}) AS {ty})",
            self.param(n, name),
            self.text()
        )
    }

    /// Unbounded text: Redshift's bare VARCHAR is VARCHAR(256), which would cut a long key.
    pub fn text(self) -> &'static str {
        match self {
            Dialect::Redshift => "VARCHAR(65535)",
            Dialect::Postgres | Dialect::DuckDb => "VARCHAR",
            Dialect::MySql => "CHAR",
        }
    }

    /// `expr` as text of at most `chars` characters (a count, a sum, a status), as each
    /// dialect casts it.
    pub fn as_text(self, expr: &str, chars: usize) -> String {
        match self {
            Dialect::MySql => format!("CAST({expr} AS CHAR)"),
            _ => format!("CAST({expr} AS VARCHAR({chars}))"),
        }
    }

    fn varchar(self, chars: usize) -> String {
        match self {
            // Redshift sizes VARCHAR in bytes: four per character covers any UTF-8 text.
            Dialect::Redshift => format!("VARCHAR({})", (chars * 4).min(65_535)),
            Dialect::Postgres | Dialect::MySql => format!("VARCHAR({chars})"),
            Dialect::DuckDb => "VARCHAR".into(),
        }
    }

    /// The warehouse's clock, as a statement against user tables may read it: Redshift's
    /// CURRENT_TIMESTAMP is a leader-node function, refused there.
    pub fn now(self) -> &'static str {
        match self {
            Dialect::Redshift => "GETDATE()",
            Dialect::Postgres | Dialect::DuckDb => "CURRENT_TIMESTAMP",
            // DATETIME holds no zone: the ledger keeps UTC.
            Dialect::MySql => "UTC_TIMESTAMP(6)",
        }
    }

    fn timestamptz(self) -> &'static str {
        match self {
            Dialect::Redshift => "TIMESTAMPTZ",
            Dialect::Postgres | Dialect::DuckDb => "TIMESTAMP WITH TIME ZONE",
            Dialect::MySql => "DATETIME(6)",
        }
    }

    fn double(self) -> &'static str {
        match self {
            Dialect::DuckDb | Dialect::MySql => "DOUBLE",
            Dialect::Redshift | Dialect::Postgres => "DOUBLE PRECISION",
        }
    }

    /// A table's options: MySQL's text compares byte for byte (`US10Y` is not `us10y`, which
    /// its default case-insensitive collation would make one key).
    fn table_options(self) -> &'static str {
        match self {
            Dialect::MySql => " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            _ => "",
        }
    }
}

/// A validated SQL identifier, quoted when formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident(String);

/// Validates `name` as an identifier: lowercase ASCII letters, digits and `_`, not starting with a
/// digit, at most 63 characters (PostgreSQL's limit, the smallest of the three).
pub fn ident(name: &str) -> Result<Ident, WarehouseError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.as_bytes()[0].is_ascii_digit()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(Ident(name.to_string()))
    } else {
        Err(WarehouseError::config(format!(
            "`{name}` is not a usable SQL identifier (lowercase letters, digits and _, at most 63)"
        )))
    }
}

impl Ident {
    /// The bare name.
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

/// A column's SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// Text of at most this many characters.
    Varchar(usize),
    /// A calendar date.
    Date,
    /// DECIMAL(precision, scale).
    Decimal(u8, u8),
    /// 64-bit integer.
    BigInt,
    /// 32-bit integer.
    Integer,
    /// Binary floating point (derived statistics only, never money).
    Double,
    /// An instant (UTC).
    TimestampTz,
}

impl SqlType {
    /// The type as `dialect` writes it.
    pub fn render(self, dialect: Dialect) -> String {
        match self {
            SqlType::Varchar(n) => dialect.varchar(n),
            SqlType::Date => "DATE".into(),
            SqlType::Decimal(p, s) => format!("DECIMAL({p},{s})"),
            SqlType::BigInt => "BIGINT".into(),
            SqlType::Integer => "INTEGER".into(),
            SqlType::Double => dialect.double().into(),
            SqlType::TimestampTz => dialect.timestamptz().into(),
        }
    }
}

/// One column of a warehouse table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// Its name.
    pub name: Ident,
    /// Its type.
    pub ty: SqlType,
}

/// Text columns with no `max_length` in the contract.
const DEFAULT_VARCHAR: usize = 256;
/// S3 keys are at most 1,024 bytes.
const KEY_VARCHAR: usize = 1024;

/// A dataset's warehouse table, as its contract implies: the output schema's columns in order
/// (contract columns, derived, lineage), the key the MERGE matches on, and the layout hints.
///
/// Every identifier in every statement is quoted, aliases included (`"s"`): Redshift reserves
/// words such as OPEN, and a bare one is a syntax error. The MERGE names its target by its
/// qualified name, never an alias, which Redshift's MERGE does not take.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// The schema (namespace) the table lives in.
    pub schema: Ident,
    /// The table, named after the dataset.
    pub name: Ident,
    /// Columns in output order.
    pub columns: Vec<ColumnDef>,
    /// The MERGE key.
    pub key: Vec<Ident>,
    /// Columns whose sums reconcile a load against its manifest.
    pub totals: Vec<Ident>,
    /// Redshift DISTKEY.
    pub distkey: Option<Ident>,
    /// Redshift compound SORTKEY.
    pub sortkey: Vec<Ident>,
    /// The contract version the table was brought up to.
    pub contract_version: String,
}

impl TableDef {
    /// The table `contract` implies, in `schema`.
    pub fn from_contract(contract: &Contract, schema: &str) -> Result<TableDef, WarehouseError> {
        let arrow = output_schema(contract);
        let mut columns = Vec::with_capacity(arrow.fields().len());
        for field in arrow.fields() {
            let name = field.name();
            let ty = match field.data_type() {
                DataType::Utf8 => SqlType::Varchar(text_length(contract, name)),
                DataType::Date32 => SqlType::Date,
                DataType::Decimal128(p, s) => SqlType::Decimal(*p, *s as u8),
                DataType::Int64 => SqlType::BigInt,
                DataType::Int32 => SqlType::Integer,
                DataType::Float64 => SqlType::Double,
                DataType::Timestamp(TimeUnit::Microsecond, _) => SqlType::TimestampTz,
                other => {
                    return Err(WarehouseError::config(format!(
                        "{}: column {name} has type {other}, which has no warehouse type",
                        contract.dataset
                    )));
                }
            };
            columns.push(ColumnDef {
                name: ident(name)?,
                ty,
            });
        }
        let named = |i: &usize| ident(&contract.columns[*i].name);
        Ok(TableDef {
            schema: ident(schema)?,
            name: ident(&contract.dataset)?,
            columns,
            key: contract.key.iter().map(named).collect::<Result<_, _>>()?,
            totals: contract
                .control_totals
                .iter()
                .map(named)
                .collect::<Result<_, _>>()?,
            distkey: contract
                .warehouse
                .distkey
                .as_deref()
                .map(ident)
                .transpose()?,
            sortkey: contract
                .warehouse
                .sortkey
                .iter()
                .map(|c| ident(c))
                .collect::<Result<_, _>>()?,
            contract_version: contract.version.clone(),
        })
    }

    fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c.name.name() == column)
    }

    /// `{t}."k" = {s}."k" AND ...` over the key.
    fn keys_match(&self, t: &str, s: &str) -> String {
        let on: Vec<String> = self
            .key
            .iter()
            .map(|k| format!("{t}.{k} = {s}.{k}"))
            .collect();
        on.join(" AND ")
    }

    /// Whether the table's row `t` comes from a newer input than the row `s` with the same key:
    /// within one Kafka topic-partition by offset, otherwise by the inputs' `_source_order`
    /// (event time, then sequencer). NULL (an input of unknown time) is never newer, so such a
    /// row is replaced, as a later load always replaced before.
    pub fn newer_sql(&self, t: &str, s: &str) -> String {
        let by_order = format!("{t}.\"{SOURCE_ORDER}\" > {s}.\"{SOURCE_ORDER}\"");
        if !["_kafka_topic", "_kafka_partition", "_kafka_offset"]
            .iter()
            .all(|c| self.has(c))
        {
            return by_order;
        }
        let (topic, partition, offset) = (
            "\"_kafka_topic\"",
            "\"_kafka_partition\"",
            "\"_kafka_offset\"",
        );
        format!(
            "(({t}.{topic} IS NOT NULL AND {t}.{topic} = {s}.{topic} AND {t}.{partition} = {s}.{partition} AND {t}.{offset} > {s}.{offset}) \
             OR (({t}.{topic} IS NULL OR {s}.{topic} IS NULL OR {t}.{topic} <> {s}.{topic} OR {t}.{partition} <> {s}.{partition}) AND {by_order}))"
        )
    }

    /// Deletes from the stage table `stage` the rows a newer input already gave the table: the
    /// newest input wins a key, whatever order loads run in.
    pub fn delete_superseded_sql(&self, stage: &str) -> String {
        let t = self.qualified();
        format!(
            "DELETE FROM {stage} USING {t} WHERE {} AND {}",
            self.keys_match(&t, stage),
            self.newer_sql(&t, stage)
        )
    }

    /// The rows of the stage relation `stage` that no newer input gave the table (the same
    /// filter as [`TableDef::delete_superseded_sql`], for a stage that is a query, not a table).
    pub fn fresh_sql(&self, stage: &str) -> String {
        format!(
            "(SELECT * FROM {stage} AS \"s\" WHERE NOT EXISTS (SELECT 1 FROM {} AS \"t\" WHERE {} AND {}))",
            self.qualified(),
            self.keys_match("\"t\"", "\"s\""),
            self.newer_sql("\"t\"", "\"s\"")
        )
    }

    /// `"schema"."table"`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Creates the table when it does not exist.
    pub fn create_sql(&self, dialect: Dialect) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.ty.render(dialect)))
            .collect();
        let mut sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (\n  {}",
            self.qualified(),
            cols.join(",\n  ")
        );
        // PostgreSQL enforces the key and uses its index for the MERGE join; DuckDB's index would
        // slow bulk loads for no gain (its MERGE hash-joins); Redshift does not enforce keys.
        // MySQL's upsert (ON DUPLICATE KEY UPDATE) is the key's.
        if matches!(dialect, Dialect::Postgres | Dialect::MySql) {
            sql.push_str(&format!(",\n  PRIMARY KEY ({})", join(&self.key)));
        }
        sql.push_str("\n)");
        sql.push_str(dialect.table_options());
        if dialect == Dialect::Redshift {
            match &self.distkey {
                Some(k) => sql.push_str(&format!("\nDISTSTYLE KEY DISTKEY ({k})")),
                None => sql.push_str("\nDISTSTYLE AUTO"),
            }
            if !self.sortkey.is_empty() {
                sql.push_str(&format!("\nCOMPOUND SORTKEY ({})", join(&self.sortkey)));
            }
        }
        sql
    }

    /// Creates the session's stage for one load: `columns` (the parts' columns, in their order,
    /// which Redshift's COPY maps by position), typed as the table's, temporary, with no keys.
    pub fn create_stage_sql(
        &self,
        stage: &str,
        columns: &[&ColumnDef],
        dialect: Dialect,
    ) -> String {
        let cols: Vec<String> = columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.ty.render(dialect)))
            .collect();
        let temporary = if dialect == Dialect::MySql {
            "TEMPORARY"
        } else {
            "TEMP"
        };
        let mut sql = format!("CREATE {temporary} TABLE {stage} ({})", cols.join(", "));
        if dialect == Dialect::Postgres {
            sql.push_str(" ON COMMIT DROP");
        }
        sql.push_str(dialect.table_options());
        sql
    }

    /// Adds a column a newer contract brought (columns are never dropped).
    pub fn add_column_sql(&self, column: &ColumnDef, dialect: Dialect) -> String {
        format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            self.qualified(),
            column.name,
            column.ty.render(dialect)
        )
    }

    /// The table's columns the stage has (a stage from an older contract version lacks the
    /// newer ones): the stage's names as `present`, or every column when `None`.
    pub fn stage_columns<'a>(&'a self, present: Option<&[String]>) -> Vec<&'a ColumnDef> {
        self.columns
            .iter()
            .filter(|c| present.is_none_or(|p| p.iter().any(|n| n == c.name.name())))
            .collect()
    }

    /// Upserts `stage` into the table on the key, after superseded rows left the stage: the
    /// stage's row wins. Columns the stage lacks (`present`) are NULL. The target is named, not
    /// aliased: Redshift's MERGE takes an alias on the source only.
    pub fn merge_sql(&self, stage: &str, present: &[&ColumnDef]) -> String {
        let t = self.qualified();
        let value = |c: &ColumnDef| {
            if present.iter().any(|p| p.name == c.name) {
                format!("\"s\".{}", c.name)
            } else {
                "NULL".to_string()
            }
        };
        let set: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !self.key.contains(&c.name))
            .map(|c| format!("{} = {}", c.name, value(c)))
            .collect();
        let names: Vec<&Ident> = self.columns.iter().map(|c| &c.name).collect();
        let values: Vec<String> = self.columns.iter().map(value).collect();
        format!(
            "MERGE INTO {t} USING {stage} AS \"s\" ON {}\n\
             WHEN MATCHED THEN UPDATE SET {}\n\
             WHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
            self.keys_match(&t, "\"s\""),
            set.join(", "),
            join(&names),
            values.join(", ")
        )
    }

    /// MySQL's MERGE: an upsert of the stage on the table's primary key (the key), the stage's row
    /// winning, with `VALUES()` (the row-alias form, MySQL 8.0.19's, fails on MariaDB). Columns
    /// the stage lacks (`present`) are NULL, as in [`TableDef::merge_sql`].
    pub fn upsert_sql(&self, stage: &str, present: &[&ColumnDef]) -> String {
        let value = |c: &ColumnDef| {
            if present.iter().any(|p| p.name == c.name) {
                format!("\"s\".{}", c.name)
            } else {
                "NULL".to_string()
            }
        };
        let names: Vec<&Ident> = self.columns.iter().map(|c| &c.name).collect();
        let values: Vec<String> = self.columns.iter().map(value).collect();
        let set: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !self.key.contains(&c.name))
            .map(|c| format!("{} = VALUES({})", c.name, c.name))
            .collect();
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM {stage} AS \"s\" ON DUPLICATE KEY UPDATE {}",
            self.qualified(),
            join(&names),
            values.join(", "),
            set.join(", ")
        )
    }

    /// How many of `stage`'s rows a newer input already gave the table (what
    /// [`TableDef::delete_superseded_sql`] would delete), as a count.
    pub fn newer_count_sql(&self, stage: &str) -> String {
        let t = self.qualified();
        format!(
            "SELECT COUNT(*) FROM {stage} JOIN {t} ON {} WHERE {}",
            self.keys_match(&t, stage),
            self.newer_sql(&t, stage)
        )
    }

    /// [`TableDef::delete_superseded_sql`] in MySQL's multi-table form.
    pub fn delete_superseded_mysql(&self, stage: &str) -> String {
        let t = self.qualified();
        format!(
            "DELETE {stage} FROM {stage} JOIN {t} ON {} WHERE {}",
            self.keys_match(&t, stage),
            self.newer_sql(&t, stage)
        )
    }

    /// Row count and control totals of `relation`, as text (exact decimals).
    pub fn reconcile_sql(&self, relation: &str, dialect: Dialect) -> String {
        let mut cols = vec![dialect.as_text("COUNT(*)", 40)];
        for t in &self.totals {
            cols.push(dialect.as_text(&format!("SUM({t})"), 60));
        }
        format!("SELECT {} FROM {relation}", cols.join(", "))
    }

    /// The table's rows that are the stage's, after the MERGE: the same key and the same lineage
    /// (`_source_key`, `_record_number`, `_ingested_at`: this file's run). (The key alone would
    /// not do: the rows must be this file's, not merely hold its keys.)
    pub fn merged_join(&self, stage: &str) -> String {
        let lineage: Vec<String> = [SOURCE_KEY, RECORD_NUMBER, INGESTED_AT]
            .iter()
            .map(|c| format!("\"t\".\"{c}\" = \"s\".\"{c}\""))
            .collect();
        format!(
            "{} AS \"t\" JOIN {stage} AS \"s\" ON {} AND {}",
            self.qualified(),
            self.keys_match("\"t\"", "\"s\""),
            lineage.join(" AND ")
        )
    }

    /// Row count and control totals of the table's rows that are the stage's, after the MERGE:
    /// they must equal the stage's rows (those not superseded) exactly.
    pub fn reconcile_merged_sql(&self, stage: &str, dialect: Dialect) -> String {
        let mut cols = vec![dialect.as_text("COUNT(*)", 40)];
        for t in &self.totals {
            cols.push(dialect.as_text(&format!("SUM(\"t\".{t})"), 60));
        }
        format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            self.merged_join(stage)
        )
    }

    /// For a backend that cannot branch inside a transaction (Redshift's Data API runs a batch
    /// as one): a statement that fails, aborting the transaction and so the MERGE, unless the
    /// merged rows equal the stage's in count and every total. The failure is a division by
    /// zero, which [`is_guard_failure`] recognises.
    pub fn guard_sql(&self, stage: &str) -> String {
        let mut merged = vec!["COUNT(*) AS \"n\"".to_string()];
        let mut staged = vec!["COUNT(*) AS \"n\"".to_string()];
        let mut equal = vec!["\"m\".\"n\" = \"f\".\"n\"".to_string()];
        for (i, t) in self.totals.iter().enumerate() {
            merged.push(format!("COALESCE(SUM(\"t\".{t}), 0) AS \"t{i}\""));
            staged.push(format!("COALESCE(SUM({t}), 0) AS \"t{i}\""));
            equal.push(format!("\"m\".\"t{i}\" = \"f\".\"t{i}\""));
        }
        format!(
            "SELECT 1 / CASE WHEN {} THEN 1 ELSE 0 END FROM (SELECT {} FROM {}) AS \"m\", (SELECT {} FROM {stage}) AS \"f\"",
            equal.join(" AND "),
            merged.join(", "),
            self.merged_join(stage),
            staged.join(", ")
        )
    }
}

/// Whether a warehouse's error is [`TableDef::guard_sql`] failing (the merged rows differed).
pub fn is_guard_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("divide by zero") || m.contains("division by zero")
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The length a text column needs: the contract's `max_length`, the longest enum value or bucket
/// label, or a default.
fn text_length(contract: &Contract, name: &str) -> usize {
    if name == SOURCE_KEY {
        return KEY_VARCHAR;
    }
    if let Some(c) = contract.columns.iter().find(|c| c.name == name) {
        if let Some(n) = c.max_length {
            return n;
        }
        if c.ty == ColumnType::Enum
            && let Some(d) = &c.domain
        {
            return d
                .values
                .iter()
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(1);
        }
    }
    for d in &contract.derived {
        if d.name == name
            && let DerivedKind::Bucket {
                labels, null_label, ..
            } = &d.kind
        {
            return labels
                .iter()
                .chain(null_label)
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(1);
        }
    }
    DEFAULT_VARCHAR
}

/// Creates the schema when it does not exist.
pub(crate) fn create_schema_sql(schema: &Ident) -> String {
    format!("CREATE SCHEMA IF NOT EXISTS {schema}")
}

/// The existing columns of a table (parameters: schema, table).
pub fn columns_query(dialect: Dialect) -> String {
    format!(
        "SELECT {} FROM \"information_schema\".\"columns\" \
         WHERE \"table_schema\" = {} AND \"table_name\" = {} ORDER BY \"ordinal_position\"",
        dialect.as_text("\"column_name\"", 128),
        dialect.typed_param(1, "schema", "VARCHAR"),
        dialect.typed_param(2, "table", "VARCHAR")
    )
}

/// Name of the load ledger table.
pub const LEDGER: &str = "load_ledger";

/// The ledger's columns, in order, with their types; the parameters of [`ledger_insert_sql`] are
/// these in this order, except `loaded_at`, which the warehouse's clock fills.
pub const LEDGER_COLUMNS: [(&str, SqlType); 16] = [
    ("manifest_key", SqlType::Varchar(KEY_VARCHAR)),
    ("dataset", SqlType::Varchar(64)),
    ("contract_version", SqlType::Varchar(32)),
    ("source_bucket", SqlType::Varchar(255)),
    ("source_key", SqlType::Varchar(KEY_VARCHAR)),
    ("source_etag", SqlType::Varchar(256)),
    ("status", SqlType::Varchar(32)),
    ("rows_read", SqlType::BigInt),
    ("rows_ok", SqlType::BigInt),
    ("rows_rejected", SqlType::BigInt),
    ("rows_loaded", SqlType::BigInt),
    ("reject_reasons", SqlType::Varchar(4096)),
    ("control_totals", SqlType::Varchar(4096)),
    ("processed_at", SqlType::TimestampTz),
    ("load_ms", SqlType::BigInt),
    ("loaded_at", SqlType::TimestampTz),
];

/// The ledger, `"schema"."load_ledger"`.
pub fn ledger_table(schema: &Ident) -> String {
    format!("{schema}.\"{LEDGER}\"")
}

/// Creates the ledger: one row per manifest ever acted on (loaded, or recorded as not loadable).
pub(crate) fn ledger_create_sql(schema: &Ident, dialect: Dialect) -> String {
    let cols: Vec<String> = LEDGER_COLUMNS
        .iter()
        .map(|(n, t)| match (dialect, *n) {
            // The key of MySQL's ledger: in utf8mb4, 1,024 characters are past InnoDB's 3,072
            // bytes a key; manifest keys are ASCII (the engine names them).
            (Dialect::MySql, "manifest_key") => format!(
                "\"{n}\" {} CHARACTER SET ascii COLLATE ascii_bin",
                t.render(dialect)
            ),
            _ => format!("\"{n}\" {}", t.render(dialect)),
        })
        .collect();
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  {}",
        ledger_table(schema),
        cols.join(",\n  ")
    );
    if dialect != Dialect::Redshift {
        sql.push_str(",\n  PRIMARY KEY (\"manifest_key\")");
    }
    sql.push_str("\n)");
    sql.push_str(dialect.table_options());
    if dialect == Dialect::Redshift {
        sql.push_str("\nDISTSTYLE ALL SORTKEY (\"loaded_at\")");
    }
    sql
}

/// Records a load in `table` (the ledger, or Redshift's session copy of it): the parameters are
/// [`LEDGER_COLUMNS`] but `loaded_at`, which the warehouse's clock fills.
pub fn ledger_insert_sql(table: &str, dialect: Dialect) -> String {
    let fields = &LEDGER_COLUMNS[..LEDGER_COLUMNS.len() - 1];
    let names: Vec<String> = LEDGER_COLUMNS
        .iter()
        .map(|(n, _)| format!("\"{n}\""))
        .collect();
    let mut values: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, (n, t))| dialect.typed_param(i + 1, n, &t.render(dialect)))
        .collect();
    values.push(dialect.now().into());
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        values.join(", ")
    )
}

/// Whether a manifest is in the ledger (parameter: the manifest key).
pub fn ledger_lookup_sql(schema: &Ident, dialect: Dialect) -> String {
    format!(
        "SELECT {} FROM {} WHERE \"manifest_key\" = {}",
        dialect.as_text("\"status\"", 32),
        ledger_table(schema),
        dialect.typed_param(1, "manifest_key", "VARCHAR")
    )
}
