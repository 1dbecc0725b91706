//! The `bondlake` binary as a user runs it: exit codes, what goes to stdout and stderr.

use std::path::Path;
use std::process::{Command, Output};

fn bondlake(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bondlake"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("bondlake runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn gen_then_process_prints_the_manifest_path_and_conserves_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = bondlake(
        &[
            "gen",
            "--dataset",
            "market_daily",
            "--profile",
            "bse",
            "--rows",
            "500",
            "--seed",
            "2",
            "--dirty",
            "0.05",
            "--out",
            "raw/market/BSE/EQ251126.CSV",
            "--truth",
            "truth.json",
        ],
        d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = bondlake(
        &[
            "process",
            "--dataset",
            "market_daily",
            "--profile",
            "bse",
            "--input",
            "raw/market/BSE/EQ251126.CSV",
            "--out",
            "lake",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let manifest_path = text(&out.stdout).trim().to_string();
    assert!(
        manifest_path.starts_with("lake/manifests/market_daily/EQ251126-"),
        "{manifest_path}"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join(&manifest_path)).expect("manifest"))
            .expect("json");
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("truth.json")).expect("truth")).expect("json");
    assert_eq!(m["rows_read"], 500);
    assert_eq!(
        m["rows_rejected"].as_u64(),
        Some(truth.as_array().expect("list").len() as u64)
    );
    assert_eq!(
        m["rows_ok"].as_u64().unwrap_or(0) + m["rows_rejected"].as_u64().unwrap_or(0),
        500
    );
    assert_eq!(m["status"], "ok");
    assert_eq!(m["outputs"][0]["partition"]["trade_date"], "2026-11-25");
}

#[test]
fn an_unusable_file_exits_2_with_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("h.csv.gz"),
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x4b\x4c",
    )
    .expect("write");
    let out = bondlake(
        &[
            "process",
            "--dataset",
            "investor_holdings",
            "--input",
            "h.csv.gz",
            "--out",
            "lake",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "bondlake: h.csv.gz: truncated or corrupt gzip stream: incomplete deflate stream\n"
    );
    let manifest_path = text(&out.stdout).trim().to_string();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join(manifest_path)).expect("manifest"))
            .expect("json");
    assert_eq!(m["status"], "failed");
    assert!(!d.join("lake/processed").exists(), "no clean output");
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bondlake(
        &[
            "process",
            "--dataset",
            "bonds",
            "--input",
            "x",
            "--out",
            "y",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "bondlake: contract bonds.toml: unknown dataset `bonds` (known: investor_holdings, market_daily, weekly_series)\n"
    );
    std::fs::write(dir.path().join("x.csv"), "a\n1\n").expect("write");
    let out = bondlake(
        &[
            "process",
            "--dataset",
            "market_daily",
            "--profile",
            "lse",
            "--input",
            "x.csv",
            "--out",
            "y",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "bondlake: dataset market_daily has no vendor profile `lse` (known: bse, jpx, us)\n"
    );
}

#[test]
fn contracts_command_checks_a_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bondlake(&["contracts"], dir.path());
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("ok  "))
            .count(),
        3
    );
    std::fs::write(dir.path().join("investor_holdings.toml"), "dataset = 1\n").expect("write");
    let out = bondlake(&["contracts", "--dir", "."], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).starts_with("bad contract ./investor_holdings.toml: "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().expect("tempdir");
    for cmd in ["gen", "process", "bench", "contracts"] {
        let out = bondlake(&[cmd, "--help"], dir.path());
        assert!(out.status.success(), "{cmd} --help");
        assert!(text(&out.stdout).contains("Usage: bondlake"), "{cmd}");
    }
}
