//! A hand-off run by the launcher's local backend writes what csv-processor would have written
//! for the same object: the same Parquet parts and quarantine, byte for byte, and the same
//! manifest (its timestamps aside), under the same keys; and it is launched once however often
//! its event is delivered.

use bondlake_core::events::{EventSink, JsonLinesSink, PipelineEvent};
use bondlake_core::failure::HandleError;
use bondlake_core::launch::{Launched, Launcher, LocalBackend, Work};
use bondlake_core::processor::{ObjectCreated, Processor, Settings};
use bondlake_core::store::{LocalStore, ObjectStore, file_etag};
use bondlake_testkit::synth::{self, Spec};
use bondlake_tests::options;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const KEY: &str = "holdings/custodian_a/holdings_20261125.csv.gz";

/// A lake whose raw bucket holds `bytes` at [`KEY`], written at the same instant in every lake
/// (a file's ETag is its size and modification time).
fn lake(dir: &Path, bytes: &[u8]) -> ObjectCreated {
    let path = dir.join("raw").join(KEY);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, bytes).expect("write");
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_640_400);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(at))
        .expect("mtime");
    let meta = std::fs::metadata(&path).expect("meta");
    ObjectCreated {
        bucket: "raw".into(),
        key: KEY.into(),
        etag: Some(file_etag(&meta)),
        event_time: bondlake_core::store::file_event_time(&meta),
        sequencer: None,
    }
}

fn processor(dir: &Path, handoff_max_bytes: u64) -> Arc<Processor> {
    let mut settings = Settings::new("raw", "processed");
    settings.handoff_max_bytes = handoff_max_bytes;
    settings.options = options();
    let events: Arc<dyn EventSink> = Arc::new(JsonLinesSink::new(dir.join("events.jsonl")));
    Arc::new(
        Processor::new(
            settings,
            Arc::new(LocalStore::new(dir.join("raw"))),
            Arc::new(LocalStore::new(dir)),
            events,
        )
        .expect("processor"),
    )
}

/// Every file under `dir/sub`, relative path → bytes.
fn files(dir: &Path, sub: &str) -> BTreeMap<String, Vec<u8>> {
    let store = LocalStore::new(dir);
    store
        .list(sub)
        .expect("list")
        .into_iter()
        .map(|k| {
            let bytes = std::fs::read(dir.join(&k)).expect("read");
            (k, bytes)
        })
        .collect()
}

/// A manifest without what depends on when it was written.
fn manifest_without_times(dir: &Path) -> (String, serde_json::Value) {
    let (key, bytes) = files(dir, "manifests/")
        .into_iter()
        .next()
        .expect("a manifest");
    let mut m: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    for field in ["started_at", "finished_at", "processed_at", "duration_ms"] {
        m.as_object_mut().expect("object").remove(field);
    }
    (key, m)
}

#[test]
fn a_hand_off_on_the_local_backend_writes_what_the_lambda_would_have_once() {
    let mut bytes = Vec::new();
    let spec = Spec {
        dataset: "investor_holdings".into(),
        profile: "standard".into(),
        rows: 4000,
        seed: 5,
        dirty: 0.05,
    };
    synth::generate_file(&spec, true, &mut bytes).expect("generated");

    // The Lambda's way: processed where it arrived.
    let lambda = tempfile::tempdir().expect("tempdir");
    let object = lake(lambda.path(), &bytes);
    let event = processor(lambda.path(), u64::MAX)
        .handle(&object, None)
        .expect("processed")
        .expect("an event");
    assert_eq!(event.kind().as_str(), "processed");

    // Handed off (everything is over a zero-byte limit), then run by the launcher.
    let emr = tempfile::tempdir().expect("tempdir");
    let object = lake(emr.path(), &bytes);
    let p = processor(emr.path(), 0);
    let handoff: PipelineEvent = p
        .handle(&object, None)
        .expect("handed off")
        .expect("an event");
    let request = handoff.handoff().expect("a hand-off").request.clone();
    let step = p.clone();
    let launcher = Launcher::new(
        Arc::new(LocalStore::new(emr.path())),
        Arc::new(JsonLinesSink::new(emr.path().join("events.jsonl"))),
        Arc::new(LocalBackend::new(move |job| match &job.work {
            Work::Handoff(request) => step.run_handoff(request).map(|_| ()),
            Work::Backfill(_) | Work::Weekly(_) => {
                Err(HandleError::Config("not a hand-off".into()))
            }
        })),
    );
    let Launched::Submitted(launched) = launcher.launch(&handoff.id(), &request).expect("launched")
    else {
        panic!("not submitted")
    };
    assert_eq!(launched.launch().map(|l| l.backend.as_str()), Some("local"));

    for sub in ["processed/", "quarantine/"] {
        let (a, b) = (files(lambda.path(), sub), files(emr.path(), sub));
        assert!(!a.is_empty(), "{sub} written");
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{sub}: the same keys"
        );
        assert!(a == b, "{sub}: the same bytes");
    }
    assert_eq!(
        manifest_without_times(lambda.path()),
        manifest_without_times(emr.path())
    );

    // Delivered again, and once more after its manifest: nothing runs twice.
    assert_eq!(
        launcher.launch(&handoff.id(), &request).expect("again"),
        Launched::AlreadyDone
    );
    let claims = files(emr.path(), "launches/");
    assert_eq!(
        claims.len(),
        2,
        "one claim and its submission: {:?}",
        claims.keys()
    );
}
