//! The weekly job: the trend features of every weekly series over its whole history
//! (docs/datasets.md, "Weekly trend features"), written as the `weekly_trends` dataset: Parquet
//! parts and a manifest in the processed bucket's layout, which the loader loads like any other.
//! `bondlake weekly` runs it here; `emr/weekly_trends.py` runs the same definition on EMR (and
//! keeps a Hive table in ORC), and the two agree row for row (`emr/tests`).
//!
//! 1. **History.** Every `ok` manifest of `weekly_series` is read, its parts' rows kept per key
//!    (source, dataset_code, series, week_ending): where several files carry a key, the most
//!    recently ingested wins, as the warehouse decides it (the greater `_source_order`: the raw
//!    object's event time, then S3's sequencer; then `_ingested_at`, `_source_key`,
//!    `_record_number`).
//! 2. **Features** per series, in week order ([`features`]).
//! 3. **Weeks rebuilt.** `state/weekly_trends.json` records the inputs of the last run (and of
//!    the run before it). The weeks a new input carries, and the twelve after each (the longest
//!    window reaches back 13 weeks), are rebuilt: every series' rows of those weeks, so that each
//!    week is whole, as the Hive table's partitions are rewritten. An input gone or changed
//!    since (a file replayed) rebuilds everything. A run over the inputs the state already
//!    records is the same run again: it writes the same keys with the same rows.
//! 4. **Output.** `processed/weekly_trends/week_ending=<day>/<base>-0000.parquet` per week, then
//!    the manifest (last), which lists its inputs, and per week the rows' count and checksum
//!    ([`row_checksum`]), which a loader can check the stored rows against; then the state.

pub mod features;
pub mod request;

pub use features::Features;
pub use request::{WeeklyRequest, WeeklyResult};

use crate::contract::Contract;
use crate::error::Error;
use crate::manifest::{MANIFEST_VERSION, Manifest, SourceRef, Status, now_us, rfc3339};
use crate::output::{OutputNames, OutputOptions, PartitionedWriter};
use crate::parse::{format_date, format_decimal};
use crate::schema::{INGESTED_AT, PartKey, RECORD_NUMBER, SOURCE_KEY, SOURCE_ORDER, output_schema};
use crate::store::ObjectStore;
use arrow_array::builder::{
    Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::sync::Arc;

/// The dataset the job writes.
pub const TRENDS: &str = "weekly_trends";
/// The dataset it reads.
pub const SERIES: &str = "weekly_series";
/// Where the state of the last run is, in the processed bucket.
pub const STATE_KEY: &str = "state/weekly_trends.json";
/// Weeks after a changed week whose features read it (the 13-week window's reach).
pub const REACH: i32 = 12;
/// The values' scale: decimal(18,6).
const SCALE: u8 = 6;

/// A series: where it comes from and its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// `FT`, `QUANDL`, `DOWJONES`.
    pub source: String,
    /// The vendor's dataset code (`FRED-DGS10`).
    pub dataset_code: String,
    /// The series (the wide file's column).
    pub series: String,
}

/// One week's value of one series, and the input row it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The value, scaled by 10^6; `None` a gap.
    pub value: Option<i128>,
    /// The input file's key.
    pub source_key: Arc<str>,
    /// Its record.
    pub record_number: i64,
    /// When that file was processed.
    pub ingested_at_us: i64,
    /// The input's place in time (`_source_order`); `None` when unknown.
    pub source_order: Option<Arc<str>>,
    /// Which input manifest (an index into [`History::inputs`]).
    pub input: usize,
}

impl Observation {
    /// The order in which inputs win a key: the later `_source_order` (an unknown one is
    /// earliest), then the later processing, then the greater key and record (a tie-break that
    /// depends on nothing but the rows).
    fn rank(&self) -> (Option<&str>, i64, &str, i64) {
        (
            self.source_order.as_deref(),
            self.ingested_at_us,
            &self.source_key,
            self.record_number,
        )
    }
}

