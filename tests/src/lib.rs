//! Helpers for bondlake's integration tests: run bytes through the real pipeline into a temporary
//! folder, then read back what a user would see (Parquet rows, quarantine rows, the manifest).

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bondlake_core::manifest::{Manifest, SourceRef};
use bondlake_core::parse::{format_date, format_decimal};
use bondlake_core::store::LocalStore;
use bondlake_core::{Contract, Options};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// What one run left behind, read back.
#[derive(Debug)]
pub struct Run {
    /// The manifest as written to the store.
    pub manifest: Manifest,
    /// Clean rows, every value rendered as text (decimals exact, dates ISO), in output order.
    pub rows: Vec<BTreeMap<String, String>>,
    /// Quarantine rows: record_number, column, reason, value, record.
    pub rejects: Vec<[String; 5]>,
    /// The output folder (kept alive for the test's duration).
    pub dir: tempfile::TempDir,
}

impl Run {
    /// The clean rows' values of one column.
    pub fn column(&self, name: &str) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| r.get(name).cloned().unwrap_or_default())
            .collect()
    }

    /// (record_number, reason, column) of every reject.
    pub fn reasons(&self) -> Vec<(u64, String, String)> {
        self.rejects
            .iter()
            .map(|r| (r[0].parse().unwrap_or(0), r[2].clone(), r[1].clone()))
            .collect()
    }
}

/// The built-in contract of a dataset.
pub fn contract(dataset: &str) -> Contract {
    bondlake_core::load_dataset(dataset, None).expect("built-in contract loads")
}

/// Cleans the weekly_series file `text` as the raw object `key` into the local lake `lake`,
/// written (its S3 event time, which orders the files) at `at`; its manifest.
pub fn clean_weekly(lake: &Path, key: &str, text: &str, at: &str) -> Manifest {
    let source = SourceRef {
        bucket: "raw".into(),
        key: key.into(),
        etag: format!("etag-{at}"),
        bytes: text.len() as u64,
        event_time: Some(at.into()),
        ..Default::default()
    };
    bondlake_core::process(
        &contract("weekly_series"),
        None,
        source,
        std::io::Cursor::new(text.as_bytes().to_vec()),
        &LocalStore::new(lake),
        &options(),
    )
    .expect("processed")
    .manifest
}

/// Options that make runs comparable: a fixed `_ingested_at`.
pub fn options() -> Options {
    Options {
        ingested_at_us: Some(1_764_000_000_000_000),
        ..Options::default()
    }
}

/// Processes `bytes` as the object `key` with the given options and reads everything back.
pub fn run_with(
    dataset: &str,
    profile: Option<&str>,
    key: &str,
    body: impl Read + Send + 'static,
    opts: &Options,
) -> Run {
    run_contract(&contract(dataset), profile, key, body, opts)
}

/// [`run_with`] for a contract given, not one built in.
pub fn run_contract(
    c: &Contract,
    profile: Option<&str>,
    key: &str,
    body: impl Read + Send + 'static,
    opts: &Options,
) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let source = SourceRef {
        bucket: "test".into(),
        key: key.into(),
        etag: "etag-1".into(),
        bytes: 0,
        ..Default::default()
    };
    let outcome = bondlake_core::process(c, profile, source, body, &store, opts)
        .expect("process returns a manifest");
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(dir.path().join(&outcome.manifest_key)).expect("manifest written"),
    )
    .expect("manifest parses");
    assert_eq!(
        manifest, outcome.manifest,
        "the manifest on disk is the one returned"
    );
    let mut rows = Vec::new();
    for o in &manifest.outputs {
        rows.extend(read_parquet(&dir.path().join(&o.key)));
    }
    let rejects = manifest
        .quarantine
        .as_ref()
        .map(|q| read_quarantine(&dir.path().join(&q.key)))
        .unwrap_or_default();
    Run {
        manifest,
        rows,
        rejects,
        dir,
    }
}

