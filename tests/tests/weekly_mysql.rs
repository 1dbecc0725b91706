//! The weekly export into a real MariaDB (10.11 on 127.0.0.1:3306, root with no password, or
//! `BONDLAKE_TEST_MYSQL`): the trends manifest loaded through the MySQL backend, by both ways of
//! filling the stage; the same manifest twice; a corrected week from a later file; tampered parts
//! (a changed value, and two values swapped so that every sum still matches) caught with nothing
//! merged; and a contract adding a column. Each test has a database of its own (`t_my_*`).

use bondlake_core::contract::Contract;
use bondlake_core::output::OutputOptions;
use bondlake_core::store::LocalStore;
use bondlake_core::warehouse::{LoadOutcome, Loader, Warehouse, read_manifest};
use bondlake_core::weekly;
use bondlake_tests::{clean_weekly, contract, read_parquet};
use bondlake_warehouse_mysql::{MySql, StageBy};
use std::path::Path;

fn server() -> String {
    std::env::var("BONDLAKE_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// A fresh database `name` and a connection to it.
fn database(name: &str) -> MySql {
    let url = server();
    let mut admin = MySql::connect(&url)
        .unwrap_or_else(|e| panic!("MariaDB/MySQL at {url} is needed for these tests: {e}"));
    admin
        .execute(&format!("DROP DATABASE IF EXISTS \"{name}\""), &[])
        .expect("drop");
    admin
        .execute(&format!("CREATE DATABASE \"{name}\""), &[])
        .expect("create");
    let base = url
        .rsplit_once('/')
        .map_or(url.as_str(), |(b, _)| b)
        .to_string();
    MySql::connect(&format!("{base}/{name}")).expect("connect")
}

fn loader(name: &str, by: StageBy, contracts: &[Contract]) -> Loader<MySql> {
    let w = database(name).stage_by(by);
    Loader::new(w, name, contracts).expect("schema")
}

/// A lake with sixteen weeks of three series cleaned, as the weekly job reads them.
fn lake(dir: &Path) {
    let first = bondlake_core::parse::days_from_civil(2026, 1, 2).expect("a Friday");
    let mut text = String::from("Date,US10Y,US2Y,IG_OAS\n");
    for k in 0..16 {
        text.push_str(&format!(
            "{},{}.{:02},{},{}\n",
            bondlake_core::parse::format_date(first + 7 * k),
            4 + k % 3,
            k,
            if k == 9 {
                String::new()
            } else {
                format!("-{k}.5")
            },
            "1.25"
        ));
    }
    clean_weekly(
        dir,
        "weekly/FT/RATES/2026-04-17.csv",
        &text,
        "2026-04-17T18:00:00Z",
    );
}

/// The vendor corrects US10Y for the week of 2026-04-10 (week 14) in a later file.
fn correct_week_14(dir: &Path) {
    clean_weekly(
        dir,
        "weekly/FT/RATES/2026-04-24.csv",
        "Date,US10Y\n2026-04-10,7.77\n",
        "2026-04-24T18:00:00Z",
    );
}

fn run_job(dir: &Path) -> (String, bondlake_core::Manifest) {
    weekly::run(
        &LocalStore::new(dir),
        "processed",
        &contract("weekly_trends"),
        OutputOptions::default(),
    )
    .expect("the weekly job")
    .manifest
    .expect("a manifest")
}

/// Every row of the table, ordered by its key, as text.
fn table_rows(l: &mut Loader<MySql>, db: &str) -> Vec<Vec<Option<String>>> {
    l.warehouse()
        .query(
            &format!(
                "SELECT source, dataset_code, series, DATE_FORMAT(week_ending, '%Y-%m-%d'), CAST(value AS CHAR), \
                 CAST(wow_change AS CHAR), CAST(wow_pct AS CHAR), CAST(ma_4w AS CHAR), CAST(ma_13w AS CHAR), \
                 zscore_13w, _source_key FROM \"{db}\".weekly_trends ORDER BY 1, 2, 3, 4"
            ),
            &[],
        )
        .expect("select")
}

/// The parts' rows in the same form.
fn part_rows(dir: &Path, m: &bondlake_core::Manifest) -> Vec<Vec<Option<String>>> {
    let mut rows: Vec<Vec<Option<String>>> = m
        .outputs
        .iter()
        .flat_map(|o| read_parquet(&dir.join(&o.key)))
        .map(|r| {
            let cell = |c: &str| Some(r[c].clone()).filter(|v| !v.is_empty());
            vec![
                cell("source"),
                cell("dataset_code"),
                cell("series"),
                cell("week_ending"),
                cell("value"),
                cell("wow_change"),
                cell("wow_pct"),
                cell("ma_4w"),
                cell("ma_13w"),
                None,
                cell("_source_key"),
            ]
        })
        .collect();
    rows.sort();
    rows
}

fn without_zscore(mut rows: Vec<Vec<Option<String>>>) -> Vec<Vec<Option<String>>> {
    for r in &mut rows {
        r[9] = None;
    }
    rows
}

fn ledger(l: &mut Loader<MySql>, db: &str) -> Vec<Vec<Option<String>>> {
    l.warehouse()
        .query(&format!("SELECT manifest_key, status, CAST(rows_loaded AS CHAR) FROM \"{db}\".load_ledger ORDER BY 1"), &[])
        .expect("ledger")
}

#[test]
fn trends_load_exactly_by_either_stage_and_a_second_delivery_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    lake(dir.path());
    let (key, m) = run_job(dir.path());
    let store = LocalStore::new(dir.path());
    for (db, by) in [
        ("t_my_load_data", StageBy::LoadData),
        ("t_my_load_insert", StageBy::Insert),
    ] {
        let mut l = loader(db, by, &[contract("weekly_trends")]);
        let first = l.load(&key, &m, &store).expect("loaded");
        let LoadOutcome::Loaded { rows, totals, .. } = first else {
            panic!("{db}: {first:?}")
        };
        assert_eq!(rows, 48, "{db}");
        assert_eq!(
            totals, m.control_totals,
            "{db}: the warehouse's sums are the manifest's"
        );
        assert_eq!(
            l.warehouse().staging(),
            by,
            "{db}: staged as asked, no fallback"
        );
        let stored = table_rows(&mut l, db);
        assert_eq!(
            without_zscore(stored.clone()),
            part_rows(dir.path(), &m),
            "{db}"
        );
        // The z-score came back as the double it was sent as.
        assert!(
            stored.iter().filter(|r| r[9].is_some()).count() >= 3,
            "{db}"
        );
        let before = (stored, ledger(&mut l, db));
        assert_eq!(before.1.len(), 1);
        assert_eq!(
            l.load(&key, &m, &store).expect("again"),
            LoadOutcome::AlreadyLoaded
        );
        assert_eq!(
            (table_rows(&mut l, db), ledger(&mut l, db)),
            before,
            "{db}: nothing changed"
        );
    }
}

#[test]
fn a_corrected_week_from_a_later_file_replaces_the_older_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    lake(dir.path());
    let store = LocalStore::new(dir.path());
    let db = "t_my_corrected";
    let mut l = loader(db, StageBy::LoadData, &[contract("weekly_trends")]);
    let (key, m) = run_job(dir.path());
    l.load(&key, &m, &store).expect("first");
    correct_week_14(dir.path());
    let (key2, m2) = run_job(dir.path());
    assert_eq!(
        m2.checksums.keys().collect::<Vec<_>>(),
        ["2026-04-10", "2026-04-17"]
    );
    let LoadOutcome::Loaded { rows, .. } = l.load(&key2, &m2, &store).expect("second") else {
        panic!("not loaded")
    };
    assert_eq!(rows, 6, "two weeks of three series");
    let stored = table_rows(&mut l, db);
    assert_eq!(stored.len(), 48, "replaced, not added");
    let row = |series: &str, week: &str| {
        stored
            .iter()
            .find(|r| r[2].as_deref() == Some(series) && r[3].as_deref() == Some(week))
            .cloned()
            .expect("row")
    };
    let w14 = row("US10Y", "2026-04-10");
    assert_eq!(w14[4].as_deref(), Some("7.770000"));
    assert_eq!(w14[10].as_deref(), Some("weekly/FT/RATES/2026-04-24.csv"));
    // Week 15 (2026-04-17) is 4.15 in the first file: its change is now against 7.77.
    assert_eq!(row("US10Y", "2026-04-17")[5].as_deref(), Some("-3.620000"));
    assert_eq!(ledger(&mut l, db).len(), 2);
}

