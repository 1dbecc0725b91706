//! msk-lander end to end over the S3 protocol: the sample MSK events in `events/` landed through
//! the real `aws-sdk-s3` client into an S3-protocol server on 127.0.0.1, then cleaned by the
//! csv-processor from the raw bucket as its notification would ask. Replays, a poison record, an
//! empty batch, JSON values and a storage failure. The lander and the processor sign as their
//! roles, which may do only what `template.yaml` grants them (`tests/grants.json`).

use bondlake_aws::{S3Options, S3Store};
use bondlake_core::events::{EventKind, JsonLinesSink};
use bondlake_core::kafka::{KafkaRecord, Landed, Lander, Topics};
use bondlake_core::processor::{ObjectCreated, Processor, Settings};
use bondlake_core::store::ObjectStore;
use bondlake_lambda::kafka_records;
use bondlake_testkit::s3_server::S3Server;
use bondlake_tests::comparable;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

struct Lake {
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    server: S3Server,
    events: Arc<JsonLinesSink>,
    lander: Lander,
}

fn lake() -> Lake {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let grants = bondlake_tests::template_grants(&[("raw", "raw"), ("processed", "processed")]);
    let server = S3Server::start_with_grants(
        &dir.path().join("s3"),
        "127.0.0.1:0",
        runtime.handle(),
        grants,
    )
    .expect("server");
    for b in ["raw", "processed"] {
        server.create_bucket(b).expect("bucket");
    }
    let events = Arc::new(JsonLinesSink::new(dir.path().join("events.jsonl")));
    Lake {
        dir,
        runtime,
        server,
        events,
        lander: Lander::new(Topics::builtin(), None, "raw").expect("lander"),
    }
}

fn sample(json: &str) -> Vec<KafkaRecord> {
    kafka_records(serde_json::from_str(json).expect("JSON")).expect("an MSK event")
}

impl Drop for Lake {
    fn drop(&mut self) {
        let denied = self.server.denied();
        if !std::thread::panicking() {
            assert!(
                denied.is_empty(),
                "refused by the template's grants: {denied:?}"
            );
        }
    }
}

const LANDER: &str = "msk-lander";
const PROCESSOR: &str = "csv-processor";

impl Lake {
    /// `bucket` as the lander sees it, signing as its role.
    fn store(&self, bucket: &str) -> S3Store {
        self.store_as(Some(LANDER), bucket)
    }

    /// `bucket` through a client signing as `role`, or with the server's own key (the test's
    /// checks).
    fn store_as(&self, role: Option<&str>, bucket: &str) -> S3Store {
        let client = match role {
            Some(role) => self.server.client_as(role),
            None => self.server.client(),
        };
        S3Store::new(
            client,
            bucket,
            self.runtime.handle().clone(),
            S3Options::default(),
        )
    }

    fn land(&self, records: &[KafkaRecord]) -> Vec<Landed> {
        self.lander
            .land(
                records,
                &self.store("raw"),
                &self.store("processed"),
                self.events.as_ref(),
            )
            .expect("landed")
    }

    /// What the raw bucket's notification makes the csv-processor do with each landed object.
    fn process(&self, landed: &[Landed]) -> Vec<bondlake_core::events::PipelineEvent> {
        let raw = self.store_as(Some(PROCESSOR), "raw");
        let processor = Processor::new(
            {
                let mut s = Settings::new("raw", "processed");
                s.options.ingested_at_us = Some(1_764_115_200_000_000);
                s
            },
            Arc::new(raw.clone()),
            Arc::new(self.store_as(Some(PROCESSOR), "processed")),
            self.events.clone(),
        )
        .expect("processor");
        landed
            .iter()
            .filter_map(|l| l.key.clone())
            .map(|key| {
                let etag = raw.get(&key, None).expect("landed object").etag;
                processor
                    .handle(
                        &ObjectCreated {
                            bucket: "raw".into(),
                            key,
                            etag: Some(etag),
                            event_time: None,
                            sequencer: None,
                        },
                        None,
                    )
                    .expect("processed")
                    .expect("an event")
            })
            .collect()
    }

    fn snapshot(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        bondlake_tests::snapshot(&self.store_as(None, bucket))
    }

