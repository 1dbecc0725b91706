//! Redshift through the Data API: no connection, no driver, no stored password. The Data API signs
//! with the function's IAM role and authenticates to the database with temporary credentials
//! (`DbUser` on a provisioned cluster, the role itself on Serverless) or a Secrets Manager secret.
//!
//! A load is one Data API session (temporary tables live as long as it does):
//! 1. `BatchExecuteStatement`: create the stage (the parts' own columns, in their order: COPY maps
//!    Parquet columns by position, whatever contract version wrote them) and the ledger row's
//!    stage, and `COPY` the parts from a COPY manifest listing exactly the manifest's parts.
//! 2. `ExecuteStatement` with parameters: the ledger row into its stage (values never enter SQL;
//!    an empty value is sent as NULL, which the Data API requires).
//! 3. `ExecuteStatement`: the staged rows' count and control totals, compared with the manifest;
//!    a mismatch ends the load with the target untouched.
//! 4. `BatchExecuteStatement`, one transaction (a batch cannot branch): LOCK the target and the
//!    ledger; delete the staged rows a newer input already gave the table; the MERGE; a guard
//!    statement that divides by zero, aborting the whole transaction, unless the merged rows
//!    equal the stage's; the ledger row, unless a concurrent delivery wrote it first.
//! 5. `ExecuteStatement`s: the rows merged and their totals, for the event.
//!
//! Every statement is polled with `DescribeStatement` under a capped exponential backoff;
//! `FAILED` and `ABORTED` become errors carrying Redshift's message, retryable where AWS says a
//! retry succeeds (a serializable isolation violation, a reclaimed session, an internal error).

use aws_sdk_redshiftdata::Client;
use aws_sdk_redshiftdata::error::ProvideErrorMetadata;
use aws_sdk_redshiftdata::types::{Field, SqlParameter, StatusString};
use bondlake_core::warehouse::{
    Checkpoint, Dialect, LoadJob, Loaded, Rows, Warehouse, WarehouseError, stage_name, stage_table,
};
use std::time::Duration;
use tokio::runtime::Handle;

/// Which Redshift to talk to, and as whom.
#[derive(Debug, Clone)]
pub struct RedshiftTarget {
    /// A provisioned cluster's identifier (with `db_user` or `secret_arn`).
    pub cluster_id: Option<String>,
    /// A Serverless workgroup (IAM, or `secret_arn`).
    pub workgroup: Option<String>,
    /// The database.
    pub database: String,
    /// Database user for temporary IAM credentials (provisioned clusters).
    pub db_user: Option<String>,
    /// A Secrets Manager secret holding the credentials.
    pub secret_arn: Option<String>,
    /// The IAM role COPY reads S3 with: an ARN, or `default` for the cluster's default role.
    pub copy_role: String,
    /// The processed bucket (the parts and the COPY manifests live there).
    pub bucket: String,
}

/// How `DescribeStatement` is polled.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    /// First wait.
    pub initial: Duration,
    /// Longest wait between two polls.
    pub max: Duration,
    /// Give up (and cancel the statement) after this long.
    pub timeout: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Polling {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
        }
    }
}

/// The Data API backend.
pub struct Redshift {
    client: Client,
    target: RedshiftTarget,
    polling: Polling,
    runtime: Handle,
}

/// A request sent within a session, or else addressed to the target (the two request builders
/// share these setters but no trait).
macro_rules! addressed {
    ($req:expr, $session:expr, $target:expr) => {
        match $session {
            Some(s) => $req.session_id(s),
            None => $req
                .set_cluster_identifier($target.cluster_id.clone())
                .set_workgroup_name($target.workgroup.clone())
                .database(&$target.database)
                .set_db_user($target.db_user.clone())
                .set_secret_arn($target.secret_arn.clone()),
        }
    };
}

/// A submitted statement (or batch).
struct Submitted {
    id: String,
    session: Option<String>,
}

impl Submitted {
    /// From either request's output (the two output types share these getters but no trait).
    fn new(id: Option<&str>, session: Option<&str>) -> Self {
        Submitted {
            id: id.unwrap_or_default().to_string(),
            session: session.map(str::to_string),
        }
    }
}

impl Redshift {
    /// A backend on `client`; the runtime runs the SDK's futures (call from a blocking thread).
    pub fn new(
        client: Client,
        target: RedshiftTarget,
        polling: Polling,
        runtime: Handle,
    ) -> Result<Self, WarehouseError> {
        if target.cluster_id.is_none() == target.workgroup.is_none() {
            return Err(WarehouseError::config(
                "Redshift: set exactly one of the cluster identifier and the workgroup",
            ));
        }
        check_role(&target.copy_role)?;
        check_bucket(&target.bucket)?;
        Ok(Redshift {
            client,
            target,
            polling,
            runtime,
        })
    }

