//! The manifest: one JSON document per input file, written last (the commit marker).
//!
//! Field names are an interface: the loader, the notifier, the Spark job and users' own tools read
//! them. Decimals are exact strings.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the manifest's layout; bumped when a field changes meaning.
pub const MANIFEST_VERSION: u32 = 1;

/// How a file's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Processed; the loader may load it.
    Ok,
    /// More rejects than the threshold: outputs kept for inspection, not loaded.
    RejectedOverThreshold,
    /// The file as a whole was unusable; no clean output.
    Failed,
}

/// The input object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Bucket (`local` for a local file).
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// ETag or version id: with bucket and key, the input's identity.
    pub etag: String,
    /// Size in bytes as stored (compressed).
    pub bytes: u64,
    /// When the object was written (its S3 event's `eventTime`; a local file's modification
    /// time), RFC 3339 UTC: which of two inputs holding one key is newer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// The S3 event's `sequencer`: the order of two writes of the same key within one instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
}

impl SourceRef {
    /// The input's place in time, as the `_source_order` lineage column holds it: the event time
    /// (microseconds, UTC) and the sequencer left-padded to 32 hex digits, so that text order is
    /// time order, then write order (S3 compares sequencers padded so). `None` when no event time
    /// is known: such rows never supersede, nor are superseded by, other files' rows.
    pub fn order(&self) -> Option<String> {
        let at = self.event_time.as_deref()?;
        let us = crate::manifest::parse_rfc3339_us(at)?;
        let sequencer = self.sequencer.as_deref().unwrap_or("");
        let sequencer: String = sequencer
            .chars()
            .filter(char::is_ascii_hexdigit)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        Some(format!("{}#{sequencer:0>32}", rfc3339(us)))
    }
}

/// One Parquet part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Object key.
    pub key: String,
    /// Rows in the part.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Partition column → value.
    pub partition: BTreeMap<String, String>,
}

/// The quarantine object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineFile {
    /// Object key.
    pub key: String,
    /// Rejected records in it.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// The manifest of one input file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub manifest_version: u32,
    /// Dataset.
    pub dataset: String,
    /// Contract version applied.
    pub contract_version: String,
    /// Vendor profile applied.
    pub profile: String,
    /// The input.
    pub source: SourceRef,
    /// Records read (header excluded, blank lines not counted).
    pub rows_read: u64,
    /// Records in the clean output.
    pub rows_ok: u64,
    /// Records quarantined. rows_read = rows_ok + rows_rejected.
    pub rows_rejected: u64,
    /// Rows written to the clean output (differs from rows_ok for the wide shape, which is made long).
    pub rows_written: u64,
    /// Rejects by reason code.
    pub reject_reasons: BTreeMap<String, u64>,
    /// The Parquet parts.
    pub outputs: Vec<OutputFile>,
    /// The quarantine, when any record was rejected.
    pub quarantine: Option<QuarantineFile>,
    /// Sums of the contract's control-total columns over the clean output, exact decimals as text.
    pub control_totals: BTreeMap<String, String>,
    /// Null values in the clean output of the wide shape (gaps in a series).
    #[serde(default)]
    pub null_values: u64,
    /// Header fields the contract does not know.
    pub unknown_columns: Vec<String>,
    /// What deserves a look though no record was lost: `last_record_unterminated` (1 when the
    /// file's last record has no line end, which is how a truncated plain CSV upload looks).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub warnings: BTreeMap<String, u64>,
    /// The Parquet parts' columns, in their order: what the loader stages (Redshift's COPY maps
    /// Parquet columns by position), whatever contract version wrote them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// For a derived dataset (weekly_trends): the series its history holds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub series: u64,
    /// For a derived dataset: the input manifests it was computed from, each as
    /// `<key>@<finished_at>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// For a derived dataset: per partition value, `<rows>:<sum of the rows' CRC-32>` of the rows
    /// written (`weekly::row_checksum`), which a loader checks the stored rows against.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When the run finished (RFC 3339, UTC).
    pub finished_at: String,
    /// How the run ended.
    pub status: Status,
    /// Why the file failed, naming the object and the cause.
    pub error: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Microseconds since the epoch of an RFC 3339 instant (`2026-11-25T22:15:09.410Z`, any offset).
pub fn parse_rfc3339_us(text: &str) -> Option<i64> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_microsecond())
}

/// Formats microseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn rfc3339(us: i64) -> String {
    // Outside jiff's range (years -9999 to 9999) the nearest end is shown: no real clock is there.
    let t = jiff::Timestamp::from_microsecond(us).unwrap_or(if us < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The first `bytes` bytes of the SHA-256 of `parts`, each ended by a NUL, in hexadecimal: the
/// ids that name outputs and requests after what identifies them.
pub fn digest_hex(parts: &[&str], bytes: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..bytes])
}

/// Now, in microseconds since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_written_as_rfc3339_utc_with_microseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            rfc3339(1_795_644_000_010_123),
            "2026-11-25T22:00:00.010123Z"
        );
        assert_eq!(
            parse_rfc3339_us(&rfc3339(1_795_644_000_010_123)),
            Some(1_795_644_000_010_123)
        );
    }

    #[test]
    fn a_sources_order_sorts_by_time_then_by_sequencer_as_text() {
        let at = |t: &str, seq: Option<&str>| SourceRef {
            event_time: Some(t.into()),
            sequencer: seq.map(String::from),
            ..SourceRef::default()
        };
        let a = at("2026-11-25T22:15:09.410Z", Some("0065A1B2C3D4E5F701")).order();
        let b = at("2026-11-25T22:15:09.410Z", Some("65a1b2c3d4e5f702")).order();
        let c = at("2026-11-25T23:15:09+01:00", None).order();
        assert_eq!(
            a.as_deref(),
            Some("2026-11-25T22:15:09.410000Z#000000000000000065A1B2C3D4E5F701")
        );
        assert!(
            a < b,
            "the same instant: the greater sequencer, padded, is later"
        );
        assert_eq!(
            c.as_deref(),
            Some("2026-11-25T22:15:09.000000Z#00000000000000000000000000000000")
        );
        assert!(c < a);
        assert_eq!(SourceRef::default().order(), None);
        assert_eq!(at("not a time", None).order(), None);
    }
}
