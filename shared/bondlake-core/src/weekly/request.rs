//! The weekly job as the EMR launcher runs it: the schedule invokes the launcher with
//! `{"weekly": {"scheduled": "<aws.scheduler.scheduled-time>"}}`, the request is stored at
//! `weeklies/<id>.json` in the processed bucket and claimed like a hand-off, and the run
//! (`emr/weekly_trends.py` on EMR, [`super::run`] on the local backend) writes
//! `weeklies/<id>.result.json` last: the chain's commit point, whose S3 notification starts the
//! export into MySQL.
//!
//! The id comes from the scheduled time, not from when the invocation arrived: the schedule's
//! retried delivery is the same run, claimed once.

use super::Ran;
use crate::failure::HandleError;
use crate::manifest::{digest_hex, now_us, parse_rfc3339_us, rfc3339};
use crate::store::ObjectStore;
use serde::{Deserialize, Serialize};

/// Version of the weekly request's layout.
pub const WEEKLY_VERSION: u32 = 1;

/// Where requests and results are, in the processed bucket.
pub const PREFIX: &str = "weeklies/";

/// One scheduled run of the weekly job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyRequest {
    /// [`WEEKLY_VERSION`].
    pub weekly_version: u32,
    /// The processed bucket: what the job reads and writes.
    pub processed_bucket: String,
    /// When the schedule meant the run to start, RFC 3339 UTC: which run this is.
    pub scheduled: String,
    /// The Hive database of the ORC table (in the Glue Data Catalog on EMR).
    pub database: String,
    /// Where a new database keeps its tables (`s3://processed/hive/bondlake.db`); empty: the
    /// metastore's default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub database_location: String,
    /// Tells two runs for the same time apart (a person running it again on purpose).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// When it was asked for (not part of the id).
    pub requested_at: String,
}

impl WeeklyRequest {
    /// A request for the run scheduled at `scheduled`, checked.
    pub fn new(
        processed_bucket: &str,
        scheduled: &str,
        database: &str,
        database_location: &str,
        label: &str,
    ) -> Result<WeeklyRequest, HandleError> {
        let bad = |why: String| Err(HandleError::InvalidInput(format!("weekly: {why}")));
        if processed_bucket.is_empty() {
            return bad("the processed bucket is needed".into());
        }
        if parse_rfc3339_us(scheduled).is_none() {
            return bad(format!(
                "`scheduled` `{scheduled}` is not a time (RFC 3339, 2026-12-05T06:00:00Z)"
            ));
        }
        // A Hive name, as the job puts it between backquotes.
        if database.is_empty()
            || !database
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return bad(format!(
                "database `{database}`: lower-case letters, digits and _ only"
            ));
        }
        if !database_location.is_empty() && database_location.contains('\'') {
            return bad(format!(
                "database location `{database_location}` has a quote"
            ));
        }
        Ok(WeeklyRequest {
            weekly_version: WEEKLY_VERSION,
            processed_bucket: processed_bucket.to_string(),
            scheduled: scheduled.to_string(),
            database: database.to_string(),
            database_location: database_location.to_string(),
            label: label.to_string(),
            requested_at: rfc3339(now_us()),
        })
    }

    /// Hexadecimal, from the bucket, the scheduled time, the database and the label.
    pub fn id(&self) -> String {
        digest_hex(
            &[
                "weekly",
                &self.processed_bucket,
                &self.scheduled,
                &self.database,
                &self.label,
            ],
            12,
        )
    }

    /// `weeklies/<id>.json`.
    pub fn key(&self) -> String {
        format!("{PREFIX}{}.json", self.id())
    }

    /// `weeklies/<id>.result.json`: written last, when the trends and the Hive table are done.
    pub fn result_key(&self) -> String {
        format!("{PREFIX}{}.result.json", self.id())
    }

    /// For people: `the weekly job scheduled for 2026-12-05T06:00:00Z`.
    pub fn describe(&self) -> String {
        format!("the weekly job scheduled for {}", self.scheduled)
    }
}

/// What a run came to, as `weeklies/<id>.result.json` holds it (both engines write the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyResult {
    /// The request's id.
    pub weekly_id: String,
    /// The trends manifest's key; none when there was no weekly_series data.
    pub manifest: Option<String>,
    /// Series in the history.
    pub series: u64,
    /// Weeks rebuilt.
    pub weeks: u64,
    /// Trend rows written.
    pub rows: u64,
    /// RFC 3339 UTC.
    pub finished_at: String,
}

/// Writes the result of `request`'s run, `ran`: the run's last write.
pub fn finish(
    processed: &dyn ObjectStore,
    request: &WeeklyRequest,
    ran: &Ran,
) -> Result<WeeklyResult, HandleError> {
    let result = WeeklyResult {
        weekly_id: request.id(),
        manifest: ran.manifest.as_ref().map(|(key, _)| key.clone()),
        series: ran.series as u64,
        weeks: ran.weeks.len() as u64,
        rows: ran.manifest.as_ref().map_or(0, |(_, m)| m.rows_written),
        finished_at: rfc3339(now_us()),
    };
    let key = request.result_key();
    crate::store::write_json(processed, &key, &result).map_err(|e| {
        HandleError::storage(format_args!("writing {}", processed.locate(&key)), &e)
    })?;
    Ok(result)
}

/// Runs `request` here (the launcher's local backend): the Rust job over `processed` with the
/// weekly_trends contract from `contracts` (the built-in one when none), then its result. No
/// Hive table: that is the Spark job's.
pub fn run_here(
    processed: &dyn ObjectStore,
    request: &WeeklyRequest,
    contracts: Option<&std::path::Path>,
) -> Result<WeeklyResult, HandleError> {
    let contract = crate::contract::load_dataset(super::TRENDS, contracts)
        .map_err(|e| HandleError::Config(e.to_string()))?;
    let ran = super::run(
        processed,
        &request.processed_bucket,
        &contract,
        crate::output::OutputOptions::default(),
    )
    .map_err(|e| match e {
        super::WeeklyError::Storage(m) => HandleError::Retryable(m),
        other => HandleError::Config(other.to_string()),
    })?;
    finish(processed, request, &ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduled_time_names_the_run_and_bad_fields_are_refused() {
        let a = WeeklyRequest::new("processed", "2026-12-05T06:00:00Z", "bondlake", "", "")
            .expect("request");
        let again = WeeklyRequest::new("processed", "2026-12-05T06:00:00Z", "bondlake", "", "")
            .expect("request");
        assert_eq!(a.id(), again.id(), "a retried delivery is the same run");
        let next = WeeklyRequest::new("processed", "2026-12-12T06:00:00Z", "bondlake", "", "")
            .expect("request");
        assert_ne!(a.id(), next.id());
        assert_eq!(a.key(), format!("weeklies/{}.json", a.id()));
        assert!(a.id().bytes().all(|b| b.is_ascii_hexdigit()));
        for (scheduled, database, location) in [
            ("last friday", "bondlake", ""),
            ("2026-12-05T06:00:00Z", "Bond-Lake", ""),
            ("2026-12-05T06:00:00Z", "bondlake", "s3://p/it's"),
        ] {
            let e = WeeklyRequest::new("processed", scheduled, database, location, "")
                .expect_err("refused");
            assert!(matches!(e, HandleError::InvalidInput(_)), "{e}");
        }
    }
}
