//! The cleaner: CSV records in, typed Arrow batches and quarantined records out, by a contract.
//!
//! [`plan`] reads a file's header (and its object key) once; [`RecordsCleaner`] then takes the
//! records chunk by chunk. Each record is checked column by column in contract order, then by the
//! record-level rules, then for a duplicate key; it ends either in a batch or in the quarantine,
//! never both and never neither.

use crate::contract::{
    Check, Column, ColumnType, Contract, DerivedKind, Encoding, Profile, RecordRule, Source,
    header_key,
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
use arrow_schema::SchemaRef;
use std::collections::BTreeMap;

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

/// A value from outside the record: the object key, the file name or a profile constant.
#[derive(Debug, Clone)]
pub enum Fixed {
    /// Text.
    Str(String),
    /// An enum value's index.
    Enum(u16),
    /// A date.
    Date(i32),
}

/// How a file's fields map onto the contract, worked out once from its header and key.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Fields every record must have.
    pub n_fields: usize,
    /// Per contract column: the field that holds it.
    pub inputs: Vec<Option<usize>>,
    /// Per contract column: the value used when the field is absent or null.
    pub fixed: Vec<Option<Fixed>>,
    /// The header as decoded, for naming fields in errors.
    pub header: Vec<String>,
    /// Header fields the contract does not know (reported in the manifest).
    pub unknown_columns: Vec<String>,
}

/// Decodes a header field in the profile's encoding.
pub(crate) fn decode_header(encoding: Encoding, raw: &[Vec<u8>]) -> Result<Vec<String>, FileError> {
    raw.iter()
        .enumerate()
        .map(|(k, b)| {
            decode_text(encoding, b).ok_or_else(|| FileError::HeaderEncoding {
                encoding: encoding_name(encoding),
                position: k + 1,
                value: escape_bytes(b),
            })
        })
        .collect()
}

/// The name of an encoding as written in errors.
pub(crate) fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Utf8 => "UTF-8",
        Encoding::ShiftJis => "Shift_JIS (CP932)",
    }
}

/// Decodes bytes strictly; `None` when any byte is invalid in the encoding.
pub(crate) fn decode_text(encoding: Encoding, b: &[u8]) -> Option<String> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(b).ok().map(str::to_string),
        Encoding::ShiftJis => encoding_rs::SHIFT_JIS
            .decode_without_bom_handling_and_without_replacement(b)
            .map(|c| c.into_owned()),
    }
}

/// Decodes bytes for display, writing any invalid byte as `\xNN` so nothing is lost.
pub(crate) fn escape_bytes_in(encoding: Encoding, b: &[u8]) -> String {
    if let Some(s) = decode_text(encoding, b) {
        return s;
    }
    match encoding {
        Encoding::Utf8 => escape_bytes(b),
        Encoding::ShiftJis => {
            // Decode what decodes; escape the bytes of each malformed sequence.
            let mut out = String::new();
            let mut decoder = encoding_rs::SHIFT_JIS.new_decoder_without_bom_handling();
            let mut rest = b;
            let mut buf = String::with_capacity(b.len() * 3 + 16);
            loop {
                buf.clear();
                let (res, read) =
                    decoder.decode_to_string_without_replacement(rest, &mut buf, true);
                out.push_str(&buf);
                match res {
                    encoding_rs::DecoderResult::InputEmpty => break,
                    encoding_rs::DecoderResult::OutputFull => {
                        buf.reserve(rest.len() * 3 + 16);
                    }
                    encoding_rs::DecoderResult::Malformed(bad, _) => {
                        let start = read - bad as usize;
                        // The malformed bytes end at `read`; earlier ones were decoded.
                        for &x in &rest[start.min(read)..read] {
                            out.push_str(&format!("\\x{x:02X}"));
                        }
                    }
                }
                rest = &rest[read..];
                if rest.is_empty() {
                    break;
                }
            }
            out
        }
    }
}

/// UTF-8 with invalid bytes written as `\xNN`.
pub(crate) fn escape_bytes(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02X}"));
        }
    }
    out
}

/// Unknown header names a manifest lists before it counts the rest: a header that is really
/// megabytes of data must not make a manifest of megabytes.
pub(crate) const UNKNOWN_COLUMNS_LISTED: usize = 50;

