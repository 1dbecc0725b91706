//! The output schema a contract implies, and the builders that fill it.
//!
//! Columns come in three runs: the contract's columns in order, the derived columns, then the
//! lineage columns `_source_key`, `_record_number`, `_ingested_at` and `_source_order`. Types are ones Redshift's
//! COPY, Spark, DuckDB and pyarrow all read: Decimal128 (precision ≤ 38), Date32, Int32/Int64,
//! Float64, Utf8 and Timestamp(µs, UTC).

use crate::contract::{Column, ColumnType, Contract, DerivedKind, text_eq};
use crate::parse::format_date;
use crate::value::{DerivedVal, Val};
use arrow_array::builder::{
    ArrayBuilder, Date32Builder, Decimal32Builder, Decimal64Builder, Decimal128Builder,
    Float64Builder, Int32Builder, Int64Builder, PrimitiveBuilder, StringBuilder,
    TimestampMicrosecondBuilder, UInt16Builder,
};
use arrow_array::types::{ArrowPrimitiveType, UInt16Type};
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;

/// Name of the lineage column holding the input object's key.
pub const SOURCE_KEY: &str = "_source_key";
/// Name of the lineage column holding the 1-based record number.
pub const RECORD_NUMBER: &str = "_record_number";
/// Name of the lineage column holding the ingestion time.
pub const INGESTED_AT: &str = "_ingested_at";
/// Name of the lineage column holding the input's place in time ([`crate::manifest::SourceRef::order`]):
/// where two inputs hold the same key, the loader keeps the newer input's row.
pub const SOURCE_ORDER: &str = "_source_order";

/// The Arrow type of a contract column.
pub(crate) fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::String | ColumnType::Enum => DataType::Utf8,
        ColumnType::Date => DataType::Date32,
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(precision, scale as i8),
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Double => DataType::Float64,
    }
}

/// The Arrow type of a derived column.
pub(crate) fn derived_type(kind: &DerivedKind) -> DataType {
    match kind {
        DerivedKind::Position { .. } | DerivedKind::DaysBetween { .. } => DataType::Int32,
        DerivedKind::Bucket { .. } => DataType::Utf8,
    }
}

