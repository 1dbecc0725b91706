//! The Redshift Data API path, with the SDK's own test tooling (aws-smithy-mocks): a fake Data
//! API that records every statement and parameter sent and answers DescribeStatement and
//! GetStatementResult as a script says. Checked: the exact statements of a load, the polling
//! sequence, FAILED and ABORTED statements, and throttling.

use aws_sdk_redshiftdata::operation::batch_execute_statement::BatchExecuteStatementOutput;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::operation::execute_statement::ExecuteStatementOutput;
use aws_sdk_redshiftdata::operation::get_statement_result::GetStatementResultOutput;
use aws_sdk_redshiftdata::types::{Field, StatusString};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use bondlake_core::manifest::SourceRef;
use bondlake_core::store::{LocalStore, ObjectStore};
use bondlake_core::warehouse::{ErrorKind, LoadOutcome, Loader, TableDef, Warehouse};
use bondlake_core::{Contract, Options};
use bondlake_testkit::synth::{self, Spec};
use bondlake_warehouse_redshift::{Polling, Redshift, RedshiftTarget};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One call as the fake Data API received it.
#[derive(Debug, Clone)]
struct Sent {
    sqls: Vec<String>,
    params: Vec<(String, String)>,
    session: Option<String>,
    keep_alive: Option<i32>,
}

#[derive(Default)]
struct State {
    next: u32,
    by_id: HashMap<String, Sent>,
    log: Vec<Sent>,
    describes: u32,
    /// Statuses DescribeStatement answers before FINISHED, with an error message.
    script: VecDeque<(StatusString, Option<String>)>,
    /// The reconciliation row to answer (count, then totals).
    reconcile: Vec<String>,
    /// Column names per table, for the information_schema query.
    columns: HashMap<String, Vec<String>>,
    /// Statements cancelled.
    cancelled: Vec<String>,
    /// A statement (batch) containing this text FAILS with this message.
    fail_on: Option<(String, String)>,
}

type Shared = Arc<Mutex<State>>;

fn contracts() -> Vec<Contract> {
    bondlake_core::contract::load_all(None).expect("built-in contracts")
}

