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

mod lander;
mod marks;
mod record;
mod topics;

pub use lander::{Landed, Lander};
use marks::{advance_mark, read_mark};
use record::decode;
pub(crate) use record::headers_json;
pub use record::{KafkaRecord, Poison};
use topics::sanitize;
pub use topics::{Format, Topic, Topics};

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
pub const BUILTIN_TOPICS: &str = include_str!("../../../../contracts/topics.toml");

/// Largest record value the lander accepts (Kafka's own default limit is about 1 MB).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

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

/// Where the lander writes in the raw bucket: only files under it may carry the lineage columns.
pub const RAW_PREFIX: &str = "kafka/";

/// Where the lander keeps each topic-partition's high-water mark (the last offset landed), in
/// the processed bucket: `kafka/marks/<topic>/p<partition>.json`.
pub const MARKS_PREFIX: &str = "kafka/marks/";

fn storage(key: &str, store: &dyn ObjectStore, source: io::Error) -> LandError {
    LandError::Storage {
        location: store.locate(key),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::record::decode_json;
    use super::*;
    use crate::events::JsonLinesSink;
    use crate::store::LocalStore;

    #[test]
    fn poison_codes_are_the_documented_ones() {
        let codes = [
            Poison::UnknownTopic,
            Poison::Tombstone,
            Poison::Base64,
            Poison::TooLong,
            Poison::Encoding,
            Poison::Ragged,
            Poison::Json,
            Poison::JsonType,
            Poison::Malformed,
        ]
        .map(Poison::code);
        assert_eq!(
            codes,
            [
                "unknown_topic",
                "tombstone",
                "base64",
                "too_long",
                "encoding",
                "ragged",
                "json",
                "json_type",
                "malformed"
            ]
        );
    }

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