/// Maps the header and the object key onto the contract (records shape).
pub fn plan(
    contract: &Contract,
    profile: &Profile,
    raw_header: &[Vec<u8>],
    source_key: &str,
) -> Result<Plan, FileError> {
    let mut header = decode_header(profile.encoding, raw_header)?;
    let mut n_fields = header.len();
    if profile.trailing_empty_column
        && header.len() > 1
        && header.last().is_some_and(|h| h.trim().is_empty())
    {
        header.pop();
    }
    let mut inputs: Vec<Option<usize>> = vec![None; contract.columns.len()];
    let mut unknown_columns = Vec::new();
    let mut unknown_more = 0usize;
    // Only msk-lander writes the Kafka lineage columns: in a vendor's file they are unknown.
    let landed_by_kafka = source_key.starts_with(crate::kafka::RAW_PREFIX);
    for (k, h) in header.iter().enumerate() {
        let name = h.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        let column = contract.column_for_header(profile, name).filter(|&c| {
            landed_by_kafka || !crate::kafka::LINEAGE.contains(&contract.columns[c].name.as_str())
        });
        match column {
            Some(c) => {
                if let Some(prev) = inputs[c] {
                    return Err(FileError::DuplicateColumn {
                        column: contract.columns[c].name.clone(),
                        first: crate::error::clip(&header[prev], 64),
                        second: crate::error::clip(h, 64),
                    });
                }
                inputs[c] = Some(k);
            }
            None if profile.ignore.contains(&header_key(name)) => {}
            None if unknown_columns.len() >= UNKNOWN_COLUMNS_LISTED => unknown_more += 1,
            None => unknown_columns.push(if name.is_empty() {
                format!("(empty header, field {})", k + 1)
            } else {
                crate::error::clip(&contract.shown_header_name(profile, k, name), 64)
            }),
        }
    }
    if unknown_more > 0 {
        unknown_columns.push(format!("(and {unknown_more} more)"));
    }
    if header.len() < n_fields {
        // The trailing empty column stays a field of every record; it is simply not read.
        n_fields = header.len() + 1;
    }
    let fixed = fixed_values(contract, profile, source_key, &inputs)?;
    for (c, col) in contract.columns.iter().enumerate() {
        if col.required && inputs[c].is_none() && fixed[c].is_none() && col.default_from.is_none() {
            return Err(FileError::MissingColumn {
                column: col.name.clone(),
                header: crate::error::describe_header(
                    &contract.shown_header_names(profile, &header),
                ),
            });
        }
    }
    Ok(Plan {
        n_fields,
        inputs,
        fixed,
        header,
        unknown_columns,
    })
}

/// A vendor's longer code cut to the common form: a value of exactly `from` ASCII characters keeps
/// its first `to`; any other value is left as it is (and checked as usual).
fn shorten(raw: &[u8], s: crate::contract::Shorten) -> &[u8] {
    let t = trim(raw);
    if t.len() == s.from && t.is_ascii() {
        &t[..s.to]
    } else {
        raw
    }
}

/// The profile a file is read with, among the candidates its route names (in order): the one
/// whose header map covers every required column, and of those the one leaving the fewest
/// header names unknown (the first on a tie). One candidate is taken as it is, so its own errors
/// (a missing column) are the file's. A wide contract reads with its first candidate.
pub(crate) fn choose_profile<'c>(
    contract: &'c Contract,
    candidates: &[&'c Profile],
    raw_header: &[Vec<u8>],
    source_key: &str,
) -> Result<&'c Profile, FileError> {
    let first = candidates
        .first()
        .copied()
        .ok_or_else(|| FileError::Unsupported("no vendor profile to read it with".into()))?;
    if candidates.len() == 1 || contract.shape == crate::contract::Shape::Wide {
        return Ok(first);
    }
    let mut best: Option<(&Profile, usize)> = None;
    let mut tried = Vec::new();
    for &p in candidates {
        match plan(contract, p, raw_header, source_key) {
            Ok(plan) => {
                let unknown = plan.unknown_columns.len();
                if best.is_none_or(|(_, n)| unknown < n) {
                    best = Some((p, unknown));
                }
            }
            Err(e) => tried.push(format!("{}: {e}", p.name)),
        }
    }
    best.map(|(p, _)| p).ok_or_else(|| {
        let names: Vec<String> = raw_header
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        FileError::NoProfile {
            tried: tried.join("; "),
            header: crate::error::describe_header(&contract.shown_header_names(first, &names)),
        }
    })
}

