//! A synthetic file for any records contract, drawn from the contract alone: its columns, types,
//! bounds, enum values, check digits, date formats and record rules. A new dataset is a contract
//! file, and this generator writes its files with no code change.
//!
//! The tailored generators beside it (`Gen`) add what a contract does not say about a real
//! vendor: Shift_JIS bytes, BSE's trailing comma, J-Quants' five-character codes, realistic
//! market-value arithmetic on par amounts in thousands. This one is the floor every contract gets.

use super::{Field, Generated, Spec, Truth, fixed, t, write_row};
use bondlake_core::contract::{Check, ColumnType, Contract, Profile, RecordRule, Shape};
use bondlake_core::parse::{cusip_check_digit, days_from_civil, format_date, isin_check_digit};
use bondlake_core::reason::Reason;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{self, Write};

/// Writes `spec.rows` records of `contract` under the profile `spec.profile` (uncompressed, in
/// the profile's encoding), with `spec.dirty` of them carrying one reject each, listed in the
/// returned truth. Every column the contract has is written (the Kafka lineage columns, which
/// only msk-lander writes, excepted), headed by the profile's name for it.
pub fn generate_from_contract(
    contract: &Contract,
    spec: &Spec,
    out: &mut dyn Write,
) -> io::Result<Generated> {
    let unsupported = |why: String| io::Error::new(io::ErrorKind::Unsupported, why);
    if contract.shape != Shape::Records {
        return Err(unsupported(format!(
            "{}: the contract-drawn generator writes records-shaped files only",
            contract.dataset
        )));
    }
    let profile = contract
        .profile(Some(&spec.profile))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut g = Drawn::new(contract, profile, spec.seed).map_err(unsupported)?;
    let mut buf = Vec::with_capacity(1 << 16);
    let header: Vec<Field> = g
        .header()
        .into_iter()
        .map(|h| Field::Text(g.encode(&h)))
        .collect();
    write_row(&mut buf, &header, false);
    buf.push(b'\n');
    let kinds = g.reject_kinds();
    let mut result = Generated::default();
    let mut dealt = 0usize;
    let mut last_clean: Option<Vec<Field>> = None;
    for i in 0..spec.rows {
        let mut row = g.row(i);
        let dirty = spec.dirty > 0.0 && g.rng.random_bool(spec.dirty.clamp(0.0, 1.0));
        if dirty && !kinds.is_empty() {
            let kind = kinds[dealt % kinds.len()];
            dealt += 1;
            let what = match (kind, &last_clean) {
                (Reason::DuplicateKey, Some(previous)) => {
                    row = previous.clone();
                    "the whole of an earlier record"
                }
                (Reason::DuplicateKey, None) => {
                    g.pad(&mut row);
                    ""
                }
                _ => g.break_row(kind, &mut row),
            };
            if what.is_empty() {
                result.repaired += 1;
                last_clean = Some(row.clone());
            } else {
                result.truth.push(Truth {
                    record: i + 1,
                    reason: kind.code().to_string(),
                    defect: what.to_string(),
                });
            }
        } else {
            last_clean = Some(row.clone());
        }
        write_row(&mut buf, &row, false);
        buf.push(b'\n');
        result.records += 1;
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    Ok(result)
}

/// A column the file carries: its index in the contract and its header.
struct Written {
    column: usize,
    header: String,
}

struct Drawn<'c> {
    contract: &'c Contract,
    profile: &'c Profile,
    rng: ChaCha8Rng,
    written: Vec<Written>,
    /// The day every date is drawn around, inside the contract's date range.
    base: i32,
    /// Renders a day in a format the profile accepts.
    date_text: fn(i32) -> String,
}

/// Day renderings a contract's `date_formats` may accept, tried in order.
const RENDERINGS: [fn(i32) -> String; 5] = [
    format_date,
    |d| format_date(d).replace('-', ""),
    |d| format_date(d).replace('-', "/"),
    |d| {
        let s = format_date(d);
        format!("{}/{}/{}", &s[5..7], &s[8..10], &s[0..4])
    },
    |d| {
        let s = format_date(d);
        format!("{}-{}-{}", &s[8..10], &s[5..7], &s[0..4])
    },
];

