//! The weekly job (`bondlake_core::weekly`) over weekly_series files cleaned by the real
//! pipeline: the features as docs/datasets.md defines them, over the edge cases (a null in a
//! window, a missing week, zero variance, a zero previous value, negatives, exact .5 ties at the
//! 6th decimal, values at decimal(18,6)'s limit, a week carried by two files), checked against
//! numbers worked out by hand, and against the same features computed independently by DuckDB's
//! SQL from the same Parquet parts. Then reruns and the weeks rebuilt.

use bondlake_core::output::OutputOptions;
use bondlake_core::store::{LocalStore, ObjectStore as _};
use bondlake_core::weekly;
use bondlake_tests::{clean_weekly, contract, read_parquet};
use bondlake_warehouse_duckdb::DuckDb;
use std::collections::BTreeMap;
use std::path::Path;

type Row = BTreeMap<String, String>;

/// Consecutive Fridays from 2026-01-02.
fn friday(k: i32) -> String {
    let first = bondlake_core::parse::days_from_civil(2026, 1, 2).expect("a Friday");
    bondlake_core::parse::format_date(first + 7 * k)
}

/// Cleans a wide file `text` as the raw object `key`, written (its event time) at `at`.
fn clean(lake: &Path, key: &str, text: &str, at: &str) {
    let m = clean_weekly(lake, key, text, at);
    assert_eq!(m.rows_rejected, 0, "{key}: {:?}", m.reject_reasons);
}

/// A wide file: `Date,<series...>` and one row per week `k` in `weeks` with `cell(series, k)`.
fn wide(
    series: &[&str],
    weeks: impl Iterator<Item = i32>,
    cell: impl Fn(&str, i32) -> String,
) -> String {
    let mut text = format!("Date,{}\n", series.join(","));
    for k in weeks {
        let cells: Vec<String> = series.iter().map(|s| cell(s, k)).collect();
        text.push_str(&format!("{},{}\n", friday(k), cells.join(",")));
    }
    text
}

const MAX: &str = "999999999999.999999";

/// The edge cases, in three files of FT/RATES and one of QUANDL.
fn edge_lake(lake: &Path) {
    let series = ["STEADY", "GAPPY", "FLAT", "ZERO", "NEG", "TIES", "BIG"];
    let first = wide(&series, 0..16, |s, k| match s {
        "STEADY" => (k + 1).to_string(),
        // A null inside every window of weeks 5 to 17.
        "GAPPY" if k == 5 => String::new(),
        "GAPPY" => format!("{}.25", 10 + k),
        "FLAT" => "5".into(),
        // 0 then 3: a change against zero.
        "ZERO" => if k % 2 == 0 { "0" } else { "3" }.into(),
        "NEG" => format!("-{}.5", k),
        // Means that land exactly on .5 at the 6th decimal: (1+2+0+3)/4 = 1.5e-6.
        "TIES" => ["0.000001", "0.000002", "0.000000", "0.000003"][(k % 4) as usize].into(),
        "BIG" if k % 2 == 0 => MAX.into(),
        "BIG" => format!("-{MAX}"),
        _ => unreachable!(),
    });
    clean(
        lake,
        "weekly/FT/RATES/2026-04-17.csv",
        &first,
        "2026-04-17T18:00:00Z",
    );
    // A series with a week missing altogether (week 7), in a file of its own.
    let hole = wide(&["HOLE"], (0..16).filter(|k| *k != 7), |_, k| {
        (100 + k).to_string()
    });
    clean(
        lake,
        "weekly/FT/HOLES/2026-04-17.csv",
        &hole,
        "2026-04-17T18:05:00Z",
    );
    // Week 3 of STEADY carried again by a later file with another value: the later one wins.
    let again = wide(&["STEADY"], 3..4, |_, _| "40".into());
    clean(
        lake,
        "weekly/FT/RATES/2026-04-24.csv",
        &again,
        "2026-04-24T18:00:00Z",
    );
    // Another vendor, another dataset code, the same series name: another series.
    let quandl = wide(&["STEADY"], 0..16, |_, k| format!("{}", 2 * k));
    clean(
        lake,
        "weekly/QUANDL/FRED-X/2026-04-17.csv",
        &quandl,
        "2026-04-17T18:10:00Z",
    );
}

