//! Pipeline events: what every stage publishes to the `pipeline-events` topic (SNS in AWS, a JSON
//! Lines file locally), for the notifier, the loader and the EMR launcher.
//!
//! The schema, its versioning rules and every field are documented once, in
//! `docs/pipeline-events.md` (shown below). [`parse`] is how consumers read an event: unknown fields
//! are ignored, an unknown kind is [`EventKind::Other`], and a newer `event_version` is an
//! [`EventError::UnknownVersion`] to report, not a crash.
//!
#![doc = include_str!("../../../docs/pipeline-events.md")]

use crate::manifest::{Manifest, SourceRef, Status};
use crate::store::ObjectStore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;

/// Version of the event layout.
pub const EVENT_VERSION: u32 = 1;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
    /// Kafka records written to the raw bucket by msk-lander (see `kafka`).
    Landed,
    /// A hand-off submitted to EMR, or started there (see `launch`).
    Launched,
    /// A hand-off's EMR run failed or was cancelled (see `launch` and `error`).
    LaunchFailed,
    /// A hand-off claimed long ago with no manifest yet (see `launch`): EMR's own state-change
    /// events are best effort, so a sweep looks.
    LaunchStuck,
    /// A kind this build does not know (a newer producer within the same version).
    #[serde(other)]
    Other,
}

impl EventKind {
    /// The name used in the JSON and in message attributes.
    pub fn as_str(self) -> &'static str {
        self.into()
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

impl ReasonCount {
    /// The event's `top_reasons` from reason → count: at most five, most frequent first (ties by
    /// name, so the order never depends on a map's).
    pub fn top<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<ReasonCount> {
        let mut top: Vec<ReasonCount> = counts
            .into_iter()
            .map(|(reason, count)| ReasonCount {
                reason: reason.to_string(),
                count,
            })
            .collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
        top.truncate(5);
        top
    }
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

/// What the EMR launcher did with a hand-off, or what EMR reported of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchInfo {
    /// `transient_cluster`, `steps` (a running cluster) or `local`.
    pub backend: String,
    /// `handoff` (one object csv-processor handed off) or `backfill` (raw objects run again).
    #[serde(default = "handoff_work", skip_serializing_if = "is_handoff_work")]
    pub work: String,
    /// The `handoff` event this run is for, or the backfill's id.
    pub handoff_event_id: String,
    /// 1 for the first attempt; a new one only after the previous ended failed or cancelled.
    pub attempt: u32,
    /// The cluster's and step's name, `bondlake-<handoff_event_id>-a<attempt>`: how a state
    /// change maps back to its hand-off.
    pub name: String,
    /// The cluster id (and step id, `j-…/s-…`), or the local run's; empty until known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `SUBMITTED`, or the state EMR reported (`RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`,
    /// `TERMINATED_WITH_ERRORS`).
    pub state: String,
    /// Location of the hand-off request.
    pub request: String,
    /// Where the step's logs are, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

fn handoff_work() -> String {
    "handoff".into()
}

fn is_handoff_work(work: &str) -> bool {
    work == "handoff"
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
    /// Rows of the file not merged because a newer input had already given their keys (a
    /// replayed or late older file, a Kafka record behind a later offset).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub superseded: u64,
    /// Control totals of the merged rows, as the warehouse summed them.
    pub control_totals: std::collections::BTreeMap<String, String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a `landed` event's records came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaInfo {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i64,
    /// The first offset in the batch for this partition.
    pub first_offset: i64,
    /// The last offset in the batch for this partition.
    pub last_offset: i64,
}

/// One pipeline event (see the module's table): the fields every kind carries, and the
/// [`Outcome`] with the payload of its kind. In JSON the outcome is flat: `kind` beside the
/// other fields, and the payload (`handoff`, `load`, `kafka`) as a field of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineEvent {
    /// [`EVENT_VERSION`].
    pub event_version: u32,
    /// The same for every delivery of the same outcome (see [`PipelineEvent::id`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event_id: String,
    /// The outcome, with its kind's payload.
    #[serde(flatten)]
    pub outcome: Outcome,
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
    /// Where the rejected records went, when any were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For the weekly trends: how much of them this run rebuilt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trends: Option<TrendsInfo>,
}

/// What a weekly trends manifest covers, for the team's notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendsInfo {
    /// Series in the history.
    pub series: u64,
    /// Weeks rebuilt.
    pub weeks: u64,
    /// The first and last of them (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub first_week: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    /// The last.
    pub last_week: String,
    /// Rows written (and, in a `loaded` event, rows merged are the load's).
    pub rows: u64,
}

