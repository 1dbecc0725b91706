//! The output side: Hive-partitioned zstd Parquet parts that roll at a size, and the quarantine.
//!
//! Keys are a pure function of the input and the contract (see [`OutputNames`]), so a rerun writes
//! the same objects. Everything written for a file is tracked, so a failed run can remove it.

use crate::clean::Rejected;
use crate::dict_chunk::{self, DictChunk};
use crate::error::Error;
use crate::manifest::{OutputFile, QuarantineFile};
use crate::schema::{PartKey, narrow_decimal};
use crate::store::{ObjectStore, ObjectWriter};
use arrow_array::Array as _;
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, SchemaRef};
use flate2::write::GzEncoder;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use std::sync::Arc;

/// Writes `manifest` at `key`: the commit marker, so always the last object of a run.
pub fn write_manifest(
    store: &dyn ObjectStore,
    key: &str,
    manifest: &crate::manifest::Manifest,
) -> Result<(), Error> {
    use std::io::Write as _;
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| Error::Config(e.to_string()))?;
    let mut w = store.create(key)?;
    w.write_all(&json)?;
    w.commit()?;
    Ok(())
}

/// Output settings.
#[derive(Debug, Clone, Copy)]
pub struct OutputOptions {
    /// A part is closed and a new one started once it reaches this many bytes.
    pub part_bytes: u64,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// zstd level for Parquet pages.
    pub zstd_level: i32,
    /// Most partitions written at once; past it the oldest part is closed (memory stays bounded).
    pub max_open_partitions: usize,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            part_bytes: 128 << 20,
            row_group_rows: 256 * 1024,
            zstd_level: 1,
            max_open_partitions: 32,
        }
    }
}

/// The keys one input file's outputs go to.
#[derive(Debug, Clone)]
pub struct OutputNames {
    /// Dataset name.
    pub dataset: String,
    /// Partition column name.
    pub partition_column: String,
    /// `<file stem>-<16 hex digits>`: the stem for people, the hash for uniqueness.
    pub base: String,
}

