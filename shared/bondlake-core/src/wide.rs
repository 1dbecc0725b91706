//! The wide shape (weekly_series): a date column and one column per series, made long.
//!
//! A record is a wide input row; one bad cell rejects the whole row (docs/datasets.md, decision 14). Clean rows feed
//! a per-(source, series, week) state holding the week's latest observation and its latest non-null
//! one, so memory follows the output's size (series × weeks), not the input's. At the end, each
//! series is walked in week order to compute its trend features.

use crate::clean::{
    Fixed, Rejected, Stats, Val, decode_header, decode_text, escape_bytes_in, fixed_values,
    join_record,
};
use crate::contract::{ColumnType, Contract, Profile};
use crate::error::{Error, FileError};
use crate::input::{Chunk, Limits};
use crate::parse::{
    parse_date_within, parse_decimal, trim, unquote_padded, weekday, weekday_number,
};
use crate::reason::Reason;
use crate::schema::{BatchBuilder, BatchLayout, PartKey, output_schema};
use arrow_array::RecordBatch;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The last day of the week holding `day` (the `week_end` weekday on or after it).
pub fn week_ending(day: i32, week_end: u32) -> i32 {
    day + ((week_end + 7 - weekday(day)) % 7) as i32
}

#[derive(Debug, Clone, Copy)]
struct WeekState {
    latest_date: i32,
    latest: Option<i128>,
    latest_record: u64,
    last_non_null: Option<(i32, i128, u64)>,
}

struct Indexes {
    source: usize,
    code: usize,
    series: usize,
    date: usize,
    week: usize,
    value: usize,
}

/// Cleans one wide file.
pub(crate) struct WideCleaner<'c> {
    contract: &'c Contract,
    profile: &'c Profile,
    source_key: String,
    ingested_at_us: i64,
    source_order: Option<String>,
    limits: Limits,
    idx: Indexes,
    header: Vec<String>,
    n_fields: usize,
    date_field: usize,
    source_field: Option<usize>,
    /// (field, series number) for every series column.
    series_fields: Vec<(usize, usize)>,
    series_names: Vec<String>,
    fixed: Vec<Option<Fixed>>,
    week_end: u32,
    precision: u8,
    scale: u8,
    seen_dates: HashSet<(u16, i32)>,
    weeks: BTreeMap<(u16, usize, i32), WeekState>,
    stats: Stats,
    values: Vec<Option<i128>>,
}

