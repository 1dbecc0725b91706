//! The `bondlake` binary as a user runs it: exit codes, what goes to stdout and stderr.

use std::path::Path;
use std::process::{Command, Output};

fn bondlake(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bondlake"))
        .args(args)
        .current_dir(cwd)
        .env_remove("BONDLAKE_SLACK_WEBHOOK")
        .output()
        .expect("bondlake runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes a generated holdings file of `rows` records at `out`.
fn gen_holdings(cwd: &Path, out: &Path, rows: u64) {
    let generated = bondlake(
        &[
            "gen",
            "--dataset",
            "investor_holdings",
            "--rows",
            &rows.to_string(),
            "--out",
            out.to_str().expect("utf-8"),
        ],
        cwd,
    );
    assert!(generated.status.success(), "{}", text(&generated.stderr));
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
        "bondlake: contract bonds.toml: unknown dataset `bonds` (known: investor_holdings, market_daily, weekly_series, weekly_trends)\n"
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
        "bondlake: dataset market_daily has no vendor profile `lse` (known: bse, bse_udiff, jpx, jquants, us, us_flat)\n"
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
        4
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
    for cmd in [
        "gen",
        "process",
        "bench",
        "contracts",
        "run",
        "demo",
        "s3-server",
        "load",
        "sql",
        "feed",
        "webhook-receiver",
    ] {
        let out = bondlake(&[cmd, "--help"], dir.path());
        assert!(out.status.success(), "{cmd} --help");
        assert!(text(&out.stdout).contains("Usage: bondlake"), "{cmd}");
    }
}

/// The bench's own lines (no peers), each with its process's CPU time: more than nothing, and
/// no more than the machine's cores could give in the run's wall time.
#[test]
fn bench_reports_each_runs_cpu_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let out = bondlake(
        &[
            "bench",
            "--no-peers",
            "--rows",
            "50000",
            "--repeat",
            "1",
            "--work",
            ".",
            "--json",
            json.to_str().expect("utf-8 path"),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("CPU s  busy"),
        "{}",
        text(&out.stdout)
    );
    let runs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("bench json")).expect("json");
    let runs = runs.as_array().expect("a list of runs");
    assert!(!runs.is_empty());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for run in runs {
        let cpu = run["cpu_seconds"].as_f64().expect("cpu_seconds");
        let wall = run["seconds"].as_f64().expect("seconds");
        assert!(cpu > 0.0, "{run}");
        assert!(cpu <= wall * cores + 0.05, "{run}");
    }
}

#[test]
fn demo_then_run_handles_only_new_files_and_routes_like_the_lambda() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("lake");
    let root_s = root.to_str().expect("utf-8 path");
    let demo = bondlake(&["demo", "--root", root_s], dir.path());
    let out = text(&demo.stdout);
    assert!(demo.status.success(), "{out}{}", text(&demo.stderr));
    for key in bondlake_testkit::synth::DAY.iter().map(|d| d.0) {
        assert!(out.contains(key), "{key} in\n{out}");
    }
    // The Kafka leg: 300 records over 3 partitions, 4 of them poison, landed as 3 raw objects.
    assert!(
        out.contains("300 records: 296 landed, 4 quarantined, none lost."),
        "{out}"
    );
    assert!(out.contains("41856 records read"), "{out}");
    assert!(out.contains("none lost"), "{out}");
    let events =
        std::fs::read_to_string(root.join("events/pipeline-events.jsonl")).expect("events");
    // Three `landed` from the lander; each of the 15 files: `processed` from the csv-processor
    // (the holdings file, over the demo's hand-off limit, from the EMR step after its `handoff`
    // and the launcher's `launched`), then `loaded` from the warehouse-loader; the weekly chain's
    // `processed` (the trends) and `loaded` (their export).
    assert_eq!(events.lines().count(), 37);
    assert_eq!(
        events.matches("\"kind\":\"handoff\"").count(),
        1,
        "{events}"
    );
    assert_eq!(
        events.matches("\"kind\":\"launched\"").count(),
        1,
        "{events}"
    );
    assert!(out.contains("ok on EMR (size)"), "{out}");
    assert_eq!(events.matches("\"kind\":\"landed\"").count(), 3, "{events}");
    assert_eq!(
        events.matches("\"kind\":\"loaded\"").count(),
        16,
        "{events}"
    );
    // Told: each poisoned batch alone, the rest as one digest.
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("notify: ") && l.ends_with("landed with poison records"))
            .count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("notify: 15 files: 41,266 ok, 590 rejected, 37,666 rows loaded"),
        "{out}"
    );
    // The weekly chain: the three vendors' twenty weeks (and the day's FT file) made trends,
    // exported to the embedded warehouse, told.
    assert!(
        out.contains("weekly: 14 series, 440 rows of history"),
        "{out}"
    );
    assert!(
        out.contains("export: loaded into bondlake.weekly_trends in the embedded warehouse: 440 rows, reconciled"),
        "{out}"
    );
    assert!(
        out.contains("notify: weekly trends: 14 series, 72 weeks rebuilt (2016-12-02 to 2026-11-20), 440 rows exported to bondlake.weekly_trends, reconciled"),
        "{out}"
    );
    // With no webhook named, the demo's own stand-in channel received the same five messages.
    assert!(
        out.contains("Slack: the demo's stand-in channel received 5 posts"),
        "{out}"
    );
    assert!(
        out.contains(
            "  15 files: 41,266 ok, 590 rejected, 37,666 rows loaded (3 Block Kit blocks)"
        ),
        "{out}"
    );
    assert!(
        out.contains("warehouse: loaded 19723 rows into bondlake.investor_holdings"),
        "{out}"
    );
    assert!(out.contains("Exposure by investor type"), "{out}");
    let warehouse = format!("duckdb://{}", root.join("warehouse.duckdb").display());

    // Nothing new: the runner finds every file done.
    let again = bondlake(&["run", "--root", root_s, "--once"], dir.path());
    let again_out = text(&again.stdout);
    assert!(again.status.success(), "{again_out}");
    assert!(again_out.contains("0 records read"), "{again_out}");

    // A new vendor file and a stray one: the first is cleaned, the second reported.
    let new_key = "market/XBOM/EQ261126.CSV";
    let target = root.join("raw").join(new_key);
    let target_s = target.to_str().expect("utf-8");
    let generated = bondlake(
        &[
            "gen",
            "--dataset",
            "market_daily",
            "--profile",
            "bse",
            "--rows",
            "500",
            "--out",
            target_s,
        ],
        dir.path(),
    );
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    std::fs::create_dir_all(root.join("raw/unsorted")).expect("mkdir");
    std::fs::write(root.join("raw/unsorted/notes.txt"), "hello").expect("write");
    let run = bondlake(&["run", "--root", root_s, "--once"], dir.path());
    let run_out = text(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(2),
        "a failed file exits 2: {run_out}"
    );
    assert!(
        run_out.contains(new_key) && run_out.contains("market/bse"),
        "{run_out}"
    );
    assert!(run_out.contains("500 records read"), "{run_out}");
    assert!(
        run_out.contains("unsorted/notes.txt: no route for this key"),
        "{run_out}"
    );
    let events =
        std::fs::read_to_string(root.join("events/pipeline-events.jsonl")).expect("events");
    assert_eq!(
        events.lines().count(),
        40,
        "the demo's 37, then processed+loaded for the new file, failed for the stray"
    );

    // The warehouse, queried as an analyst would: the new file is in, once.
    let sql = bondlake(
        &[
            "sql",
            "--warehouse",
            &warehouse,
            "SELECT trade_date, exchange, symbols FROM bondlake.v_market_summary ORDER BY trade_date, exchange",
        ],
        dir.path(),
    );
    let sql_out = text(&sql.stdout);
    assert!(sql.status.success(), "{sql_out}{}", text(&sql.stderr));
    assert!(
        sql_out.starts_with("trade_date  exchange  symbols\n"),
        "{sql_out}"
    );
    assert!(sql_out.contains("(5 rows)"), "{sql_out}");
    assert!(
        sql_out
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["2026-11-26", "BSE", "500"]),
        "{sql_out}"
    );
    // Loading a manifest again by hand: the ledger says it is already there.
    let manifests = root.join("manifests/market_daily");
    let manifest = std::fs::read_dir(&manifests)
        .expect("manifests")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("EQ261126"))
        .expect("the new file's manifest");
    let load = bondlake(
        &[
            "load",
            "--manifest",
            manifest.to_str().expect("utf-8"),
            "--warehouse",
            &warehouse,
        ],
        dir.path(),
    );
    let load_out = text(&load.stdout);
    assert!(load.status.success(), "{load_out}{}", text(&load.stderr));
    assert!(
        load_out.contains("\"outcome\":\"already_loaded\""),
        "{load_out}"
    );

    // The demo refuses a folder it did not make.
    std::fs::write(root.join("mine.txt"), "x").expect("write");
    let refused = bondlake(&["demo", "--root", root_s], dir.path());
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("holds `mine.txt`, which a demo did not write"));
}