impl<'c> Drawn<'c> {
    fn new(contract: &'c Contract, profile: &'c Profile, seed: u64) -> Result<Self, String> {
        let lineage = bondlake_core::kafka::LINEAGE;
        let written = (0..contract.columns.len())
            .filter(|&c| !lineage.contains(&contract.columns[c].name.as_str()))
            .map(|column| Written {
                column,
                header: header_for(contract, profile, column),
            })
            .collect();
        let wanted = days_from_civil(2026, 11, 25).unwrap_or(0);
        let base = wanted.clamp(*profile.date_range.start(), *profile.date_range.end());
        let date_text = RENDERINGS
            .into_iter()
            .find(|render| {
                let text = render(base);
                profile
                    .date_formats
                    .iter()
                    .any(|f| f.parse(text.as_bytes()) == Some(base))
            })
            .ok_or_else(|| {
                format!(
                    "{}/{}: no date rendering this generator knows fits the formats {:?}",
                    contract.dataset,
                    profile.name,
                    profile
                        .date_formats
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                )
            })?;
        Ok(Drawn {
            contract,
            profile,
            rng: ChaCha8Rng::seed_from_u64(seed),
            written,
            base,
            date_text,
        })
    }

    fn header(&self) -> Vec<String> {
        self.written.iter().map(|w| w.header.clone()).collect()
    }

    fn encode(&self, s: &str) -> Vec<u8> {
        match self.profile.encoding {
            bondlake_core::contract::Encoding::ShiftJis => {
                encoding_rs::SHIFT_JIS.encode(s).0.into_owned()
            }
            bondlake_core::contract::Encoding::Utf8 => s.as_bytes().to_vec(),
        }
    }

    /// The field of contract column `c` in a row.
    fn field_of(&self, c: usize) -> Option<usize> {
        self.written.iter().position(|w| w.column == c)
    }

    /// The range a numeric column's clean values are drawn from, at its scale: inside its bounds
    /// and its precision, away from the bounds so that one unit past them stays representable.
    fn range(&self, c: usize) -> (i128, i128) {
        let col = &self.contract.columns[c];
        let (precision, scale) = match col.ty {
            ColumnType::Decimal { precision, scale } => (u32::from(precision), u32::from(scale)),
            _ => (18, 0),
        };
        let one = 10i128.pow(scale);
        let most = 10i128.pow(precision) - 1;
        let lo = match col.bounds.lower {
            Some((b, inclusive)) => b + i128::from(!inclusive),
            None => 0,
        };
        // Modest values, so that products (par × price) stay inside the result's precision.
        let modest = (lo.max(0) + 10_000 * one).min(most / 2);
        let hi = match col.bounds.upper {
            Some((b, inclusive)) => (b - i128::from(!inclusive)).min(modest),
            None => modest,
        };
        (lo, hi.max(lo))
    }

    fn number(&mut self, c: usize) -> i128 {
        let (lo, hi) = self.range(c);
        self.rng.random_range(lo..=hi)
    }

    fn text_number(&self, c: usize, v: i128) -> String {
        fixed(v, self.contract.columns[c].ty.scale().into())
    }