impl<'c> WideCleaner<'c> {
    /// Reads the header: finds the date column, the optional source column, and the series.
    pub fn new(
        contract: &'c Contract,
        profile: &'c Profile,
        raw_header: &[Vec<u8>],
        ctx: crate::clean::FileContext,
        limits: Limits,
    ) -> Result<Self, FileError> {
        let wide = contract.wide.as_ref().ok_or(FileError::Empty)?;
        // Every [wide] column is checked to exist when the contract is compiled.
        let col = |name: &str| contract.column_index(name).unwrap_or(0);
        let idx = Indexes {
            source: col(&wide.source_column),
            code: col(&wide.dataset_code_column),
            series: col(&wide.series_column),
            date: col(&wide.date_column),
            week: col(&wide.period_column),
            value: col(&wide.value_column),
        };
        let mut header = decode_header(profile.encoding, raw_header)?;
        let n_fields = header.len();
        if profile.trailing_empty_column && header.last().is_some_and(|h| h.trim().is_empty()) {
            header.pop();
        }
        let mut date_field: Option<usize> = None;
        let mut source_field: Option<usize> = None;
        let mut series_fields = Vec::new();
        let mut series_names: Vec<String> = Vec::new();
        // A series named twice (`US10Y` and ` us10y `) would give duplicate keys: the file
        // fails, as a file naming any other column twice does.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let twice = |column: &str, first: usize, second: usize| FileError::DuplicateColumn {
            column: crate::error::clip(column, 64),
            first: crate::error::clip(&header[first], 64),
            second: crate::error::clip(&header[second], 64),
        };
        for (k, h) in header.iter().enumerate() {
            let name = h.trim();
            match contract.column_for_header(profile, name) {
                Some(c) if c == idx.date || c == idx.source => {
                    let slot = if c == idx.date {
                        &mut date_field
                    } else {
                        &mut source_field
                    };
                    if let Some(first) = *slot {
                        return Err(twice(&contract.columns[c].name, first, k));
                    }
                    *slot = Some(k);
                }
                _ if name.is_empty() => {}
                _ => {
                    if let Some(&first) = seen.get(&name.to_ascii_uppercase()) {
                        return Err(twice(name, first, k));
                    }
                    seen.insert(name.to_ascii_uppercase(), k);
                    series_fields.push((k, series_names.len()));
                    series_names.push(name.to_string());
                }
            }
        }
        if series_fields.len() > wide.max_series {
            return Err(FileError::TooWide(format!(
                "{} series columns, more than the contract's max_series of {}; split the file by series",
                series_fields.len(),
                wide.max_series
            )));
        }
        let date_field = date_field.ok_or_else(|| FileError::NoDateColumn {
            looked_for: std::iter::once(wide.date_column.clone())
                .chain(
                    profile
                        .headers
                        .iter()
                        .filter(|(_, c)| **c == idx.date)
                        .map(|(h, _)| h.clone()),
                )
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let mut inputs = vec![None; contract.columns.len()];
        inputs[idx.source] = source_field;
        let fixed = fixed_values(contract, profile, &ctx.source_key, &inputs)?;
        for c in [idx.source, idx.code] {
            if fixed[c].is_none() && inputs[c].is_none() {
                return Err(FileError::MissingColumn {
                    column: contract.columns[c].name.clone(),
                    header: format!(
                        "{} (and the object key `{}` gives none)",
                        crate::error::describe_header(
                            &contract.shown_header_names(profile, &header)
                        ),
                        crate::error::clip(&ctx.source_key, 200)
                    ),
                });
            }
        }
        let (precision, scale) = match contract.columns[idx.value].ty {
            ColumnType::Decimal { precision, scale } => (precision, scale),
            _ => (38, 0),
        };
        let week_end = weekday_number(&wide.week_ends_on).unwrap_or(4);
        Ok(WideCleaner {
            contract,
            profile,
            source_key: ctx.source_key,
            ingested_at_us: ctx.ingested_at_us,
            source_order: ctx.source_order,
            limits,
            idx,
            header,
            n_fields,
            date_field,
            source_field,
            values: Vec::with_capacity(series_fields.len()),
            series_fields,
            series_names,
            fixed,
            week_end,
            precision,
            scale,
            seen_dates: HashSet::new(),
            weeks: BTreeMap::new(),
            stats: Stats::for_contract(contract),
        })
    }

    /// Cleans one chunk of wide rows; returns the rejects.
    pub fn process(&mut self, chunk: &Chunk) -> Vec<Rejected> {
        let mut rejects = Vec::new();
        for i in 0..chunk.len() {
            let rec = chunk.record(i);
            let number = chunk.first_record + i as u64;
            self.stats.rows_read += 1;
            if let Err((reason, field, column)) = self.check(&rec, number) {
                let rejected = Rejected {
                    record_number: number,
                    column,
                    reason,
                    value: field
                        .map(|j| escape_bytes_in(self.profile.encoding, rec.field(j)))
                        .unwrap_or_default(),
                    record: join_record(self.profile.encoding, &rec),
                };
                self.stats.reject(&rejected);
                rejects.push(rejected);
            }
        }
        rejects
    }

    fn cell<'r>(&self, raw: &'r [u8]) -> Option<std::borrow::Cow<'r, [u8]>> {
        let t = trim(raw);
        let t: std::borrow::Cow<'r, [u8]> = match unquote_padded(t) {
            Some(u) => std::borrow::Cow::Owned(trim(&u).to_vec()),
            None => std::borrow::Cow::Borrowed(t),
        };
        (!self.contract.nulls.is_null(&t)).then_some(t)
    }

    #[allow(clippy::type_complexity)]
    fn check(
        &mut self,
        rec: &crate::input::Record<'_>,
        number: u64,
    ) -> Result<(), (Reason, Option<usize>, String)> {
        let name = |j: usize| self.header.get(j).cloned().unwrap_or_default();
        if rec.len() != self.n_fields {
            return Err((Reason::Ragged, None, String::new()));
        }
        for j in 0..rec.len() {
            let f = rec.field(j);
            if f.len() > self.limits.max_field_bytes {
                return Err((Reason::FieldTooLong, Some(j), name(j)));
            }
            // A NUL is `encoding`, as in the records path.
            if (!f.is_ascii() && decode_text(self.profile.encoding, f).is_none()) || f.contains(&0)
            {
                return Err((Reason::Encoding, Some(j), name(j)));
            }
        }
        let date_col = self.contract.columns[self.idx.date].name.clone();
        let date = match self.cell(rec.field(self.date_field)) {
            None => return Err((Reason::Required, Some(self.date_field), date_col)),
            Some(t) => parse_date_within(&t, &self.profile.date_formats, &self.profile.date_range)
                .map_err(|r| (r, Some(self.date_field), date_col))?,
        };
        let source = self.source_of(rec)?;
        let value_col = &self.contract.columns[self.idx.value];
        self.values.clear();
        for &(j, _) in &self.series_fields {
            let v = match self.cell(rec.field(j)) {
                None => None,
                Some(t) => {
                    let v = parse_decimal(&t, self.precision, self.scale)
                        .map_err(|r| (r, Some(j), name(j)))?;
                    if !value_col.bounds.contains(v) {
                        return Err((Reason::OutOfRange, Some(j), name(j)));
                    }
                    Some(v)
                }
            };
            self.values.push(v);
        }
        if !self.seen_dates.insert((source, date)) {
            return Err((Reason::DuplicateKey, None, String::new()));
        }
        self.stats.rows_ok += 1;
        let week = week_ending(date, self.week_end);
        for (s, v) in self.values.iter().enumerate() {
            let st = self.weeks.entry((source, s, week)).or_insert(WeekState {
                latest_date: i32::MIN,
                latest: None,
                latest_record: number,
                last_non_null: None,
            });
            if date > st.latest_date {
                st.latest_date = date;
                st.latest = *v;
                st.latest_record = number;
            }
            if let Some(x) = v
                && st.last_non_null.is_none_or(|(d, _, _)| date > d)
            {
                st.last_non_null = Some((date, *x, number));
            }
        }
        Ok(())
    }

    fn source_of(
        &self,
        rec: &crate::input::Record<'_>,
    ) -> Result<u16, (Reason, Option<usize>, String)> {
        let col = &self.contract.columns[self.idx.source];
        if let Some(j) = self.source_field
            && let Some(t) = self.cell(rec.field(j))
        {
            let s = std::str::from_utf8(&t)
                .map_err(|_| (Reason::Encoding, Some(j), col.name.clone()))?;
            return col.domain.as_ref().and_then(|d| d.resolve(s)).ok_or((
                Reason::InvalidEnum,
                Some(j),
                col.name.clone(),
            ));
        }
        match &self.fixed[self.idx.source] {
            Some(Fixed::Enum(i)) => Ok(*i),
            _ => Err((Reason::Required, self.source_field, col.name.clone())),
        }
    }

    /// Fails the file once it has made more (series, week) cells than its contract allows.
    pub fn check_cells(&self) -> Result<(), FileError> {
        let limit = self
            .contract
            .wide
            .as_ref()
            .map_or(usize::MAX, |w| w.max_cells);
        if self.weeks.len() > limit {
            return Err(FileError::TooWide(format!(
                "more than the contract's max_cells of {limit} (series × weeks); split the file by series or by period"
            )));
        }
        Ok(())
    }

    /// Makes the long output: one row per (source, series, week), with the trend features,
    /// handed to `emit` in batches of at most `batch_rows` rows of one week (the partition), so
    /// that the output never sits whole in memory. Returns the rows emitted and the numbers.
    pub fn finish(
        mut self,
        batch_rows: usize,
        emit: &mut dyn FnMut(PartKey, RecordBatch) -> Result<(), Error>,
    ) -> Result<(u64, Stats), Error> {
        let schema = BatchLayout::plain(output_schema(self.contract));
        let batch_rows = batch_rows.max(1);
        let mut emitted = 0u64;
        let mut by_week: BTreeMap<i32, BatchBuilder> = BTreeMap::new();
        let code = match &self.fixed[self.idx.code] {
            Some(Fixed::Str(s)) => s.clone(),
            _ => String::new(),
        };
        let value_total = self
            .contract
            .control_totals
            .iter()
            .position(|&c| c == self.idx.value);
        let n_cols = self.contract.columns.len();
        for (&(source, series, week), st) in &self.weeks {
            let (value, obs_date, record) = match (st.latest, st.last_non_null) {
                (Some(v), _) => (Some(v), st.latest_date, st.latest_record),
                (None, Some((d, v, r))) => (Some(v), d, r),
                (None, None) => (None, st.latest_date, st.latest_record),
            };
            if value.is_none() {
                self.stats.gaps += 1;
            }
            if let (Some(t), Some(v)) = (value_total, value) {
                self.stats.totals[t] += v;
            }
            let b = by_week
                .entry(week)
                .or_insert_with(|| BatchBuilder::new(&schema, 64));
            for (c, col) in self.contract.columns.iter().enumerate() {
                let v = if c == self.idx.source {
                    Val::Enum(source)
                } else if c == self.idx.code {
                    Val::Str(&code)
                } else if c == self.idx.series {
                    Val::Str(&self.series_names[series])
                } else if c == self.idx.date {
                    Val::Date(obs_date)
                } else if c == self.idx.week {
                    Val::Date(week)
                } else if c == self.idx.value {
                    value.map_or(Val::Null, Val::Num)
                } else {
                    Val::Null
                };
                b.push_column(c, col, std::iter::once(v), "");
            }
            b.push_lineage_rows(
                n_cols,
                &self.source_key,
                std::iter::once(record),
                self.ingested_at_us,
                self.source_order.as_deref(),
            );
            if b.len() >= batch_rows
                && let Some(full) = by_week.insert(week, BatchBuilder::new(&schema, 64))
            {
                emitted += full.len() as u64;
                emit(PartKey::Date(week), full.finish()?)?;
            }
        }
        for (week, b) in by_week {
            if !b.is_empty() {
                emitted += b.len() as u64;
                emit(PartKey::Date(week), b.finish()?)?;
            }
        }
        Ok((emitted, self.stats))
    }
}