/// Every series' weekly values, as the processed weekly_series data gives them.
#[derive(Debug, Default)]
pub struct History {
    /// Series → week ending (days since 1970-01-01) → the winning observation.
    pub series: BTreeMap<SeriesKey, BTreeMap<i32, Observation>>,
    /// The input manifests, as `<key>@<finished_at>` (a file processed again is another input).
    pub inputs: Vec<String>,
    /// Per input: the (series, week) it carries, winning or not.
    carried: Vec<BTreeSet<(SeriesKey, i32)>>,
    /// Rows read over every input.
    pub rows_read: u64,
}

/// The job's failures.
#[derive(Debug, thiserror::Error)]
pub enum WeeklyError {
    /// An input or the state could not be read, or an output written.
    #[error("{0}")]
    Storage(String),
    /// An input is not what the weekly_series contract writes.
    #[error("{0}")]
    Input(String),
    /// The engine failed writing.
    #[error(transparent)]
    Engine(#[from] Error),
}

impl WeeklyError {
    fn storage(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        WeeklyError::Storage(format!("{what}: {e}"))
    }
}

/// Reads every `ok` weekly_series manifest in `processed` and its parts.
pub fn read_history(processed: &dyn ObjectStore) -> Result<History, WeeklyError> {
    let prefix = format!("manifests/{SERIES}/");
    let keys = processed.list(&prefix).map_err(|e| {
        WeeklyError::storage(format_args!("listing {}", processed.locate(&prefix)), e)
    })?;
    let mut history = History::default();
    for key in keys.iter().filter(|k| k.ends_with(".json")) {
        let manifest = crate::warehouse::read_manifest(processed, key)
            .map_err(|e| WeeklyError::Input(e.message))?;
        if manifest.status != Status::Ok || manifest.dataset != SERIES {
            continue;
        }
        let input = history.inputs.len();
        history
            .inputs
            .push(format!("{key}@{}", manifest.finished_at));
        history.carried.push(BTreeSet::new());
        for part in &manifest.outputs {
            let batches = crate::warehouse::part_batches(processed, &part.key)
                .map_err(|e| WeeklyError::Input(format!("{key}: {}", e.message)))?;
            for batch in batches {
                let batch = batch.map_err(|e| {
                    WeeklyError::Input(format!("{}: {e}", processed.locate(&part.key)))
                })?;
                read_batch(&mut history, input, &batch).map_err(|e| {
                    WeeklyError::Input(format!("{}: {e}", processed.locate(&part.key)))
                })?;
            }
        }
    }
    Ok(history)
}

/// A column of `batch` by name, or an error naming it.
fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column `{name}` (not weekly_series output)"))
}

fn read_batch(history: &mut History, input: usize, batch: &RecordBatch) -> Result<(), String> {
    let text = |name: &str| -> Result<_, String> {
        column(batch, name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("column `{name}` is not text"))
    };
    let (source, code, series) = (text("source")?, text("dataset_code")?, text("series")?);
    let weeks = column(batch, "week_ending")?
        .as_primitive_opt::<Date32Type>()
        .ok_or("column `week_ending` is not a date")?;
    let values = column(batch, "value")?
        .as_primitive_opt::<Decimal128Type>()
        .filter(|a| a.scale() == SCALE as i8)
        .ok_or("column `value` is not decimal(18,6)")?;
    let keys = text(SOURCE_KEY)?;
    let records = column(batch, RECORD_NUMBER)?
        .as_primitive_opt::<Int64Type>()
        .ok_or("column `_record_number` is not an integer")?;
    let ingested = column(batch, INGESTED_AT)?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or("column `_ingested_at` is not a timestamp")?;
    let orders = text(SOURCE_ORDER)?;
    for r in 0..batch.num_rows() {
        history.rows_read += 1;
        let key = SeriesKey {
            source: source.value(r).to_string(),
            dataset_code: code.value(r).to_string(),
            series: series.value(r).to_string(),
        };
        let week = weeks.value(r);
        let observation = Observation {
            value: values.is_valid(r).then(|| values.value(r)),
            source_key: Arc::from(keys.value(r)),
            record_number: records.value(r),
            ingested_at_us: ingested.value(r),
            source_order: orders.is_valid(r).then(|| Arc::from(orders.value(r))),
            input,
        };
        history.carried[input].insert((key.clone(), week));
        let weeks = history.series.entry(key).or_default();
        match weeks.get(&week) {
            Some(held) if held.rank() >= observation.rank() => {}
            _ => {
                weeks.insert(week, observation);
            }
        }
    }
    Ok(())
}

