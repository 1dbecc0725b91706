//! Data contracts: one TOML file per dataset, read at run time (`contracts/*.toml`).
//!
//! A contract is loaded in two steps: serde reads the file into the `Raw*` types, rejecting unknown
//! keys and types, then [`Contract::from_toml`] checks what serde cannot (duplicate columns, a key
//! naming no column, a bound that does not fit its decimal) and compiles the rules into the form the
//! cleaner runs on. Every error names the file and the entry.

use crate::parse::{DateFormat, NullTokens, parse_decimal, parse_int64};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

mod compile;
mod raw;
mod registry;

use compile::compile;
use raw::RawContract;
pub use registry::{BUILTIN, load_all, load_dataset};

/// How header names are compared: case, spaces and punctuation do not count, so `As Of Date`,
/// `AS_OF_DATE` and `asOfDate` all name `as_of_date` (letters of any script are kept: JPX's
/// `銘柄コード` stays itself).
pub fn header_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A contract that cannot be used; each names the file, and the entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The file could not be read.
    #[error("contract {file}: cannot read: {source}")]
    Read {
        /// The contract file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or not a contract's keys (unknown keys are refused).
    #[error("contract {file}: {message}")]
    Syntax {
        /// The contract file (or a name standing for it).
        file: String,
        /// The TOML reader's message, with its line and column.
        message: String,
    },
    /// Well-formed, but a section breaks a rule.
    #[error("contract {file}: {message}")]
    Invalid {
        /// The contract file (or a name standing for it).
        file: String,
        /// The section at fault.
        section: Section,
        /// What is wrong, naming the entry.
        message: String,
    },
    /// No such dataset among the built-in contracts.
    #[error("contract {file}: unknown dataset `{dataset}` (known: {known})")]
    UnknownDataset {
        /// `<dataset>.toml`.
        file: String,
        /// The name asked for.
        dataset: String,
        /// The built-in datasets, comma-separated.
        known: String,
    },
}

/// The part of a contract a check belongs to (the order `compile` checks them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[[columns]]`.
    Columns,
    /// `key`, `partition`, `control_totals`, `reject_threshold`.
    Layout,
    /// `[[record_rules]]`.
    RecordRules,
    /// `[[derived]]`.
    Derived,
    /// `date_formats`, `date_range`.
    Dates,
    /// `[profiles.*]`, `default_profile`.
    Profiles,
    /// `[wide]`.
    Wide,
    /// `[warehouse]`.
    Warehouse,
}

/// How vendor files are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// One input record is one output row.
    #[default]
    Records,
    /// A date column and one column per series, made long (weekly_series).
    Wide,
    /// Rows a bondlake job computes from other datasets (weekly_trends, from weekly_series):
    /// never read from a vendor file, so it has no profiles, formats or null tokens; the
    /// contract gives the table, its key and its control totals.
    Derived,
}

/// A check-digit rule on a string column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Nine characters, modulus-10 double-add-double.
    Cusip,
    /// Twelve characters, ISO 6166.
    Isin,
}

/// The wide layout of weekly_series: which columns hold the date, the series name, the value and
/// the week.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WideSpec {
    /// The output column naming the series' vendor (from the file, the key or the profile).
    pub source_column: String,
    /// The output column naming the vendor's dataset (from the key or the profile).
    pub dataset_code_column: String,
    /// The output column holding each input row's date.
    pub date_column: String,
    /// The output column holding the wide column's name.
    pub series_column: String,
    /// The output column holding the cell's value.
    pub value_column: String,
    /// The output column holding the week's closing day.
    pub period_column: String,
    /// The weekday the week ends on (`friday`).
    pub week_ends_on: String,
    /// Most series columns one file may have: a file past it fails at its header, before any
    /// row is read.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// Most (series, week) cells one file may make: the cleaner holds one small state per cell
    /// (about 100 bytes) until the end of the file, since each series' trends need its weeks in
    /// order, so this bounds the wide path's memory.
    #[serde(default = "default_max_cells")]
    pub max_cells: usize,
}

fn default_max_series() -> usize {
    10_000
}

fn default_max_cells() -> usize {
    1_000_000
}

