//! A backfill: the raw objects under a prefix, last written on some days, run through
//! csv-processor's engine again, with no deadline and nothing handed off. On EMR a Spark driver
//! (`emr/backfill.py`) spreads the [`plan`]'s objects over the cluster's executors, each running
//! `bondlake backfill object` ([`run_object`]); `bondlake backfill run` does the same in turn on
//! one machine (the launcher's local backend). Either way each object gets the keys, manifest and
//! event a Lambda run would give it: the same contract converges on what is there (the loader
//! says `already_loaded`), a new contract version writes new keys, which the loader merges.
//!
//! The request is stored at `backfills/<id>.json` in the processed bucket, where the launcher
//! claims it like a hand-off; [`finish`] writes `backfills/<id>.result.json` last.

use crate::failure::HandleError;
use crate::manifest::{digest_hex, now_us, parse_rfc3339_us, rfc3339};
use crate::parse::days_from_civil;
use crate::processor::{Budget, ObjectCreated, Processor};
use crate::route::Routes;
use crate::store::{Listed, ObjectStore};
use serde::{Deserialize, Serialize};
use std::io;
use std::time::Instant;

/// Version of the backfill request's layout.
pub const BACKFILL_VERSION: u32 = 1;

/// Where requests and results are, in the processed bucket.
pub const PREFIX: &str = "backfills/";

/// Which raw objects to run again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillRequest {
    /// [`BACKFILL_VERSION`].
    pub backfill_version: u32,
    /// The raw bucket.
    pub raw_bucket: String,
    /// Only keys under this prefix (empty: the whole bucket).
    #[serde(default)]
    pub prefix: String,
    /// The first day (YYYY-MM-DD, UTC) an object was last written on; none: no lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The last day, inclusive; none: no upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Only the objects routed to this dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Tells two runs of the same selection apart (a person sending it again on purpose after a
    /// fix gets a new id); empty for the first.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// When it was asked for, RFC 3339 UTC (not part of the id).
    pub requested_at: String,
}

impl BackfillRequest {
    /// A request for `raw_bucket`'s objects under `prefix` last written on `from..=to`, checked.
    pub fn new(
        raw_bucket: &str,
        prefix: &str,
        from: Option<&str>,
        to: Option<&str>,
        dataset: Option<&str>,
        label: &str,
    ) -> Result<BackfillRequest, HandleError> {
        let request = BackfillRequest {
            backfill_version: BACKFILL_VERSION,
            raw_bucket: raw_bucket.to_string(),
            prefix: prefix.trim_start_matches('/').to_string(),
            from: from.map(String::from),
            to: to.map(String::from),
            dataset: dataset.map(String::from),
            label: label.to_string(),
            requested_at: rfc3339(now_us()),
        };
        request.days()?;
        if raw_bucket.is_empty() {
            return Err(HandleError::InvalidInput(
                "a backfill needs the raw bucket".into(),
            ));
        }
        Ok(request)
    }

    /// The days selected, as days since 1970-01-01; each end open when not given.
    pub fn days(&self) -> Result<(Option<i32>, Option<i32>), HandleError> {
        let from = self
            .from
            .as_deref()
            .map(|d| day_number(d, "from"))
            .transpose()?;
        let to = self
            .to
            .as_deref()
            .map(|d| day_number(d, "to"))
            .transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && t < f
        {
            return Err(HandleError::InvalidInput(format!(
                "backfill: `to` {} is before `from` {}",
                self.to.as_deref().unwrap_or(""),
                self.from.as_deref().unwrap_or("")
            )));
        }
        Ok((from, to))
    }

    /// Hexadecimal, from what selects the objects (not when it was asked): the same backfill
    /// sent twice is one backfill, claimed once.
    pub fn id(&self) -> String {
        digest_hex(
            &[
                &self.raw_bucket,
                &self.prefix,
                self.from.as_deref().unwrap_or(""),
                self.to.as_deref().unwrap_or(""),
                self.dataset.as_deref().unwrap_or(""),
                &self.label,
            ],
            12,
        )
    }

