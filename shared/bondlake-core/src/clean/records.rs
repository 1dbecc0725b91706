//! Records, chunk by chunk: each checked column by column in contract order, then by the
//! record-level rules, into Arrow builders or the quarantine.

use super::*;
use crate::schema::BatchLayout;
use crate::stages::{Stage, StageTimes, timed};
use std::sync::Arc;

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

/// Cleans the records of one file (records shape).
pub(crate) struct RecordsCleaner<'c> {
    contract: &'c Contract,
    profile: &'c Profile,
    plan: Plan,
    limits: Limits,
    layout: BatchLayout,
    ctx: FileContext,
    stats: Stats,
    keys: Vec<KeyEntry>,
    builders: Vec<(PartKey, BatchBuilder)>,
    scratch: String,
    batch_rows: usize,
    key_buf: Vec<u8>,
    derived: Vec<DerivedVal<'c>>,
    /// The block's clean rows: (row in the block, builder), in record order.
    placed: Vec<(usize, usize)>,
    /// The block's clean rows' derived values, `contract.derived.len()` each, as `placed`.
    block_derived: Vec<DerivedVal<'c>>,
    /// Per builder: the block's rows placed in it so far.
    placed_in: Vec<u32>,
    /// One builder's rows of the block while they are appended: (index into `placed`, where
    /// the row's values start in the block's).
    appending: Vec<(usize, usize)>,
    times: Option<Arc<StageTimes>>,
    /// Per contract column, what checking a cell of it needs: read from one slice per row.
    steps: Vec<ColumnStep<'c>>,
}

/// One contract column as this file's records hold it.
struct ColumnStep<'c> {
    col: &'c Column,
    /// The field that holds it.
    input: Option<usize>,
    shorten: Option<crate::contract::Shorten>,
    /// The value used when the field is absent or null.
    fixed: Option<Fixed>,
}

/// Rows a phase takes at a time: their values (a few kilobytes) stay in cache between phases.
const BLOCK: usize = 64;

impl<'c> RecordsCleaner<'c> {
    /// A cleaner for one file, with its plan.
    pub fn new(
        contract: &'c Contract,
        profile: &'c Profile,
        plan: Plan,
        limits: Limits,
        ctx: FileContext,
        batch_rows: usize,
        times: Option<Arc<StageTimes>>,
    ) -> Self {
        let layout = BatchLayout::for_file(
            contract,
            &ctx.source_key,
            ctx.source_order.as_deref(),
            batch_rows,
        );
        let steps = contract
            .columns
            .iter()
            .enumerate()
            .map(|(c, col)| ColumnStep {
                col,
                input: plan.inputs[c],
                shorten: profile.shorten[c],
                fixed: plan.fixed[c].clone(),
            })
            .collect();
        RecordsCleaner {
            contract,
            profile,
            plan,
            limits,
            layout,
            ctx,
            stats: Stats::default(),
            keys: Vec::new(),
            builders: Vec::new(),
            scratch: String::new(),
            batch_rows,
            key_buf: Vec::with_capacity(128),
            derived: Vec::with_capacity(contract.derived.len()),
            placed: Vec::with_capacity(BLOCK),
            block_derived: Vec::with_capacity(BLOCK * contract.derived.len()),
            placed_in: Vec::new(),
            appending: Vec::with_capacity(BLOCK),
            times,
            steps,
        }
    }