impl OutputNames {
    /// Names derived from the input's identity (bucket, key, ETag or version) and the contract.
    pub fn new(
        dataset: &str,
        contract_version: &str,
        partition_column: &str,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Self {
        let hex = crate::manifest::digest_hex(&[bucket, key, etag, dataset, contract_version], 8);
        let file = key.rsplit('/').next().unwrap_or(key);
        let stem: String = file
            .split('.')
            .next()
            .unwrap_or("")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let stem = if stem.is_empty() {
            "input".to_string()
        } else {
            stem
        };
        OutputNames {
            dataset: dataset.to_string(),
            partition_column: partition_column.to_string(),
            base: format!("{stem}-{hex}"),
        }
    }

    /// The names for `source` cleaned with `contract`.
    pub fn for_source(
        contract: &crate::contract::Contract,
        source: &crate::manifest::SourceRef,
    ) -> Self {
        OutputNames::new(
            &contract.dataset,
            &contract.version,
            &contract.columns[contract.partition].name,
            &source.bucket,
            &source.key,
            &source.etag,
        )
    }

    /// `<stem>-<hash>`: what every key this input's run writes is named after.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `processed/<dataset>/`: every part of the dataset is under it.
    pub fn dataset_prefix(&self) -> String {
        format!("processed/{}/", self.dataset)
    }

    /// `handoffs/<dataset>/<base>.json`: the request that hands this input to EMR.
    pub fn handoff_key(&self) -> String {
        format!("handoffs/{}/{}.json", self.dataset, self.base)
    }

    /// `processed/<dataset>/<partition>=<value>/<base>-<part>.parquet`
    pub fn part_key(&self, partition: &PartKey, part: u32) -> String {
        format!(
            "processed/{}/{}={}/{}-{part:04}.parquet",
            self.dataset,
            self.partition_column,
            partition.path_value(),
            self.base
        )
    }

    /// `quarantine/<dataset>/<base>.csv.gz`
    pub fn quarantine_key(&self) -> String {
        format!("quarantine/{}/{}.csv.gz", self.dataset, self.base)
    }

    /// `manifests/<dataset>/<base>.json`
    pub fn manifest_key(&self) -> String {
        format!("manifests/{}/{}.json", self.dataset, self.base)
    }

    /// Whether `key` is one this input's run writes: one of its parts, or its quarantine. A
    /// rerun deletes only such keys, whatever an earlier manifest lists.
    pub fn owns(&self, key: &str) -> bool {
        if key == self.quarantine_key() {
            return true;
        }
        let Some(rest) = key.strip_prefix(&format!("processed/{}/", self.dataset)) else {
            return false;
        };
        let mut segments = rest.split('/');
        let (Some(folder), Some(file), None) = (segments.next(), segments.next(), segments.next())
        else {
            return false;
        };
        let Some(value) = folder.strip_prefix(&format!("{}=", self.partition_column)) else {
            return false;
        };
        let part = file
            .strip_prefix(&format!("{}-", self.base))
            .and_then(|f| f.strip_suffix(".parquet"));
        !value.is_empty()
            && value != "."
            && value != ".."
            && part.is_some_and(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// Parquet settings chosen per column: dictionaries where values repeat (but in the `constant`
/// columns, one value throughout a part), chunk statistics on the `statistics` columns only (see
/// [`crate::schema::statistics_columns`]).
pub(crate) fn writer_properties(
    schema: &SchemaRef,
    opts: &OutputOptions,
    statistics: &[String],
    constant: &[&str],
) -> WriterProperties {
    let level = ZstdLevel::try_new(opts.zstd_level).unwrap_or_default();
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_statistics_enabled(EnabledStatistics::None)
        .set_dictionary_enabled(false)
        .set_created_by(format!("bondlake {}", env!("CARGO_PKG_VERSION")));
    for f in schema.fields() {
        let path = ColumnPath::from(f.name().as_str());
        // Text, dates and small integers repeat within a file (investor names, enums, the as-of
        // date); amounts and record numbers rarely do, so a dictionary would only cost time. A
        // column with one value in the whole part (the partition's, the ingestion time) costs a
        // hash a value in a dictionary, and next to nothing plain: zstd takes the run whole
        // (0.85% fewer instructions on the 200,000-row holdings file, 300 bytes more).
        let dictionary = matches!(
            f.data_type(),
            DataType::Utf8 | DataType::Date32 | DataType::Int32 | DataType::Timestamp(..)
        ) && !constant.contains(&f.name().as_str());
        b = b.set_column_dictionary_enabled(path.clone(), dictionary);
        if statistics.contains(f.name()) {
            b = b.set_column_statistics_enabled(path, EnabledStatistics::Chunk);
        }
    }
    b.build()
}

struct OpenPart {
    partition: PartKey,
    key: String,
    writer: PartWriter,
    rows: u64,
}

/// One Parquet part, a row group at a time: arrow-rs's column writers for most columns, and
/// [`DictChunk`] for text that arrives as a dictionary array (enums, labels, constants), whose
/// indices need no hashing again. The file's schema is the output schema (Utf8 for those
/// columns), so the Arrow schema stored in the file is what `ArrowWriter` stores.
struct PartWriter {
    file: SerializedFileWriter<Box<dyn ObjectWriter>>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Per column: the field with the narrow decimal a batch may hold it as, where it has one.
    narrow: Vec<Option<Field>>,
    props: Arc<WriterProperties>,
    group_rows: usize,
    group: Option<RowGroup>,
}

/// The row group being gathered: one sink per column, and its rows so far.
struct RowGroup {
    columns: Vec<ColumnSink>,
    rows: usize,
}

enum ColumnSink {
    Arrow(Box<ArrowColumnWriter>),
    Dict(Box<DictChunk>),
}

impl PartWriter {
    fn try_new(
        sink: Box<dyn ObjectWriter>,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<Self, Error> {
        let group_rows = props.max_row_group_row_count().unwrap_or(usize::MAX).max(1);
        let props = Arc::new(props);
        let (file, factory) = ArrowWriter::try_new(sink, schema.clone(), Some((*props).clone()))?
            .into_serialized_writer()?;
        let narrow = schema
            .fields()
            .iter()
            .map(|f| narrow_decimal(f.data_type()).map(|t| f.as_ref().clone().with_data_type(t)))
            .collect();
        Ok(PartWriter {
            file,
            factory,
            schema,
            narrow,
            props,
            group_rows,
            group: None,
        })
    }

    /// Bytes written so far plus an estimate of the row group being gathered.
    fn size(&self) -> usize {
        let gathering = self.group.as_ref().map_or(0, |g| {
            g.columns
                .iter()
                .map(|c| match c {
                    ColumnSink::Arrow(w) => w.get_estimated_total_bytes(),
                    ColumnSink::Dict(d) => d.estimated_bytes(),
                })
                .sum()
        });
        self.file.bytes_written() + gathering
    }

    /// Adds a batch of the output schema, where any Utf8 column may come as a dictionary of
    /// `UInt16` keys and a decimal as narrow as its Parquet column ([`narrow_decimal`]); a row
    /// group is written whenever it is full.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.group.is_none() {
                self.group = Some(self.new_group(batch)?);
            }
            let Some(group) = self.group.as_mut() else {
                unreachable!("set just above")
            };
            let n = (self.group_rows - group.rows).min(batch.num_rows() - offset);
            let rows = batch.slice(offset, n);
            let fields = self.schema.fields().iter().zip(&self.narrow);
            for ((sink, (field, narrow)), column) in
                group.columns.iter_mut().zip(fields).zip(rows.columns())
            {
                match sink {
                    ColumnSink::Dict(d) => d.append(column)?,
                    ColumnSink::Arrow(w) => {
                        let field = match narrow {
                            Some(n) if n.data_type() == column.data_type() => n,
                            _ if field.data_type() == column.data_type() => field.as_ref(),
                            _ => {
                                return Err(Error::Parquet(ParquetError::General(format!(
                                    "column {} came as {}, not {}",
                                    field.name(),
                                    column.data_type(),
                                    field.data_type()
                                ))));
                            }
                        };
                        for leaf in compute_leaves(field, column)? {
                            w.write(&leaf)?;
                        }
                    }
                }
            }
            group.rows += n;
            offset += n;
            if group.rows >= self.group_rows {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// A row group's sinks, chosen by the columns of its first batch.
    fn new_group(&self, batch: &RecordBatch) -> Result<RowGroup, Error> {
        let writers = self
            .factory
            .create_column_writers(self.file.flushed_row_groups().len())?;
        if writers.len() != batch.num_columns() || writers.len() != self.schema.fields().len() {
            return Err(Error::Parquet(ParquetError::General(format!(
                "a batch of {} columns for a schema of {}",
                batch.num_columns(),
                self.schema.fields().len()
            ))));
        }
        let descr = self.file.schema_descr();
        let columns = writers
            .into_iter()
            .zip(batch.columns())
            .enumerate()
            .map(|(i, (writer, column))| {
                let leaf = descr.column(i);
                let ty = column.data_type();
                // Text built as a dictionary always; integers where they are to have one.
                let dictionary = dict_chunk::takes(ty)
                    && (matches!(ty, DataType::Dictionary(..))
                        || self.props.dictionary_enabled(leaf.path()))
                    && dict_chunk::supports(self.props.compression(leaf.path()));
                Ok(if dictionary {
                    ColumnSink::Dict(Box::new(DictChunk::new(leaf, ty, &self.props)?))
                } else {
                    ColumnSink::Arrow(Box::new(writer))
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(RowGroup { columns, rows: 0 })
    }

    /// Writes the row group being gathered, if any.
    fn flush(&mut self) -> Result<(), Error> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        let mut row_group = self.file.next_row_group()?;
        for sink in group.columns {
            match sink {
                ColumnSink::Arrow(w) => w.close()?.append_to_row_group(&mut row_group)?,
                ColumnSink::Dict(d) => {
                    let (bytes, close) = d.close(&self.props)?;
                    row_group.append_column(&bytes, close)?;
                }
            }
        }
        row_group.close()?;
        Ok(())
    }

    /// Writes what is gathered and the footer; returns the sink.
    fn into_inner(mut self) -> Result<Box<dyn ObjectWriter>, Error> {
        self.flush()?;
        Ok(self.file.into_inner()?)
    }
}

/// Writes batches to Parquet parts, one open part per partition value.
pub struct PartitionedWriter<'s> {
    store: &'s dyn ObjectStore,
    schema: SchemaRef,
    props: WriterProperties,
    names: OutputNames,
    opts: OutputOptions,
    open: Vec<OpenPart>,
    next_part: Vec<(PartKey, u32)>,
    /// Parts committed so far.
    pub outputs: Vec<OutputFile>,
}

impl<'s> PartitionedWriter<'s> {
    /// A writer for one input file's clean output; `statistics` names the columns that get
    /// Parquet statistics.
    pub fn new(
        store: &'s dyn ObjectStore,
        schema: SchemaRef,
        names: OutputNames,
        opts: OutputOptions,
        statistics: &[String],
    ) -> Self {
        let constant = [names.partition_column.as_str(), crate::schema::INGESTED_AT];
        let props = writer_properties(&schema, &opts, statistics, &constant);
        PartitionedWriter {
            store,
            schema,
            props,
            names,
            opts,
            open: Vec::new(),
            next_part: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Writes one batch whose rows all belong to `partition`.
    pub fn write(&mut self, partition: &PartKey, batch: &RecordBatch) -> Result<(), Error> {
        let mut idx = self.open.iter().position(|p| &p.partition == partition);
        // Write at most a row group at a time, so a part rolls near its size whatever the batch size.
        let step = self.opts.row_group_rows.max(1);
        let mut offset = 0;
        while offset < batch.num_rows() {
            let i = match idx {
                Some(i) => i,
                None => self.open_part(partition)?,
            };
            let len = step.min(batch.num_rows() - offset);
            let part = &mut self.open[i];
            part.writer.write(&batch.slice(offset, len))?;
            part.rows += len as u64;
            offset += len;
            idx = Some(i);
            if part.writer.size() as u64 >= self.opts.part_bytes {
                let full = self.open.remove(i);
                self.close(full)?;
                idx = None;
            }
        }
        Ok(())
    }

    /// Opens the next part of `partition` (closing the oldest open part past the limit).
    fn open_part(&mut self, partition: &PartKey) -> Result<usize, Error> {
        if self.open.len() >= self.opts.max_open_partitions {
            let oldest = self.open.remove(0);
            self.close(oldest)?;
        }
        let n = match self.next_part.iter_mut().find(|(k, _)| k == partition) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.next_part.push((partition.clone(), 0));
                0
            }
        };
        let key = self.names.part_key(partition, n);
        let sink = self.store.create(&key)?;
        let writer = PartWriter::try_new(sink, self.schema.clone(), self.props.clone())?;
        self.open.push(OpenPart {
            partition: partition.clone(),
            key,
            writer,
            rows: 0,
        });
        Ok(self.open.len() - 1)
    }

    fn close(&mut self, part: OpenPart) -> Result<(), Error> {
        let sink = part.writer.into_inner()?;
        let bytes = sink.commit()?;
        self.outputs.push(OutputFile {
            key: part.key,
            rows: part.rows,
            bytes,
            partition: [(
                self.names.partition_column.clone(),
                part.partition.display(),
            )]
            .into(),
        });
        Ok(())
    }

    /// Closes every open part; returns all parts written, in key order.
    pub fn finish(mut self) -> Result<Vec<OutputFile>, Error> {
        let open = std::mem::take(&mut self.open);
        for part in open {
            self.close(part)?;
        }
        let mut outputs = std::mem::take(&mut self.outputs);
        outputs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(outputs)
    }

    /// Abandons the run: open parts are aborted, committed ones deleted.
    pub fn abort(mut self) {
        self.open.clear(); // dropping an uncommitted writer aborts it
        for o in &self.outputs {
            let _ = self.store.delete(&o.key);
        }
    }
}

/// Writes rejected records to a gzip CSV: `record_number,column,reason,value,record`.
pub struct QuarantineWriter<'s> {
    store: &'s dyn ObjectStore,
    key: String,
    writer: Option<csv::Writer<GzEncoder<Box<dyn ObjectWriter>>>>,
    rows: u64,
}

impl<'s> QuarantineWriter<'s> {
    /// A quarantine for one file; the object is created with the first reject.
    pub fn new(store: &'s dyn ObjectStore, key: String) -> Self {
        QuarantineWriter {
            store,
            key,
            writer: None,
            rows: 0,
        }
    }

    /// Appends rejects.
    pub fn write(&mut self, rejects: &[Rejected]) -> Result<(), Error> {
        if rejects.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            let sink = self.store.create(&self.key)?;
            let gz = GzEncoder::new(sink, flate2::Compression::new(6));
            let mut w = csv::WriterBuilder::new().from_writer(gz);
            w.write_record(["record_number", "column", "reason", "value", "record"])
                .map_err(csv_io)?;
            self.writer = Some(w);
        }
        let w = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::Config("quarantine closed".into()))?;
        for r in rejects {
            w.write_record([
                r.record_number.to_string().as_str(),
                &r.column,
                r.reason.code(),
                &r.value,
                &r.record,
            ])
            .map_err(csv_io)?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Commits the quarantine object, if any record was written.
    pub fn finish(mut self) -> Result<Option<QuarantineFile>, Error> {
        let Some(w) = self.writer.take() else {
            // A rerun of a file that once had rejects must not leave the old quarantine behind.
            self.store.delete(&self.key)?;
            return Ok(None);
        };
        let gz = w.into_inner().map_err(|e| Error::Storage(e.into_error()))?;
        let sink = gz.finish()?;
        let bytes = sink.commit()?;
        Ok(Some(QuarantineFile {
            key: self.key.clone(),
            rows: self.rows,
            bytes,
        }))
    }

    /// Abandons the quarantine: the open writer is aborted and any earlier object removed.
    pub fn abort(mut self) {
        self.writer.take();
        let _ = self.store.delete(&self.key);
    }
}

fn csv_io(e: csv::Error) -> Error {
    Error::Storage(std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;
    use arrow_array::builder::{StringBuilder, UInt16Builder};
    use arrow_array::{
        ArrayRef, Date32Array, DictionaryArray, Int32Array, Int64Array, StringArray,
    };
    use arrow_schema::{Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    /// A Parquet file's rows, as one batch.
    fn read_back(path: &std::path::Path) -> RecordBatch {
        let file = std::fs::File::open(path).expect("test");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("test")
            .build()
            .expect("test");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("test")).collect();
        arrow_select::concat::concat_batches(&batches[0].schema(), &batches).expect("test")
    }

    /// A Parquet file's footer.
    fn metadata(path: &std::path::Path) -> parquet::file::metadata::ParquetMetaData {
        SerializedFileReader::new(std::fs::File::open(path).expect("test"))
            .expect("test")
            .metadata()
            .clone()
    }

    /// Rows of text with nulls and runs, the same text as the dictionary batches below carry.
    fn text(rows: usize, offset: usize) -> Vec<Option<String>> {
        (offset..offset + rows)
            .map(|i| match i % 23 {
                0 | 5 => None,
                // Long runs of one value (RLE runs), and short ones.
                _ if (i / 40) % 3 == 0 => Some(["bank", "pension"][(i / 120) % 2].to_string()),
                _ => Some(format!("v{}", (i * 7) % 11)),
            })
            .collect()
    }

    /// `rows` as UInt16 keys over `dictionary`, the values it lacks added after its own.
    fn keys_over(mut dictionary: Vec<String>, rows: &[Option<String>]) -> ArrayRef {
        let mut keys = UInt16Builder::new();
        for r in rows {
            match r {
                None => keys.append_null(),
                Some(v) => {
                    let k = dictionary.iter().position(|d| d == v).unwrap_or_else(|| {
                        dictionary.push(v.clone());
                        dictionary.len() - 1
                    });
                    keys.append_value(k as u16);
                }
            }
        }
        let dictionary = Arc::new(StringArray::from_iter_values(&dictionary));
        Arc::new(DictionaryArray::try_new(keys.finish(), dictionary).expect("test"))
    }

    /// A batch of `rows` rows as the cleaner builds it (`dict`: the text as UInt16 keys over a
    /// dictionary in a varying order, with a value or two outside it; a constant over a
    /// one-entry dictionary; a column of nulls over a dictionary no row uses) or as plain Utf8.
    fn batch(schema: &SchemaRef, rows: usize, offset: usize, dict: bool) -> RecordBatch {
        let values = text(rows, offset);
        let column: ArrayRef = if dict {
            let mut dictionary: Vec<String> = (0..11)
                .map(|k| format!("v{}", (k * 5 + offset) % 11))
                .collect();
            dictionary.push("bank".into());
            keys_over(dictionary, &values)
        } else {
            let mut b = StringBuilder::new();
            values.iter().for_each(|v| b.append_option(v.as_deref()));
            Arc::new(b.finish())
        };
        let numbers = Arc::new(Int64Array::from_iter_values(
            (offset..offset + rows).map(|i| i as i64),
        ));
        let (constant, nothing): (ArrayRef, ArrayRef) = if dict {
            let one = |v: &str| Arc::new(StringArray::from_iter_values([v]));
            let mut keys = UInt16Builder::new();
            keys.append_value_n(0, rows);
            let constant = DictionaryArray::try_new(keys.finish(), one("s3://raw/in.csv"));
            keys.append_nulls(rows);
            let nothing = DictionaryArray::try_new(keys.finish(), one(""));
            (
                Arc::new(constant.expect("test")),
                Arc::new(nothing.expect("test")),
            )
        } else {
            (
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    "s3://raw/in.csv",
                    rows,
                ))),
                Arc::new(StringArray::new_null(rows)),
            )
        };
        // Day counts in runs and spread, with nulls; dates around 2026, none null.
        let days: ArrayRef = Arc::new(Int32Array::from_iter((offset..offset + rows).map(|i| {
            (i % 17 != 3).then_some(if (i / 50) % 2 == 0 {
                30
            } else {
                (i * 37 % 4001) as i32 - 2000
            })
        })));
        let dates: ArrayRef = Arc::new(Date32Array::from_iter_values(
            (offset..offset + rows).map(|i| 20_000 + (i * 13 % 1831) as i32),
        ));
        let fields = schema.fields().iter().map(|f| {
            if dict && f.data_type() == &DataType::Utf8 {
                crate::schema::dictionary_field(f)
            } else {
                f.as_ref().clone()
            }
        });
        RecordBatch::try_new(
            Arc::new(Schema::new(fields.collect::<Vec<_>>())),
            vec![column, numbers, constant, nothing, days, dates],
        )
        .expect("test")
    }

    /// Writes 5,000 rows in uneven batches, in row groups of 1,500 rows and pages of 100.
    fn write(dir: &std::path::Path, dict: bool) -> std::path::PathBuf {
        let schema = Arc::new(Schema::new(vec![
            Field::new("text", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
            Field::new("constant", DataType::Utf8, false),
            Field::new("nothing", DataType::Utf8, true),
            Field::new("days", DataType::Int32, true),
            Field::new("dates", DataType::Date32, false),
        ]));
        let store = LocalStore::new(dir);
        let opts = OutputOptions {
            row_group_rows: 1500,
            ..OutputOptions::default()
        };
        let names = OutputNames::new("d", "1", "p", "local", "in.csv", "1");
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(1500))
            .set_data_page_row_count_limit(100)
            .set_write_batch_size(100)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .build();
        let sizes = [1, 999, 1234, 7, 2000, 759];
        if !dict {
            // arrow-rs alone, for the comparison.
            std::fs::create_dir_all(dir).expect("test");
            let path = dir.join("arrow-rs.parquet");
            let file = std::fs::File::create(&path).expect("test");
            let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props)).expect("test");
            let mut offset = 0;
            for rows in sizes {
                w.write(&batch(&schema, rows, offset, false)).expect("test");
                offset += rows;
            }
            w.close().expect("test");
            return path;
        }
        let statistics: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut w = PartitionedWriter::new(&store, schema.clone(), names, opts, &statistics);
        w.props = props;
        let part = PartKey::Text("x".into());
        let mut offset = 0;
        for rows in sizes {
            w.write(&part, &batch(&schema, rows, offset, dict))
                .expect("test");
            offset += rows;
        }
        let out = w.finish().expect("test");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rows, 5000);
        dir.join(&out[0].key)
    }

    /// Past its dictionary's limit, a text chunk goes on in PLAIN pages, as arrow-rs's does:
    /// near-unique text (batches each over their own dictionary, as the cleaner builds them)
    /// reads back as written, with arrow-rs's statistics and encodings, and without a
    /// dictionary page over the limit.
    #[test]
    fn a_full_dictionary_goes_on_in_plain_pages() {
        let text = |offset: usize, rows: usize| -> Vec<Option<String>> {
            (offset..offset + rows)
                .map(|i| (i % 13 != 0).then(|| format!("holder-{:05}", (i * 7919) % 4000)))
                .collect()
        };
        let text_field = Field::new("text", DataType::Utf8, true);
        let batch_schema = Arc::new(Schema::new(vec![crate::schema::dictionary_field(
            &text_field,
        )]));
        let schema = Arc::new(Schema::new(vec![text_field]));
        let limit = 1000;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(1500))
            .set_data_page_row_count_limit(100)
            .set_write_batch_size(100)
            .set_dictionary_page_size_limit(limit)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .build();
        let dir = tempfile::tempdir().expect("test");
        let store = LocalStore::new(dir.path());
        let names = OutputNames::new("d", "1", "p", "local", "in.csv", "1");
        let opts = OutputOptions {
            row_group_rows: 1500,
            ..OutputOptions::default()
        };
        let mut ours =
            PartitionedWriter::new(&store, schema.clone(), names, opts, &["text".into()]);
        ours.props = props.clone();
        let theirs_path = dir.path().join("arrow-rs.parquet");
        let file = std::fs::File::create(&theirs_path).expect("test");
        let mut theirs = ArrowWriter::try_new(file, schema.clone(), Some(props)).expect("test");
        let part = PartKey::Text("x".into());
        let mut offset = 0;
        for rows in [1, 999, 1234, 7, 2000, 759] {
            let values = text(offset, rows);
            let batch =
                RecordBatch::try_new(batch_schema.clone(), vec![keys_over(Vec::new(), &values)]);
            ours.write(&part, &batch.expect("test")).expect("test");
            let plain: ArrayRef = Arc::new(StringArray::from(values));
            theirs
                .write(&RecordBatch::try_new(schema.clone(), vec![plain]).expect("test"))
                .expect("test");
            offset += rows;
        }
        theirs.close().expect("test");
        let out = ours.finish().expect("test");
        let ours_path = dir.path().join(&out[0].key);

        let rows = read_back(&ours_path);
        let got: Vec<Option<String>> = rows
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("Utf8")
            .iter()
            .map(|v| v.map(String::from))
            .collect();
        assert_eq!(got, text(0, 5000));
        let open = |path: &std::path::Path| {
            SerializedFileReader::new(std::fs::File::open(path).expect("test")).expect("test")
        };
        let (ra, rb) = (open(&ours_path), open(&theirs_path));
        let (ma, mb) = (ra.metadata(), rb.metadata());
        assert_eq!(ma.num_row_groups(), mb.num_row_groups());
        for g in 0..ma.num_row_groups() {
            let (ca, cb) = (ma.row_group(g).column(0), mb.row_group(g).column(0));
            assert_eq!(ca.num_values(), cb.num_values());
            assert_eq!(ca.statistics(), cb.statistics(), "row group {g}");
            assert_eq!(
                ca.encodings().collect::<Vec<_>>(),
                cb.encodings().collect::<Vec<_>>()
            );
            // The dictionary stops near the limit; the rest of the rows are PLAIN.
            let pages = ra
                .get_row_group(g)
                .expect("test")
                .get_column_page_reader(0)
                .expect("test")
                .map(|p| p.expect("test"))
                .collect::<Vec<_>>();
            let dictionary = pages
                .iter()
                .find(|p| p.page_type() == parquet::basic::PageType::DICTIONARY_PAGE);
            assert!(dictionary.expect("a dictionary page").buffer().len() < limit + 64);
            assert!(
                pages
                    .iter()
                    .any(|p| p.encoding() == parquet::basic::Encoding::PLAIN
                        && p.page_type() == parquet::basic::PageType::DATA_PAGE)
            );
        }
    }

