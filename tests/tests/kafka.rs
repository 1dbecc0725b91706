//! msk-lander end to end over the S3 protocol: the sample MSK events in `events/` landed through
//! the real `aws-sdk-s3` client into an S3-protocol server on 127.0.0.1, then cleaned by the
//! csv-processor from the raw bucket as its notification would ask. Replays, a poison record, an
//! empty batch, JSON values and a storage failure.

use bondlake::aws::lambda::kafka_records;
use bondlake::aws::{S3Options, S3Store};
use bondlake::events::{EventKind, JsonLinesSink};
use bondlake::kafka::{KafkaRecord, Landed, Lander, Topics};
use bondlake::processor::{ObjectCreated, Processor, Settings};
use bondlake::s3_server::S3Server;
use bondlake::store::ObjectStore;
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
    let server =
        S3Server::start(&dir.path().join("s3"), "127.0.0.1:0", runtime.handle()).expect("server");
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

impl Lake {
    fn store(&self, bucket: &str) -> S3Store {
        S3Store::new(
            self.server.client(),
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
    fn process(&self, landed: &[Landed]) -> Vec<bondlake::events::PipelineEvent> {
        let raw = self.store("raw");
        let processor = Processor::new(
            {
                let mut s = Settings::new("raw", "processed");
                s.options.ingested_at_us = Some(1_764_115_200_000_000);
                s
            },
            Arc::new(raw.clone()),
            Arc::new(self.store("processed")),
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
                        },
                        None,
                    )
                    .expect("processed")
                    .expect("an event")
            })
            .collect()
    }

    fn snapshot(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        bondlake_tests::snapshot(&self.store(bucket))
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
            "kafka/investor_holdings/2026-11-25/investor-holdings/p0/00000000000000000100-00000000000000000101.csv.gz",
            "kafka/investor_holdings/2026-11-25/investor-holdings/p1/00000000000000000042-00000000000000000042.csv.gz",
        ]
    );
    assert!(landed.iter().all(|l| l.event.kind == EventKind::Landed
        && l.event.rows_rejected == 0
        && l.quarantine_key.is_none()));
    let processed = lake.process(&landed);
    assert_eq!(
        processed
            .iter()
            .map(|e| (e.kind, e.rows_read, e.rows_ok, e.rows_rejected))
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
    let m: bondlake::Manifest = serde_json::from_slice(m).expect("manifest");
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
        .map(|k| lake.store("raw").get(k, None).expect("object").etag)
        .collect();

    // The mapping retries the batch (its records may come in another order).
    let mut again = batch.clone();
    again.reverse();
    let second = lake.land(&again);
    lake.process(&second);
    assert_eq!(lake.snapshot("raw"), raw, "the same keys, byte for byte");
    let etags_again: Vec<String> = second
        .iter()
        .filter_map(|l| l.key.as_deref())
        .map(|k| lake.store("raw").get(k, None).expect("object").etag)
        .collect();
    assert_eq!(etags, etags_again);
    assert_eq!(
        comparable(lake.snapshot("processed")),
        comparable(processed),
        "no new output"
    );
    let ids: Vec<String> = first.iter().map(|l| l.event.id()).collect();
    let ids_again: Vec<String> = second.iter().map(|l| l.event.id()).collect();
    assert_eq!(
        ids, ids_again,
        "the notifier sees the replay as a duplicate"
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
        "quarantine/kafka/investor_holdings/investor-holdings/p2/00000000000000000007-00000000000000000009.csv.gz"
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
    let m: bondlake::Manifest = serde_json::from_slice(m).expect("manifest");
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
    let client = bondlake::s3_server::local_client(
        &format!("http://127.0.0.1:{port}"),
        bondlake::s3_server::ACCESS_KEY,
        bondlake::s3_server::SECRET_KEY,
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