    /// Checks one chunk by every rule but `duplicate_key` (see [`Deduper`]).
    ///
    /// Rows go in blocks of [`BLOCK`]: first each row's columns in contract order (stopping at
    /// the first that fails), then the record-level rules and the key of the rows that passed,
    /// then each row in record order to its batch or the quarantine. A row's reason is the
    /// one the row-at-a-time order gives; the phases are what `bondlake bench` times apart.
    pub fn process(&mut self, chunk: &Chunk) -> Result<Checked, crate::error::Error> {
        let mut out = Checked::default();
        self.stats = Stats::for_contract(self.contract);
        self.keys.clear();
        let n_cols = self.contract.columns.len();
        // Valid UTF-8 as a whole (the usual case): fields are then sliced from it, not re-validated.
        let text = ChunkText {
            text: (self.profile.encoding == Encoding::Utf8)
                .then(|| std::str::from_utf8(chunk.data()).ok())
                .flatten(),
            base: chunk.data().as_ptr() as usize,
            // Asked of the whole chunk once, so that records of a chunk that is all ASCII and
            // free of NULs (the usual case) skip both scans. `memchr` for the NUL: the slice's
            // own `contains` reads two words a step (1% of all instructions), memchr a vector.
            all_ascii: chunk.data().is_ascii(),
            has_nul: memchr::memchr(0, chunk.data()).is_some(),
        };
        let times = self.times.clone();
        let times = times.as_deref();
        // The block's rows, `n_cols` values each, and each row's outcome.
        let mut values: Vec<Val<'_>> = Vec::with_capacity(BLOCK * n_cols);
        let mut outcome: Vec<Result<u64, (Reason, Option<Culprit>)>> = Vec::with_capacity(BLOCK);
        for first in (0..chunk.len()).step_by(BLOCK) {
            let rows = first..(first + BLOCK).min(chunk.len());
            self.scratch.clear();
            values.clear();
            outcome.clear();
            timed(times, Stage::Columns, || {
                for i in rows.clone() {
                    let start = values.len();
                    let checked = self.check_columns(&chunk.record(i), &mut values, text);
                    // A failed row keeps its place (nulls), so row k's values stay at k * n_cols.
                    values.resize(start + n_cols, Val::Null);
                    outcome.push(checked.map(|()| 0));
                }
            });
            timed(times, Stage::Rules, || {
                for (k, o) in outcome.iter_mut().enumerate() {
                    if o.is_ok() {
                        *o = self.check_rules(&values[k * n_cols..(k + 1) * n_cols]);
                    }
                }
            });
            timed(times, Stage::Columns, || {
                self.placed.clear();
                self.block_derived.clear();
                self.placed_in.iter_mut().for_each(|n| *n = 0);
                for (k, i) in rows.clone().enumerate() {
                    let number = chunk.first_record + i as u64;
                    self.stats.rows_read += 1;
                    match outcome[k] {
                        Ok(hash) => {
                            self.place(&values[k * n_cols..(k + 1) * n_cols], k, number, hash)
                        }
                        Err((reason, field)) => {
                            let rejected = self.rejected(&chunk.record(i), number, reason, field);
                            self.stats.reject(&rejected);
                            out.rejects.push(rejected);
                        }
                    }
                }
                self.append_placed(&values, n_cols, chunk.first_record + rows.start as u64);
            });
        }
        out.batches = timed(times, Stage::Columns, || self.flush())?;
        out.keys = std::mem::take(&mut self.keys);
        out.stats = std::mem::take(&mut self.stats);
        Ok(out)
    }

    /// The quarantine's entry for a record, naming the column (or header field) at fault.
    fn rejected(
        &self,
        rec: &Record<'_>,
        number: u64,
        reason: Reason,
        field: Option<Culprit>,
    ) -> Rejected {
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
        Rejected {
            record_number: number,
            column,
            reason,
            value,
            record: join_record(self.profile.encoding, rec),
        }
    }

    /// Finishes the open builders into batches.
    fn flush(&mut self) -> Result<Vec<(PartKey, RecordBatch)>, crate::error::Error> {
        let mut batches = Vec::with_capacity(self.builders.len());
        self.placed_in.clear();
        for (key, b) in self.builders.drain(..) {
            if !b.is_empty() {
                batches.push((key, b.finish()?));
            }
        }
        Ok(batches)
    }

