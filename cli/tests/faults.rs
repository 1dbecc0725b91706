//! Fault injection: `bondlake run --once` killed with SIGKILL at many points (while cleaning,
//! after parts, after a manifest, inside a load, before notifying), then run to the end. The lake
//! must converge on what one uninterrupted run gives: the same ledger, the same warehouse rows,
//! every outcome told, the same exit code, and never a panic.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn bondlake(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bondlake"))
        .args(args)
        .env_remove("BONDLAKE_SLACK_WEBHOOK")
        .output()
        .expect("bondlake runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The day's files, generated once: two custodians' holdings, an exchange, a weekly series.
const FILES: [(&str, &str, &str, u64); 4] = [
    (
        "investor_holdings",
        "standard",
        "holdings/custodian_a/holdings_20261125.csv.gz",
        6000,
    ),
    (
        "investor_holdings",
        "standard",
        "holdings/custodian_b/holdings_20261125.csv",
        4000,
    ),
    (
        "market_daily",
        "us",
        "market/NYSE/nyse_20261125.csv.gz",
        5000,
    ),
    (
        "weekly_series",
        "wide",
        "weekly/QUANDL/FRED-DGS10/2026-11-27.csv",
        260,
    ),
];

/// A lake holding copies of the files, each with the same modification time in every lake (a
/// file's time is its version, and orders inputs: the newest wins a key two files share).
fn lake_with_files(root: &Path, sources: &Path) {
    for (i, (_, _, key, _)) in FILES.iter().enumerate() {
        let to = root.join("raw").join(key);
        std::fs::create_dir_all(to.parent().expect("folder")).expect("mkdir");
        std::fs::copy(sources.join(key), &to).expect("copy");
        let written = std::time::UNIX_EPOCH + Duration::from_secs(1_764_100_000 + i as u64);
        std::fs::File::options()
            .write(true)
            .open(&to)
            .and_then(|f| f.set_modified(written))
            .expect("set the file's time");
    }
}

fn sql(root: &Path, query: &str) -> String {
    let warehouse = format!("duckdb://{}", root.join("warehouse.duckdb").display());
    let out = bondlake(&["sql", "--warehouse", &warehouse, "--format", "csv", query]);
    assert!(out.status.success(), "{query}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// What must be the same however the runs were interrupted: the ledger (without its times, and
/// without rows_loaded, which depends on the order files loaded in when two share keys),
/// and every table's rows without the columns that record when or from which copy they came.
fn state(root: &Path) -> Vec<String> {
    let mut out = vec![sql(
        root,
        "SELECT manifest_key, source_key, dataset, status, rows_read, rows_ok, rows_rejected, control_totals, COUNT(*) OVER (PARTITION BY manifest_key) AS times FROM bondlake.load_ledger ORDER BY source_key",
    )];
    for table in ["investor_holdings", "market_daily", "weekly_series"] {
        out.push(sql(
            root,
            &format!(
                "SELECT * EXCLUDE (_ingested_at, _source_order) FROM bondlake.{table} ORDER BY ALL"
            ),
        ));
    }
    out
}

/// Where two dumps part: the query, the line counts and the first line that differs.
fn first_difference(which: usize, got: &str, want: &str) -> String {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    let at = g
        .iter()
        .zip(&w)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(w.len()));
    let cut = |l: Option<&&str>| l.map_or("(none)".to_string(), |l| l.chars().take(300).collect());
    format!(
        "dump {which}: {} lines, want {}; line {at}: got `{}`, want `{}`",
        g.len(),
        w.len(),
        cut(g.get(at)),
        cut(w.get(at))
    )
}

fn sent(root: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(root.join("notifications/sent"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn events(root: &Path) -> Vec<bondlake_core::events::PipelineEvent> {
    std::fs::read_to_string(root.join("events/pipeline-events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| bondlake_core::events::parse(l).ok())
        .collect()
}

fn event_ids(root: &Path) -> Vec<String> {
    events(root).iter().map(|e| e.id()).collect()
}

fn processed_keys(root: &Path) -> std::collections::BTreeSet<String> {
    events(root)
        .into_iter()
        .filter(|e| e.kind().as_str() == "processed")
        .map(|e| e.source.key)
        .collect()
}

#[cfg(unix)]
#[test]
fn run_killed_at_any_point_then_rerun_converges_on_one_clean_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = dir.path().join("sources");
    for (i, (dataset, profile, key, rows)) in FILES.iter().enumerate() {
        let out = sources.join(key);
        std::fs::create_dir_all(out.parent().expect("folder")).expect("mkdir");
        let generated = bondlake(&[
            "gen",
            "--dataset",
            dataset,
            "--profile",
            profile,
            "--rows",
            &rows.to_string(),
            "--dirty",
            "0.03",
            "--seed",
            &(i + 1).to_string(),
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert!(generated.status.success(), "{}", text(&generated.stderr));
    }

    // One uninterrupted run, timed, so that the kills spread over all it does.
    let reference = dir.path().join("reference");
    lake_with_files(&reference, &sources);
    let started = std::time::Instant::now();
    let clean = bondlake(&[
        "run",
        "--root",
        reference.to_str().expect("utf-8"),
        "--once",
    ]);
    let mut took = started.elapsed();
    assert!(
        !text(&clean.stderr).contains("panicked"),
        "{}",
        text(&clean.stderr)
    );
    let want = state(&reference);

    // For each point, a fresh lake of the same files, one run killed there, then run to the end.
    const POINTS: u32 = 12;
    let mut kills = 0;
    for point in 0..POINTS {
        let faulted = dir.path().join(format!("faulted-{point}"));
        lake_with_files(&faulted, &sources);
        let root_s = faulted.to_str().expect("utf-8");
        let delay = took * (point + 1) / (POINTS + 1);
        let mut child = Command::new(env!("CARGO_BIN_EXE_bondlake"))
            .args(["run", "--root", root_s, "--once"])
            .env_remove("BONDLAKE_SLACK_WEBHOOK")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("SIGKILL");
            kills += 1;
        } else {
            // The run was quicker than the reference (a warmer cache, a quieter machine): the
            // next kills spread over the shorter run instead.
            took = took.min(delay) * 4 / 5;
        }
        let out = child.wait_with_output().expect("reaped");
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "killed at {delay:?}: {stderr}"
        );
        let last = bondlake(&["run", "--root", root_s, "--once"]);
        let at = format!("killed at {delay:?} of {took:?}");
        assert!(
            !text(&last.stderr).contains("panicked"),
            "{at}: {}",
            text(&last.stderr)
        );
        assert_eq!(
            last.status.code(),
            clean.status.code(),
            "{at}: the same exit code as one clean run: {}",
            text(&last.stdout)
        );
        let got = state(&faulted);
        for (which, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                g == w,
                "{at}: the warehouse did not converge: {}",
                first_difference(which, g, w)
            );
        }
        let told = sent(&faulted);
        for id in event_ids(&faulted) {
            assert!(
                told.contains(&id),
                "{at}: event {id} was published but never told"
            );
        }
        // Each file's outcome was published (and so, above, told), whatever was killed when.
        let processed = processed_keys(&faulted);
        for (_, _, key, _) in FILES {
            assert!(
                processed.contains(key),
                "{at}: {key} has no processed event"
            );
        }
    }
    assert!(
        kills >= POINTS - 2,
        "only {kills} of {POINTS} runs were still running when killed"
    );
    eprintln!(
        "{kills} runs killed over {took:?}; each rerun converged on {} ledger rows",
        want[0].lines().count() - 1
    );
}