/// What happened to the object, with what only that kind of outcome carries. The JSON's `kind`
/// is the tag; a kind this build does not know reads as [`Outcome::Other`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Cleaned; a manifest says `ok` or `rejected_over_threshold`.
    Processed,
    /// Not cleaned: a failed manifest, or no manifest at all (see `error`).
    Failed,
    /// Passed to the EMR launcher.
    Handoff {
        /// Why, and where the request is.
        handoff: HandoffInfo,
    },
    /// In the warehouse, reconciled; also a manifest recorded as not loadable.
    Loaded {
        /// What the load did.
        load: LoadInfo,
    },
    /// Not loaded: the warehouse refused it or its rows did not reconcile (see `error`).
    LoadFailed,
    /// Kafka records written to the raw bucket by msk-lander.
    Landed {
        /// The topic, partition and offsets.
        kafka: KafkaInfo,
    },
    /// A hand-off submitted to EMR, or started there.
    Launched {
        /// The run.
        launch: LaunchInfo,
    },
    /// A hand-off's EMR run failed or was cancelled (see `error`).
    LaunchFailed {
        /// The run.
        launch: LaunchInfo,
    },
    /// A hand-off claimed long ago with no manifest yet.
    LaunchStuck {
        /// The run.
        launch: LaunchInfo,
    },
    /// A kind this build does not know (a newer producer within the same version).
    #[serde(other)]
    Other,
}

impl Outcome {
    /// The outcome's kind, without its payload.
    pub fn kind(&self) -> EventKind {
        match self {
            Outcome::Processed => EventKind::Processed,
            Outcome::Failed => EventKind::Failed,
            Outcome::Handoff { .. } => EventKind::Handoff,
            Outcome::Loaded { .. } => EventKind::Loaded,
            Outcome::LoadFailed => EventKind::LoadFailed,
            Outcome::Landed { .. } => EventKind::Landed,
            Outcome::Launched { .. } => EventKind::Launched,
            Outcome::LaunchFailed { .. } => EventKind::LaunchFailed,
            Outcome::LaunchStuck { .. } => EventKind::LaunchStuck,
            Outcome::Other => EventKind::Other,
        }
    }
}

impl PipelineEvent {
    /// An event with no counts, for `stage` and `source`.
    pub fn new(outcome: Outcome, stage: &str, source: SourceRef) -> Self {
        PipelineEvent {
            event_version: EVENT_VERSION,
            event_id: String::new(),
            outcome,
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
            quarantine: None,
            error: None,
            trends: None,
        }
    }

    /// The outcome's kind.
    pub fn kind(&self) -> EventKind {
        self.outcome.kind()
    }

    /// The hand-off details, for a `handoff`.
    pub fn handoff(&self) -> Option<&HandoffInfo> {
        match &self.outcome {
            Outcome::Handoff { handoff } => Some(handoff),
            _ => None,
        }
    }

    /// What the load did, for a `loaded`.
    pub fn load(&self) -> Option<&LoadInfo> {
        match &self.outcome {
            Outcome::Loaded { load } => Some(load),
            _ => None,
        }
    }

    /// The topic, partition and offsets, for a `landed`.
    pub fn kafka(&self) -> Option<&KafkaInfo> {
        match &self.outcome {
            Outcome::Landed { kafka } => Some(kafka),
            _ => None,
        }
    }

    /// The EMR run, for `launched`, `launch_failed` and `launch_stuck`.
    pub fn launch(&self) -> Option<&LaunchInfo> {
        match &self.outcome {
            Outcome::Launched { launch }
            | Outcome::LaunchFailed { launch }
            | Outcome::LaunchStuck { launch } => Some(launch),
            _ => None,
        }
    }

    /// The event for the manifest written at `manifest_key` in `store`: `processed`, or `failed`
    /// when its status is.
    pub fn from_manifest(
        stage: &str,
        manifest: &Manifest,
        manifest_key: &str,
        store: &dyn ObjectStore,
    ) -> Self {
        let outcome = match manifest.status {
            Status::Failed => Outcome::Failed,
            Status::Ok | Status::RejectedOverThreshold => Outcome::Processed,
        };
        let top = ReasonCount::top(
            manifest
                .reject_reasons
                .iter()
                .map(|(reason, &count)| (reason.as_str(), count)),
        );
        PipelineEvent {
            dataset: Some(manifest.dataset.clone()),
            profile: Some(manifest.profile.clone()),
            status: Some(manifest.status),
            rows_read: manifest.rows_read,
            rows_ok: manifest.rows_ok,
            rows_rejected: manifest.rows_rejected,
            top_reasons: top,
            manifest: Some(store.locate(manifest_key)),
            quarantine: manifest.quarantine.as_ref().map(|q| store.locate(&q.key)),
            error: manifest.error.clone(),
            // A derived manifest lists its weeks' checksums: the weeks it rebuilt.
            trends: (!manifest.checksums.is_empty()).then(|| TrendsInfo {
                series: manifest.series,
                weeks: manifest.checksums.len() as u64,
                first_week: manifest
                    .checksums
                    .keys()
                    .next()
                    .cloned()
                    .unwrap_or_default(),
                last_week: manifest
                    .checksums
                    .keys()
                    .next_back()
                    .cloned()
                    .unwrap_or_default(),
                rows: manifest.rows_written,
            }),
            ..PipelineEvent::new(outcome, stage, manifest.source.clone())
        }
    }

