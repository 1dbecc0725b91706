//! The cleaner: CSV records in, typed Arrow batches and quarantined records out, by a contract.
//!
//! [`plan`] reads a file's header (and its object key) once; [`RecordsCleaner`] then takes the
//! records chunk by chunk. Each record is checked column by column in contract order, then by the
//! record-level rules, then for a duplicate key; it ends either in a batch or in the quarantine,
//! never both and never neither.

use crate::contract::{
    Check, Column, ColumnType, Contract, DerivedKind, Encoding, MarketValueFactors, Profile,
    RecordRule, Source, header_key,
};
use crate::error::FileError;
use crate::input::{Chunk, Limits, Record};
use crate::parse::{
    self, cusip_is_valid, isin_is_valid, parse_decimal, parse_int64, trim, unquote_padded,
};
use crate::reason::Reason;
use crate::schema::{BatchBuilder, PartKey};
pub use crate::value::{DerivedVal, Val};
use arrow_array::RecordBatch;
use std::collections::BTreeMap;

mod dedupe;
mod plan;
mod records;
mod rules;
mod text;

pub(crate) use dedupe::Deduper;
pub use plan::{Fixed, Plan, plan};
pub(crate) use plan::{choose_profile, fixed_values};
pub(crate) use records::RecordsCleaner;
use rules::record_rule;
pub(crate) use rules::{derive_row, part_key};
pub(crate) use text::{decode_header, decode_text, escape_bytes_in};

/// What one file's run knows besides its bytes.
#[derive(Debug, Clone)]
pub(crate) struct FileContext {
    /// The object key (or path) of the input; lineage and key-derived values come from it.
    pub source_key: String,
    /// The `_ingested_at` value for every row of this file, microseconds since the epoch, UTC.
    pub ingested_at_us: i64,
    /// The `_source_order` value for every row of this file (the input's event time and
    /// sequencer), when known.
    pub source_order: Option<String>,
}

/// Counts and sums of one file's run: the manifest's numbers.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Records read (header excluded, blank lines not counted).
    pub rows_read: u64,
    /// Records in the clean output.
    pub rows_ok: u64,
    /// Records quarantined.
    pub rows_rejected: u64,
    /// Rejects by reason.
    pub reasons: BTreeMap<Reason, u64>,
    /// Sums of the contract's control-total columns over clean records, scaled like each column.
    pub totals: Vec<i128>,
    /// Null values in clean rows of the wide shape (gaps in a series).
    pub gaps: u64,
}

impl Stats {
    /// Zero counts, with one zero sum for each of the contract's control-total columns.
    pub fn for_contract(contract: &Contract) -> Self {
        Stats {
            totals: vec![0; contract.control_totals.len()],
            ..Stats::default()
        }
    }

    pub(crate) fn reject(&mut self, r: &Rejected) {
        self.rows_rejected += 1;
        *self.reasons.entry(r.reason).or_default() += 1;
    }

    /// Adds another run's (or chunk's) counts and sums to these.
    pub fn merge(&mut self, other: &Stats) {
        self.rows_read += other.rows_read;
        self.rows_ok += other.rows_ok;
        self.rows_rejected += other.rows_rejected;
        for (r, n) in &other.reasons {
            *self.reasons.entry(*r).or_default() += n;
        }
        if self.totals.len() < other.totals.len() {
            self.totals.resize(other.totals.len(), 0);
        }
        for (t, v) in other.totals.iter().enumerate() {
            self.totals[t] += v;
        }
        self.gaps += other.gaps;
    }
}

/// A quarantined record, in the form the quarantine file takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based record number, header excluded.
    pub record_number: u64,
    /// The column at fault (empty for record-level rules).
    pub column: String,
    /// The rule broken.
    pub reason: Reason,
    /// The raw value at fault.
    pub value: String,
    /// The raw record, re-joined as one CSV line.
    pub record: String,
}

/// Re-joins a record's fields into one CSV line (quoting as RFC 4180 needs), decoded for display.
pub(crate) fn join_record(encoding: Encoding, rec: &Record<'_>) -> String {
    let mut out = String::with_capacity(rec.bytes().len() + rec.len() * 3);
    for (j, f) in rec.fields().enumerate() {
        if j > 0 {
            out.push(',');
        }
        let text = escape_bytes_in(encoding, f);
        if text.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&text);
        }
    }
    out
}

/// One chunk's results, ready to write: clean batches by partition, and the rejects in record order.
#[derive(Debug, Default)]
pub(crate) struct ChunkOutput {
    /// Clean rows, one batch per partition value seen in the chunk.
    pub batches: Vec<(PartKey, RecordBatch)>,
    /// Quarantined records.
    pub rejects: Vec<Rejected>,
}

/// Where a clean row's key lies, for the in-order duplicate check.
#[derive(Debug, Clone, Copy)]
pub struct KeyEntry {
    /// xxh3 of the row's normalised key values.
    pub hash: u64,
    /// 1-based record number.
    pub record: u64,
    /// Index of the row's batch in [`Checked::batches`].
    pub batch: u32,
    /// Row index within that batch.
    pub row: u32,
}

/// One chunk checked by every rule but `duplicate_key`, which needs the file's order
/// ([`Deduper`]). Chunks can be checked in parallel.
#[derive(Debug, Default)]
pub struct Checked {
    /// Rows that passed, one batch per partition value.
    pub batches: Vec<(PartKey, RecordBatch)>,
    /// Records rejected, in record order.
    pub rejects: Vec<Rejected>,
    /// The passing rows' keys, in record order.
    pub keys: Vec<KeyEntry>,
    /// This chunk's counts and sums (before duplicates are taken out).
    pub stats: Stats,
}