/// How the dataset's warehouse table is laid out (Redshift's DISTKEY and SORTKEY; the other
/// backends ignore them). Both name output columns.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseHints {
    /// The column rows are distributed on: a key column the MERGE joins on, so it stays local.
    pub distkey: Option<String>,
    /// The compound sort key: the columns dashboards filter on, most selective last.
    #[serde(default)]
    pub sortkey: Vec<String>,
}

/// The logical type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text.
    String,
    /// One of a fixed set of values (with aliases); stored as the canonical text.
    Enum,
    /// A calendar date; Arrow Date32.
    Date,
    /// An exact decimal; Arrow Decimal128(precision, scale).
    Decimal {
        /// Total significant digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// A whole number; Arrow Int64.
    Int64,
    /// A binary float; Arrow Float64. Statistics a job derives (a z-score), never money, and
    /// only in a derived contract: no vendor value is read as one.
    Double,
}

impl ColumnType {
    /// The scale values of this type are stored at (0 for integers).
    pub fn scale(self) -> u8 {
        match self {
            ColumnType::Decimal { scale, .. } => scale,
            _ => 0,
        }
    }
}

/// A bound on a numeric column, as a value scaled like the column.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds {
    /// Lowest allowed value and whether it is itself allowed.
    pub lower: Option<(i128, bool)>,
    /// Highest allowed value and whether it is itself allowed.
    pub upper: Option<(i128, bool)>,
}

impl Bounds {
    /// True when `v` is within the bounds.
    #[inline]
    pub fn contains(&self, v: i128) -> bool {
        let lower_ok = match self.lower {
            Some((b, true)) => v >= b,
            Some((b, false)) => v > b,
            None => true,
        };
        let upper_ok = match self.upper {
            Some((b, true)) => v <= b,
            Some((b, false)) => v < b,
            None => true,
        };
        lower_ok && upper_ok
    }
}

/// Enum lookups run once per cell on short keys: foldhash (hashbrown's own) is several times
/// faster than SipHash there, and flooding resistance buys nothing for a contract's fixed list.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The allowed values of an enum column and how input text maps onto them.
#[derive(Debug, Clone)]
pub struct EnumDomain {
    /// Canonical values, in contract order.
    pub values: Vec<String>,
    lookup: FastMap<Vec<u8>, u16>,
    /// The keys of `lookup` of up to 16 bytes: an ASCII cell (nearly all) is found by one
    /// multiply and an integer compare or two, without hashing its bytes or copying them.
    short: ShortKeys,
    case_sensitive: bool,
}

impl EnumDomain {
    /// A domain over `values`, where `lookup` maps each accepted text (lower-cased unless
    /// `case_sensitive`) to its canonical value's index.
    pub(crate) fn new(
        values: Vec<String>,
        lookup: FastMap<Vec<u8>, u16>,
        case_sensitive: bool,
    ) -> Self {
        let short = ShortKeys::new(&lookup);
        EnumDomain {
            values,
            lookup,
            short,
            case_sensitive,
        }
    }

    /// The text `lookup` keeps for a value or alias: as written when the domain is
    /// case-sensitive, lower-cased otherwise.
    pub(crate) fn lookup_key(text: &str, case_sensitive: bool) -> Vec<u8> {
        if case_sensitive {
            text.as_bytes().to_vec()
        } else {
            text.to_lowercase().into_bytes()
        }
    }

    /// The canonical value's index for an input text, or `None` when it is not allowed.
    #[inline]
    pub fn resolve(&self, s: &str) -> Option<u16> {
        let b = s.as_bytes();
        if let Some(mut key) = ShortKey::of(b) {
            if self.case_sensitive {
                return self.short.get(key);
            }
            if key.is_ascii() {
                // Lower-casing ASCII keeps the length: the key, if any, is a short one.
                key.ascii_lower();
                return self.short.get(key);
            }
        }
        if self.case_sensitive {
            return self.lookup.get(b).copied();
        }
        let mut buf = [0u8; 48];
        if s.len() <= buf.len() && s.is_ascii() {
            let b = &mut buf[..s.len()];
            b.copy_from_slice(s.as_bytes());
            b.make_ascii_lowercase();
            self.lookup.get(&b[..]).copied()
        } else {
            self.lookup.get(s.to_lowercase().as_bytes()).copied()
        }
    }
}