/// One row of the trends.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend<'h> {
    /// The series.
    pub key: &'h SeriesKey,
    /// Its week ending.
    pub week: i32,
    /// The week's observation.
    pub observation: &'h Observation,
    /// The newest input the row read: the highest-ranked observation of the weeks its features
    /// read (this one and the [`REACH`] before it). Its lineage is the row's, so that a row a
    /// later correction changed (a value, or a feature over it) wins its key against the row an
    /// older run made, in whatever order the two are loaded.
    pub lineage: &'h Observation,
    /// Its features.
    pub features: Features,
}

impl Trend<'_> {
    /// The value of the decimal column `name` in this row.
    pub fn decimal(&self, name: &str) -> Option<i128> {
        let f = &self.features;
        match name {
            "value" => self.observation.value,
            "wow_change" => f.wow_change,
            "wow_pct" => f.wow_pct,
            "ma_4w" => f.ma_4w,
            "ma_13w" => f.ma_13w,
            _ => None,
        }
    }
}

impl History {
    /// Every series' trend rows, series by series, weeks ascending.
    pub fn trends(&self) -> Vec<Trend<'_>> {
        let mut out = Vec::new();
        for (key, weeks) in &self.series {
            let values: Vec<(i32, Option<i128>)> =
                weeks.iter().map(|(&w, o)| (w, o.value)).collect();
            for ((&week, observation), features) in weeks.iter().zip(features::features(&values)) {
                let lineage = weeks
                    .range(week - 7 * REACH..=week)
                    .map(|(_, o)| o)
                    .max_by(|a, b| a.rank().cmp(&b.rank()))
                    .unwrap_or(observation);
                out.push(Trend {
                    key,
                    week,
                    observation,
                    lineage,
                    features,
                });
            }
        }
        out
    }

    /// The weeks to rebuild when the inputs the last different run had were `before`: those
    /// the new inputs carry and the [`REACH`] after each; every week when an input of `before`
    /// is gone (or was processed again) or there was no run.
    pub fn weeks_to_rebuild(&self, before: Option<&[String]>) -> BTreeSet<i32> {
        let all = || {
            self.series
                .values()
                .flat_map(|weeks| weeks.keys().copied())
                .collect()
        };
        let Some(before) = before else {
            return all();
        };
        let now: BTreeSet<&str> = self.inputs.iter().map(String::as_str).collect();
        if before.iter().any(|i| !now.contains(i.as_str())) {
            return all();
        }
        let old: BTreeSet<&str> = before.iter().map(String::as_str).collect();
        let mut weeks = BTreeSet::new();
        for (n, input) in self.inputs.iter().enumerate() {
            if old.contains(input.as_str()) {
                continue;
            }
            for (key, week) in &self.carried[n] {
                // The series' own weeks that read this one.
                if let Some(series) = self.series.get(key) {
                    weeks.extend(series.range(*week..=week + 7 * REACH).map(|(w, _)| *w));
                }
            }
        }
        weeks
    }
}

/// The canonical text of a trend row, whose CRC-32 the per-week checksums add up:
/// `source|dataset_code|series|week_ending|value|wow_change|wow_pct|ma_4w|ma_13w`, decimals with
/// six places, a null as `\N`. MySQL computes the same with `CRC32(CONCAT_WS('|', …))`; the
/// z-score, a float whose text differs between engines, is left out.
pub fn row_checksum(t: &Trend<'_>) -> u32 {
    let decimal = |name: &str| {
        t.decimal(name)
            .map_or("\\N".to_string(), |v| format_decimal(v, SCALE))
    };
    let text = [
        t.key.source.clone(),
        t.key.dataset_code.clone(),
        t.key.series.clone(),
        format_date(t.week),
        decimal("value"),
        decimal("wow_change"),
        decimal("wow_pct"),
        decimal("ma_4w"),
        decimal("ma_13w"),
    ]
    .join("|");
    crc32fast::hash(text.as_bytes())
}