/// Rewrites a part with `change` applied to its rows (the manifest left as it was).
fn tamper(dir: &Path, key: &str, change: impl Fn(&mut Vec<Option<i128>>)) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Decimal128Type;
    use std::sync::Arc;
    let path = dir.join(key);
    let file = std::fs::File::open(&path).expect("part");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .expect("reader");
    let batches: Vec<arrow_array::RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    let [batch] = batches.as_slice() else {
        panic!("one batch a part here")
    };
    let i = batch.schema().index_of("value").expect("value");
    let values = batch.column(i).as_primitive::<Decimal128Type>();
    let mut v: Vec<Option<i128>> = values.iter().collect();
    change(&mut v);
    let mut columns = batch.columns().to_vec();
    columns[i] = Arc::new(
        arrow_array::Decimal128Array::from(v)
            .with_precision_and_scale(18, 6)
            .expect("decimal"),
    );
    let changed = arrow_array::RecordBatch::try_new(batch.schema(), columns).expect("batch");
    let out = std::fs::File::create(&path).expect("rewrite");
    let mut w = parquet::arrow::ArrowWriter::try_new(out, batch.schema(), None).expect("writer");
    w.write(&changed).expect("write");
    w.close().expect("close");
}

#[test]
fn tampered_parts_are_caught_by_the_reconciliation_and_nothing_is_merged() {
    let dir = tempfile::tempdir().expect("tempdir");
    lake(dir.path());
    let (key, m) = run_job(dir.path());
    let store = LocalStore::new(dir.path());
    let db = "t_my_tampered";
    let mut l = loader(db, StageBy::LoadData, &[contract("weekly_trends")]);
    // A value changed: the sum of `value` no longer matches.
    let part = m.outputs[3].key.clone();
    let original = std::fs::read(dir.path().join(&part)).expect("part");
    tamper(dir.path(), &part, |v| v[0] = v[0].map(|x| x + 1));
    let e = l.load(&key, &m, &store).expect_err("caught");
    assert!(e.to_string().contains("value"), "{e}");
    // Two values swapped within one week: count and every sum still match; the checksum not.
    std::fs::write(dir.path().join(&part), &original).expect("restore");
    tamper(dir.path(), &part, |v| v.swap(0, 1));
    let e = l.load(&key, &m, &store).expect_err("caught");
    assert!(e.to_string().contains("checksum"), "{e}");
    assert!(table_rows(&mut l, db).is_empty(), "nothing merged");
    assert!(ledger(&mut l, db).is_empty(), "nothing recorded");
    // The genuine part loads.
    std::fs::write(dir.path().join(&part), &original).expect("restore");
    assert!(matches!(
        l.load(&key, &m, &store),
        Ok(LoadOutcome::Loaded { rows: 48, .. })
    ));
}