/// The values the object key, the file name and the profile's constants give, checked by the same
/// rules as record values. A bad one fails the file only when no input column could override it.
pub(crate) fn fixed_values(
    contract: &Contract,
    profile: &Profile,
    source_key: &str,
    inputs: &[Option<usize>],
) -> Result<Vec<Option<Fixed>>, FileError> {
    let segments: Vec<&str> = source_key.split('/').filter(|s| !s.is_empty()).collect();
    let file_name = segments.last().copied().unwrap_or("");
    let mut fixed: Vec<Option<Fixed>> = vec![None; contract.columns.len()];
    for (c, col) in contract.columns.iter().enumerate() {
        let mut candidates: Vec<String> = Vec::new();
        if let Some(n) = col.from_key_segment
            && segments.len() > n
        {
            candidates.push(segments[segments.len() - n].to_string());
        }
        if let Some((_, v)) = profile.constants.iter().find(|(i, _)| *i == c) {
            candidates.push(v.clone());
        }
        if let Some(f) = profile.from_file_name.iter().find(|f| f.column == c) {
            // `EQ251126.CSV`, `EQ251126_CSV.ZIP`: the name up to its first separator.
            let stem = file_name
                .split(|ch: char| !ch.is_ascii_alphanumeric())
                .next()
                .unwrap_or("");
            let date = stem
                .get(..f.prefix.len())
                .filter(|p| p.eq_ignore_ascii_case(&f.prefix))
                .and_then(|_| f.format.parse(&stem.as_bytes()[f.prefix.len()..]));
            match date {
                Some(d) => {
                    fixed[c] = Some(Fixed::Date(d));
                    continue;
                }
                None if inputs[c].is_none() => {
                    return Err(FileError::BadKeyValue {
                        column: col.name.clone(),
                        value: file_name.to_string(),
                        reason: Reason::InvalidDate,
                    });
                }
                None => {}
            }
        }
        // The first candidate that is valid wins; an invalid key segment falls through to a constant.
        let mut first_error = None;
        for v in candidates {
            match fixed_value(contract, profile, col, &v) {
                Ok(f) => {
                    fixed[c] = Some(f);
                    break;
                }
                Err(reason) => {
                    first_error.get_or_insert((v, reason));
                }
            }
        }
        if fixed[c].is_none()
            && inputs[c].is_none()
            && let Some((value, reason)) = first_error
        {
            return Err(FileError::BadKeyValue {
                column: col.name.clone(),
                value,
                reason,
            });
        }
    }
    Ok(fixed)
}

fn fixed_value(
    contract: &Contract,
    profile: &Profile,
    col: &Column,
    v: &str,
) -> Result<Fixed, Reason> {
    let t = v.trim();
    if contract.nulls.is_null(t.as_bytes()) {
        return Err(Reason::Required);
    }
    match col.ty {
        ColumnType::Enum => col
            .domain
            .as_ref()
            .and_then(|d| d.resolve(t))
            .map(Fixed::Enum)
            .ok_or(Reason::InvalidEnum),
        ColumnType::Date => {
            parse::parse_date_within(t.as_bytes(), &profile.date_formats, &profile.date_range)
                .map(Fixed::Date)
        }
        ColumnType::String => Ok(Fixed::Str(t.to_string())),
        _ => Err(Reason::InvalidNumber),
    }
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

/// Cleans the records of one file (records shape).
pub(crate) struct RecordsCleaner<'c> {
    contract: &'c Contract,
    profile: &'c Profile,
    plan: Plan,
    limits: Limits,
    schema: SchemaRef,
    ctx: FileContext,
    stats: Stats,
    keys: Vec<KeyEntry>,
    builders: Vec<(PartKey, BatchBuilder)>,
    scratch: String,
    batch_rows: usize,
    key_buf: Vec<u8>,
    derived: Vec<DerivedVal<'c>>,
}

impl<'c> RecordsCleaner<'c> {
    /// A cleaner for one file, with its plan.
    pub fn new(
        contract: &'c Contract,
        profile: &'c Profile,
        plan: Plan,
        limits: Limits,
        ctx: FileContext,
        batch_rows: usize,
    ) -> Self {
        let schema = crate::schema::output_schema(contract);
        RecordsCleaner {
            contract,
            profile,
            plan,
            limits,
            schema,
            ctx,
            stats: Stats::default(),
            keys: Vec::new(),
            builders: Vec::new(),
            scratch: String::new(),
            batch_rows,
            key_buf: Vec::with_capacity(128),
            derived: Vec::with_capacity(contract.derived.len()),
        }
    }

