//! A file's plan: which field holds each contract column, and the values from outside the
//! record (object key, file name, profile constants), worked out once from the header and key.

use super::*;

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