    async fn submit(
        &self,
        sqls: &[String],
        params: &[(&str, &str)],
        session: Option<&str>,
        keep_alive: bool,
    ) -> Result<Submitted, WarehouseError> {
        let t = &self.target;
        let keep = keep_alive.then_some(SESSION_KEEP_ALIVE_SECONDS);
        // The Data API refuses an empty parameter value: an empty one is NULL in the text.
        let mut sqls = sqls.to_vec();
        for (name, _) in params.iter().filter(|(_, v)| v.is_empty()) {
            for sql in &mut sqls {
                *sql = null_parameter(sql, name);
            }
        }
        let params: Vec<(&str, &str)> = params
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .copied()
            .collect();
        let parameters = sql_parameters(&params)?;
        if let [sql] = sqls.as_slice() {
            let out = addressed!(self.client.execute_statement().sql(sql), session, t)
                .set_parameters(parameters)
                .set_session_keep_alive_seconds(keep)
                .send()
                .await
                .map_err(api_error)?;
            Ok(Submitted::new(out.id(), out.session_id()))
        } else {
            let req = self.client.batch_execute_statement().set_sqls(Some(sqls));
            let out = addressed!(req, session, t)
                .set_session_keep_alive_seconds(keep)
                .send()
                .await
                .map_err(api_error)?;
            Ok(Submitted::new(out.id(), out.session_id()))
        }
    }