    /// Cleans one chunk of records.
    /// Checks one chunk by every rule but `duplicate_key` (see [`Deduper`]).
    pub fn process(&mut self, chunk: &Chunk) -> Result<Checked, crate::error::Error> {
        let mut out = Checked::default();
        self.stats = Stats::for_contract(self.contract);
        self.keys.clear();
        let n_cols = self.contract.columns.len();
        let mut row: Vec<Val<'_>> = Vec::with_capacity(n_cols);
        // Valid UTF-8 as a whole (the usual case): fields are then sliced from it, not re-validated.
        let text = ChunkText {
            text: (self.profile.encoding == Encoding::Utf8)
                .then(|| std::str::from_utf8(chunk.data()).ok())
                .flatten(),
            base: chunk.data().as_ptr() as usize,
        };
        for i in 0..chunk.len() {
            let rec = chunk.record(i);
            let number = chunk.first_record + i as u64;
            self.stats.rows_read += 1;
            self.scratch.clear();
            row.clear();
            match self.check_record(&rec, &mut row, text) {
                Ok(hash) => self.accept(&row, number, hash),
                Err((reason, field)) => {
                    let (column, value) = match field {
                        Some(Culprit::Field(j)) => (
                            self.plan.header.get(j).cloned().unwrap_or_default(),
                            escape_bytes_in(self.profile.encoding, rec.field(j)),
                        ),
                        Some(Culprit::Column(c, j)) => (
                            self.contract.columns[c].name.clone(),
                            j.map(|j| escape_bytes_in(self.profile.encoding, rec.field(j)))
                                .unwrap_or_default(),
                        ),
                        None => (String::new(), String::new()),
                    };
                    let rejected = Rejected {
                        record_number: number,
                        column,
                        reason,
                        value,
                        record: join_record(self.profile.encoding, &rec),
                    };
                    self.stats.reject(&rejected);
                    out.rejects.push(rejected);
                }
            }
        }
        out.batches = self.flush()?;
        out.keys = std::mem::take(&mut self.keys);
        out.stats = std::mem::take(&mut self.stats);
        Ok(out)
    }

    /// Finishes the open builders into batches.
    fn flush(&mut self) -> Result<Vec<(PartKey, RecordBatch)>, crate::error::Error> {
        let mut batches = Vec::with_capacity(self.builders.len());
        for (key, b) in self.builders.drain(..) {
            if !b.is_empty() {
                batches.push((key, b.finish()?));
            }
        }
        Ok(batches)
    }