fn fake(state: &Shared) -> aws_sdk_redshiftdata::Client {
    let record = |state: &Shared, sent: Sent| -> String {
        let mut s = state.lock().expect("lock");
        s.next += 1;
        let id = format!("stmt-{}", s.next);
        s.by_id.insert(id.clone(), sent.clone());
        s.log.push(sent);
        id
    };
    let st = state.clone();
    let execute =
        mock!(aws_sdk_redshiftdata::Client::execute_statement).then_compute_output(move |req| {
            let sent = Sent {
                sqls: vec![req.sql().unwrap_or_default().to_string()],
                params: req
                    .parameters()
                    .iter()
                    .map(|p| (p.name().to_string(), p.value().to_string()))
                    .collect(),
                session: req.session_id().map(str::to_string),
                keep_alive: req.session_keep_alive_seconds(),
            };
            let keep = sent.keep_alive.is_some();
            let id = record(&st, sent);
            let out = ExecuteStatementOutput::builder().id(id);
            if keep {
                out.session_id("session-1")
            } else {
                out
            }
            .build()
        });
    let st = state.clone();
    let batch = mock!(aws_sdk_redshiftdata::Client::batch_execute_statement).then_compute_output(
        move |req| {
            let sent = Sent {
                sqls: req.sqls().to_vec(),
                params: Vec::new(),
                session: req.session_id().map(str::to_string),
                keep_alive: req.session_keep_alive_seconds(),
            };
            let keep = sent.keep_alive.is_some();
            let id = record(&st, sent);
            let out = BatchExecuteStatementOutput::builder().id(id);
            if keep {
                out.session_id("session-1")
            } else {
                out
            }
            .build()
        },
    );
    let st = state.clone();
    let describe =
        mock!(aws_sdk_redshiftdata::Client::describe_statement).then_compute_output(move |req| {
            let mut s = st.lock().expect("lock");
            s.describes += 1;
            let id = req.id().unwrap_or_default().to_string();
            let query = s
                .by_id
                .get(&id)
                .is_some_and(|sent| sent.sqls.len() == 1 && sent.sqls[0].starts_with("SELECT"));
            let failing = s.fail_on.clone().filter(|(needle, _)| {
                s.by_id
                    .get(&id)
                    .is_some_and(|sent| sent.sqls.iter().any(|q| q.contains(needle.as_str())))
            });
            let (status, error) = match failing {
                Some((_, message)) => (StatusString::Failed, Some(message)),
                None => s
                    .script
                    .pop_front()
                    .unwrap_or((StatusString::Finished, None)),
            };
            DescribeStatementOutput::builder()
                .id(id)
                .status(status)
                .set_error(error)
                .has_result_set(query)
                .build()
                .expect("describe output")
        });
    let st = state.clone();
    let results =
        mock!(aws_sdk_redshiftdata::Client::get_statement_result).then_compute_output(move |req| {
            let s = st.lock().expect("lock");
            let sent = &s.by_id[req.id().unwrap_or_default()];
            let sql = &sent.sqls[0];
            let rows: Vec<Vec<Field>> = if sql.contains("\"information_schema\".\"columns\"") {
                let table = &sent.params[1].1;
                s.columns
                    .get(table)
                    .map(|cols| {
                        cols.iter()
                            .map(|c| vec![Field::StringValue(c.clone())])
                            .collect()
                    })
                    .unwrap_or_default()
            } else if sql.contains("COUNT(*)") {
                vec![
                    s.reconcile
                        .iter()
                        .map(|v| Field::StringValue(v.clone()))
                        .collect(),
                ]
            } else {
                Vec::new()
            };
            GetStatementResultOutput::builder()
                .set_records(Some(rows))
                .build()
                .expect("result output")
        });
    let st = state.clone();
    let cancel =
        mock!(aws_sdk_redshiftdata::Client::cancel_statement).then_compute_output(move |req| {
            st.lock()
                .expect("lock")
                .cancelled
                .push(req.id().unwrap_or_default().to_string());
            aws_sdk_redshiftdata::operation::cancel_statement::CancelStatementOutput::builder()
                .status(true)
                .build()
        });
    mock_client!(
        aws_sdk_redshiftdata,
        RuleMode::MatchAny,
        &[&execute, &batch, &describe, &results, &cancel]
    )
}

fn target() -> RedshiftTarget {
    RedshiftTarget {
        cluster_id: None,
        workgroup: Some("analytics".into()),
        database: "dev".into(),
        db_user: None,
        secret_arn: None,
        copy_role: "arn:aws:iam::123456789012:role/bondlake-copy".into(),
        bucket: "bondlake-processed".into(),
    }
}