fn run_job(lake: &Path) -> (weekly::Ran, Vec<Row>) {
    let ran = weekly::run(
        &LocalStore::new(lake),
        "processed",
        &contract("weekly_trends"),
        OutputOptions::default(),
    )
    .expect("the weekly job runs");
    let mut rows = Vec::new();
    if let Some((_, m)) = &ran.manifest {
        for o in &m.outputs {
            let mut part = read_parquet(&lake.join(&o.key));
            // The z-scores at full precision (the text helper shows six places).
            for (row, z) in part.iter_mut().zip(zscores(&lake.join(&o.key))) {
                row.insert(
                    "zscore_13w".into(),
                    z.map_or(String::new(), |z| z.to_string()),
                );
            }
            rows.extend(part);
        }
    }
    rows.sort_by_key(key);
    (ran, rows)
}

/// The `zscore_13w` column of a part, in row order.
fn zscores(path: &Path) -> Vec<Option<f64>> {
    use arrow_array::Array as _;
    use arrow_array::cast::AsArray as _;
    let file = std::fs::File::open(path).expect("part");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .expect("reader");
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let z = batch
            .column_by_name("zscore_13w")
            .expect("zscore_13w")
            .as_primitive::<arrow_array::types::Float64Type>();
        out.extend((0..z.len()).map(|i| z.is_valid(i).then(|| z.value(i))));
    }
    out
}

fn key(r: &Row) -> (String, String, String, String) {
    (
        r["source"].clone(),
        r["dataset_code"].clone(),
        r["series"].clone(),
        r["week_ending"].clone(),
    )
}

fn find<'r>(rows: &'r [Row], code: &str, series: &str, k: i32) -> &'r Row {
    rows.iter()
        .find(|r| {
            r["dataset_code"] == code && r["series"] == series && r["week_ending"] == friday(k)
        })
        .unwrap_or_else(|| panic!("{code} {series} week {k}"))
}

#[test]
fn the_features_follow_the_definitions_on_the_edge_cases() {
    let dir = tempfile::tempdir().expect("tempdir");
    edge_lake(dir.path());
    let (ran, rows) = run_job(dir.path());
    assert_eq!(ran.series, 9);
    assert_eq!(rows.len(), 7 * 16 + 15 + 16);
    // STEADY, with week 3 replaced by the later file's 40.
    let w3 = find(&rows, "RATES", "STEADY", 3);
    assert_eq!(w3["value"], "40.000000");
    assert_eq!(w3["_source_key"], "weekly/FT/RATES/2026-04-24.csv");
    assert_eq!(w3["wow_change"], "37.000000");
    assert_eq!(w3["wow_pct"], "1233.333333");
    assert_eq!(
        find(&rows, "RATES", "STEADY", 4)["wow_change"],
        "-35.000000"
    );
    // A row's lineage is the newest input it read: weeks 3 to 15 read the correction (the
    // 13-week window), week 2 does not.
    for (k, file) in [(2, "2026-04-17"), (4, "2026-04-24"), (15, "2026-04-24")] {
        assert_eq!(
            find(&rows, "RATES", "STEADY", k)["_source_key"],
            format!("weekly/FT/RATES/{file}.csv"),
            "week {k}"
        );
    }
    // (40 + 5 + 6 + 7) / 4 = 14.5
    assert_eq!(find(&rows, "RATES", "STEADY", 6)["ma_4w"], "14.500000");
    assert_eq!(
        find(&rows, "RATES", "STEADY", 2)["ma_4w"],
        "",
        "three weeks only"
    );
    // A gap: null itself, nulls every window over it, comes back after.
    let g5 = find(&rows, "RATES", "GAPPY", 5);
    assert_eq!((g5["value"].as_str(), g5["wow_change"].as_str()), ("", ""));
    assert_eq!(find(&rows, "RATES", "GAPPY", 6)["wow_change"], "");
    assert_eq!(find(&rows, "RATES", "GAPPY", 7)["wow_change"], "1.000000");
    assert_eq!(
        find(&rows, "RATES", "GAPPY", 8)["ma_4w"],
        "",
        "the window holds the gap"
    );
    assert_eq!(find(&rows, "RATES", "GAPPY", 9)["ma_4w"], "17.750000");
    assert_eq!(
        find(&rows, "RATES", "GAPPY", 15)["ma_13w"],
        "",
        "week 5 is 10 weeks back"
    );
    // A missing week: no row, and the next week is not compared with two weeks ago.
    assert!(
        rows.iter()
            .all(|r| !(r["series"] == "HOLE" && r["week_ending"] == friday(7)))
    );
    assert_eq!(find(&rows, "HOLES", "HOLE", 8)["wow_change"], "");
    assert_eq!(find(&rows, "HOLES", "HOLE", 9)["wow_change"], "1.000000");
    assert_eq!(find(&rows, "HOLES", "HOLE", 11)["ma_4w"], "109.500000");
    // Zero variance, a zero previous value.
    let f = find(&rows, "RATES", "FLAT", 15);
    assert_eq!(
        (f["ma_13w"].as_str(), f["zscore_13w"].as_str()),
        ("5.000000", "")
    );
    let z = find(&rows, "RATES", "ZERO", 1);
    assert_eq!(
        (z["wow_change"].as_str(), z["wow_pct"].as_str()),
        ("3.000000", "")
    );
    assert_eq!(find(&rows, "RATES", "ZERO", 2)["wow_pct"], "-100.000000");
    // Negatives: -4.5 to -5.5 is a change of -1 against |-4.5|: -22.222222%.
    let n = find(&rows, "RATES", "NEG", 5);
    assert_eq!(
        (n["wow_change"].as_str(), n["wow_pct"].as_str()),
        ("-1.000000", "-22.222222")
    );
    assert_eq!(find(&rows, "RATES", "NEG", 4)["ma_4w"], "-3.000000");
    // .5 ties round away from zero: 1.5e-6 to 2e-6.
    assert_eq!(find(&rows, "RATES", "TIES", 3)["ma_4w"], "0.000002");
    // The limit: the change does not fit (null), the percent does, the mean is exact.
    let b = find(&rows, "RATES", "BIG", 12);
    assert_eq!(b["wow_change"], "", "2 x max does not fit decimal(18,6)");
    assert_eq!(b["wow_pct"], "200.000000");
    assert_eq!(b["ma_13w"], "76923076923.076923");
    let z: f64 = b["zscore_13w"].parse().expect("a z-score");
    assert!((z - 12.0 / 168f64.sqrt()).abs() < 1e-9, "{z}");
    // The z-score of 1..13 plus one: (14 - 8) / sqrt(14) at week 13 of QUANDL's 0, 2, 4, ...
    let q = find(&rows, "FRED-X", "STEADY", 15);
    assert_eq!(q["ma_13w"], "18.000000");
    let z: f64 = q["zscore_13w"].parse().expect("a z-score");
    assert!((z - 6.0 / 14f64.sqrt()).abs() < 1e-9, "{z}");
}