impl Run {
    /// The weekly job over what this run wrote (a weekly_series file): every trend row, as
    /// text, series by series and week by week; none when the file is not `ok` (the job reads
    /// only what the loader would load).
    pub fn trends(&self) -> Vec<BTreeMap<String, String>> {
        let store = LocalStore::new(self.dir.path());
        let ran = bondlake_core::weekly::run(
            &store,
            "test",
            &contract("weekly_trends"),
            bondlake_core::output::OutputOptions::default(),
        )
        .expect("the weekly job runs");
        let mut rows = Vec::new();
        let Some((_, manifest)) = ran.manifest else {
            return rows;
        };
        for o in &manifest.outputs {
            rows.extend(read_parquet(&self.dir.path().join(&o.key)));
        }
        rows.sort_by(|a, b| {
            (&a["series"], &a["week_ending"]).cmp(&(&b["series"], &b["week_ending"]))
        });
        rows
    }
}

/// Processes holdings records (under the standard header) as `holdings/v/h.csv`.
pub fn run_holdings(records: &[String]) -> Run {
    run(
        "investor_holdings",
        None,
        "holdings/v/h.csv",
        &holdings_file(records),
    )
}

/// Processes `text` with default (comparable) options.
pub fn run(dataset: &str, profile: Option<&str>, key: &str, text: &[u8]) -> Run {
    run_with(
        dataset,
        profile,
        key,
        std::io::Cursor::new(text.to_vec()),
        &options(),
    )
}

/// Every row of a Parquet file, values rendered as text.
pub fn read_parquet(path: &Path) -> Vec<BTreeMap<String, String>> {
    let file = std::fs::File::open(path).expect("part exists");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("valid parquet")
        .build()
        .expect("reader");
    let mut rows = Vec::new();
    for batch in reader {
        rows.extend(batch_rows(&batch.expect("batch")));
    }
    rows
}

/// A batch's rows as text maps.
pub fn batch_rows(batch: &RecordBatch) -> Vec<BTreeMap<String, String>> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|i| {
            schema
                .fields()
                .iter()
                .enumerate()
                .map(|(c, f)| (f.name().clone(), cell(batch.column(c).as_ref(), i)))
                .collect()
        })
        .collect()
}

/// One cell as text: "" for null, decimals exact, dates ISO.
pub fn cell(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return String::new();
    }
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::Date32 => format_date(a.as_primitive::<Date32Type>().value(i)),
        DataType::Decimal128(_, s) => {
            format_decimal(a.as_primitive::<Decimal128Type>().value(i), *s as u8)
        }
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Float64 => format!("{:.6}", a.as_primitive::<Float64Type>().value(i)),
        DataType::Timestamp(..) => a
            .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
            .value(i)
            .to_string(),
        other => panic!("unexpected output type {other}"),
    }
}

/// The quarantine's rows (header checked).
pub fn read_quarantine(path: &Path) -> Vec<[String; 5]> {
    let file = std::fs::File::open(path).expect("quarantine exists");
    let mut r = csv::Reader::from_reader(flate2::read::GzDecoder::new(file));
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        header,
        ["record_number", "column", "reason", "value", "record"]
    );
    r.records()
        .map(|rec| {
            let rec = rec.expect("quarantine row");
            [0, 1, 2, 3, 4].map(|k| rec.get(k).unwrap_or_default().to_string())
        })
        .collect()
}

