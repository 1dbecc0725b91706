//! Bad input: whole files that cannot be used end in a `failed` manifest whose error names the
//! object and the cause, with no clean output left behind; bad records are quarantined and the file
//! goes on. Each error text is asserted exactly.

use bondlake_core::Status;
use bondlake_tests::{
    HOLDINGS_HEADER, HOLDINGS_ROW, Trickle, gzip, holdings_file, holdings_row_with, options, run,
    run_with,
};

const KEY: &str = "holdings/v/h.csv.gz";

fn failed(bytes: &[u8]) -> String {
    let r = run("investor_holdings", None, KEY, bytes);
    assert_eq!(r.manifest.status, Status::Failed);
    assert!(
        r.manifest.outputs.is_empty(),
        "no clean output for a failed file"
    );
    assert!(r.manifest.quarantine.is_none());
    assert_eq!(
        (
            r.manifest.rows_read,
            r.manifest.rows_ok,
            r.manifest.rows_rejected
        ),
        (0, 0, 0)
    );
    let leftovers: Vec<_> = walk(r.dir.path())
        .into_iter()
        .filter(|p| !p.contains("manifests/"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "nothing but the manifest is left: {leftovers:?}"
    );
    r.manifest.error.expect("a failed manifest says why")
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

fn many_rows(n: usize) -> Vec<u8> {
    let rows: Vec<String> = (0..n)
        .map(|i| holdings_row_with("account_id", &format!("ACC{i}")))
        .collect();
    holdings_file(&rows)
}

#[test]
fn truncated_gzip_fails_the_file_and_removes_written_parts() {
    let gz = gzip(&many_rows(20_000));
    let cut = &gz[..gz.len() * 3 / 4];
    // Small batches and parts, so parts are committed before the truncation is found.
    let mut opts = options();
    opts.batch_rows = 500;
    opts.output.part_bytes = 16 << 10;
    opts.threads = 2;
    let r = run_with(
        "investor_holdings",
        None,
        KEY,
        std::io::Cursor::new(cut.to_vec()),
        &opts,
    );
    assert_eq!(r.manifest.status, Status::Failed);
    assert_eq!(
        r.manifest.error.as_deref(),
        Some(
            "s3://test/holdings/v/h.csv.gz: truncated or corrupt gzip stream: incomplete deflate stream"
        )
    );
    assert!(r.manifest.outputs.is_empty());
    let left: Vec<_> = walk(r.dir.path())
        .into_iter()
        .filter(|p| !p.contains("manifests/"))
        .collect();
    assert!(
        left.is_empty(),
        "parts committed before the failure are removed: {left:?}"
    );
}

#[test]
fn corrupt_gzip_body() {
    let mut gz = gzip(&many_rows(50));
    let n = gz.len();
    for b in &mut gz[20..n - 20] {
        *b ^= 0x5A;
    }
    let err = failed(&gz);
    assert!(
        err.starts_with("s3://test/holdings/v/h.csv.gz: truncated or corrupt gzip stream: "),
        "{err}"
    );
}

#[test]
fn not_gzip_other_compressions_are_named() {
    // A zip is read (BSE zips its bhavcopy); a broken one says so.
    assert_eq!(
        failed(b"PK\x03\x04rest-of-a-zip"),
        "s3://test/holdings/v/h.csv.gz: truncated or corrupt zip archive: invalid Zip archive: Could not find EOCD"
    );
    assert_eq!(
        failed(b"BZh91AY&SY"),
        "s3://test/holdings/v/h.csv.gz: unsupported input: bzip2; expected gzip or plain CSV"
    );
    assert_eq!(
        failed(b"\x28\xb5\x2f\xfdzstd"),
        "s3://test/holdings/v/h.csv.gz: unsupported input: zstd; expected gzip or plain CSV"
    );
}

#[test]
fn binary_noise_is_a_missing_column_not_a_panic() {
    let err = failed(&bondlake_testkit::synth::noise(42, 4096));
    assert!(err.starts_with("s3://test/holdings/v/h.csv.gz: "), "{err}");
}

#[test]
fn utf16_is_named() {
    let mut bytes = vec![0xFF, 0xFE];
    for u in HOLDINGS_HEADER.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    assert_eq!(
        failed(&bytes),
        "s3://test/holdings/v/h.csv.gz: unsupported input: UTF-16 text (byte-order mark FF FE / FE FF); expected UTF-8"
    );
}

#[test]
fn empty_file_and_header_only() {
    assert_eq!(
        failed(b""),
        "s3://test/holdings/v/h.csv.gz: empty file: no header line"
    );
    assert_eq!(
        failed(&gzip(b"")),
        "s3://test/holdings/v/h.csv.gz: empty file: no header line"
    );
    let r = run(
        "investor_holdings",
        None,
        KEY,
        format!("{HOLDINGS_HEADER}\n").as_bytes(),
    );
    assert_eq!(r.manifest.status, Status::Ok);
    assert_eq!(r.manifest.rows_read, 0);
}

#[test]
fn missing_required_column_names_it() {
    let header = HOLDINGS_HEADER.replace(",issuer,", ",issuer_name,");
    let text = format!("{header}\n{HOLDINGS_ROW}\n");
    assert_eq!(
        failed(text.as_bytes()),
        format!(
            "s3://test/holdings/v/h.csv.gz: required column `issuer` is missing (the header has 22 columns: {}, …)",
            header.split(',').take(8).collect::<Vec<_>>().join(", ")
        )
    );
}

#[test]
fn a_column_named_twice_is_refused() {
    let header = HOLDINGS_HEADER.replace(",par_value,", ",par,");
    let text = format!("{header},par_value\n{HOLDINGS_ROW},1\n");
    assert_eq!(
        failed(text.as_bytes()),
        "s3://test/holdings/v/h.csv.gz: header names column `par_value` twice (`par` and `par_value`)"
    );
}

/// A weekly file naming a series twice (exactly, or with other spacing or case) fails as any other
/// dataset's file naming a column twice does: its keys would collide in the long output.
#[test]
fn a_weekly_series_named_twice_is_refused() {
    for (header, second) in [
        ("Date,US10Y,HY_OAS,US10Y", "US10Y"),
        ("Date,US10Y,HY_OAS, us10y ", " us10y "),
        ("Date,US10Y,Date", "Date"),
    ] {
        let text = format!("{header}\n2026-11-20,4.1,3.0,4.2\n");
        let r = run(
            "weekly_series",
            None,
            "weekly/QUANDL/FRED-DGS10/2026-11-27.csv",
            text.as_bytes(),
        );
        assert_eq!(r.manifest.status, Status::Failed, "{header}");
        let error = r.manifest.error.expect("says why");
        assert!(
            error.contains("twice") && error.contains(&format!("`{second}`")),
            "{header}: {error}"
        );
        assert!(r.manifest.outputs.is_empty());
    }
}

#[test]
fn invalid_utf8_record_is_quarantined_as_encoding_and_the_file_goes_on() {
    let mut bytes = holdings_file(&[HOLDINGS_ROW.to_string()]);
    // A UTF-8 lead byte followed by a byte that cannot continue it.
    let bad = holdings_row_with("account_id", "ACC2").replace("First Bank", "First \u{1}(Bank");
    bytes.extend(bad.bytes().map(|b| if b == 1 { 0xC3 } else { b }));
    bytes.extend_from_slice(b"\n");
    // Latin-1 é in an otherwise valid record.
    let latin1 = holdings_row_with("account_id", "ACC3").replace("First Bank", "Soci\u{e9}t\u{e9}");
    let latin1: Vec<u8> = latin1.chars().map(|c| c as u32 as u8).collect();
    bytes.extend_from_slice(&latin1);
    bytes.extend_from_slice(b"\n");
    let r = run("investor_holdings", None, KEY, &bytes);
    assert_eq!(
        r.manifest.status,
        Status::RejectedOverThreshold,
        "2 of 3 rejected"
    );
    assert_eq!(
        r.reasons(),
        [
            (2, "encoding".into(), "investor_name".into()),
            (3, "encoding".into(), "investor_name".into())
        ]
    );
    assert_eq!(r.rejects[0][3], "First \\xC3(Bank");
    assert_eq!(r.rejects[1][3], "Soci\\xE9t\\xE9");
    assert_eq!(r.rows.len(), 1);
}

#[test]
fn a_huge_field_rejects_its_record_and_a_huge_record_fails_the_file() {
    let big = "x".repeat(1 << 20);
    let bytes = holdings_file(&[
        holdings_row_with("issuer", &big),
        holdings_row_with("account_id", "ACC2"),
    ]);
    let r = run("investor_holdings", None, KEY, &bytes);
    assert_eq!(r.reasons(), [(1, "field_too_long".into(), "issuer".into())]);
    assert_eq!(
        r.rejects[0][3].len(),
        1 << 20,
        "the raw value is kept whole in the quarantine"
    );
    assert_eq!(r.rows.len(), 1);

    let mut opts = options();
    opts.limits.max_record_bytes = 512 << 10;
    let r = run_with(
        "investor_holdings",
        None,
        KEY,
        std::io::Cursor::new(bytes),
        &opts,
    );
    assert_eq!(r.manifest.status, Status::Failed);
    assert_eq!(
        r.manifest.error.as_deref(),
        Some("s3://test/holdings/v/h.csv.gz: record 1 is longer than the limit of 524288 bytes")
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    let bytes = gzip(&many_rows(5000));
    let mut opts = options();
    opts.limits.max_decompressed_bytes = 100_000;
    let r = run_with(
        "investor_holdings",
        None,
        KEY,
        std::io::Cursor::new(bytes),
        &opts,
    );
    assert_eq!(r.manifest.status, Status::Failed);
    assert_eq!(
        r.manifest.error.as_deref(),
        Some("s3://test/holdings/v/h.csv.gz: decompressed size exceeds the limit of 100000 bytes")
    );
}

/// A real bomb under the default limits: a header, then 16 gzip members of 8 MiB of line ends
/// each (about 1000:1; blank lines are not records, so without the guard the file ends "ok, 0
/// rows" after all of it) fail by the inflate ratio once 64 MiB are out, not after the whole
/// 128 MiB, and for a bomb of gigabytes not after minutes of CPU.
#[test]
fn a_gzip_bomb_fails_by_its_ratio_under_the_default_limits() {
    let block = "\n".repeat(8 << 20);
    let mut bytes = gzip(format!("{HOLDINGS_HEADER}\n").as_bytes());
    let member = gzip(block.as_bytes());
    assert!(block.len() / member.len() > 500, "a bomb's ratio");
    for _ in 0..16 {
        bytes.extend_from_slice(&member);
    }
    let started = std::time::Instant::now();
    let r = run("investor_holdings", None, KEY, &bytes);
    eprintln!(
        "a {} KiB bomb failed after {:?}",
        bytes.len() >> 10,
        started.elapsed()
    );
    assert_eq!(r.manifest.status, Status::Failed);
    let error = r.manifest.error.expect("says why");
    assert!(error.contains("a gzip bomb"), "{error}");
    assert!(error.contains("over the limit of 200:1"), "{error}");
}

/// A plain CSV cut mid-number (a truncated upload) looks like a file whose last record has no line
/// end: that is said in the manifest, so it can be seen; a file that ends with one says nothing.
#[test]
fn a_last_record_without_a_line_end_is_a_warning_in_the_manifest() {
    let whole = String::from_utf8(holdings_file(&[HOLDINGS_ROW.to_string()])).expect("utf-8");
    let ok = run(
        "investor_holdings",
        None,
        "holdings/v/h.csv",
        whole.as_bytes(),
    );
    assert!(
        ok.manifest.warnings.is_empty(),
        "{:?}",
        ok.manifest.warnings
    );
    let cut = &whole[..whole.len() - 6];
    let r = run(
        "investor_holdings",
        None,
        "holdings/v/h.csv",
        cut.as_bytes(),
    );
    assert_eq!(
        r.manifest.warnings.get("last_record_unterminated"),
        Some(&1),
        "{:?}",
        r.manifest
    );
    let gz = run("investor_holdings", None, KEY, &gzip(cut.as_bytes()));
    assert_eq!(
        gz.manifest.warnings.get("last_record_unterminated"),
        Some(&1)
    );
}

/// A holdings file without its header line has a record where the header should be: the error
/// names the header by its count and first names, and never shows a value of a column the
/// contract marks sensitive (the investor's name, the account id).
#[test]
fn a_missing_header_line_is_described_without_sensitive_values() {
    let text = format!("{HOLDINGS_ROW}\n{HOLDINGS_ROW}\n");
    let error = failed(text.as_bytes());
    assert!(error.contains("22 columns: 2026-11-25, INV1, bank, (sensitive, 10 characters), (sensitive, 4 characters), 037833100"), "{error}");
    assert!(
        !error.contains("First Bank") && !error.contains("ACC1"),
        "{error}"
    );
    assert!(error.len() < 400, "{error}");
}

/// Only msk-lander fills the Kafka lineage columns: a vendor file carrying `_kafka_topic` or
/// `_kafka_offset` has unknown columns, its values are not lineage, and the same header under
/// `kafka/` (what the lander writes) is read as lineage.
#[test]
fn a_vendor_file_cannot_fill_the_kafka_lineage_columns() {
    let text = format!("{HOLDINGS_HEADER},_kafka_topic,_kafka_offset\n{HOLDINGS_ROW},forged,42\n");
    let vendor = run(
        "investor_holdings",
        None,
        "holdings/v/h.csv",
        text.as_bytes(),
    );
    assert_eq!(vendor.manifest.status, Status::Ok);
    assert_eq!(
        vendor.manifest.unknown_columns,
        ["_kafka_topic", "_kafka_offset"],
        "not lineage in a vendor's file"
    );
    assert_eq!(vendor.column("_kafka_topic"), [""]);
    assert_eq!(vendor.column("_kafka_offset"), [""]);
    let landed = run(
        "investor_holdings",
        None,
        "kafka/investor_holdings/2026-11-25/investor-holdings/p0/00000000000000000042.csv",
        text.as_bytes(),
    );
    assert!(landed.manifest.unknown_columns.is_empty());
    assert_eq!(landed.column("_kafka_topic"), ["forged"]);
    assert_eq!(landed.column("_kafka_offset"), ["42"]);
}

#[test]
fn multi_member_gzip_is_read_whole() {
    let rows: Vec<String> = (0..10)
        .map(|i| holdings_row_with("account_id", &format!("ACC{i}")))
        .collect();
    let mut bytes = gzip(&holdings_file(&rows[..5]));
    let rest: String = rows[5..].iter().map(|r| format!("{r}\n")).collect();
    bytes.extend(gzip(rest.as_bytes()));
    let r = run_with(
        "investor_holdings",
        None,
        KEY,
        Trickle::new(bytes, 7),
        &options(),
    );
    assert_eq!(r.manifest.rows_ok, 10);
}

#[test]
fn an_unknown_exchange_in_the_key_is_a_clear_file_error() {
    let text = "Symbol,Date,Open,High,Low,Close,Adj Close,Volume\nIBM,2026-11-25,1,2,1,2,2,1\n";
    let r = run(
        "market_daily",
        Some("us"),
        "market/LSE/f.csv",
        text.as_bytes(),
    );
    assert_eq!(r.manifest.status, Status::Failed);
    assert_eq!(
        r.manifest.error.as_deref(),
        Some(
            "s3://test/market/LSE/f.csv: the object key gives exchange = `LSE`, which is not valid (invalid_enum)"
        )
    );
    let r = run(
        "market_daily",
        Some("bse"),
        "market/BSE/bhav.csv",
        b"SC_CODE,OPEN,HIGH,LOW,CLOSE,NO_OF_SHRS,\n1,1,1,1,1,1,\n",
    );
    assert_eq!(
        r.manifest.error.as_deref(),
        Some(
            "s3://test/market/BSE/bhav.csv: the object key gives trade_date = `bhav.csv`, which is not valid (invalid_date)"
        )
    );
}

#[test]
fn reject_rate_over_the_threshold_keeps_outputs_for_inspection() {
    let mut rows: Vec<String> = (0..8)
        .map(|i| holdings_row_with("account_id", &format!("ACC{i}")))
        .collect();
    rows.push(holdings_row_with("coupon_rate", "99"));
    rows.push(holdings_row_with("coupon_rate", "98"));
    let r = run("investor_holdings", None, KEY, &holdings_file(&rows));
    assert_eq!(
        r.manifest.status,
        Status::RejectedOverThreshold,
        "2 of 10 is over 10%"
    );
    assert_eq!(r.rows.len(), 8);
    rows.truncate(9);
    rows.extend((8..10).map(|i| holdings_row_with("account_id", &format!("ACC{i}"))));
    let r = run("investor_holdings", None, KEY, &holdings_file(&rows));
    assert_eq!(r.manifest.rows_rejected, 1);
    assert_eq!(r.manifest.status, Status::Ok, "1 of 11 is not over 10%");
}

/// A weekly file past its contract's max_series fails at its header, naming the count, before
/// any row is read (memory stays bounded: a file of a million series columns once took 3.5 GB).
#[test]
fn a_weekly_file_with_too_many_series_fails_at_its_header() {
    let series: Vec<String> = (0..10_001).map(|i| format!("S{i}")).collect();
    let text = format!(
        "Date,{}\n2026-11-20,{}\n",
        series.join(","),
        vec!["1"; 10_001].join(",")
    );
    let r = run(
        "weekly_series",
        None,
        "weekly/QUANDL/FRED-DGS10/2026-11-27.csv",
        text.as_bytes(),
    );
    assert_eq!(r.manifest.status, Status::Failed);
    let error = r.manifest.error.expect("says why");
    assert!(
        error.contains("10001 series columns, more than the contract's max_series of 10000"),
        "{error}"
    );
}