/// The schema of a dataset's clean output.
pub(crate) fn output_schema(contract: &Contract) -> SchemaRef {
    let mut fields: Vec<Field> = contract
        .columns
        .iter()
        .map(|c| Field::new(&c.name, arrow_type(c.ty), !c.required))
        .collect();
    for d in &contract.derived {
        fields.push(Field::new(&d.name, derived_type(&d.kind), true));
    }
    fields.push(Field::new(SOURCE_KEY, DataType::Utf8, false));
    fields.push(Field::new(RECORD_NUMBER, DataType::Int64, false));
    fields.push(Field::new(
        INGESTED_AT,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    ));
    fields.push(Field::new(SOURCE_ORDER, DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// How a file's batches are built: the output schema, except that text columns whose values are
/// known before any row (an enum's domain, a bucket's labels, the file's source key and order)
/// are dictionaries of `UInt16` keys over those values, and free text a dictionary of each
/// batch's own distinct values. The Parquet writer then takes the keys as they are instead of
/// hashing every value again (`dict_chunk`); the file's schema stays the output schema, so
/// readers see Utf8 as before. Decimals of precision up to 18 come as Decimal32 or Decimal64
/// ([`narrow_decimal`]).
#[derive(Debug, Clone)]
pub(crate) struct BatchLayout {
    /// The batches' schema.
    batch: SchemaRef,
    /// Per column: how its batches hold it.
    columns: Vec<Keyed>,
}

/// How a column's batches hold it.
#[derive(Debug, Clone)]
enum Keyed {
    /// As the output schema has it.
    No,
    /// UInt16 keys over values known before any row.
    Over(Arc<StringArray>),
    /// UInt16 keys over the batch's own distinct values, first seen first.
    Interned,
}

impl BatchLayout {
    /// Every column as the output schema has it (the wide shape's batches).
    pub fn plain(output: SchemaRef) -> Self {
        let n = output.fields().len();
        BatchLayout {
            batch: output,
            columns: vec![Keyed::No; n],
        }
    }

    /// A records-shape file's layout: `contract`'s enums and bucket labels, and the lineage
    /// text constant over the file (`source_key`, `source_order`), as dictionaries; and, for
    /// batches of at most [`MAX_INTERNED_ROWS`] rows, free text as a dictionary of each batch's
    /// distinct values, so that the writer hashes a value once a batch, not once a row.
    pub fn for_file(
        contract: &Contract,
        source_key: &str,
        source_order: Option<&str>,
        batch_rows: usize,
    ) -> Self {
        let output = output_schema(contract);
        let mut columns = vec![Keyed::No; output.fields().len()];
        let over = |v: &mut dyn Iterator<Item = &str>| {
            Keyed::Over(Arc::new(StringArray::from_iter_values(v)))
        };
        for (c, col) in contract.columns.iter().enumerate() {
            match (col.ty, &col.domain) {
                (ColumnType::Enum, Some(d)) => {
                    columns[c] = over(&mut d.values.iter().map(String::as_str));
                }
                (ColumnType::String, _) if batch_rows <= MAX_INTERNED_ROWS => {
                    columns[c] = Keyed::Interned;
                }
                _ => {}
            }
        }
        let n_cols = contract.columns.len();
        for (i, d) in contract.derived.iter().enumerate() {
            if let Some(mut labels) = d.kind.bucket_labels() {
                columns[n_cols + i] = over(&mut labels);
            }
        }
        let lineage = n_cols + contract.derived.len();
        columns[lineage] = over(&mut std::iter::once(source_key));
        // No order: the column is all null, over a one-entry dictionary no row uses.
        columns[lineage + 3] = over(&mut std::iter::once(source_order.unwrap_or("")));
        let fields: Vec<Field> = output
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, keyed)| match keyed {
                Keyed::No => match narrow_decimal(f.data_type()) {
                    Some(narrow) => f.as_ref().clone().with_data_type(narrow),
                    None => f.as_ref().clone(),
                },
                Keyed::Over(_) | Keyed::Interned => dictionary_field(f),
            })
            .collect();
        BatchLayout {
            batch: Arc::new(Schema::new(fields)),
            columns,
        }
    }
}

/// How a records-shape batch holds a decimal column of `output` type: in the width its
/// Parquet column has (INT32 up to precision 9, INT64 up to 18). arrow-rs writes a Decimal128
/// array to those columns through a copy of every batch narrowed to 64 bits; a Decimal64 array
/// it writes as it is, and either is a quarter or half the bytes to build. The file's schema
/// stays Decimal128, so every reader sees what it saw.
pub(crate) fn narrow_decimal(output: &DataType) -> Option<DataType> {
    match *output {
        DataType::Decimal128(p, s) if p <= 9 => Some(DataType::Decimal32(p, s)),
        DataType::Decimal128(p, s) if p <= 18 => Some(DataType::Decimal64(p, s)),
        _ => None,
    }
}

/// Text column `f` as batches carry it when built as a dictionary: UInt16 keys over Utf8.
pub(crate) fn dictionary_field(f: &Field) -> Field {
    Field::new(
        f.name(),
        DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8)),
        f.is_nullable(),
    )
}

/// The most rows a batch may have for its free text to be interned: every key of a batch's
/// dictionary, plus one, must fit the UInt16 keys.
pub(crate) const MAX_INTERNED_ROWS: usize = u16::MAX as usize - 1;

/// The columns whose Parquet statistics (min/max per column chunk) are worth their cost: the key
/// and partition columns, which queries filter on, and every non-text column, whose min/max is
/// cheap. Free text (names, issuers) would cost a byte comparison a value for nothing.
pub(crate) fn statistics_columns(contract: &Contract, schema: &Schema) -> Vec<String> {
    let keyed: Vec<&str> = contract
        .key
        .iter()
        .chain(std::iter::once(&contract.partition))
        .map(|&c| contract.columns[c].name.as_str())
        .collect();
    schema
        .fields()
        .iter()
        .filter(|f| keyed.contains(&f.name().as_str()) || f.data_type() != &DataType::Utf8)
        .map(|f| f.name().clone())
        .collect()
}

