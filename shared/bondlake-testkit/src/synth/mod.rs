//! Deterministic synthetic vendor files, for tests, the demo and the benchmark.
//!
//! [`generate`] writes a realistic file for a dataset and vendor profile. With a dirty fraction, a
//! known share of records each carries exactly one defect: either one the contract must reject
//! (listed in the returned truth with its reason code) or one it must repair (thousands separators,
//! other date formats, aliases, whitespace, quoted commas and newlines, ...). Defect kinds are dealt
//! round-robin so every kind appears once there are enough dirty records. Same seed, same bytes.

use bondlake_core::parse::{
    civil_from_days, cusip_check_digit, days_from_civil, format_date, isin_check_digit, weekday,
};
use bondlake_core::reason::Reason;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

mod from_contract;
pub mod weekly;
pub use from_contract::generate_from_contract;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `investor_holdings`, `market_daily` or `weekly_series`.
    pub dataset: String,
    /// Vendor profile (`standard`; `us`, `us_flat`, `jpx`, `jquants`, `bse`, `bse_udiff`; `wide`).
    pub profile: String,
    /// Data records (wide rows for weekly_series).
    pub rows: u64,
    /// Seed: the same seed gives the same bytes.
    pub seed: u64,
    /// Share of records that carry one defect, 0.0 to 1.0.
    pub dirty: f64,
}

/// A record that must be rejected, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    /// 1-based record number (header excluded).
    pub record: u64,
    /// The reason code the cleaner must give.
    pub reason: String,
    /// What was done to the record.
    pub defect: String,
}

/// What a generated file is, besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// Records that must be rejected.
    pub truth: Vec<Truth>,
    /// Records that carry a repairable defect (they must come out clean).
    pub repaired: u64,
    /// Data records written.
    pub records: u64,
}

/// The trade or as-of date the generator uses (the BSE file name must match it: `EQ251126.CSV`).
pub const BASE_DATE: (i32, u32, u32) = (2026, 11, 25);

/// The object key a generated file should be processed under (it carries the exchange, the BSE
/// date, the weekly source and dataset code).
pub fn suggested_key(dataset: &str, profile: &str) -> String {
    match (dataset, profile) {
        ("market_daily", "jpx") => "market/JPX/jpx_daily_20261125.csv".into(),
        ("market_daily", "jquants") => "market/JPX/jquants_daily_20261125.csv".into(),
        ("market_daily", "bse") => "market/BSE/EQ251126.CSV".into(),
        ("market_daily", "bse_udiff") => {
            "market/BSE/BhavCopy_BSE_CM_0_0_0_20261125_F_0000.CSV".into()
        }
        ("market_daily", "us_flat") => "market/NASDAQ/2026-11-25.csv.gz".into(),
        ("market_daily", _) => "market/NYSE/nyse_eod_20261125.csv.gz".into(),
        ("weekly_series", _) => "weekly/FT/FT-RATES/2026-11-27.csv.gz".into(),
        ("investor_holdings", _) => "holdings/custodian_a/holdings_20261125.csv.gz".into(),
        (other, _) => format!("{other}/{other}_20261125.csv.gz"),
    }
}

#[derive(Clone)]
enum Field {
    /// Quoted when needed.
    Text(Vec<u8>),
    /// Written as is (already quoted, or deliberately odd).
    Raw(Vec<u8>),
}

fn t(s: impl Into<String>) -> Field {
    Field::Text(s.into().into_bytes())
}