    /// Checks one record into `row`; on failure, the reason and where it lies.
    fn check_record<'r>(
        &mut self,
        rec: &Record<'r>,
        row: &mut Vec<Val<'r>>,
        text: ChunkText<'r>,
    ) -> Result<u64, (Reason, Option<Culprit>)> {
        if rec.len() != self.plan.n_fields {
            return Err((Reason::Ragged, None));
        }
        let needs_decoding = !rec.bytes().is_ascii();
        // A NUL is no character of any text a vendor sends (it is binary noise, or UTF-16 read
        // as bytes), and PostgreSQL cannot store one: `encoding`, here and in every path.
        let has_nul = rec.bytes().contains(&0);
        for j in 0..rec.len() {
            let f = rec.field(j);
            if f.len() > self.limits.max_field_bytes {
                return Err((Reason::FieldTooLong, Some(Culprit::Field(j))));
            }
            if (needs_decoding && !f.is_ascii() && decode_text(self.profile.encoding, f).is_none())
                || (has_nul && f.contains(&0))
            {
                return Err((Reason::Encoding, Some(Culprit::Field(j))));
            }
        }
        for (c, col) in self.contract.columns.iter().enumerate() {
            let input = self.plan.inputs[c];
            let mut v = match input {
                Some(j) => {
                    let mut raw = rec.field(j);
                    if let Some(s) = self.profile.shorten[c] {
                        raw = shorten(raw, s);
                    }
                    self.parse_cell(col, raw, needs_decoding, text)
                        .map_err(|r| (r, Some(Culprit::Column(c, Some(j)))))?
                }
                None => Val::Null,
            };
            if v == Val::Null
                && let Some(f) = &self.plan.fixed[c]
            {
                v = match f {
                    Fixed::Enum(i) => Val::Enum(*i),
                    Fixed::Date(d) => Val::Date(*d),
                    Fixed::Str(s) => {
                        let start = self.scratch.len() as u32;
                        self.scratch.push_str(s);
                        Val::Scratch(start, self.scratch.len() as u32)
                    }
                };
            }
            if v == Val::Null
                && let Some(d) = &col.default_from
                && let Val::Enum(i) = row[d.column]
                && let Some(domain) = &self.contract.columns[d.column].domain
                && let Some(default) = d.map.get(&domain.values[i as usize])
            {
                v = col
                    .domain
                    .as_ref()
                    .and_then(|dm| dm.resolve(default))
                    .map_or(Val::Str(""), Val::Enum);
            }
            if v == Val::Null && col.required {
                return Err((Reason::Required, Some(Culprit::Column(c, input))));
            }
            row.push(v);
        }
        for rule in &self.contract.record_rules {
            if let Some(reason) = record_rule(rule, row, &self.contract.columns) {
                return Err((reason, None));
            }
        }
        self.key_buf.clear();
        for &k in &self.contract.key {
            let bytes: &[u8] = match row[k] {
                Val::Null => &[],
                Val::Str(s) => s.as_bytes(),
                Val::Scratch(a, b) => &self.scratch.as_bytes()[a as usize..b as usize],
                Val::Enum(i) => &i.to_le_bytes(),
                Val::Date(d) => &d.to_le_bytes(),
                Val::Num(n) => &n.to_le_bytes(),
            };
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            self.key_buf
                .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            self.key_buf.extend_from_slice(bytes);
        }
        Ok(twox_hash::XxHash3_64::oneshot(&self.key_buf))
    }

    /// Parses one cell by its column's type and rules.
    #[inline]
    fn parse_cell<'r>(
        &mut self,
        col: &Column,
        raw: &'r [u8],
        may_need_decoding: bool,
        text: ChunkText<'r>,
    ) -> Result<Val<'r>, Reason> {
        let t = trim(raw);
        if t.first() == Some(&b'"')
            && let Some(u) = unquote_padded(t)
        {
            return self.parse_owned(col, trim(&u), may_need_decoding);
        }
        if self.contract.nulls.is_null(t) {
            return Ok(Val::Null);
        }
        match col.ty {
            ColumnType::String | ColumnType::Enum => {
                if may_need_decoding && self.profile.encoding == Encoding::ShiftJis && !t.is_ascii()
                {
                    return self.parse_owned(col, t, true);
                }
                let s = match text.slice(t) {
                    Some(s) => s,
                    None => std::str::from_utf8(t).map_err(|_| Reason::Encoding)?,
                };
                if col.ty == ColumnType::Enum {
                    return resolve_enum(col, s);
                }
                self.check_text(col, s)?;
                Ok(Val::Str(s))
            }
            _ => parse_scalar(col, t, self.profile),
        }
    }

    /// The slow path for text that had to be decoded or unquoted: it goes to the scratch buffer.
    fn parse_owned<'r>(
        &mut self,
        col: &Column,
        t: &[u8],
        may_need_decoding: bool,
    ) -> Result<Val<'r>, Reason> {
        if self.contract.nulls.is_null(t) {
            return Ok(Val::Null);
        }
        match col.ty {
            ColumnType::String | ColumnType::Enum => {
                let s = if may_need_decoding {
                    decode_text(self.profile.encoding, t).ok_or(Reason::Encoding)?
                } else {
                    String::from_utf8(t.to_vec()).map_err(|_| Reason::Encoding)?
                };
                let s = s.trim_matches([' ', '\t', '\u{a0}']);
                if self.contract.nulls.is_null(s.as_bytes()) {
                    return Ok(Val::Null);
                }
                self.check_text(col, s)?;
                if col.ty == ColumnType::Enum {
                    return resolve_enum(col, s).map(|v| match v {
                        Val::Enum(i) => Val::Enum(i),
                        _ => Val::Null,
                    });
                }
                let start = self.scratch.len() as u32;
                self.scratch.push_str(s);
                Ok(Val::Scratch(start, self.scratch.len() as u32))
            }
            _ => parse_scalar(col, t, self.profile).map(|v| match v {
                Val::Date(d) => Val::Date(d),
                Val::Num(n) => Val::Num(n),
                _ => Val::Null,
            }),
        }
    }

    fn check_text(&self, col: &Column, s: &str) -> Result<(), Reason> {
        // A CUSIP or ISIN of the wrong length is `check_digit` (the specification's table), so
        // the check comes before the length bound.
        match col.check {
            Some(Check::Cusip) if !cusip_is_valid(s.as_bytes()) => return Err(Reason::CheckDigit),
            Some(Check::Isin) if !isin_is_valid(s.as_bytes()) => return Err(Reason::CheckDigit),
            _ => {}
        }
        // The warehouse's VARCHAR is sized from max_length, a bound of the column: a longer
        // value is quarantined here (`out_of_range`) rather than failing the whole load later.
        // `field_too_long` is the field-size limit's alone.
        // An enum is stored as its canonical value, so its (longer) aliases are not bounded.
        if let Some(n) = col.max_length
            && col.ty != ColumnType::Enum
            && s.len() > n
            && s.chars().count() > n
        {
            return Err(Reason::OutOfRange);
        }
        Ok(())
    }

    /// Appends a clean row to its partition's builder.
    fn accept(&mut self, row: &[Val<'_>], number: u64, hash: u64) {
        self.stats.rows_ok += 1;
        for (t, &c) in self.contract.control_totals.iter().enumerate() {
            if let Val::Num(n) = row[c] {
                self.stats.totals[t] += n;
            }
        }
        let key = part_key(row[self.contract.partition], self.contract, &self.scratch);
        let idx = match self.builders.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                self.builders.push((
                    key,
                    BatchBuilder::new(self.schema.clone(), self.batch_rows.min(1 << 16)),
                ));
                self.builders.len() - 1
            }
        };
        derive_row(self.contract, row, &mut self.derived);
        let b = &mut self.builders[idx].1;
        self.keys.push(KeyEntry {
            hash,
            record: number,
            batch: idx as u32,
            row: b.len() as u32,
        });
        for (c, col) in self.contract.columns.iter().enumerate() {
            b.push_val(c, col, row[c], &self.scratch);
        }
        let base = self.contract.columns.len();
        for (k, d) in self.derived.iter().enumerate() {
            b.push_derived(base + k, d);
        }
        b.push_lineage(
            base + self.derived.len(),
            &self.ctx.source_key,
            number,
            self.ctx.ingested_at_us,
            self.ctx.source_order.as_deref(),
        );
    }
}