#[test]
fn a_contract_adding_a_column_migrates_the_table_and_older_manifests_still_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    lake(dir.path());
    let (key, m) = run_job(dir.path());
    let store = LocalStore::new(dir.path());
    let db = "t_my_migrated";
    let v1 = contract("weekly_trends");
    {
        let mut l = loader(db, StageBy::LoadData, std::slice::from_ref(&v1));
        l.load(&key, &m, &store).expect("loaded under 1.0.0");
    }
    // Version 1.1.0 adds ma_26w.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/weekly_trends.toml"),
    )
    .expect("contract")
    .replace("version = \"1.0.0\"", "version = \"1.1.0\"")
        + "\n[[columns]]\nname = \"ma_26w\"\ntype = \"decimal\"\nprecision = 18\nscale = 6\n";
    let v2 = Contract::from_toml("weekly_trends.toml", &text).expect("1.1.0");
    let w = MySql::connect(&format!(
        "{}/{db}",
        server().rsplit_once('/').expect("url").0
    ))
    .expect("connect");
    let mut l = Loader::new(w, db, std::slice::from_ref(&v2)).expect("migrated");
    let columns = l
        .warehouse()
        .query(&format!("SELECT column_name FROM information_schema.columns WHERE table_schema = '{db}' AND table_name = 'weekly_trends' AND column_name = 'ma_26w'"), &[])
        .expect("columns");
    assert_eq!(columns.len(), 1, "ADD COLUMN ran");
    // Old rows kept, with NULL in the new column; an older manifest loads into the new table.
    let nulls = l
        .warehouse()
        .query(
            &format!("SELECT COUNT(*) FROM \"{db}\".weekly_trends WHERE ma_26w IS NULL"),
            &[],
        )
        .expect("nulls");
    assert_eq!(nulls[0][0].as_deref(), Some("48"));
    correct_week_14(dir.path());
    let (key2, m2) = run_job(dir.path());
    assert!(matches!(
        l.load(&key2, &m2, &store),
        Ok(LoadOutcome::Loaded { rows: 6, .. })
    ));
    // The migration again: nothing to do.
    let w = MySql::connect(&format!(
        "{}/{db}",
        server().rsplit_once('/').expect("url").0
    ))
    .expect("connect");
    Loader::new(w, db, std::slice::from_ref(&v2)).expect("a no-op");
    let _ = read_manifest(&store, &key2).expect("manifest readable");
}

