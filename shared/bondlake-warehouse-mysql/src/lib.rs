//! MySQL 8 and MariaDB 10.11: where the weekly trends go for the data scientists, the Sqoop
//! export's replacement. The load is the loader's one flow ([`bondlake_core::warehouse`]) in
//! MySQL's words, in one transaction under a named lock:
//!
//! 1. a temporary stage filled from the Parquet parts, by `LOAD DATA LOCAL INFILE` from a
//!    handler that streams the rows (no file is ever read: a server asking for one gets
//!    nothing), or, where the server refuses local data, by multi-row prepared INSERTs; every
//!    value travels as text, decimals exact;
//! 2. reconciliation by query, never by affected-rows counts: the stage's rows and the exact sum
//!    of each decimal column against the manifest, and, for a manifest that lists them, each
//!    week's row count and checksum (`weekly::row_checksum`, here `CRC32(CONCAT_WS('|', …))`);
//! 3. the rows a newer input already gave the table dropped from the stage, then
//!    `INSERT … SELECT … ON DUPLICATE KEY UPDATE c = VALUES(c)` (the row-alias form fails on
//!    MariaDB), the merged rows reconciled again, per week too;
//! 4. the ledger row, then COMMIT. A mismatch anywhere rolls everything back.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bondlake_core::manifest::rfc3339;
use bondlake_core::parse::{format_date, format_decimal};
use bondlake_core::warehouse::sql::{
    SqlType, TableDef, ledger_insert_sql, ledger_lookup_sql, ledger_table,
};
use bondlake_core::warehouse::{
    CellKind, Checkpoint, Dialect, LoadJob, Loaded, ResultColumn, ResultSet, Rows, Warehouse,
    WarehouseError, stage_table,
};
use mysql::prelude::Queryable;
use mysql::{Conn, LocalInfileHandler, Opts, OptsBuilder, TxOpts, Value};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

/// What every session sets first: identifiers in double quotes (the SQL the loader writes),
/// strict data (a value that does not fit is an error, never a silent truncation), UTC.
const SESSION: [&str; 3] = [
    "SET SESSION sql_mode = 'ANSI_QUOTES,STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION time_zone = '+00:00'",
    "SET NAMES utf8mb4",
];

/// Text chunks of rows for `LOAD DATA LOCAL INFILE`, from the thread that makes them.
type Infile = Arc<Mutex<Option<std::sync::mpsc::Receiver<Result<Vec<u8>, String>>>>>;

/// Batches of rows as a stage is filled with them: read as they are sent.
type Batches<'a> = Box<dyn Iterator<Item = Result<RecordBatch, WarehouseError>> + Send + 'a>;

/// Rows per INSERT statement when the stage is filled by INSERTs.
const INSERT_ROWS: usize = 500;

/// A MySQL connection as a Secrets Manager secret holds it (RDS's managed secrets have this
/// shape; `engine` and the rest are ignored). The password is never shown.
#[derive(Clone, serde::Deserialize)]
pub struct Secret {
    /// Host name.
    pub host: String,
    /// Port (3306 when absent).
    #[serde(default, deserialize_with = "port")]
    pub port: Option<u16>,
    /// User.
    pub username: String,
    /// Password.
    pub password: String,
    /// The database: the export's schema.
    pub dbname: String,
}

/// RDS writes the port as a number, people as text: either.
fn port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    use serde::Deserialize as _;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("port out of range")),
        Some(serde_json::Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("port is not a number")),
        Some(_) => Err(serde::de::Error::custom("port is not a number")),
    }
}

impl Secret {
    /// Reads the secret's JSON; the error never shows its text (it holds a password).
    pub fn parse(json: &str) -> Result<Secret, WarehouseError> {
        use serde_json::error::Category;
        serde_json::from_str(json).map_err(|e| {
            let why = match e.classify() {
                Category::Io => "unreadable",
                Category::Syntax => "not JSON",
                Category::Data => "a field is missing or of the wrong type",
                Category::Eof => "cut short",
            };
            WarehouseError::config(format!(
                "the MySQL secret is not RDS's JSON (host, port, username, password, dbname): {why}"
            ))
        })
    }
}

