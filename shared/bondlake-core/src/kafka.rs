//! msk-lander's core: a batch of Kafka records into the raw bucket, exactly once in effect.
//!
//! For each topic-partition in a batch, the records past the partition's high-water mark (kept
//! in the processed bucket at `kafka/marks/<topic>/p<partition>.json`) go to one gzip CSV object
//! with the contract's header, at `kafka/<dataset>/<date>/<topic>/p<partition>/<first>.csv.gz` in
//! the raw bucket (the first offset zero-padded to 20 digits, the date that of the first record's
//! timestamp, UTC), created only if absent (`If-None-Match: *`). A retry that the mapping cuts
//! differently finds the object for its first offset already there and lands only what follows
//! it, so each offset is landed once. A record that cannot be decoded is written to
//! `quarantine/kafka/<dataset>/<topic>/p<partition>/<first>.csv.gz` in the processed bucket with
//! its topic, partition, offset and reason, and never blocks its partition. The Kafka topic,
//! partition, offset, timestamp and headers of every landed record become its `_kafka_*` lineage
//! columns, which the contracts declare. One `landed` event per object follows it, then the mark
//! moves; any storage or publish error fails the batch, which the event source mapping retries.

use crate::contract::{self, Contract, Shape};
use crate::events::{EventSink, KafkaInfo, Outcome, PipelineEvent, ReasonCount};
use crate::manifest::SourceRef;
use crate::store::{ObjectStore, Precondition};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::Path;
use std::time::Instant;

/// The publisher name in `landed` events.
pub const STAGE: &str = "msk-lander";

/// The lineage columns every Kafka-fed contract declares, in the order the lander writes them.
pub const LINEAGE: [&str; 5] = [
    "_kafka_topic",
    "_kafka_partition",
    "_kafka_offset",
    "_kafka_timestamp_ms",
    "_kafka_headers",
];

/// The built-in topic table (`contracts/topics.toml`).
pub const BUILTIN_TOPICS: &str = include_str!("../../../contracts/topics.toml");

/// Largest record value the lander accepts (Kafka's own default limit is about 1 MB).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// How a topic's record values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One CSV line in the contract's vendor-column order, no header.
    Csv,
    /// One JSON object keyed by column name.
    Json,
}

/// One row of the topic table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// The Kafka topic.
    pub name: String,
    /// The dataset its records belong to.
    pub dataset: String,
    /// How its values are written.
    pub format: Format,
}

/// Topic → dataset and format (`contracts/topics.toml`).
#[derive(Debug, Clone)]
pub struct Topics {
    topics: Vec<Topic>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    #[serde(default)]
    topic: Vec<Topic>,
}

impl Topics {
    /// Reads a topic table; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Topics, LandError> {
        let file: TopicsFile =
            toml::from_str(text).map_err(|e| LandError::Config(format!("{origin}: {e}")))?;
        for (i, t) in file.topic.iter().enumerate() {
            if !is_topic_name(&t.name) {
                return Err(LandError::Config(format!(
                    "{origin}: topic {}: `{}` is not a Kafka topic name ([A-Za-z0-9._-], 1 to 249 characters)",
                    i + 1,
                    t.name
                )));
            }
            if file.topic[..i].iter().any(|o| o.name == t.name) {
                return Err(LandError::Config(format!(
                    "{origin}: topic `{}` is listed twice",
                    t.name
                )));
            }
        }
        Ok(Topics { topics: file.topic })
    }

    /// The built-in table.
    pub fn builtin() -> Topics {
        // A test parses BUILTIN_TOPICS, so this cannot fail in a released binary.
        Topics::from_toml(BUILTIN_TOPICS, "built-in topics").unwrap_or_else(|e| panic!("{e}"))
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// Every entry, in file order.
    pub fn all(&self) -> &[Topic] {
        &self.topics
    }
}

fn is_topic_name(s: &str) -> bool {
    (1..=249).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One Kafka record as the event source mapping delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i64,
    /// The offset.
    pub offset: i64,
    /// The record's timestamp, milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The value, base64-encoded as MSK delivers it; `None` for a tombstone.
    pub value: Option<String>,
    /// Headers in record order (a name may repeat).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Why the event's record could not be read (it is quarantined as `malformed`).
    pub malformed: Option<String>,
}

/// Why a record was quarantined instead of landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poison {
    /// Its topic is not in the topic table.
    UnknownTopic,
    /// No value (a tombstone).
    Tombstone,
    /// The value is not base64.
    Base64,
    /// The value is larger than [`MAX_VALUE_BYTES`].
    TooLong,
    /// The value is not UTF-8.
    Encoding,
    /// A CSV value that is not exactly one line of the contract's width.
    Ragged,
    /// A JSON value that is not an object.
    Json,
    /// A JSON field holding an object or an array.
    JsonType,
    /// The event's record itself does not parse (a null header value, a field of the wrong
    /// type).
    Malformed,
}