    #[test]
    fn dictionary_columns_read_back_as_arrow_rs_writes_them() {
        let dir = tempfile::tempdir().expect("test");
        let ours = write(&dir.path().join("ours"), true);
        let theirs = write(&dir.path().join("theirs"), false);
        let (a, b) = (read_back(&ours), read_back(&theirs));
        for c in [0, 2, 3] {
            assert_eq!(a.schema().field(c).data_type(), &DataType::Utf8);
        }
        assert_eq!(a.column(3).null_count(), 5000);
        assert_eq!(a, b);
        let expected: Vec<Option<String>> = text(5000, 0);
        let got: Vec<Option<String>> = a
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("test")
            .iter()
            .map(|v| v.map(String::from))
            .collect();
        assert_eq!(got, expected);
        // The same row groups, encodings and statistics as arrow-rs's own dictionary encoder.
        let (ma, mb) = (metadata(&ours), metadata(&theirs));
        assert_eq!(ma.num_row_groups(), 4);
        assert_eq!(ma.num_row_groups(), mb.num_row_groups());
        for (g, c) in (0..ma.num_row_groups()).flat_map(|g| [0, 2, 3, 4, 5].map(|c| (g, c))) {
            let (ca, cb) = (ma.row_group(g).column(c), mb.row_group(g).column(c));
            assert_eq!(ca.num_values(), cb.num_values());
            assert_eq!(
                ca.encodings().collect::<Vec<_>>(),
                cb.encodings().collect::<Vec<_>>()
            );
            assert_eq!(
                ca.statistics(),
                cb.statistics(),
                "row group {g}, column {c}"
            );
            assert!(ca.dictionary_page_offset().is_some());
        }
    }