/// The one sequential step: `duplicate_key` needs the file's order. Chunks come to it checked
/// (possibly by several threads) and in order; the first record with a key stays, a later one is
/// taken out of its batch and quarantined. Rejected records never reach it, so they claim no key.
pub(crate) struct Deduper<'c> {
    contract: &'c Contract,
    encoding: Encoding,
    seen: crate::keyset::KeySet,
    /// Counts and sums of the file so far.
    pub stats: Stats,
}

impl<'c> Deduper<'c> {
    /// A deduper for one file.
    pub fn new(contract: &'c Contract, profile: &Profile) -> Self {
        Deduper {
            contract,
            encoding: profile.encoding,
            seen: crate::keyset::KeySet::default(),
            stats: Stats::for_contract(contract),
        }
    }

    /// Applies the duplicate-key rule to the next chunk (`chunk` is the one `checked` came from).
    pub fn apply(
        &mut self,
        checked: Checked,
        chunk: &Chunk,
    ) -> Result<ChunkOutput, crate::error::Error> {
        self.stats.merge(&checked.stats);
        let mut drop: Vec<Vec<bool>> = Vec::new();
        let mut duplicates = Vec::new();
        for k in &checked.keys {
            if self.seen.insert(k.hash) {
                continue;
            }
            if drop.is_empty() {
                drop = checked
                    .batches
                    .iter()
                    .map(|(_, b)| vec![false; b.num_rows()])
                    .collect();
            }
            let (batch, row) = (k.batch as usize, k.row as usize);
            drop[batch][row] = true;
            let batch_ref = &checked.batches[batch].1;
            for (t, &c) in self.contract.control_totals.iter().enumerate() {
                self.stats.totals[t] -= numeric_value(batch_ref.column(c).as_ref(), row);
            }
            let rejected = Rejected {
                record_number: k.record,
                column: String::new(),
                reason: Reason::DuplicateKey,
                value: String::new(),
                record: join_record(
                    self.encoding,
                    &chunk.record((k.record - chunk.first_record) as usize),
                ),
            };
            self.stats.rows_ok -= 1;
            self.stats.reject(&rejected);
            duplicates.push(rejected);
        }
        let mut batches = checked.batches;
        if !drop.is_empty() {
            for ((_, batch), drop) in batches.iter_mut().zip(&drop) {
                if drop.iter().any(|&d| d) {
                    let keep = arrow_array::BooleanArray::from(
                        drop.iter().map(|&d| !d).collect::<Vec<_>>(),
                    );
                    *batch = arrow_select::filter::filter_record_batch(batch, &keep)?;
                }
            }
            batches.retain(|(_, b)| b.num_rows() > 0);
        }
        Ok(ChunkOutput {
            batches,
            rejects: merge_by_record(checked.rejects, duplicates),
        })
    }
}

