//! Allocator settings for the binaries.
//!
//! glibc raises its mmap threshold each time a large mmapped block is freed (up to 32 MiB), after
//! which blocks of that size come from the per-thread heaps, which fragment and keep memory
//! resident. The engine frees 8 MiB blocks all the time (chunks, S3 parts), so the threshold
//! climbs and resident memory with it. Measured on a 2,000,000-row file at 2 threads (peak RSS):
//! 92 MB locally and 122 MB through S3 with the default; 78 MB and 94 MB pinned at 128 KiB
//! (README, "Speed and memory").

/// Pins glibc's mmap threshold at 128 KiB (its initial value), so it no longer adapts upwards.
/// Call once, first thing in `main`. Does nothing on other C libraries.
#[allow(unsafe_code)]
pub fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it touches no Rust-visible memory.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
