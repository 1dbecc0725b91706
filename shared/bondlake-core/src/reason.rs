//! Reject reason codes: an interface (quarantine files, manifests, metrics). docs/datasets.md lists them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a record was rejected. Exactly one per rejected record: the first rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Every code, in the order docs/datasets.md lists them.
    pub const ALL: [Reason; 14] = [
        Reason::Ragged,
        Reason::Required,
        Reason::InvalidDate,
        Reason::InvalidNumber,
        Reason::Precision,
        Reason::OutOfRange,
        Reason::InvalidEnum,
        Reason::CheckDigit,
        Reason::Matured,
        Reason::MarketValueMismatch,
        Reason::OhlcInconsistent,
        Reason::Encoding,
        Reason::DuplicateKey,
        Reason::FieldTooLong,
    ];

    /// The code as written in quarantine files and manifests.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Ragged => "ragged",
            Reason::Required => "required",
            Reason::InvalidDate => "invalid_date",
            Reason::InvalidNumber => "invalid_number",
            Reason::Precision => "precision",
            Reason::OutOfRange => "out_of_range",
            Reason::InvalidEnum => "invalid_enum",
            Reason::CheckDigit => "check_digit",
            Reason::Matured => "matured",
            Reason::MarketValueMismatch => "market_value_mismatch",
            Reason::OhlcInconsistent => "ohlc_inconsistent",
            Reason::Encoding => "encoding",
            Reason::DuplicateKey => "duplicate_key",
            Reason::FieldTooLong => "field_too_long",
        }
    }

    /// Parses a code; `None` for anything not in the list.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