/// How the stage is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageBy {
    /// `LOAD DATA LOCAL INFILE` from the parts, streamed; multi-row INSERTs where the server
    /// refuses local data (MySQL 8's `local_infile` is off by default).
    LoadData,
    /// Multi-row prepared INSERTs only.
    Insert,
}

/// A MySQL (or MariaDB) connection.
pub struct MySql {
    conn: Conn,
    /// How to connect again when the server has dropped the session (its `wait_timeout`, a
    /// failover): a warm Lambda keeps its connection for hours between weekly runs.
    opts: Opts,
    database: String,
    stage_by: StageBy,
    /// The rows `LOAD DATA LOCAL INFILE` sends next, as text chunks from the thread that reads
    /// and formats them: what the handler streams, and only that.
    infile: Infile,
}

fn my_error(e: mysql::Error) -> WarehouseError {
    match &e {
        // A deadlock or a lock wait timed out: another load's, which a retry survives.
        mysql::Error::MySqlError(m) if matches!(m.code, 1205 | 1213) => {
            WarehouseError::transient(format!("MySQL {}: {}", m.code, m.message))
        }
        mysql::Error::MySqlError(m) => {
            WarehouseError::sql(format!("MySQL {} ({}): {}", m.code, m.state, m.message))
        }
        // The connection itself failed (dropped, reset, unreadable): a new session may pass.
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) | mysql::Error::DriverError(_) => {
            WarehouseError::transient(format!("MySQL: {e}"))
        }
        _ => WarehouseError::sql(format!("MySQL: {e}")),
    }
}