/// Text of up to 16 bytes as two integers and its length. Every byte is in `lo` or `hi` (the
/// loads overlap when shorter), so for one length the pair is the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ShortKey {
    lo: u64,
    hi: u64,
    len: u8,
}

impl ShortKey {
    #[inline]
    fn of(b: &[u8]) -> Option<ShortKey> {
        let n = b.len();
        let word = |at: usize| {
            b.get(at..at + 8)
                .and_then(|w| w.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let half = |at: usize| {
            b.get(at..at + 4)
                .and_then(|w| w.try_into().ok())
                .map(|w| u64::from(u32::from_le_bytes(w)))
        };
        let (lo, hi) = match n {
            0 => (0, 0),
            1..=3 => (
                u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
                0,
            ),
            4..=7 => (half(0)?, half(n - 4)?),
            8..=16 => (word(0)?, word(n - 8)?),
            _ => return None,
        };
        Some(ShortKey {
            lo,
            hi,
            len: n as u8,
        })
    }

    #[inline]
    fn is_ascii(self) -> bool {
        (self.lo | self.hi) & (ONES * 0x80) == 0
    }

    /// ASCII upper-case letters to lower case, every byte being ASCII: a byte is in `A..=Z`
    /// when adding 63 sets its top bit and adding 37 does not (no carries: all are below 0x80).
    #[inline]
    fn ascii_lower(&mut self) {
        let lower = |x: u64| x | ((x + ONES * 63) & !(x + ONES * 37) & (ONES * 0x80)) >> 2;
        self.lo = lower(self.lo);
        self.hi = lower(self.hi);
    }

    #[inline]
    fn slot(self, shift: u32) -> usize {
        let x = self.lo.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (self.hi ^ u64::from(self.len)).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        (x >> shift) as usize
    }
}

/// A byte of ones in every byte of a u64.
const ONES: u64 = u64::MAX / 0xFF;

/// `a == b` in a few loads and compares where both are up to 16 bytes long: the interners' hits
/// (ids, names) are that short, and a slice comparison calls `memcmp` for each.
#[inline]
pub(crate) fn text_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match (ShortKey::of(a), ShortKey::of(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// An open-addressed table of [`ShortKey`]s, at most half full, probed linearly.
#[derive(Debug, Clone)]
struct ShortKeys {
    slots: Vec<Option<(ShortKey, u16)>>,
    /// 64 minus the table's size in bits: the hash's top bits pick the first slot.
    shift: u32,
}

impl ShortKeys {
    fn new(lookup: &FastMap<Vec<u8>, u16>) -> Self {
        let bits = (lookup.len().max(4) * 2)
            .next_power_of_two()
            .trailing_zeros();
        let mut table = ShortKeys {
            slots: vec![None; 1 << bits],
            shift: 64 - bits,
        };
        let mask = table.slots.len() - 1;
        for (text, &i) in lookup {
            let Some(key) = ShortKey::of(text) else {
                continue;
            };
            let mut at = key.slot(table.shift);
            while table.slots[at].is_some() {
                at = (at + 1) & mask;
            }
            table.slots[at] = Some((key, i));
        }
        table
    }

    #[inline]
    fn get(&self, key: ShortKey) -> Option<u16> {
        let mask = self.slots.len() - 1;
        let mut at = key.slot(self.shift);
        loop {
            match self.slots[at] {
                None => return None,
                Some((k, i)) if k == key => return Some(i),
                Some(_) => at = (at + 1) & mask,
            }
        }
    }
}

/// A column's fallback from another column through a map (market currency from exchange).
#[derive(Debug, Clone)]
pub struct DefaultFrom {
    /// Index of the column the default is looked up by.
    pub column: usize,
    /// Canonical value of that column → this column's default.
    pub map: HashMap<String, String>,
}

/// One column of a contract, compiled.
#[derive(Debug, Clone)]
pub struct Column {
    /// Output name.
    pub name: String,
    /// Logical type.
    pub ty: ColumnType,
    /// A null value is a `required` reject.
    pub required: bool,
    /// Other header names that mean this column.
    pub aliases: Vec<String>,
    /// Bounds for numeric columns.
    pub bounds: Bounds,
    /// Allowed values for enum columns.
    pub domain: Option<EnumDomain>,
    /// Check-digit rule for string columns.
    pub check: Option<Check>,
    /// Longest text expected (sizes VARCHAR in the warehouse).
    pub max_length: Option<usize>,
    /// The key segment, counted from the end (1 = file name), that gives the value when no input
    /// column does.
    pub from_key_segment: Option<usize>,
    /// Default through another column's value.
    pub default_from: Option<DefaultFrom>,
    /// Personal data (an investor's name, an account id): its values never appear in an error,
    /// a log line, an event or a manifest; only the quarantine, which keeps raw records, holds
    /// them.
    pub sensitive: bool,
}

/// The market-value check's factors, fixed by its three columns' decimal types and its
/// tolerances; made only when no product in the check can overflow an i128 for any values those
/// types hold, so that the check on each row needs no overflow tests. Made by
/// `MarketValueFactors::prove`, beside the check's arithmetic in `clean::rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketValueFactors {
    /// 10^(s − s_mv): the market value to the common scale s = max(s_mv, s_par + s_px).
    pub mv: i128,
    /// 10^(s − s_par − s_px): par × price to the common scale.
    pub product: i128,
    /// The absolute tolerance at the common scale, × 100 × 10⁴ (as the difference is).
    pub absolute: i128,
}

/// A record-level rule, compiled to column indexes.
#[derive(Debug, Clone)]
pub enum RecordRule {
    /// `column` before `not_before` is `matured`.
    Matured {
        /// maturity_date.
        column: usize,
        /// as_of_date.
        not_before: usize,
    },
    /// |mv − par × price / 100| ≤ max(relative × expected, absolute).
    MarketValue {
        /// market_value column.
        market_value: usize,
        /// par_value column.
        par_value: usize,
        /// price column.
        price: usize,
        /// Relative tolerance in basis points of 1 (0.01 → 100).
        relative_bp: i128,
        /// Absolute tolerance, at the market value's scale.
        absolute: i128,
        /// Set when the columns' types rule out any overflow: the check then runs unchecked.
        factors: Option<MarketValueFactors>,
    },
    /// low ≤ open ≤ high and low ≤ close ≤ high.
    Ohlc {
        /// open, high, low, close columns.
        open: usize,
        /// high.
        high: usize,
        /// low.
        low: usize,
        /// close.
        close: usize,
    },
}

/// Where a derived column's input comes from: a contract column or an earlier derived column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A contract column, by index.
    Column(usize),
    /// An earlier derived column, by index.
    Derived(usize),
}

/// A derived column, compiled.
#[derive(Debug, Clone)]
pub enum DerivedKind {
    /// 1-based position of an enum value in `order` (Int32); null when not listed.
    Position {
        /// The enum column.
        source: Source,
        /// Canonical value → position.
        order: HashMap<String, i32>,
        /// The same, by the enum column's value index (no hashing per row).
        by_enum: Vec<Option<i32>>,
    },
    /// The label of the first bound the value is below (Utf8).
    Bucket {
        /// An Int32 input.
        source: Source,
        /// Ascending bounds.
        bounds: Vec<i64>,
        /// One more label than bounds.
        labels: Vec<String>,
        /// Label for a null input.
        null_label: Option<String>,
    },
    /// Days from `from` to `to` (Int32).
    DaysBetween {
        /// Start date column.
        from: Source,
        /// End date column.
        to: Source,
    },
}

impl DerivedKind {
    /// A bucket's labels, then its null label: every value it can take, in the order its
    /// [`crate::value::DerivedVal::Label`] keys count them. `None` for other kinds.
    pub fn bucket_labels(&self) -> Option<impl Iterator<Item = &str>> {
        match self {
            DerivedKind::Bucket {
                labels, null_label, ..
            } => Some(labels.iter().chain(null_label).map(String::as_str)),
            _ => None,
        }
    }
}

/// A derived column: its name and how it is computed.
#[derive(Debug, Clone)]
pub struct Derived {
    /// Output name.
    pub name: String,
    /// The computation.
    pub kind: DerivedKind,
}

/// A date taken from the object's file name (BSE's `EQDDMMYY.CSV`).
#[derive(Debug, Clone)]
pub struct FileNameDate {
    /// The column it fills.
    pub column: usize,
    /// Text before the date.
    pub prefix: String,
    /// The date's format.
    pub format: DateFormat,
}

/// A text encoding a vendor profile may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, with or without a BOM.
    Utf8,
    /// CP932 / Windows-31J (WHATWG's Shift_JIS).
    ShiftJis,
}

/// A vendor profile: how one vendor's files map onto the contract.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// The file's text encoding.
    pub encoding: Encoding,
    /// Vendor header (as [`header_key`]) → column index.
    pub headers: HashMap<String, usize>,
    /// Vendor headers (as [`header_key`]) that are known and not used.
    pub ignore: Vec<String>,
    /// One trailing empty header (and field) is dropped (BSE lines end with a comma).
    pub trailing_empty_column: bool,
    /// Column index → constant value when no input or key gives one.
    pub constants: Vec<(usize, String)>,
    /// Dates taken from the file name.
    pub from_file_name: Vec<FileNameDate>,
    /// The date formats in force for this profile.
    pub date_formats: Vec<DateFormat>,
    /// The days (since 1970-01-01) a date may fall on: the contract's `date_range`.
    pub date_range: std::ops::RangeInclusive<i32>,
    /// Per column (by index): a code to cut to its first `to` characters when it has exactly
    /// `from` (J-Quants' 5-character code is the 4-character local code and a check character).
    pub shorten: Vec<Option<Shorten>>,
}