fn fast() -> Polling {
    Polling {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(4),
        timeout: Duration::from_secs(10),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A state whose information_schema answers every column the contracts imply.
fn state_with_tables() -> Shared {
    let state = Shared::default();
    let mut s = state.lock().expect("lock");
    for c in contracts() {
        let t = TableDef::from_contract(&c, "bondlake").expect("table");
        s.columns.insert(
            c.dataset.clone(),
            t.columns
                .iter()
                .map(|c| c.name.name().to_string())
                .collect(),
        );
    }
    drop(s);
    state
}

#[test]
fn a_load_is_copy_then_merge_and_ledger_in_one_session() {
    let rt = runtime();
    let state = state_with_tables();
    let redshift =
        Redshift::new(fake(&state), target(), fast(), rt.handle().clone()).expect("backend");
    let mut loader = Loader::new(redshift, "bondlake", &contracts()).expect("schema");
    let setup = state.lock().expect("lock").log.len();
    // The DDL: schema, each table with its layout, no ALTER (the columns exist), ledger, views.
    let ddl: Vec<String> = state.lock().expect("lock").log[..setup]
        .iter()
        .map(|s| s.sqls[0].clone())
        .collect();
    assert_eq!(ddl[0], "CREATE SCHEMA IF NOT EXISTS \"bondlake\"");
    assert!(ddl[1].starts_with("CREATE TABLE IF NOT EXISTS \"bondlake\".\"investor_holdings\""));
    assert!(ddl[1].ends_with(
        "DISTSTYLE KEY DISTKEY (\"security_id\")\nCOMPOUND SORTKEY (\"as_of_date\", \"investor_type\", \"bond_type\")"
    ), "{}", ddl[1]);
    assert!(
        ddl[1].contains("\"par_value\" DECIMAL(18,2)") && ddl[1].contains("\"as_of_date\" DATE")
    );
    assert!(!ddl.iter().any(|s| s.starts_with("ALTER")));
    assert!(
        ddl.iter()
            .any(|s| s.starts_with("CREATE OR REPLACE VIEW \"bondlake\".\"v_portfolio_exposure\""))
    );

    // A processed holdings file.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let mut bytes = Vec::new();
    synth::generate(
        &Spec {
            dataset: "investor_holdings".into(),
            profile: "standard".into(),
            rows: 500,
            seed: 9,
            dirty: 0.02,
        },
        &mut bytes,
    )
    .expect("generate");
    let source = SourceRef {
        bucket: "bondlake-raw".into(),
        key: "holdings/o'brien; DROP TABLE x/h_20261125.csv".into(),
        etag: "e1".into(),
        bytes: bytes.len() as u64,
        ..Default::default()
    };
    let c = &contracts()[0];
    let out = bondlake_core::process(
        c,
        None,
        source,
        std::io::Cursor::new(bytes),
        &store,
        &Options::default(),
    )
    .expect("process");
    let m = out.manifest;
    {
        let mut s = state.lock().expect("lock");
        s.reconcile = vec![
            m.rows_ok.to_string(),
            m.control_totals["par_value"].clone(),
            format!("{}0", m.control_totals["market_value"]),
        ];
    }
    let outcome = loader.load(&out.manifest_key, &m, &store).expect("load");
    assert!(
        matches!(outcome, LoadOutcome::Loaded { rows, .. } if rows == m.rows_ok),
        "{outcome:?}"
    );

    let log: Vec<Sent> = state.lock().expect("lock").log[setup..].to_vec();
    let stage_name = bondlake_core::warehouse::stage_name(&out.manifest_key);
    let stage = format!("\"{stage_name}\"");
    let texts: Vec<Vec<String>> = log.iter().map(|s| s.sqls.clone()).collect();
    // 1. The ledger lookup, parameterised.
    assert!(texts[0][0].starts_with("SELECT CAST(\"status\" AS VARCHAR(32)) FROM \"bondlake\".\"load_ledger\" WHERE \"manifest_key\" = CAST(CAST(:manifest_key AS VARCHAR(65535)) AS VARCHAR(65535))"));
    assert_eq!(
        log[0].params,
        vec![("manifest_key".to_string(), out.manifest_key.clone())]
    );
    // 2. The staging batch opens a session and COPYs from a manifest of exactly the parts.
    let copy_key = format!("loads/investor_holdings/{stage_name}.copy-manifest.json");
    assert_eq!(log[1].keep_alive, Some(300));
    assert_eq!(texts[1].len(), 3);
    assert!(texts[1][0].starts_with(&format!("CREATE TEMP TABLE {stage} (\"as_of_date\" DATE, ")));
    assert_eq!(
        texts[1][1],
        format!("CREATE TEMP TABLE \"{stage_name}_ledger\" (LIKE \"bondlake\".\"load_ledger\")")
    );
    assert_eq!(
        texts[1][2],
        format!(
            "COPY {stage} FROM 's3://bondlake-processed/{copy_key}' IAM_ROLE 'arn:aws:iam::123456789012:role/bondlake-copy' FORMAT AS PARQUET MANIFEST"
        )
    );
    let copy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(&copy_key)).expect("copy manifest"))
            .expect("json");
    let entries = copy["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), m.outputs.len());
    for (e, o) in entries.iter().zip(&m.outputs) {
        assert_eq!(e["url"], format!("s3://bondlake-processed/{}", o.key));
        assert_eq!(e["mandatory"], true);
        assert_eq!(e["meta"]["content_length"], o.bytes);
    }
    // 3. The ledger row goes in as parameters, in the same session.
    assert_eq!(log[2].session.as_deref(), Some("session-1"));
    assert!(texts[2][0].starts_with(&format!(
        "INSERT INTO \"{stage_name}_ledger\" (\"manifest_key\", "
    )));
    // Redshift's clock: CURRENT_TIMESTAMP is a leader-node function, refused on user tables.
    assert!(texts[2][0].ends_with("GETDATE())"), "{}", texts[2][0]);
    let params: HashMap<_, _> = log[2].params.iter().cloned().collect();
    assert_eq!(
        params["source_key"],
        "holdings/o'brien; DROP TABLE x/h_20261125.csv"
    );
    // rows_loaded is set in the commit batch from the rows left to merge.
    assert_eq!(params["rows_loaded"], "0");
    // 4. Reconciliation of the stage, 5. one transaction: lock, superseded rows out, MERGE, the
    // guard, the ledger row; 6. the rows merged and 7. their totals, for the event.
    assert!(
        texts[3][0].starts_with("SELECT CAST(COUNT(*) AS VARCHAR(40)), CAST(SUM(\"par_value\")")
    );
    assert!(texts[3][0].ends_with(&format!("FROM {stage}")));
    let t = "\"bondlake\".\"investor_holdings\"";
    assert_eq!(texts[4].len(), 6);
    assert_eq!(
        texts[4][0],
        format!("LOCK {t}, \"bondlake\".\"load_ledger\"")
    );
    assert!(
        texts[4][1].starts_with(&format!(
            "DELETE FROM {stage} USING {t} WHERE {t}.\"as_of_date\" = {stage}.\"as_of_date\""
        )),
        "{}",
        texts[4][1]
    );
    assert_eq!(
        texts[4][2],
        format!(
            "UPDATE \"{stage_name}_ledger\" SET \"rows_loaded\" = (SELECT COUNT(*) FROM {stage})"
        )
    );
    assert!(texts[4][3].starts_with(&format!(
        "MERGE INTO {t} USING {stage} AS \"s\" ON {t}.\"as_of_date\" = \"s\".\"as_of_date\" AND {t}.\"account_id\" = \"s\".\"account_id\" AND {t}.\"security_id\" = \"s\".\"security_id\"\nWHEN MATCHED THEN UPDATE SET \"investor_id\" = \"s\".\"investor_id\""
    )), "{}", texts[4][3]);
    assert!(texts[4][3].contains("\nWHEN NOT MATCHED THEN INSERT (\"as_of_date\", "));
    assert!(
        texts[4][4].starts_with("SELECT 1 / CASE WHEN "),
        "{}",
        texts[4][4]
    );
    assert!(texts[4][5].starts_with(&format!(
        "INSERT INTO \"bondlake\".\"load_ledger\" SELECT * FROM \"{stage_name}_ledger\" WHERE NOT EXISTS"
    )));
    assert!(texts[5][0].ends_with(&format!("FROM {stage}")));
    assert!(texts[6][0].contains(&format!("JOIN {stage} AS \"s\" ON")));
    assert!(
        log[3..]
            .iter()
            .all(|s| s.session.as_deref() == Some("session-1"))
    );
    assert_eq!(log.len(), 7);
    // No value from the data is in any statement.
    for sql in texts.iter().flatten() {
        assert!(
            !sql.contains("o'brien") && !sql.contains(&out.manifest_key),
            "{sql}"
        );
    }
}

/// The loader as deployed: the processed bucket over the S3 protocol, and the loader signing as
/// its role, which may do only what `template.yaml` grants it (`tests/grants.json`): read the
/// manifest and the parts, write the COPY manifest under `loads/`.
#[test]
fn the_loader_needs_only_its_grants_on_the_processed_bucket() {
    use bondlake_aws::{S3Options, S3Store};
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let grants = bondlake_tests::template_grants(&[("processed", "bondlake-processed")]);
    let server = bondlake_testkit::s3_server::S3Server::start_with_grants(
        &dir.path().join("s3"),
        "127.0.0.1:0",
        rt.handle(),
        grants,
    )
    .expect("server");
    server.create_bucket("bondlake-processed").expect("bucket");
    let as_role = |role: Option<&str>| {
        let client = match role {
            Some(r) => server.client_as(r),
            None => server.client(),
        };
        S3Store::new(
            client,
            "bondlake-processed",
            rt.handle().clone(),
            S3Options::default(),
        )
    };
    let mut bytes = Vec::new();
    synth::generate(
        &Spec {
            dataset: "market_daily".into(),
            profile: "us".into(),
            rows: 300,
            seed: 2,
            dirty: 0.0,
        },
        &mut bytes,
    )
    .expect("generate");
    let source = SourceRef {
        bucket: "raw".into(),
        key: "market/NYSE/nyse_20261125.csv".into(),
        etag: "e".into(),
        bytes: 1,
        ..Default::default()
    };
    let out = bondlake_core::process(
        &contracts()[1],
        None,
        source,
        std::io::Cursor::new(bytes),
        &as_role(Some("csv-processor")),
        &Options::default(),
    )
    .expect("process");
    let state = state_with_tables();
    state.lock().expect("lock").reconcile = vec![
        out.manifest.rows_ok.to_string(),
        out.manifest.control_totals["volume"].clone(),
    ];
    let redshift =
        Redshift::new(fake(&state), target(), fast(), rt.handle().clone()).expect("backend");
    let mut loader = Loader::new(redshift, "bondlake", &contracts()[1..2]).expect("schema");
    let store = as_role(Some("warehouse-loader"));
    let manifest =
        bondlake_core::warehouse::read_manifest(&store, &out.manifest_key).expect("the manifest");
    let outcome = loader
        .load(&out.manifest_key, &manifest, &store)
        .expect("load");
    assert!(matches!(outcome, LoadOutcome::Loaded { .. }), "{outcome:?}");
    let stage = bondlake_core::warehouse::stage_name(&out.manifest_key);
    let copy_manifest = format!("loads/market_daily/{stage}.copy-manifest.json");
    assert!(
        as_role(None).exists(&copy_manifest).expect("head"),
        "{copy_manifest}"
    );
    assert_eq!(server.denied(), Vec::<String>::new());
}

#[test]
fn a_reconciliation_mismatch_stops_before_the_merge() {
    let rt = runtime();
    let state = state_with_tables();
    let redshift =
        Redshift::new(fake(&state), target(), fast(), rt.handle().clone()).expect("backend");
    let mut loader = Loader::new(redshift, "bondlake", &contracts()[1..2]).expect("schema");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let mut bytes = Vec::new();
    synth::generate(
        &Spec {
            dataset: "market_daily".into(),
            profile: "us".into(),
            rows: 300,
            seed: 2,
            dirty: 0.0,
        },
        &mut bytes,
    )
    .expect("generate");
    let source = SourceRef {
        bucket: "raw".into(),
        key: "market/NYSE/nyse_20261125.csv".into(),
        etag: "e".into(),
        bytes: 1,
        ..Default::default()
    };
    let out = bondlake_core::process(
        &contracts()[1],
        None,
        source,
        std::io::Cursor::new(bytes),
        &store,
        &Options::default(),
    )
    .expect("process");
    state.lock().expect("lock").reconcile =
        vec![(out.manifest.rows_ok - 1).to_string(), "5".into()];
    let setup = state.lock().expect("lock").log.len();
    let err = loader
        .load(&out.manifest_key, &out.manifest, &store)
        .expect_err("mismatch");
    assert_eq!(err.kind, ErrorKind::Mismatch);
    assert!(
        err.message.contains(&format!(
            "rows: manifest {}, warehouse {}",
            out.manifest.rows_ok,
            out.manifest.rows_ok - 1
        )),
        "{err}"
    );
    let log = &state.lock().expect("lock").log[setup..];
    assert!(
        !log.iter()
            .flat_map(|s| &s.sqls)
            .any(|s| s.starts_with("MERGE")),
        "no MERGE sent"
    );
}

#[test]
fn polling_backs_off_until_finished() {
    let rt = runtime();
    let state = Shared::default();
    state.lock().expect("lock").script = VecDeque::from([
        (StatusString::Submitted, None),
        (StatusString::Picked, None),
        (StatusString::Started, None),
        (StatusString::Started, None),
    ]);
    let mut redshift =
        Redshift::new(fake(&state), target(), fast(), rt.handle().clone()).expect("backend");
    redshift
        .execute("CREATE SCHEMA IF NOT EXISTS \"x\"", &[])
        .expect("finishes");
    assert_eq!(
        state.lock().expect("lock").describes,
        5,
        "four waits, then FINISHED"
    );
}

#[test]
fn failed_and_aborted_statements_carry_redshifts_message() {
    let rt = runtime();
    for (status, word) in [
        (StatusString::Failed, "FAILED"),
        (StatusString::Aborted, "ABORTED"),
    ] {
        let state = Shared::default();
        state.lock().expect("lock").script = VecDeque::from([
            (StatusString::Started, None),
            (
                status,
                Some("ERROR: Spectrum Scan Error: column count mismatch".to_string()),
            ),
        ]);
        let mut redshift =
            Redshift::new(fake(&state), target(), fast(), rt.handle().clone()).expect("backend");
        let err = redshift.execute("SELECT 1", &[]).expect_err("fails");
        assert_eq!(err.kind, ErrorKind::Sql);
        assert!(err.message.contains(word), "{err}");
        assert!(err.message.contains("column count mismatch"), "{err}");
    }
}

#[test]
fn a_statement_still_running_at_the_timeout_is_cancelled_and_retryable() {
    let rt = runtime();
    let state = Shared::default();
    state.lock().expect("lock").script =
        std::iter::repeat_n((StatusString::Started, None), 1000).collect();
    let polling = Polling {
        timeout: Duration::from_millis(30),
        ..fast()
    };
    let mut redshift =
        Redshift::new(fake(&state), target(), polling, rt.handle().clone()).expect("backend");
    let err = redshift.execute("SELECT 1", &[]).expect_err("times out");
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        state.lock().expect("lock").cancelled,
        vec!["stmt-1".to_string()]
    );
}