/// A Decimal128 or Int64 cell as a scaled integer (0 for null or another type).
fn numeric_value(a: &dyn arrow_array::Array, i: usize) -> i128 {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Int64Type};
    if a.is_null(i) {
        return 0;
    }
    match a.data_type() {
        arrow_schema::DataType::Decimal128(..) => a.as_primitive::<Decimal128Type>().value(i),
        arrow_schema::DataType::Int64 => i128::from(a.as_primitive::<Int64Type>().value(i)),
        _ => 0,
    }
}

/// Merges two lists of rejects, each in record order, into one in record order.
fn merge_by_record(a: Vec<Rejected>, b: Vec<Rejected>) -> Vec<Rejected> {
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.record_number <= y.record_number,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
    out
}

/// A chunk's text when it is valid UTF-8 as a whole, and where its bytes start in memory.
#[derive(Clone, Copy)]
struct ChunkText<'r> {
    text: Option<&'r str>,
    base: usize,
}

impl<'r> ChunkText<'r> {
    /// The field `t` (a slice of the chunk) as text, without validating it again; `None` when the
    /// chunk was not valid UTF-8 or `t` does not fall on character boundaries.
    #[inline]
    fn slice(self, t: &'r [u8]) -> Option<&'r str> {
        let text = self.text?;
        let start = (t.as_ptr() as usize).checked_sub(self.base)?;
        text.get(start..start + t.len())
    }
}

/// Where a reject lies: a header field, or a contract column (and its field, when it has one).
#[derive(Debug, Clone, Copy)]
enum Culprit {
    Field(usize),
    Column(usize, Option<usize>),
}

fn resolve_enum<'r>(col: &Column, s: &str) -> Result<Val<'r>, Reason> {
    col.domain
        .as_ref()
        .and_then(|d| d.resolve(s))
        .map(Val::Enum)
        .ok_or(Reason::InvalidEnum)
}

/// Parses a date or number cell (already trimmed and not null) and checks its bounds.
#[inline]
pub(crate) fn parse_scalar<'r>(
    col: &Column,
    t: &[u8],
    profile: &Profile,
) -> Result<Val<'r>, Reason> {
    match col.ty {
        ColumnType::Date => {
            parse::parse_date_within(t, &profile.date_formats, &profile.date_range).map(Val::Date)
        }
        ColumnType::Decimal { precision, scale } => {
            let v = parse_decimal(t, precision, scale)?;
            if col.bounds.contains(v) {
                Ok(Val::Num(v))
            } else {
                Err(Reason::OutOfRange)
            }
        }
        ColumnType::Int64 => {
            let v = i128::from(parse_int64(t)?);
            if col.bounds.contains(v) {
                Ok(Val::Num(v))
            } else {
                Err(Reason::OutOfRange)
            }
        }
        ColumnType::String | ColumnType::Enum => Err(Reason::InvalidNumber),
    }
}