/// A cell as text: bytes as UTF-8, numbers as MySQL prints them.
fn text(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(f) => Some(f.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

fn rows_of(rows: Vec<mysql::Row>) -> Rows {
    rows.into_iter()
        .map(|r| r.unwrap().into_iter().map(text).collect())
        .collect()
}

impl MySql {
    /// Connects to `url` (`mysql://user:password@host:port/database`; the crate's parameters,
    /// such as `root_cert_path=` for RDS's CA bundle, after `?`). The database is the schema
    /// the loader's tables go in.
    pub fn connect(url: &str) -> Result<Self, WarehouseError> {
        let shown = shown(url);
        let opts = Opts::from_url(url)
            .map_err(|e| WarehouseError::config(format!("{shown}: not a MySQL URL: {e}")))?;
        Self::open(opts, shown)
    }

    /// Connects as RDS's secret says (its JSON: `host`, `port`, `username`, `password`,
    /// `dbname`), over TLS verified against `tls_ca` (RDS's CA bundle) when given.
    pub fn connect_to(
        secret: &Secret,
        tls_ca: Option<&std::path::Path>,
    ) -> Result<Self, WarehouseError> {
        let port = secret.port.unwrap_or(3306);
        let shown = format!(
            "mysql://{}@{}:{port}/{}",
            secret.username, secret.host, secret.dbname
        );
        let mut opts = OptsBuilder::new()
            .ip_or_hostname(Some(secret.host.clone()))
            .tcp_port(port)
            .user(Some(secret.username.clone()))
            .pass(Some(secret.password.clone()))
            .db_name(Some(secret.dbname.clone()));
        if let Some(ca) = tls_ca {
            // Checked here: the driver's own error would not say which file, nor where to get it.
            if !ca.is_file() {
                return Err(WarehouseError::config(format!(
                    "{shown}: the CA bundle {} is missing (MYSQL_TLS_CA; the build ships \
                     certs/rds-ca-bundle.pem, refreshed by certs/update.sh)",
                    ca.display()
                )));
            }
            opts = opts
                .ssl_opts(mysql::SslOpts::default().with_root_cert_path(Some(ca.to_path_buf())));
        }
        Self::open(opts.into(), shown)
    }

    fn open(opts: Opts, shown: String) -> Result<Self, WarehouseError> {
        let database = opts.get_db_name().map(String::from).ok_or_else(|| {
            WarehouseError::config(format!(
                "{shown}: name the database (mysql://host/database)"
            ))
        })?;
        let infile: Infile = Arc::new(Mutex::new(None));
        let rows = infile.clone();
        // Streams the stage's rows and nothing else, whatever file name the server asks for: a
        // server asking when no load is under way gets an empty file.
        let handler = LocalInfileHandler::new(move |_name, out| {
            let chunks = rows
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .take();
            for chunk in chunks.into_iter().flatten() {
                out.write_all(&chunk.map_err(std::io::Error::other)?)?;
            }
            Ok(())
        });
        let opts = OptsBuilder::from_opts(opts)
            .init(SESSION.to_vec())
            .local_infile_handler(Some(handler));
        let opts: Opts = opts.into();
        let conn = Conn::new(opts.clone())
            .map_err(|e| WarehouseError::transient(format!("cannot connect to {shown}: {e}")))?;
        Ok(MySql {
            conn,
            opts,
            database,
            stage_by: StageBy::LoadData,
            infile,
        })
    }

    /// The session, connected again if the server has dropped it since the last call.
    fn session(&mut self) -> Result<&mut Conn, WarehouseError> {
        if self.conn.ping().is_err() {
            tracing::info!(database = %self.database, "MySQL session lost; connecting again");
            self.conn = Conn::new(self.opts.clone()).map_err(|e| {
                WarehouseError::transient(format!("cannot connect to MySQL again: {e}"))
            })?;
        }
        Ok(&mut self.conn)
    }

    /// The database named in the URL: the loader's schema.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Fills stages this way from now on.
    pub fn stage_by(mut self, how: StageBy) -> Self {
        self.stage_by = how;
        self
    }

    /// How the next stage will be filled (`Insert` once the server refused local data).
    pub fn staging(&self) -> StageBy {
        self.stage_by
    }

    /// Runs any query and returns its columns and cells as text (`bondlake sql`).
    pub fn query_table(&mut self, sql: &str) -> Result<ResultSet, WarehouseError> {
        use mysql::consts::ColumnType as T;
        let mut result = self.session()?.query_iter(sql).map_err(my_error)?;
        let mut out = ResultSet::default();
        if let Some(set) = result.iter() {
            out.columns = set
                .columns()
                .as_ref()
                .iter()
                .map(|c| ResultColumn {
                    name: c.name_str().into_owned(),
                    kind: match c.column_type() {
                        T::MYSQL_TYPE_TINY
                        | T::MYSQL_TYPE_SHORT
                        | T::MYSQL_TYPE_LONG
                        | T::MYSQL_TYPE_LONGLONG
                        | T::MYSQL_TYPE_INT24
                        | T::MYSQL_TYPE_DECIMAL
                        | T::MYSQL_TYPE_NEWDECIMAL
                        | T::MYSQL_TYPE_FLOAT
                        | T::MYSQL_TYPE_DOUBLE => CellKind::Number,
                        _ => CellKind::Text,
                    },
                })
                .collect();
            for row in set {
                let row = row.map_err(my_error)?;
                out.rows.push(row.unwrap().into_iter().map(text).collect());
            }
        }
        Ok(out)
    }
}

/// The URL without its password, for messages.
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// One Arrow cell as the text MySQL reads back into the column's type exactly: decimals at
/// their scale, ISO dates, instants in UTC with microseconds, doubles as Rust's shortest
/// round-trip form. `None` for NULL.
fn cell(a: &dyn Array, i: usize) -> Result<Option<String>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    Ok(Some(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::Date32 => format_date(a.as_primitive::<Date32Type>().value(i)),
        DataType::Decimal128(_, s) => {
            format_decimal(a.as_primitive::<Decimal128Type>().value(i), *s as u8)
        }
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Float64 => a.as_primitive::<Float64Type>().value(i).to_string(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(i);
            // `2026-11-25T22:15:09.410000Z` as DATETIME(6) reads it.
            rfc3339(us).trim_end_matches('Z').replace('T', " ")
        }
        other => return Err(format!("a column of type {other} has no MySQL form here")),
    }))
}

/// Appends a batch's rows as `LOAD DATA`'s default format: tab-separated, `\N` for NULL, tab,
/// newline and backslash escaped.
fn append_tsv(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), String> {
    for i in 0..batch.num_rows() {
        for (c, column) in batch.columns().iter().enumerate() {
            if c > 0 {
                out.push(b'\t');
            }
            match cell(column.as_ref(), i)? {
                None => out.extend_from_slice(b"\\N"),
                Some(t) => {
                    for b in t.bytes() {
                        match b {
                            b'\t' => out.extend_from_slice(b"\\t"),
                            b'\n' => out.extend_from_slice(b"\\n"),
                            b'\r' => out.extend_from_slice(b"\\r"),
                            b'\\' => out.extend_from_slice(b"\\\\"),
                            0 => out.extend_from_slice(b"\\0"),
                            b => out.push(b),
                        }
                    }
                }
            }
        }
        out.push(b'\n');
    }
    Ok(())
}