#[test]
fn the_warehouse_can_be_queried_while_run_watches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("lake");
    let root_s = root.to_str().expect("utf-8 path");
    let mut run = Command::new(env!("CARGO_BIN_EXE_bondlake"))
        .args(["run", "--root", root_s, "--poll-ms", "100"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run starts");
    let target = root.join("raw/market/NYSE/nyse_eod_20261125.csv");
    let generated = bondlake(
        &[
            "gen",
            "--dataset",
            "market_daily",
            "--rows",
            "300",
            "--out",
            target.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let events = root.join("events/pipeline-events.jsonl");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&events).is_ok_and(|e| e.contains("\"kind\":\"loaded\"")) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no load within a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The runner is still watching, and lets go of the DuckDB file between polls.
    let warehouse = format!("duckdb://{}", root.join("warehouse.duckdb").display());
    let mut last = String::new();
    let ok = (0..100).any(|_| {
        let sql = bondlake(
            &[
                "sql",
                "--warehouse",
                &warehouse,
                "SELECT rows_loaded FROM bondlake.v_data_quality",
            ],
            dir.path(),
        );
        last = text(&sql.stdout) + &text(&sql.stderr);
        sql.status.success() || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            false
        }
    });
    let still_running = run.try_wait().expect("try_wait").is_none();
    let _ = run.kill();
    let _ = run.wait();
    assert!(still_running, "run exited early");
    assert!(ok, "{last}");
    assert!(last.lines().any(|l| l.trim() == "300"), "{last}");
}

/// Runs `bondlake` with the Slack webhook set.
fn bondlake_posting(args: &[&str], cwd: &Path, webhook: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bondlake"))
        .args(args)
        .current_dir(cwd)
        .env("BONDLAKE_SLACK_WEBHOOK", webhook)
        .output()
        .expect("bondlake runs")
}

/// Every file under `dir`, relative path → bytes.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("inside").display().to_string();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

#[test]
fn feed_lands_a_file_through_the_chain_posts_to_slack_and_a_replay_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let receiver = bondlake_testkit::webhook_server::WebhookReceiver::start(
        "127.0.0.1:0",
        "/services/T0/B0/cli-test-token",
        runtime.handle(),
    )
    .expect("receiver");
    let generated = bondlake(
        &[
            "gen",
            "--dataset",
            "investor_holdings",
            "--rows",
            "200",
            "--seed",
            "5",
            "--out",
            "in/positions.csv",
        ],
        d,
    );
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let args = [
        "feed",
        "--topic",
        "investor-holdings",
        "--input",
        "in/positions.csv",
        "--root",
        "lake",
        "--partitions",
        "2",
        "--poison",
        "1",
    ];
    let fed = bondlake_posting(&args, d, receiver.url());
    let out = text(&fed.stdout);
    assert!(fed.status.success(), "{out}{}", text(&fed.stderr));
    assert!(
        out.contains("200 records: 199 landed, 1 quarantined, none lost."),
        "{out}"
    );
    assert!(
        out.contains("199 records read: 199 clean, 0 quarantined, none lost"),
        "{out}"
    );
    assert!(
        out.contains("Warehouse:   2 files loaded or recorded, 0 failed"),
        "{out}"
    );
    assert!(
        !out.contains("cli-test-token"),
        "the webhook's secret part is never printed"
    );
    let posts: Vec<serde_json::Value> = receiver
        .received()
        .iter()
        .map(|r| serde_json::from_str(&r.body).expect("json"))
        .collect();
    let titles: Vec<&str> = posts
        .iter()
        .map(|p| p["text"].as_str().unwrap_or(""))
        .collect();
    // The poisoned batch alone; each other file's landing, cleaning and loading as one message.
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(
        titles[0].contains("landed with poison records"),
        "{titles:?}"
    );
    let per_file: u64 = titles[1..]
        .iter()
        .map(|t| {
            assert!(
                t.starts_with("investor_holdings: investor-holdings p"),
                "{t}"
            );
            assert!(t.contains(" ok, 0 rejected, loaded "), "{t}");
            t.rsplit("loaded ")
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .expect("rows")
        })
        .sum();
    assert_eq!(per_file, 199);
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.path == "/services/T0/B0/cli-test-token")
    );

    // The same file from the same offsets: the same batch, nothing new anywhere.
    let before = files(&d.join("lake/raw"));
    let mut replay = args.to_vec();
    replay.extend(["--start-offset", "0"]);
    let again = bondlake_posting(&replay, d, receiver.url());
    let again_out = text(&again.stdout);
    assert!(again.status.success(), "{again_out}");
    assert_eq!(files(&d.join("lake/raw")), before, "identical raw objects");
    assert!(again_out.contains("0 records read"), "{again_out}");
    assert_eq!(
        receiver.received().len(),
        3,
        "duplicates are not posted again"
    );
}