    /// `backfills/<id>.json`.
    pub fn key(&self) -> String {
        format!("{PREFIX}{}.json", self.id())
    }

    /// `backfills/<id>.result.json`: written last, when every object has run.
    pub fn result_key(&self) -> String {
        format!("{PREFIX}{}.result.json", self.id())
    }

    /// What it selects, for people: `raw/holdings/ last written 2026-11-01..2026-11-30`.
    pub fn describe(&self) -> String {
        let days = match (&self.from, &self.to) {
            (None, None) => String::new(),
            (from, to) => format!(
                " last written {}..{}",
                from.as_deref().unwrap_or(""),
                to.as_deref().unwrap_or("")
            ),
        };
        let dataset = self
            .dataset
            .as_deref()
            .map_or(String::new(), |d| format!(" ({d})"));
        format!("s3://{}/{}{days}{dataset}", self.raw_bucket, self.prefix)
    }
}

/// A day (`YYYY-MM-DD`) as days since 1970-01-01; the error names `what`.
pub fn day_number(text: &str, what: &str) -> Result<i32, HandleError> {
    let parts: Vec<&str> = text.split('-').collect();
    let parsed = match parts.as_slice() {
        [y, m, d] if y.len() == 4 => match (y.parse(), m.parse(), d.parse()) {
            (Ok(y), Ok(m), Ok(d)) => days_from_civil(y, m, d),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| {
        HandleError::InvalidInput(format!("{what} `{text}` is not a day (YYYY-MM-DD)"))
    })
}

/// One raw object a backfill runs, as the plan lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    /// Key in the raw bucket.
    pub key: String,
    /// The version listed: the object is read only at it.
    pub etag: String,
    /// Size in bytes (the driver starts the biggest first).
    pub bytes: u64,
    /// When it was last written (the event time its manifest records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Where the routes send it.
    pub dataset: String,
}

/// The objects `request` selects, by key: under its prefix, routed (to its dataset, when it
/// names one), last written on its days. `skipped` counts what was under the prefix and not
/// taken (no route, another dataset, another day, a folder marker).
pub fn plan(
    raw: &dyn ObjectStore,
    routes: &Routes,
    request: &BackfillRequest,
) -> Result<(Vec<Planned>, u64), HandleError> {
    let (from, to) = request.days()?;
    let listed = raw.list_versions(&request.prefix).map_err(|e| {
        HandleError::storage(format_args!("listing {}", raw.locate(&request.prefix)), &e)
    })?;
    let mut planned = Vec::new();
    let mut skipped = 0;
    for Listed {
        key,
        etag,
        size,
        modified,
    } in listed
    {
        let day = modified
            .as_deref()
            .and_then(parse_rfc3339_us)
            .map(|us| us.div_euclid(86_400_000_000) as i32);
        let in_days = match day {
            Some(d) => from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t),
            None => from.is_none() && to.is_none(),
        };
        let route = routes.route(&key);
        let wanted = route
            .as_ref()
            .is_some_and(|r| request.dataset.as_ref().is_none_or(|d| *d == r.dataset));
        match route {
            Some(route) if wanted && in_days && !key.ends_with('/') => planned.push(Planned {
                key,
                etag,
                bytes: size,
                modified,
                dataset: route.dataset,
            }),
            _ => skipped += 1,
        }
    }
    Ok((planned, skipped))
}

/// What one object's run came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectOutcome {
    /// Key in the raw bucket.
    pub key: String,
    /// `processed` (a manifest, status ok or over threshold), `failed` (a manifest with status
    /// failed, or none: no route, gone), `superseded` (replaced since the plan: its own event
    /// brings the new version), `error` (it did not run to the end: see `error`).
    pub outcome: String,
    /// Records read, clean and quarantined.
    #[serde(default)]
    pub rows_read: u64,
    /// Clean records.
    #[serde(default)]
    pub rows_ok: u64,
    /// Quarantined records.
    #[serde(default)]
    pub rows_rejected: u64,
    /// The manifest's location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Why it did not run to the end, or what its manifest says failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether running it again may succeed (throttling, a dropped connection).
    #[serde(default)]
    pub retryable: bool,
    /// How long it took.
    #[serde(default)]
    pub seconds: f64,
}