    fn row(&mut self, i: u64) -> Vec<Field> {
        let n = self.contract.columns.len();
        let mut value: Vec<Option<String>> = vec![None; n];
        let mut numbers: Vec<Option<i128>> = vec![None; n];
        let mut days: Vec<Option<i32>> = vec![None; n];
        for w in 0..self.written.len() {
            let c = self.written[w].column;
            let col = &self.contract.columns[c];
            let is_key = self.contract.key.contains(&c);
            match col.ty {
                ColumnType::Date => days[c] = Some(self.base),
                ColumnType::Int64 if is_key => {
                    let (lo, hi) = self.range(c);
                    numbers[c] = Some((lo + i128::from(i)).min(hi));
                }
                ColumnType::Int64 | ColumnType::Decimal { .. } => numbers[c] = Some(self.number(c)),
                ColumnType::Enum => {
                    let values = &col.domain.as_ref().expect("an enum has values").values;
                    value[c] = Some(values[self.rng.random_range(0..values.len())].clone());
                }
                ColumnType::String => value[c] = Some(self.string(c, i, is_key)),
                // Only a derived contract has doubles, and it has no vendor file to draw.
                ColumnType::Double => {}
            }
        }
        for rule in &self.contract.record_rules {
            match *rule {
                RecordRule::Matured { column, not_before } => {
                    let start = days[not_before].unwrap_or(self.base);
                    let end = *self.profile.date_range.end();
                    days[column] = Some((start + self.rng.random_range(1..=3650)).min(end));
                }
                RecordRule::Ohlc {
                    open,
                    high,
                    low,
                    close,
                } => {
                    let mut four = [open, high, low, close].map(|c| numbers[c].unwrap_or(0));
                    four.sort_unstable();
                    numbers[low] = Some(four[0]);
                    numbers[open] = Some(four[1]);
                    numbers[close] = Some(four[2]);
                    numbers[high] = Some(four[3]);
                }
                RecordRule::MarketValue { market_value, .. } => {
                    numbers[market_value] = Some(self.market_value(&numbers, rule, 1));
                }
            }
        }
        self.written
            .iter()
            .map(|w| {
                let c = w.column;
                if let Some(d) = days[c] {
                    t((self.date_text)(d))
                } else if let Some(v) = numbers[c] {
                    t(self.text_number(c, v))
                } else {
                    t(value[c].clone().unwrap_or_default())
                }
            })
            .collect()
    }

    /// par × price / 100 at the market value's scale, rounded half up, times `factor`.
    fn market_value(&self, numbers: &[Option<i128>], rule: &RecordRule, factor: i128) -> i128 {
        let &RecordRule::MarketValue {
            market_value,
            par_value,
            price,
            ..
        } = rule
        else {
            return 0;
        };
        let scale = |c: usize| i32::from(self.contract.columns[c].ty.scale());
        let shift = scale(par_value) + scale(price) - scale(market_value);
        let product = numbers[par_value].unwrap_or(0) * numbers[price].unwrap_or(0) * factor;
        let divisor = 100 * 10i128.pow(shift.max(0) as u32);
        (product * 10i128.pow((-shift).max(0) as u32) + divisor / 2) / divisor
    }

    /// A string column's value: a valid code where the column has a check digit, unique where it
    /// is part of the key.
    fn string(&mut self, c: usize, i: u64, is_key: bool) -> String {
        let col = &self.contract.columns[c];
        let serial = if is_key {
            i
        } else {
            self.rng.random_range(0..1_000_000)
        };
        let mut s = match col.check {
            Some(Check::Cusip) => {
                let mut base = format!("{:08}", 10_000_000 + serial % 90_000_000).into_bytes();
                base.push(cusip_check_digit(&base));
                String::from_utf8(base).unwrap_or_default()
            }
            Some(Check::Isin) => {
                let mut base = format!("US{:09}", serial % 1_000_000_000).into_bytes();
                base.push(isin_check_digit(&base));
                String::from_utf8(base).unwrap_or_default()
            }
            None => {
                let letters: String = col
                    .name
                    .chars()
                    .filter(char::is_ascii_alphabetic)
                    .take(3)
                    .collect::<String>()
                    .to_ascii_uppercase();
                format!("{letters}{serial:07}")
            }
        };
        if let Some(max) = col.max_length {
            s.truncate(max.max(1));
        }
        s
    }

    /// The rejects this contract can have, in the order they are dealt.
    fn reject_kinds(&self) -> Vec<Reason> {
        let columns = &self.contract.columns;
        let has = |f: &dyn Fn(usize) -> bool| self.written.iter().any(|w| f(w.column));
        let mut kinds = vec![Reason::Ragged];
        if has(&|c| self.emptiable(c)) {
            kinds.push(Reason::Required);
        }
        if has(&|c| columns[c].ty == ColumnType::Date) {
            kinds.push(Reason::InvalidDate);
        }
        if has(&|c| {
            matches!(
                columns[c].ty,
                ColumnType::Int64 | ColumnType::Decimal { .. }
            )
        }) {
            kinds.push(Reason::InvalidNumber);
        }
        if has(&|c| matches!(columns[c].ty, ColumnType::Decimal { scale, .. } if scale < 7)) {
            kinds.push(Reason::Precision);
        }
        if has(&|c| self.past_bound(c).is_some()) {
            kinds.push(Reason::OutOfRange);
        }
        if has(&|c| columns[c].ty == ColumnType::Enum) {
            kinds.push(Reason::InvalidEnum);
        }
        if has(&|c| columns[c].check.is_some()) {
            kinds.push(Reason::CheckDigit);
        }
        for rule in &self.contract.record_rules {
            kinds.push(match rule {
                RecordRule::Matured { .. } => Reason::Matured,
                RecordRule::MarketValue { .. } => Reason::MarketValueMismatch,
                RecordRule::Ohlc { .. } => Reason::OhlcInconsistent,
            });
        }
        if self.profile.encoding == bondlake_core::contract::Encoding::Utf8
            && has(&|c| columns[c].ty == ColumnType::String)
        {
            kinds.push(Reason::Encoding);
        }
        if !self.contract.key.is_empty() {
            kinds.push(Reason::DuplicateKey);
        }
        kinds
    }

