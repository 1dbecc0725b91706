//! PostgreSQL: self-hosted warehouses, and the local stand-in for Redshift's SQL (both take MERGE).
//! The stage is a temporary table filled by `COPY FROM STDIN` in CSV, written from the Parquet parts
//! by arrow-csv; it drops itself at commit.

use super::{Checkpoint, Dialect, LoadJob, Rows, Warehouse, WarehouseError, stage_name};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader, TimestampMicrosecondArray};
use arrow_schema::{DataType, Schema};
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
    /// Runs any query and returns its column names and its cells as text (`bondlake sql`).
    pub fn query_table(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<String>, Vec<Vec<String>>), WarehouseError> {
        let mut names = Vec::new();
        let mut rows = Vec::new();
        for msg in self.client.simple_query(sql).map_err(pg_error)? {
            if let SimpleQueryMessage::Row(r) = msg {
                if names.is_empty() {
                    names = r.columns().iter().map(|c| c.name().to_string()).collect();
                }
                rows.push(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                );
            }
        }
        Ok((names, rows))
    }
}

fn pg_error(e: postgres::Error) -> WarehouseError {
    match e.as_db_error() {
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

    fn load(&mut self, job: &LoadJob<'_>) -> Result<(), WarehouseError> {
        let stage = stage_name(job.manifest_key);
        let mut tx = self.client.transaction().map_err(pg_error)?;
        tx.batch_execute(&job.table.create_stage_sql(&stage, Dialect::Postgres))
            .map_err(pg_error)?;
        for key in job.part_keys() {
            let batches = super::part_batches(job.store, key)?;
            let columns: Vec<String> = batches
                .schema()
                .fields()
                .iter()
                .map(|f| super::ident(f.name()).map(|i| i.to_string()))
                .collect::<Result<_, _>>()?;
            let copy = format!(
                "COPY {stage} ({}) FROM STDIN WITH (FORMAT csv)",
                columns.join(", ")
            );
            let mut writer = tx.copy_in(&copy).map_err(pg_error)?;
            write_csv(batches, key, &mut writer)?;
            writer
                .flush()
                .map_err(|e| WarehouseError::sql(format!("COPY of {key}: {e}")))?;
            writer.finish().map_err(pg_error)?;
        }
        (job.check)(
            Checkpoint::Staged,
            &run_query(&mut tx, &job.table.reconcile_sql(&stage), &[])?,
        )?;
        tx.batch_execute(&job.table.merge_sql(&stage))
            .map_err(pg_error)?;
        (job.check)(
            Checkpoint::Merged,
            &run_query(&mut tx, &job.table.reconcile_merged_sql(&stage), &[])?,
        )?;
        let ledger = job.ledger_params();
        let values: Vec<&str> = ledger.iter().map(String::as_str).collect();
        let table = format!("{}.{}", job.table.schema, super::sql::LEDGER);
        tx.execute(
            &super::sql::ledger_insert_sql(&table, Dialect::Postgres),
            &params(&values),
        )
        .map_err(pg_error)?;
        tx.commit().map_err(pg_error)
    }
}
