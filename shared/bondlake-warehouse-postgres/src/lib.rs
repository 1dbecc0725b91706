//! PostgreSQL: self-hosted warehouses, and the local stand-in for Redshift's SQL (both take MERGE).
//! The stage is a temporary table filled by `COPY FROM STDIN` in CSV, written from the Parquet parts
//! by arrow-csv; it drops itself at commit.

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader, TimestampMicrosecondArray};
use arrow_schema::{DataType, Schema};
use bondlake_core::warehouse::sql::{ledger_insert_sql, ledger_lookup_sql, ledger_table};
use bondlake_core::warehouse::{
    CellKind, Checkpoint, Dialect, LoadJob, Loaded, ResultColumn, ResultSet, Rows, Warehouse,
    WarehouseError, stage_table,
};
use postgres::{Client, NoTls, SimpleQueryMessage, types::ToSql};
use std::io::Write;
use std::sync::Arc;

/// A PostgreSQL connection.
pub struct Postgres {
    client: Client,
}

impl Postgres {
    /// Connects to `url` (`postgres://user@host:port/db`).
    pub fn connect(url: &str) -> Result<Self, WarehouseError> {
        let client = Client::connect(url, NoTls)
            .map_err(|e| WarehouseError::transient(format!("cannot connect to {url}: {e}")))?;
        Ok(Postgres { client })
    }
}