/// A partition value: a date, or text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartKey {
    /// Days since the epoch.
    Date(i32),
    /// Text, as stored.
    Text(String),
}

impl PartKey {
    /// The value as written in a Hive path segment (`2026-11-25`); text is percent-encoded the way
    /// Hive escapes path characters.
    pub fn path_value(&self) -> String {
        match self {
            PartKey::Date(d) => format_date(*d),
            PartKey::Text(s) => {
                let mut out = String::new();
                for ch in s.chars() {
                    if ch.is_ascii_alphanumeric() || "-_.".contains(ch) {
                        out.push(ch);
                    } else {
                        let mut b = [0u8; 4];
                        for x in ch.encode_utf8(&mut b).bytes() {
                            out.push_str(&format!("%{x:02X}"));
                        }
                    }
                }
                if out.is_empty() {
                    "__HIVE_DEFAULT_PARTITION__".into()
                } else {
                    out
                }
            }
        }
    }

    /// The value as plain text (for the manifest).
    pub fn display(&self) -> String {
        match self {
            PartKey::Date(d) => format_date(*d),
            PartKey::Text(s) => s.clone(),
        }
    }
}

enum ColBuilder {
    Utf8(StringBuilder),
    Text(TextDict),
    Keys(KeysBuilder),
    Date(Date32Builder),
    Dec(Decimal128Builder, u8, i8),
    Dec32(Decimal32Builder, u8, i8),
    Dec64(Decimal64Builder, u8, i8),
    I64(Int64Builder),
    I32(Int32Builder),
    F64(Float64Builder),
    Ts(TimestampMicrosecondBuilder),
}

/// Builds one record batch of the output schema, row by row.
pub(crate) struct BatchBuilder {
    schema: SchemaRef,
    cols: Vec<ColBuilder>,
    rows: usize,
}