#[test]
fn throttling_is_retried_by_the_sdk_then_reported_as_retryable() {
    let rt = runtime();
    // Always throttled: the SDK tries three times, then the loader says "retry later".
    let rule = mock!(aws_sdk_redshiftdata::Client::execute_statement)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
        )
        .times(3)
        .build();
    let client = mock_client!(aws_sdk_redshiftdata, RuleMode::Sequential, &[&rule], |b| {
        b.retry_config(
            aws_sdk_redshiftdata::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
    });
    let mut redshift =
        Redshift::new(client, target(), fast(), rt.handle().clone()).expect("backend");
    let err = redshift.execute("SELECT 1", &[]).expect_err("throttled");
    assert!(err.is_retryable(), "{err}");
    assert!(err.message.contains("ThrottlingException"), "{err}");
    assert_eq!(rule.num_calls(), 3, "the SDK retried");
}

/// Leader-node-only functions (Redshift Database Developer Guide, "Leader node–only functions"):
/// refused in a statement that reads or writes user tables.
const LEADER_NODE_ONLY: [&str; 17] = [
    "CURRENT_SCHEMA",
    "CURRENT_SCHEMAS",
    "HAS_DATABASE_PRIVILEGE",
    "HAS_SCHEMA_PRIVILEGE",
    "HAS_TABLE_PRIVILEGE",
    "AGE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "LOCALTIME",
    "ISFINITE",
    "NOW",
    "ASCII",
    "GET_BIT",
    "GET_BYTE",
    "SET_BIT",
    "SET_BYTE",
    "TO_ASCII",
];