impl ObjectOutcome {
    /// Ran to an outcome a person need not act on here (a failed manifest is told by its event).
    pub fn ran(&self) -> bool {
        self.outcome != "error"
    }
}

/// Runs one planned object of `request` through `processor` (built over the request's raw
/// bucket, with hand-offs off: nothing is too big here), as csv-processor would: its outputs,
/// manifest and event. Never fails: what went wrong is in the outcome.
pub fn run_object(
    processor: &Processor,
    request: &BackfillRequest,
    object: &Planned,
) -> ObjectOutcome {
    let started = Instant::now();
    let created = ObjectCreated {
        bucket: request.raw_bucket.clone(),
        key: object.key.clone(),
        etag: Some(object.etag.clone()),
        event_time: object.modified.clone(),
        sequencer: None,
    };
    let mut outcome = ObjectOutcome {
        key: object.key.clone(),
        outcome: String::new(),
        rows_read: 0,
        rows_ok: 0,
        rows_rejected: 0,
        manifest: None,
        error: None,
        retryable: false,
        seconds: 0.0,
    };
    match processor.handle_within(&created, Budget::default()) {
        Ok(Some(event)) => {
            outcome.outcome = event.kind().as_str().to_string();
            outcome.rows_read = event.rows_read;
            outcome.rows_ok = event.rows_ok;
            outcome.rows_rejected = event.rows_rejected;
            outcome.manifest = event.manifest.clone();
            outcome.error = event.error.clone();
        }
        Ok(None) => outcome.outcome = "superseded".into(),
        Err(e) => {
            outcome.outcome = "error".into();
            outcome.retryable = e.is_retryable();
            outcome.error = Some(e.to_string());
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

/// The whole backfill's account, written last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillResult {
    /// The request's id.
    pub backfill_id: String,
    /// What it selected.
    pub selection: String,
    /// Objects run.
    pub objects: u64,
    /// Of which ran to a manifest or a known outcome.
    pub ran: u64,
    /// Records read, clean and quarantined, over every object.
    pub rows_read: u64,
    /// Clean records.
    pub rows_ok: u64,
    /// Quarantined records.
    pub rows_rejected: u64,
    /// Each object that did not run to the end (or whose manifest failed), with why.
    pub problems: Vec<ObjectOutcome>,
    /// When it was written, RFC 3339 UTC.
    pub finished_at: String,
}

impl BackfillResult {
    /// Every object ran to the end (a failed manifest is the file's news, not the backfill's).
    pub fn complete(&self) -> bool {
        self.ran == self.objects
    }
}

/// Sums the outcomes and writes `backfills/<id>.result.json`.
pub fn finish(
    processed: &dyn ObjectStore,
    request: &BackfillRequest,
    outcomes: &[ObjectOutcome],
) -> Result<BackfillResult, HandleError> {
    let result = BackfillResult {
        backfill_id: request.id(),
        selection: request.describe(),
        objects: outcomes.len() as u64,
        ran: outcomes.iter().filter(|o| o.ran()).count() as u64,
        rows_read: outcomes.iter().map(|o| o.rows_read).sum(),
        rows_ok: outcomes.iter().map(|o| o.rows_ok).sum(),
        rows_rejected: outcomes.iter().map(|o| o.rows_rejected).sum(),
        problems: outcomes
            .iter()
            .filter(|o| !o.ran() || o.outcome == "failed")
            .cloned()
            .collect(),
        finished_at: rfc3339(now_us()),
    };
    let key = request.result_key();
    crate::store::write_json(processed, &key, &result).map_err(|e| {
        HandleError::storage(format_args!("writing {}", processed.locate(&key)), &e)
    })?;
    Ok(result)
}

/// Reads the request at `key` in the processed bucket.
pub fn read_request(
    processed: &dyn ObjectStore,
    key: &str,
) -> Result<BackfillRequest, HandleError> {
    let location = processed.locate(key);
    let mut text = Vec::new();
    processed
        .open(key)
        .and_then(|mut r| io::Read::read_to_end(&mut r, &mut text))
        .map_err(|e| HandleError::storage(format_args!("reading {location}"), &e))?;
    let request: BackfillRequest = serde_json::from_slice(&text)
        .map_err(|e| HandleError::Config(format!("{location}: not a backfill request: {e}")))?;
    if request.backfill_version != BACKFILL_VERSION {
        return Err(HandleError::Config(format!(
            "{location}: backfill request version {} (this build reads {BACKFILL_VERSION})",
            request.backfill_version
        )));
    }
    Ok(request)
}

/// Runs every planned object in turn, then [`finish`]: the whole backfill on this machine (the
/// launcher's local backend, and the yardstick the Spark driver's outputs are held to).
/// `processor` reads the request's raw bucket and hands nothing off
/// ([`Processor::without_handoffs`]).
pub fn run_here(
    processor: &Processor,
    request: &BackfillRequest,
) -> Result<BackfillResult, HandleError> {
    let (planned, _) = plan(processor.raw(), &processor.settings().routes, request)?;
    let outcomes: Vec<ObjectOutcome> = planned
        .iter()
        .map(|o| run_object(processor, request, o))
        .collect();
    finish(processor.processed(), request, &outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    #[test]
    fn the_same_selection_is_one_backfill_and_a_label_makes_another() {
        let a = BackfillRequest::new(
            "raw",
            "holdings/",
            Some("2026-11-01"),
            Some("2026-11-30"),
            None,
            "",
        )
        .expect("request");
        let mut b = a.clone();
        b.requested_at = "2030-01-01T00:00:00Z".into();
        assert_eq!(a.id(), b.id());
        b.label = "after-the-fix".into();
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 24);
        assert_eq!(a.key(), format!("backfills/{}.json", a.id()));
        assert!(
            a.describe().contains("2026-11-01..2026-11-30"),
            "{}",
            a.describe()
        );
    }

    #[test]
    fn bad_days_are_refused_with_the_field() {
        for (from, to, field) in [
            (Some("2026-13-01"), None, "from"),
            (None, Some("yesterday"), "to"),
            (Some("2026-11-30"), Some("2026-11-01"), "before"),
        ] {
            let e = BackfillRequest::new("raw", "", from, to, None, "").expect_err("refused");
            assert!(matches!(e, HandleError::InvalidInput(_)), "{e}");
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn the_plan_takes_routed_objects_of_the_days_and_dataset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = LocalStore::new(dir.path());
        let put = |key: &str, day: u64| {
            let path = dir.path().join(key);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, b"x").expect("write");
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(day * 86_400 + 3600);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(at))
                .expect("mtime");
        };
        let nov_1 = days_from_civil(2026, 11, 1).expect("day") as u64;
        put("holdings/custodian_a/h1.csv.gz", nov_1);
        put("holdings/custodian_a/h2.csv.gz", nov_1 + 1);
        put("market/NYSE/p1.csv", nov_1);
        put("elsewhere/x.csv", nov_1);
        let routes = Routes::builtin();
        let one_day =
            BackfillRequest::new("raw", "", Some("2026-11-01"), Some("2026-11-01"), None, "")
                .expect("request");
        let (planned, skipped) = plan(&raw, &routes, &one_day).expect("plan");
        let keys: Vec<&str> = planned.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["holdings/custodian_a/h1.csv.gz", "market/NYSE/p1.csv"]
        );
        assert_eq!(skipped, 2, "another day, and no route");
        let holdings = BackfillRequest::new("raw", "", None, None, Some("investor_holdings"), "")
            .expect("request");
        let (planned, _) = plan(&raw, &routes, &holdings).expect("plan");
        assert_eq!(planned.len(), 2);
        assert!(
            planned
                .iter()
                .all(|p| p.dataset == "investor_holdings" && p.bytes == 1)
        );
    }
}
