//! The csv-processor end to end over the S3 protocol: a real server (s3s-fs, started in-process
//! on 127.0.0.1 with SigV4 checked) and the real `aws-sdk-s3` client. Faults are injected as HTTP
//! 500s under the SDK, which retries them as it would against AWS. The processor signs as its
//! role, which may do only what `template.yaml` grants it (`tests/grants.json`).

use bondlake_aws::{S3Options, S3Store};
use bondlake_core::Manifest;
use bondlake_core::events::{EventKind, JsonLinesSink, PipelineEvent};
use bondlake_core::failure::HandleError;
use bondlake_core::processor::{ObjectCreated, Processor, Settings, decode_event_key};
use bondlake_core::store::ObjectStore;
use bondlake_testkit::s3_server::S3Server;
use bondlake_testkit::synth;
use bondlake_tests::comparable;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RAW: &str = "raw";
const HOLDINGS_KEY: &str = "holdings/custodian_a/holdings_20261125.csv.gz";
/// The function whose grants the processor's requests are held to.
const ROLE: &str = "csv-processor";

struct Lake {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    server: S3Server,
    raw: S3Store,
    events: Arc<JsonLinesSink>,
}

/// A server with a raw bucket and two processed buckets (`processed`, `reference`).
fn lake() -> Lake {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let grants = bondlake_tests::template_grants(&[
        ("raw", RAW),
        ("processed", "processed"),
        ("processed", "reference"),
    ]);
    let server = S3Server::start_with_grants(
        &dir.path().join("s3"),
        "127.0.0.1:0",
        runtime.handle(),
        grants,
    )
    .expect("server");
    for b in [RAW, "processed", "reference"] {
        server.create_bucket(b).expect("bucket");
    }
    let raw = S3Store::new(
        server.client_as(ROLE),
        RAW,
        runtime.handle().clone(),
        S3Options::default(),
    );
    let events = Arc::new(JsonLinesSink::new(dir.path().join("events.jsonl")));
    Lake {
        _dir: dir,
        runtime,
        server,
        raw,
        events,
    }
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

impl Lake {
    /// `bucket` as the processor sees it, signing as its role.
    fn store(&self, bucket: &str) -> S3Store {
        self.store_as(Some(ROLE), bucket)
    }

    /// `bucket` through a client signing as `role`, or with the server's own key (the test's
    /// setup and checks).
    fn store_as(&self, role: Option<&str>, bucket: &str) -> S3Store {
        // S3's smallest part, so a few MiB of Parquet is already a multipart upload.
        let options = S3Options {
            part_bytes: 5 << 20,
            ..S3Options::default()
        };
        let client = match role {
            Some(role) => self.server.client_as(role),
            None => self.server.client(),
        };
        S3Store::new(client, bucket, self.runtime.handle().clone(), options)
    }

    fn processor(&self, bucket: &str, tune: impl FnOnce(&mut Settings)) -> Processor {
        let mut settings = Settings::new(RAW, bucket);
        settings.options.ingested_at_us = Some(1_764_115_200_000_000);
        tune(&mut settings);
        Processor::new(
            settings,
            Arc::new(self.raw.clone()),
            Arc::new(self.store(bucket)),
            self.events.clone(),
        )
        .expect("processor")
    }

    /// Uploads a generated holdings file (gzip) under `key`; returns its ETag.
    fn put_holdings(&self, key: &str, rows: u64) -> String {
        self.put_generated(key, "investor_holdings", "standard", rows)
    }

    /// Uploads a generated file of `dataset` in `profile` (gzip) under `key`; returns its ETag.
    fn put_generated(&self, key: &str, dataset: &str, profile: &str, rows: u64) -> String {
        let spec = synth::Spec {
            dataset: dataset.into(),
            profile: profile.into(),
            rows,
            seed: 11,
            dirty: 0.02,
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        synth::generate(&spec, &mut gz).expect("generate");
        let body = gz.finish().expect("gzip");
        let put = self
            .server
            .client()
            .put_object()
            .bucket(RAW)
            .key(key)
            .body(body.into())
            .send();
        let out = self.runtime.block_on(put).expect("PutObject");
        out.e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string()
    }

    /// Every object in `bucket`, key → bytes.
    fn snapshot(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        bondlake_tests::snapshot(&self.store_as(None, bucket))
    }
}

fn created(key: &str, etag: &str) -> ObjectCreated {
    ObjectCreated {
        bucket: RAW.into(),
        key: key.into(),
        etag: Some(etag.into()),
        event_time: None,
        sequencer: None,
    }
}

fn manifest(objects: &BTreeMap<String, Vec<u8>>) -> Manifest {
    let (_, bytes) = objects
        .iter()
        .find(|(k, _)| k.starts_with("manifests/"))
        .expect("a manifest");
    serde_json::from_slice(bytes).expect("manifest JSON")
}

#[test]
fn multipart_outputs_are_byte_identical_to_a_local_run() {
    let lake = lake();
    let etag = lake.put_holdings(HOLDINGS_KEY, 400_000);
    let event = lake
        .processor("processed", |_| {})
        .handle(&created(HOLDINGS_KEY, &etag), None)
        .expect("handled")
        .expect("an event");
    assert_eq!(event.kind(), EventKind::Processed);
    let objects = lake.snapshot("processed");
    let m = manifest(&objects);
    assert_eq!(m.rows_read, 400_000);
    assert_eq!(m.rows_read, m.rows_ok + m.rows_rejected);
    let biggest = m.outputs.iter().map(|o| o.bytes).max().unwrap_or(0);
    assert!(biggest > 5 << 20, "a part over 5 MiB: {biggest} bytes");
    assert!(
        lake.server.faults().parts_uploaded() >= 2,
        "multipart upload used"
    );
    assert_eq!(lake.server.open_uploads().expect("uploads"), 0);
    for o in &m.outputs {
        assert_eq!(objects[&o.key].len() as u64, o.bytes, "{}", o.key);
    }
    // The same object cleaned through a local folder gives the same bytes.
    let local_dir = tempfile::tempdir().expect("tempdir");
    let local = bondlake_core::store::LocalStore::new(local_dir.path());
    let contract = bondlake_core::load_dataset("investor_holdings", None).expect("contract");
    let body = lake.raw.get(HOLDINGS_KEY, None).expect("get");
    let local_run = bondlake_core::process(
        &contract,
        None,
        m.source.clone(),
        body.body,
        &local,
        &bondlake_core::Options {
            ingested_at_us: Some(1_764_115_200_000_000),
            ..bondlake_core::Options::default()
        },
    )
    .expect("local run");
    assert_eq!(local_run.manifest.outputs, m.outputs);
    for o in &m.outputs {
        let bytes = std::fs::read(local_dir.path().join(&o.key)).expect("local part");
        assert!(bytes == objects[&o.key], "{} differs", o.key);
    }
}

#[test]
fn a_failure_after_some_parts_leaves_nothing_and_a_rerun_converges() {
    let lake = lake();
    let etag = lake.put_holdings(HOLDINGS_KEY, 400_000);
    lake.server.faults().fail_upload_parts_from(2);
    let processor = lake.processor("processed", |_| {});
    let err = processor
        .handle(&created(HOLDINGS_KEY, &etag), None)
        .expect_err("the upload fails");
    assert!(err.is_retryable(), "{err}");
    let message = err.to_string();
    assert!(message.contains("UploadPart 2"), "{message}");
    assert!(
        message.contains("InternalError"),
        "SDK code kept: {message}"
    );
    assert!(lake.server.faults().uploads_aborted() >= 1);
    assert_eq!(
        lake.server.open_uploads().expect("uploads"),
        0,
        "no orphan parts"
    );
    assert!(
        lake.snapshot("processed").is_empty(),
        "no manifest, no parts, no quarantine"
    );
    assert!(lake.events.read_all().expect("events").is_empty());

    lake.server.faults().fail_upload_parts_from(0);
    processor
        .handle(&created(HOLDINGS_KEY, &etag), None)
        .expect("the rerun succeeds");
    lake.processor("reference", |_| {})
        .handle(&created(HOLDINGS_KEY, &etag), None)
        .expect("a clean run");
    assert_eq!(
        comparable(lake.snapshot("processed")),
        comparable(lake.snapshot("reference"))
    );
}

#[test]
fn the_same_event_twice_writes_the_same_objects() {
    let lake = lake();
    let etag = lake.put_holdings(HOLDINGS_KEY, 20_000);
    let processor = lake.processor("processed", |_| {});
    processor
        .handle(&created(HOLDINGS_KEY, &etag), None)
        .expect("first");
    let first = lake.snapshot("processed");
    processor
        .handle(&created(HOLDINGS_KEY, &etag), None)
        .expect("second");
    let second = lake.snapshot("processed");
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    assert_eq!(comparable(first), comparable(second));
    let events = lake.events.read_all().expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].manifest, events[1].manifest);
}

