//! `bondlake bench --kernels`: the engine's hot kernels, each beside the path it replaced, in
//! the same run over the same generated values (best of `--repeat`, interleaved so that a busy
//! machine slows both alike). Today: decimals through the 64-bit accumulator (precision ≤ 18)
//! against the 128-bit one, the duplicate-key set's batched, prefetched inserts against one at
//! a time, and CSV splitting with the plain-line path against csv-core alone.

use bondlake_core::input::{CsvChunker, Limits};
use bondlake_core::keyset::KeySet;
use bondlake_core::parse::{parse_decimal, parse_decimal_wide};
use bondlake_testkit::synth;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

/// Values per kernel: enough for tens of milliseconds a pass.
const VALUES: usize = 1_000_000;

/// Decimal texts as vendors write them: plain, grouped, signed, in parentheses, short and long,
/// with fractions shorter than the scale; a deterministic generator, so every run parses the same.
fn decimal_texts(int_digits: u32, scale: u32) -> Vec<String> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..VALUES)
        .map(|_| {
            let r = next();
            let len = 1 + (r % u64::from(int_digits)) as u32;
            let int = (next() % 10u64.pow(len)).to_string();
            let int = if r & 0x100 != 0 && int.len() > 3 {
                // Grouped by thousands.
                let mut out = String::new();
                for (i, c) in int.chars().enumerate() {
                    if i > 0 && (int.len() - i).is_multiple_of(3) {
                        out.push(',');
                    }
                    out.push(c);
                }
                out
            } else {
                int
            };
            let frac_len = (r >> 16) % (u64::from(scale) + 1);
            let frac = if frac_len > 0 {
                format!(
                    ".{:0width$}",
                    next() % 10u64.pow(frac_len as u32),
                    width = frac_len as usize
                )
            } else {
                String::new()
            };
            match (r >> 24) % 8 {
                0 => format!("-{int}{frac}"),
                1 => format!("({int}{frac})"),
                _ => format!("{int}{frac}"),
            }
        })
        .collect()
}

/// One pass of `parse` over `texts`: nanoseconds a value, and the pass's checksum.
fn one_pass(
    texts: &[String],
    precision: u8,
    scale: u8,
    parse: fn(&[u8], u8, u8) -> Result<i128, bondlake_core::reason::Reason>,
) -> (f64, i128) {
    let start = Instant::now();
    let mut sum: i128 = 0;
    for t in texts {
        if let Ok(v) = parse(black_box(t.as_bytes()), precision, scale) {
            sum = sum.wrapping_add(v);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / texts.len() as f64;
    (ns, black_box(sum))
}

/// Inserts `hashes` into a fresh key set, one at a time or in chunk-sized batches: nanoseconds a
/// key, and how many were new.
fn keyset_pass(hashes: &[u64], batched: bool) -> (f64, usize) {
    let start = Instant::now();
    let mut set = KeySet::default();
    let mut new = 0;
    if batched {
        let mut fresh = Vec::new();
        for batch in hashes.chunks(4096) {
            set.insert_batch(black_box(batch), &mut fresh);
            new += fresh.iter().filter(|&&f| f).count();
        }
    } else {
        for &h in hashes {
            new += usize::from(set.insert(black_box(h)));
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / hashes.len() as f64;
    (ns, black_box(new))
}

/// Splits `text` (in memory, so inflate is not timed) into chunks of 4,096 records, with or
/// without the plain-line path: nanoseconds a record, and the records read with a checksum of
/// every field's length and place (a read error ends the pass: the caller checks the count).
fn split_pass(text: &[u8], plain_lines: bool) -> (f64, (u64, u64)) {
    let limits = Limits::default();
    let start = Instant::now();
    let mut chunker = CsvChunker::new(std::io::Cursor::new(text), 256 << 10, &limits);
    if !plain_lines {
        chunker = chunker.without_plain_lines();
    }
    let (mut records, mut sum) = (0u64, 0u64);
    if let Ok(Some(_)) = chunker.read_header() {
        while let Ok(Some(chunk)) = chunker.next_chunk(4096, 1 << 20) {
            for i in 0..chunk.len() {
                for (j, f) in chunk.record(i).fields().enumerate() {
                    sum = sum
                        .wrapping_mul(31)
                        .wrapping_add((f.len() * (j + 1)) as u64);
                }
            }
            records += chunk.len() as u64;
            chunker.recycle(black_box(chunk));
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / records.max(1) as f64;
    (ns, black_box((records, sum)))
}

/// Times `before` and `after` in turn, best of `repeat` (at least 3), checks that they agree
/// (each pass returns nanoseconds a value and a checksum), and prints the line.
fn compare<T: PartialEq + std::fmt::Debug>(
    kernel: &str,
    values: usize,
    repeat: usize,
    mut before: impl FnMut() -> (f64, T),
    mut after: impl FnMut() -> (f64, T),
) -> Result<(), String> {
    let (mut old, mut new) = (f64::MAX, f64::MAX);
    for _ in 0..repeat.max(3) {
        let (o, os) = before();
        let (n, ns) = after();
        if os != ns {
            return Err(format!(
                "{kernel}: the paths disagree (checksums {os:?} and {ns:?})"
            ));
        }
        old = old.min(o);
        new = new.min(n);
    }
    println!(
        "{kernel:<22} {values:>9} {old:>16.2} {new:>17.2} {:>7.2}x",
        old / new
    );
    Ok(())
}

pub fn run(repeat: usize) -> Result<ExitCode, String> {
    println!(
        "{:<22} {:>9} {:>16} {:>17} {:>8}",
        "kernel", "values", "before ns/value", "after ns/value", "speedup"
    );
    for (precision, scale) in [(18u8, 2u8), (18, 6), (9, 6)] {
        let texts = decimal_texts(u32::from(precision - scale), u32::from(scale));
        compare(
            &format!("decimal({precision},{scale})"),
            texts.len(),
            repeat,
            || one_pass(&texts, precision, scale, parse_decimal_wide),
            || one_pass(&texts, precision, scale, parse_decimal),
        )?;
    }
    // The duplicate-key set over a 2,000,000-row file's keys: uniform 64-bit hashes (splitmix64,
    // as xxh3's are), one in a thousand repeated.
    let hashes: Vec<u64> = (0..2_000_000u64)
        .map(|i| {
            let mut z =
                (if i % 1000 == 999 { i / 2 } else { i }).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect();
    compare(
        "key set (batched)",
        hashes.len(),
        repeat,
        || keyset_pass(&hashes, false),
        || keyset_pass(&hashes, true),
    )?;
    // CSV splitting, nanoseconds a record: 200,000 generated holdings records (22 fields, about
    // 210 bytes each, no quotes), the shape of the file bench.
    let mut text = Vec::new();
    let spec = synth::Spec {
        dataset: "investor_holdings".into(),
        profile: "standard".into(),
        rows: 200_000,
        seed: 7,
        dirty: 0.0,
    };
    synth::generate(&spec, &mut text).map_err(|e| e.to_string())?;
    // Both paths agreeing is not enough: a read error would stop both alike.
    let (_, (records, _)) = split_pass(&text, true);
    if records != spec.rows {
        return Err(format!(
            "csv split: {records} of the {} generated records were read",
            spec.rows
        ));
    }
    compare(
        "csv split (records)",
        spec.rows as usize,
        repeat,
        || split_pass(&text, false),
        || split_pass(&text, true),
    )?;
    Ok(ExitCode::SUCCESS)
}