/// The functions the loader calls, whose names are not identifiers to quote.
const FUNCTIONS: [&str; 10] = [
    "COUNT", "SUM", "AVG", "COALESCE", "NULLIF", "RANK", "GETDATE", "MAX", "MIN", "CAST",
];

/// What a Redshift statement must not do, by the documentation.
#[derive(Default)]
struct Rules {
    problems: Vec<String>,
}

impl sqlparser::ast::Visitor for Rules {
    type Break = ();

    fn pre_visit_ident(&mut self, ident: &sqlparser::ast::Ident) -> std::ops::ControlFlow<()> {
        let upper = ident.value.to_ascii_uppercase();
        if ident.quote_style != Some('"') && !FUNCTIONS.contains(&upper.as_str()) {
            self.problems
                .push(format!("bare identifier `{}`", ident.value));
        }
        if ident.quote_style.is_none() && LEADER_NODE_ONLY.contains(&upper.as_str()) {
            self.problems
                .push(format!("leader-node-only function {upper}"));
        }
        std::ops::ControlFlow::Continue(())
    }

    fn pre_visit_statement(
        &mut self,
        statement: &sqlparser::ast::Statement,
    ) -> std::ops::ControlFlow<()> {
        if let sqlparser::ast::Statement::Merge(m) = statement
            && let sqlparser::ast::TableFactor::Table { alias: Some(a), .. } = &m.table
        {
            self.problems
                .push(format!("MERGE target aliased `{}`", a.name.value));
        }
        std::ops::ControlFlow::Continue(())
    }
}