    /// Checks one record's fields and columns, appending its values to `values` (the block's,
    /// so this row's start where `values` ended); on failure, the reason and where it lies.
    fn check_columns<'r>(
        &mut self,
        rec: &Record<'r>,
        values: &mut Vec<Val<'r>>,
        text: ChunkText<'r>,
    ) -> Result<(), (Reason, Option<Culprit>)> {
        let base = values.len();
        if rec.len() != self.plan.n_fields {
            return Err((Reason::Ragged, None));
        }
        let needs_decoding = !text.all_ascii && !rec.bytes().is_ascii();
        // A NUL is no character of any text a vendor sends (it is binary noise, or UTF-16 read
        // as bytes), and PostgreSQL cannot store one: `encoding`, here and in every path.
        let has_nul = text.has_nul && rec.bytes().contains(&0);
        // No field is longer than the whole record: a short, plain record (the usual case)
        // skips the per-field checks.
        let per_field =
            needs_decoding || has_nul || rec.bytes().len() > self.limits.max_field_bytes;
        if per_field {
            for j in 0..rec.len() {
                let f = rec.field(j);
                if f.len() > self.limits.max_field_bytes {
                    return Err((Reason::FieldTooLong, Some(Culprit::Field(j))));
                }
                if (needs_decoding
                    && !f.is_ascii()
                    && decode_text(self.profile.encoding, f).is_none())
                    || (has_nul && f.contains(&0))
                {
                    return Err((Reason::Encoding, Some(Culprit::Field(j))));
                }
            }
        }
        let (contract, profile, scratch) = (self.contract, self.profile, &mut self.scratch);
        for (c, step) in self.steps.iter().enumerate() {
            let col = step.col;
            let mut v = match step.input {
                Some(j) => {
                    let mut raw = rec.field(j);
                    if let Some(s) = step.shorten {
                        raw = shorten(raw, s);
                    }
                    parse_cell(contract, profile, scratch, col, raw, needs_decoding, text)
                        .map_err(|r| (r, Some(Culprit::Column(c, Some(j)))))?
                }
                None => Val::Null,
            };
            if v == Val::Null
                && let Some(f) = &step.fixed
            {
                v = match f {
                    Fixed::Enum(i) => Val::Enum(*i),
                    Fixed::Date(d) => Val::Date(*d),
                    Fixed::Str(s) => {
                        let start = scratch.len() as u32;
                        scratch.push_str(s);
                        Val::Scratch(start, scratch.len() as u32)
                    }
                };
            }
            if v == Val::Null
                && let Some(d) = &col.default_from
                && let Val::Enum(i) = values[base + d.column]
                && let Some(domain) = &contract.columns[d.column].domain
                && let Some(default) = d.map.get(&domain.values[i as usize])
            {
                v = col
                    .domain
                    .as_ref()
                    .and_then(|dm| dm.resolve(default))
                    .map_or(Val::Str(""), Val::Enum);
            }
            if v == Val::Null && col.required {
                return Err((Reason::Required, Some(Culprit::Column(c, step.input))));
            }
            values.push(v);
        }
        Ok(())
    }

    /// The record-level rules over a row whose columns passed, then its key's hash.
    fn check_rules(&mut self, row: &[Val<'_>]) -> Result<u64, (Reason, Option<Culprit>)> {
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

    /// Counts a clean row, finds its partition's builder and its key's place there; its values
    /// are appended with the block's others ([`RecordsCleaner::append_placed`]).
    fn place(&mut self, row: &[Val<'_>], k: usize, number: u64, hash: u64) {
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
                    BatchBuilder::new(&self.layout, self.batch_rows.min(1 << 16)),
                ));
                self.placed_in.push(0);
                self.builders.len() - 1
            }
        };
        // Rows of this block already placed in the same builder come before this one.
        let earlier = self.placed_in[idx] as usize;
        self.placed_in[idx] += 1;
        self.keys.push(KeyEntry {
            hash,
            record: number,
            batch: idx as u32,
            row: (self.builders[idx].1.len() + earlier) as u32,
        });
        derive_row(self.contract, row, &mut self.derived);
        self.block_derived.extend_from_slice(&self.derived);
        self.placed.push((k, idx));
    }

    /// Appends the block's clean rows to their builders column by column: one builder and one
    /// type per loop, instead of a dispatch per cell.
    fn append_placed(&mut self, values: &[Val<'_>], n_cols: usize, first_number: u64) {
        let n_derived = self.contract.derived.len();
        for b in 0..self.builders.len() {
            if self.placed_in[b] == 0 {
                continue;
            }
            // This builder's rows, in record order, and where each one's values start.
            let rows = &mut self.appending;
            rows.clear();
            rows.extend(
                self.placed
                    .iter()
                    .enumerate()
                    .filter(|(_, placed)| placed.1 == b)
                    .map(|(p, placed)| (p, placed.0 * n_cols)),
            );
            let builder = &mut self.builders[b].1;
            for (c, col) in self.contract.columns.iter().enumerate() {
                let cells = rows.iter().map(|&(_, start)| values[start + c]);
                builder.push_column(c, col, cells, &self.scratch);
            }
            for d in 0..n_derived {
                let cells = rows
                    .iter()
                    .map(|&(p, _)| self.block_derived[p * n_derived + d]);
                builder.push_derived_column(n_cols + d, cells);
            }
            builder.push_lineage_rows(
                n_cols + n_derived,
                &self.ctx.source_key,
                rows.iter()
                    .map(|&(p, _)| first_number + self.placed[p].0 as u64),
                self.ctx.ingested_at_us,
                self.ctx.source_order.as_deref(),
            );
        }
    }
}