    /// A required column with nothing to fall back on when its field is empty.
    fn emptiable(&self, c: usize) -> bool {
        let col = &self.contract.columns[c];
        col.required
            && col.default_from.is_none()
            && col.from_key_segment.is_none()
            && !self.profile.constants.iter().any(|(k, _)| *k == c)
            && !self.profile.from_file_name.iter().any(|f| f.column == c)
    }

    /// One unit past a numeric column's bound, when it has one that is still representable.
    fn past_bound(&self, c: usize) -> Option<i128> {
        let col = &self.contract.columns[c];
        let ColumnType::Decimal { precision, .. } = col.ty else {
            return match (col.ty, col.bounds.upper) {
                (ColumnType::Int64, Some((b, inclusive))) => Some(b + i128::from(inclusive)),
                _ => None,
            };
        };
        let most = 10i128.pow(u32::from(precision)) - 1;
        let up = col
            .bounds
            .upper
            .map(|(b, inclusive)| b + i128::from(inclusive));
        let down = col
            .bounds
            .lower
            .map(|(b, inclusive)| b - i128::from(inclusive));
        up.filter(|v| v.abs() <= most)
            .or(down.filter(|v| v.abs() <= most))
    }

    /// The first written column matching `f`.
    fn first(&self, f: impl Fn(usize) -> bool) -> Option<usize> {
        self.written.iter().map(|w| w.column).find(|&c| f(c))
    }

    /// Spaces around a number: a repair the cleaner undoes.
    fn pad(&self, row: &mut [Field]) {
        let numeric = |c: usize| {
            matches!(
                self.contract.columns[c].ty,
                ColumnType::Int64 | ColumnType::Decimal { .. }
            )
        };
        if let Some(j) = self.first(numeric).and_then(|c| self.field_of(c)) {
            let text = text_of(&row[j]);
            row[j] = t(format!("  {text} "));
        }
    }