/// What the last run recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Its inputs.
    pub inputs: Vec<String>,
    /// The inputs of the run before it (what its weeks were rebuilt against).
    #[serde(default)]
    pub previous: Option<Vec<String>>,
    /// Its manifest.
    pub manifest: String,
    /// When it finished.
    pub finished_at: String,
}

/// Reads the state, when a run left one.
pub fn read_state(processed: &dyn ObjectStore) -> Result<Option<State>, WeeklyError> {
    let mut text = Vec::new();
    match processed.open(STATE_KEY) {
        Ok(mut r) => r
            .read_to_end(&mut text)
            .map_err(|e| WeeklyError::storage(processed.locate(STATE_KEY), e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(WeeklyError::storage(processed.locate(STATE_KEY), e)),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| WeeklyError::Input(format!("{}: {e}", processed.locate(STATE_KEY))))
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The manifest written (none when there were no inputs).
    pub manifest: Option<(String, Manifest)>,
    /// Series in the history.
    pub series: usize,
    /// Weeks rebuilt.
    pub weeks: BTreeSet<i32>,
}

/// Runs the job over `processed` (the bucket named `bucket`), with the weekly_trends `contract`.
pub fn run(
    processed: &dyn ObjectStore,
    bucket: &str,
    contract: &Contract,
    output: OutputOptions,
) -> Result<Ran, WeeklyError> {
    let started = now_us();
    let history = read_history(processed)?;
    if history.inputs.is_empty() {
        return Ok(Ran {
            manifest: None,
            series: 0,
            weeks: BTreeSet::new(),
        });
    }
    let state = read_state(processed)?;
    // The same inputs as the last run: the same run again, against what that one was against.
    let before = match &state {
        Some(s) if s.inputs == history.inputs => s.previous.clone(),
        Some(s) => Some(s.inputs.clone()),
        None => None,
    };
    let weeks = history.weeks_to_rebuild(before.as_deref());
    let trends = history.trends();
    let digest = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for i in &history.inputs {
            h.update(i.as_bytes());
            h.update([0u8]);
        }
        h.update([1u8]);
        for i in before.iter().flatten() {
            h.update(i.as_bytes());
            h.update([0u8]);
        }
        hex::encode(&h.finalize()[..16])
    };
    let names = OutputNames::new(
        TRENDS,
        &contract.version,
        &contract.columns[contract.partition].name,
        bucket,
        TRENDS,
        &digest,
    );
    let schema = output_schema(contract);
    let statistics = crate::schema::statistics_columns(contract, &schema);
    let mut writer = PartitionedWriter::new(
        processed,
        schema.clone(),
        names.clone(),
        output,
        &statistics,
    );
    let totaled: Vec<&str> = contract
        .control_totals
        .iter()
        .map(|&c| contract.columns[c].name.as_str())
        .collect();
    let mut totals = vec![0i128; totaled.len()];
    let mut checksums: BTreeMap<i32, (u64, u64)> = BTreeMap::new();
    let mut nulls = 0u64;
    let mut written = 0u64;
    let mut by_week: BTreeMap<i32, Vec<&Trend<'_>>> = BTreeMap::new();
    for t in trends.iter().filter(|t| weeks.contains(&t.week)) {
        by_week.entry(t.week).or_default().push(t);
    }
    for (week, rows) in &by_week {
        for t in rows {
            for (total, name) in totals.iter_mut().zip(&totaled) {
                *total += t.decimal(name).unwrap_or(0);
            }
            nulls += u64::from(t.observation.value.is_none());
            let c = checksums.entry(*week).or_default();
            c.0 += 1;
            c.1 += u64::from(row_checksum(t));
        }
        written += rows.len() as u64;
        let batch = batch(&schema, rows)?;
        if let Err(e) = writer.write(&PartKey::Date(*week), &batch) {
            writer.abort();
            return Err(e.into());
        }
    }
    let outputs = writer.finish()?;
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        dataset: TRENDS.into(),
        contract_version: contract.version.clone(),
        profile: String::new(),
        source: SourceRef {
            bucket: bucket.to_string(),
            key: format!("manifests/{SERIES}/"),
            etag: digest,
            bytes: 0,
            ..Default::default()
        },
        rows_read: trends.len() as u64,
        rows_ok: trends.len() as u64,
        rows_rejected: 0,
        rows_written: written,
        reject_reasons: BTreeMap::new(),
        outputs,
        quarantine: None,
        control_totals: totaled
            .iter()
            .zip(totals)
            .map(|(name, sum)| (name.to_string(), format_decimal(sum, SCALE)))
            .collect(),
        null_values: nulls,
        unknown_columns: Vec::new(),
        warnings: BTreeMap::new(),
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        series: history.series.len() as u64,
        inputs: history.inputs.clone(),
        checksums: checksums
            .into_iter()
            .map(|(w, (rows, sum))| (format_date(w), format!("{rows}:{sum}")))
            .collect(),
        started_at: rfc3339(started),
        finished_at: rfc3339(now_us()),
        status: Status::Ok,
        error: None,
    };
    let manifest_key = names.manifest_key();
    crate::output::write_manifest(processed, &manifest_key, &manifest)?;
    let state = State {
        inputs: history.inputs.clone(),
        previous: before,
        manifest: manifest_key.clone(),
        finished_at: manifest.finished_at.clone(),
    };
    let json = serde_json::to_vec_pretty(&state).map_err(|e| WeeklyError::Input(e.to_string()))?;
    let mut w = processed
        .create(STATE_KEY)
        .map_err(|e| WeeklyError::storage(processed.locate(STATE_KEY), e))?;
    w.write_all(&json)
        .and_then(|_| w.commit().map(|_| ()))
        .map_err(|e| WeeklyError::storage(processed.locate(STATE_KEY), e))?;
    Ok(Ran {
        manifest: Some((manifest_key, manifest)),
        series: history.series.len(),
        weeks,
    })
}