/// Parses one cell by its column's type and rules.
#[inline]
fn parse_cell<'r>(
    contract: &Contract,
    profile: &Profile,
    scratch: &mut String,
    col: &Column,
    raw: &'r [u8],
    may_need_decoding: bool,
    text: ChunkText<'r>,
) -> Result<Val<'r>, Reason> {
    let t = trim(raw);
    if t.first() == Some(&b'"')
        && let Some(u) = unquote_padded(t)
    {
        return parse_owned(contract, profile, scratch, col, trim(&u), may_need_decoding);
    }
    if contract.nulls.is_null(t) {
        return Ok(Val::Null);
    }
    match col.ty {
        ColumnType::String | ColumnType::Enum => {
            if may_need_decoding && profile.encoding == Encoding::ShiftJis && !t.is_ascii() {
                return parse_owned(contract, profile, scratch, col, t, true);
            }
            let s = match text.slice(t) {
                Some(s) => s,
                None => std::str::from_utf8(t).map_err(|_| Reason::Encoding)?,
            };
            if col.ty == ColumnType::Enum {
                return resolve_enum(col, s);
            }
            check_text(col, s)?;
            Ok(Val::Str(s))
        }
        _ => parse_scalar(col, t, profile),
    }
}

/// The slow path for text that had to be decoded or unquoted: it goes to the scratch buffer.
fn parse_owned<'r>(
    contract: &Contract,
    profile: &Profile,
    scratch: &mut String,
    col: &Column,
    t: &[u8],
    may_need_decoding: bool,
) -> Result<Val<'r>, Reason> {
    if contract.nulls.is_null(t) {
        return Ok(Val::Null);
    }
    match col.ty {
        ColumnType::String | ColumnType::Enum => {
            let s = if may_need_decoding {
                decode_text(profile.encoding, t).ok_or(Reason::Encoding)?
            } else {
                String::from_utf8(t.to_vec()).map_err(|_| Reason::Encoding)?
            };
            let s = s.trim_matches([' ', '\t', '\u{a0}']);
            if contract.nulls.is_null(s.as_bytes()) {
                return Ok(Val::Null);
            }
            check_text(col, s)?;
            if col.ty == ColumnType::Enum {
                return resolve_enum(col, s).map(|v| match v {
                    Val::Enum(i) => Val::Enum(i),
                    _ => Val::Null,
                });
            }
            let start = scratch.len() as u32;
            scratch.push_str(s);
            Ok(Val::Scratch(start, scratch.len() as u32))
        }
        _ => parse_scalar(col, t, profile).map(|v| match v {
            Val::Date(d) => Val::Date(d),
            Val::Num(n) => Val::Num(n),
            _ => Val::Null,
        }),
    }
}

fn check_text(col: &Column, s: &str) -> Result<(), Reason> {
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

/// A chunk's text when it is valid UTF-8 as a whole, and where its bytes start in memory.
#[derive(Clone, Copy)]
struct ChunkText<'r> {
    text: Option<&'r str>,
    base: usize,
    /// Every byte of the chunk is ASCII.
    all_ascii: bool,
    /// Some byte of the chunk is a NUL.
    has_nul: bool,
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
        // A double column is in derived contracts only, which nothing cleans (compile checks).
        ColumnType::String | ColumnType::Enum | ColumnType::Double => Err(Reason::InvalidNumber),
    }
}