    fn path(&self, bucket: &str, key: &str) -> PathBuf {
        self.dir.path().join("s3").join(bucket).join(key)
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
fn a_multi_partition_batch_lands_one_object_per_partition_and_keeps_kafka_lineage() {
    let lake = lake();
    let landed = lake.land(&sample(include_str!("../../events/msk-holdings.json")));
    let keys: Vec<&str> = landed.iter().filter_map(|l| l.key.as_deref()).collect();
    assert_eq!(
        keys,
        [
            "kafka/investor_holdings/2026-11-25/investor-holdings/p0/00000000000000000100.csv.gz",
            "kafka/investor_holdings/2026-11-25/investor-holdings/p1/00000000000000000042.csv.gz",
        ]
    );
    assert!(landed.iter().all(|l| l.event.kind() == EventKind::Landed
        && l.event.rows_rejected == 0
        && l.quarantine_key.is_none()));
    let processed = lake.process(&landed);
    assert_eq!(
        processed
            .iter()
            .map(|e| (e.kind(), e.rows_read, e.rows_ok, e.rows_rejected))
            .collect::<Vec<_>>(),
        [
            (EventKind::Processed, 2, 2, 0),
            (EventKind::Processed, 1, 1, 0)
        ]
    );
    // The manifest found no unknown column: the lineage columns are the contract's.
    let manifests = lake.snapshot("processed");
    let (_, m) = manifests
        .iter()
        .find(|(k, _)| k.starts_with("manifests/") && k.contains("00000000000000000100"))
        .expect("p0's manifest");
    let m: bondlake_core::Manifest = serde_json::from_slice(m).expect("manifest");
    assert!(m.unknown_columns.is_empty(), "{:?}", m.unknown_columns);
    let rows = bondlake_tests::read_parquet(&lake.path("processed", &m.outputs[0].key));
    let lineage: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["_kafka_topic"].clone(),
                r["_kafka_offset"].clone(),
                r["_kafka_timestamp_ms"].clone(),
                r["_kafka_headers"].clone(),
            )
        })
        .collect();
    assert_eq!(
        lineage,
        [
            (
                "investor-holdings".into(),
                "100".into(),
                "1795644000000".into(),
                r#"[["source","vendor-a"],["trace-id","7f3a9c"]]"#.into()
            ),
            (
                "investor-holdings".into(),
                "101".into(),
                "1795644000005".into(),
                r#"[["source","vendor-a"]]"#.into()
            ),
        ]
    );
    assert_eq!(rows[1]["investor_name"], "Granite Life Insurance Co., Ltd.");
    assert_eq!(rows[1]["market_value"], "480500.00");
}

#[test]
fn a_replayed_batch_leaves_identical_objects_and_the_same_outputs() {
    let lake = lake();
    let batch = sample(include_str!("../../events/msk-holdings.json"));
    let first = lake.land(&batch);
    lake.process(&first);
    let raw = lake.snapshot("raw");
    let processed = lake.snapshot("processed");
    let etags: Vec<String> = first
        .iter()
        .filter_map(|l| l.key.as_deref())
        .map(|k| {
            lake.store_as(None, "raw")
                .get(k, None)
                .expect("object")
                .etag
        })
        .collect();

    // The mapping retries the batch (its records may come in another order): every offset is
    // at or below its partition's high-water mark, so nothing is landed or announced again.
    let mut again = batch.clone();
    again.reverse();
    let second = lake.land(&again);
    assert!(second.is_empty(), "{second:?}");
    assert_eq!(lake.snapshot("raw"), raw, "the same keys, byte for byte");
    let etags_again: Vec<String> = first
        .iter()
        .filter_map(|l| l.key.as_deref())
        .map(|k| {
            lake.store_as(None, "raw")
                .get(k, None)
                .expect("object")
                .etag
        })
        .collect();
    assert_eq!(etags, etags_again);
    assert_eq!(
        comparable(lake.snapshot("processed")),
        comparable(processed),
        "no new output"
    );
}

#[test]
fn a_poison_record_is_quarantined_with_its_offset_and_the_partition_moves_on() {
    let lake = lake();
    let landed = lake.land(&sample(include_str!("../../events/msk-poison.json")));
    assert_eq!(landed.len(), 1);
    let l = &landed[0];
    assert_eq!(
        (l.event.rows_read, l.event.rows_ok, l.event.rows_rejected),
        (3, 2, 1)
    );
    let q_key = l.quarantine_key.as_deref().expect("a quarantine object");
    assert_eq!(
        q_key,
        "quarantine/kafka/investor_holdings/investor-holdings/p2/00000000000000000007.csv.gz"
    );
    let q = gunzip(&lake.snapshot("processed")[q_key]);
    let mut lines = q.lines();
    assert_eq!(
        lines.next(),
        Some("topic,partition,offset,timestamp_ms,reason,detail,value_base64")
    );
    let row = lines.next().expect("the poison record");
    assert!(
        row.starts_with(
            "investor-holdings,2,8,1795644000010,encoding,the value is not UTF-8 (invalid byte at "
        ),
        "{row}"
    );
    assert_eq!(lines.next(), None);
    // Nothing lost: the two good records (offsets 7 and 9) landed and are clean.
    let raw = gunzip(&lake.snapshot("raw")[l.key.as_deref().expect("landed")]);
    let offsets: Vec<&str> = raw
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(24).unwrap_or(""))
        .collect();
    assert_eq!(offsets, ["7", "9"]);
    let processed = lake.process(&landed);
    assert_eq!((processed[0].rows_ok, processed[0].rows_rejected), (2, 0));
    assert_eq!(l.event.top_reasons[0].reason, "encoding");
    assert!(
        l.event
            .quarantine
            .as_deref()
            .is_some_and(|q| q.ends_with(q_key))
    );
}

