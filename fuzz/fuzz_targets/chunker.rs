//! The CSV chunker over any bytes, compressed or not: it returns records or a file error, never
//! panics, never grows past its record limit, numbers records one after the other, and splits
//! the same with its plain-line path as with csv-core alone.
#![no_main]

use bondlake_core::input::{CsvChunker, Limits, open};
use libfuzzer_sys::fuzz_target;

/// Every record's number and fields, and the error that ended the input, if any.
fn records(data: &[u8], plain_lines: bool) -> (Vec<(u64, Vec<Vec<u8>>)>, Option<String>) {
    let limits = Limits {
        max_record_bytes: 64 << 10,
        max_decompressed_bytes: 16 << 20,
        ..Limits::default()
    };
    let Ok(decoded) = open(std::io::Cursor::new(data.to_vec()), &limits) else {
        return (Vec::new(), None);
    };
    // A small read buffer, so records cross reads.
    let mut chunker = CsvChunker::new(decoded, 7, &limits);
    if !plain_lines {
        chunker = chunker.without_plain_lines();
    }
    let Ok(Some(_header)) = chunker.read_header() else {
        return (Vec::new(), None);
    };
    let mut out = Vec::new();
    let mut next = 1u64;
    loop {
        match chunker.next_chunk(5, 4096) {
            Ok(Some(chunk)) => {
                assert_eq!(chunk.first_record, next, "records are numbered in order");
                for i in 0..chunk.len() {
                    let record = chunk.record(i);
                    assert!(record.bytes().len() <= limits.max_record_bytes);
                    out.push((next + i as u64, record.fields().map(<[u8]>::to_vec).collect()));
                }
                next += chunk.len() as u64;
                // Handed back, as the pipeline does, so later chunks are read into reused buffers.
                chunker.recycle(chunk);
            }
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(records(data, true), records(data, false), "the plain-line path splits as csv-core does");
});
