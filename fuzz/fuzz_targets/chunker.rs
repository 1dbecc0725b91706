//! The CSV chunker over any bytes, compressed or not: it returns records or a file error, never
//! panics, never grows past its record limit, numbers records one after the other, and splits
//! exactly as csv-core alone does (its plain-line fast path changes nothing).
#![no_main]

use bondlake_core::input::{CsvChunker, Limits, open};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_record_bytes: 64 << 10,
        max_decompressed_bytes: 16 << 20,
        ..Limits::default()
    };
    let split = |fast: bool| -> Option<Vec<Vec<Vec<u8>>>> {
        let decoded = open(std::io::Cursor::new(data.to_vec()), &limits).ok()?;
        // A small read buffer, so records cross reads.
        let mut chunker = CsvChunker::new(decoded, 7, &limits);
        if !fast {
            chunker = chunker.without_fast_path();
        }
        let Ok(Some(_header)) = chunker.read_header() else {
            return None;
        };
        let mut next = 1u64;
        let mut records = Vec::new();
        while let Ok(Some(chunk)) = chunker.next_chunk(5, 4096) {
            assert_eq!(chunk.first_record, next, "records are numbered in order");
            for i in 0..chunk.len() {
                let record = chunk.record(i);
                assert!(record.bytes().len() <= limits.max_record_bytes);
                records.push(record.fields().map(<[u8]>::to_vec).collect());
            }
            next += chunk.len() as u64;
            chunker.recycle(chunk);
        }
        Some(records)
    };
    assert_eq!(split(true), split(false), "the fast path split differently");
});
