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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Bucket (`local` for a local file).
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// ETag or version id: with bucket and key, the input's identity.
    pub etag: String,
    /// Size in bytes as stored (compressed).
    pub bytes: u64,
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
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When the run finished (RFC 3339, UTC).
    pub finished_at: String,
    /// How the run ended.
    pub status: Status,
    /// Why the file failed, naming the object and the cause.
    pub error: Option<String>,
}

/// Formats microseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn rfc3339(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400) as i32;
    let sod = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}.{micros:06}Z",
        crate::parse::format_date(days),
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Now, in microseconds since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
