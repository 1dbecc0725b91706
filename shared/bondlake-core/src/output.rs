//! The output side: Hive-partitioned zstd Parquet parts that roll at a size, and the quarantine.
//!
//! Keys are a pure function of the input and the contract (see [`OutputNames`]), so a rerun writes
//! the same objects. Everything written for a file is tracked, so a failed run can remove it.

use crate::clean::Rejected;
use crate::error::Error;
use crate::manifest::{OutputFile, QuarantineFile};
use crate::schema::PartKey;
use crate::store::{ObjectStore, ObjectWriter};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use flate2::write::GzEncoder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

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

/// Parquet settings chosen per column: dictionaries where values repeat, chunk statistics on the
/// `statistics` columns only (see [`crate::schema::statistics_columns`]).
pub(crate) fn writer_properties(
    schema: &SchemaRef,
    opts: &OutputOptions,
    statistics: &[String],
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
        // date); amounts and record numbers rarely do, so a dictionary would only cost time.
        let dictionary = matches!(
            f.data_type(),
            DataType::Utf8 | DataType::Date32 | DataType::Int32 | DataType::Timestamp(..)
        );
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
    writer: ArrowWriter<Box<dyn ObjectWriter>>,
    rows: u64,
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
        let props = writer_properties(&schema, &opts, statistics);
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
            if (part.writer.bytes_written() + part.writer.in_progress_size()) as u64
                >= self.opts.part_bytes
            {
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
        let writer = ArrowWriter::try_new(sink, self.schema.clone(), Some(self.props.clone()))?;
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