/// One row of every column type the warehouse tables hold, and a NULL, in the backend's syntax.
const EVERY_TYPE: &str = "SELECT CAST(98848675143.74 AS DECIMAL(18,2)) AS amount, DATE '2026-11-25' AS day, \
     CAST(7433118930 AS BIGINT) AS volume, CAST(22 AS INTEGER) AS rank, CAST(0.5 AS DOUBLE PRECISION) AS score, \
     CAST('2026-11-26 14:30:00.123456+00' AS TIMESTAMPTZ) AS at, 'O''Brien, \"Jr\"' AS name, TRUE AS ok, \
     CAST(NULL AS DECIMAL(18,2)) AS missing";

/// `bondlake sql` in each format over EVERY_TYPE; returns (table, csv, json).
fn sql_every_format(warehouse: &str, cwd: &Path) -> (String, String, serde_json::Value) {
    let mut outs = Vec::new();
    for format in ["table", "csv", "json"] {
        let out = bondlake(
            &[
                "sql",
                "--warehouse",
                warehouse,
                "--format",
                format,
                EVERY_TYPE,
            ],
            cwd,
        );
        assert!(
            out.status.success(),
            "{format} on {warehouse}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        outs.push(text(&out.stdout));
    }
    let json = serde_json::from_str(&outs[2]).expect("sql --format json is JSON");
    (outs[0].clone(), outs[1].clone(), json)
}

fn assert_every_type(warehouse: &str, (table, csv, json): (String, String, serde_json::Value)) {
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "amount", "day", "volume", "rank", "score", "at", "name", "ok", "missing"
        ],
        "{warehouse}:\n{table}"
    );
    assert!(
        lines[2].contains("98848675143.74  2026-11-25  7433118930    22    0.5"),
        "{table}"
    );
    // The same instant in UTC, whichever way the backend writes the offset (`Z`, `+00`).
    assert!(
        lines[2].contains("2026-11-26T14:30:00.123456Z")
            || lines[2].contains("2026-11-26 14:30:00.123456+00"),
        "{table}"
    );
    // A NULL in a number column is right-aligned with its numbers.
    assert!(
        lines[2].ends_with("O'Brien, \"Jr\"  true     NULL"),
        "{table}"
    );
    assert_eq!(lines[3], "(1 rows)", "{table}");
    let mut csv_lines = csv.lines();
    assert_eq!(
        csv_lines.next(),
        Some("amount,day,volume,rank,score,at,name,ok,missing")
    );
    let row = csv_lines.next().expect("a row");
    assert!(
        row.starts_with("98848675143.74,2026-11-25,7433118930,22,0.5,2026-11-26"),
        "{row}"
    );
    assert!(row.ends_with(",\"O'Brien, \"\"Jr\"\"\",true,"), "{row}");
    let r = &json[0];
    // Exact: serde_json would print a float's nearest double, so compare the text.
    assert_eq!(r["amount"].to_string(), "98848675143.74", "{json}");
    assert_eq!(r["volume"], 7433118930u64);
    assert_eq!(r["rank"], 22);
    assert_eq!(r["score"], 0.5);
    assert_eq!(r["day"], "2026-11-25");
    assert!(
        r["at"].as_str().is_some_and(
            |t| t == "2026-11-26T14:30:00.123456Z" || t == "2026-11-26 14:30:00.123456+00"
        ),
        "{json}"
    );
    assert_eq!(r["name"], "O'Brien, \"Jr\"");
    assert_eq!(r["ok"], true);
    assert!(r["missing"].is_null(), "{json}");
}

