//! Allocator settings for the binaries.
//!
//! glibc raises its mmap threshold each time a large mmapped block is freed (up to 32 MiB), after
//! which blocks of that size come from the per-thread heaps, which fragment and keep memory
//! resident. The engine frees 8 MiB blocks all the time (chunks, S3 parts), so the threshold
//! climbs and resident memory with it. Measured on a 2,000,000-row file at 2 threads (peak RSS):
//! 92 MB locally and 122 MB through S3 with the default; 78 MB and 94 MB pinned at 128 KiB
//! (README, "Speed and memory").
//!
//! With the threshold pinned, glibc also gives the top of a heap back to the kernel as soon as
//! more than 128 KiB of it is free, and the next batch's buffers fault those pages in again,
//! zeroed: 80,000 minor page faults on the same file at one thread, for 79 MB resident. Keeping
//! 16 MiB at the top of each heap (`M_TOP_PAD`) leaves 16,000 (README, "Benchmark").

/// Kept free at the top of each heap rather than given back and faulted in again. Six
/// alternating runs on the 2,000,000-row file (release build, 2026-12-07): 4.45 → 4.25 s best
/// at one thread (system time 0.22 → 0.07 s, peak RSS 77 → 81 MiB), 2.72 → 2.56 s at two
/// (104 → 114 MiB).
const TOP_PAD: i32 = 16 << 20;

/// Pins glibc's mmap threshold at 128 KiB (its initial value), so it no longer adapts upwards,
/// and keeps [`TOP_PAD`] free at the top of each heap. Call once, first thing in `main`. Does
/// nothing on other C libraries.
#[allow(unsafe_code)]
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it touches no Rust-visible memory.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TOP_PAD, TOP_PAD);
    }
}
