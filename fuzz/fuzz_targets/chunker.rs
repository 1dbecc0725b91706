//! The CSV chunker over any bytes, compressed or not: it returns records or a file error, never
//! panics, never grows past its record limit, and numbers records one after the other.
#![no_main]

use bondlake_core::input::{CsvChunker, Limits, open};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_record_bytes: 64 << 10,
        max_decompressed_bytes: 16 << 20,
        ..Limits::default()
    };
    let Ok(decoded) = open(std::io::Cursor::new(data.to_vec()), &limits) else {
        return;
    };
    // A small read buffer, so records cross reads.
    let mut chunker = CsvChunker::new(decoded, 7, &limits);
    let Ok(Some(_header)) = chunker.read_header() else {
        return;
    };
    let mut next = 1u64;
    while let Ok(Some(chunk)) = chunker.next_chunk(5, 4096) {
        assert_eq!(chunk.first_record, next, "records are numbered in order");
        for i in 0..chunk.len() {
            let record = chunk.record(i);
            assert!(record.bytes().len() <= limits.max_record_bytes);
        }
        next += chunk.len() as u64;
        // Handed back, as the pipeline does, so later chunks are read into reused buffers.
        chunker.recycle(chunk);
    }
});
