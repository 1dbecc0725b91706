//! The SQL the loader sends, generated from the contracts: one function per statement, with the
//! dialects differing only where they must. Identifiers come from contracts and configuration and
//! are validated and quoted ([`ident`]); values travel as parameters (all text, cast in SQL), so
//! nothing from the data is ever spliced into a statement.

use super::WarehouseError;
use crate::contract::{ColumnType, Contract, DerivedKind};
use crate::schema::{SOURCE_KEY, output_schema};
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
}

impl Dialect {
    /// The `n`th (1-based) parameter of a statement, named `name` where the dialect names them.
    pub fn param(self, n: usize, name: &str) -> String {
        match self {
            Dialect::Redshift => format!(":{name}"),
            Dialect::Postgres | Dialect::DuckDb => format!("${n}"),
        }
    }

    /// A text parameter cast to `ty`: parameters are always sent as text, so each backend infers
    /// the same type for them.
    pub fn typed_param(self, n: usize, name: &str, ty: &str) -> String {
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
        }
    }

    fn varchar(self, chars: usize) -> String {
        match self {
            // Redshift sizes VARCHAR in bytes: four per character covers any UTF-8 text.
            Dialect::Redshift => format!("VARCHAR({})", (chars * 4).min(65_535)),
            Dialect::Postgres => format!("VARCHAR({chars})"),
            Dialect::DuckDb => "VARCHAR".into(),
        }
    }

    fn timestamptz(self) -> &'static str {
        match self {
            Dialect::Redshift => "TIMESTAMPTZ",
            Dialect::Postgres | Dialect::DuckDb => "TIMESTAMP WITH TIME ZONE",
        }
    }

    fn double(self) -> &'static str {
        match self {
            Dialect::DuckDb => "DOUBLE",
            Dialect::Redshift | Dialect::Postgres => "DOUBLE PRECISION",
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
        })
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
        if dialect == Dialect::Postgres {
            sql.push_str(&format!(",\n  PRIMARY KEY ({})", join(&self.key)));
        }
        sql.push_str("\n)");
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

    /// Creates the session's stage for one load: the table's columns in output order (the order
    /// of the Parquet parts, which Redshift's COPY maps by position), temporary, with no keys.
    pub fn create_stage_sql(&self, stage: &str, dialect: Dialect) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.ty.render(dialect)))
            .collect();
        let mut sql = format!("CREATE TEMP TABLE {stage} ({})", cols.join(", "));
        if dialect == Dialect::Postgres {
            sql.push_str(" ON COMMIT DROP");
        }
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

    /// Upserts `stage` into the table on the key: a later load of a key wins.
    pub fn merge_sql(&self, stage: &str) -> String {
        let on: Vec<String> = self.key.iter().map(|k| format!("t.{k} = s.{k}")).collect();
        let set: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !self.key.contains(&c.name))
            .map(|c| format!("{} = s.{}", c.name, c.name))
            .collect();
        let names: Vec<&Ident> = self.columns.iter().map(|c| &c.name).collect();
        let values: Vec<String> = names.iter().map(|n| format!("s.{n}")).collect();
        format!(
            "MERGE INTO {} AS t USING {stage} AS s ON {}\n\
             WHEN MATCHED THEN UPDATE SET {}\n\
             WHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
            self.qualified(),
            on.join(" AND "),
            set.join(", "),
            join(&names),
            values.join(", ")
        )
    }

    /// Row count and control totals of `relation`, as text (exact decimals).
    pub fn reconcile_sql(&self, relation: &str) -> String {
        let mut cols = vec!["CAST(COUNT(*) AS VARCHAR(40))".to_string()];
        for t in &self.totals {
            cols.push(format!("CAST(SUM({t}) AS VARCHAR(60))"));
        }
        format!("SELECT {} FROM {relation}", cols.join(", "))
    }

    /// Row count and control totals of the table's rows whose keys are in `stage`, after the
    /// MERGE: they must equal the staged rows exactly. (Filtering on `_source_key` would not do: a
    /// vendor's corrected file keeps its key, and the first version's other rows stay.)
    pub fn reconcile_merged_sql(&self, stage: &str) -> String {
        let on: Vec<String> = self.key.iter().map(|k| format!("t.{k} = s.{k}")).collect();
        let mut cols = vec!["CAST(COUNT(*) AS VARCHAR(40))".to_string()];
        for t in &self.totals {
            cols.push(format!("CAST(SUM(t.{t}) AS VARCHAR(60))"));
        }
        format!(
            "SELECT {} FROM {} AS t JOIN {stage} AS s ON {}",
            cols.join(", "),
            self.qualified(),
            on.join(" AND ")
        )
    }
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
pub fn create_schema_sql(schema: &Ident) -> String {
    format!("CREATE SCHEMA IF NOT EXISTS {schema}")
}

/// The existing columns of a table (parameters: schema, table).
pub fn columns_query(dialect: Dialect) -> String {
    format!(
        "SELECT CAST(column_name AS VARCHAR(128)) FROM information_schema.columns \
         WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
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

/// Creates the ledger: one row per manifest ever acted on (loaded, or recorded as not loadable).
pub fn ledger_create_sql(schema: &Ident, dialect: Dialect) -> String {
    let cols: Vec<String> = LEDGER_COLUMNS
        .iter()
        .map(|(n, t)| format!("{n} {}", t.render(dialect)))
        .collect();
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {schema}.{LEDGER} (\n  {}",
        cols.join(",\n  ")
    );
    if dialect != Dialect::Redshift {
        sql.push_str(",\n  PRIMARY KEY (manifest_key)");
    }
    sql.push_str("\n)");
    if dialect == Dialect::Redshift {
        sql.push_str("\nDISTSTYLE ALL SORTKEY (loaded_at)");
    }
    sql
}

/// Records a load in `table` (the ledger, or Redshift's session copy of it): the parameters are
/// [`LEDGER_COLUMNS`] but `loaded_at`.
pub fn ledger_insert_sql(table: &str, dialect: Dialect) -> String {
    let fields = &LEDGER_COLUMNS[..LEDGER_COLUMNS.len() - 1];
    let names: Vec<&str> = LEDGER_COLUMNS.iter().map(|(n, _)| *n).collect();
    let mut values: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, (n, t))| dialect.typed_param(i + 1, n, &t.render(dialect)))
        .collect();
    values.push("CURRENT_TIMESTAMP".into());
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        values.join(", ")
    )
}

/// Whether a manifest is in the ledger (parameter: the manifest key).
pub fn ledger_lookup_sql(schema: &Ident, dialect: Dialect) -> String {
    format!(
        "SELECT CAST(status AS VARCHAR(32)) FROM {schema}.{LEDGER} WHERE manifest_key = {}",
        dialect.typed_param(1, "manifest_key", "VARCHAR")
    )
}