/// Checks one statement: parsed by a Redshift-dialect parser (Redshift's own clauses, which the
/// parser lacks, checked as text), then walked by [`Rules`].
fn redshift_problems(sql: &str) -> Vec<String> {
    use sqlparser::ast::Visit as _;
    let upper = sql.to_ascii_uppercase();
    let bare_name = |s: &str| {
        s.split([',', ' ', '(', ')'])
            .filter(|w| !w.is_empty())
            .any(|w| !w.starts_with('"') && w.chars().any(|c| c.is_ascii_lowercase()))
    };
    // COPY, LOCK and CREATE ... (LIKE ...) are Redshift's: the names in them must be quoted.
    if let Some(rest) = sql.strip_prefix("LOCK ") {
        return if bare_name(rest) {
            vec![format!("bare name in `{sql}`")]
        } else {
            Vec::new()
        };
    }
    if upper.starts_with("COPY ") {
        let table = sql.split_whitespace().nth(1).unwrap_or("");
        return if table.starts_with('"') {
            Vec::new()
        } else {
            vec![format!("bare table in `{sql}`")]
        };
    }
    if let Some((head, like)) = sql.split_once(" (LIKE ") {
        let mut p = redshift_problems(&format!("{head} (x INT)"));
        p.retain(|m| m != "bare identifier `x`");
        if bare_name(like.trim_end_matches(')')) {
            p.push(format!("bare name in `{sql}`"));
        }
        return p;
    }
    // The table layout clauses Redshift appends to CREATE TABLE.
    let parsed_text = match sql.find("\nDISTSTYLE") {
        Some(at) => {
            let layout = &sql[at..];
            if bare_name(
                &layout
                    .replace("DISTSTYLE", "")
                    .replace("DISTKEY", "")
                    .replace("COMPOUND SORTKEY", "")
                    .replace("SORTKEY", "")
                    .replace("KEY", "")
                    .replace("AUTO", "")
                    .replace("ALL", ""),
            ) {
                return vec![format!("bare name in the layout of `{sql}`")];
            }
            &sql[..at]
        }
        None => sql,
    };
    let statements = match sqlparser::parser::Parser::parse_sql(
        &sqlparser::dialect::RedshiftSqlDialect {},
        parsed_text,
    ) {
        Ok(s) => s,
        Err(e) => return vec![format!("does not parse as Redshift SQL ({e}): {sql}")],
    };
    let mut rules = Rules::default();
    for statement in &statements {
        let _ = statement.visit(&mut rules);
    }
    rules.problems
}