    /// The event's identity: the same for every delivery of the same outcome, and different for
    /// a different one. It hashes the stage, kind and input version with what the outcome
    /// decided (status, load outcome, offsets), never the time: a replayed Kafka batch or a
    /// redelivered S3 event yields the same id, which is how the notifier drops duplicates.
    pub fn id(&self) -> String {
        if !self.event_id.is_empty() {
            return self.event_id.clone();
        }
        let mut h = Sha256::new();
        let s = &self.source;
        for part in [
            self.stage.as_str(),
            self.kind().as_str(),
            &s.bucket,
            &s.key,
            &s.etag,
            &self.status.map(|s| format!("{s:?}")).unwrap_or_default(),
            self.load().map_or("", |l| l.outcome.as_str()),
            self.handoff().map_or("", |h| h.reason.as_str()),
            &self
                .launch()
                .map(|l| format!("{}/{}/{}", l.handoff_event_id, l.attempt, l.state))
                .unwrap_or_default(),
            &self
                .kafka()
                .map(|k| {
                    format!(
                        "{}/{}/{}-{}",
                        k.topic, k.partition, k.first_offset, k.last_offset
                    )
                })
                .unwrap_or_default(),
        ] {
            h.update(part.as_bytes());
            h.update([0x1f]);
        }
        let digest = h.finalize();
        hex::encode(&digest[..12])
    }

    /// The event as published: JSON, with `event_id` filled in.
    pub fn to_json(&self) -> String {
        let mut sealed = self.clone();
        sealed.event_id = self.id();
        // A struct of strings, numbers and maps of strings: serialising it cannot fail.
        serde_json::to_string(&sealed).unwrap_or_default()
    }
}

/// Why a message on the topic is not a pipeline event this build can read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Not JSON, or JSON without the event's fields.
    #[error("not a pipeline event: {0}")]
    Invalid(String),
    /// A version newer than this build's: upgrade the consumer.
    #[error(
        "pipeline event version {found} is newer than this build reads ({EVENT_VERSION}); upgrade the consumer"
    )]
    UnknownVersion {
        /// The version the message carries.
        found: u64,
    },
}

/// Reads one pipeline event from its JSON. Unknown fields are ignored and an unknown kind is
/// [`EventKind::Other`], so a newer producer within the version is read; a newer version is
/// [`EventError::UnknownVersion`].
pub fn parse(json: &str) -> Result<PipelineEvent, EventError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| EventError::Invalid(e.to_string()))?;
    match value
        .get("event_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v == u64::from(EVENT_VERSION) => {}
        Some(found) => return Err(EventError::UnknownVersion { found }),
        None => return Err(EventError::Invalid("no `event_version`".into())),
    }
    serde_json::from_value(value).map_err(|e| EventError::Invalid(e.to_string()))
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
        let mut line = event.to_json().into_bytes();
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
        writeln!(io::stdout().lock(), "{}", event.to_json())
    }
}

/// Events as JSON lines on stderr: for a command whose stdout is its own answer.
pub struct StderrSink;

impl EventSink for StderrSink {
    fn publish(&self, event: &PipelineEvent) -> io::Result<()> {
        writeln!(io::stderr().lock(), "{}", event.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Message attributes carry `as_str`, the JSON carries serde's name: one spelling.
    #[test]
    fn kind_names_are_the_json_names() {
        use EventKind::*;
        let kinds = [
            Processed,
            Failed,
            Handoff,
            Loaded,
            LoadFailed,
            Landed,
            Launched,
            LaunchFailed,
            LaunchStuck,
            Other,
        ];
        let names = kinds.map(EventKind::as_str);
        assert_eq!(
            names,
            [
                "processed",
                "failed",
                "handoff",
                "loaded",
                "load_failed",
                "landed",
                "launched",
                "launch_failed",
                "launch_stuck",
                "other"
            ]
        );
        for kind in kinds {
            assert_eq!(
                serde_json::to_value(kind).expect("serialises"),
                kind.as_str()
            );
        }
    }

    #[test]
    fn top_reasons_are_five_at_most_most_frequent_first_ties_by_name() {
        let counts = [
            ("ragged", 2),
            ("encoding", 9),
            ("base64", 2),
            ("json", 1),
            ("tombstone", 4),
            ("too_long", 2),
        ];
        let top: Vec<(String, u64)> = ReasonCount::top(counts)
            .into_iter()
            .map(|r| (r.reason, r.count))
            .collect();
        assert_eq!(
            top,
            [
                ("encoding".to_string(), 9),
                ("tombstone".to_string(), 4),
                ("base64".to_string(), 2),
                ("ragged".to_string(), 2),
                ("too_long".to_string(), 2),
            ]
        );
    }
}