#[test]
fn keys_with_spaces_and_unicode_arrive_decoded() {
    let lake = lake();
    let key = "holdings/custodian b/Q4 holdings été 20261125.csv.gz";
    let etag = lake.put_holdings(key, 1_000);
    // As S3 notifications carry it.
    let decoded =
        decode_event_key("holdings/custodian+b/Q4+holdings+%C3%A9t%C3%A9+20261125.csv.gz")
            .expect("decodes");
    assert_eq!(decoded, key);
    let event = lake
        .processor("processed", |_| {})
        .handle(&created(&decoded, &etag), None)
        .expect("handled")
        .expect("event");
    assert_eq!(event.kind(), EventKind::Processed);
    assert_eq!(event.source.key, key);
    let m = manifest(&lake.snapshot("processed"));
    assert_eq!(m.source.key, key);
    assert_eq!(m.rows_read, 1_000);
}

#[test]
fn an_object_deleted_before_its_event_is_reported_not_retried() {
    let lake = lake();
    let event = lake
        .processor("processed", |_| {})
        .handle(&created("holdings/custodian_a/gone.csv.gz", "0123"), None)
        .expect("not an error")
        .expect("event");
    assert_eq!(event.kind(), EventKind::Failed);
    assert_eq!(
        event.error.as_deref(),
        Some(
            "s3://raw/holdings/custodian_a/gone.csv.gz: the object no longer exists (deleted before it was processed)"
        )
    );
    assert!(lake.snapshot("processed").is_empty());
}