/// The per-week count and checksum of `relation`'s rows (`prefix` qualifies its columns): the
/// key's columns then the control totals', as text, joined by `|`, a NULL as `\N`
/// (`weekly::row_checksum`).
fn checksums_sql(table: &TableDef, partition: &str, relation: &str, prefix: &str) -> String {
    let text = |name: &str| {
        let ty = table
            .columns
            .iter()
            .find(|c| c.name.name() == name)
            .map(|c| c.ty);
        let col = format!("{prefix}\"{name}\"");
        // CONCAT_WS writes a DATE as YYYY-MM-DD and a DECIMAL at its scale, as the checksum's
        // text has them; only a NULL needs its marker (CONCAT_WS would skip it).
        match ty {
            Some(SqlType::Date | SqlType::Varchar(_) | SqlType::Decimal(..)) => {
                format!("IFNULL({col}, '\\\\N')")
            }
            _ => format!("IFNULL(CAST({col} AS CHAR), '\\\\N')"),
        }
    };
    let fields: Vec<String> = table
        .key
        .iter()
        .chain(&table.totals)
        .map(|c| text(c.name()))
        .collect();
    let sums: String = table
        .totals
        .iter()
        .map(|t| format!(", CAST(SUM({prefix}{t}) AS CHAR)"))
        .collect();
    format!(
        "SELECT DATE_FORMAT({prefix}\"{partition}\", '%Y-%m-%d'), CAST(COUNT(*) AS CHAR), \
         CAST(SUM(CRC32(CONCAT_WS('|', {}))) AS CHAR){sums} FROM {relation} GROUP BY {prefix}\"{partition}\"",
        fields.join(", ")
    )
}