/// The weekly chain's export as AWS runs it: warehouse-loader's handler with WAREHOUSE=mysql,
/// cued by the weekly job's result through SQS, loads every trends manifest its MySQL ledger
/// lacks (a run it missed included), oldest first; asked again with `{"weekly_export": {}}`, it
/// does nothing.
#[test]
fn the_export_function_loads_what_the_ledger_lacks_oldest_first() {
    use bondlake_core::events::JsonLinesSink;
    use std::sync::{Arc, Mutex};
    use warehouse_loader::handler::{Invocation, Settings, State, WarehouseKind, dispatch};
    let dir = tempfile::tempdir().expect("tempdir");
    lake(dir.path());
    let (first, _) = run_job(dir.path());
    correct_week_14(dir.path());
    let (second, _) = run_job(dir.path());
    let db = "t_my_export";
    // The function as the template configures it: WAREHOUSE=mysql.
    let mut settings = Settings::local("processed");
    settings.warehouse = WarehouseKind::MySql {
        secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:mysql".into(),
        tls_ca: None,
    };
    let state = |loader| State {
        settings: settings.clone(),
        loader: Mutex::new(loader),
        processed: Arc::new(LocalStore::new(dir.path())),
        events: Arc::new(JsonLinesSink::new(dir.path().join("events.jsonl"))),
    };
    // In AWS the cue is the weekly job's result: its S3 notification, through the queue.
    let notification = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-05T11:20:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "processed", "arn": "arn:aws:s3:::processed"},
               "object": {"key": "weeklies/0a1b2c.result.json", "size": 200,
                          "eTag": "e", "sequencer": "0055"}}}]});
    let cue = serde_json::json!({"Records": [{
        "messageId": "m1", "receiptHandle": "r", "body": notification.to_string(),
        "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1"}]});
    let cue: Invocation = serde_json::from_value(cue).expect("an SQS batch");
    let s = state(loader(db, StageBy::LoadData, &[contract("weekly_trends")]));
    let done = dispatch(&s, cue).expect("exported");
    assert_eq!(done["exported"], 2, "{done}");
    assert_eq!(done["batchItemFailures"], serde_json::json!([]), "{done}");
    let mut l = s.loader.into_inner().expect("loader");
    let keys: Vec<Option<String>> = ledger(&mut l, db)
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&Some(first)) && keys.contains(&Some(second)));
    // The later run's correction is what the table holds.
    let stored = table_rows(&mut l, db);
    assert!(
        stored
            .iter()
            .any(|r| r[3].as_deref() == Some("2026-04-10") && r[4].as_deref() == Some("7.770000"))
    );
    // Asked again by hand: nothing is left to load.
    let by_hand: Invocation =
        serde_json::from_value(serde_json::json!({"weekly_export": {}})).expect("invocation");
    assert!(matches!(by_hand, Invocation::WeeklyExport));
    let again = dispatch(&state(l), by_hand).expect("again");
    assert_eq!(again["exported"], 0, "{again}");
    let told = std::fs::read_to_string(dir.path().join("events.jsonl")).expect("events");
    assert_eq!(told.matches("\"kind\":\"loaded\"").count(), 2);
    assert!(
        told.contains("\"trends\""),
        "the loaded events say what the trends cover"
    );
}