/// The features again, independently: DuckDB's SQL over the same weekly_series parts (window
/// functions over calendar ranges, HUGEINT arithmetic, its own stddev_pop), compared cell by
/// cell with the job's, the z-score within 1e-9.
#[test]
fn duckdb_sql_computes_the_same_features_from_the_same_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    edge_lake(dir.path());
    let (_, job) = run_job(dir.path());
    let parts = LocalStore::new(dir.path())
        .list("processed/weekly_series/")
        .expect("parts")
        .into_iter()
        .map(|k| format!("'{}'", dir.path().join(k).display()))
        .collect::<Vec<_>>()
        .join(", ");
    let window = |days: u32| {
        format!(
            "OVER (PARTITION BY source, dataset_code, series ORDER BY week_ending RANGE BETWEEN INTERVAL {days} DAYS PRECEDING AND CURRENT ROW)"
        )
    };
    let round = |n: &str, d: &str| {
        format!(
            "CASE WHEN {n} >= 0 THEN (2 * ({n}) + {d}) // (2 * {d}) ELSE -((-2 * ({n}) + {d}) // (2 * {d})) END"
        )
    };
    let sql = format!(
        "WITH ranked AS (
           SELECT *, row_number() OVER (PARTITION BY source, dataset_code, series, week_ending
             ORDER BY _source_order DESC NULLS LAST, _ingested_at DESC, _source_key DESC, _record_number DESC) AS rn
           FROM read_parquet([{parts}])),
         v AS (SELECT source, dataset_code, series, week_ending, CAST(CAST(value AS DECIMAL(38,6)) * 1000000 AS HUGEINT) AS a
               FROM ranked WHERE rn = 1),
         w AS (SELECT *,
           lag(a) OVER (PARTITION BY source, dataset_code, series ORDER BY week_ending) AS prev,
           lag(week_ending) OVER (PARTITION BY source, dataset_code, series ORDER BY week_ending) AS prev_week,
           count(a) {w4} AS n4, sum(a) {w4} AS s4,
           count(a) {w13} AS n13, sum(a) {w13} AS s13, min(a) {w13} AS lo13, max(a) {w13} AS hi13,
           stddev_pop(CAST(a AS DOUBLE)) {w13} AS sd13, avg(CAST(a AS DOUBLE)) {w13} AS m13
           FROM v)
         SELECT source, dataset_code, series, CAST(week_ending AS VARCHAR),
           CAST(a AS VARCHAR),
           CASE WHEN prev_week = week_ending - INTERVAL 7 DAYS AND abs(a - prev) <= 999999999999999999
             THEN CAST(a - prev AS VARCHAR) END,
           CASE WHEN prev_week = week_ending - INTERVAL 7 DAYS AND prev <> 0 THEN CAST({pct} AS VARCHAR) END,
           CASE WHEN n4 = 4 THEN CAST({ma4} AS VARCHAR) END,
           CASE WHEN n13 = 13 THEN CAST({ma13} AS VARCHAR) END,
           CASE WHEN n13 = 13 AND lo13 <> hi13 THEN (CAST(a AS DOUBLE) - m13) / sd13 END
         FROM w ORDER BY 1, 2, 3, 4",
        w4 = window(21),
        w13 = window(84),
        pct = round("(a - prev) * 100000000", "abs(prev)"),
        ma4 = round("s4", "4"),
        ma13 = round("s13", "13"),
    );
    let mut duck = DuckDb::open(&dir.path().join("check.duckdb")).expect("duckdb");
    let got = duck.query_table(&sql).expect("the SQL runs");
    assert_eq!(got.rows.len(), job.len());
    let scaled = |text: &str| -> String {
        if text.is_empty() {
            return String::new();
        }
        let v: i128 = bondlake_core::parse::parse_decimal(text.as_bytes(), 38, 6).expect("decimal");
        v.to_string()
    };
    let big = |v: &Option<String>| {
        v.clone().filter(|t| {
            // A wow_pct past decimal(18,6) is null for the job too.
            t.parse::<i128>()
                .map_or(true, |n| n.abs() <= 999_999_999_999_999_999)
        })
    };
    for (sql_row, job_row) in got.rows.iter().zip(&job) {
        let where_ = format!("{:?}", key(job_row));
        assert_eq!(
            sql_row[2].as_deref(),
            Some(job_row["series"].as_str()),
            "{where_}"
        );
        assert_eq!(
            sql_row[3].as_deref(),
            Some(job_row["week_ending"].as_str()),
            "{where_}"
        );
        for (i, column) in ["value", "wow_change", "wow_pct", "ma_4w", "ma_13w"]
            .iter()
            .enumerate()
        {
            let want = big(&sql_row[4 + i]).unwrap_or_default();
            assert_eq!(scaled(&job_row[*column]), want, "{where_} {column}");
        }
        match (sql_row[9].as_deref(), job_row["zscore_13w"].as_str()) {
            (None, "") => {}
            (Some(s), j) if !j.is_empty() => {
                let (s, j): (f64, f64) = (s.parse().expect("sql z"), j.parse().expect("job z"));
                assert!((s - j).abs() < 1e-9, "{where_}: {s} {j}");
            }
            (s, j) => panic!("{where_}: zscore {s:?} against {j:?}"),
        }
    }
}