#[test]
fn an_object_replaced_since_its_event_is_left_to_the_newer_event() {
    let lake = lake();
    lake.put_holdings(HOLDINGS_KEY, 100);
    let outcome = lake
        .processor("processed", |_| {})
        .handle(
            &created(HOLDINGS_KEY, "00000000000000000000000000000000"),
            None,
        )
        .expect("not an error");
    assert_eq!(outcome, None);
    assert!(lake.snapshot("processed").is_empty());
}

fn handoff_of(event: &PipelineEvent, lake: &Lake) -> (String, serde_json::Value) {
    assert_eq!(event.kind(), EventKind::Handoff, "{event:?}");
    let info = event.handoff().expect("handoff info");
    let objects = lake.snapshot("processed");
    assert!(
        objects.keys().all(|k| k.starts_with("handoffs/")),
        "nothing but the request: {:?}",
        objects.keys()
    );
    let (key, bytes) = objects.iter().next().expect("a hand-off request");
    assert_eq!(info.request, format!("s3://processed/{key}"));
    (
        info.reason.clone(),
        serde_json::from_slice(bytes).expect("request JSON"),
    )
}

#[test]
fn hand_off_by_size() {
    let lake = lake();
    let etag = lake.put_holdings(HOLDINGS_KEY, 20_000);
    let event = lake
        .processor("processed", |s| s.handoff_max_bytes = 100_000)
        .handle(&created(HOLDINGS_KEY, &etag), None)
        .expect("handled")
        .expect("event");
    assert_eq!(
        lake.server.faults().gets(),
        1,
        "one GetObject, its body not read"
    );
    let (reason, request) = handoff_of(&event, &lake);
    assert_eq!(reason, "size");
    assert_eq!(request["dataset"], "investor_holdings");
    assert_eq!(request["profile"], "standard");
    assert_eq!(request["source"]["etag"], etag.as_str());
    assert!(
        request["manifest_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("manifests/investor_holdings/holdings_20261125-")),
        "{request}"
    );
}

#[test]
fn hand_off_when_the_measured_throughput_cannot_finish_in_time() {
    let lake = lake();
    let etag = lake.put_holdings(HOLDINGS_KEY, 20_000);
    let deadline = Instant::now() + Duration::from_secs(60);
    let event = lake
        .processor("processed", |s| {
            s.assumed_bytes_per_second = 1_000;
            s.deadline_margin = Duration::from_secs(5);
        })
        .handle(&created(HOLDINGS_KEY, &etag), Some(deadline))
        .expect("handled")
        .expect("event");
    let (reason, _) = handoff_of(&event, &lake);
    assert_eq!(reason, "throughput");
    let detail = &event.handoff().expect("info").detail;
    assert!(detail.contains("(assumed) needs about"), "{detail}");
}

#[test]
fn a_run_that_reaches_its_deadline_stops_cleanly_and_hands_off() {
    let lake = lake();
    let etag = lake.put_holdings(HOLDINGS_KEY, 400_000);
    // Every part takes 6 s to go up. The writer, at most two parts ahead, waits at the third
    // (S3's smallest parts, 5 MiB: the output is four or more), so the 3.5 s the run has pass
    // mid-file, whatever the machine's speed: enough to start two parts even with the other
    // tests on both cores (2.5 s and 8 MiB parts were not, on a loaded CI machine).
    lake.server.faults().delay_upload_parts_from(1, 6_000);
    let deadline = Instant::now() + Duration::from_millis(4_000);
    let event = lake
        .processor("processed", |s| {
            s.upload_part_bytes = 5 << 20;
            s.deadline_margin = Duration::from_millis(500);
            s.assumed_bytes_per_second = u64::MAX / 4;
            // Small row groups, so Parquet reaches the store early in the file.
            s.options.output.row_group_rows = 8_192;
        })
        .handle(&created(HOLDINGS_KEY, &etag), Some(deadline))
        .expect("handled")
        .expect("event");
    let (reason, _) = handoff_of(&event, &lake);
    assert_eq!(reason, "deadline");
    assert!(
        lake.server.faults().parts_uploaded() >= 2,
        "parts had gone up"
    );
    assert!(
        lake.server.faults().uploads_aborted() >= 1,
        "and were aborted"
    );
    assert_eq!(lake.server.open_uploads().expect("uploads"), 0);
    assert!(
        !lake
            .snapshot("processed")
            .keys()
            .any(|k| k.starts_with("manifests/")),
        "no manifest"
    );
}

#[test]
fn a_bad_profile_in_the_routes_fails_at_start_not_on_the_first_file() {
    let lake = lake();
    let mut settings = Settings::new(RAW, "processed");
    settings.routes = bondlake_core::route::Routes::from_toml(
        "[[route]]\npattern = \"market/**\"\ndataset = \"market_daily\"\nprofile = \"lse\"\n",
        "test",
    )
    .expect("routes");
    let err = Processor::new(
        settings,
        Arc::new(lake.raw.clone()),
        Arc::new(lake.store("processed")),
        lake.events.clone(),
    )
    .map(|_| ())
    .expect_err("rejected");
    assert!(matches!(err, HandleError::Config(_)));
    assert!(
        err.to_string()
            .starts_with("configuration: route to `market_daily`, profile `lse`:"),
        "{err}"
    );
}

/// The notifier's sent log in the processed bucket, signing as the notifier's role: a missing
/// marker must read as "not sent" (a 404, which needs `s3:ListBucket`), not as a refusal.
#[test]
fn the_notifiers_sent_log_works_under_its_grants() {
    let lake = lake();
    let log =
        bondlake_core::notify::SentLog::new(Arc::new(lake.store_as(Some("notifier"), "processed")));
    assert!(
        !log.contains("3f2a9c")
            .expect("a missing marker is not sent")
    );
    log.insert("3f2a9c").expect("marked");
    let reopened =
        bondlake_core::notify::SentLog::new(Arc::new(lake.store_as(Some("notifier"), "processed")));
    assert!(reopened.contains("3f2a9c").expect("read"));
}

/// The server keeps buckets as folders: a key with a `..` segment is refused, never written
/// into another bucket's folder (nor outside the root).
#[test]
fn a_key_that_climbs_out_of_its_bucket_is_refused() {
    let lake = lake();
    let client = lake.server.client();
    for key in [
        "a/../../processed/planted.txt",
        "../outside.txt",
        "holdings/./x.csv",
    ] {
        let put = lake.runtime.block_on(
            client
                .put_object()
                .bucket(RAW)
                .key(key)
                .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
                .send(),
        );
        assert!(put.is_err(), "{key} was accepted");
    }
    assert!(
        !lake.server.root().join("processed/planted.txt").exists()
            && !lake.server.root().join("outside.txt").exists()
            && !lake
                .server
                .root()
                .parent()
                .expect("parent")
                .join("outside.txt")
                .exists(),
        "nothing written outside the bucket"
    );
    // An ordinary key still works.
    lake.put_holdings(HOLDINGS_KEY, 10);
}

/// A backend that counts its submissions and runs the step's code: csv-processor's engine on the
/// request, its stores signing as the EMR nodes' instance profile.
struct StepOnNodes {
    step: Processor,
    submitted: std::sync::Mutex<u32>,
}

impl bondlake_core::launch::Backend for StepOnNodes {
    fn kind(&self) -> &'static str {
        "transient_cluster"
    }
    fn submit(
        &self,
        job: &bondlake_core::launch::Job,
    ) -> Result<bondlake_core::launch::Submission, HandleError> {
        *self.submitted.lock().expect("lock") += 1;
        let bondlake_core::launch::Work::Handoff(request) = &job.work else {
            return Err(HandleError::Config("not a hand-off".into()));
        };
        self.step.run_handoff(request)?;
        Ok(bondlake_core::launch::Submission {
            id: "j-TEST".into(),
            logs: None,
        })
    }
    fn find(
        &self,
        _job: &bondlake_core::launch::Job,
    ) -> Result<Option<bondlake_core::launch::Submission>, HandleError> {
        Ok(None)
    }
}