#[test]
fn sql_prints_every_column_type_on_duckdb_and_postgresql_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("lake");
    let root_s = root.to_str().expect("utf-8 path");
    // An empty lake: the run creates the embedded warehouse's tables and views.
    let run = bondlake(&["run", "--root", root_s, "--once"], dir.path());
    assert!(run.status.success(), "{}", text(&run.stderr));
    let duck = format!("duckdb://{}", root.join("warehouse.duckdb").display());
    assert_every_type(&duck, sql_every_format(&duck, dir.path()));
    let pg = std::env::var("BONDLAKE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    assert_every_type(&pg, sql_every_format(&pg, dir.path()));
    // The ledger's and the views' own types: timestamptz columns included.
    let quality = bondlake(
        &[
            "sql",
            "--warehouse",
            &duck,
            "SELECT * FROM bondlake.v_data_quality",
        ],
        dir.path(),
    );
    assert!(quality.status.success(), "{}", text(&quality.stderr));
    assert!(text(&quality.stdout).contains("processed_at"));
}

/// Runs bondlake with stdout a pipe whose reader is already gone, as `bondlake ... | head -0`.
fn into_a_closed_pipe(args: &[&str], cwd: &Path) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_bondlake"))
        .args(args)
        .current_dir(cwd)
        .env_remove("BONDLAKE_SLACK_WEBHOOK")
        .stdout(writer)
        .output()
        .expect("bondlake runs")
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("lake");
    let root_s = root.to_str().expect("utf-8 path");
    std::fs::create_dir_all(root.join("raw/market/NYSE")).expect("mkdir");
    let generated = bondlake(
        &[
            "gen",
            "--dataset",
            "market_daily",
            "--rows",
            "50",
            "--out",
            root.join("raw/market/NYSE/nyse_eod_20261125.csv")
                .to_str()
                .expect("utf-8"),
        ],
        dir.path(),
    );
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    for args in [
        &["contracts"][..],
        &["run", "--root", root_s, "--once", "--no-warehouse"],
    ] {
        let out = into_a_closed_pipe(args, dir.path());
        assert_eq!(
            out.status.signal(),
            Some(libc_sigpipe()),
            "{args:?}: {:?} {}",
            out.status,
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), "", "{args:?}");
    }
}