/// A code written longer by one vendor than by the others, cut to the common form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shorten {
    /// The vendor's length, in ASCII characters.
    pub from: usize,
    /// The length kept.
    pub to: usize,
}

/// A compiled data contract.
#[derive(Debug, Clone)]
pub struct Contract {
    /// Dataset name (`investor_holdings`).
    pub dataset: String,
    /// Contract version, part of every output key.
    pub version: String,
    /// One line on what the dataset is.
    pub description: String,
    /// Records or wide.
    pub shape: Shape,
    /// Columns in contract order (the order rules are checked in).
    pub columns: Vec<Column>,
    /// Key columns.
    pub key: Vec<usize>,
    /// The partition column.
    pub partition: usize,
    /// Columns whose sums go into the manifest.
    pub control_totals: Vec<usize>,
    /// Share of rejected records above which a file is `rejected_over_threshold`.
    pub reject_threshold: f64,
    /// Null tokens.
    pub nulls: NullTokens,
    /// Record rules, in order.
    pub record_rules: Vec<RecordRule>,
    /// Derived columns, in order.
    pub derived: Vec<Derived>,
    /// Vendor profiles by name.
    pub profiles: BTreeMap<String, Profile>,
    /// The profile used when none is named.
    pub default_profile: String,
    /// The wide layout, for `shape = "wide"`.
    pub wide: Option<WideSpec>,
    /// The warehouse table's layout hints.
    pub warehouse: WarehouseHints,
}