/// Where two per-week checksum maps differ, as a message; none when they agree.
fn differ(want: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> Option<String> {
    let weeks: std::collections::BTreeSet<&String> = want.keys().chain(got.keys()).collect();
    let wrong: Vec<String> = weeks
        .into_iter()
        .filter(|w| want.get(*w) != got.get(*w))
        .take(5)
        .map(|w| {
            format!(
                "{w}: expected {}, found {}",
                want.get(w).map_or("nothing", String::as_str),
                got.get(w).map_or("nothing", String::as_str)
            )
        })
        .collect();
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

impl MySql {
    /// Inserts `batches` into `table` as they are, by `LOAD DATA LOCAL INFILE` or multi-row
    /// INSERTs (as this connection stages): the server's bulk paths with nothing around them, the
    /// yardstick `bondlake bench --weekly` holds the export to.
    pub fn bulk_insert(
        &mut self,
        table: &str,
        batches: &[RecordBatch],
    ) -> Result<(), WarehouseError> {
        let Some(first) = batches.first() else {
            return Ok(());
        };
        let names: Vec<String> = first
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let infile = self.infile.clone();
        let mut by = self.stage_by;
        let mut tx = self
            .session()?
            .start_transaction(TxOpts::default())
            .map_err(my_error)?;
        fill(&mut tx, &infile, table, &names, &mut by, &|| {
            Box::new(batches.iter().cloned().map(Ok))
        })?;
        tx.commit().map_err(my_error)
    }
}

/// Fills `table` with the rows `batches` gives each time it is called (its columns `names`, by
/// name). By `LOAD DATA LOCAL INFILE`, a thread of its own reads and formats the rows while the
/// server takes them; where the server refuses local data, by multi-row INSERTs (`by` then says
/// so for the next loads).
fn fill<'a>(
    tx: &mut mysql::Transaction<'_>,
    infile: &Infile,
    table: &str,
    names: &[String],
    by: &mut StageBy,
    batches: &(dyn Fn() -> Batches<'a> + Sync),
) -> Result<(), WarehouseError> {
    let columns: Vec<String> = names
        .iter()
        .map(|n| bondlake_core::warehouse::ident(n).map(|i| i.to_string()))
        .collect::<Result<_, _>>()?;
    if *by == StageBy::LoadData {
        let load = format!(
            "LOAD DATA LOCAL INFILE 'bondlake-stage' INTO TABLE {table} CHARACTER SET utf8mb4 ({})",
            columns.join(", ")
        );
        let (loaded, made) = std::thread::scope(|scope| {
            let (send, receive) = std::sync::mpsc::sync_channel(4);
            if let Ok(mut slot) = infile.lock() {
                *slot = Some(receive);
            }
            let maker = scope.spawn(move || -> Result<(), WarehouseError> {
                for batch in batches() {
                    let mut chunk = Vec::new();
                    match batch
                        .and_then(|b| append_tsv(&b, &mut chunk).map_err(WarehouseError::source))
                    {
                        Ok(()) => {
                            if send.send(Ok(chunk)).is_err() {
                                return Ok(()); // the load ended (or never began)
                            }
                        }
                        Err(e) => {
                            let _ = send.send(Err(e.message.clone()));
                            return Err(e);
                        }
                    }
                }
                Ok(())
            });
            let loaded = tx.query_drop(&load);
            // A refused load never asked for the rows: let the maker go.
            if let Ok(mut slot) = infile.lock() {
                slot.take();
            }
            let made = maker
                .join()
                .unwrap_or_else(|_| Err(WarehouseError::source("the rows' reader panicked")));
            (loaded, made)
        });
        match loaded {
            Ok(()) => {
                made?;
                // LOCAL turns data errors into warnings: any is a failure here.
                if tx.warnings() > 0 {
                    return Err(WarehouseError::sql(format!(
                        "LOAD DATA into {table} gave {} warnings (a value MySQL could not take as is)",
                        tx.warnings()
                    )));
                }
                return Ok(());
            }
            // The server (or client) refuses local data: INSERTs from now on.
            Err(mysql::Error::MySqlError(e)) if matches!(e.code, 1148 | 2068 | 3948) => {
                tracing::info!(
                    code = e.code,
                    "LOAD DATA LOCAL refused; stages are filled by INSERTs"
                );
                *by = StageBy::Insert;
            }
            Err(e) => return Err(made.err().unwrap_or_else(|| my_error(e))),
        }
    }
    let width = columns.len();
    let row_marks = format!("({})", vec!["?"; width].join(", "));
    for batch in batches() {
        let b = batch?;
        let mut start = 0;
        while start < b.num_rows() {
            let n = INSERT_ROWS.min(b.num_rows() - start);
            let mut params: Vec<Value> = Vec::with_capacity(n * width);
            for i in start..start + n {
                for column in b.columns() {
                    params.push(
                        match cell(column.as_ref(), i).map_err(WarehouseError::source)? {
                            Some(t) => Value::Bytes(t.into_bytes()),
                            None => Value::NULL,
                        },
                    );
                }
            }
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES {}",
                columns.join(", "),
                vec![row_marks.as_str(); n].join(", ")
            );
            tx.exec_drop(&sql, params).map_err(my_error)?;
            start += n;
        }
    }
    Ok(())
}

/// The batches of the parts `keys` in `store`, each part read when its rows are wanted.
fn parts<'a>(store: &'a dyn bondlake_core::store::ObjectStore, keys: &'a [String]) -> Batches<'a> {
    Box::new(keys.iter().flat_map(move |key| {
        let read: Batches<'a> = match bondlake_core::warehouse::part_batches(store, key) {
            Ok(reader) => Box::new(
                reader.map(move |b| b.map_err(|e| WarehouseError::source(format!("{key}: {e}")))),
            ),
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        read
    }))
}

fn query(
    tx: &mut mysql::Transaction<'_>,
    sql: &str,
    values: &[&str],
) -> Result<Rows, WarehouseError> {
    let rows: Vec<mysql::Row> = if values.is_empty() {
        tx.query(sql).map_err(my_error)?
    } else {
        tx.exec(sql, values.to_vec()).map_err(my_error)?
    };
    Ok(rows_of(rows))
}

impl Warehouse for MySql {
    fn dialect(&self) -> Dialect {
        Dialect::MySql
    }

    fn execute(&mut self, sql: &str, values: &[&str]) -> Result<(), WarehouseError> {
        let conn = self.session()?;
        if values.is_empty() {
            conn.query_drop(sql).map_err(my_error)
        } else {
            conn.exec_drop(sql, values.to_vec()).map_err(my_error)
        }
    }

    fn query(&mut self, sql: &str, values: &[&str]) -> Result<Rows, WarehouseError> {
        let conn = self.session()?;
        let rows: Vec<mysql::Row> = if values.is_empty() {
            conn.query(sql).map_err(my_error)?
        } else {
            conn.exec(sql, values.to_vec()).map_err(my_error)?
        };
        Ok(rows_of(rows))
    }

    fn load(&mut self, job: &LoadJob<'_>) -> Result<Loaded, WarehouseError> {
        let table = job.table;
        let stage = stage_table(job.manifest_key);
        let columns = table.stage_columns(None);
        let partition = job
            .manifest
            .outputs
            .first()
            .and_then(|o| o.partition.keys().next().cloned());
        // One load of this table at a time, across sessions: the ledger is read and written
        // under it, so two deliveries of one manifest cannot both record it.
        let lock = format!("bondlake:{}", table.qualified());
        let got: Option<i64> = self
            .session()?
            .exec_first("SELECT GET_LOCK(?, 60)", (lock.as_str(),))
            .map_err(my_error)?;
        if got != Some(1) {
            return Err(WarehouseError::transient(format!(
                "another load of {} held its lock for 60 s",
                table.qualified()
            )));
        }
        let result = self.load_locked(job, &stage, &columns, partition.as_deref());
        let _ = self
            .conn
            .exec_drop("SELECT RELEASE_LOCK(?)", (lock.as_str(),));
        let _ = self
            .conn
            .query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {stage}"));
        result
    }
}

impl MySql {
    fn load_locked(
        &mut self,
        job: &LoadJob<'_>,
        stage: &str,
        columns: &[&bondlake_core::warehouse::sql::ColumnDef],
        partition: Option<&str>,
    ) -> Result<Loaded, WarehouseError> {
        let table = job.table;
        let d = Dialect::MySql;
        let infile = self.infile.clone();
        let mut by = self.stage_by;
        let mut tx = self
            .conn
            .start_transaction(TxOpts::default())
            .map_err(my_error)?;
        let recorded = query(
            &mut tx,
            &ledger_lookup_sql(&table.schema, d),
            &[job.manifest_key],
        )?;
        if !recorded.is_empty() {
            return Ok(Loaded::AlreadyLoaded);
        }
        // Created inside the transaction: MySQL does not commit for a temporary table.
        tx.query_drop(table.create_stage_sql(stage, columns, d))
            .map_err(my_error)?;
        let keys: Vec<String> = job.part_keys().map(String::from).collect();
        let names = match job.stage_columns()?.as_slice() {
            [] => Vec::new(),
            listed => listed.iter().map(|c| c.name.name().to_string()).collect(),
        };
        fill(&mut tx, &infile, stage, &names, &mut by, &|| {
            parts(job.store, &keys)
        })?;
        self.stage_by = by;
        let staged_rows = query(&mut tx, &table.reconcile_sql(stage, d), &[])?;
        let staged = (job.check)(Checkpoint::Staged, &staged_rows)?;
        // With the manifest's weekly checksums, a pass over the rows counts, sums and checksums
        // them by week at once. Where no newer input holds any of the stage's keys (the rule),
        // nothing leaves the stage: the merged rows are held to the manifest itself, which proves
        // the stage too. Otherwise the stage is held to it before the superseded rows leave.
        let weekly = partition.filter(|_| !job.manifest.checksums.is_empty());
        let first = |rows: Rows| rows.first().and_then(|r| r.first().cloned().flatten());
        // Where the table holds no row in the stage's span of partitions (the first export of a
        // history, a backfill), no row can be superseded or replaced, and the merged rows are the
        // table's rows of that span: a scan instead of a join on the key.
        let span = match partition {
            Some(p) => {
                tx.query_drop(format!(
                    "SELECT MIN(\"{p}\"), MAX(\"{p}\") INTO @bondlake_lo, @bondlake_hi FROM {stage}"
                ))
                .map_err(my_error)?;
                let held = query(
                    &mut tx,
                    &format!(
                        "SELECT COUNT(*) FROM {} WHERE \"{p}\" BETWEEN @bondlake_lo AND @bondlake_hi",
                        table.qualified()
                    ),
                    &[],
                )?;
                (first(held).as_deref() == Some("0")).then(|| {
                    format!(
                        "{} AS \"t\" WHERE \"t\".\"{p}\" BETWEEN @bondlake_lo AND @bondlake_hi",
                        table.qualified()
                    )
                })
            }
            None => None,
        };
        let superseded = span.is_none()
            && first(query(&mut tx, &table.newer_count_sql(stage), &[])?).as_deref() != Some("0");
        let (fresh_rows, fresh_sums) = if superseded {
            if let Some(week) = weekly {
                let (_, got) = measure(&mut tx, table, Some(week), stage, "")?;
                if let Some(why) = got
                    .as_ref()
                    .and_then(|g| differ(&job.manifest.checksums, g))
                {
                    return Err(mismatch(
                        job.manifest_key,
                        "staged rows' weekly checksums",
                        &why,
                    ));
                }
            }
            tx.query_drop(table.delete_superseded_mysql(stage))
                .map_err(my_error)?;
            measure(&mut tx, table, weekly, stage, "")?
        } else {
            (staged_rows, weekly.map(|_| job.manifest.checksums.clone()))
        };
        let fresh = (job.check)(Checkpoint::Fresh, &fresh_rows)?;
        tx.query_drop(table.upsert_sql(stage, columns))
            .map_err(my_error)?;
        let merged = span.unwrap_or_else(|| table.merged_join(stage));
        let (merged_rows, merged_sums) = measure(&mut tx, table, weekly, &merged, "\"t\".")?;
        (job.check)(Checkpoint::Merged, &merged_rows)?;
        if let (Some(want), Some(got)) = (&fresh_sums, &merged_sums)
            && let Some(why) = differ(want, got)
        {
            let against = if superseded {
                "the rows left to merge"
            } else {
                "the manifest"
            };
            return Err(WarehouseError {
                kind: bondlake_core::warehouse::ErrorKind::Mismatch,
                message: format!(
                    "{}: the merged rows' weekly checksums do not match {against} ({why})",
                    job.manifest_key
                ),
            });
        }
        let ledger = job.ledger_params(fresh.rows);
        let values: Vec<&str> = ledger.iter().map(String::as_str).collect();
        tx.exec_drop(ledger_insert_sql(&ledger_table(&table.schema), d), values)
            .map_err(my_error)?;
        tx.commit().map_err(my_error)?;
        Ok(Loaded::Merged {
            superseded: staged.rows.saturating_sub(fresh.rows),
            fresh,
        })
    }
}

/// A reconciliation's row (count, then each control total, as the loader's check reads it) of
/// `relation`, and, by `week` when given, each week's `rows:checksum`: one pass either way.
fn measure(
    tx: &mut mysql::Transaction<'_>,
    table: &TableDef,
    week: Option<&str>,
    relation: &str,
    prefix: &str,
) -> Result<(Rows, Option<BTreeMap<String, String>>), WarehouseError> {
    let Some(week) = week else {
        let sql = if prefix.is_empty() {
            table.reconcile_sql(relation, Dialect::MySql)
        } else {
            // `relation` is the merged join.
            format!(
                "SELECT CAST(COUNT(*) AS CHAR){} FROM {relation}",
                table
                    .totals
                    .iter()
                    .map(|t| format!(", CAST(SUM({prefix}{t}) AS CHAR)"))
                    .collect::<String>()
            )
        };
        return Ok((query(tx, &sql, &[])?, None));
    };
    let by_week = query(tx, &checksums_sql(table, week, relation, prefix), &[])?;
    // Each total's scale, to add the weeks' sums exactly.
    let scales: Vec<u8> = table
        .totals
        .iter()
        .map(
            |t| match table.columns.iter().find(|c| &c.name == t).map(|c| c.ty) {
                Some(SqlType::Decimal(_, s)) => s,
                _ => 0,
            },
        )
        .collect();
    let mut count = 0u64;
    let mut sums = vec![0i128; scales.len()];
    let mut checksums = BTreeMap::new();
    for row in by_week {
        let cell = |i: usize| row.get(i).cloned().flatten();
        let (Some(day), Some(n)) = (cell(0), cell(1)) else {
            continue;
        };
        count += n.parse::<u64>().unwrap_or(0);
        checksums.insert(
            day,
            format!("{n}:{}", cell(2).unwrap_or_else(|| "0".into())),
        );
        for (k, scale) in scales.iter().enumerate() {
            if let Some(text) = cell(3 + k) {
                sums[k] += parse_total(&text, *scale).ok_or_else(|| {
                    WarehouseError::sql(format!("a weekly sum `{text}` is not a number"))
                })?;
            }
        }
    }
    let mut totals = vec![Some(count.to_string())];
    totals.extend(
        sums.iter()
            .zip(&scales)
            .map(|(v, s)| Some(format_decimal(*v, *s))),
    );
    Ok((vec![totals], Some(checksums)))
}

/// A decimal the server printed, at `scale` (it prints the column's scale).
fn parse_total(text: &str, scale: u8) -> Option<i128> {
    bondlake_core::parse::parse_decimal(text.trim().as_bytes(), 38, scale).ok()
}

fn mismatch(manifest_key: &str, what: &str, why: &str) -> WarehouseError {
    WarehouseError {
        kind: bondlake_core::warehouse::ErrorKind::Mismatch,
        message: format!("{manifest_key}: the {what} do not match the manifest ({why})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rds_secret_is_read_and_a_bad_one_is_refused_without_its_text() {
        let s = Secret::parse(
            r#"{"engine":"mysql","host":"db.example","port":3306,"username":"app","password":"p4ss{w}ord","dbname":"trends"}"#,
        )
        .expect("secret");
        assert_eq!(
            (s.host.as_str(), s.port, s.dbname.as_str()),
            ("db.example", Some(3306), "trends")
        );
        let s = Secret::parse(
            r#"{"host":"h","port":"3307","username":"u","password":"x","dbname":"d"}"#,
        )
        .expect("port as text");
        assert_eq!(s.port, Some(3307));
        let e = Secret::parse(r#"{"host":"h","username":"u","password":"hunter2"}"#)
            .err()
            .expect("no dbname");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    /// What the deployed export does: TLS verified against the shipped RDS bundle. The server
    /// here has no TLS, so the connection must be refused, never made in plain text.
    #[test]
    fn with_a_ca_bundle_a_server_without_tls_is_refused_and_a_missing_bundle_is_named() {
        let secret = Secret {
            host: "127.0.0.1".into(),
            port: Some(3306),
            username: "root".into(),
            password: String::new(),
            dbname: "test".into(),
        };
        let bundle =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs/rds-ca-bundle.pem");
        let plain = MySql::connect_to(&secret, None).expect("the test server, in plain text");
        drop(plain);
        let e = MySql::connect_to(&secret, Some(&bundle))
            .err()
            .expect("refused without TLS");
        // The bundle was read; the driver refused the server for lacking TLS.
        assert!(e.to_string().contains("requires secure connection"), "{e}");
        let e = MySql::connect_to(&secret, Some(std::path::Path::new("/nowhere/ca.pem")))
            .err()
            .expect("no bundle");
        assert!(
            e.to_string().contains("/nowhere/ca.pem") && e.to_string().contains("certs/update.sh"),
            "{e}"
        );
    }

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            shown("mysql://app:s3cret@db.example:3306/trends"),
            "mysql://app@db.example:3306/trends"
        );
        assert_eq!(shown("mysql://127.0.0.1/test"), "mysql://127.0.0.1/test");
    }

    #[test]
    fn tabs_newlines_and_backslashes_are_escaped_for_load_data() {
        use arrow_array::StringArray;
        let batch = RecordBatch::try_from_iter([(
            "s",
            Arc::new(StringArray::from(vec![Some("a\tb\\c\nd"), None])) as arrow_array::ArrayRef,
        )])
        .expect("batch");
        let mut out = Vec::new();
        append_tsv(&batch, &mut out).expect("tsv");
        assert_eq!(out, b"a\\tb\\\\c\\nd\n\\N\n");
    }
}