/// Applies one record-level rule; `Some(reason)` when the record breaks it.
fn record_rule(rule: &RecordRule, row: &[Val<'_>], columns: &[Column]) -> Option<Reason> {
    let num = |i: usize| match row[i] {
        Val::Num(n) => Some(n),
        _ => None,
    };
    match *rule {
        RecordRule::Matured { column, not_before } => match (row[column], row[not_before]) {
            (Val::Date(m), Val::Date(a)) if m < a => Some(Reason::Matured),
            _ => None,
        },
        RecordRule::MarketValue {
            market_value,
            par_value,
            price,
            relative_bp,
            absolute,
        } => {
            let (mv, par, px) = (num(market_value)?, num(par_value)?, num(price)?);
            let (s_mv, s_par, s_px) = (
                u32::from(columns[market_value].ty.scale()),
                u32::from(columns[par_value].ty.scale()),
                u32::from(columns[price].ty.scale()),
            );
            let ok = market_value_within(mv, s_mv, par, s_par, px, s_px, relative_bp, absolute);
            (!ok).then_some(Reason::MarketValueMismatch)
        }
        RecordRule::Ohlc {
            open,
            high,
            low,
            close,
        } => {
            let (o, h, l, c) = (num(open)?, num(high)?, num(low)?, num(close)?);
            let ok = l <= o && o <= h && l <= c && c <= h;
            (!ok).then_some(Reason::OhlcInconsistent)
        }
    }
}

/// |mv − par × price / 100| ≤ max(relative × par × price / 100, absolute), in exact integers
/// (docs/datasets.md, decision 8). `relative_bp` is the relative tolerance × 10⁴; `absolute` is at the mv's scale.
#[allow(clippy::too_many_arguments)]
pub(crate) fn market_value_within(
    mv: i128,
    s_mv: u32,
    par: i128,
    s_par: u32,
    px: i128,
    s_px: u32,
    relative_bp: i128,
    absolute: i128,
) -> bool {
    let s = s_mv.max(s_par + s_px);
    let p10 = |e: u32| 10i128.checked_pow(e);
    let check = || -> Option<bool> {
        let mv_s = mv.checked_mul(p10(s - s_mv)?)?;
        let x = par.checked_mul(px)?.checked_mul(p10(s - s_par - s_px)?)?; // par × price at scale s
        let abs_s = absolute.checked_mul(p10(s - s_mv)?)?;
        // ×100 removes the "/ 100", ×10⁴ the basis points.
        let diff = mv_s
            .checked_mul(100)?
            .checked_sub(x)?
            .checked_abs()?
            .checked_mul(10_000)?;
        let tol = relative_bp
            .checked_mul(x)?
            .max(abs_s.checked_mul(100)?.checked_mul(10_000)?);
        Some(diff <= tol)
    };
    check().unwrap_or(false)
}

/// Computes the derived columns of one clean row into `out` (records shape: position, bucket,
/// days_between).
pub(crate) fn derive_row<'c>(
    contract: &'c Contract,
    row: &[Val<'_>],
    out: &mut Vec<DerivedVal<'c>>,
) {
    out.clear();
    for d in &contract.derived {
        let int_of = |s: Source, out: &[DerivedVal<'c>]| -> Option<i64> {
            match s {
                Source::Column(i) => match row[i] {
                    Val::Date(x) => Some(i64::from(x)),
                    Val::Num(x) => i64::try_from(x).ok(),
                    _ => None,
                },
                Source::Derived(i) => match out.get(i) {
                    Some(DerivedVal::Int(x)) => x.map(i64::from),
                    _ => None,
                },
            }
        };
        let v = match &d.kind {
            DerivedKind::Position {
                source,
                order,
                by_enum,
            } => DerivedVal::Int(match *source {
                Source::Column(i) => match row[i] {
                    Val::Enum(e) => by_enum.get(e as usize).copied().flatten(),
                    _ => None,
                },
                Source::Derived(i) => match out.get(i) {
                    Some(DerivedVal::Label(Some(l))) => order.get(*l).copied(),
                    _ => None,
                },
            }),
            DerivedKind::Bucket {
                source,
                bounds,
                labels,
                null_label,
            } => DerivedVal::Label(match int_of(*source, out) {
                Some(x) => Some(
                    labels[bounds.iter().position(|&b| x < b).unwrap_or(bounds.len())].as_str(),
                ),
                None => null_label.as_deref(),
            }),
            DerivedKind::DaysBetween { from, to } => {
                DerivedVal::Int(match (int_of(*from, out), int_of(*to, out)) {
                    (Some(a), Some(b)) => i32::try_from(b - a).ok(),
                    _ => None,
                })
            }
            // Series features are computed over whole series by the wide path.
            DerivedKind::WowChange { .. }
            | DerivedKind::WowPct { .. }
            | DerivedKind::MovingAverage { .. }
            | DerivedKind::Zscore { .. } => DerivedVal::Int(None),
        };
        out.push(v);
    }
}

/// The partition value of a row.
pub(crate) fn part_key(v: Val<'_>, contract: &Contract, scratch: &str) -> PartKey {
    match v {
        Val::Date(d) => PartKey::Date(d),
        Val::Enum(i) => PartKey::Text(
            contract.columns[contract.partition]
                .domain
                .as_ref()
                .map(|d| d.values[i as usize].clone())
                .unwrap_or_default(),
        ),
        Val::Str(s) => PartKey::Text(s.to_string()),
        Val::Scratch(a, b) => PartKey::Text(scratch[a as usize..b as usize].to_string()),
        Val::Num(n) => PartKey::Text(n.to_string()),
        Val::Null => PartKey::Text(String::new()),
    }
}