#[test]
fn a_rerun_writes_the_same_keys_and_a_new_file_rebuilds_only_its_weeks() {
    let dir = tempfile::tempdir().expect("tempdir");
    edge_lake(dir.path());
    let (first, rows) = run_job(dir.path());
    let (key, manifest) = first.manifest.clone().expect("a manifest");
    assert_eq!(first.weeks.len(), 16, "every week, the first time");
    assert_eq!(manifest.checksums.len(), 16);
    assert_eq!(manifest.rows_written, rows.len() as u64);
    // The same inputs: the same run again, the same keys and rows.
    let (again, rows_again) = run_job(dir.path());
    let (key_again, manifest_again) = again.manifest.clone().expect("a manifest");
    assert_eq!(key_again, key);
    assert_eq!(
        manifest_again
            .outputs
            .iter()
            .map(|o| &o.key)
            .collect::<Vec<_>>(),
        manifest.outputs.iter().map(|o| &o.key).collect::<Vec<_>>()
    );
    assert_eq!(manifest_again.checksums, manifest.checksums);
    assert_eq!(rows_again, rows);
    // A file with week 14 corrected for STEADY: weeks 14 and 15 (all series) are rebuilt.
    let fix = wide(&["STEADY"], 14..15, |_, _| "99".into());
    clean(
        dir.path(),
        "weekly/FT/RATES/2026-05-01.csv",
        &fix,
        "2026-05-01T18:00:00Z",
    );
    let (third, rows_third) = run_job(dir.path());
    let weeks: Vec<String> = third
        .weeks
        .iter()
        .map(|w| bondlake_core::parse::format_date(*w))
        .collect();
    assert_eq!(weeks, [friday(14), friday(15)]);
    let (key_third, manifest_third) = third.manifest.clone().expect("a manifest");
    assert_ne!(key_third, key);
    assert_eq!(rows_third.len(), 2 * 9, "two whole weeks, every series");
    assert_eq!(
        find(&rows_third, "RATES", "STEADY", 14)["value"],
        "99.000000"
    );
    assert_eq!(
        find(&rows_third, "RATES", "STEADY", 15)["wow_change"],
        "-83.000000"
    );
    assert_eq!(manifest_third.inputs.len(), 5);
}