    /// Polls until the statement finishes; FAILED and ABORTED carry Redshift's message.
    async fn wait(&self, id: &str) -> Result<bool, WarehouseError> {
        let started = tokio::time::Instant::now();
        let mut delay = self.polling.initial;
        loop {
            let out = self
                .client
                .describe_statement()
                .id(id)
                .send()
                .await
                .map_err(api_error)?;
            match out.status() {
                Some(StatusString::Finished) => return Ok(out.has_result_set().unwrap_or(false)),
                Some(StatusString::Failed) | Some(StatusString::Aborted) => {
                    let status = out.status().map(|s| s.as_str()).unwrap_or("FAILED");
                    let failed_sub = out
                        .sub_statements()
                        .iter()
                        .find(|s| s.error().is_some_and(|e| !e.is_empty()));
                    let mut msg = format!(
                        "Redshift statement {id} {status}: {}",
                        out.error().unwrap_or("no message")
                    );
                    if let Some(sub) = failed_sub {
                        msg.push_str(&format!(
                            " (in `{}`)",
                            sub.query_string()
                                .unwrap_or("")
                                .lines()
                                .next()
                                .unwrap_or("")
                        ));
                    }
                    return Err(if is_transient_failure(&msg) {
                        WarehouseError::transient(msg)
                    } else {
                        WarehouseError::sql(msg)
                    });
                }
                _ => {}
            }
            if started.elapsed() + delay > self.polling.timeout {
                let _ = self.client.cancel_statement().id(id).send().await;
                return Err(WarehouseError::transient(format!(
                    "Redshift statement {id} still running after {:?}; cancelled",
                    self.polling.timeout
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.polling.max);
        }
    }

    async fn results(&self, id: &str) -> Result<Rows, WarehouseError> {
        let mut rows = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .get_statement_result()
                .id(id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(api_error)?;
            for record in out.records() {
                rows.push(record.iter().map(field_text).collect());
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(rows),
            }
        }
    }

    /// Submits, waits, and fetches rows when there are any.
    async fn run(
        &self,
        sqls: &[String],
        params: &[(&str, &str)],
        session: Option<&str>,
        keep_alive: bool,
    ) -> Result<(Rows, Option<String>), WarehouseError> {
        let sub = self.submit(sqls, params, session, keep_alive).await?;
        let has_rows = self.wait(&sub.id).await?;
        let rows = if has_rows {
            self.results(&sub.id).await?
        } else {
            Vec::new()
        };
        Ok((rows, sub.session.or(session.map(str::to_string))))
    }

    /// The COPY manifest for the job: exactly its parts, with their sizes (required for Parquet).
    fn copy_manifest(&self, job: &LoadJob<'_>) -> serde_json::Value {
        let entries: Vec<serde_json::Value> = job
            .manifest
            .outputs
            .iter()
            .map(|o| {
                serde_json::json!({
                    "url": format!("s3://{}/{}", self.target.bucket, o.key),
                    "mandatory": true,
                    "meta": { "content_length": o.bytes },
                })
            })
            .collect();
        serde_json::json!({ "entries": entries })
    }
}

/// Whether a FAILED statement's message is one AWS says to retry: a serializable isolation
/// violation (error 1023, which concurrent loads into one table can hit), a session the service
/// reclaimed (idle past its keep-alive, or its cluster restarted), or the Data API's own internal
/// or connection errors.
pub fn is_transient_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("1023")
        || m.contains("serializable isolation violation")
        || (m.contains("session")
            && (m.contains("not available")
                || m.contains("no longer")
                || m.contains("expired")
                || m.contains("terminated")))
        || m.contains("internal server error")
        || m.contains("internalservererror")
        || m.contains("databaseconnectionexception")
        || m.contains("connection reset")
}

/// Sessions outlive a load's five calls by a margin; Redshift ends them when idle this long.
const SESSION_KEEP_ALIVE_SECONDS: i32 = 300;

/// Where a job's COPY manifest is written: fixed text and a hash of the manifest key.
pub fn copy_manifest_key(job: &LoadJob<'_>) -> String {
    format!(
        "loads/{}/{}.copy-manifest.json",
        job.table.name.name(),
        stage_name(job.manifest_key)
    )
}

fn sql_parameters(params: &[(&str, &str)]) -> Result<Option<Vec<SqlParameter>>, WarehouseError> {
    if params.is_empty() {
        return Ok(None);
    }
    params
        .iter()
        .map(|(name, value)| {
            SqlParameter::builder()
                .name(*name)
                .value(*value)
                .build()
                .map_err(|e| WarehouseError::config(format!("parameter {name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn field_text(f: &Field) -> Option<String> {
    match f {
        Field::IsNull(true) => None,
        Field::StringValue(s) => Some(s.clone()),
        Field::LongValue(v) => Some(v.to_string()),
        Field::DoubleValue(v) => Some(v.to_string()),
        Field::BooleanValue(v) => Some(v.to_string()),
        _ => None,
    }
}

fn api_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    e: aws_sdk_redshiftdata::error::SdkError<E>,
) -> WarehouseError {
    let code = e.code().unwrap_or("").to_string();
    let message = e
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{e:?}"));
    let text = format!("Redshift Data API {code}: {message}");
    match code.as_str() {
        "ThrottlingException"
        | "ActiveStatementsExceededException"
        | "ActiveSessionsExceededException"
        | "InternalServerException"
        | "DatabaseConnectionException"
        | "" => WarehouseError::transient(text),
        _ => WarehouseError::sql(text),
    }
}

fn check_role(role: &str) -> Result<(), WarehouseError> {
    let ok = role == "default"
        || (role.starts_with("arn:aws")
            && role.contains(":iam::")
            && role.contains(":role/")
            && role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":/-_+=,.@".contains(&b)));
    if ok {
        Ok(())
    } else {
        Err(WarehouseError::config(format!(
            "REDSHIFT_COPY_ROLE `{role}` is neither `default` nor an IAM role ARN"
        )))
    }
}

fn check_bucket(bucket: &str) -> Result<(), WarehouseError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(WarehouseError::config(format!(
            "`{bucket}` is not an S3 bucket name"
        )))
    }
}

impl Warehouse for Redshift {
    fn dialect(&self) -> Dialect {
        Dialect::Redshift
    }

    fn execute(&mut self, sql: &str, params: &[&str]) -> Result<(), WarehouseError> {
        self.query(sql, params).map(|_| ())
    }

    fn query(&mut self, sql: &str, params: &[&str]) -> Result<Rows, WarehouseError> {
        let named = if params.is_empty() {
            Vec::new()
        } else {
            name_params(sql, params)?
        };
        let named: Vec<(&str, &str)> = named.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        let rt = self.runtime.clone();
        rt.block_on(self.run(&[sql.to_string()], &named, None, false))
            .map(|(rows, _)| rows)
    }

    fn load(&mut self, job: &LoadJob<'_>) -> Result<Loaded, WarehouseError> {
        let table = job.table;
        let stage = stage_table(job.manifest_key);
        let meta = format!("\"{}_ledger\"", stage_name(job.manifest_key));
        let ledger_table = bondlake_core::warehouse::sql::ledger_table(&table.schema);
        // The stage holds the parts' columns in the parts' order: COPY maps them by position.
        let columns = job.stage_columns()?;
        let manifest_key = copy_manifest_key(job);
        let body = serde_json::to_vec_pretty(&self.copy_manifest(job)).unwrap_or_default();
        let mut w = job
            .store
            .create(&manifest_key)
            .map_err(|e| WarehouseError::transient(format!("writing {manifest_key}: {e}")))?;
        std::io::Write::write_all(&mut w, &body)
            .and_then(|_| w.commit().map(|_| ()))
            .map_err(|e| WarehouseError::transient(format!("writing {manifest_key}: {e}")))?;
        let role = if self.target.copy_role == "default" {
            "default".to_string()
        } else {
            format!("'{}'", self.target.copy_role)
        };
        let stage_sqls = vec![
            table.create_stage_sql(&stage, &columns, Dialect::Redshift),
            format!("CREATE TEMP TABLE {meta} (LIKE {ledger_table})"),
            format!(
                "COPY {stage} FROM 's3://{}/{manifest_key}' IAM_ROLE {role} FORMAT AS PARQUET MANIFEST",
                self.target.bucket
            ),
        ];
        let ledger_insert =
            bondlake_core::warehouse::sql::ledger_insert_sql(&meta, Dialect::Redshift);
        let ledger = job.ledger_params(0);
        let names: Vec<&str> = bondlake_core::warehouse::sql::LEDGER_COLUMNS
            .iter()
            .map(|(n, _)| *n)
            .collect();
        let params: Vec<(&str, &str)> = names
            .iter()
            .zip(&ledger)
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        // One transaction (a batch is one; it cannot branch): the target and the ledger locked,
        // superseded rows out of the stage, the MERGE, a guard that aborts everything unless the
        // merged rows equal the stage's, and only then the ledger row, once.
        let commit_sqls = vec![
            format!("LOCK {}, {ledger_table}", table.qualified()),
            table.delete_superseded_sql(&stage),
            format!("UPDATE {meta} SET \"rows_loaded\" = (SELECT COUNT(*) FROM {stage})"),
            table.merge_sql(&stage, &columns),
            table.guard_sql(&stage),
            format!(
                "INSERT INTO {ledger_table} SELECT * FROM {meta} WHERE NOT EXISTS (SELECT 1 FROM {ledger_table} WHERE \"manifest_key\" IN (SELECT \"manifest_key\" FROM {meta}))"
            ),
        ];
        let rt = self.runtime.clone();
        rt.block_on(async {
            let (_, session) = self.run(&stage_sqls, &[], None, true).await?;
            let session = session.ok_or_else(|| {
                WarehouseError::sql("the Data API returned no session for the staging batch")
            })?;
            let s = Some(session.as_str());
            self.run(&[ledger_insert], &params, s, false).await?;
            let (staged, _) = self
                .run(&[table.reconcile_sql(&stage, Dialect::Redshift)], &[], s, false)
                .await?;
            let staged = (job.check)(Checkpoint::Staged, &staged)?;
            if let Err(e) = self.run(&commit_sqls, &[], s, false).await {
                if bondlake_core::warehouse::sql::is_guard_failure(&e.message) {
                    return Err(WarehouseError {
                        kind: bondlake_core::warehouse::ErrorKind::Mismatch,
                        message: format!(
                            "{}: the merged rows do not match the rows left to merge; the transaction was rolled back ({})",
                            job.manifest_key, e.message
                        ),
                    });
                }
                return Err(e);
            }
            let (fresh, _) = self
                .run(&[table.reconcile_sql(&stage, Dialect::Redshift)], &[], s, false)
                .await?;
            let fresh = (job.check)(Checkpoint::Fresh, &fresh)?;
            let (merged, _) = self
                .run(&[table.reconcile_merged_sql(&stage, Dialect::Redshift)], &[], s, false)
                .await?;
            (job.check)(Checkpoint::Merged, &merged)?;
            Ok(Loaded::Merged {
                superseded: staged.rows.saturating_sub(fresh.rows),
                fresh,
            })
        })
    }
}

/// `sql` with every `:name` (exactly that name) replaced by NULL.
fn null_parameter(sql: &str, name: &str) -> String {
    let needle = format!(":{name}");
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        let whole = !after
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        out.push_str(&rest[..at]);
        out.push_str(if whole { "NULL" } else { &needle });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Pairs positional parameters with the `:name`s the statement uses, in order of appearance.
fn name_params<'a>(
    sql: &str,
    params: &[&'a str],
) -> Result<Vec<(String, &'a str)>, WarehouseError> {
    let mut names: Vec<String> = Vec::new();
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b':'
            && i + 1 < bytes.len()
            && bytes[i + 1].is_ascii_lowercase()
            && (i == 0 || bytes[i - 1] != b':')
        {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            let name = sql[start..end].to_string();
            if !names.contains(&name) {
                names.push(name);
            }
            i = end;
        } else {
            i += 1;
        }
    }
    if names.len() != params.len() {
        return Err(WarehouseError::config(format!(
            "statement names {} parameters, {} given",
            names.len(),
            params.len()
        )));
    }
    Ok(names.into_iter().zip(params.iter().copied()).collect())
}