#[derive(Clone, Copy, Debug)]
enum Defect {
    Reject(Reason, &'static str),
    Repair(&'static str),
}

/// One business day of vendor files, as the demo drops them into the raw bucket: (key, dataset,
/// profile, rows).
pub const DAY: [(&str, &str, &str, u64); 9] = [
    (
        "holdings/custodian_a/holdings_20261125.csv.gz",
        "investor_holdings",
        "standard",
        20_000,
    ),
    (
        "market/NYSE/nyse_eod_20261125.csv.gz",
        "market_daily",
        "us",
        3_000,
    ),
    (
        "market/NASDAQ/nasdaq_eod_20261125.csv",
        "market_daily",
        "us",
        3_000,
    ),
    (
        "market/JPX/jpx_daily_20261125.csv",
        "market_daily",
        "jpx",
        3_000,
    ),
    ("market/BSE/EQ251126.CSV", "market_daily", "bse", 3_000),
    // The layouts the exchanges publish today, beside the older ones (README, "Vendor formats").
    (
        "market/BSE/BhavCopy_BSE_CM_0_0_0_20261125_F_0000.CSV",
        "market_daily",
        "bse_udiff",
        3_000,
    ),
    (
        "market/JPX/jquants_daily_20261125.csv",
        "market_daily",
        "jquants",
        3_000,
    ),
    (
        "market/NASDAQ/2026-11-25.csv.gz",
        "market_daily",
        "us_flat",
        3_000,
    ),
    (
        "weekly/FT/FT-RATES/2026-11-27.csv.gz",
        "weekly_series",
        "wide",
        260,
    ),
];

/// Writes a generated file to `out`, gzip-compressed when `gzip` is set (as vendors send
/// `.csv.gz` files).
pub fn generate_file(spec: &Spec, gzip: bool, out: &mut dyn Write) -> io::Result<Generated> {
    gzipped(gzip, out, |w| generate(spec, w))
}

/// Whether a tailored generator knows the dataset's vendor files; any other dataset's files are
/// drawn from its contract ([`generate_from_contract`]).
pub fn tailored(dataset: &str) -> bool {
    matches!(
        dataset,
        "investor_holdings" | "market_daily" | "weekly_series"
    )
}

/// A file for `contract`, gzip-compressed when `gzip` is set: the tailored generator's when
/// there is one for the dataset, else one drawn from the contract.
pub fn generate_for(
    contract: &bondlake_core::Contract,
    spec: &Spec,
    gzip: bool,
    out: &mut dyn Write,
) -> io::Result<Generated> {
    if tailored(&spec.dataset) {
        generate_file(spec, gzip, out)
    } else {
        gzipped(gzip, out, |w| generate_from_contract(contract, spec, w))
    }
}

fn gzipped(
    gzip: bool,
    out: &mut dyn Write,
    write: impl FnOnce(&mut dyn Write) -> io::Result<Generated>,
) -> io::Result<Generated> {
    if !gzip {
        return write(out);
    }
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let generated = write(&mut enc)?;
    enc.finish()?;
    Ok(generated)
}

/// Writes a generated file (uncompressed text in the profile's encoding) to `out`, for a dataset
/// with a tailored generator ([`tailored`]).
pub fn generate(spec: &Spec, out: &mut dyn Write) -> io::Result<Generated> {
    if !tailored(&spec.dataset) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "no tailored generator for {}: its files are drawn from its contract (generate_for)",
                spec.dataset
            ),
        ));
    }
    let mut g = Gen::new(spec);
    let header = g.header();
    let crlf = spec.dirty > 0.0;
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    if spec.dirty > 0.0 && g.profile != "jpx" {
        buf.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let header_fields: Vec<Field> = header.iter().map(|h| Field::Text(g.encode(h))).collect();
    write_row(&mut buf, &header_fields, g.trailing_comma());
    buf.extend_from_slice(eol);
    let kinds = g.defect_kinds();
    let mut dealt = 0usize;
    let mut result = Generated::default();
    for i in 0..spec.rows {
        let record = i + 1;
        let mut row = g.row(i);
        let dirty = spec.dirty > 0.0 && g.rng.random_bool(spec.dirty.clamp(0.0, 1.0));
        let mut clean = true;
        if dirty {
            let mut kind = kinds[dealt % kinds.len()];
            dealt += 1;
            if matches!(kind, Defect::Reject(Reason::DuplicateKey, _)) && g.last_clean_key.is_none()
            {
                kind = Defect::Repair("whitespace");
            }
            match kind {
                Defect::Reject(reason, what) => {
                    g.apply_reject(reason, &header, &mut row);
                    result.truth.push(Truth {
                        record,
                        reason: reason.code().into(),
                        defect: what.into(),
                    });
                    clean = false;
                }
                Defect::Repair(what) => {
                    g.apply_repair(what, &header, &mut row);
                    result.repaired += 1;
                    if what == "blank_line" {
                        buf.extend_from_slice(eol);
                    }
                }
            }
        }
        if clean {
            g.remember_key(&header, &row);
        }
        write_row(&mut buf, &row, g.trailing_comma());
        buf.extend_from_slice(eol);
        result.records += 1;
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    Ok(result)
}

fn write_row(buf: &mut Vec<u8>, row: &[Field], trailing_comma: bool) {
    for (j, f) in row.iter().enumerate() {
        if j > 0 {
            buf.push(b',');
        }
        match f {
            Field::Raw(b) => buf.extend_from_slice(b),
            Field::Text(b) => {
                if b.iter().any(|&c| matches!(c, b',' | b'"' | b'\n' | b'\r')) {
                    buf.push(b'"');
                    for &c in b {
                        if c == b'"' {
                            buf.push(b'"');
                        }
                        buf.push(c);
                    }
                    buf.push(b'"');
                } else {
                    buf.extend_from_slice(b);
                }
            }
        }
    }
    if trailing_comma {
        buf.push(b',');
    }
}

struct Security {
    cusip: String,
    isin: String,
    bond_type: &'static str,
    issuer: String,
    sector: &'static str,
    rating: &'static str,
    coupon_millis: i64, // coupon × 1000
    maturity: i32,
}

struct Investor {
    id: String,
    kind: &'static str,
    name: String,
}

struct Gen {
    dataset: String,
    profile: String,
    rng: ChaCha8Rng,
    base: i32,
    securities: Vec<Security>,
    investors: Vec<Investor>,
    symbols: Vec<String>,
    series: Vec<&'static str>,
    last_clean_key: Option<Vec<Vec<u8>>>,
    key_columns: Vec<&'static str>,
    weekly_dates: Vec<i32>,
}

const FIRST: [&str; 12] = [
    "Granite",
    "Harbor",
    "Summit",
    "Cedar",
    "Northgate",
    "Bluewater",
    "Ironwood",
    "Meridian",
    "Silverline",
    "Oakmont",
    "Redstone",
    "Westbrook",
];
const KIND_NAMES: [(&str, &str); 5] = [
    ("bank", "Bank"),
    ("insurance", "Life Assurance"),
    ("mutual_fund", "Income Fund"),
    ("pension", "Pension Plan"),
    ("hnwi", "Family Office"),
];
const ISSUERS: [&str; 16] = [
    "Acme Industries",
    "Globex Corp",
    "Initech",
    "Umbrella Holdings",
    "Stark Energy",
    "Wayne Enterprises",
    "Cyberdyne Systems",
    "Soylent Foods",
    "Tyrell Corp",
    "Wonka Confections",
    "US Treasury",
    "State of California",
    "City of New York",
    "Texas Water Authority",
    "First National Bank",
    "Pacific Savings Bank",
];
const SECTORS: [&str; 8] = [
    "Industrials",
    "Financials",
    "Energy",
    "Utilities",
    "Technology",
    "Consumer Staples",
    "Government",
    "Health Care",
];
const RATINGS: [&str; 23] = [
    "AAA", "AA+", "AA", "AA-", "A+", "A", "A-", "BBB+", "BBB", "BBB-", "BB+", "BB", "BB-", "B+",
    "B", "B-", "CCC+", "CCC", "CCC-", "CC", "C", "D", "NR",
];
const MOODYS: [(&str, &str); 6] = [
    ("AAA", "Aaa"),
    ("AA", "Aa2"),
    ("A", "A2"),
    ("BBB", "Baa2"),
    ("BB+", "Ba1"),
    ("B-", "B3"),
];
const CURRENCIES: [&str; 6] = ["USD", "USD", "USD", "EUR", "GBP", "JPY"];

impl Gen {
    fn new(spec: &Spec) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let (y, m, d) = BASE_DATE;
        let base = days_from_civil(y, m, d).unwrap_or(20_000);
        let securities = (0..2003)
            .map(|k| {
                let issuer_ix = rng.random_range(0..ISSUERS.len());
                let issuer = ISSUERS[issuer_ix];
                let bond_type = match issuer_ix {
                    10 => "treasury",
                    11..=13 => "municipal",
                    14 | 15 => "cd",
                    _ => "corporate",
                };
                let mut cusip: Vec<u8> =
                    format!("{:06}", 100_000 + (k * 7 + issuer_ix) % 900_000).into_bytes();
                cusip.extend_from_slice(format!("{:02}", k % 100).as_bytes());
                let check = cusip_check_digit(&cusip);
                cusip.push(check);
                let cusip = String::from_utf8(cusip).unwrap_or_default();
                let mut isin = format!("US{cusip}").into_bytes();
                isin.push(isin_check_digit(&isin));
                let rating = if bond_type == "treasury" {
                    "AAA"
                } else {
                    RATINGS[rng.random_range(0..RATINGS.len())]
                };
                Security {
                    cusip,
                    isin: String::from_utf8(isin).unwrap_or_default(),
                    bond_type,
                    issuer: issuer.to_string(),
                    sector: if bond_type == "treasury" || bond_type == "municipal" {
                        "Government"
                    } else {
                        SECTORS[rng.random_range(0..SECTORS.len())]
                    },
                    rating,
                    coupon_millis: rng.random_range(0..=9000) / 125 * 125,
                    maturity: base + rng.random_range(30..30 * 365),
                }
            })
            .collect();
        let investors = (0..500)
            .map(|k| {
                let (kind, suffix) = KIND_NAMES[rng.random_range(0..KIND_NAMES.len())];
                Investor {
                    id: format!("INV{:06}", 10_000 + k),
                    kind,
                    name: format!("{} {suffix}", FIRST[rng.random_range(0..FIRST.len())]),
                }
            })
            .collect();
        let symbols = match spec.profile.as_str() {
            "jpx" | "jquants" => (0..3000).map(|k| format!("{}", 1300 + k * 3)).collect(),
            "bse" | "bse_udiff" => (0..3000).map(|k| format!("{}", 500_000 + k * 7)).collect(),
            _ => {
                let mut seen = std::collections::HashSet::new();
                let mut v = Vec::new();
                while v.len() < 3000 {
                    let len = rng.random_range(1..=4);
                    let s: String = (0..len)
                        .map(|_| (b'A' + rng.random_range(0..26u8)) as char)
                        .collect();
                    // "NA" is a null token (docs/datasets.md, decision 1): a ticker spelt so would read as null.
                    if !matches!(s.as_str(), "NA" | "NULL") && seen.insert(s.clone()) {
                        v.push(s);
                    }
                }
                v
            }
        };
        let key_columns = match spec.dataset.as_str() {
            "market_daily" => match spec.profile.as_str() {
                "jpx" => vec!["銘柄コード", "日付"],
                "jquants" => vec!["Code", "Date"],
                "bse" => vec!["SC_CODE"],
                "bse_udiff" => vec!["FinInstrmId", "TradDt"],
                "us_flat" => vec!["ticker", "window_start"],
                _ => vec!["Symbol", "Date"],
            },
            "weekly_series" => vec!["Date"],
            _ => vec!["account_id", "security_id"],
        };
        Gen {
            dataset: spec.dataset.clone(),
            profile: spec.profile.clone(),
            rng,
            base,
            securities,
            investors,
            symbols,
            series: vec!["US10Y", "US2Y", "US30Y", "IG_OAS", "HY_OAS"],
            last_clean_key: None,
            key_columns,
            weekly_dates: Vec::new(),
        }
    }

    fn trailing_comma(&self) -> bool {
        self.profile == "bse"
    }

    /// Whether the profile reads the contract's every date format (the others narrow them).
    fn takes_every_date_format(&self) -> bool {
        !matches!(
            self.profile.as_str(),
            "jpx" | "jquants" | "bse_udiff" | "us_flat"
        )
    }

    /// The market file's volume column.
    fn volume_column(&self) -> &'static str {
        match self.profile.as_str() {
            "jpx" => "出来高",
            "bse" => "NO_OF_SHRS",
            "bse_udiff" => "TtlTradgVol",
            "us_flat" => "volume",
            _ => "Volume",
        }
    }

    /// Text in the profile's encoding.
    fn encode(&self, s: &str) -> Vec<u8> {
        if self.profile == "jpx" {
            encoding_rs::SHIFT_JIS.encode(s).0.into_owned()
        } else {
            s.as_bytes().to_vec()
        }
    }

    fn header(&self) -> Vec<String> {
        let v: Vec<&str> = match (self.dataset.as_str(), self.profile.as_str()) {
            ("market_daily", "jpx") => vec![
                "日付",
                "銘柄コード",
                "始値",
                "高値",
                "安値",
                "終値",
                "出来高",
            ],
            // The bhavcopy's layout before 2017 (its day is the file name's); the one from 2017
            // adds ISIN_CODE, TRADING_DATE, FILLER2 and FILLER3.
            ("market_daily", "bse") => vec![
                "SC_CODE",
                "SC_NAME",
                "SC_GROUP",
                "SC_TYPE",
                "OPEN",
                "HIGH",
                "LOW",
                "CLOSE",
                "LAST",
                "PREVCLOSE",
                "NO_TRADES",
                "NO_OF_SHRS",
                "NET_TURNOV",
                "TDCLOINDI",
            ],
            ("market_daily", "bse_udiff") => UDIFF_HEADER.to_vec(),
            ("market_daily", "jquants") => vec![
                "Date",
                "Code",
                "Open",
                "High",
                "Low",
                "Close",
                "UpperLimit",
                "LowerLimit",
                "Volume",
                "TurnoverValue",
                "AdjustmentFactor",
                "AdjustmentOpen",
                "AdjustmentHigh",
                "AdjustmentLow",
                "AdjustmentClose",
                "AdjustmentVolume",
            ],
            ("market_daily", "us_flat") => vec![
                "ticker",
                "volume",
                "open",
                "close",
                "high",
                "low",
                "window_start",
                "transactions",
            ],
            ("market_daily", _) => vec![
                "Symbol",
                "Date",
                "Open",
                "High",
                "Low",
                "Close",
                "Adj Close",
                "Volume",
            ],
            ("weekly_series", _) => {
                let mut h = vec!["Date"];
                h.extend(self.series.iter().copied());
                h
            }
            _ => vec![
                "as_of_date",
                "investor_id",
                "investor_type",
                "investor_name",
                "account_id",
                "security_id",
                "isin",
                "bond_type",
                "issuer",
                "sector",
                "rating",
                "coupon_rate",
                "maturity_date",
                "par_value",
                "quantity",
                "price",
                "market_value",
                "currency",
                "yield_to_maturity",
                "modified_duration",
                "ytd_return",
                "growth_1y",
            ],
        };
        v.into_iter().map(String::from).collect()
    }

    fn row(&mut self, i: u64) -> Vec<Field> {
        match (self.dataset.as_str(), self.profile.as_str()) {
            ("market_daily", "jpx") => self.market_row(i, true),
            ("market_daily", "bse") => self.bse_row(i),
            ("market_daily", "bse_udiff") => self.udiff_row(i),
            ("market_daily", "jquants") => self.jquants_row(i),
            ("market_daily", "us_flat") => self.flat_file_row(i),
            ("market_daily", _) => self.market_row(i, false),
            ("weekly_series", _) => self.weekly_row(i),
            _ => self.holdings_row(i),
        }
    }

    fn holdings_row(&mut self, i: u64) -> Vec<Field> {
        let sec_ix = (i as usize).wrapping_mul(7919) % self.securities.len();
        let inv_ix = (i as usize / 20) % self.investors.len();
        let par_thousands: i64 = self.rng.random_range(1..=10_000);
        let par_cents = i128::from(par_thousands) * 1000 * 100;
        let price_micro: i128 = i128::from(self.rng.random_range(80_000i64..=120_000)) * 1000; // 3 decimals
        // market value = par × price / 100, rounded half up to the cent (exact).
        let mv_cents = (par_cents * price_micro + 50_000_000) / 100_000_000;
        let sec = &self.securities[sec_ix];
        let inv = &self.investors[inv_ix];
        let currency = CURRENCIES[self.rng.random_range(0..CURRENCIES.len())];
        let ytm = self.rng.random_range(0..=12_000);
        let dur = self.rng.random_range(0..=3000);
        let ytd = self.rng.random_range(-10_000..=15_000);
        let growth = self.rng.random_range(-20_000..=30_000);
        vec![
            t(format_date(self.base)),
            t(inv.id.clone()),
            t(inv.kind),
            t(inv.name.clone()),
            t(format!("ACC{:08}", 1_000_000 + i / 20)),
            t(sec.cusip.clone()),
            t(sec.isin.clone()),
            t(sec.bond_type),
            t(sec.issuer.clone()),
            t(sec.sector),
            t(sec.rating),
            t(fixed(i128::from(sec.coupon_millis), 3)),
            t(format_date(sec.maturity)),
            t(fixed(par_cents, 2)),
            t(fixed(i128::from(par_thousands) * 10_000, 4)),
            t(fixed(price_micro / 1000, 3)),
            t(fixed(mv_cents, 2)),
            t(currency),
            t(fixed(ytm, 3)),
            t(fixed(dur, 2)),
            t(fixed(ytd, 3)),
            t(fixed(growth, 3)),
        ]
    }

    fn trade_day(&self, back: u64) -> i32 {
        // Step back over weekends.
        let mut d = self.base;
        let mut left = back;
        while left > 0 {
            d -= 1;
            if weekday(d) < 5 {
                left -= 1;
            }
        }
        d
    }

    fn ohlc(&mut self, scale: u32) -> [i128; 5] {
        let unit = 10i128.pow(scale);
        let mid = i128::from(self.rng.random_range(5i64..=500)) * unit
            + i128::from(self.rng.random_range(0..unit as i64));
        let spread = (mid / 50).max(1);
        let open = mid + self.rng.random_range(-(spread as i64)..=spread as i64) as i128;
        let close = mid + self.rng.random_range(-(spread as i64)..=spread as i64) as i128;
        let high = open.max(close) + self.rng.random_range(0..=spread as i64) as i128;
        let low = (open.min(close) - self.rng.random_range(0..=spread as i64) as i128).max(1);
        let volume = i128::from(self.rng.random_range(0i64..=5_000_000));
        [open, high, low, close, volume]
    }

    fn market_row(&mut self, i: u64, jpx: bool) -> Vec<Field> {
        let n = self.symbols.len() as u64;
        let symbol = self.symbols[(i % n) as usize].clone();
        let day = self.trade_day(i / n);
        let (y, m, d) = civil_from_days(day);
        if jpx {
            let [o, h, l, c, v] = self.ohlc(1);
            vec![
                t(format!("{y:04}/{m:02}/{d:02}")),
                t(symbol),
                t(fixed(o, 1)),
                t(fixed(h, 1)),
                t(fixed(l, 1)),
                t(fixed(c, 1)),
                t(v.to_string()),
            ]
        } else {
            let [o, h, l, c, v] = self.ohlc(2);
            vec![
                t(symbol),
                t(format_date(day)),
                t(fixed(o, 2)),
                t(fixed(h, 2)),
                t(fixed(l, 2)),
                t(fixed(c, 2)),
                t(fixed(c, 2)),
                t(v.to_string()),
            ]
        }
    }

    fn bse_row(&mut self, i: u64) -> Vec<Field> {
        let n = self.symbols.len() as u64;
        // A bhavcopy is one day: symbols repeat only past the pool, with a series suffix.
        let code = if i < n {
            self.symbols[i as usize].clone()
        } else {
            format!("{}{}", 600_000 + i, "")
        };
        let [o, h, l, c, v] = self.ohlc(2);
        let trades = self.rng.random_range(1..=5000);
        vec![
            t(code),
            t(format!(
                "{} LTD",
                FIRST[(i % FIRST.len() as u64) as usize].to_uppercase()
            )),
            t("A"),
            t("Q"),
            t(fixed(o, 2)),
            t(fixed(h, 2)),
            t(fixed(l, 2)),
            t(fixed(c, 2)),
            t(fixed(c, 2)),
            t(fixed(o, 2)),
            t(trades.to_string()),
            t(v.to_string()),
            t(fixed(v * c / 100, 2)),
            t(""),
        ]
    }

    /// A UDiFF bhavcopy row (BSE's layout since 2024): the scrip code as FinInstrmId.
    fn udiff_row(&mut self, i: u64) -> Vec<Field> {
        let n = self.symbols.len() as u64;
        let code = self.symbols[(i % n) as usize].clone();
        let day = format_date(self.trade_day(i / n));
        let [o, h, l, c, v] = self.ohlc(2);
        let trades = self.rng.random_range(1..=5000);
        let name = FIRST[(i % FIRST.len() as u64) as usize].to_uppercase();
        let mut row = vec![
            t(day.clone()),
            t(day),
            t("CM"),
            t("BSE"),
            t("STK"),
            t(code),
            t(india_isin(i % n)),
            t(name.clone()),
            t("A"),
            t(""),
            t(""),
            t(""),
            t(""),
            t(format!("{name} LTD")),
            t(fixed(o, 2)),
            t(fixed(h, 2)),
            t(fixed(l, 2)),
            t(fixed(c, 2)),
            t(fixed(c, 2)),
            t(fixed(o, 2)),
            t(""),
            t(fixed(c, 2)),
            t(""),
            t(""),
            t(v.to_string()),
            t(fixed(v * c / 100, 2)),
            t(trades.to_string()),
            t("F1"),
            t("1"),
            t(""),
        ];
        row.extend((0..4).map(|_| t("")));
        row
    }

    /// A J-Quants daily quote: the 4-digit local code and its check character, volumes as `N.0`.
    fn jquants_row(&mut self, i: u64) -> Vec<Field> {
        let n = self.symbols.len() as u64;
        let code = format!("{}0", self.symbols[(i % n) as usize]);
        let day = format_date(self.trade_day(i / n));
        let [o, h, l, c, v] = self.ohlc(1);
        let price = |p: i128| t(fixed(p, 1));
        vec![
            t(day),
            t(code),
            price(o),
            price(h),
            price(l),
            price(c),
            t("0"),
            t("0"),
            t(format!("{v}.0")),
            t(fixed(v * c, 1)),
            t("1.0"),
            price(o),
            price(h),
            price(l),
            price(c),
            t(format!("{v}.0")),
        ]
    }

    /// A US flat-file daily aggregate: the bar opens at midnight New York time, in nanoseconds.
    fn flat_file_row(&mut self, i: u64) -> Vec<Field> {
        let n = self.symbols.len() as u64;
        let symbol = self.symbols[(i % n) as usize].clone();
        let day = self.trade_day(i / n);
        let [o, h, l, c, v] = self.ohlc(2);
        let trades = self.rng.random_range(1..=50_000);
        vec![
            t(symbol),
            t(v.to_string()),
            t(fixed(o, 2)),
            t(fixed(c, 2)),
            t(fixed(h, 2)),
            t(fixed(l, 2)),
            t(new_york_midnight_ns(day).to_string()),
            t(trades.to_string()),
        ]
    }

    fn weekly_row(&mut self, i: u64) -> Vec<Field> {
        // Business days going forward from ten years back, one wide row each.
        let start = self.base - 3650;
        let mut d = self.weekly_dates.last().map_or(start, |&x| x + 1);
        while weekday(d) >= 5 {
            d += 1;
        }
        self.weekly_dates.push(d);
        if self.weekly_dates.len() > 16 {
            self.weekly_dates.remove(0);
        }
        let _ = i;
        let mut row = vec![t(format_date(d))];
        for k in 0..self.series.len() {
            // The first series never has a gap: the generator's number defects go there.
            if k > 0 && self.rng.random_range(0..40) == 0 {
                row.push(t(".")); // a gap, FRED's marker
            } else {
                let v = i128::from(self.rng.random_range(10i64..=900)) * 100
                    + i128::from(k as i64 * 37 % 100);
                row.push(t(fixed(v, 4)));
            }
        }
        row
    }

    fn defect_kinds(&self) -> Vec<Defect> {
        use Defect::{Reject as X, Repair as R};
        let mut v = vec![
            X(Reason::Ragged, "a field dropped"),
            R("whitespace"),
            X(Reason::Required, "a required value emptied"),
            R("date_format"),
            X(Reason::InvalidDate, "no such day"),
            R("thousands"),
            X(Reason::InvalidNumber, "letters in a number"),
            R("plus_sign"),
            X(Reason::Precision, "digits past the scale"),
            R("quoted_padding"),
            X(Reason::Encoding, "an invalid byte"),
            R("trailing_zeros"),
            X(Reason::DuplicateKey, "the key of an earlier record"),
            R("blank_line"),
        ];
        match self.dataset.as_str() {
            "investor_holdings" => v.extend([
                X(Reason::OutOfRange, "coupon above 25"),
                R("alias"),
                X(Reason::InvalidEnum, "unknown bond type"),
                R("moodys"),
                X(Reason::CheckDigit, "CUSIP check digit off by one"),
                R("quoted_comma"),
                X(Reason::Matured, "maturity before the as-of date"),
                R("quoted_newline"),
                X(Reason::MarketValueMismatch, "market value 5% off"),
                R("null_token"),
                R("parenthesised_negative"),
            ]),
            "market_daily" => v.extend([
                X(Reason::OutOfRange, "a negative volume"),
                X(Reason::OhlcInconsistent, "low above open"),
                R("integer_point_zero"),
            ]),
            _ => v.extend([R("null_token")]),
        }
        if self.profile == "bse" {
            // A legacy bhavcopy has no date column: its date comes from the file name.
            v.retain(|d| !matches!(d, X(Reason::InvalidDate, _) | R("date_format")));
        }
        v
    }

    fn col(&self, header: &[String], name: &str) -> usize {
        header.iter().position(|h| h == name).unwrap_or(0)
    }

    fn text_of(row: &[Field], j: usize) -> Vec<u8> {
        match &row[j] {
            Field::Text(b) | Field::Raw(b) => b.clone(),
        }
    }

    fn remember_key(&mut self, header: &[String], row: &[Field]) {
        let key = self
            .key_columns
            .iter()
            .map(|c| Self::text_of(row, self.col(header, c)))
            .collect();
        self.last_clean_key = Some(key);
    }

    /// The column a defect goes to, per dataset: (a required text, a date, a number, an int).
    fn targets(&self) -> (&'static str, &'static str, &'static str) {
        match (self.dataset.as_str(), self.profile.as_str()) {
            ("market_daily", "jpx") => ("銘柄コード", "日付", "終値"),
            ("market_daily", "jquants") => ("Code", "Date", "Close"),
            ("market_daily", "bse") => ("SC_CODE", "", "CLOSE"),
            ("market_daily", "bse_udiff") => ("FinInstrmId", "TradDt", "ClsPric"),
            ("market_daily", "us_flat") => ("ticker", "window_start", "close"),
            ("market_daily", _) => ("Symbol", "Date", "Close"),
            ("weekly_series", _) => ("", "Date", "US10Y"),
            _ => ("issuer", "maturity_date", "par_value"),
        }
    }

    fn apply_reject(&mut self, reason: Reason, header: &[String], row: &mut Vec<Field>) {
        let (text_col, date_col, num_col) = self.targets();
        let num = self.col(header, num_col);
        match reason {
            Reason::Ragged => {
                row.pop();
            }
            Reason::Required => {
                if self.profile == "jpx" {
                    // An untraded stock: JPX writes "-" for the price (docs/datasets.md, decision 13).
                    row[num] = t("-");
                } else if self.profile == "jquants" {
                    // An untraded stock: J-Quants leaves the prices empty.
                    for p in ["Open", "High", "Low", "Close"] {
                        let j = self.col(header, p);
                        row[j] = t("");
                    }
                } else {
                    let j = if self.dataset == "weekly_series" {
                        0
                    } else {
                        self.col(header, text_col)
                    };
                    row[j] = t(if self.rng.random_bool(0.5) {
                        ""
                    } else {
                        "NULL"
                    });
                }
            }
            Reason::InvalidDate => {
                let j = self.col(header, date_col);
                row[j] = t(if self.profile == "jpx" {
                    "2026/02/30"
                } else {
                    "2026-02-30"
                });
            }
            Reason::InvalidNumber => row[num] = t("12x4.50"),
            Reason::Precision => {
                let v = String::from_utf8_lossy(&Self::text_of(row, num)).to_string();
                let base = v.split('.').next().unwrap_or("1").to_string();
                row[num] = t(format!("{base}.1234567"));
            }
            Reason::Encoding => {
                let j = if self.dataset == "weekly_series" {
                    0
                } else {
                    self.col(header, text_col)
                };
                let mut b = Self::text_of(row, j);
                b.push(0xFF);
                row[j] = Field::Raw(b);
            }
            Reason::DuplicateKey => {
                if let Some(key) = self.last_clean_key.clone() {
                    for (c, v) in self.key_columns.clone().iter().zip(key) {
                        let j = self.col(header, c);
                        row[j] = Field::Text(v);
                    }
                }
            }
            Reason::OutOfRange => match self.dataset.as_str() {
                "market_daily" => {
                    let j = self.col(header, self.volume_column());
                    row[j] = t("-5");
                }
                _ => {
                    let j = self.col(header, "coupon_rate");
                    row[j] = t("30.5");
                }
            },
            Reason::InvalidEnum => {
                let j = self.col(header, "bond_type");
                row[j] = t("perpetual");
            }
            Reason::CheckDigit => {
                let j = self.col(header, "security_id");
                let mut b = Self::text_of(row, j);
                if let Some(last) = b.last_mut() {
                    *last = b'0' + (*last - b'0' + 1) % 10;
                }
                row[j] = Field::Text(b);
            }
            Reason::Matured => {
                let j = self.col(header, "maturity_date");
                row[j] = t(format_date(self.base - 30));
            }
            Reason::MarketValueMismatch => {
                let j = self.col(header, "market_value");
                let v = String::from_utf8_lossy(&Self::text_of(row, j)).replace('.', "");
                let cents: i128 = v.parse().unwrap_or(100_000);
                row[j] = t(fixed(cents * 105 / 100, 2));
            }
            Reason::OhlcInconsistent => {
                let (o, l) = match self.profile.as_str() {
                    "jpx" => ("始値", "安値"),
                    "bse" => ("OPEN", "LOW"),
                    "bse_udiff" => ("OpnPric", "LwPric"),
                    "us_flat" => ("open", "low"),
                    _ => ("Open", "Low"),
                };
                let (oj, lj) = (self.col(header, o), self.col(header, l));
                let open = String::from_utf8_lossy(&Self::text_of(row, oj)).to_string();
                // low = open + 1 unit: above open, still a valid positive number.
                let scale = open.split('.').nth(1).map_or(0, str::len) as u32;
                let v: i128 = open.replace('.', "").parse().unwrap_or(100);
                row[lj] = t(fixed(v + 1, scale));
            }
            Reason::FieldTooLong => {}
        }
    }

    fn apply_repair(&mut self, what: &str, header: &[String], row: &mut [Field]) {
        let (_, date_col, num_col) = self.targets();
        let num = self.col(header, num_col);
        let text =
            |row: &[Field], j: usize| String::from_utf8_lossy(&Self::text_of(row, j)).to_string();
        match what {
            "whitespace" => {
                let j = self.rng.random_range(0..row.len());
                let mut b = b"  ".to_vec();
                b.extend(Self::text_of(row, j));
                b.extend_from_slice(b"\t ");
                row[j] = Field::Text(b);
            }
            "date_format" if !date_col.is_empty() && self.takes_every_date_format() => {
                let j = self.col(header, date_col);
                let iso = text(row, j);
                let (y, m, d) = (&iso[0..4], &iso[5..7], &iso[8..10]);
                let mon = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ][m.parse::<usize>().unwrap_or(1) - 1];
                row[j] = t(match self.rng.random_range(0..5) {
                    0 => format!("{y}{m}{d}"),
                    1 => format!(
                        "{}/{}/{y}",
                        m.trim_start_matches('0'),
                        d.trim_start_matches('0')
                    ),
                    2 => format!("{d}-{m}-{y}"),
                    3 => format!("{y}/{m}/{d}"),
                    _ => format!("{d}-{}-{y}", mon.to_uppercase()),
                });
            }
            "thousands" => {
                let v = text(row, num);
                let (int, frac) = v
                    .split_once('.')
                    .map_or((v.as_str(), None), |(a, b)| (a, Some(b)));
                let mut grouped = String::new();
                for (k, ch) in int.chars().enumerate() {
                    if k > 0 && (int.len() - k) % 3 == 0 {
                        grouped.push(',');
                    }
                    grouped.push(ch);
                }
                if let Some(f) = frac {
                    grouped.push('.');
                    grouped.push_str(f);
                }
                row[num] = t(grouped);
            }
            "plus_sign" => {
                let v = text(row, num);
                row[num] = t(format!("+{v}"));
            }
            "trailing_zeros" => {
                let v = text(row, num);
                row[num] = t(if v.contains('.') {
                    format!("{v}00")
                } else {
                    format!("{v}.000")
                });
            }
            "integer_point_zero" => {
                let j = self.col(header, self.volume_column());
                let v = text(row, j);
                if !v.contains('.') {
                    row[j] = t(format!("{v}.0"));
                }
            }
            "quoted_padding" => {
                let j = self.col(header, num_col);
                let mut b = b" \"".to_vec();
                b.extend(Self::text_of(row, j));
                b.extend_from_slice(b"\" ");
                row[j] = Field::Raw(b);
            }
            "alias" => {
                let j = self.col(header, "investor_type");
                let alias = match text(row, j).as_str() {
                    "hnwi" => "HNW".to_string(),
                    "mutual_fund" => "Mutual Fund".to_string(),
                    "insurance" => "insurer".to_string(),
                    other => other.to_uppercase(),
                };
                row[j] = t(alias);
                let b = self.col(header, "bond_type");
                let bond_alias = match text(row, b).as_str() {
                    "treasury" => "GOVT",
                    "corporate" => "CORP",
                    "municipal" => "MUNI",
                    _ => "certificate of deposit",
                };
                row[b] = t(bond_alias);
            }
            "moodys" => {
                let j = self.col(header, "rating");
                let v = text(row, j);
                if let Some((_, m)) = MOODYS.iter().find(|(sp, _)| *sp == v) {
                    row[j] = t(*m);
                } else {
                    row[j] = t(format!(" {v} "));
                }
            }
            "quoted_comma" => {
                let j = self.col(header, "issuer");
                let v = text(row, j);
                row[j] = t(format!("{v}, Inc."));
            }
            "quoted_newline" => {
                let j = self.col(header, "investor_name");
                let v = text(row, j);
                row[j] = t(format!("{v}\nc/o \"Trust\" Dept"));
            }
            "null_token" => {
                let j = match self.dataset.as_str() {
                    "weekly_series" => 1 + self.rng.random_range(0..self.series.len()),
                    _ => self.col(header, "isin"),
                };
                row[j] = t(["N/A", "NA", "NULL", "-", "#N/A"][self.rng.random_range(0..5)]);
            }
            "parenthesised_negative" => {
                let j = self.col(header, "ytd_return");
                let v = text(row, j);
                row[j] = t(match v.strip_prefix('-') {
                    Some(abs) => format!("({abs})"),
                    None => format!("+{v}"),
                });
            }
            _ => {}
        }
    }
}