#[test]
fn a_hand_off_is_claimed_once_and_run_under_the_launchers_and_the_nodes_grants() {
    use bondlake_core::launch::{Launched, Launcher};
    let lake = lake();
    let etag = lake.put_holdings(HOLDINGS_KEY, 20_000);
    let event = lake
        .processor("processed", |s| s.handoff_max_bytes = 100_000)
        .handle(&created(HOLDINGS_KEY, &etag), None)
        .expect("handled")
        .expect("event");
    let request = event.handoff().expect("a hand-off").request.clone();
    // The step signs as the nodes' role: it may read the raw object and the request, and write
    // the outputs, nothing else (tests/grants.json, "emr-step").
    let mut settings = Settings::new(RAW, "processed");
    settings.options.ingested_at_us = Some(1_764_115_200_000_000);
    let step = Processor::new(
        settings,
        Arc::new(lake.store_as(Some("emr-step"), RAW)),
        Arc::new(lake.store_as(Some("emr-step"), "processed")),
        lake.events.clone(),
    )
    .expect("step");
    let backend = Arc::new(StepOnNodes {
        step,
        submitted: std::sync::Mutex::new(0),
    });
    // The launcher signs as its own role; its claim is the server's If-None-Match.
    let launcher = Launcher::new(
        Arc::new(lake.store_as(Some("emr-launcher"), "processed")),
        lake.events.clone(),
        backend.clone(),
    );
    let first = launcher.launch(&event.id(), &request).expect("launched");
    assert!(matches!(first, Launched::Submitted(_)), "{first:?}");
    assert_eq!(
        launcher.launch(&event.id(), &request).expect("again"),
        Launched::AlreadyDone,
        "its manifest is there now"
    );
    assert_eq!(
        *backend.submitted.lock().expect("lock"),
        1,
        "submitted once"
    );
    let objects = lake.snapshot("processed");
    assert!(
        objects
            .keys()
            .any(|k| k.starts_with("manifests/investor_holdings/")),
        "the step wrote the manifest: {:?}",
        objects.keys()
    );
    let claims: Vec<&String> = objects
        .keys()
        .filter(|k| k.starts_with("launches/"))
        .collect();
    assert_eq!(claims.len(), 2, "a claim and its submission: {claims:?}");
    // A second claim of the same attempt is refused by the server (the conditional write).
    let taken = lake
        .store_as(Some("emr-launcher"), "processed")
        .put_if(claims[0], b"{}", bondlake_core::store::Precondition::Absent)
        .expect("answered");
    assert!(!taken, "If-None-Match: * refuses a claim that exists");
}