impl BatchBuilder {
    /// Empty builders for `layout`'s batches, sized for `capacity` rows.
    pub fn new(layout: &BatchLayout, capacity: usize) -> Self {
        let cols = layout
            .batch
            .fields()
            .iter()
            .zip(&layout.columns)
            .map(|(f, keyed)| match (keyed, f.data_type()) {
                (Keyed::Interned, _) => ColBuilder::Text(TextDict::new(capacity)),
                (Keyed::Over(values), _) => ColBuilder::Keys(KeysBuilder {
                    keys: UInt16Builder::with_capacity(capacity),
                    values: values.clone(),
                    extra: Vec::new(),
                }),
                (_, DataType::Utf8) => {
                    ColBuilder::Utf8(StringBuilder::with_capacity(capacity, capacity * 12))
                }
                (_, DataType::Date32) => ColBuilder::Date(Date32Builder::with_capacity(capacity)),
                (_, DataType::Decimal128(p, s)) => {
                    ColBuilder::Dec(Decimal128Builder::with_capacity(capacity), *p, *s)
                }
                (_, DataType::Decimal32(p, s)) => {
                    ColBuilder::Dec32(Decimal32Builder::with_capacity(capacity), *p, *s)
                }
                (_, DataType::Decimal64(p, s)) => {
                    ColBuilder::Dec64(Decimal64Builder::with_capacity(capacity), *p, *s)
                }
                (_, DataType::Int64) => ColBuilder::I64(Int64Builder::with_capacity(capacity)),
                (_, DataType::Int32) => ColBuilder::I32(Int32Builder::with_capacity(capacity)),
                (_, DataType::Float64) => ColBuilder::F64(Float64Builder::with_capacity(capacity)),
                (_, DataType::Timestamp(_, tz)) => ColBuilder::Ts(
                    TimestampMicrosecondBuilder::with_capacity(capacity)
                        .with_timezone_opt(tz.clone()),
                ),
                (_, other) => unreachable!("output schemas hold no {other}"),
            })
            .collect();
        BatchBuilder {
            schema: layout.batch.clone(),
            cols,
            rows: 0,
        }
    }

    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no row was appended.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends a contract column's values, one per row, and nulls where a value does not fit
    /// the column's type. The type is matched once for the run of values.
    #[inline]
    pub fn push_column<'v>(
        &mut self,
        i: usize,
        col: &Column,
        values: impl Iterator<Item = Val<'v>>,
        scratch: &str,
    ) {
        match &mut self.cols[i] {
            ColBuilder::Utf8(b) => {
                for v in values {
                    match v {
                        Val::Str(s) => b.append_value(s),
                        Val::Scratch(a, z) => b.append_value(&scratch[a as usize..z as usize]),
                        Val::Enum(e) => match &col.domain {
                            Some(d) => b.append_value(&d.values[e as usize]),
                            None => b.append_null(),
                        },
                        _ => b.append_null(),
                    }
                }
            }
            ColBuilder::Text(t) => {
                let TextDict { keys, table } = t;
                append_runs(
                    keys,
                    values.map(|v| match v {
                        Val::Str(s) => Some(table.intern(s)),
                        Val::Scratch(a, z) => Some(table.intern(&scratch[a as usize..z as usize])),
                        Val::Enum(e) => col
                            .domain
                            .as_ref()
                            .map(|d| table.intern(&d.values[e as usize])),
                        _ => None,
                    }),
                )
            }
            ColBuilder::Keys(k) => {
                let KeysBuilder {
                    keys,
                    values: known,
                    extra,
                } = k;
                append_runs(
                    keys,
                    values.map(|v| match v {
                        Val::Enum(e) if col.domain.is_some() => Some(e),
                        Val::Str(s) => Some(key_of(known, extra, s)),
                        Val::Scratch(a, z) => {
                            Some(key_of(known, extra, &scratch[a as usize..z as usize]))
                        }
                        _ => None,
                    }),
                )
            }
            ColBuilder::Date(b) => append_runs(
                b,
                values.map(|v| if let Val::Date(d) = v { Some(d) } else { None }),
            ),
            ColBuilder::Dec(b, ..) => append_runs(b, values.map(number)),
            // A parsed decimal has at most the column's precision in digits (`parse_decimal`):
            // up to 9 fit an i32, up to 18 an i64.
            ColBuilder::Dec32(b, ..) => append_runs(b, values.map(|v| number(v).map(|n| n as i32))),
            ColBuilder::Dec64(b, ..) => append_runs(b, values.map(|v| number(v).map(|n| n as i64))),
            ColBuilder::I64(b) => append_runs(b, values.map(|v| number(v).map(|n| n as i64))),
            c => values.for_each(|_| c.append_null()),
        }
    }

    /// Appends a derived column's values.
    #[inline]
    pub fn push_derived_column<'v>(
        &mut self,
        i: usize,
        values: impl Iterator<Item = DerivedVal<'v>>,
    ) {
        match &mut self.cols[i] {
            ColBuilder::I32(b) => append_runs(
                b,
                values.map(|v| if let DerivedVal::Int(x) = v { x } else { None }),
            ),
            ColBuilder::Utf8(b) => values.for_each(|v| {
                b.append_option(if let DerivedVal::Label(x) = v {
                    x.map(|(_, s)| s)
                } else {
                    None
                })
            }),
            // The dictionary is the bucket's labels (`BatchLayout::for_file`): a label's key
            // is its place among them.
            ColBuilder::Keys(k) => append_runs(
                &mut k.keys,
                values.map(|v| match v {
                    DerivedVal::Label(Some((key, _))) => Some(key),
                    _ => None,
                }),
            ),
            c => values.for_each(|_| c.append_null()),
        }
    }

    /// Appends the four lineage columns starting at column `i` for rows of the given record
    /// numbers, and counts the rows.
    #[inline]
    pub fn push_lineage_rows(
        &mut self,
        i: usize,
        source_key: &str,
        record_numbers: impl ExactSizeIterator<Item = u64>,
        ingested_at_us: i64,
        source_order: Option<&str>,
    ) {
        let n = record_numbers.len();
        match &mut self.cols[i] {
            ColBuilder::Keys(k) => {
                let key = key_of(&k.values, &mut k.extra, source_key);
                k.keys.append_value_n(key, n);
            }
            ColBuilder::Utf8(b) => (0..n).for_each(|_| b.append_value(source_key)),
            _ => {}
        }
        if let ColBuilder::I64(b) = &mut self.cols[i + 1] {
            append_runs(b, record_numbers.map(|r| Some(r as i64)));
        }
        if let ColBuilder::Ts(b) = &mut self.cols[i + 2] {
            b.append_value_n(ingested_at_us, n);
        }
        match (&mut self.cols[i + 3], source_order) {
            (ColBuilder::Keys(k), Some(order)) => {
                let key = key_of(&k.values, &mut k.extra, order);
                k.keys.append_value_n(key, n);
            }
            (ColBuilder::Keys(k), None) => k.keys.append_nulls(n),
            (ColBuilder::Utf8(b), _) => (0..n).for_each(|_| b.append_option(source_order)),
            _ => {}
        }
        self.rows += n;
    }

    /// Finishes the batch.
    pub fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> Result<ArrayRef, ArrowError> {
                Ok(match c {
                    ColBuilder::Utf8(b) => Arc::new(b.finish()),
                    ColBuilder::Text(t) => Arc::new(t.finish()?),
                    ColBuilder::Keys(k) => Arc::new(k.finish()?),
                    ColBuilder::Date(b) => Arc::new(b.finish()),
                    ColBuilder::Dec(b, p, s) => {
                        Arc::new(b.finish().with_precision_and_scale(*p, *s)?)
                    }
                    ColBuilder::Dec32(b, p, s) => {
                        Arc::new(b.finish().with_precision_and_scale(*p, *s)?)
                    }
                    ColBuilder::Dec64(b, p, s) => {
                        Arc::new(b.finish().with_precision_and_scale(*p, *s)?)
                    }
                    ColBuilder::I64(b) => Arc::new(b.finish()),
                    ColBuilder::I32(b) => Arc::new(b.finish()),
                    ColBuilder::F64(b) => Arc::new(b.finish()),
                    ColBuilder::Ts(b) => Arc::new(b.finish()),
                })
            })
            .collect::<Result<_, _>>()?;
        RecordBatch::try_new(self.schema, arrays)
    }
}