    /// Breaks `row` so that the cleaner must reject it for `kind`; says what was done.
    fn break_row(&mut self, kind: Reason, row: &mut Vec<Field>) -> &'static str {
        let columns = &self.contract.columns;
        let field = |s: &Self, f: &dyn Fn(usize) -> bool| {
            s.first(f).and_then(|c| s.field_of(c).map(|j| (c, j)))
        };
        match kind {
            Reason::Ragged => {
                row.pop();
                "a field dropped"
            }
            Reason::Required => {
                let (_, j) = field(self, &|c| self.emptiable(c)).expect("dealt only when possible");
                row[j] = t("");
                "a required value emptied"
            }
            Reason::InvalidDate => {
                let (_, j) = field(self, &|c| columns[c].ty == ColumnType::Date).expect("a date");
                row[j] = t("2026-02-30");
                "no such day"
            }
            Reason::InvalidNumber => {
                let numeric = |c: usize| {
                    matches!(
                        columns[c].ty,
                        ColumnType::Int64 | ColumnType::Decimal { .. }
                    )
                };
                let (_, j) = field(self, &numeric).expect("a number");
                row[j] = t("12x4.50");
                "letters in a number"
            }
            Reason::Precision => {
                let fine = |c: usize| matches!(columns[c].ty, ColumnType::Decimal { scale, .. } if scale < 7);
                let (_, j) = field(self, &fine).expect("a decimal");
                row[j] = t("1.1234567");
                "digits past the scale"
            }
            Reason::OutOfRange => {
                let (c, j) = field(self, &|c| self.past_bound(c).is_some()).expect("a bound");
                let v = self.past_bound(c).unwrap_or_default();
                row[j] = t(self.text_number(c, v));
                "one unit past a bound"
            }
            Reason::InvalidEnum => {
                let (_, j) = field(self, &|c| columns[c].ty == ColumnType::Enum).expect("an enum");
                row[j] = t("zz_not_listed");
                "a value not in the list"
            }
            Reason::CheckDigit => {
                let (_, j) = field(self, &|c| columns[c].check.is_some()).expect("a code");
                let mut code = text_of(&row[j]).into_bytes();
                if let Some(last) = code.last_mut() {
                    *last = b'0' + (last.wrapping_sub(b'0') + 1) % 10;
                }
                row[j] = Field::Text(code);
                "the check digit changed"
            }
            Reason::Encoding => {
                let (_, j) = field(self, &|c| columns[c].ty == ColumnType::String).expect("text");
                let mut bytes = text_of(&row[j]).into_bytes();
                bytes.push(0xFF);
                row[j] = Field::Raw(bytes);
                "an invalid byte"
            }
            Reason::Matured => {
                let Some(&RecordRule::Matured { column, .. }) = self
                    .contract
                    .record_rules
                    .iter()
                    .find(|r| matches!(r, RecordRule::Matured { .. }))
                else {
                    return "";
                };
                // Every date but a maturity is the base day, the as-of date among them.
                if let Some(j) = self.field_of(column) {
                    row[j] = t((self.date_text)(self.base - 1));
                }
                "matures before the as-of date"
            }
            Reason::MarketValueMismatch => {
                let contract = self.contract;
                let Some(rule) = contract
                    .record_rules
                    .iter()
                    .find(|r| matches!(r, RecordRule::MarketValue { .. }))
                else {
                    return "";
                };
                let &RecordRule::MarketValue {
                    market_value,
                    par_value,
                    price,
                    absolute,
                    ..
                } = rule
                else {
                    return "";
                };
                let mut numbers = vec![None; self.contract.columns.len()];
                for c in [par_value, price] {
                    numbers[c] = self
                        .field_of(c)
                        .and_then(|j| parse_scaled(&row[j], columns[c].ty.scale()));
                }
                let wrong = self.market_value(&numbers, rule, 3) + absolute + 100;
                if let Some(j) = self.field_of(market_value) {
                    row[j] = t(self.text_number(market_value, wrong));
                }
                "three times par × price"
            }
            Reason::OhlcInconsistent => {
                let Some(&RecordRule::Ohlc { high, low, .. }) = self
                    .contract
                    .record_rules
                    .iter()
                    .find(|r| matches!(r, RecordRule::Ohlc { .. }))
                else {
                    return "";
                };
                let (Some(jh), Some(jl)) = (self.field_of(high), self.field_of(low)) else {
                    return "";
                };
                let h = parse_scaled(&row[jh], columns[high].ty.scale()).unwrap_or(0);
                let l = parse_scaled(&row[jl], columns[low].ty.scale()).unwrap_or(0);
                // Low above high, both inside their bounds: only the record rule can object.
                row[jl] = t(self.text_number(low, h));
                row[jh] = t(self.text_number(high, l.min(h - 1)));
                "low and high swapped past each other"
            }
            _ => "",
        }
    }
}

/// The header the profile knows column `c` by (the first of its vendor names, as compared), else
/// the column's own name.
fn header_for(contract: &Contract, profile: &Profile, c: usize) -> String {
    let mut names: Vec<&String> = profile
        .headers
        .iter()
        .filter(|&(_, &col)| col == c)
        .map(|(name, _)| name)
        .collect();
    names.sort();
    names
        .first()
        .map(|s| s.to_string())
        .unwrap_or_else(|| contract.columns[c].name.clone())
}

fn text_of(f: &Field) -> String {
    match f {
        Field::Text(b) | Field::Raw(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn parse_scaled(f: &Field, scale: u8) -> Option<i128> {
    bondlake_core::parse::parse_decimal(text_of(f).trim().as_bytes(), 38, scale).ok()
}