/// Gzip-compresses bytes (one member).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// A reader that hands out at most `step` bytes per read: the input arrives in any chunking.
pub struct Trickle {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl Trickle {
    /// Serves `data` `step` bytes at a time.
    pub fn new(data: Vec<u8>, step: usize) -> Self {
        Trickle {
            data,
            pos: 0,
            step: step.max(1),
        }
    }
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A valid holdings header line.
pub const HOLDINGS_HEADER: &str = "as_of_date,investor_id,investor_type,investor_name,account_id,security_id,isin,bond_type,issuer,sector,rating,coupon_rate,maturity_date,par_value,quantity,price,market_value,currency,yield_to_maturity,modified_duration,ytd_return,growth_1y";

/// A valid holdings record (Apple's CUSIP and ISIN), to be varied by tests.
pub const HOLDINGS_ROW: &str = "2026-11-25,INV1,bank,First Bank,ACC1,037833100,US0378331005,corporate,Apple Inc,Technology,AA+,3.45,2036-05-15,1000000.00,1000,98.5,985000.00,USD,4.1,7.25,2.5,3.1";

/// The holdings row with one column replaced.
pub fn holdings_row_with(column: &str, value: &str) -> String {
    let names: Vec<&str> = HOLDINGS_HEADER.split(',').collect();
    let j = names
        .iter()
        .position(|n| *n == column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let mut fields: Vec<String> = HOLDINGS_ROW.split(',').map(String::from).collect();
    // A value with a comma needs CSV quoting (unless the test already wrote it quoted).
    fields[j] = if value.contains(',') && !value.starts_with('"') {
        format!("\"{value}\"")
    } else {
        value.to_string()
    };
    fields.join(",")
}

/// A holdings file of the given records under the standard header.
pub fn holdings_file(records: &[String]) -> Vec<u8> {
    let mut s = String::from(HOLDINGS_HEADER);
    s.push('\n');
    for r in records {
        s.push_str(r);
        s.push('\n');
    }
    s.into_bytes()
}

/// Every object in `store`, key → bytes.
pub fn snapshot(store: &dyn bondlake_core::store::ObjectStore) -> BTreeMap<String, Vec<u8>> {
    store
        .list("")
        .expect("list")
        .into_iter()
        .map(|k| {
            let mut bytes = Vec::new();
            store
                .open(&k)
                .expect("open")
                .read_to_end(&mut bytes)
                .expect("read");
            (k, bytes)
        })
        .collect()
}

/// Objects with the manifests' run timestamps blanked: what must match between runs.
pub fn comparable(mut objects: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    for (k, v) in objects.iter_mut() {
        if k.starts_with("manifests/") {
            let mut m: serde_json::Value = serde_json::from_slice(v).expect("json");
            m["started_at"] = "".into();
            m["finished_at"] = "".into();
            *v = serde_json::to_vec(&m).expect("json");
        }
    }
    objects
}

/// The template's S3 grants per function (`tests/grants.json`, which `.ci/check_template.py`
/// derives from `template.yaml` and CI keeps in step), with its buckets standing for the test's:
/// `buckets` maps `raw`, `processed`, `kafka_failures` to bucket names (one may map to several).
pub fn template_grants(buckets: &[(&str, &str)]) -> bondlake_testkit::s3_server::Grants {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("grants.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run .ci/check_template.py --write-grants)",
            path.display()
        )
    });
    bondlake_testkit::s3_server::Grants::from_json(&text, buckets).expect("tests/grants.json")
}

/// A run of a generated file against its truth: every record read and accounted for, exactly the
/// broken records rejected (record number and reason, in order), and, for records-shaped files
/// (`kept`), every other record in the output once.
pub fn assert_truth(
    label: &str,
    r: &Run,
    truth: &[bondlake_testkit::synth::Truth],
    rows: u64,
    kept: bool,
) {
    let m = &r.manifest;
    assert_eq!(m.rows_read, rows, "{label}: every record read");
    assert_eq!(
        m.rows_read,
        m.rows_ok + m.rows_rejected,
        "{label}: conservation"
    );
    let want: Vec<(u64, String)> = truth.iter().map(|t| (t.record, t.reason.clone())).collect();
    let got: Vec<(u64, String)> = r
        .reasons()
        .into_iter()
        .map(|(n, reason, _)| (n, reason))
        .collect();
    assert_eq!(
        got, want,
        "{label}: rejected exactly the defective records, with their reasons"
    );
    if kept {
        let bad: std::collections::HashSet<u64> = truth.iter().map(|t| t.record).collect();
        let mut kept: Vec<u64> = r
            .column("_record_number")
            .iter()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        kept.sort();
        let expected: Vec<u64> = (1..=rows).filter(|n| !bad.contains(n)).collect();
        assert_eq!(kept, expected, "{label}: every clean record kept, once");
    }
}