impl Contract {
    /// Header names as an error or a manifest may show them. A file without a header line has a
    /// record where its header should be: a name that is no header of this contract, in the
    /// position of a column marked `sensitive`, is shown only by its length.
    pub fn shown_header_names(&self, profile: &Profile, names: &[String]) -> Vec<String> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| self.shown_header_name(profile, i, n))
            .collect()
    }

    /// The header name at `position` as an error or a manifest may show it (see
    /// [`Contract::shown_header_names`]).
    pub fn shown_header_name(&self, profile: &Profile, position: usize, name: &str) -> String {
        let sensitive_here = self.columns.get(position).is_some_and(|c| c.sensitive);
        if sensitive_here && self.column_for_header(profile, name.trim()).is_none() {
            format!("(sensitive, {} characters)", name.chars().count())
        } else {
            name.to_string()
        }
    }

    /// Loads and checks a contract file.
    pub fn load(path: &Path) -> Result<Contract, ContractError> {
        let text = std::fs::read_to_string(path).map_err(|source| ContractError::Read {
            file: path.display().to_string(),
            source,
        })?;
        Contract::from_toml(&path.display().to_string(), &text)
    }

    /// Parses and checks a contract from its text; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Contract, ContractError> {
        let raw: RawContract = toml::from_str(text).map_err(|e| ContractError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        compile(raw).map_err(|(section, message)| ContractError::Invalid {
            file: file.to_string(),
            section,
            message,
        })
    }

    /// Index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The column a header field names, as `profile` reads it: the vendor's own header map first,
    /// then the columns' names and aliases, all compared by [`header_key`].
    pub fn column_for_header(&self, profile: &Profile, header: &str) -> Option<usize> {
        let key = header_key(header);
        profile.headers.get(&key).copied().or_else(|| {
            self.columns.iter().position(|c| {
                header_key(&c.name) == key || c.aliases.iter().any(|a| header_key(a) == key)
            })
        })
    }

    /// The profiles a route or a caller names: one name, or candidates separated by commas
    /// (`bse,bse_udiff`), tried in that order against a file's header; the default when `None`.
    pub fn candidates(&self, spec: Option<&str>) -> Result<Vec<&Profile>, String> {
        match spec {
            None => Ok(vec![self.profile(None)?]),
            Some(spec) => spec
                .split(',')
                .map(|name| self.profile(Some(name.trim())))
                .collect(),
        }
    }

    /// The profile called `name`, or the default one; unknown names are an error listing the known.
    pub fn profile(&self, name: Option<&str>) -> Result<&Profile, String> {
        let name = name.unwrap_or(&self.default_profile);
        self.profiles.get(name).ok_or_else(|| {
            format!(
                "dataset {} has no vendor profile `{name}` (known: {})",
                self.dataset,
                self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `resolve` answered before the packed buckets: the map alone.
    fn resolve_by_map(d: &EnumDomain, s: &str) -> Option<u16> {
        if d.case_sensitive {
            d.lookup.get(s.as_bytes()).copied()
        } else {
            d.lookup.get(s.to_lowercase().as_bytes()).copied()
        }
    }

    /// A domain as `compile` builds one, from values and aliases.
    fn domain(values: &[&str], aliases: &[(&str, usize)], case_sensitive: bool) -> EnumDomain {
        let key = |s: &str| EnumDomain::lookup_key(s, case_sensitive);
        let mut lookup = FastMap::default();
        for (i, v) in values.iter().enumerate() {
            lookup.insert(key(v), i as u16);
        }
        for &(a, i) in aliases {
            lookup.insert(key(a), i as u16);
        }
        EnumDomain::new(
            values.iter().map(|v| v.to_string()).collect(),
            lookup,
            case_sensitive,
        )
    }

    const VALUES: [&str; 9] = [
        "bank",
        "AA+",
        "A",
        "mutual_fund",
        "x\0",
        "sixteen_bytes_ok",
        "seventeen_bytes_x",
        "\u{212a}elvin",
        "Ünïcode",
    ];
    const ALIASES: [(&str, usize); 4] = [
        ("HNW", 0),
        ("Aa1", 1),
        ("certificate of deposit", 3),
        ("@[`{", 2),
    ];

    proptest! {
        /// `text_eq` is `==`: on equal text, and on text of one length that differs in one byte
        /// (any byte, at any place: the packed loads overlap), up to past 16 bytes.
        #[test]
        fn text_eq_is_byte_equality(
            a in proptest::collection::vec(any::<u8>(), 0..24),
            at in 0usize..24,
            byte in any::<u8>(),
            other in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let mut b = a.clone();
            prop_assert!(text_eq(&a, &b));
            if !b.is_empty() {
                let n = b.len();
                b[at % n] = byte;
            }
            prop_assert_eq!(text_eq(&a, &b), a == b);
            prop_assert_eq!(text_eq(&a, &other), a == other);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// The packed buckets answer as the map does, case-sensitive or not: on the keys in any
        /// case, on their neighbours (a byte changed, cut, padded with a NUL) and on any text,
        /// with keys of 1 to 22 bytes, an alias past 16 bytes and keys that lower-case out of
        /// or into ASCII.
        #[test]
        fn enum_lookup_agrees_with_the_map(
            pick in 0usize..13,
            flips in proptest::collection::vec(any::<bool>(), 24),
            edit in 0u8..4,
            at in 0usize..24,
            byte in any::<u8>(),
            free in "\\PC{0,18}",
        ) {
            let key = VALUES.iter().copied().chain(ALIASES.iter().map(|a| a.0)).nth(pick);
            let mut text: String = match key {
                Some(k) => k
                    .chars()
                    .zip(flips.iter().cycle())
                    .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
                    .collect(),
                None => free.clone(),
            };
            let mut bytes = text.clone().into_bytes();
            match edit {
                1 if !bytes.is_empty() => {
                    let n = bytes.len();
                    bytes[at % n] = byte;
                }
                2 => bytes.truncate(at % (bytes.len() + 1)),
                3 => bytes.push(0),
                _ => {}
            }
            if let Ok(t) = String::from_utf8(bytes) {
                text = t;
            }
            for case_sensitive in [false, true] {
                let d = domain(&VALUES, &ALIASES, case_sensitive);
                prop_assert_eq!(d.resolve(&text), resolve_by_map(&d, &text), "{:?}", text);
            }
        }
    }

    #[test]
    fn enum_lookup_finds_keys_in_any_ascii_case() {
        let d = domain(&VALUES, &ALIASES, false);
        assert_eq!(d.resolve("BANK"), Some(0));
        assert_eq!(d.resolve("Mutual_Fund"), Some(3));
        assert_eq!(d.resolve("hnw"), Some(0));
        assert_eq!(d.resolve("CERTIFICATE OF DEPOSIT"), Some(3));
        assert_eq!(
            d.resolve("@[`{"),
            Some(2),
            "bytes beside A-Z stay as they are"
        );
        // The Kelvin sign lower-cases to an ASCII `k`: its key is plain `kelvin`.
        assert_eq!(d.resolve("KELVIN"), Some(7));
        assert_eq!(d.resolve("\u{212a}ELVIN"), Some(7));
        assert_eq!(d.resolve("x"), None, "`x\\0` is two bytes");
        assert_eq!(d.resolve("x\0"), Some(4));
        let exact = domain(&VALUES, &ALIASES, true);
        assert_eq!(exact.resolve("AA+"), Some(1));
        assert_eq!(exact.resolve("aa+"), None);
        assert_eq!(exact.resolve("Aa1"), Some(1));
    }

    /// The built-in holdings contract with one line changed.
    fn holdings_with(from: &str, to: &str) -> String {
        let text = BUILTIN
            .iter()
            .find(|(n, _)| *n == "investor_holdings")
            .map(|(_, t)| *t)
            .unwrap_or_default();
        assert!(text.contains(from), "the contract has `{from}`");
        text.replacen(from, to, 1)
    }

    #[test]
    fn each_check_reports_its_section_and_keeps_its_message() {
        let cases = [
            (
                "type = \"date\"",
                "type = \"decimal\"",
                Section::Columns,
                "a decimal needs `precision` and `scale`",
            ),
            (
                "partition = \"as_of_date\"",
                "partition = \"nope\"",
                Section::Layout,
                "partition names unknown column `nope`",
            ),
            (
                "reject_threshold = 0.10",
                "reject_threshold = 2.0",
                Section::Layout,
                "reject_threshold 2 is not between 0 and 1",
            ),
            (
                "default_profile = \"standard\"",
                "default_profile = \"nope\"",
                Section::Profiles,
                "default_profile `nope` is not among the profiles",
            ),
            (
                "distkey = \"security_id\"",
                "distkey = \"nope\"",
                Section::Warehouse,
                "[warehouse] names unknown column `nope`",
            ),
        ];
        for (from, to, section, message) in cases {
            let text = holdings_with(from, to);
            match Contract::from_toml("h.toml", &text) {
                Err(ContractError::Invalid {
                    file,
                    section: s,
                    message: m,
                }) => {
                    assert_eq!((file.as_str(), s), ("h.toml", section), "{to}");
                    assert!(m.contains(message), "{to}: {m}");
                }
                other => panic!("{to}: {other:?}"),
            }
        }
        assert!(matches!(
            Contract::from_toml("h.toml", "dataset = 1"),
            Err(ContractError::Syntax { .. })
        ));
        let unknown = load_dataset("nope", None).map(|_| ()).err();
        assert_eq!(
            unknown.map(|e| e.to_string()).unwrap_or_default(),
            "contract nope.toml: unknown dataset `nope` (known: investor_holdings, market_daily, weekly_series, weekly_trends)"
        );
    }
}