/// The 34 columns of a UDiFF bhavcopy.
const UDIFF_HEADER: [&str; 34] = [
    "TradDt",
    "BizDt",
    "Sgmt",
    "Src",
    "FinInstrmTp",
    "FinInstrmId",
    "ISIN",
    "TckrSymb",
    "SctySrs",
    "XpryDt",
    "FininstrmActlXpryDt",
    "StrkPric",
    "OptnTp",
    "FinInstrmNm",
    "OpnPric",
    "HghPric",
    "LwPric",
    "ClsPric",
    "LastPric",
    "PrvsClsgPric",
    "UndrlygPric",
    "SttlmPric",
    "OpnIntrst",
    "ChngInOpnIntrst",
    "TtlTradgVol",
    "TtlTrfVal",
    "TtlNbOfTxsExctd",
    "SsnId",
    "NewBrdLotQty",
    "Rmks",
    "Rsvd1",
    "Rsvd2",
    "Rsvd3",
    "Rsvd4",
];

/// An Indian equity ISIN (`INE` + 8 characters + the ISO 6166 check digit) for scrip number `k`.
fn india_isin(k: u64) -> String {
    let mut isin = format!("INE{:06}01", k % 1_000_000).into_bytes();
    isin.push(isin_check_digit(&isin));
    String::from_utf8(isin).unwrap_or_default()
}

/// Midnight of `day` in New York as nanoseconds since the epoch (daylight saving included).
fn new_york_midnight_ns(day: i32) -> i128 {
    let (y, m, d) = civil_from_days(day);
    jiff::civil::date(y as i16, m as i8, d as i8)
        .to_zoned_datetime(
            jiff::tz::TimeZone::get("America/New_York").unwrap_or(jiff::tz::TimeZone::UTC),
        )
        .map_or(0, |z| z.timestamp().as_nanosecond())
}

/// A scaled integer as text with `scale` decimals.
fn fixed(v: i128, scale: u32) -> String {
    bondlake_core::parse::format_decimal(v, scale as u8)
}

/// Fills `buf` with bytes that never form a valid record (used by tests of garbage input).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}