/// A decimal's or an integer's scaled value; `None` for a null (or a cell of another type).
#[inline]
fn number(v: Val<'_>) -> Option<i128> {
    if let Val::Num(n) = v { Some(n) } else { None }
}

/// Appends values through runs of up to 64 gathered on the stack: one capacity check and one
/// validity update a run, where `append_option` paid both for every value. A null is stored as
/// `append_null` stores it (the type's default under a cleared validity bit).
#[inline]
fn append_runs<T: ArrowPrimitiveType>(
    b: &mut PrimitiveBuilder<T>,
    values: impl Iterator<Item = Option<T::Native>>,
) {
    const RUN: usize = 64;
    let mut vals = [T::Native::default(); RUN];
    let mut valid = [false; RUN];
    let (mut n, mut present) = (0, 0);
    for v in values {
        vals[n] = v.unwrap_or_default();
        valid[n] = v.is_some();
        present += usize::from(v.is_some());
        n += 1;
        if n == RUN {
            append_run(b, &vals, &valid, present);
            (n, present) = (0, 0);
        }
    }
    append_run(b, &vals[..n], &valid[..n], present);
}

/// One run of [`append_runs`], `present` of whose values are not null. A run all present or all
/// null (a required column; a column the file lacks, such as the Kafka lineage of a file from
/// S3) skips arrow's per-value validity: its bitmap takes a run of bools one bit at a time.
#[inline]
fn append_run<T: ArrowPrimitiveType>(
    b: &mut PrimitiveBuilder<T>,
    vals: &[T::Native],
    valid: &[bool],
    present: usize,
) {
    if present == vals.len() {
        b.append_slice(vals);
    } else if present == 0 {
        b.append_nulls(vals.len());
    } else {
        b.append_values(vals, valid);
    }
}