/// One week's rows as a batch of the trends' output schema.
fn batch(schema: &arrow_schema::SchemaRef, rows: &[&Trend<'_>]) -> Result<RecordBatch, Error> {
    let n = rows.len();
    let text = |f: &dyn Fn(&Trend<'_>) -> Option<String>| {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        for t in rows {
            b.append_option(f(t));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let decimal = |f: &dyn Fn(&Trend<'_>) -> Option<i128>| -> Result<ArrayRef, Error> {
        let mut b = Decimal128Builder::with_capacity(n);
        for t in rows {
            b.append_option(f(t));
        }
        Ok(Arc::new(
            b.finish().with_precision_and_scale(18, SCALE as i8)?,
        ))
    };
    let mut weeks = Date32Builder::with_capacity(n);
    let mut zscores = Float64Builder::with_capacity(n);
    let mut records = Int64Builder::with_capacity(n);
    let mut ingested = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    for t in rows {
        weeks.append_value(t.week);
        zscores.append_option(t.features.zscore_13w);
        records.append_value(t.lineage.record_number);
        ingested.append_value(t.lineage.ingested_at_us);
    }
    let columns: Vec<ArrayRef> = vec![
        text(&|t| Some(t.key.source.clone())),
        text(&|t| Some(t.key.dataset_code.clone())),
        text(&|t| Some(t.key.series.clone())),
        Arc::new(weeks.finish()),
        decimal(&|t| t.observation.value)?,
        decimal(&|t| t.features.wow_change)?,
        decimal(&|t| t.features.wow_pct)?,
        decimal(&|t| t.features.ma_4w)?,
        decimal(&|t| t.features.ma_13w)?,
        Arc::new(zscores.finish()),
        text(&|t| Some(t.lineage.source_key.to_string())),
        Arc::new(records.finish()),
        Arc::new(ingested.finish()),
        text(&|t| t.lineage.source_order.as_deref().map(String::from)),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