#[test]
fn an_empty_batch_writes_nothing() {
    let lake = lake();
    assert!(
        lake.land(&sample(include_str!("../../events/msk-empty.json")))
            .is_empty()
    );
    assert!(lake.snapshot("raw").is_empty());
    assert!(lake.events.read_all().expect("events").is_empty());
}

#[test]
fn json_values_keep_their_numbers_exact() {
    let lake = lake();
    let landed = lake.land(&sample(include_str!("../../events/msk-prices-json.json")));
    let processed = lake.process(&landed);
    assert_eq!(
        (
            processed[0].dataset.as_deref(),
            processed[0].rows_ok,
            processed[0].rows_rejected
        ),
        (Some("market_daily"), 2, 0)
    );
    let manifests = lake.snapshot("processed");
    let (_, m) = manifests
        .iter()
        .find(|(k, _)| k.starts_with("manifests/"))
        .expect("manifest");
    let m: bondlake_core::Manifest = serde_json::from_slice(m).expect("manifest");
    let mut rows = Vec::new();
    for o in &m.outputs {
        rows.extend(bondlake_tests::read_parquet(
            &lake.path("processed", &o.key),
        ));
    }
    rows.sort_by(|a, b| a["symbol"].cmp(&b["symbol"]));
    assert_eq!(rows[1]["symbol"], "IBM");
    assert_eq!(rows[1]["open"], "221.500000");
    assert_eq!(rows[0]["volume"], "48120993");
    assert_eq!(rows[0]["adj_close"], "", "JSON null is null");
}

#[test]
fn a_storage_failure_fails_the_batch_and_publishes_nothing() {
    let lake = lake();
    // A port nobody listens on: every request is refused (after the SDK's retries).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let client = bondlake_testkit::s3_server::local_client(
        &format!("http://127.0.0.1:{port}"),
        bondlake_testkit::s3_server::ACCESS_KEY,
        bondlake_testkit::s3_server::SECRET_KEY,
    );
    let dead = S3Store::new(
        client,
        "raw",
        lake.runtime.handle().clone(),
        S3Options::default(),
    );
    let err = lake
        .lander
        .land(
            &sample(include_str!("../../events/msk-holdings.json")),
            &dead,
            &lake.store("processed"),
            lake.events.as_ref(),
        )
        .expect_err("the raw bucket is unreachable");
    assert!(err.is_retryable());
    assert!(
        err.to_string()
            .starts_with("writing s3://raw/kafka/investor_holdings/"),
        "{err}"
    );
    assert!(lake.events.read_all().expect("events").is_empty());
}

/// `n` good holdings records on one partition of `investor-holdings`, offsets 0..n.
fn holdings_records(lake: &Lake, n: u64) -> Vec<KafkaRecord> {
    let mut csv = Vec::new();
    bondlake_testkit::synth::generate(
        &bondlake_testkit::synth::Spec {
            dataset: "investor_holdings".into(),
            profile: "standard".into(),
            rows: n,
            seed: 4,
            dirty: 0.0,
        },
        &mut csv,
    )
    .expect("generate");
    let feed = bondlake_testkit::kafka_feed::Feed {
        topic: "investor-holdings".into(),
        partitions: 1,
        start_offsets: BTreeMap::new(),
        timestamp_ms: 1_795_644_000_000,
        headers: Vec::new(),
    };
    bondlake_testkit::kafka_feed::records_from_csv(&lake.lander, &feed, std::io::Cursor::new(csv))
        .expect("records")
}

/// Every offset the raw bucket's Kafka objects hold, with how often it is there.
fn landed_offsets(lake: &Lake) -> BTreeMap<i64, u32> {
    let mut seen = BTreeMap::new();
    for (key, bytes) in lake.snapshot("raw") {
        if !key.starts_with("kafka/") {
            continue;
        }
        let text = gunzip(&bytes);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let column = reader
            .headers()
            .expect("header")
            .iter()
            .position(|h| h == "_kafka_offset")
            .expect("lineage");
        for record in reader.records() {
            let offset: i64 = record.expect("row")[column].parse().expect("offset");
            *seen.entry(offset).or_insert(0) += 1;
        }
    }
    seen
}