#[test]
fn every_redshift_statement_parses_and_follows_redshifts_rules() {
    // The rules catch the faults they are for.
    for (bad, problem) in [
        (
            "MERGE INTO \"b\".\"t\" AS t USING \"s\" ON t.\"k\" = \"s\".\"k\" WHEN MATCHED THEN UPDATE SET \"v\" = \"s\".\"v\" WHEN NOT MATCHED THEN INSERT (\"k\") VALUES (\"s\".\"k\")",
            "MERGE target aliased `t`",
        ),
        ("SELECT open FROM \"b\".\"t\"", "bare identifier `open`"),
        (
            "INSERT INTO \"b\".\"l\" (\"at\") VALUES (CURRENT_TIMESTAMP)",
            "leader-node-only function CURRENT_TIMESTAMP",
        ),
    ] {
        let found = redshift_problems(bad);
        assert!(found.iter().any(|p| p == problem), "{bad}: {found:?}");
    }
    // Every statement a start-up and a load send.
    let rt = runtime();
    let state = state_with_tables();
    let redshift =
        Redshift::new(fake(&state), target(), fast(), rt.handle().clone()).expect("backend");
    let mut loader = Loader::new(redshift, "bondlake", &contracts()).expect("schema");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let mut bytes = Vec::new();
    synth::generate(
        &Spec {
            dataset: "market_daily".into(),
            profile: "us".into(),
            rows: 50,
            seed: 3,
            dirty: 0.0,
        },
        &mut bytes,
    )
    .expect("generate");
    let out = bondlake_core::process(
        &contracts()[1],
        None,
        SourceRef {
            bucket: "raw".into(),
            key: "market/NYSE/n.csv".into(),
            etag: "e".into(),
            bytes: 1,
            ..Default::default()
        },
        std::io::Cursor::new(bytes),
        &store,
        &Options::default(),
    )
    .expect("process");
    state.lock().expect("lock").reconcile = vec![
        out.manifest.rows_ok.to_string(),
        out.manifest.control_totals["volume"].clone(),
    ];
    loader
        .load(&out.manifest_key, &out.manifest, &store)
        .expect("load");
    let sent: Vec<String> = state
        .lock()
        .expect("lock")
        .log
        .iter()
        .flat_map(|s| s.sqls.clone())
        .collect();
    assert!(sent.len() > 20, "{}", sent.len());
    let mut problems = Vec::new();
    for sql in &sent {
        for p in redshift_problems(sql) {
            problems.push(format!("{p}\n    in: {}", sql.lines().next().unwrap_or("")));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_errors_aws_says_to_retry_are_retryable_and_a_failed_guard_is_a_mismatch() {
    use bondlake_warehouse_redshift::is_transient_failure;
    for transient in [
        "Redshift statement s-1 FAILED: ERROR: 1023 DETAIL: Serializable isolation violation on table - 100294, transactions forming the cycle are: 9327, 9326",
        "Redshift statement s-2 FAILED: Session 1d2f is not available",
        "Redshift statement s-3 ABORTED: InternalServerError",
    ] {
        assert!(is_transient_failure(transient), "{transient}");
    }
    assert!(!is_transient_failure(
        "Redshift statement s-4 FAILED: ERROR: column \"isin\" does not exist"
    ));
    // The commit batch's guard divides by zero: the load is a mismatch, nothing committed, and
    // the merged rows' reconciliation is not even asked.
    let rt = runtime();
    let state = state_with_tables();
    let redshift =
        Redshift::new(fake(&state), target(), fast(), rt.handle().clone()).expect("backend");
    let mut loader = Loader::new(redshift, "bondlake", &contracts()[1..2]).expect("schema");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path());
    let mut bytes = Vec::new();
    synth::generate(
        &Spec {
            dataset: "market_daily".into(),
            profile: "us".into(),
            rows: 40,
            seed: 5,
            dirty: 0.0,
        },
        &mut bytes,
    )
    .expect("generate");
    let out = bondlake_core::process(
        &contracts()[1],
        None,
        SourceRef {
            bucket: "raw".into(),
            key: "market/NYSE/g.csv".into(),
            etag: "e".into(),
            bytes: 1,
            ..Default::default()
        },
        std::io::Cursor::new(bytes),
        &store,
        &Options::default(),
    )
    .expect("process");
    {
        let mut s = state.lock().expect("lock");
        s.reconcile = vec![
            out.manifest.rows_ok.to_string(),
            out.manifest.control_totals["volume"].clone(),
        ];
        s.fail_on = Some(("SELECT 1 / CASE".into(), "ERROR: Divide by zero".into()));
    }
    let err = loader
        .load(&out.manifest_key, &out.manifest, &store)
        .expect_err("the guard fails");
    assert_eq!(err.kind, ErrorKind::Mismatch, "{err}");
    assert!(err.message.contains("rolled back"), "{err}");
    let log = state.lock().expect("lock").log.clone();
    assert!(
        log.last()
            .is_some_and(|s| s.sqls.iter().any(|q| q.starts_with("MERGE"))),
        "the commit batch was the last call"
    );
}
