//! The Kafka lander over records of any bytes (as values, and as header values): every offset
//! is landed or quarantined, never a panic and never both.
#![no_main]

use base64::Engine;
use bondlake_core::events::{EventSink, PipelineEvent};
use bondlake_core::kafka::{KafkaRecord, Lander, Topics};
use bondlake_core::store::LocalStore;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Quiet;

impl EventSink for Quiet {
    fn publish(&self, _: &PipelineEvent) -> std::io::Result<()> {
        Ok(())
    }
}

fn lander() -> &'static Lander {
    static LANDER: OnceLock<Lander> = OnceLock::new();
    LANDER.get_or_init(|| {
        // As the binaries run: without the pinned mmap threshold, glibc's heap kept freed
        // buffers resident and this target passed libFuzzer's 2 GiB limit within a minute
        // (valgrind's massif: 25 MB live throughout).
        bondlake_core::alloc::tune_allocator();
        Lander::new(Topics::builtin(), None, "raw").expect("lander")
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = LocalStore::new(dir.path().join("raw"));
    let processed = LocalStore::new(dir.path().join("processed"));
    let topics = ["investor-holdings", "exchange-prices", "unknown-topic"];
    let records: Vec<KafkaRecord> = data
        .split(|&b| b == 0xff)
        .take(64)
        .enumerate()
        .map(|(i, piece)| KafkaRecord {
            topic: topics[piece.first().map_or(0, |b| *b as usize % 3)].to_string(),
            partition: 0,
            offset: i as i64,
            timestamp_ms: 1_764_000_000_000,
            value: (piece.len() != 1)
                .then(|| base64::engine::general_purpose::STANDARD.encode(piece)),
            headers: vec![("h".into(), piece.iter().rev().copied().collect())],
            malformed: None,
        })
        .collect();
    let Ok(landed) = lander().land(&records, &raw, &processed, &Quiet) else {
        return;
    };
    let told: u64 = landed.iter().map(|l| l.event.rows_read).sum();
    assert_eq!(told, records.len() as u64, "every offset told once");
});