    /// Decimals that come as Decimal32 and Decimal64 (`schema::narrow_decimal`) are written as
    /// arrow-rs writes the same values as Decimal128: the file's schema, values, statistics
    /// and encodings, extremes of the precision and nulls included.
    #[test]
    fn narrow_decimals_write_what_decimal128_writes() {
        use arrow_array::{Decimal32Array, Decimal64Array, Decimal128Array};
        let schema = Arc::new(Schema::new(vec![
            Field::new("rate", DataType::Decimal128(9, 6), true),
            Field::new("value", DataType::Decimal128(18, 2), false),
        ]));
        let rows = 3000i64;
        let rate = |i: i64| {
            (i % 7 != 3).then(|| match i % 5 {
                0 => 999_999_999,
                1 => -999_999_999,
                _ => (i * 7919) % 100_000_000 - 50_000_000,
            })
        };
        let value = |i: i64| match i % 4 {
            0 => 999_999_999_999_999_999,
            1 => -999_999_999_999_999_999,
            _ => i * 1_000_003 - 1_500_000_000,
        };
        let wide = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(
                    Decimal128Array::from_iter((0..rows).map(|i| rate(i).map(i128::from)))
                        .with_precision_and_scale(9, 6)
                        .expect("test"),
                ),
                Arc::new(
                    Decimal128Array::from_iter_values((0..rows).map(|i| i128::from(value(i))))
                        .with_precision_and_scale(18, 2)
                        .expect("test"),
                ),
            ],
        )
        .expect("test");
        let narrow_schema = Arc::new(Schema::new(vec![
            Field::new("rate", DataType::Decimal32(9, 6), true),
            Field::new("value", DataType::Decimal64(18, 2), false),
        ]));
        let narrow = RecordBatch::try_new(
            narrow_schema,
            vec![
                Arc::new(
                    Decimal32Array::from_iter((0..rows).map(|i| rate(i).map(|v| v as i32)))
                        .with_precision_and_scale(9, 6)
                        .expect("test"),
                ),
                Arc::new(
                    Decimal64Array::from_iter_values((0..rows).map(value))
                        .with_precision_and_scale(18, 2)
                        .expect("test"),
                ),
            ],
        )
        .expect("test");
        let props = || {
            WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .set_max_row_group_row_count(Some(1000))
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .build()
        };
        let dir = tempfile::tempdir().expect("test");
        let theirs = dir.path().join("arrow-rs.parquet");
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(&theirs).expect("test"),
            schema.clone(),
            Some(props()),
        )
        .expect("test");
        w.write(&wide).expect("test");
        w.close().expect("test");
        let store = LocalStore::new(dir.path().join("ours"));
        let names = OutputNames::new("d", "1", "p", "local", "in.csv", "1");
        let statistics = vec!["rate".to_string(), "value".to_string()];
        let mut w = PartitionedWriter::new(
            &store,
            schema.clone(),
            names,
            OutputOptions::default(),
            &statistics,
        );
        w.props = props();
        let part = PartKey::Text("x".into());
        w.write(&part, &narrow.slice(0, 1234)).expect("test");
        w.write(&part, &narrow.slice(1234, 1766)).expect("test");
        let out = w.finish().expect("test");
        let ours = dir.path().join("ours").join(&out[0].key);
        assert_eq!(read_back(&ours), wide);
        assert_eq!(read_back(&theirs), wide);
        let (ma, mb) = (metadata(&ours), metadata(&theirs));
        assert_eq!(ma.num_row_groups(), 3);
        assert_eq!(ma.file_metadata().schema(), mb.file_metadata().schema());
        for g in 0..3 {
            for c in 0..2 {
                let (ca, cb) = (ma.row_group(g).column(c), mb.row_group(g).column(c));
                assert_eq!(
                    ca.statistics(),
                    cb.statistics(),
                    "row group {g}, column {c}"
                );
                assert_eq!(
                    ca.encodings().collect::<Vec<_>>(),
                    cb.encodings().collect::<Vec<_>>()
                );
            }
        }
    }
}