impl Poison {
    /// The reason code written to the quarantine and the event.
    pub fn code(self) -> &'static str {
        match self {
            Poison::UnknownTopic => "unknown_topic",
            Poison::Tombstone => "tombstone",
            Poison::Base64 => "base64",
            Poison::TooLong => "too_long",
            Poison::Encoding => "encoding",
            Poison::Ragged => "ragged",
            Poison::Json => "json",
            Poison::JsonType => "json_type",
            Poison::Malformed => "malformed",
        }
    }
}

/// What stops a batch (the mapping retries it).
#[derive(Debug, thiserror::Error)]
pub enum LandError {
    /// The topic table or a contract is unusable.
    #[error("{0}")]
    Config(String),
    /// Writing an object failed.
    #[error("writing {location}: {source}")]
    Storage {
        /// Where.
        location: String,
        /// Why.
        source: io::Error,
    },
    /// Publishing a `landed` event failed.
    #[error("publishing the landed event for {location}: {source}")]
    Publish {
        /// The object it announces.
        location: String,
        /// Why.
        source: io::Error,
    },
}

impl LandError {
    /// Whether retrying the batch can help: publishing, and storage failures of a retryable
    /// kind; not configuration, nor a bucket that refuses the lander's writes.
    pub fn is_retryable(&self) -> bool {
        match self {
            LandError::Config(_) => false,
            LandError::Storage { source, .. } => {
                crate::store::StorageKind::of(source).is_retryable()
            }
            LandError::Publish { .. } => true,
        }
    }
}

/// A Kafka-fed dataset: its contract and the columns a record's value holds.
#[derive(Debug)]
struct Target {
    contract: Contract,
    vendor_columns: Vec<String>,
}

/// Lands batches of Kafka records (see the module's documentation).
#[derive(Debug)]
pub struct Lander {
    topics: Topics,
    targets: HashMap<String, Target>,
    raw_bucket: String,
}

/// What landing one topic-partition of a batch wrote.
#[derive(Debug, Clone)]
pub struct Landed {
    /// Its `landed` event (already published).
    pub event: PipelineEvent,
    /// The raw object's key, when any record landed.
    pub key: Option<String>,
    /// The quarantine object's key, when any record was poison.
    pub quarantine_key: Option<String>,
}

