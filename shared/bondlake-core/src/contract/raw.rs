//! The contract file as serde reads it: every key and type checked, nothing compiled yet.

use super::{Check, Shape, WarehouseHints, WideSpec};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawContract {
    pub(super) dataset: String,
    pub(super) version: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) shape: Shape,
    pub(super) key: Vec<String>,
    pub(super) partition: String,
    #[serde(default)]
    pub(super) control_totals: Vec<String>,
    #[serde(default = "default_threshold")]
    pub(super) reject_threshold: f64,
    /// Required of every shape a vendor file has (records, wide); a derived contract has none.
    #[serde(default)]
    pub(super) null_tokens: Vec<String>,
    #[serde(default)]
    pub(super) date_formats: Vec<String>,
    /// The earliest and latest date any date column accepts (`YYYY-MM-DD`).
    #[serde(default = "default_date_range")]
    pub(super) date_range: [String; 2],
    #[serde(default)]
    pub(super) default_profile: String,
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, RawProfile>,
    pub(super) columns: Vec<RawColumn>,
    #[serde(default)]
    pub(super) record_rules: Vec<RawRecordRule>,
    #[serde(default)]
    pub(super) derived: Vec<RawDerived>,
    pub(super) wide: Option<WideSpec>,
    #[serde(default)]
    pub(super) warehouse: WarehouseHints,
}

pub(super) fn default_threshold() -> f64 {
    0.10
}

/// Dates a vendor file can mean: year 0 and year 9999 are typing errors, and some readers
/// (pyarrow's `to_pylist()`) fail on years before 1.
pub(super) fn default_date_range() -> [String; 2] {
    ["1900-01-01".into(), "2199-12-31".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawColumn {
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) ty: RawType,
    #[serde(default)]
    pub(super) required: bool,
    #[serde(default)]
    pub(super) aliases: Vec<String>,
    pub(super) precision: Option<u8>,
    pub(super) scale: Option<u8>,
    pub(super) ge: Option<String>,
    pub(super) gt: Option<String>,
    pub(super) le: Option<String>,
    pub(super) lt: Option<String>,
    #[serde(default)]
    pub(super) values: Vec<String>,
    #[serde(default)]
    pub(super) value_aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) case_sensitive: bool,
    pub(super) check: Option<Check>,
    pub(super) max_length: Option<usize>,
    pub(super) from_key_segment: Option<usize>,
    pub(super) default_from: Option<RawDefaultFrom>,
    #[serde(default)]
    pub(super) sensitive: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawType {
    String,
    Enum,
    Date,
    Decimal,
    Int64,
    Double,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaultFrom {
    pub(super) column: String,
    pub(super) map: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum RawRecordRule {
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
pub(super) enum RawDerivedKind {
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
}

#[derive(Debug, Deserialize)]
pub(super) struct RawDerived {
    pub(super) name: String,
    #[serde(flatten)]
    pub(super) kind: RawDerivedKind,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    #[serde(default = "default_encoding")]
    pub(super) encoding: String,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) ignore: Vec<String>,
    #[serde(default)]
    pub(super) trailing_empty_column: bool,
    #[serde(default)]
    pub(super) constants: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) from_file_name: BTreeMap<String, RawFileNameDate>,
    pub(super) date_formats: Option<Vec<String>>,
    #[serde(default)]
    pub(super) shorten: BTreeMap<String, RawShorten>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShorten {
    pub(super) from: usize,
    pub(super) to: usize,
}

pub(super) fn default_encoding() -> String {
    "utf-8".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFileNameDate {
    #[serde(default)]
    pub(super) prefix: String,
    pub(super) format: String,
}
