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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContract {
    dataset: String,
    version: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    shape: Shape,
    key: Vec<String>,
    partition: String,
    #[serde(default)]
    control_totals: Vec<String>,
    #[serde(default = "default_threshold")]
    reject_threshold: f64,
    null_tokens: Vec<String>,
    date_formats: Vec<String>,
    /// The earliest and latest date any date column accepts (`YYYY-MM-DD`).
    #[serde(default = "default_date_range")]
    date_range: [String; 2],
    default_profile: String,
    profiles: BTreeMap<String, RawProfile>,
    columns: Vec<RawColumn>,
    #[serde(default)]
    record_rules: Vec<RawRecordRule>,
    #[serde(default)]
    derived: Vec<RawDerived>,
    wide: Option<WideSpec>,
    #[serde(default)]
    warehouse: WarehouseHints,
}

fn default_threshold() -> f64 {
    0.10
}

/// Dates a vendor file can mean: year 0 and year 9999 are typing errors, and some readers
/// (pyarrow's `to_pylist()`) fail on years before 1.
fn default_date_range() -> [String; 2] {
    ["1900-01-01".into(), "2199-12-31".into()]
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    #[serde(rename = "type")]
    ty: RawType,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    aliases: Vec<String>,
    precision: Option<u8>,
    scale: Option<u8>,
    ge: Option<String>,
    gt: Option<String>,
    le: Option<String>,
    lt: Option<String>,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    value_aliases: BTreeMap<String, String>,
    #[serde(default)]
    case_sensitive: bool,
    check: Option<Check>,
    max_length: Option<usize>,
    from_key_segment: Option<usize>,
    default_from: Option<RawDefaultFrom>,
    #[serde(default)]
    sensitive: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawType {
    String,
    Enum,
    Date,
    Decimal,
    Int64,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaultFrom {
    column: String,
    map: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
enum RawRecordRule {
    Matured {
        column: String,
        not_before: String,
    },
    MarketValueMismatch {
        market_value: String,
        par_value: String,
        price: String,
        relative: String,
        absolute: String,
    },
    OhlcInconsistent {
        open: String,
        high: String,
        low: String,
        close: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawDerivedKind {
    Position {
        source: String,
        order: Vec<String>,
    },
    Bucket {
        source: String,
        bounds: Vec<i64>,
        labels: Vec<String>,
        null_label: Option<String>,
    },
    DaysBetween {
        from: String,
        to: String,
    },
    WowChange {
        source: String,
    },
    WowPct {
        source: String,
    },
    MovingAverage {
        source: String,
        weeks: usize,
    },
    Zscore {
        source: String,
        weeks: usize,
    },
}

#[derive(Debug, Deserialize)]
struct RawDerived {
    name: String,
    #[serde(flatten)]
    kind: RawDerivedKind,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default = "default_encoding")]
    encoding: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    trailing_empty_column: bool,
    #[serde(default)]
    constants: BTreeMap<String, String>,
    #[serde(default)]
    from_file_name: BTreeMap<String, RawFileNameDate>,
    date_formats: Option<Vec<String>>,
    #[serde(default)]
    shorten: BTreeMap<String, RawShorten>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShorten {
    from: usize,
    to: usize,
}

fn default_encoding() -> String {
    "utf-8".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileNameDate {
    #[serde(default)]
    prefix: String,
    format: String,
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
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The allowed values of an enum column and how input text maps onto them.
#[derive(Debug, Clone)]
pub struct EnumDomain {
    /// Canonical values, in contract order.
    pub values: Vec<String>,
    lookup: FastMap<Vec<u8>, u16>,
    case_sensitive: bool,
}

impl EnumDomain {
    /// The canonical value's index for an input text, or `None` when it is not allowed.
    #[inline]
    pub fn resolve(&self, s: &str) -> Option<u16> {
        if self.case_sensitive {
            return self.lookup.get(s.as_bytes()).copied();
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
    /// This week's value minus last week's (Decimal like the source).
    WowChange {
        /// The value column.
        source: Source,
    },
    /// Week-on-week change in percent (Float64).
    WowPct {
        /// The value column.
        source: Source,
    },
    /// Mean of the last `weeks` values, rounded half away from zero to the source's scale.
    MovingAverage {
        /// The value column.
        source: Source,
        /// Window length.
        weeks: usize,
    },
    /// (value − mean) / population standard deviation over the last `weeks` values (Float64).
    Zscore {
        /// The value column.
        source: Source,
        /// Window length.
        weeks: usize,
    },
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

/// Checks a parsed contract section by section; each error names the section and the entry.
fn compile(raw: RawContract) -> Result<Contract, (Section, String)> {
    let at = |section: Section| move |message: String| (section, message);
    let mut columns: Vec<Column> = Vec::with_capacity(raw.columns.len());
    for (n, rc) in raw.columns.iter().enumerate() {
        let column = compile_column(rc, n, &columns).map_err(at(Section::Columns))?;
        columns.push(column);
    }
    let Layout {
        key,
        partition,
        control_totals,
    } = compile_layout(&raw, &columns).map_err(at(Section::Layout))?;
    let record_rules = compile_record_rules(&raw.record_rules, &columns, &index_of)
        .map_err(at(Section::RecordRules))?;
    let derived = compile_derived(&raw.derived, &columns).map_err(at(Section::Derived))?;
    let (date_formats, date_range) = compile_dates(&raw).map_err(at(Section::Dates))?;
    let mut profiles = BTreeMap::new();
    for (name, rp) in &raw.profiles {
        let profile = compile_profile(name, rp, &columns, &date_formats, &date_range)
            .map_err(at(Section::Profiles))?;
        profiles.insert(name.clone(), profile);
    }
    if !profiles.contains_key(&raw.default_profile) {
        return Err((
            Section::Profiles,
            format!(
                "default_profile `{}` is not among the profiles",
                raw.default_profile
            ),
        ));
    }
    check_wide(&raw, &columns).map_err(at(Section::Wide))?;
    check_warehouse(&raw, &columns).map_err(at(Section::Warehouse))?;
    Ok(Contract {
        dataset: raw.dataset,
        version: raw.version,
        description: raw.description,
        shape: raw.shape,
        columns,
        key,
        partition,
        control_totals,
        reject_threshold: raw.reject_threshold,
        nulls: NullTokens::new(&raw.null_tokens),
        record_rules,
        derived,
        profiles,
        default_profile: raw.default_profile,
        wide: raw.wide,
        warehouse: raw.warehouse,
    })
}

/// The index of column `name`; `what` says who named it, in the error.
fn index_of(columns: &[Column], name: &str, what: &str) -> Result<usize, String> {
    columns
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| format!("{what} names unknown column `{name}`"))
}

/// One column entry (the `n`-th, 0-based), checked against the columns before it.
fn compile_column(rc: &RawColumn, n: usize, columns: &[Column]) -> Result<Column, String> {
    let at = format!("column `{}` (columns entry {})", rc.name, n + 1);
    if columns.iter().any(|c| c.name == rc.name) {
        return Err(format!("{at}: duplicate column name"));
    }
    if rc.name.is_empty()
        || !rc
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!(
            "{at}: a column name is letters, digits and `_` only"
        ));
    }
    let ty = match rc.ty {
        RawType::String => ColumnType::String,
        RawType::Enum => ColumnType::Enum,
        RawType::Date => ColumnType::Date,
        RawType::Int64 => ColumnType::Int64,
        RawType::Decimal => {
            let (Some(precision), Some(scale)) = (rc.precision, rc.scale) else {
                return Err(format!("{at}: a decimal needs `precision` and `scale`"));
            };
            if precision == 0 || precision > 38 || scale > precision {
                return Err(format!(
                    "{at}: decimal({precision},{scale}) is not valid (precision 1..=38, scale <= precision)"
                ));
            }
            ColumnType::Decimal { precision, scale }
        }
    };
    if !matches!(ty, ColumnType::Decimal { .. }) && (rc.precision.is_some() || rc.scale.is_some()) {
        return Err(format!(
            "{at}: `precision` and `scale` apply to decimals only"
        ));
    }
    let bound = |v: &Option<String>, key: &str| -> Result<Option<i128>, String> {
        let Some(v) = v else { return Ok(None) };
        let parsed = match ty {
            ColumnType::Decimal { precision, scale } => {
                parse_decimal(v.as_bytes(), precision, scale)
            }
            ColumnType::Int64 => parse_int64(v.as_bytes()).map(i128::from),
            _ => return Err(format!("{at}: `{key}` applies to numbers only")),
        };
        parsed.map(Some).map_err(|r| {
            format!("{at}: bound {key} = \"{v}\" does not fit the column's type ({r})")
        })
    };
    let lower = match (bound(&rc.ge, "ge")?, bound(&rc.gt, "gt")?) {
        (Some(_), Some(_)) => return Err(format!("{at}: give `ge` or `gt`, not both")),
        (Some(v), None) => Some((v, true)),
        (None, Some(v)) => Some((v, false)),
        (None, None) => None,
    };
    let upper = match (bound(&rc.le, "le")?, bound(&rc.lt, "lt")?) {
        (Some(_), Some(_)) => return Err(format!("{at}: give `le` or `lt`, not both")),
        (Some(v), None) => Some((v, true)),
        (None, Some(v)) => Some((v, false)),
        (None, None) => None,
    };
    let domain = if ty == ColumnType::Enum {
        if rc.values.is_empty() {
            return Err(format!("{at}: an enum needs `values`"));
        }
        let key = |s: &str| {
            if rc.case_sensitive {
                s.as_bytes().to_vec()
            } else {
                s.to_lowercase().into_bytes()
            }
        };
        let mut lookup = FastMap::default();
        for (i, v) in rc.values.iter().enumerate() {
            if lookup.insert(key(v), i as u16).is_some() {
                return Err(format!("{at}: value `{v}` listed twice"));
            }
        }
        for (alias, target) in &rc.value_aliases {
            let Some(i) = rc.values.iter().position(|v| v == target) else {
                return Err(format!(
                    "{at}: alias `{alias}` maps to `{target}`, which is not in `values`"
                ));
            };
            lookup.insert(key(alias), i as u16);
        }
        Some(EnumDomain {
            values: rc.values.clone(),
            lookup,
            case_sensitive: rc.case_sensitive,
        })
    } else {
        if !rc.values.is_empty() || !rc.value_aliases.is_empty() {
            return Err(format!(
                "{at}: `values` and `value_aliases` apply to enums only"
            ));
        }
        None
    };
    if rc.check.is_some() && ty != ColumnType::String {
        return Err(format!("{at}: `check` applies to string columns only"));
    }
    let default_from = match &rc.default_from {
        None => None,
        Some(d) => Some(DefaultFrom {
            column: index_of(columns, &d.column, &format!("{at}: default_from"))?,
            map: d.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }),
    };
    if rc.from_key_segment == Some(0) {
        return Err(format!(
            "{at}: from_key_segment counts from 1 (the file name)"
        ));
    }
    Ok(Column {
        name: rc.name.clone(),
        ty,
        required: rc.required,
        aliases: rc.aliases.clone(),
        bounds: Bounds { lower, upper },
        domain,
        check: rc.check,
        max_length: rc.max_length,
        from_key_segment: rc.from_key_segment,
        default_from,
        sensitive: rc.sensitive,
    })
}

/// The key, the partition column, the control totals and the reject threshold.
fn compile_layout(raw: &RawContract, columns: &[Column]) -> Result<Layout, String> {
    let key = raw
        .key
        .iter()
        .map(|k| index_of(columns, k, "key"))
        .collect::<Result<Vec<_>, _>>()?;
    let partition = index_of(columns, &raw.partition, "partition")?;
    if !matches!(
        columns[partition].ty,
        ColumnType::Date | ColumnType::Enum | ColumnType::String
    ) {
        return Err(format!(
            "partition column `{}` must be a date or text",
            raw.partition
        ));
    }
    if !columns[partition].required {
        return Err(format!(
            "partition column `{}` must be required",
            raw.partition
        ));
    }
    let control_totals = raw
        .control_totals
        .iter()
        .map(|c| {
            let i = index_of(columns, c, "control_totals")?;
            match columns[i].ty {
                ColumnType::Decimal { .. } | ColumnType::Int64 => Ok(i),
                _ => Err(format!("control_totals: column `{c}` is not a number")),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !(0.0..=1.0).contains(&raw.reject_threshold) {
        return Err(format!(
            "reject_threshold {} is not between 0 and 1",
            raw.reject_threshold
        ));
    }
    Ok(Layout {
        key,
        partition,
        control_totals,
    })
}

/// Where a file's rows are keyed, partitioned and totalled.
struct Layout {
    key: Vec<usize>,
    partition: usize,
    control_totals: Vec<usize>,
}

/// The contract's date formats and the range of dates it accepts.
fn compile_dates(
    raw: &RawContract,
) -> Result<(Vec<DateFormat>, std::ops::RangeInclusive<i32>), String> {
    let date_formats = compile_formats(&raw.date_formats, "date_formats")?;
    let day = |text: &str| {
        let iso = [DateFormat::new("YYYY-MM-DD").map_err(|e| e.to_string())?];
        crate::parse::parse_date(text.as_bytes(), &iso)
            .map_err(|_| format!("date_range: `{text}` is not a YYYY-MM-DD date"))
    };
    let date_range = day(&raw.date_range[0])?..=day(&raw.date_range[1])?;
    if date_range.is_empty() {
        return Err("date_range: the first date is after the second".into());
    }
    Ok((date_formats, date_range))
}

/// One vendor profile, `name`, over the contract's columns, date formats and date range.
fn compile_profile(
    name: &str,
    rp: &RawProfile,
    columns: &[Column],
    date_formats: &[DateFormat],
    date_range: &std::ops::RangeInclusive<i32>,
) -> Result<Profile, String> {
    let at = format!("profile `{name}`");
    let encoding = match rp.encoding.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => Encoding::Utf8,
        "shift_jis" | "shift-jis" | "cp932" | "windows-31j" => Encoding::ShiftJis,
        other => {
            return Err(format!(
                "{at}: unknown encoding `{other}` (utf-8, shift_jis)"
            ));
        }
    };
    let mut headers = HashMap::new();
    for (vendor, column) in &rp.headers {
        let i = index_of(columns, column, &format!("{at}: header `{vendor}`"))?;
        if headers.insert(header_key(vendor), i).is_some() {
            return Err(format!(
                "{at}: two vendor headers read as `{}`",
                header_key(vendor)
            ));
        }
    }
    let constants = rp
        .constants
        .iter()
        .map(|(c, v)| {
            Ok((
                index_of(columns, c, &format!("{at}: constants"))?,
                v.clone(),
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let from_file_name = rp
        .from_file_name
        .iter()
        .map(|(c, spec)| {
            let column = index_of(columns, c, &format!("{at}: from_file_name"))?;
            if columns[column].ty != ColumnType::Date {
                return Err(format!("{at}: from_file_name column `{c}` is not a date"));
            }
            Ok(FileNameDate {
                column,
                prefix: spec.prefix.clone(),
                format: DateFormat::new(&spec.format).map_err(|e| format!("{at}: {e}"))?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let date_formats = match &rp.date_formats {
        Some(f) => compile_formats(f, &format!("{at}: date_formats"))?,
        None => date_formats.to_vec(),
    };
    let mut shorten = vec![None; columns.len()];
    for (c, spec) in &rp.shorten {
        let i = index_of(columns, c, &format!("{at}: shorten"))?;
        if columns[i].ty != ColumnType::String || spec.to == 0 || spec.to >= spec.from {
            return Err(format!(
                "{at}: shorten `{c}` needs a string column and 0 < to < from"
            ));
        }
        shorten[i] = Some(Shorten {
            from: spec.from,
            to: spec.to,
        });
    }
    Ok(Profile {
        name: name.to_string(),
        encoding,
        headers,
        ignore: rp.ignore.iter().map(|h| header_key(h)).collect(),
        trailing_empty_column: rp.trailing_empty_column,
        constants,
        from_file_name,
        date_formats,
        date_range: date_range.clone(),
        shorten,
    })
}

/// The `[wide]` table, present exactly when the shape is wide, naming known columns.
fn check_wide(raw: &RawContract, columns: &[Column]) -> Result<(), String> {
    match (raw.shape, &raw.wide) {
        (Shape::Wide, None) => Err("shape = \"wide\" needs a [wide] table".into()),
        (Shape::Records, Some(_)) => Err("[wide] applies to shape = \"wide\" only".into()),
        (Shape::Wide, Some(w)) => {
            for c in [
                &w.source_column,
                &w.dataset_code_column,
                &w.date_column,
                &w.series_column,
                &w.value_column,
                &w.period_column,
            ] {
                index_of(columns, c, "[wide]")?;
            }
            if crate::parse::weekday_number(&w.week_ends_on).is_none() {
                return Err(format!(
                    "[wide]: week_ends_on `{}` is not a weekday",
                    w.week_ends_on
                ));
            }
            Ok(())
        }
        (Shape::Records, None) => Ok(()),
    }
}

/// The `[warehouse]` table's distribution and sort keys name known columns.
fn check_warehouse(raw: &RawContract, columns: &[Column]) -> Result<(), String> {
    for c in raw.warehouse.distkey.iter().chain(&raw.warehouse.sortkey) {
        index_of(columns, c, "[warehouse]")?;
    }
    Ok(())
}

fn compile_formats(formats: &[String], what: &str) -> Result<Vec<DateFormat>, String> {
    if formats.is_empty() {
        return Err(format!("{what}: at least one date format is needed"));
    }
    formats
        .iter()
        .map(|f| DateFormat::new(f).map_err(|e| format!("{what}: {e}")))
        .collect()
}

type IndexOf = dyn Fn(&[Column], &str, &str) -> Result<usize, String>;

fn compile_record_rules(
    raw: &[RawRecordRule],
    columns: &[Column],
    index_of: &IndexOf,
) -> Result<Vec<RecordRule>, String> {
    let typed = |name: &str, what: &str, want: fn(ColumnType) -> bool| -> Result<usize, String> {
        let i = index_of(columns, name, what)?;
        if want(columns[i].ty) {
            Ok(i)
        } else {
            Err(format!("{what}: column `{name}` has the wrong type"))
        }
    };
    let is_date = |t| t == ColumnType::Date;
    let is_dec = |t| matches!(t, ColumnType::Decimal { .. });
    raw.iter()
        .map(|r| match r {
            RawRecordRule::Matured { column, not_before } => Ok(RecordRule::Matured {
                column: typed(column, "record rule matured", is_date)?,
                not_before: typed(not_before, "record rule matured", is_date)?,
            }),
            RawRecordRule::MarketValueMismatch {
                market_value,
                par_value,
                price,
                relative,
                absolute,
            } => {
                let what = "record rule market_value_mismatch";
                let market_value = typed(market_value, what, is_dec)?;
                let rel = parse_decimal(relative.as_bytes(), 9, 4).map_err(|_| {
                    format!(
                        "{what}: relative = \"{relative}\" is not a decimal with at most 4 places"
                    )
                })?;
                let abs = parse_decimal(absolute.as_bytes(), 38, columns[market_value].ty.scale())
                    .map_err(|_| {
                        format!("{what}: absolute = \"{absolute}\" does not fit market_value")
                    })?;
                Ok(RecordRule::MarketValue {
                    market_value,
                    par_value: typed(par_value, what, is_dec)?,
                    price: typed(price, what, is_dec)?,
                    relative_bp: rel,
                    absolute: abs,
                })
            }
            RawRecordRule::OhlcInconsistent {
                open,
                high,
                low,
                close,
            } => {
                let what = "record rule ohlc_inconsistent";
                let (o, h, l, c) = (
                    typed(open, what, is_dec)?,
                    typed(high, what, is_dec)?,
                    typed(low, what, is_dec)?,
                    typed(close, what, is_dec)?,
                );
                if [o, h, l, c].iter().any(|&i| columns[i].ty != columns[o].ty) {
                    return Err(format!(
                        "{what}: open, high, low and close must share one decimal type"
                    ));
                }
                Ok(RecordRule::Ohlc {
                    open: o,
                    high: h,
                    low: l,
                    close: c,
                })
            }
        })
        .collect()
}

fn compile_derived(raw: &[RawDerived], columns: &[Column]) -> Result<Vec<Derived>, String> {
    let mut out: Vec<Derived> = Vec::new();
    for d in raw {
        let at = format!("derived `{}`", d.name);
        if columns.iter().any(|c| c.name == d.name) || out.iter().any(|o| o.name == d.name) {
            return Err(format!("{at}: name already used"));
        }
        let source = |name: &str| -> Result<Source, String> {
            if let Some(i) = columns.iter().position(|c| c.name == name) {
                Ok(Source::Column(i))
            } else if let Some(i) = out.iter().position(|o| o.name == name) {
                Ok(Source::Derived(i))
            } else {
                Err(format!(
                    "{at}: source `{name}` is neither a column nor an earlier derived column"
                ))
            }
        };
        let kind = match &d.kind {
            RawDerivedKind::Position { source: s, order } => {
                let source = source(s)?;
                let order: HashMap<String, i32> = order
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.clone(), i as i32 + 1))
                    .collect();
                let by_enum = match source {
                    Source::Column(c) => columns[c]
                        .domain
                        .as_ref()
                        .map(|d| d.values.iter().map(|v| order.get(v).copied()).collect())
                        .unwrap_or_default(),
                    Source::Derived(_) => Vec::new(),
                };
                DerivedKind::Position {
                    source,
                    order,
                    by_enum,
                }
            }
            RawDerivedKind::Bucket {
                source: s,
                bounds,
                labels,
                null_label,
            } => {
                if labels.len() != bounds.len() + 1 || !bounds.windows(2).all(|w| w[0] < w[1]) {
                    return Err(format!(
                        "{at}: a bucket needs ascending bounds and one more label than bounds"
                    ));
                }
                DerivedKind::Bucket {
                    source: source(s)?,
                    bounds: bounds.clone(),
                    labels: labels.clone(),
                    null_label: null_label.clone(),
                }
            }
            RawDerivedKind::DaysBetween { from, to } => DerivedKind::DaysBetween {
                from: source(from)?,
                to: source(to)?,
            },
            RawDerivedKind::WowChange { source: s } => {
                DerivedKind::WowChange { source: source(s)? }
            }
            RawDerivedKind::WowPct { source: s } => DerivedKind::WowPct { source: source(s)? },
            RawDerivedKind::MovingAverage { source: s, weeks } => DerivedKind::MovingAverage {
                source: source(s)?,
                weeks: (*weeks).max(1),
            },
            RawDerivedKind::Zscore { source: s, weeks } => DerivedKind::Zscore {
                source: source(s)?,
                weeks: (*weeks).max(2),
            },
        };
        out.push(Derived {
            name: d.name.clone(),
            kind,
        });
    }
    Ok(out)
}

// The contracts shipped in `contracts/`, compiled into the binary so the CLI works from anywhere:
// `pub const BUILTIN: [(&str, &str); N]`, (dataset, TOML text), one per dataset contract file,
// listed by build.rs. A new dataset is a new file there, not a change here.
include!(concat!(env!("OUT_DIR"), "/builtin_contracts.rs"));

/// Loads every dataset's contract (each from `dir` when given, else built in), in BUILTIN order.
pub fn load_all(dir: Option<&Path>) -> Result<Vec<Contract>, ContractError> {
    BUILTIN
        .iter()
        .map(|(name, _)| load_dataset(name, dir))
        .collect()
}

/// Loads a dataset's contract: from `dir/<dataset>.toml` when a directory is given, else the copy
/// built into the binary.
pub fn load_dataset(dataset: &str, dir: Option<&Path>) -> Result<Contract, ContractError> {
    if let Some(dir) = dir {
        return Contract::load(&dir.join(format!("{dataset}.toml")));
    }
    let (name, text) = BUILTIN.iter().find(|(n, _)| *n == dataset).ok_or_else(|| {
        ContractError::UnknownDataset {
            file: format!("{dataset}.toml"),
            dataset: dataset.to_string(),
            known: BUILTIN.map(|(n, _)| n).join(", "),
        }
    })?;
    Contract::from_toml(&format!("contracts/{name}.toml"), text)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "contract nope.toml: unknown dataset `nope` (known: investor_holdings, market_daily, weekly_series)"
        );
    }
}