impl Lander {
    /// The topic `name` of the topic table, with its dataset's contract and the vendor columns
    /// its records carry, in order.
    pub fn topic_target(&self, name: &str) -> Result<(&Topic, &Contract, &[String]), LandError> {
        let topic = self.topics.get(name).ok_or_else(|| {
            LandError::Config(format!(
                "topic `{}` is not in the topic table (known: {})",
                name,
                self.topics
                    .all()
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let target = self
            .targets
            .get(&topic.dataset)
            .ok_or_else(|| LandError::Config(format!("no contract for {}", topic.dataset)))?;
        let contract = &target.contract;
        Ok((topic, contract, &target.vendor_columns))
    }

    /// A lander for `topics`, with contracts from `contracts_dir` (or built in); `raw_bucket`
    /// names the raw bucket in events. Every dataset the table names must be a records-shaped
    /// contract declaring the [`LINEAGE`] columns.
    pub fn new(
        topics: Topics,
        contracts_dir: Option<&Path>,
        raw_bucket: &str,
    ) -> Result<Lander, LandError> {
        let mut targets = HashMap::new();
        for t in topics.all() {
            if targets.contains_key(&t.dataset) {
                continue;
            }
            let contract = contract::load_dataset(&t.dataset, contracts_dir)
                .map_err(|e| LandError::Config(format!("topic `{}`: {e}", t.name)))?;
            if contract.shape != Shape::Records {
                return Err(LandError::Config(format!(
                    "topic `{}`: dataset {} is wide (one row per date, a column per series); Kafka records carry one record each, so only records-shaped datasets can be fed",
                    t.name, t.dataset
                )));
            }
            let names: Vec<&str> = contract.columns.iter().map(|c| c.name.as_str()).collect();
            if let Some(missing) = LINEAGE.iter().find(|l| !names.contains(l)) {
                return Err(LandError::Config(format!(
                    "topic `{}`: contract {} does not declare the lineage column `{missing}` (see contracts/investor_holdings.toml)",
                    t.name, t.dataset
                )));
            }
            let vendor_columns = names
                .iter()
                .filter(|n| !LINEAGE.contains(n))
                .map(|n| n.to_string())
                .collect();
            targets.insert(
                t.dataset.clone(),
                Target {
                    contract,
                    vendor_columns,
                },
            );
        }
        Ok(Lander {
            topics,
            targets,
            raw_bucket: raw_bucket.to_string(),
        })
    }

    /// The topic table.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The columns a record's value holds for `dataset`, in order (the contract's columns without
    /// the lineage columns).
    pub fn vendor_columns(&self, dataset: &str) -> Option<&[String]> {
        self.targets
            .get(dataset)
            .map(|t| t.vendor_columns.as_slice())
    }

    /// Lands one batch as the event source mapping delivers it: per topic-partition, the records
    /// past the partition's high-water mark (earlier ones are already landed, whatever the
    /// batch boundaries were then), as objects keyed by their first offset and created only if
    /// absent, then the `landed` event, then the mark. An empty batch writes nothing.
    pub fn land(
        &self,
        records: &[KafkaRecord],
        raw: &dyn ObjectStore,
        processed: &dyn ObjectStore,
        events: &dyn EventSink,
    ) -> Result<Vec<Landed>, LandError> {
        self.land_batch(records, raw, processed, events, Mode::Live)
    }

    /// Lands a batch the mapping once gave up on (from its on-failure destination): below the
    /// high-water mark, so the mark neither drops nor moves; an object that already holds these
    /// offsets (an attempt that got that far) is not written twice.
    pub fn replay(
        &self,
        records: &[KafkaRecord],
        raw: &dyn ObjectStore,
        processed: &dyn ObjectStore,
        events: &dyn EventSink,
    ) -> Result<Vec<Landed>, LandError> {
        self.land_batch(records, raw, processed, events, Mode::Replay)
    }

    fn land_batch(
        &self,
        records: &[KafkaRecord],
        raw: &dyn ObjectStore,
        processed: &dyn ObjectStore,
        events: &dyn EventSink,
        mode: Mode,
    ) -> Result<Vec<Landed>, LandError> {
        let mut groups: BTreeMap<(&str, i64), Vec<&KafkaRecord>> = BTreeMap::new();
        for r in records {
            groups
                .entry((r.topic.as_str(), r.partition))
                .or_default()
                .push(r);
        }
        let mut out = Vec::with_capacity(groups.len());
        for ((topic, partition), mut group) in groups {
            group.sort_by_key(|r| r.offset);
            // The mapping never repeats an offset in a batch; if it did, the record is the same.
            group.dedup_by_key(|r| r.offset);
            out.extend(self.land_group(topic, partition, &group, raw, processed, events, mode)?);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn land_group(
        &self,
        topic: &str,
        partition: i64,
        group: &[&KafkaRecord],
        raw: &dyn ObjectStore,
        processed: &dyn ObjectStore,
        events: &dyn EventSink,
        mode: Mode,
    ) -> Result<Vec<Landed>, LandError> {
        let mark_key = format!("{MARKS_PREFIX}{}/p{partition}.json", sanitize(topic));
        let mark = match mode {
            Mode::Live => read_mark(processed, &mark_key)?,
            Mode::Replay => None,
        };
        let mut todo: Vec<&KafkaRecord> = group
            .iter()
            .copied()
            .filter(|r| mark.as_ref().is_none_or(|m| r.offset > m.last_offset))
            .collect();
        if todo.len() < group.len() {
            tracing::info!(
                topic,
                partition,
                skipped = group.len() - todo.len(),
                "records at or below the high-water mark: already landed"
            );
        }
        let mut out = Vec::new();
        let mut high: Option<i64> = None;
        while let Some(first) = todo.first().map(|r| r.offset) {
            let started = Instant::now();
            let span = self.build(topic, partition, &todo)?;
            // The raw object claims the span; with no good record, the quarantine object does.
            let (claim, rest) = match (&span.rows, &span.poison) {
                (Some(rows), poison) => (
                    (raw, span.key.as_str(), rows),
                    poison
                        .as_ref()
                        .map(|p| (processed, span.quarantine_key.as_str(), p)),
                ),
                (None, Some(poison)) => ((processed, span.quarantine_key.as_str(), poison), None),
                (None, None) => {
                    return Err(LandError::Config("an empty topic-partition span".into()));
                }
            };
            let (store, key, bytes) = claim;
            let last = if store
                .put_if(key, bytes, Precondition::Absent)
                .map_err(|e| storage(key, store, e))?
            {
                if let Some((store, key, bytes)) = rest {
                    // Written by another attempt only if it held the same records: same bytes.
                    store
                        .put_if(key, bytes, Precondition::Absent)
                        .map_err(|e| storage(key, store, e))?;
                }
                todo.last().map_or(first, |r| r.offset)
            } else {
                // An earlier attempt, cut otherwise, landed a span from this offset: it ends
                // where its objects' last record does. Its records are told again (the
                // notifier drops a notice it has sent), the rest land after it.
                let end = span_end(raw, processed, &span, self.offset_column(topic))?;
                if end < first {
                    return Err(storage(
                        key,
                        store,
                        io::Error::other(format!(
                            "the object for offsets from {first} holds only earlier offsets (to {end})"
                        )),
                    ));
                }
                tracing::info!(
                    topic,
                    partition,
                    first,
                    end,
                    "span landed by an earlier attempt"
                );
                todo.retain(|r| r.offset <= end);
                end
            };
            let told: Vec<&KafkaRecord> =
                todo.iter().copied().filter(|r| r.offset <= last).collect();
            let mut landed = if told.len() == span.records {
                span
            } else {
                self.build(topic, partition, &told)?
            };
            landed.event.duration_ms = started.elapsed().as_millis() as u64;
            if landed.poison.is_some() {
                landed.event.quarantine = Some(processed.locate(&landed.quarantine_key));
            }
            events
                .publish(&landed.event)
                .map_err(|source| LandError::Publish {
                    location: landed.event.source.key.clone(),
                    source,
                })?;
            out.push(Landed {
                event: landed.event,
                key: landed.rows.map(|_| landed.key),
                quarantine_key: landed.poison.map(|_| landed.quarantine_key),
            });
            high = Some(last);
            todo = group
                .iter()
                .copied()
                .filter(|r| {
                    r.offset > last && mark.as_ref().is_none_or(|m| r.offset > m.last_offset)
                })
                .collect();
        }
        if let (Mode::Live, Some(high)) = (mode, high) {
            advance_mark(processed, &mark_key, mark.as_ref(), topic, partition, high)?;
        }
        Ok(out)
    }

    /// Where `_kafka_offset` sits in a topic's raw objects.
    fn offset_column(&self, topic: &str) -> Option<usize> {
        let dataset = &self.topics.get(topic)?.dataset;
        Some(self.targets.get(dataset)?.vendor_columns.len() + 2)
    }

    /// The objects one span of records makes (not written).
    fn build(
        &self,
        topic: &str,
        partition: i64,
        group: &[&KafkaRecord],
    ) -> Result<Span, LandError> {
        let (first, last) = match (group.first(), group.last()) {
            (Some(f), Some(l)) => (f.offset, l.offset),
            _ => return Err(LandError::Config("an empty topic-partition group".into())),
        };
        let entry = self.topics.get(topic);
        let target = entry.and_then(|t| self.targets.get(&t.dataset));
        let dataset = entry.map_or("_unrouted", |t| t.dataset.as_str());
        let safe_topic = sanitize(topic);
        // Keyed by the first offset only: a retried batch cut elsewhere claims the same key.
        let span = format!("p{partition}/{first:020}.csv.gz");
        let date = group[0].timestamp_ms.div_euclid(86_400_000);
        let key = format!(
            "{RAW_PREFIX}{dataset}/{}/{safe_topic}/{span}",
            crate::parse::format_date(date as i32)
        );
        let quarantine_key = format!("quarantine/kafka/{dataset}/{safe_topic}/{span}");

        let mut rows = csv_gz();
        let mut poison = csv_gz();
        let memory = |e: csv::Error| LandError::Config(format!("writing CSV in memory: {e}"));
        poison.write_record(QUARANTINE_HEADER).map_err(memory)?;
        if let Some(target) = target {
            let header = target
                .vendor_columns
                .iter()
                .map(String::as_str)
                .chain(LINEAGE);
            rows.write_record(header).map_err(memory)?;
        }
        let mut landed = 0u64;
        let mut reasons: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut fields: Vec<String> = Vec::new();
        for r in group {
            let decoded = match (entry, target, &r.malformed) {
                (_, _, Some(why)) => Err((Poison::Malformed, why.clone())),
                (Some(t), Some(target), None) => {
                    decode(r, t.format, &target.vendor_columns, &mut fields)
                }
                _ => Err((
                    Poison::UnknownTopic,
                    format!("topic `{topic}` is not in the topic table"),
                )),
            };
            match decoded {
                Ok(()) => {
                    fields.push(r.topic.clone());
                    fields.push(r.partition.to_string());
                    fields.push(r.offset.to_string());
                    fields.push(r.timestamp_ms.to_string());
                    fields.push(headers_json(&r.headers));
                    rows.write_record(&fields).map_err(memory)?;
                    landed += 1;
                }
                Err((reason, detail)) => {
                    *reasons.entry(reason.code()).or_default() += 1;
                    poison
                        .write_record([
                            r.topic.as_str(),
                            &r.partition.to_string(),
                            &r.offset.to_string(),
                            &r.timestamp_ms.to_string(),
                            reason.code(),
                            &detail,
                            r.value.as_deref().unwrap_or(""),
                        ])
                        .map_err(memory)?;
                }
            }
        }
        let rejected = group.len() as u64 - landed;
        let poison = if rejected > 0 {
            Some(finish(poison, &quarantine_key)?)
        } else {
            None
        };
        let rows = if landed > 0 {
            Some(finish(rows, &key)?)
        } else {
            None
        };
        let mut source = SourceRef {
            bucket: self.raw_bucket.clone(),
            key: key.clone(),
            ..Default::default()
        };
        if let Some(bytes) = &rows {
            source.etag = format!("sha256:{}", hex::encode(&Sha256::digest(bytes)[..16]));
            source.bytes = bytes.len() as u64;
        }
        let event = PipelineEvent {
            dataset: entry.map(|t| t.dataset.clone()),
            rows_read: group.len() as u64,
            rows_ok: landed,
            rows_rejected: rejected,
            top_reasons: ReasonCount::top(reasons),
            ..PipelineEvent::new(
                Outcome::Landed {
                    kafka: KafkaInfo {
                        topic: topic.to_string(),
                        partition,
                        first_offset: first,
                        last_offset: last,
                    },
                },
                STAGE,
                source,
            )
        };
        Ok(Span {
            key,
            quarantine_key,
            rows,
            poison,
            event,
            records: group.len(),
        })
    }
}

/// How a batch is landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As the mapping delivers it: the partition's high-water mark filters and then moves.
    Live,
    /// A batch the mapping gave up on: below the mark, which stays.
    Replay,
}

/// One span of a partition's records, as objects not yet written.
struct Span {
    key: String,
    quarantine_key: String,
    rows: Option<Vec<u8>>,
    poison: Option<Vec<u8>>,
    event: PipelineEvent,
    records: usize,
}

/// The quarantine's columns.
const QUARANTINE_HEADER: [&str; 7] = [
    "topic",
    "partition",
    "offset",
    "timestamp_ms",
    "reason",
    "detail",
    "value_base64",
];

/// Where the lander writes in the raw bucket: only files under it may carry the lineage columns.
pub const RAW_PREFIX: &str = "kafka/";

/// Where the lander keeps each topic-partition's high-water mark (the last offset landed), in
/// the processed bucket: `kafka/marks/<topic>/p<partition>.json`.
pub const MARKS_PREFIX: &str = "kafka/marks/";

/// A topic-partition's high-water mark as stored.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
struct Mark {
    topic: String,
    partition: i64,
    last_offset: i64,
    /// The object's version, for the conditional write that moves it (not stored).
    #[serde(skip)]
    etag: String,
}

fn read_mark(store: &dyn ObjectStore, key: &str) -> Result<Option<Mark>, LandError> {
    let object = match store.get(key, None) {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(storage(key, store, e)),
    };
    let mut text = Vec::new();
    let etag = object.etag.clone();
    let mut body = object.body;
    body.read_to_end(&mut text)
        .map_err(|e| storage(key, store, e))?;
    let mark: Mark = serde_json::from_slice(&text).map_err(|e| {
        LandError::Config(format!(
            "{}: not a high-water mark ({e}); fix or delete it",
            store.locate(key)
        ))
    })?;
    Ok(Some(Mark { etag, ..mark }))
}

/// Moves the mark to `high` with a conditional write: if another lander moved it meanwhile, the
/// mark is read again and kept when it is already as far.
fn advance_mark(
    store: &dyn ObjectStore,
    key: &str,
    read: Option<&Mark>,
    topic: &str,
    partition: i64,
    high: i64,
) -> Result<(), LandError> {
    let mut current = read.cloned();
    for _ in 0..5 {
        if current.as_ref().is_some_and(|m| m.last_offset >= high) {
            return Ok(());
        }
        let mark = Mark {
            topic: topic.to_string(),
            partition,
            last_offset: high,
            etag: String::new(),
        };
        let bytes = serde_json::to_vec(&mark).map_err(|e| LandError::Config(e.to_string()))?;
        let condition = match &current {
            Some(m) => Precondition::Matches(&m.etag),
            None => Precondition::Absent,
        };
        if store
            .put_if(key, &bytes, condition)
            .map_err(|e| storage(key, store, e))?
        {
            return Ok(());
        }
        current = read_mark(store, key)?;
    }
    Err(storage(
        key,
        store,
        io::Error::other("the high-water mark kept moving under concurrent landers"),
    ))
}

/// The last offset the objects of an already-landed span hold (its raw object's last
/// `_kafka_offset`, its quarantine's last offset, whichever is later).
fn span_end(
    raw: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    span: &Span,
    offset_column: Option<usize>,
) -> Result<i64, LandError> {
    let mut end = None;
    for (store, key, column) in [
        (raw, span.key.as_str(), offset_column),
        (processed, span.quarantine_key.as_str(), Some(2)),
    ] {
        let Some(column) = column else { continue };
        let object = match store.get(key, None) {
            Ok(o) => o,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(storage(key, store, e)),
        };
        let mut reader = csv::Reader::from_reader(flate2::read::MultiGzDecoder::new(object.body));
        for record in reader.records() {
            let record = record.map_err(|e| storage(key, store, io::Error::other(e)))?;
            if let Some(offset) = record.get(column).and_then(|o| o.parse::<i64>().ok()) {
                end = end.max(Some(offset));
            }
        }
    }
    end.ok_or_else(|| {
        storage(
            &span.key,
            raw,
            io::Error::other("another writer claimed this span, but its objects hold no offsets"),
        )
    })
}

/// A CSV writer into a gzip stream whose bytes depend only on what is written (gzip's header
/// carries no time or name here).
fn csv_gz() -> csv::Writer<GzEncoder<Vec<u8>>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(GzEncoder::new(Vec::new(), Compression::default()))
}

fn finish(w: csv::Writer<GzEncoder<Vec<u8>>>, key: &str) -> Result<Vec<u8>, LandError> {
    let memory = |e: io::Error| LandError::Config(format!("{key}: compressing in memory: {e}"));
    w.into_inner()
        .map_err(|e| memory(e.into_error()))?
        .finish()
        .map_err(memory)
}

fn storage(key: &str, store: &dyn ObjectStore, source: io::Error) -> LandError {
    LandError::Storage {
        location: store.locate(key),
        source,
    }
}

/// A topic name as a key segment (Kafka allows only these characters; a record claiming
/// another name cannot escape its folder).
fn sanitize(topic: &str) -> String {
    if is_topic_name(topic) {
        topic.to_string()
    } else {
        topic
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// The headers as a JSON array of `[name, value]` pairs; a value that is not UTF-8 is written
/// as `base64:` and its base64.
pub(crate) fn headers_json(headers: &[(String, Vec<u8>)]) -> String {
    if headers.is_empty() {
        return String::new();
    }
    let pairs: Vec<[String; 2]> = headers
        .iter()
        .map(|(name, value)| {
            let v = match std::str::from_utf8(value) {
                Ok(s) => s.to_string(),
                Err(_) => format!("base64:{}", BASE64.encode(value)),
            };
            [name.clone(), v]
        })
        .collect();
    serde_json::to_string(&pairs).unwrap_or_default()
}

/// Decodes a record's value into `fields` (the vendor columns, in order), or says why not.
fn decode(
    r: &KafkaRecord,
    format: Format,
    columns: &[String],
    fields: &mut Vec<String>,
) -> Result<(), (Poison, String)> {
    fields.clear();
    let encoded = r
        .value
        .as_deref()
        .ok_or((Poison::Tombstone, "the record has no value".to_string()))?;
    if encoded.len() / 4 * 3 > MAX_VALUE_BYTES {
        return Err((
            Poison::TooLong,
            format!(
                "the value is about {} bytes; at most {MAX_VALUE_BYTES} are accepted",
                encoded.len() / 4 * 3
            ),
        ));
    }
    let bytes = BASE64
        .decode(encoded.trim())
        .map_err(|e| (Poison::Base64, format!("the value is not base64: {e}")))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        (
            Poison::Encoding,
            format!(
                "the value is not UTF-8 (invalid byte at {})",
                e.valid_up_to()
            ),
        )
    })?;
    match format {
        Format::Csv => decode_csv(text, columns, fields),
        Format::Json => decode_json(text, columns, fields),
    }
}

fn decode_csv(
    text: &str,
    columns: &[String],
    fields: &mut Vec<String>,
) -> Result<(), (Poison, String)> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut records = reader.records();
    let record = match records.next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err((Poison::Ragged, format!("not CSV: {e}"))),
        None => return Err((Poison::Ragged, "the value is empty".to_string())),
    };
    if records.next().is_some() {
        return Err((
            Poison::Ragged,
            "the value holds more than one CSV line".to_string(),
        ));
    }
    if record.len() != columns.len() {
        return Err((
            Poison::Ragged,
            format!(
                "{} fields; the topic's CSV format has {} ({}{})",
                record.len(),
                columns.len(),
                columns[..columns.len().min(3)].join(", "),
                if columns.len() > 3 { ", ..." } else { "" }
            ),
        ));
    }
    fields.extend(record.iter().map(str::to_string));
    Ok(())
}

fn decode_json(
    text: &str,
    columns: &[String],
    fields: &mut Vec<String>,
) -> Result<(), (Poison, String)> {
    let object: HashMap<&str, &RawValue> = serde_json::from_str(text)
        .map_err(|e| (Poison::Json, format!("not a JSON object: {e}")))?;
    for c in columns {
        let raw = object.get(c.as_str()).copied().or_else(|| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(c))
                .map(|(_, v)| *v)
        });
        let value = match raw.map(RawValue::get) {
            None | Some("null") => String::new(),
            Some(s) if s.starts_with('"') => serde_json::from_str::<String>(s)
                .map_err(|e| (Poison::Json, format!("`{c}`: {e}")))?,
            Some(s) if s.starts_with('{') || s.starts_with('[') => {
                return Err((
                    Poison::JsonType,
                    format!("`{c}` holds an object or array, not a value"),
                ));
            }
            // Numbers and booleans exactly as written: 1234567.89 stays 1234567.89.
            Some(s) => s.to_string(),
        };
        fields.push(value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::JsonLinesSink;
    use crate::store::LocalStore;

    fn record(topic: &str, partition: i64, offset: i64, value: Option<&[u8]>) -> KafkaRecord {
        KafkaRecord {
            topic: topic.into(),
            partition,
            offset,
            timestamp_ms: 1_764_028_800_000 + offset, // 2025-11-25
            value: value.map(|v| BASE64.encode(v)),
            headers: vec![("trace".into(), b"t-1".to_vec())],
            malformed: None,
        }
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_string(&mut s)
            .expect("gzip");
        s
    }

    #[test]
    fn the_builtin_table_parses_and_every_dataset_in_it_can_be_fed() {
        let lander = Lander::new(Topics::builtin(), None, "raw").expect("lander");
        assert_eq!(lander.topics().all().len(), 3);
        let cols = lander
            .vendor_columns("investor_holdings")
            .expect("holdings");
        assert_eq!(cols[0], "as_of_date");
        assert!(cols.iter().all(|c| !c.starts_with("_kafka")));
    }

    #[test]
    fn a_wide_dataset_or_a_bad_topic_name_is_refused() {
        let wide = Topics::from_toml(
            "[[topic]]\nname = \"w\"\ndataset = \"weekly_series\"\nformat = \"csv\"\n",
            "t",
        )
        .expect("table");
        let e = Lander::new(wide, None, "raw")
            .expect_err("wide")
            .to_string();
        assert!(e.contains("weekly_series is wide"), "{e}");
        let e = Topics::from_toml(
            "[[topic]]\nname = \"a/b\"\ndataset = \"x\"\nformat = \"csv\"\n",
            "t.toml",
        )
        .expect_err("bad name")
        .to_string();
        assert!(
            e.starts_with("t.toml: topic 1: `a/b` is not a Kafka topic name"),
            "{e}"
        );
    }

    #[test]
    fn json_numbers_keep_every_digit() {
        let cols: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let mut f = Vec::new();
        decode_json(
            r#"{"a": 12345678901234567.891, "B": "x,\"y\"", "c": null, "zz": 1}"#,
            &cols,
            &mut f,
        )
        .expect("decoded");
        assert_eq!(f, ["12345678901234567.891", "x,\"y\"", "", ""]);
        assert_eq!(
            decode_json(r#"{"a": [1]}"#, &cols, &mut f)
                .expect_err("array")
                .0,
            Poison::JsonType
        );
        assert_eq!(
            decode_json("[1]", &cols, &mut f).expect_err("array").0,
            Poison::Json
        );
    }

    #[test]
    fn every_poison_reason_names_what_is_wrong() {
        let cols: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut f = Vec::new();
        let with = |value: Option<String>| KafkaRecord {
            value,
            ..record("t", 0, 1, None)
        };
        let cases: Vec<(KafkaRecord, Format, Poison, &str)> = vec![
            (
                with(None),
                Format::Csv,
                Poison::Tombstone,
                "the record has no value",
            ),
            (
                with(Some("not base64!".into())),
                Format::Csv,
                Poison::Base64,
                "the value is not base64: Invalid symbol 32, offset 3.",
            ),
            (
                with(Some("A".repeat(MAX_VALUE_BYTES / 3 * 4 + 8))),
                Format::Csv,
                Poison::TooLong,
                "the value is about 1048581 bytes; at most 1048576 are accepted",
            ),
            (
                with(Some(BASE64.encode([b'a', 0xff]))),
                Format::Csv,
                Poison::Encoding,
                "the value is not UTF-8 (invalid byte at 1)",
            ),
            (
                with(Some(BASE64.encode("1,2"))),
                Format::Csv,
                Poison::Ragged,
                "2 fields; the topic's CSV format has 3 (a, b, c)",
            ),
            (
                with(Some(BASE64.encode("1,2,3\n4,5,6"))),
                Format::Csv,
                Poison::Ragged,
                "the value holds more than one CSV line",
            ),
            (
                with(Some(BASE64.encode("[1, 2]"))),
                Format::Json,
                Poison::Json,
                "not a JSON object: invalid type: sequence, expected a map at line 1 column 0",
            ),
            (
                with(Some(BASE64.encode(r#"{"b": {"x": 1}}"#))),
                Format::Json,
                Poison::JsonType,
                "`b` holds an object or array, not a value",
            ),
        ];
        for (r, format, reason, detail) in cases {
            let got = decode(&r, format, &cols, &mut f).expect_err("poison");
            assert_eq!((got.0, got.1.as_str()), (reason, detail));
        }
        // A CSV line with a quoted comma and a trailing newline is one record of three fields.
        decode(
            &with(Some(BASE64.encode("\"x, y\",2,3\r\n"))),
            Format::Csv,
            &cols,
            &mut f,
        )
        .expect("a good line");
        assert_eq!(f, ["x, y", "2", "3"]);
    }

    #[test]
    fn a_batch_lands_per_partition_and_a_replay_rewrites_identical_bytes() {
        let dir = tempfile::tempdir().expect("tmp");
        let raw = LocalStore::new(dir.path().join("raw"));
        let processed = LocalStore::new(dir.path().join("processed"));
        let events = JsonLinesSink::new(dir.path().join("events.jsonl"));
        let lander = Lander::new(Topics::builtin(), None, "raw").expect("lander");
        let n = lander
            .vendor_columns("investor_holdings")
            .expect("cols")
            .len();
        let good = vec!["v"; n].join(",");
        let batch = vec![
            record("investor-holdings", 1, 7, Some(good.as_bytes())),
            record("investor-holdings", 0, 5, Some(good.as_bytes())),
            record("investor-holdings", 0, 4, Some(b"only,three,fields")),
            record("investor-holdings", 0, 6, None),
            record("investor-holdings", 0, 3, Some(&[0xff, 0xfe])),
            record("no-such-topic", 0, 1, Some(b"x")),
        ];
        let first = lander
            .land(&batch, &raw, &processed, &events)
            .expect("landed");
        assert_eq!(first.len(), 3);
        let p0 = &first[0];
        assert_eq!(
            p0.key.as_deref(),
            Some(
                "kafka/investor_holdings/2025-11-25/investor-holdings/p0/00000000000000000003.csv.gz"
            )
        );
        assert_eq!(
            (p0.event.rows_read, p0.event.rows_ok, p0.event.rows_rejected),
            (4, 1, 3)
        );
        let bytes = std::fs::read(raw.root().join(p0.key.as_deref().expect("key"))).expect("raw");
        let text = gunzip(&bytes);
        let mut lines = text.lines();
        assert!(lines.next().expect("header").ends_with(
            ",_kafka_topic,_kafka_partition,_kafka_offset,_kafka_timestamp_ms,_kafka_headers"
        ));
        assert!(
            lines.next().expect("row").ends_with(
                ",investor-holdings,0,5,1764028800005,\"[[\"\"trace\"\",\"\"t-1\"\"]]\""
            ),
            "{text}"
        );
        let q = gunzip(
            &std::fs::read(
                processed
                    .root()
                    .join(p0.quarantine_key.as_deref().expect("q")),
            )
            .expect("q"),
        );
        let reasons: Vec<&str> = q
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(4).unwrap_or(""))
            .collect();
        assert_eq!(reasons, ["encoding", "ragged", "tombstone"]);
        let unrouted = &first[2];
        assert_eq!(unrouted.key, None);
        assert_eq!(unrouted.event.top_reasons[0].reason, "unknown_topic");

        // Delivered again: every offset is at or below its partition's mark, so nothing is
        // written or told twice.
        let again = lander
            .land(&batch, &raw, &processed, &events)
            .expect("replayed");
        let bytes_again =
            std::fs::read(raw.root().join(p0.key.as_deref().expect("key"))).expect("raw");
        assert_eq!(bytes, bytes_again);
        assert!(again.is_empty(), "{again:?}");
        assert!(
            lander
                .land(&[], &raw, &processed, &events)
                .expect("empty")
                .is_empty()
        );
    }
}