/// A backend that runs a backfill here, as `bondlake backfill run` does, its stores signing as
/// the EMR nodes' instance profile; counts its submissions.
struct BackfillOnNodes {
    step: Processor,
    submitted: std::sync::Mutex<u32>,
}

impl bondlake_core::launch::Backend for BackfillOnNodes {
    fn kind(&self) -> &'static str {
        "transient_cluster"
    }
    fn submit(
        &self,
        job: &bondlake_core::launch::Job,
    ) -> Result<bondlake_core::launch::Submission, HandleError> {
        *self.submitted.lock().expect("lock") += 1;
        let bondlake_core::launch::Work::Backfill(request) = &job.work else {
            return Err(HandleError::Config("not a backfill".into()));
        };
        bondlake_core::backfill::run_here(&self.step, request)?;
        Ok(bondlake_core::launch::Submission {
            id: "j-BACKFILL".into(),
            logs: None,
        })
    }
    fn find(
        &self,
        _job: &bondlake_core::launch::Job,
    ) -> Result<Option<bondlake_core::launch::Submission>, HandleError> {
        Ok(None)
    }
}

#[test]
fn a_backfill_is_claimed_once_and_runs_every_selected_object_under_the_grants() {
    use bondlake_core::backfill::{BackfillRequest, BackfillResult};
    use bondlake_core::launch::{Launched, Launcher};
    let lake = lake();
    let keys = [
        "holdings/custodian_a/holdings_20261124.csv.gz",
        "holdings/custodian_b/holdings_20261124.csv.gz",
        HOLDINGS_KEY,
    ];
    for key in keys {
        lake.put_holdings(key, 500);
    }
    // Another dataset under the bucket: not selected.
    lake.put_generated(
        "market/NYSE/nyse_eod_20261125.csv.gz",
        "market_daily",
        "us",
        50,
    );
    let mut settings = Settings::new(RAW, "processed");
    settings.options.ingested_at_us = Some(1_764_115_200_000_000);
    settings.handoff_max_bytes = u64::MAX;
    let step = Processor::new(
        settings,
        Arc::new(lake.store_as(Some("emr-step"), RAW)),
        Arc::new(lake.store_as(Some("emr-step"), "processed")),
        lake.events.clone(),
    )
    .expect("step");
    let backend = Arc::new(BackfillOnNodes {
        step,
        submitted: std::sync::Mutex::new(0),
    });
    let launcher = Launcher::new(
        Arc::new(lake.store_as(Some("emr-launcher"), "processed")),
        lake.events.clone(),
        backend.clone(),
    );
    let request =
        BackfillRequest::new(RAW, "", None, None, Some("investor_holdings"), "").expect("request");
    let Launched::Submitted(event) = launcher.backfill(&request).expect("launched") else {
        panic!("not submitted")
    };
    let launch = event.launch().expect("launch");
    assert_eq!((launch.work.as_str(), launch.attempt), ("backfill", 1));
    assert_eq!(launch.handoff_event_id, request.id());
    // The same backfill sent again (an EventBridge or CLI retry): done, nothing submitted.
    let mut again = request.clone();
    again.requested_at = "2030-01-01T00:00:00Z".into();
    assert_eq!(
        launcher.backfill(&again).expect("again"),
        Launched::AlreadyDone
    );
    assert_eq!(*backend.submitted.lock().expect("lock"), 1);
    let objects = lake.snapshot("processed");
    let manifests: Vec<&String> = objects
        .keys()
        .filter(|k| k.starts_with("manifests/"))
        .collect();
    assert_eq!(manifests.len(), keys.len(), "{manifests:?}");
    assert!(
        manifests
            .iter()
            .all(|k| k.starts_with("manifests/investor_holdings/"))
    );
    let result: BackfillResult =
        serde_json::from_slice(&objects[&request.result_key()]).expect("result");
    assert_eq!((result.objects, result.ran), (3, 3));
    assert!(
        result.complete() && result.problems.is_empty(),
        "{result:?}"
    );
    assert_eq!(result.rows_read, 1500);
}