/// SIGPIPE's number on Linux and the BSDs.
fn libc_sigpipe() -> i32 {
    13
}

#[test]
fn the_local_servers_refuse_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bondlake(&["s3-server", "--addr", "0.0.0.0:9400"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "bondlake: 0.0.0.0:9400: not a loopback address (a stand-in whose keys are public listens only on 127.0.0.1 or [::1])\n"
    );
    let out = bondlake(&["webhook-receiver", "--listen", "0.0.0.0:0"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "bondlake: Slack stand-in on 0.0.0.0:0: not a loopback address (a stand-in whose keys are public listens only on 127.0.0.1 or [::1])\n"
    );
}

#[test]
fn kafka_replay_lands_a_given_up_batch_once_from_its_failure_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let event: serde_json::Value =
        serde_json::from_str(include_str!("../../events/msk-holdings.json")).expect("json");
    // What the S3 on-failure destination keeps: metadata, and the invocation's event.
    let record = serde_json::json!({
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "version": "1.0",
        "payload": event,
    });
    std::fs::write(d.join("failed-batch.json"), record.to_string()).expect("write");
    let lake = d.join("lake");
    let lake_s = lake.to_str().expect("utf-8");
    let out = bondlake(&["kafka-replay", "--root", lake_s, "failed-batch.json"], d);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let first = files(&lake.join("raw"));
    assert_eq!(
        first.len(),
        2,
        "one object per partition: {:?}",
        first.keys()
    );
    assert!(
        text(&out.stdout).contains("3 records: 3 landed, 0 quarantined, none lost."),
        "{}",
        text(&out.stdout)
    );
    // Replayed again: the same objects, nothing written twice.
    let again = bondlake(&["kafka-replay", "--root", lake_s, "failed-batch.json"], d);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(files(&lake.join("raw")), first);
    // A file that is not a failure record is refused, naming it.
    std::fs::write(d.join("not-one.json"), "{}").expect("write");
    let bad = bondlake(&["kafka-replay", "--root", lake_s, "not-one.json"], d);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("not-one.json: invalid input: no payload"),
        "{}",
        text(&bad.stderr)
    );
    // The landed objects go through the chain like any.
    let run = bondlake(&["run", "--root", lake_s, "--once", "--no-warehouse"], d);
    assert!(
        text(&run.stdout).contains("3 records read: 3 clean"),
        "{}",
        text(&run.stdout)
    );
}

