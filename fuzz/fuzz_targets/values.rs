//! Decimal and date parsing over any bytes: an answer or a reason, never a panic; a decimal that
//! parses prints back to a text that parses to the same value; a date lies in its range.
#![no_main]

use bondlake_core::parse::{DateFormat, format_decimal, parse_date, parse_date_within, parse_decimal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (precision, scale) = match data.first() {
        Some(b) => (1 + b % 38, (b / 38) % 12),
        None => (18, 2),
    };
    let text = data.get(1..).unwrap_or_default();
    if let Ok(v) = parse_decimal(text, precision, scale.min(precision)) {
        let printed = format_decimal(v, scale.min(precision));
        assert_eq!(
            parse_decimal(printed.as_bytes(), precision, scale.min(precision)),
            Ok(v),
            "{printed}"
        );
    }
    let formats: Vec<DateFormat> = [
        "YYYY-MM-DD",
        "YYYYMMDD",
        "MM/DD/YYYY",
        "DD-MM-YYYY",
        "DD-Mon-YYYY",
        "DD-Mon-YY",
        "EPOCH_NS America/New_York",
    ]
    .iter()
    .filter_map(|f| DateFormat::new(f).ok())
    .collect();
    let _ = parse_date(text, &formats);
    let range = -25_567..=84_000;
    if let Ok(d) = parse_date_within(text, &formats, &range) {
        assert!(range.contains(&d));
    }
});
