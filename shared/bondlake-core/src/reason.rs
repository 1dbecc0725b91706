//! Reject reason codes: an interface (quarantine files, manifests, metrics). docs/datasets.md lists them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a record was rejected. Exactly one per rejected record: the first rule it breaks.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Reason {
    /// Wrong number of fields.
    Ragged,
    /// A required value is null.
    Required,
    /// A date in none of the accepted formats, or no such day.
    InvalidDate,
    /// Not a number, or not an integer where one is needed.
    InvalidNumber,
    /// Does not fit the decimal's precision and scale.
    Precision,
    /// Outside the column's bounds.
    OutOfRange,
    /// Not one of the allowed values or aliases.
    InvalidEnum,
    /// A CUSIP or ISIN whose check digit (or length) is wrong.
    CheckDigit,
    /// maturity_date before as_of_date.
    Matured,
    /// market_value too far from par_value × price / 100.
    MarketValueMismatch,
    /// low/open/close/high out of order.
    OhlcInconsistent,
    /// Bytes that are not valid in the file's encoding.
    Encoding,
    /// A second record with the same key in the same file.
    DuplicateKey,
    /// A field longer than the configured maximum (bondlake's addition to the list; see README).
    FieldTooLong,
}

impl Reason {
    /// Every code, in the order docs/datasets.md lists them (the declaration order).
    pub const ALL: &'static [Reason] = <Reason as strum::VariantArray>::VARIANTS;

    /// The code as written in quarantine files and manifests.
    pub fn code(self) -> &'static str {
        self.into()
    }

    /// Parses a code; `None` for anything not in the list.
    pub fn from_code(code: &str) -> Option<Reason> {
        code.parse().ok()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are an interface (quarantine files, manifests, metrics): pinned here, in the
    /// order docs/datasets.md lists them, both ways.
    #[test]
    fn codes_are_the_documented_ones_and_parse_back() {
        let codes: Vec<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(
            codes,
            [
                "ragged",
                "required",
                "invalid_date",
                "invalid_number",
                "precision",
                "out_of_range",
                "invalid_enum",
                "check_digit",
                "matured",
                "market_value_mismatch",
                "ohlc_inconsistent",
                "encoding",
                "duplicate_key",
                "field_too_long",
            ]
        );
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(*r));
            assert_eq!(
                serde_json::to_string(r).expect("serialises"),
                format!("\"{}\"", r.code())
            );
        }
        assert_eq!(Reason::from_code("Ragged"), None);
        assert_eq!(Reason::from_code("nope"), None);
    }
}