/// A free-text column of one batch: a key per row into the batch's distinct values.
struct TextDict {
    keys: UInt16Builder,
    table: Interner,
}

impl TextDict {
    fn new(capacity: usize) -> Self {
        TextDict {
            keys: UInt16Builder::with_capacity(capacity),
            table: Interner::new(capacity),
        }
    }

    fn finish(&mut self) -> Result<DictionaryArray<UInt16Type>, ArrowError> {
        let values = Arc::new(self.table.values.finish());
        DictionaryArray::try_new(self.keys.finish(), values)
    }
}

/// Distinct text, first seen first, found again through an open-addressed table of keys.
struct Interner {
    values: StringBuilder,
    /// A value's key plus one (0: empty) at its hash's slot; at most half full.
    slots: Vec<u16>,
    hasher: foldhash::fast::FixedState,
}

impl Interner {
    fn new(capacity: usize) -> Self {
        Interner {
            values: StringBuilder::with_capacity(capacity.min(1024), capacity.min(1024) * 16),
            slots: vec![0; (capacity.clamp(8, 4096) * 2).next_power_of_two()],
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    /// The key of `s`, added if new. At most [`MAX_INTERNED_ROWS`] distinct values (a batch's
    /// rows, as [`BatchLayout::for_file`] ensures).
    #[inline]
    fn intern(&mut self, s: &str) -> u16 {
        use std::hash::BuildHasher;
        let mask = self.slots.len() - 1;
        let mut i = self.hasher.hash_one(s.as_bytes()) as usize & mask;
        loop {
            match self.slots[i] {
                0 => break,
                k if text_eq(self.value(k - 1), s.as_bytes()) => return k - 1,
                _ => i = (i + 1) & mask,
            }
        }
        let k = self.values.len() as u16;
        self.values.append_value(s);
        self.slots[i] = k + 1;
        if self.values.len() * 2 > self.slots.len() {
            self.grow();
        }
        k
    }

    fn value(&self, k: u16) -> &[u8] {
        let offsets = self.values.offsets_slice();
        let (a, z) = (
            offsets[k as usize] as usize,
            offsets[k as usize + 1] as usize,
        );
        &self.values.values_slice()[a..z]
    }

    /// Doubles the table and places every value again.
    fn grow(&mut self) {
        use std::hash::BuildHasher;
        self.slots = vec![0u16; self.slots.len() * 2];
        let mask = self.slots.len() - 1;
        for k in 0..self.values.len() as u16 {
            let mut i = self.hasher.hash_one(self.value(k)) as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = k + 1;
        }
    }
}

/// A dictionary column's keys, over values known before the rows; a value outside them (an
/// enum column's empty default, say) is kept in `extra` and gets a key after them.
struct KeysBuilder {
    keys: UInt16Builder,
    values: Arc<StringArray>,
    extra: Vec<String>,
}

impl KeysBuilder {
    fn finish(&mut self) -> Result<DictionaryArray<UInt16Type>, ArrowError> {
        let keys = self.keys.finish();
        let values: ArrayRef = if self.extra.is_empty() {
            self.values.clone()
        } else {
            let mut all = StringBuilder::new();
            self.values.iter().for_each(|v| all.append_option(v));
            self.extra.drain(..).for_each(|v| all.append_value(v));
            Arc::new(all.finish())
        };
        DictionaryArray::try_new(keys, values)
    }
}

/// The key of `s`: its place among the known values, else among (or after) the extra ones.
#[inline]
fn key_of(known: &StringArray, extra: &mut Vec<String>, s: &str) -> u16 {
    let n = known.len();
    if let Some(i) = (0..n).find(|&i| known.value(i) == s) {
        return i as u16;
    }
    let i = match extra.iter().position(|x| x == s) {
        Some(i) => i,
        None => {
            extra.push(s.to_string());
            extra.len() - 1
        }
    };
    (n + i) as u16
}

impl ColBuilder {
    fn append_null(&mut self) {
        match self {
            ColBuilder::Utf8(b) => b.append_null(),
            ColBuilder::Text(t) => t.keys.append_null(),
            ColBuilder::Keys(k) => k.keys.append_null(),
            ColBuilder::Date(b) => b.append_null(),
            ColBuilder::Dec(b, ..) => b.append_null(),
            ColBuilder::Dec32(b, ..) => b.append_null(),
            ColBuilder::Dec64(b, ..) => b.append_null(),
            ColBuilder::I64(b) => b.append_null(),
            ColBuilder::I32(b) => b.append_null(),
            ColBuilder::F64(b) => b.append_null(),
            ColBuilder::Ts(b) => b.append_null(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Decimal128Type;
    use proptest::prelude::*;

    proptest! {
        /// A batch's free text, interned: every row reads back as it was, each distinct value
        /// is in the dictionary once and first seen first, through the table's growth (a
        /// small starting size, thousands of values) and values past 16 bytes.
        #[test]
        fn interned_text_reads_back_as_written(
            rows in proptest::collection::vec(
                proptest::option::of("[ab]{0,3}|[a-z]{4,12}|[a-z0-9 ]{17,40}|ÄÖ[a-z]{1,3}"),
                0..3000,
            ),
            capacity in 1usize..5000,
        ) {
            let mut t = TextDict::new(capacity);
            for r in &rows {
                match r {
                    Some(v) => {
                        let k = t.table.intern(v);
                        t.keys.append_value(k);
                    }
                    None => t.keys.append_null(),
                }
            }
            let array = t.finish().expect("keys within the dictionary");
            let values = array.values().as_string::<i32>();
            let got: Vec<Option<&str>> = (0..array.len())
                .map(|i| array.key(i).map(|k| values.value(k)))
                .collect();
            let want: Vec<Option<&str>> = rows.iter().map(|r| r.as_deref()).collect();
            prop_assert_eq!(got, want);
            let mut first_seen: Vec<&str> = Vec::new();
            for v in rows.iter().flatten() {
                if !first_seen.contains(&v.as_str()) {
                    first_seen.push(v);
                }
            }
            let dictionary: Vec<&str> = values.iter().flatten().collect();
            prop_assert_eq!(dictionary, first_seen);
        }
    }

    /// Runs of 64 and a short tail, nulls among them, one run without any and one of nulls
    /// only; and a column of nulls only: the same array, validity and values included, as one
    /// `append_option` a value.
    #[test]
    fn appending_in_runs_builds_what_one_value_at_a_time_builds() {
        let mixed: Vec<Option<i128>> = (0..200)
            .map(|i| {
                let present = !(128..192).contains(&i) && (i % 7 != 3 || (64..128).contains(&i));
                present.then_some(i * 1_000_003 - 77)
            })
            .collect();
        for values in [mixed, vec![None; 150]] {
            let mut runs = PrimitiveBuilder::<Decimal128Type>::new();
            append_runs(&mut runs, values.iter().copied());
            let mut one_by_one = PrimitiveBuilder::<Decimal128Type>::new();
            values.iter().for_each(|&v| one_by_one.append_option(v));
            let (runs, one_by_one) = (runs.finish(), one_by_one.finish());
            assert_eq!(runs.len(), values.len());
            assert_eq!(runs.null_count(), one_by_one.null_count());
            assert!(runs.null_count() > 0);
            assert_eq!(runs, one_by_one);
            assert_eq!(runs.values(), one_by_one.values());
        }
    }
}