/// An older run's export arriving after a newer one's: the rows the newer run already gave
/// leave the stage (the older values never return), and the stage is held to the older
/// manifest's weekly checksums before they leave, so a swap inside a superseded week is caught.
#[test]
fn an_older_export_after_a_newer_one_keeps_the_newer_values_and_is_still_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    lake(dir.path());
    let (key, m) = run_job(dir.path());
    correct_week_14(dir.path());
    let (key2, m2) = run_job(dir.path());
    let store = LocalStore::new(dir.path());
    let db = "t_my_older_after";
    let mut l = loader(db, StageBy::LoadData, &[contract("weekly_trends")]);
    l.load(&key2, &m2, &store).expect("the newer first");
    // The older run's part for the week the newer one corrected, with two values swapped.
    let part = m
        .outputs
        .iter()
        .find(|o| o.key.contains("2026-04-10"))
        .expect("the week's part")
        .key
        .clone();
    let original = std::fs::read(dir.path().join(&part)).expect("part");
    tamper(dir.path(), &part, |v| v.swap(0, 1));
    let e = l.load(&key, &m, &store).expect_err("caught");
    assert!(
        e.to_string().contains("staged rows' weekly checksums"),
        "{e}"
    );
    assert_eq!(ledger(&mut l, db).len(), 1, "nothing recorded");
    std::fs::write(dir.path().join(&part), &original).expect("restore");
    let LoadOutcome::Loaded {
        rows, superseded, ..
    } = l.load(&key, &m, &store).expect("the older")
    else {
        panic!("not loaded")
    };
    // US10Y's corrected week and the week after it, whose change reads it; the other series'
    // rows of those weeks read nothing newer and are the same rows again.
    assert_eq!((rows, superseded), (46, 2));
    let stored = table_rows(&mut l, db);
    assert_eq!(stored.len(), 48);
    let row = |week: &str| {
        stored
            .iter()
            .find(|r| r[2].as_deref() == Some("US10Y") && r[3].as_deref() == Some(week))
            .cloned()
            .expect("row")
    };
    assert_eq!(
        row("2026-04-10")[4].as_deref(),
        Some("7.770000"),
        "the newer value stays"
    );
    let w15 = row("2026-04-17");
    assert_eq!(
        w15[5].as_deref(),
        Some("-3.620000"),
        "and the change against it"
    );
    assert_eq!(
        w15[10].as_deref(),
        Some("weekly/FT/RATES/2026-04-24.csv"),
        "the row read the correction"
    );
}

/// A warm export function keeps its session for hours between weekly runs; the server may have
/// dropped it (its `wait_timeout`, a failover). The next call connects again instead of failing
/// every retry on the dead session.
#[test]
fn a_session_the_server_dropped_is_opened_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    lake(dir.path());
    let (key, m) = run_job(dir.path());
    let store = LocalStore::new(dir.path());
    let db = "t_my_dropped";
    let mut l = loader(db, StageBy::LoadData, &[contract("weekly_trends")]);
    let id = l
        .warehouse()
        .query("SELECT CONNECTION_ID()", &[])
        .expect("id")[0][0]
        .clone()
        .expect("an id");
    let mut admin = MySql::connect(&server()).expect("admin");
    admin.execute(&format!("KILL {id}"), &[]).expect("killed");
    assert!(matches!(
        l.load(&key, &m, &store).expect("loaded on a new session"),
        LoadOutcome::Loaded { rows: 48, .. }
    ));
    let again = l
        .warehouse()
        .query("SELECT CONNECTION_ID()", &[])
        .expect("id")[0][0]
        .clone();
    assert_ne!(again.as_deref(), Some(id.as_str()), "a new session");
}