fn slice(records: &[KafkaRecord], from: i64, to: i64) -> Vec<KafkaRecord> {
    records
        .iter()
        .filter(|r| (from..=to).contains(&r.offset))
        .cloned()
        .collect()
}

#[test]
fn each_offset_lands_once_whatever_the_cut_of_the_retried_batches() {
    let lake = lake();
    let all = holdings_records(&lake, 40);
    let mark = "kafka/marks/investor-holdings/p0.json";
    // 0-9 lands; the mapping's retry comes cut at 5-14: only 10-14 is new.
    lake.land(&slice(&all, 0, 9));
    let second = lake.land(&slice(&all, 5, 14));
    assert_eq!(second.len(), 1);
    let k = second[0].event.kafka().expect("offsets");
    assert_eq!((k.first_offset, k.last_offset), (10, 14));
    assert!(
        second[0]
            .key
            .as_deref()
            .is_some_and(|k| k.ends_with("/p0/00000000000000000010.csv.gz")),
        "{:?}",
        second[0].key
    );
    // A crash after the objects but before the mark: the mark is gone. The retry, cut at
    // 10-24, finds the span from 10 landed (If-None-Match refuses its key), tells it again and
    // lands 15-24 after it.
    std::fs::remove_file(lake.path("processed", mark)).expect("mark");
    let third = lake.land(&slice(&all, 10, 24));
    let spans: Vec<(i64, i64)> = third
        .iter()
        .map(|l| {
            let k = l.event.kafka().expect("offsets");
            (k.first_offset, k.last_offset)
        })
        .collect();
    assert_eq!(spans, [(10, 14), (15, 24)]);
    assert_eq!(
        third[0].event.id(),
        second[0].event.id(),
        "the span told again is the same notice"
    );
    // A shorter retry inside what landed writes nothing (the object from 15 holds 15-24).
    std::fs::remove_file(lake.path("processed", mark)).expect("mark");
    let before = lake.snapshot("raw");
    assert_eq!(lake.land(&slice(&all, 15, 19)).len(), 1, "told again");
    assert_eq!(lake.snapshot("raw"), before, "not written");
    lake.land(&slice(&all, 25, 29));
    // Offsets 30-34 were given up on (the on-failure destination has them) while 35-39 landed;
    // the replay lands them below the mark, and the mark stays.
    lake.land(&slice(&all, 35, 39));
    let replayed = lake
        .lander
        .replay(
            &slice(&all, 30, 34),
            &lake.store("raw"),
            &lake.store("processed"),
            lake.events.as_ref(),
        )
        .expect("replayed");
    assert_eq!(replayed.len(), 1);
    let before = lake.snapshot("raw");
    lake.lander
        .replay(
            &slice(&all, 30, 34),
            &lake.store("raw"),
            &lake.store("processed"),
            lake.events.as_ref(),
        )
        .expect("replayed twice");
    assert_eq!(
        lake.snapshot("raw"),
        before,
        "a second replay writes nothing"
    );
    let offsets = landed_offsets(&lake);
    assert_eq!(
        offsets.keys().copied().collect::<Vec<_>>(),
        (0..40).collect::<Vec<_>>()
    );
    assert!(
        offsets.values().all(|&n| n == 1),
        "each offset in exactly one object: {offsets:?}"
    );
    let mark: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.path("processed", mark)).expect("mark"))
            .expect("json");
    assert_eq!(mark["last_offset"], 39);
}

#[test]
fn a_malformed_record_is_quarantined_and_its_batch_lands() {
    let lake = lake();
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../events/msk-holdings.json")).expect("json");
    // A null header value: the record does not parse; the batch must still land.
    event["records"]["investor-holdings-0"][0]["headers"] = serde_json::json!([{"trace-id": null}]);
    let landed = lake.land(&kafka_records(event).expect("an MSK event"));
    let p0 = landed
        .iter()
        .find(|l| l.event.kafka().is_some_and(|k| k.partition == 0))
        .expect("partition 0");
    assert_eq!((p0.event.rows_ok, p0.event.rows_rejected), (1, 1));
    assert_eq!(p0.event.top_reasons[0].reason, "malformed");
    let q = gunzip(&lake.snapshot("processed")[p0.quarantine_key.as_deref().expect("q")]);
    let row = q.lines().nth(1).expect("the malformed record");
    assert!(
        row.starts_with(
            "investor-holdings,0,100,1795644000000,malformed,\"the record does not parse: invalid type: null, expected a sequence\","
        ),
        "{row}"
    );
    assert!(
        landed.iter().all(|l| l.key.is_some()),
        "the good records landed"
    );
}
