//! One whole file through `process` against the holdings contract: any bytes end in a manifest
//! (ok, over the threshold, or failed), never a panic, and every record read is either clean or
//! quarantined: rows_read = rows_ok + rows_rejected, and the parts hold rows_written rows.
#![no_main]

use bondlake_core::manifest::SourceRef;
use bondlake_core::store::LocalStore;
use bondlake_core::{Contract, Options};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct World {
    contract: Contract,
    _dir: tempfile::TempDir,
    store: LocalStore,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // As the binaries run (see the kafka target).
        bondlake_core::alloc::tune_allocator();
        let dir = tempfile::tempdir().expect("tempdir");
        World {
            contract: bondlake_core::load_dataset("investor_holdings", None).expect("contract"),
            store: LocalStore::new(dir.path()),
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let mut opts = Options {
        threads: 1,
        batch_rows: 7,
        ingested_at_us: Some(1_764_000_000_000_000),
        ..Options::default()
    };
    opts.limits.max_decompressed_bytes = 16 << 20;
    let source = SourceRef {
        bucket: "raw".into(),
        key: "holdings/fuzz/h.csv".into(),
        etag: "e".into(),
        bytes: data.len() as u64,
        ..Default::default()
    };
    let Ok(out) = bondlake_core::process(
        &w.contract,
        None,
        source,
        std::io::Cursor::new(data.to_vec()),
        &w.store,
        &opts,
    ) else {
        return;
    };
    let m = out.manifest;
    assert_eq!(m.rows_read, m.rows_ok + m.rows_rejected, "conservation");
    assert_eq!(
        m.outputs.iter().map(|o| o.rows).sum::<u64>(),
        if m.status == bondlake_core::Status::Failed {
            0
        } else {
            m.rows_written
        }
    );
    assert_eq!(
        m.quarantine.as_ref().map_or(0, |q| q.rows),
        m.rows_rejected,
        "every reject is in the quarantine"
    );
});
