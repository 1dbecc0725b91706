//! Pipeline events: what every stage publishes to the `pipeline-events` topic (SNS in AWS, a JSON
//! Lines file locally), for the notifier, the loader and the EMR launcher.
//!
//! The schema is versioned ([`EVENT_VERSION`]); fields are only added within a version. One
//! message per input object and outcome:
//!
//! | field | meaning |
//! |---|---|
//! | `event_version` | 1 |
//! | `kind` | `processed` (a manifest with status `ok` or `rejected_over_threshold`), `failed` (a failed manifest, or no manifest: object gone, no route), `handoff` (too big or too slow for Lambda: see `handoff`), `loaded` (in the warehouse and reconciled, or recorded as not loadable: see `load`), `load_failed` (see `error`) |
//! | `stage` | the publisher, e.g. `csv-processor` |
//! | `at` | when, RFC 3339 UTC |
//! | `dataset`, `profile` | as routed; absent when the key has no route |
//! | `source` | `bucket`, `key`, `etag`, `bytes` of the input |
//! | `status` | the manifest's status, when there is a manifest |
//! | `rows_read`, `rows_ok`, `rows_rejected` | from the manifest (0 without one) |
//! | `top_reasons` | up to five `{reason, count}`, most frequent first |
//! | `duration_ms` | time spent on the object |
//! | `output_prefix` | where the dataset's Parquet goes, e.g. `s3://processed/processed/investor_holdings/` |
//! | `manifest` | the manifest's location, when one was written |
//! | `handoff` | for `handoff`: `reason` (`size`, `throughput`, `deadline`), `detail`, `request` (location of the hand-off request) |
//! | `load` | for `loaded`: `table`, `outcome` (`loaded`, `already_loaded`, `not_loaded`), `rows`, `control_totals` as the warehouse summed them |
//! | `error` | what went wrong, naming the object |

use crate::manifest::{Manifest, SourceRef, Status};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;

/// Version of the event layout.
pub const EVENT_VERSION: u32 = 1;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Cleaned; a manifest says `ok` or `rejected_over_threshold`.
    Processed,
    /// Not cleaned: a failed manifest, or no manifest at all (see `error`).
    Failed,
    /// Passed to the EMR launcher.
    Handoff,
    /// In the warehouse, reconciled (see `load`); also a manifest recorded as not loadable.
    Loaded,
    /// Not loaded: the warehouse refused it or its rows did not reconcile (see `error`).
    LoadFailed,
}

impl EventKind {
    /// The name used in the JSON and in message attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Processed => "processed",
            EventKind::Failed => "failed",
            EventKind::Handoff => "handoff",
            EventKind::Loaded => "loaded",
            EventKind::LoadFailed => "load_failed",
        }
    }
}

/// A reject reason and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonCount {
    /// Reason code.
    pub reason: String,
    /// Records rejected for it.
    pub count: u64,
}

/// Why and where an object was handed off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffInfo {
    /// `size`, `throughput` or `deadline`.
    pub reason: String,
    /// The numbers behind the decision.
    pub detail: String,
    /// Location of the hand-off request the EMR launcher reads.
    pub request: String,
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadInfo {
    /// The target table.
    pub table: String,
    /// `loaded`, `already_loaded` (a second delivery, nothing done) or `not_loaded` (the manifest's
    /// status forbids it; recorded in the ledger).
    pub outcome: String,
    /// Rows merged.
    pub rows: u64,
    /// Control totals as the warehouse summed them.
    pub control_totals: std::collections::BTreeMap<String, String>,
}

/// One pipeline event (see the module's table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineEvent {
    /// [`EVENT_VERSION`].
    pub event_version: u32,
    /// The outcome.
    pub kind: EventKind,
    /// The publisher.
    pub stage: String,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Dataset as routed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Vendor profile as routed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The input object.
    pub source: SourceRef,
    /// The manifest's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Records read.
    pub rows_read: u64,
    /// Records clean.
    pub rows_ok: u64,
    /// Records quarantined.
    pub rows_rejected: u64,
    /// Up to five reasons, most frequent first.
    pub top_reasons: Vec<ReasonCount>,
    /// Time spent on the object.
    pub duration_ms: u64,
    /// Where the dataset's Parquet goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_prefix: Option<String>,
    /// The manifest's location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Hand-off details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffInfo>,
    /// For `loaded`: what the load did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadInfo>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PipelineEvent {
    /// An event with no counts, for `stage` and `source`.
    pub fn new(kind: EventKind, stage: &str, source: SourceRef) -> Self {
        PipelineEvent {
            event_version: EVENT_VERSION,
            kind,
            stage: stage.to_string(),
            at: crate::manifest::rfc3339(crate::manifest::now_us()),
            dataset: None,
            profile: None,
            source,
            status: None,
            rows_read: 0,
            rows_ok: 0,
            rows_rejected: 0,
            top_reasons: Vec::new(),
            duration_ms: 0,
            output_prefix: None,
            manifest: None,
            handoff: None,
            load: None,
            error: None,
        }
    }

    /// The event for a written manifest: `processed`, or `failed` when its status is.
    pub fn from_manifest(stage: &str, manifest: &Manifest, location: String) -> Self {
        let kind = match manifest.status {
            Status::Failed => EventKind::Failed,
            Status::Ok | Status::RejectedOverThreshold => EventKind::Processed,
        };
        let mut top: Vec<ReasonCount> = manifest
            .reject_reasons
            .iter()
            .map(|(reason, &count)| ReasonCount {
                reason: reason.clone(),
                count,
            })
            .collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
        top.truncate(5);
        PipelineEvent {
            dataset: Some(manifest.dataset.clone()),
            profile: Some(manifest.profile.clone()),
            status: Some(manifest.status),
            rows_read: manifest.rows_read,
            rows_ok: manifest.rows_ok,
            rows_rejected: manifest.rows_rejected,
            top_reasons: top,
            manifest: Some(location),
            error: manifest.error.clone(),
            ..PipelineEvent::new(kind, stage, manifest.source.clone())
        }
    }
}

/// Where pipeline events go.
pub trait EventSink: Send + Sync {
    /// Publishes one event; an error means it was not delivered (the caller retries the object).
    fn publish(&self, event: &PipelineEvent) -> io::Result<()>;
}

/// Appends each event as one JSON line to a file: the local stand-in for the SNS topic.
#[derive(Debug)]
pub struct JsonLinesSink {
    path: PathBuf,
    lock: Mutex<()>,
}

impl JsonLinesSink {
    /// Events go to `path` (its folder is created on first publish).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonLinesSink {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    /// Reads back every event in the file, oldest first.
    pub fn read_all(&self) -> io::Result<Vec<PipelineEvent>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(io::Error::other))
            .collect()
    }
}

impl EventSink for JsonLinesSink {
    fn publish(&self, event: &PipelineEvent) -> io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        let _guard = self.lock.lock().map_err(|_| io::Error::other("poisoned"))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // One write of a whole line in append mode: readers never see half an event.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?
            .write_all(&line)
    }
}

/// Prints each event as one JSON line on stdout: for trying a function locally without SNS.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl EventSink for StdoutSink {
    fn publish(&self, event: &PipelineEvent) -> io::Result<()> {
        let line = serde_json::to_string(event).map_err(io::Error::other)?;
        writeln!(io::stdout().lock(), "{line}")
    }
}