/// `run` reads only files inside its lake: symbolic links (to a file elsewhere, to a folder, or
/// looping) are skipped, not read and not failed on every poll.
#[cfg(unix)]
#[test]
fn run_skips_symbolic_links_in_the_raw_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("lake");
    let root_s = root.to_str().expect("utf-8 path");
    let holdings = root.join("raw/holdings/custodian_a");
    std::fs::create_dir_all(&holdings).expect("mkdir");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let secret = outside.join("secret_20261125.csv");
    std::fs::write(&secret, "as_of_date\n2026-11-25\n").expect("write");
    std::os::unix::fs::symlink(&secret, holdings.join("linked_20261125.csv")).expect("link");
    std::os::unix::fs::symlink(&outside, holdings.join("linked_folder")).expect("link");
    std::os::unix::fs::symlink(&holdings, holdings.join("loop")).expect("link");
    let file = holdings.join("holdings_20261125.csv.gz");
    gen_holdings(dir.path(), &file, 100);
    for _ in 0..2 {
        let run = bondlake(&["run", "--root", root_s, "--once"], dir.path());
        let out = text(&run.stdout);
        assert!(run.status.success(), "{out}{}", text(&run.stderr));
        assert!(!out.contains("linked") && !out.contains("loop"), "{out}");
    }
    let manifests: Vec<_> = std::fs::read_dir(root.join("manifests/investor_holdings"))
        .expect("manifests")
        .collect();
    assert_eq!(manifests.len(), 1, "only the real file was processed");
}

