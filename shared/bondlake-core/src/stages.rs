//! Where a run's time goes, stage by stage (`bondlake bench` prints it). Off unless asked for:
//! a run without [`StageTimes`] reads no clock.
//!
//! Times are summed over every thread, so at one thread they add up to the run's wall time
//! (less start-up), and at more they are CPU-like totals.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A stage of the records pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Decompression (gzip inflate), and reading the compressed bytes.
    Inflate,
    /// Splitting text into CSV records and fields.
    Split,
    /// Each column's cells parsed and checked, into Arrow buffers.
    Columns,
    /// Record-level rules, defaults and the key hash.
    Rules,
    /// The duplicate-key set.
    Keys,
    /// Parquet encoding, compression and writing (the quarantine too).
    Parquet,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 6] = [
        Stage::Inflate,
        Stage::Split,
        Stage::Columns,
        Stage::Rules,
        Stage::Keys,
        Stage::Parquet,
    ];

    /// The stage's name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Inflate => "inflate",
            Stage::Split => "split",
            Stage::Columns => "columns",
            Stage::Rules => "record_rules",
            Stage::Keys => "keys",
            Stage::Parquet => "parquet",
        }
    }
}

/// Nanoseconds spent in each [`Stage`].
#[derive(Debug, Default)]
pub struct StageTimes {
    nanos: [AtomicU64; 6],
}

impl StageTimes {
    /// Adds `nanos` to `stage`.
    pub fn add(&self, stage: Stage, nanos: u64) {
        self.nanos[stage as usize].fetch_add(nanos, Ordering::Relaxed);
    }

    /// Nanoseconds spent in `stage` so far.
    pub fn get(&self, stage: Stage) -> u64 {
        self.nanos[stage as usize].load(Ordering::Relaxed)
    }

    /// One line per stage, `stage_ns.<name>=<nanos>`, as `bondlake process --stage-times`
    /// prints them and `bondlake bench` reads them.
    pub fn lines(&self) -> String {
        Stage::ALL
            .iter()
            .map(|&s| format!("stage_ns.{}={}\n", s.name(), self.get(s)))
            .collect()
    }
}

/// Times `f` into `stage` when `times` is given.
#[inline]
pub(crate) fn timed<T>(times: Option<&StageTimes>, stage: Stage, f: impl FnOnce() -> T) -> T {
    match times {
        None => f(),
        Some(t) => {
            let start = Instant::now();
            let out = f();
            t.add(stage, start.elapsed().as_nanos() as u64);
            out
        }
    }
}

/// A reader whose reads count as [`Stage::Inflate`].
pub(crate) struct TimedRead<R> {
    pub inner: R,
    pub times: Arc<StageTimes>,
}

impl<R: Read> Read for TimedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = Instant::now();
        let n = self.inner.read(buf);
        self.times
            .add(Stage::Inflate, start.elapsed().as_nanos() as u64);
        n
    }
}
