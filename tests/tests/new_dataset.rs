//! A new dataset is a contract file: the generator draws its files from the contract, and the
//! engine cleans them by the same contract, rejecting exactly the records the generator broke.

use bondlake_core::Contract;
use bondlake_testkit::synth::{self, Spec, suggested_key};
use bondlake_tests::{assert_truth, gzip, options, run_contract};
use std::collections::BTreeSet;

/// A dataset bondlake has never seen: FX fixings with a check-digited instrument, an enum, a
/// date, bounded decimals, an OHLC rule and a key.
const FX_FIXINGS: &str = r#"
dataset = "fx_fixings"
version = "0.1.0"
description = "Daily FX fixings from a benchmark administrator"
shape = "records"
key = ["fixing_date", "pair", "instrument"]
partition = "fixing_date"
control_totals = ["close_rate"]
null_tokens = ["", "NA"]
date_formats = ["DD-MM-YYYY", "YYYY-MM-DD"]
default_profile = "standard"

[profiles.standard]
encoding = "utf-8"

[[columns]]
name = "fixing_date"
type = "date"
required = true

[[columns]]
name = "pair"
type = "string"
required = true
max_length = 16

[[columns]]
name = "instrument"
type = "string"
required = true
check = "isin"

[[columns]]
name = "venue"
type = "enum"
required = true
values = ["london_4pm", "tokyo_955", "ecb"]

[[columns]]
name = "open_rate"
type = "decimal"
precision = 18
scale = 6
gt = "0"

[[columns]]
name = "high_rate"
type = "decimal"
precision = 18
scale = 6
gt = "0"

[[columns]]
name = "low_rate"
type = "decimal"
precision = 18
scale = 6
gt = "0"

[[columns]]
name = "close_rate"
type = "decimal"
precision = 18
scale = 6
required = true
gt = "0"
le = "100000"

[[columns]]
name = "trades"
type = "int64"
ge = "0"

[[record_rules]]
rule = "ohlc_inconsistent"
open = "open_rate"
high = "high_rate"
low = "low_rate"
close = "close_rate"
"#;

fn drawn(
    c: &Contract,
    profile: &str,
    rows: u64,
    dirty: f64,
) -> std::io::Result<(Vec<u8>, synth::Generated)> {
    let spec = Spec {
        dataset: c.dataset.clone(),
        profile: profile.into(),
        rows,
        seed: 7,
        dirty,
    };
    let mut bytes = Vec::new();
    let g = synth::generate_from_contract(c, &spec, &mut bytes)?;
    Ok((bytes, g))
}

#[test]
fn a_contract_file_is_all_a_new_dataset_needs() {
    let c = Contract::from_toml("fx_fixings.toml", FX_FIXINGS).expect("the new contract compiles");
    let rows = 2000;
    let (bytes, g) = drawn(&c, "standard", rows, 0.2).expect("drawn from the contract");
    let key = suggested_key(&c.dataset, "standard");
    assert_eq!(key, "fx_fixings/fx_fixings_20261125.csv.gz");
    let r = run_contract(
        &c,
        None,
        &key,
        std::io::Cursor::new(gzip(&bytes)),
        &options(),
    );
    assert_truth("fx_fixings", &r, &g.truth, rows, true);
    let dealt: BTreeSet<&str> = g.truth.iter().map(|t| t.reason.as_str()).collect();
    let every: BTreeSet<&str> = [
        "ragged",
        "required",
        "invalid_date",
        "invalid_number",
        "precision",
        "out_of_range",
        "invalid_enum",
        "check_digit",
        "ohlc_inconsistent",
        "encoding",
        "duplicate_key",
    ]
    .into();
    assert_eq!(dealt, every, "every reject the contract can give was dealt");
    // The clean rows hold what the contract says: rates inside their bounds, low ≤ high.
    for (low, high) in r.column("low_rate").iter().zip(r.column("high_rate")) {
        if let (Ok(l), Ok(h)) = (low.parse::<f64>(), high.parse::<f64>()) {
            assert!(0.0 < l && l <= h, "low {low} ≤ high {high}");
        }
    }
}

/// The contract-drawn generator also writes every shipped records contract's files, under each
/// profile whose dates it can render; the default profiles at least.
#[test]
fn every_shipped_records_contract_can_be_drawn_from_its_contract() {
    let mut drawn_profiles = Vec::new();
    for c in bondlake_core::contract::load_all(None).expect("contracts") {
        if c.shape != bondlake_core::contract::Shape::Records {
            continue;
        }
        for name in c.profiles.keys() {
            let rows = 1500;
            let (bytes, g) = match drawn(&c, name, rows, 0.15) {
                Ok(v) => v,
                Err(e)
                    if e.kind() == std::io::ErrorKind::Unsupported
                        && *name != c.default_profile =>
                {
                    continue;
                }
                Err(e) => panic!("{}/{name}: {e}", c.dataset),
            };
            let key = suggested_key(&c.dataset, name);
            let r = run_contract(
                &c,
                Some(name),
                &key,
                std::io::Cursor::new(gzip(&bytes)),
                &options(),
            );
            assert_truth(&format!("{}/{name}", c.dataset), &r, &g.truth, rows, true);
            assert!(g.truth.len() > 100, "{}/{name}: rejects dealt", c.dataset);
            drawn_profiles.push(format!("{}/{name}", c.dataset));
        }
    }
    assert!(drawn_profiles.len() >= 3, "drawn: {drawn_profiles:?}");
}