/// A manifest that never reached the warehouse (a run killed between the manifest and its load,
/// or one run with --no-warehouse) is loaded by the next run, which reports it: the local runner
/// converges on "every manifest is in the ledger", as the Lambda path does through its queue.
#[test]
fn a_manifest_left_unloaded_is_loaded_by_the_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("lake");
    let root_s = root.to_str().expect("utf-8 path");
    let file = root.join("raw/holdings/custodian_a/holdings_20261125.csv.gz");
    gen_holdings(dir.path(), &file, 300);
    let clean_only = bondlake(
        &["run", "--root", root_s, "--once", "--no-warehouse"],
        dir.path(),
    );
    assert!(clean_only.status.success(), "{}", text(&clean_only.stderr));
    assert!(!text(&clean_only.stdout).contains("warehouse: loaded"));
    let next = bondlake(&["run", "--root", root_s, "--once"], dir.path());
    let out = text(&next.stdout);
    assert!(next.status.success(), "{out}{}", text(&next.stderr));
    assert!(
        out.contains("warehouse: loaded") && out.contains("into bondlake.investor_holdings"),
        "{out}"
    );
    let again = bondlake(&["run", "--root", root_s, "--once"], dir.path());
    let again_out = text(&again.stdout);
    assert!(
        !again_out.contains("warehouse: loaded"),
        "loaded once: {again_out}"
    );
    let warehouse = format!("duckdb://{}", root.join("warehouse.duckdb").display());
    let count = bondlake(
        &[
            "sql",
            "--warehouse",
            &warehouse,
            "--format",
            "csv",
            "SELECT COUNT(*) AS n FROM bondlake.load_ledger",
        ],
        dir.path(),
    );
    assert_eq!(
        text(&count.stdout).trim(),
        "n\n1",
        "{}",
        text(&count.stderr)
    );
}

/// `run --once` does not read a file that is still being written: it waits until the file has
/// stopped changing, so every row is loaded, not the half that was there at the first look.
#[test]
fn run_once_waits_for_a_file_still_being_written() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("lake");
    let root_s = root.to_str().expect("utf-8 path");
    let whole = root.join("whole.csv");
    gen_holdings(dir.path(), &whole, 4000);
    let bytes = std::fs::read(&whole).expect("read");
    let target = root.join("raw/holdings/custodian_a/holdings_20261125.csv");
    std::fs::create_dir_all(target.parent().expect("folder")).expect("mkdir");
    let mut file = std::fs::File::create(&target).expect("create");
    let half = bytes.len() / 2;
    file.write_all(&bytes[..half]).expect("first half");
    file.flush().expect("flush");
    let rest = bytes[half..].to_vec();
    let writer = std::thread::spawn(move || {
        // The rest arrives over the next 1.5 s, in pieces, as a slow copy would.
        for piece in rest.chunks(rest.len() / 6 + 1) {
            std::thread::sleep(std::time::Duration::from_millis(250));
            file.write_all(piece).expect("write");
            file.flush().expect("flush");
        }
    });
    let run = bondlake(&["run", "--root", root_s, "--once"], dir.path());
    writer.join().expect("writer");
    let out = text(&run.stdout);
    assert!(run.status.success(), "{out}{}", text(&run.stderr));
    assert!(out.contains("4000 records read"), "{out}");
}

