//! Weekly vendor series with a history: what the weekly job's trends need (a few files of a few
//! series each, many weeks long), for the demo and the benchmark.

use bondlake_core::parse::{format_date, weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{self, Write};

/// One vendor's series: the raw key's source and dataset code, and the series' names.
#[derive(Debug, Clone, Copy)]
pub struct Vendor {
    /// `FT`, `QUANDL` or `DOWJONES`.
    pub source: &'static str,
    /// The vendor's dataset code.
    pub code: &'static str,
    /// Its series (the wide file's columns).
    pub series: &'static [&'static str],
}

/// The demo's three vendors.
pub const VENDORS: [Vendor; 3] = [
    Vendor {
        source: "FT",
        code: "FT-GILTS",
        series: &["UK2Y", "UK10Y", "UK30Y"],
    },
    Vendor {
        source: "QUANDL",
        code: "FRED-DGS",
        series: &["DGS2", "DGS10", "DGS30"],
    },
    Vendor {
        source: "DOWJONES",
        code: "DJ-CREDIT",
        series: &["IG_OAS", "HY_OAS", "DJCBI"],
    },
];

impl Vendor {
    /// The raw key of its file delivered after the week ending `last_friday`.
    pub fn key(&self, last_friday: i32) -> String {
        format!(
            "weekly/{}/{}/{}.csv",
            self.source,
            self.code,
            format_date(last_friday + 1)
        )
    }
}

/// Writes `vendor`'s wide file: every business day of the `weeks` weeks ending at `last_friday`
/// (a Friday, days since 1970-01-01), each series a random walk from a level of its own, a gap
/// (`.`, FRED's marker) now and then. The same seed writes the same bytes.
pub fn history(
    vendor: &Vendor,
    last_friday: i32,
    weeks: u32,
    seed: u64,
    out: &mut dyn Write,
) -> io::Result<u64> {
    history_of(vendor.series, last_friday, weeks, seed, out)
}

/// [`history`] for any series names.
pub fn history_of<S: AsRef<str>>(
    series: &[S],
    last_friday: i32,
    weeks: u32,
    seed: u64,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Levels in ten-thousandths: yields of 1% to 6% (and spreads of as many basis points).
    let mut level: Vec<i64> = series
        .iter()
        .map(|_| rng.random_range(100..=600) * 100)
        .collect();
    let names: Vec<&str> = series.iter().map(AsRef::as_ref).collect();
    writeln!(out, "Date,{}", names.join(","))?;
    let first = last_friday - 7 * weeks as i32 + 3;
    let mut rows = 0;
    for day in first..=last_friday {
        if weekday(day) >= 5 {
            continue;
        }
        let mut cells = vec![format_date(day)];
        for l in &mut level {
            *l = (*l + rng.random_range(-40..=40)).max(1);
            if rng.random_range(0..60) == 0 {
                cells.push(".".into());
            } else {
                cells.push(format!("{}.{:04}", *l / 10_000, *l % 10_000));
            }
        }
        writeln!(out, "{}", cells.join(","))?;
        rows += 1;
    }
    Ok(rows)
}