impl Postgres {
    /// Runs any query and returns its columns and cells as text (`bondlake sql`). The simple
    /// protocol gives every type as PostgreSQL prints it (instants in UTC); the statement's
    /// description, when it has one, says which columns are numbers or booleans.
    pub fn query_table(&mut self, sql: &str) -> Result<ResultSet, WarehouseError> {
        use postgres::types::Type;
        // Instants in UTC, as the embedded warehouse shows them, whatever the server's default.
        self.client
            .batch_execute("SET TIME ZONE 'UTC'")
            .map_err(pg_error)?;
        let described: Option<Vec<ResultColumn>> = self.client.prepare(sql).ok().map(|st| {
            st.columns()
                .iter()
                .map(|c| ResultColumn {
                    name: c.name().to_string(),
                    kind: match *c.type_() {
                        Type::INT2
                        | Type::INT4
                        | Type::INT8
                        | Type::OID
                        | Type::NUMERIC
                        | Type::FLOAT4
                        | Type::FLOAT8 => CellKind::Number,
                        Type::BOOL => CellKind::Boolean,
                        _ => CellKind::Text,
                    },
                })
                .collect()
        });
        let mut out = ResultSet::default();
        for msg in self.client.simple_query(sql).map_err(pg_error)? {
            match msg {
                SimpleQueryMessage::RowDescription(columns) if out.columns.is_empty() => {
                    out.columns = match &described {
                        Some(d) if d.len() == columns.len() => d.clone(),
                        _ => columns
                            .iter()
                            .map(|c| ResultColumn {
                                name: c.name().to_string(),
                                kind: CellKind::Text,
                            })
                            .collect(),
                    };
                }
                SimpleQueryMessage::Row(r) => {
                    let row = (0..r.len())
                        .map(|i| {
                            let cell = r.get(i)?;
                            // `t`/`f` as the other backends and JSON write them.
                            Some(match out.columns.get(i).map(|c| c.kind) {
                                Some(CellKind::Boolean) if cell == "t" => "true".to_string(),
                                Some(CellKind::Boolean) if cell == "f" => "false".to_string(),
                                _ => cell.to_string(),
                            })
                        })
                        .collect();
                    out.rows.push(row);
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

fn pg_error(e: postgres::Error) -> WarehouseError {
    match e.as_db_error() {
        // A serialization failure, a deadlock or a lock not granted: another load's, which a
        // retry of this one survives.
        Some(db) if matches!(db.code().code(), "40001" | "40P01" | "55P03") => {
            WarehouseError::transient(format!("PostgreSQL {}: {}", db.code().code(), db.message()))
        }
        Some(db) => {
            WarehouseError::sql(format!("PostgreSQL {}: {}", db.code().code(), db.message()))
        }
        None if e.is_closed() => WarehouseError::transient(format!("PostgreSQL: {e}")),
        None => WarehouseError::sql(format!("PostgreSQL: {e}")),
    }
}

fn params<'a>(values: &'a [&'a str]) -> Vec<&'a (dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn text_rows(rows: Vec<postgres::Row>) -> Rows {
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect()
        })
        .collect()
}

fn run_query(
    client: &mut impl postgres::GenericClient,
    sql: &str,
    values: &[&str],
) -> Result<Rows, WarehouseError> {
    client
        .query(sql, &params(values))
        .map(text_rows)
        .map_err(pg_error)
}

/// Writes a part's batches as the CSV `COPY ... (FORMAT csv)` reads: no header, exact decimals,
/// ISO dates, instants with their offset, NULL as an empty field.
pub fn write_csv(
    batches: impl Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>,
    key: &str,
    out: &mut impl Write,
) -> Result<(), WarehouseError> {
    let mut csv = arrow_csv::WriterBuilder::new()
        .with_header(false)
        .build(out);
    for batch in batches {
        let batch = batch.map_err(|e| WarehouseError::source(format!("{key}: {e}")))?;
        csv.write(&utc_as_offset(batch))
            .map_err(|e| WarehouseError::source(format!("{key}: {e}")))?;
    }
    Ok(())
}

/// The batch with its `UTC` timestamps labelled `+00:00`: the same instants, which arrow-csv
/// writes with their offset (naming zones would need the tz database for one zone).
fn utc_as_offset(batch: RecordBatch) -> RecordBatch {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        match (
            f.data_type(),
            c.as_any().downcast_ref::<TimestampMicrosecondArray>(),
        ) {
            (DataType::Timestamp(unit, Some(_)), Some(ts)) => {
                let tz: Arc<str> = "+00:00".into();
                fields.push(
                    f.as_ref()
                        .clone()
                        .with_data_type(DataType::Timestamp(*unit, Some(tz.clone()))),
                );
                columns.push(Arc::new(ts.clone().with_timezone(tz)));
            }
            _ => {
                fields.push(f.as_ref().clone());
                columns.push(c.clone());
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap_or(batch)
}

impl Warehouse for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, values: &[&str]) -> Result<(), WarehouseError> {
        if values.is_empty() {
            self.client.batch_execute(sql).map_err(pg_error)
        } else {
            self.client
                .execute(sql, &params(values))
                .map(|_| ())
                .map_err(pg_error)
        }
    }

    fn query(&mut self, sql: &str, values: &[&str]) -> Result<Rows, WarehouseError> {
        if !values.is_empty() {
            return run_query(&mut self.client, sql, values);
        }
        // The simple protocol returns every type as text: what `bondlake sql` needs.
        let mut rows = Vec::new();
        for msg in self.client.simple_query(sql).map_err(pg_error)? {
            if let SimpleQueryMessage::Row(r) = msg {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
            }
        }
        Ok(rows)
    }

    fn load(&mut self, job: &LoadJob<'_>) -> Result<Loaded, WarehouseError> {
        let table = job.table;
        let stage = stage_table(job.manifest_key);
        let columns = table.stage_columns(None);
        let mut tx = self.client.transaction().map_err(pg_error)?;
        tx.batch_execute(&table.create_stage_sql(&stage, &columns, Dialect::Postgres))
            .map_err(pg_error)?;
        for key in job.part_keys() {
            let batches = bondlake_core::warehouse::part_batches(job.store, key)?;
            let names: Vec<String> = batches
                .schema()
                .fields()
                .iter()
                .map(|f| bondlake_core::warehouse::ident(f.name()).map(|i| i.to_string()))
                .collect::<Result<_, _>>()?;
            let copy = format!(
                "COPY {stage} ({}) FROM STDIN WITH (FORMAT csv)",
                names.join(", ")
            );
            let mut writer = tx.copy_in(&copy).map_err(pg_error)?;
            write_csv(batches, key, &mut writer)?;
            writer
                .flush()
                .map_err(|e| WarehouseError::sql(format!("COPY of {key}: {e}")))?;
            writer.finish().map_err(pg_error)?;
        }
        let staged = (job.check)(
            Checkpoint::Staged,
            &run_query(
                &mut tx,
                &table.reconcile_sql(&stage, Dialect::Postgres),
                &[],
            )?,
        )?;
        // From here to the commit, one load of this table at a time, and the ledger read under
        // the same lock: two deliveries of one manifest cannot both record it.
        tx.batch_execute(&format!(
            "LOCK TABLE {}, {} IN SHARE ROW EXCLUSIVE MODE",
            table.qualified(),
            ledger_table(&table.schema)
        ))
        .map_err(pg_error)?;
        let recorded = run_query(
            &mut tx,
            &ledger_lookup_sql(&table.schema, Dialect::Postgres),
            &[job.manifest_key],
        )?;
        if !recorded.is_empty() {
            return Ok(Loaded::AlreadyLoaded);
        }
        tx.batch_execute(&table.delete_superseded_sql(&stage))
            .map_err(pg_error)?;
        let fresh = (job.check)(
            Checkpoint::Fresh,
            &run_query(
                &mut tx,
                &table.reconcile_sql(&stage, Dialect::Postgres),
                &[],
            )?,
        )?;
        tx.batch_execute(&table.merge_sql(&stage, &columns))
            .map_err(pg_error)?;
        (job.check)(
            Checkpoint::Merged,
            &run_query(
                &mut tx,
                &table.reconcile_merged_sql(&stage, Dialect::Postgres),
                &[],
            )?,
        )?;
        let ledger = job.ledger_params(fresh.rows);
        let values: Vec<&str> = ledger.iter().map(String::as_str).collect();
        tx.execute(
            &ledger_insert_sql(&ledger_table(&table.schema), Dialect::Postgres),
            &params(&values),
        )
        .map_err(pg_error)?;
        tx.commit().map_err(pg_error)?;
        Ok(Loaded::Merged {
            superseded: staged.rows.saturating_sub(fresh.rows),
            fresh,
        })
    }
}