/// The count of rows in a warehouse table of the lake `root`.
fn table_rows(root: &Path, table: &str, cwd: &Path) -> String {
    let url = format!("duckdb://{}/warehouse.duckdb", root.display());
    let out = bondlake(
        &[
            "sql",
            "--warehouse",
            &url,
            "--format",
            "csv",
            &format!("SELECT count(*) AS n FROM bondlake.{table}"),
        ],
        cwd,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn a_replayed_day_changes_nothing_and_a_new_contract_version_is_merged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("lake");
    let root_s = root.to_str().expect("utf-8");
    let demo = bondlake(&["demo", "--root", root_s], dir.path());
    assert!(demo.status.success(), "{}", text(&demo.stderr));
    let before = (
        table_rows(&root, "investor_holdings", dir.path()),
        table_rows(&root, "market_daily", dir.path()),
    );
    // The demo wrote its raw files today (UTC).
    let today = bondlake_core::parse::format_date(
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            / 86_400) as i32,
    );
    let replay = bondlake(&["replay", "--root", root_s, "--from", &today], dir.path());
    let out = text(&replay.stdout);
    assert!(replay.status.success(), "{out}{}", text(&replay.stderr));
    assert_eq!(
        out.matches("warehouse: already loaded").count(),
        15,
        "every file of the day already loaded: {out}"
    );
    assert!(!out.contains("warehouse: loaded"), "{out}");
    let after = (
        table_rows(&root, "investor_holdings", dir.path()),
        table_rows(&root, "market_daily", dir.path()),
    );
    assert_eq!(before, after, "no row changed");

    // A new version of the holdings contract: new keys, merged by the loader, no row doubled.
    let contracts = dir.path().join("contracts");
    std::fs::create_dir_all(&contracts).expect("mkdir");
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts");
    for e in std::fs::read_dir(&here).expect("contracts").flatten() {
        let mut toml = std::fs::read_to_string(e.path()).expect("read");
        if e.file_name() == "investor_holdings.toml" {
            assert!(
                toml.contains("version = \"1.1.0\""),
                "the shipped version moved: update this test"
            );
            toml = toml.replace("version = \"1.1.0\"", "version = \"1.2.0\"");
        }
        std::fs::write(contracts.join(e.file_name()), toml).expect("write");
    }
    let manifests = |root: &Path| {
        std::fs::read_dir(root.join("manifests/investor_holdings"))
            .map(|rd| rd.count())
            .unwrap_or(0)
    };
    let manifests_before = manifests(&root);
    let replay = bondlake(
        &[
            "replay",
            "--root",
            root_s,
            "--from",
            &today,
            "--dataset",
            "investor_holdings",
            "--contracts",
            contracts.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    let out = text(&replay.stdout);
    assert!(replay.status.success(), "{out}{}", text(&replay.stderr));
    assert!(
        !out.contains("market/"),
        "only the holdings objects ran: {out}"
    );
    assert_eq!(out.matches("warehouse: loaded").count(), 4, "{out}");
    assert_eq!(
        manifests(&root),
        2 * manifests_before,
        "a new manifest for each"
    );
    assert_eq!(
        table_rows(&root, "investor_holdings", dir.path()),
        before.0,
        "merged, not appended"
    );
}

/// A client that drops a download half read (csv-processor handing a file off does) must not end
/// `bondlake s3-server`: the server's write to the closed connection is an error for that
/// connection, never a SIGPIPE for the process.
#[test]
fn the_s3_server_outlives_a_client_that_drops_a_download() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("s3");
    std::fs::create_dir_all(root.join("raw")).expect("bucket");
    // Large enough that the server is still writing when the client goes.
    std::fs::write(root.join("raw/big.bin"), vec![7u8; 64 << 20]).expect("object");
    let mut server = Command::new(env!("CARGO_BIN_EXE_bondlake"))
        .args([
            "s3-server",
            "--root",
            root.to_str().expect("utf-8"),
            "--addr",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("s3-server starts");
    let mut first = String::new();
    // Kept open to the end: the server ends, as any command does, when its stdout is closed
    // while it still writes its banner.
    let mut banner = std::io::BufReader::new(server.stdout.take().expect("stdout"));
    banner.read_line(&mut first).expect("its first line");
    let endpoint = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the endpoint")
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = bondlake_testkit::s3_server::local_client(
        &endpoint,
        bondlake_testkit::s3_server::ACCESS_KEY,
        bondlake_testkit::s3_server::SECRET_KEY,
    );
    for _ in 0..3 {
        runtime.block_on(async {
            let mut object = client
                .get_object()
                .bucket("raw")
                .key("big.bin")
                .send()
                .await
                .expect("GetObject");
            let chunk = object.body.try_next().await.expect("a chunk");
            assert!(chunk.is_some_and(|c| !c.is_empty()));
            // The rest is never read: the connection closes under the server's writes.
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let still = runtime.block_on(client.list_objects_v2().bucket("raw").send());
    let alive = server.try_wait().expect("status").is_none();
    drop(banner);
    let _ = server.kill();
    let out = server.wait_with_output().expect("output");
    assert!(alive, "s3-server ended: {}", text(&out.stderr));
    assert_eq!(
        still.expect("the server still answers").key_count(),
        Some(1)
    );
}