/// The weekly schedule's run through the EMR launcher (its local backend runs this job): claimed
/// once per scheduled time, the result written last with what the run did, a `launched` event
/// saying `weekly`; the schedule's retried delivery does nothing; an EMR failure of the run is
/// told once, with the retry that sends it again.
#[test]
fn the_launcher_runs_a_scheduled_weekly_once_and_tells_its_failure() {
    use bondlake_core::events::{EventKind, JsonLinesSink};
    use bondlake_core::launch::{Launched, Launcher, LocalBackend, StateChange, Work};
    use bondlake_core::weekly::{WeeklyRequest, WeeklyResult};
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    edge_lake(dir.path());
    let store = Arc::new(LocalStore::new(dir.path()));
    let processed = store.clone();
    let launcher = Launcher::new(
        store.clone(),
        Arc::new(JsonLinesSink::new(dir.path().join("events.jsonl"))),
        Arc::new(LocalBackend::new(move |job| match &job.work {
            Work::Weekly(r) => weekly::request::run_here(processed.as_ref(), r, None).map(|_| ()),
            _ => panic!("only the weekly job here"),
        })),
    );
    let request =
        WeeklyRequest::new("processed", "2026-04-18T11:00:00Z", "bondlake", "", "").expect("ok");
    let Launched::Submitted(event) = launcher.weekly(&request).expect("launched") else {
        panic!("not submitted")
    };
    let launch = event.launch().expect("launch info");
    assert_eq!((launch.work.as_str(), launch.attempt), ("weekly", 1));
    assert_eq!(event.dataset.as_deref(), Some("weekly_trends"));
    let result: WeeklyResult = serde_json::from_slice(
        &std::fs::read(dir.path().join(request.result_key())).expect("the result"),
    )
    .expect("json");
    assert_eq!((result.series, result.weeks), (9, 16));
    assert_eq!(result.rows, 7 * 16 + 15 + 16);
    let manifest = result.manifest.expect("a manifest");
    assert!(dir.path().join(&manifest).exists(), "{manifest}");
    // The schedule delivers the same time again: done already.
    let again =
        WeeklyRequest::new("processed", "2026-04-18T11:00:00Z", "bondlake", "", "").expect("ok");
    assert!(matches!(
        launcher.weekly(&again).expect("again"),
        Launched::AlreadyDone
    ));

    // On EMR: the next week's run fails; its failure is told once, with the command to retry.
    let next =
        WeeklyRequest::new("processed", "2026-04-25T11:00:00Z", "bondlake", "", "").expect("ok");
    let failing = Launcher::new(
        store.clone(),
        Arc::new(JsonLinesSink::new(dir.path().join("events-2.jsonl"))),
        Arc::new(LocalBackend::new(|_| Ok(()))),
    );
    failing.weekly(&next).expect("submitted");
    let change = StateChange {
        name: format!("bondlake-{}-a1", next.id()),
        id: "j-WEEKLY/s-1".into(),
        state: "FAILED".into(),
        message: "Step failed".into(),
        logs: Some("s3://logs/emr/j-WEEKLY/steps/s-1/".into()),
    };
    let told = failing
        .state_changed(&change)
        .expect("told")
        .expect("an event");
    assert_eq!(told.kind(), EventKind::LaunchFailed);
    assert!(
        failing.state_changed(&change).expect("again").is_none(),
        "once"
    );
    let notice =
        bondlake_core::notify::render_notice(&bondlake_core::notify::Notice::Event(Box::new(told)));
    for part in [
        "weekly",
        "s3://logs/emr/j-WEEKLY/steps/s-1/",
        &format!("\"handoff_event_id\":\"{}\"", next.id()),
    ] {
        assert!(notice.text.contains(part), "{part} in {}", notice.text);
    }
}
