//! The warehouse loader against the real PostgreSQL on 127.0.0.1:5432 and against DuckDB: one
//! suite, run on both. Each test processes generated vendor files with the real pipeline into a
//! temporary processed bucket, loads the manifests, and reads the warehouse back with SQL.
//!
//! PostgreSQL must be reachable (CI starts it; `BONDLAKE_TEST_POSTGRES` overrides the URL): the
//! tests fail, loudly, when it is not. Each test works in a schema of its own.

use bondlake_core::manifest::{Manifest, SourceRef};
use bondlake_core::store::{LocalStore, ObjectStore};
use bondlake_core::warehouse::{ErrorKind, LoadOutcome, Loader, Warehouse, load_and_report};
use bondlake_core::{Contract, Options};
use bondlake_testkit::synth::{self, Spec};
use bondlake_warehouse_duckdb::DuckDb;
use bondlake_warehouse_postgres::Postgres;
use std::path::Path;

fn postgres_url() -> String {
    std::env::var("BONDLAKE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh warehouse of each kind, in a schema named after the test.
trait Fresh: Warehouse + Sized {
    /// The warehouse as it is.
    fn reopen(test: &str, dir: &Path) -> Self;
    /// The warehouse with the test's schema gone.
    fn fresh(test: &str, dir: &Path) -> Self;
}

impl Fresh for Postgres {
    fn reopen(_test: &str, _dir: &Path) -> Self {
        let url = postgres_url();
        Postgres::connect(&url).unwrap_or_else(|e| {
            panic!("these tests need PostgreSQL at {url} (set BONDLAKE_TEST_POSTGRES): {e}")
        })
    }
    fn fresh(test: &str, dir: &Path) -> Self {
        let mut pg = Self::reopen(test, dir);
        pg.execute(&format!("DROP SCHEMA IF EXISTS {test} CASCADE"), &[])
            .expect("drop schema");
        pg
    }
}

impl Fresh for DuckDb {
    fn reopen(test: &str, dir: &Path) -> Self {
        // The catalog is named after the file: not after the schema, or names are ambiguous.
        DuckDb::open(&dir.join(format!("{test}_db.duckdb"))).expect("open duckdb")
    }
    fn fresh(test: &str, dir: &Path) -> Self {
        Self::reopen(test, dir)
    }
}

fn contracts() -> Vec<Contract> {
    bondlake_core::contract::load_all(None).expect("built-in contracts")
}

/// Processes a generated holdings file as `key` into `store`; returns the manifest's key.
fn process(
    store: &LocalStore,
    contract: &Contract,
    key: &str,
    rows: u64,
    seed: u64,
    part_bytes: Option<u64>,
) -> (String, Manifest) {
    let mut bytes = Vec::new();
    synth::generate(
        &Spec {
            dataset: contract.dataset.clone(),
            profile: contract.default_profile.clone(),
            rows,
            seed,
            dirty: 0.02,
        },
        &mut bytes,
    )
    .expect("generate");
    let mut opts = Options {
        ingested_at_us: Some(1_764_000_000_000_000 + seed as i64),
        ..Options::default()
    };
    if let Some(p) = part_bytes {
        opts.output.part_bytes = p;
        opts.output.row_group_rows = 256;
    }
    let source = SourceRef {
        bucket: "raw".into(),
        key: key.into(),
        etag: format!("etag-{seed}"),
        bytes: bytes.len() as u64,
        ..Default::default()
    };
    let outcome = bondlake_core::process(
        contract,
        None,
        source,
        std::io::Cursor::new(bytes),
        store,
        &opts,
    )
    .expect("process");
    (outcome.manifest_key, outcome.manifest)
}

/// Processes `bytes` (a raw object of `contract`'s dataset) as `key`, written at `event_time`.
fn process_bytes(
    store: &LocalStore,
    contract: &Contract,
    key: &str,
    bytes: Vec<u8>,
    event_time: &str,
) -> (String, Manifest) {
    let source = SourceRef {
        bucket: "raw".into(),
        key: key.into(),
        etag: format!("etag-{key}"),
        bytes: bytes.len() as u64,
        event_time: Some(event_time.into()),
        sequencer: None,
    };
    let outcome = bondlake_core::process(
        contract,
        None,
        source,
        std::io::Cursor::new(bytes),
        store,
        &Options {
            ingested_at_us: Some(1_764_000_000_000_000),
            ..Options::default()
        },
    )
    .expect("process");
    (outcome.manifest_key, outcome.manifest)
}

/// A generated holdings file's bytes.
fn holdings_bytes(rows: u64, seed: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    synth::generate(
        &Spec {
            dataset: "investor_holdings".into(),
            profile: "standard".into(),
            rows,
            seed,
            dirty: 0.0,
        },
        &mut bytes,
    )
    .expect("generate");
    bytes
}

fn one(w: &mut impl Warehouse, sql: &str) -> String {
    w.query(sql, &[]).expect(sql)[0][0]
        .clone()
        .unwrap_or_default()
}

/// Every row of a table, as text, in key order: what "row by row" compares.
fn dump(w: &mut impl Warehouse, schema: &str) -> Vec<Vec<Option<String>>> {
    w.query(
        &format!(
            "SELECT CAST(as_of_date AS VARCHAR), account_id, security_id, CAST(par_value AS VARCHAR), \
             CAST(market_value AS VARCHAR), _source_key FROM {schema}.investor_holdings \
             ORDER BY as_of_date, account_id, security_id"
        ),
        &[],
    )
    .expect("dump")
}

fn holdings() -> Contract {
    bondlake_core::load_dataset("investor_holdings", None).expect("contract")
}

fn a_load_reconciles_and_lands_every_clean_row<W: Fresh>(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let (key, m) = process(
        &store,
        &holdings(),
        "holdings/a/h_20261125.csv",
        2000,
        1,
        None,
    );
    let mut loader = Loader::new(W::fresh(name, dir.path()), name, &contracts()).expect("schema");
    let outcome = loader.load(&key, &m, &store).expect("load");
    let LoadOutcome::Loaded { rows, totals, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(rows, m.rows_ok);
    assert!(m.rows_rejected > 0, "the file carries defects");
    let w = loader.warehouse();
    assert_eq!(
        one(
            w,
            &format!("SELECT CAST(COUNT(*) AS VARCHAR) FROM {name}.investor_holdings")
        ),
        m.rows_ok.to_string()
    );
    let sum = one(
        w,
        &format!("SELECT CAST(SUM(market_value) AS VARCHAR) FROM {name}.investor_holdings"),
    );
    assert_eq!(sum, m.control_totals["market_value"], "exact to the cent");
    assert_eq!(totals["par_value"], m.control_totals["par_value"]);
    let ledger = w
        .query(
            &format!(
                "SELECT status, CAST(rows_loaded AS VARCHAR), source_key FROM {name}.load_ledger"
            ),
            &[],
        )
        .expect("ledger");
    assert_eq!(
        ledger,
        vec![vec![
            Some("loaded".into()),
            Some(m.rows_ok.to_string()),
            Some("holdings/a/h_20261125.csv".into())
        ]]
    );
    // The data-quality view shows the file with its rejects.
    let dq = one(
        w,
        &format!("SELECT CAST(rows_rejected AS VARCHAR) FROM {name}.v_data_quality"),
    );
    assert_eq!(dq, m.rows_rejected.to_string());
}

fn the_same_manifest_twice_changes_nothing<W: Fresh>(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let (key, m) = process(
        &store,
        &holdings(),
        "holdings/a/h_20261125.csv",
        1500,
        2,
        None,
    );
    let mut loader = Loader::new(W::fresh(name, dir.path()), name, &contracts()).expect("schema");
    assert!(matches!(
        loader.load(&key, &m, &store),
        Ok(LoadOutcome::Loaded { .. })
    ));
    let before = dump(loader.warehouse(), name);
    // The second delivery, as the Lambda sees it: from the manifest's own key.
    let event = load_and_report(&mut loader, &store, &key).expect("second delivery");
    assert_eq!(event.load().expect("load info").outcome, "already_loaded");
    assert_eq!(dump(loader.warehouse(), name), before);
    assert_eq!(
        one(
            loader.warehouse(),
            &format!("SELECT CAST(COUNT(*) AS VARCHAR) FROM {name}.load_ledger")
        ),
        "1"
    );
}

fn overlapping_keys_the_later_load_wins<W: Fresh>(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let c = holdings();
    // The same positions from two custodians' files: every key overlaps; the second file has
    // more rows, so some keys are new.
    let (ka, ma) = process(&store, &c, "holdings/a/h_20261125.csv", 1000, 3, None);
    let (kb, mb) = process(&store, &c, "holdings/b/h_20261125.csv", 1200, 3, None);
    let mut loader = Loader::new(W::fresh(name, dir.path()), name, &contracts()).expect("schema");
    for (k, m) in [(&ka, &ma), (&kb, &mb), (&ka, &ma)] {
        loader.load(k, m, &store).expect("load");
    }
    let rows = dump(loader.warehouse(), name);
    assert_eq!(rows.len() as u64, mb.rows_ok.max(ma.rows_ok));
    let from_b = rows
        .iter()
        .filter(|r| r[5].as_deref() == Some("holdings/b/h_20261125.csv"))
        .count() as u64;
    assert_eq!(
        from_b, mb.rows_ok,
        "every key the later file holds is the later file's"
    );
    // Loaded in the other order into another schema: the other file wins, row for row.
    let other = format!("{name}_rev");
    let mut rev = Loader::new(W::fresh(&other, dir.path()), &other, &contracts()).expect("schema");
    rev.load(&kb, &mb, &store).expect("load b");
    rev.load(&ka, &ma, &store).expect("load a");
    let rows_rev = dump(rev.warehouse(), &other);
    let from_a = rows_rev
        .iter()
        .filter(|r| r[5].as_deref() == Some("holdings/a/h_20261125.csv"))
        .count() as u64;
    assert_eq!(from_a, ma.rows_ok);
    assert_eq!(rows_rev.len(), rows.len());
}

fn the_newest_input_wins_whatever_the_load_order<W: Fresh>(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let c = holdings();
    // Two custodians' files holding the same positions (b holds more); b was written later.
    let older = holdings_bytes(1000, 3);
    let newer = holdings_bytes(1200, 3);
    let (ka, ma) = process_bytes(
        &store,
        &c,
        "holdings/a/h_20261125.csv",
        older,
        "2026-11-25T21:00:00Z",
    );
    let (kb, mb) = process_bytes(
        &store,
        &c,
        "holdings/b/h_20261125.csv",
        newer,
        "2026-11-25T22:00:00.5Z",
    );
    let mut dumps = Vec::new();
    for (schema, order) in [
        ("new_first", [(&kb, &mb), (&ka, &ma)]),
        ("old_first", [(&ka, &ma), (&kb, &mb)]),
    ] {
        let schema = format!("{name}_{schema}");
        let mut loader =
            Loader::new(W::fresh(&schema, dir.path()), &schema, &contracts()).expect("schema");
        let mut outcomes = Vec::new();
        for (k, m) in order {
            outcomes.push(loader.load(k, m, &store).expect("load"));
        }
        if order[0].0 == &kb {
            // The older file, late: every one of its keys is already the newer file's.
            assert!(
                matches!(outcomes[1], LoadOutcome::Loaded { rows: 0, superseded, .. } if superseded == ma.rows_ok),
                "{:?}",
                outcomes[1]
            );
        }
        let rows = dump(loader.warehouse(), &schema);
        assert_eq!(rows.len() as u64, mb.rows_ok);
        assert!(
            rows.iter()
                .all(|r| r[5].as_deref() == Some("holdings/b/h_20261125.csv")),
            "every key is the newer file's, whatever the order"
        );
        dumps.push(rows);
    }
    assert_eq!(dumps[0], dumps[1], "the same table, row for row");
}

fn within_a_kafka_partition_the_later_offset_wins<W: Fresh>(name: &str) {
    use bondlake_core::kafka::{Lander, Topics};
    use bondlake_testkit::kafka_feed::{Feed, records_from_csv};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path().join("processed"));
    let raw = LocalStore::new(dir.path().join("raw"));
    let lander = Lander::new(Topics::builtin(), None, "raw").expect("lander");
    // Ten positions at offsets 0-9, then the same ten corrected (other quantities) at 10-19.
    let first = String::from_utf8(holdings_bytes(10, 8)).expect("utf-8");
    let mut lines: Vec<String> = first.lines().map(String::from).collect();
    for i in 1..=10 {
        let mut fields: Vec<String> = lines[i].split(',').map(String::from).collect();
        fields[14] = "4242.0000".into();
        lines.push(fields.join(","));
    }
    let feed = Feed {
        topic: "investor-holdings".into(),
        partitions: 1,
        start_offsets: Default::default(),
        timestamp_ms: 1_795_644_000_000,
        headers: Vec::new(),
    };
    let records = records_from_csv(
        &lander,
        &feed,
        std::io::Cursor::new(lines.join("\n").into_bytes()),
    )
    .expect("records");
    let events = bondlake_core::events::JsonLinesSink::new(dir.path().join("events.jsonl"));
    let early = lander
        .land(&records[..10], &raw, &store, &events)
        .expect("0-9");
    let late = lander
        .land(&records[10..], &raw, &store, &events)
        .expect("10-19");
    let read = |key: &str| std::fs::read(raw.root().join(key)).expect("landed");
    let (k_early, m_early) = {
        let key = early[0].key.clone().expect("key");
        // Written later than the corrections (a replay, say): the offsets decide, not the time.
        process_bytes(
            &store,
            &holdings(),
            &key,
            read(&key),
            "2026-11-26T09:00:00Z",
        )
    };
    let (k_late, m_late) = {
        let key = late[0].key.clone().expect("key");
        process_bytes(
            &store,
            &holdings(),
            &key,
            read(&key),
            "2026-11-25T21:00:00Z",
        )
    };
    for (tag, order) in [
        ("a", [(&k_late, &m_late), (&k_early, &m_early)]),
        ("b", [(&k_early, &m_early), (&k_late, &m_late)]),
    ] {
        let schema = format!("{name}_{tag}");
        let mut loader =
            Loader::new(W::fresh(&schema, dir.path()), &schema, &contracts()).expect("schema");
        for (k, m) in order {
            loader.load(k, m, &store).expect("load");
        }
        let quantities = loader
            .warehouse()
            .query(
                &format!("SELECT CAST(quantity AS VARCHAR), CAST(_kafka_offset AS VARCHAR) FROM {schema}.investor_holdings"),
                &[],
            )
            .expect("query");
        assert_eq!(quantities.len(), 10);
        for row in &quantities {
            assert_eq!(row[0].as_deref(), Some("4242.0000"), "{quantities:?}");
            assert!(
                row[1]
                    .as_deref()
                    .and_then(|o| o.parse::<i64>().ok())
                    .is_some_and(|o| o >= 10)
            );
        }
    }
}

fn a_failure_mid_transaction_leaves_the_target_untouched<W: Fresh>(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let c = holdings();
    let (k1, m1) = process(&store, &c, "holdings/a/h_20261124.csv", 800, 4, None);
    // Small parts, so the second file has several; its last part goes missing after the first
    // parts are staged.
    let (k2, m2) = process(
        &store,
        &c,
        "holdings/a/h_20261125.csv",
        3000,
        5,
        Some(16 << 10),
    );
    assert!(m2.outputs.len() >= 3, "{} parts", m2.outputs.len());
    let mut loader = Loader::new(W::fresh(name, dir.path()), name, &contracts()).expect("schema");
    loader.load(&k1, &m1, &store).expect("first load");
    let before = dump(loader.warehouse(), name);
    let last = &m2.outputs.last().expect("parts").key;
    store.delete(last).expect("delete part");
    let err = loader
        .load(&k2, &m2, &store)
        .expect_err("a part is missing");
    assert!(err.message.contains(last.as_str()), "{err}");
    assert_eq!(dump(loader.warehouse(), name), before, "target untouched");
    assert_eq!(
        one(
            loader.warehouse(),
            &format!("SELECT CAST(COUNT(*) AS VARCHAR) FROM {name}.load_ledger")
        ),
        "1",
        "no ledger row for the failed load"
    );
}

fn reconciliation_catches_a_tampered_part<W: Fresh>(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let (key, m) = process(
        &store,
        &holdings(),
        "holdings/a/h_20261125.csv",
        1000,
        6,
        None,
    );
    // The part rewritten with its last row gone, still valid Parquet.
    let part = dir.path().join(&m.outputs[0].key);
    let batches: Vec<_> = bondlake_core::warehouse::part_batches(&store, &m.outputs[0].key)
        .expect("read part")
        .collect::<Result<_, _>>()
        .expect("batches");
    let schema = batches[0].schema();
    let file = std::fs::File::create(&part).expect("rewrite");
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
    let n = batches.len();
    for (i, b) in batches.iter().enumerate() {
        let b = if i + 1 == n {
            b.slice(0, b.num_rows() - 1)
        } else {
            b.clone()
        };
        w.write(&b).expect("write");
    }
    w.close().expect("close");
    let mut loader = Loader::new(W::fresh(name, dir.path()), name, &contracts()).expect("schema");
    let err = loader.load(&key, &m, &store).expect_err("tampered");
    assert_eq!(err.kind, ErrorKind::Mismatch, "{err}");
    let want = format!("rows: manifest {}, warehouse {}", m.rows_ok, m.rows_ok - 1);
    assert!(err.message.contains(&want), "{err}");
    assert!(err.message.contains("market_value: manifest"), "{err}");
    assert_eq!(
        one(
            loader.warehouse(),
            &format!("SELECT CAST(COUNT(*) AS VARCHAR) FROM {name}.investor_holdings")
        ),
        "0"
    );
    // As an event: load_failed with both numbers.
    let event = load_and_report(&mut loader, &store, &key).expect("event");
    assert_eq!(event.kind().as_str(), "load_failed");
    assert!(event.error.as_deref().unwrap_or("").contains(&want));
}

/// A manifest the loader cannot trust is refused, naming why, and nothing is loaded or recorded:
/// one whose counts do not conserve, one of an unknown layout version, one whose parts lie
/// outside the dataset's prefix (the key reaches the backend's file reader).
fn an_untrusted_manifest_is_refused_and_nothing_is_recorded<W: Fresh>(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let (key, good) = process(
        &store,
        &holdings(),
        "holdings/a/h_20261125.csv",
        500,
        8,
        None,
    );
    std::fs::write(dir.path().join("secret.txt"), "not yours").expect("write");
    let mut loader = Loader::new(W::fresh(name, dir.path()), name, &contracts()).expect("schema");
    let cases: Vec<(&str, Manifest)> = vec![
        (
            "do not conserve",
            Manifest {
                rows_ok: good.rows_ok + 1,
                ..good.clone()
            },
        ),
        (
            "manifest version 9",
            Manifest {
                manifest_version: 9,
                ..good.clone()
            },
        ),
        (
            "is not the sum of the parts",
            Manifest {
                rows_written: good.rows_written + 5,
                ..good.clone()
            },
        ),
        ("is not under processed/investor_holdings/", {
            let mut m = good.clone();
            m.outputs[0].key = "processed/investor_holdings/../../secret.txt".into();
            m
        }),
        ("is not under processed/investor_holdings/", {
            let mut m = good.clone();
            m.outputs[0].key = "/etc/passwd".into();
            m
        }),
        ("is not under processed/investor_holdings/", {
            let mut m = good.clone();
            m.outputs[0].key = "processed/investor_holdings/*/*.parquet".into();
            m
        }),
        (
            "a manifest of dataset `market_daily`",
            Manifest {
                dataset: "market_daily".into(),
                ..good.clone()
            },
        ),
    ];
    for (why, m) in cases {
        let err = loader.load(&key, &m, &store).expect_err(why);
        assert_eq!(err.kind, ErrorKind::Source, "{why}: {err}");
        assert!(err.message.contains(why), "{why}: {err}");
        assert!(err.message.starts_with(&key), "names the manifest: {err}");
    }
    assert_eq!(
        one(
            loader.warehouse(),
            &format!("SELECT CAST(COUNT(*) AS VARCHAR) FROM {name}.load_ledger")
        ),
        "0",
        "nothing recorded"
    );
    // The manifest as written still loads.
    assert!(matches!(
        loader.load(&key, &good, &store).expect("load"),
        LoadOutcome::Loaded { .. }
    ));
}

/// A NUL inside a text field is `encoding`, in the cleaner, so the file's other records load
/// (PostgreSQL refuses a NUL in text, `invalid byte sequence 0x00`, and would fail the file).
fn a_nul_in_a_text_field_is_rejected_and_the_rest_loads<W: Fresh>(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    // Thirty good records, so that the two rejects stay under the reject threshold.
    let mut rows: Vec<String> = (0..30)
        .map(|i| bondlake_tests::HOLDINGS_ROW.replace("ACC1", &format!("GOOD{i}")))
        .collect();
    rows.push(bondlake_tests::holdings_row_with("issuer", "Apple\0Inc").replace("ACC1", "ACC2"));
    rows.push(bondlake_tests::holdings_row_with("investor_name", "\0").replace("ACC1", "ACC3"));
    let (key, m) = process_bytes(
        &store,
        &holdings(),
        "holdings/a/h_20261125.csv",
        bondlake_tests::holdings_file(&rows),
        "2026-11-25T22:00:00Z",
    );
    assert_eq!(m.rows_ok, 30);
    assert_eq!(m.reject_reasons.get("encoding"), Some(&2), "{m:?}");
    let mut loader = Loader::new(W::fresh(name, dir.path()), name, &contracts()).expect("schema");
    let LoadOutcome::Loaded { rows, .. } = loader.load(&key, &m, &store).expect("load") else {
        panic!("not loaded");
    };
    assert_eq!(rows, 30);
}

fn a_contract_that_adds_a_column_migrates<W: Fresh>(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let (k1, m1) = process(
        &store,
        &holdings(),
        "holdings/a/h_20261124.csv",
        500,
        7,
        None,
    );
    let mut loader = Loader::new(W::fresh(name, dir.path()), name, &contracts()).expect("schema");
    loader.load(&k1, &m1, &store).expect("load v1");
    drop(loader);
    // Version 1.1 adds a `desk` column.
    let text = bondlake_core::contract::BUILTIN
        .iter()
        .find(|(n, _)| *n == "investor_holdings")
        .expect("builtin")
        .1
        .replace("version = \"1.1.0\"", "version = \"1.2.0\"")
        .replacen(
            "[[columns]]",
            "[[columns]]\nname = \"desk\"\ntype = \"string\"\nmax_length = 32\n\n[[columns]]",
            1,
        );
    let v11 = Contract::from_toml("investor_holdings-1.1.toml", &text).expect("v1.1");
    let mut all = contracts();
    all[0] = v11.clone();
    let mut loader = Loader::new(W::reopen(name, dir.path()), name, &all).expect("migrate");
    let dialect = loader.warehouse().dialect();
    let cols = loader
        .warehouse()
        .query(
            &bondlake_core::warehouse::sql::columns_query(dialect),
            &[name, "investor_holdings"],
        )
        .expect("columns");
    assert!(
        cols.iter().any(|c| c[0].as_deref() == Some("desk")),
        "{cols:?}"
    );
    // Old rows keep their values, with no desk; a file cleaned under 1.1 loads beside them.
    let (k2, m2) = process(&store, &v11, "holdings/a/h_20261125.csv", 500, 8, None);
    loader.load(&k2, &m2, &store).expect("load v1.1");
    let count = |w: &mut W, filter: &str| {
        one(
            w,
            &format!("SELECT CAST(COUNT(*) AS VARCHAR) FROM {name}.investor_holdings {filter}"),
        )
    };
    let total = count(loader.warehouse(), "");
    assert_eq!(
        count(
            loader.warehouse(),
            "WHERE _source_key = 'holdings/a/h_20261125.csv'"
        ),
        m2.rows_ok.to_string()
    );
    let kept_v1 = count(
        loader.warehouse(),
        "WHERE _source_key = 'holdings/a/h_20261124.csv'",
    );
    assert_eq!(
        count(
            loader.warehouse(),
            "WHERE desk IS NULL AND _source_key = 'holdings/a/h_20261124.csv'"
        ),
        kept_v1,
        "rows loaded before the column came have no desk"
    );
    assert!(kept_v1.parse::<u64>().expect("n") > 0);
    // And running the migration again changes nothing.
    drop(loader);
    let mut again = Loader::new(W::reopen(name, dir.path()), name, &all).expect("again");
    assert_eq!(count(again.warehouse(), ""), total);
}

fn a_file_with_no_records_is_recorded_and_loads_nothing<W: Fresh>(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let (key, m) = process(&store, &holdings(), "holdings/a/h_20261125.csv", 0, 9, None);
    assert_eq!((m.rows_read, m.outputs.len()), (0, 0), "{m:?}");
    let mut loader = Loader::new(W::fresh(name, dir.path()), name, &contracts()).expect("schema");
    let outcome = loader.load(&key, &m, &store).expect("load");
    assert!(
        matches!(outcome, LoadOutcome::Loaded { rows: 0, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        one(
            loader.warehouse(),
            &format!("SELECT status FROM {name}.load_ledger")
        ),
        "loaded"
    );
    assert_eq!(
        one(
            loader.warehouse(),
            &format!("SELECT CAST(COUNT(*) AS VARCHAR) FROM {name}.investor_holdings")
        ),
        "0"
    );
}

macro_rules! suite {
    ($backend:ty, $prefix:literal) => {
        #[test]
        fn load_reconciles() {
            a_load_reconciles_and_lands_every_clean_row::<$backend>(concat!($prefix, "_load"));
        }
        #[test]
        fn same_manifest_twice() {
            the_same_manifest_twice_changes_nothing::<$backend>(concat!($prefix, "_twice"));
        }
        #[test]
        fn later_load_wins() {
            overlapping_keys_the_later_load_wins::<$backend>(concat!($prefix, "_overlap"));
        }
        #[test]
        fn newest_input_wins() {
            the_newest_input_wins_whatever_the_load_order::<$backend>(concat!($prefix, "_newest"));
        }
        #[test]
        fn later_offset_wins() {
            within_a_kafka_partition_the_later_offset_wins::<$backend>(concat!($prefix, "_offset"));
        }
        #[test]
        fn failure_mid_transaction() {
            a_failure_mid_transaction_leaves_the_target_untouched::<$backend>(concat!(
                $prefix, "_midfail"
            ));
        }
        #[test]
        fn tampered_part() {
            reconciliation_catches_a_tampered_part::<$backend>(concat!($prefix, "_tamper"));
        }
        #[test]
        fn no_records() {
            a_file_with_no_records_is_recorded_and_loads_nothing::<$backend>(concat!(
                $prefix, "_empty"
            ));
        }
        #[test]
        fn untrusted_manifest() {
            an_untrusted_manifest_is_refused_and_nothing_is_recorded::<$backend>(concat!(
                $prefix,
                "_untrusted"
            ));
        }
        #[test]
        fn nul_in_text() {
            a_nul_in_a_text_field_is_rejected_and_the_rest_loads::<$backend>(concat!(
                $prefix, "_nul"
            ));
        }
        #[test]
        fn added_column() {
            a_contract_that_adds_a_column_migrates::<$backend>(concat!($prefix, "_migrate"));
        }
    };
}

mod postgres {
    use super::*;
    suite!(Postgres, "t_pg");

    /// Redshift's guard (it cannot branch inside a batch) run for real: 1 when the merged rows
    /// equal the stage's, a division by zero, which the loader recognises, when they do not.
    #[test]
    fn the_redshift_guard_passes_on_equal_rows_and_divides_by_zero_otherwise() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        let (key, m) = process(
            &store,
            &holdings(),
            "holdings/g/h_20261125.csv",
            200,
            9,
            None,
        );
        let name = "t_pg_guard";
        let mut loader =
            Loader::new(Postgres::fresh(name, dir.path()), name, &contracts()).expect("schema");
        loader.load(&key, &m, &store).expect("load");
        let table =
            bondlake_core::warehouse::TableDef::from_contract(&holdings(), name).expect("t");
        let pg = loader.warehouse();
        // The loaded rows, as a stage of their own.
        pg.execute(
            &format!("CREATE TABLE {name}.stage AS SELECT * FROM {name}.investor_holdings"),
            &[],
        )
        .expect("stage");
        let stage = format!("\"{name}\".\"stage\"");
        assert_eq!(one(pg, &table.guard_sql(&stage)), "1");
        pg.execute(
            &format!("UPDATE {name}.stage SET market_value = market_value + 0.01 WHERE ctid = (SELECT MIN(ctid) FROM {name}.stage)"),
            &[],
        )
        .expect("tamper");
        let err = pg.query(&table.guard_sql(&stage), &[]).expect_err("guard");
        assert!(
            bondlake_core::warehouse::sql::is_guard_failure(&err.message),
            "{err}"
        );
    }

    /// Two deliveries of one manifest at once (the loader's queue delivers at least once, and
    /// two pollers can hold copies): one ledger row, the rows merged once.
    #[test]
    fn two_deliveries_at_once_record_one_ledger_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path());
        let (key, m) = process(
            &store,
            &holdings(),
            "holdings/a/h_20261125.csv",
            3000,
            7,
            None,
        );
        let name = "t_pg_concurrent";
        Loader::new(Postgres::fresh(name, dir.path()), name, &contracts()).expect("schema");
        let outcomes: Vec<LoadOutcome> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut loader =
                            Loader::new(Postgres::reopen(name, dir.path()), name, &contracts())
                                .expect("schema");
                        loader.load(&key, &m, &store).expect("load")
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        let loaded = outcomes
            .iter()
            .filter(|o| matches!(o, LoadOutcome::Loaded { .. }))
            .count();
        assert_eq!(loaded, 1, "{outcomes:?}");
        assert!(
            outcomes.contains(&LoadOutcome::AlreadyLoaded),
            "{outcomes:?}"
        );
        let mut pg = Postgres::reopen(name, dir.path());
        assert_eq!(
            one(
                &mut pg,
                &format!("SELECT CAST(COUNT(*) AS VARCHAR) FROM {name}.load_ledger")
            ),
            "1"
        );
        assert_eq!(
            one(
                &mut pg,
                &format!("SELECT CAST(COUNT(*) AS VARCHAR) FROM {name}.investor_holdings")
            ),
            m.rows_ok.to_string()
        );
    }
}

mod duckdb {
    use super::*;
    suite!(DuckDb, "t_duck");
}

/// The same files loaded into PostgreSQL and DuckDB give the same views, row for row and digit
/// for digit: one SQL text per view serves both dialects.
#[test]
fn postgres_and_duckdb_agree_on_every_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let all = contracts();
    let loaded = [
        process(&store, &all[0], "holdings/a/h_20261125.csv", 3000, 11, None),
        process(
            &store,
            &all[1],
            "market/NYSE/nyse_eod_20261125.csv",
            800,
            12,
            None,
        ),
    ];
    let name = "t_agree";
    let mut pg = Loader::new(Postgres::fresh(name, dir.path()), name, &all).expect("pg");
    let mut duck = Loader::new(DuckDb::fresh(name, dir.path()), name, &all).expect("duckdb");
    for (key, m) in &loaded {
        pg.load(key, m, &store).expect("pg load");
        duck.load(key, m, &store).expect("duckdb load");
    }
    for view in bondlake_core::warehouse::views::VIEWS
        .iter()
        .filter(|v| v.name != "v_data_quality")
    {
        let sql = format!("SELECT * FROM {name}.{} ORDER BY 1, 2, 3, 4", view.name);
        let a = pg.warehouse().query_table(&sql).expect("pg view");
        let b = duck.warehouse().query_table(&sql).expect("duckdb view");
        assert!(!a.rows.is_empty(), "{} is empty", view.name);
        let names = |r: &bondlake_core::warehouse::ResultSet| {
            r.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>()
        };
        assert_eq!((names(&a), &a.rows), (names(&b), &b.rows), "{}", view.name);
    }
}
