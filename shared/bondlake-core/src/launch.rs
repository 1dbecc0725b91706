//! The EMR launcher's core: a hand-off (or a backfill) run once in effect, on whichever backend
//! runs it.
//!
//! EMR on EC2 takes no idempotency token, so each run is claimed first, in the processed bucket,
//! with a conditional write (`If-None-Match: *`):
//!
//! - `launches/<handoff event id>/a<NN>.claim.json`: attempt NN claimed (the first writer wins);
//! - `a<NN>.submitted.json`: the backend took it (cluster or step id);
//! - `a<NN>.ended.json`: EMR said it ended without a manifest (failed, cancelled): only then may
//!   attempt NN+1 be claimed;
//! - `a<NN>.stuck.json`: the sweep reported it stuck (once).
//!
//! A redelivered hand-off finds its claim and submits nothing. A claim without a submission (a
//! crash between the two, or a submission that failed and is being retried) asks the backend
//! whether a run of that name exists before submitting: names are deterministic,
//! `bondlake-<handoff event id>-a<attempt>`, which is also how an EMR state change maps back to
//! its hand-off. A backfill ([`crate::backfill`]) is claimed the same way under its request's id,
//! and is done when its result is written. The launcher runs one at a time (reserved concurrency 1), so no two invocations
//! race between the check and the submission. The weekly job ([`crate::weekly::request`]) is
//! claimed the same way under its scheduled run's id.

use crate::backfill::BackfillRequest;
use crate::events::{EventSink, LaunchInfo, Outcome, PipelineEvent};
use crate::failure::HandleError;
use crate::manifest::{SourceRef, now_us, parse_rfc3339_us, rfc3339};
use crate::processor::HandoffRequest;
use crate::store::{ObjectStore, Precondition};
use crate::weekly::WeeklyRequest;
use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

/// The publisher name in `launched`, `launch_failed` and `launch_stuck` events.
pub const STAGE: &str = "emr-launcher";

/// Where the claims are, in the processed bucket.
pub const CLAIMS_PREFIX: &str = "launches/";

/// Attempts per hand-off: after that a person decides (the notice says how to send it again).
pub const MAX_ATTEMPTS: u32 = 3;

/// What a run does: one handed-off object, a backfill over many, or the weekly job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Work {
    /// `bondlake handoff`: one object csv-processor handed off.
    Handoff(HandoffRequest),
    /// `emr/backfill.py` (on a cluster) or `bondlake backfill run`: raw objects run again.
    Backfill(BackfillRequest),
    /// `emr/weekly_trends.py` (on a cluster) or `bondlake weekly`'s job: the trends.
    Weekly(WeeklyRequest),
}

impl Work {
    /// `handoff`, `backfill` or `weekly`: the events' `launch.work`.
    pub fn kind(&self) -> &'static str {
        match self {
            Work::Handoff(_) => "handoff",
            Work::Backfill(_) => "backfill",
            Work::Weekly(_) => "weekly",
        }
    }

    /// What exists once the run succeeded: the hand-off's manifest, the backfill's or the
    /// weekly job's result.
    pub fn done_key(&self) -> String {
        match self {
            Work::Handoff(r) => r.manifest_key.clone(),
            Work::Backfill(r) => r.result_key(),
            Work::Weekly(r) => r.result_key(),
        }
    }

    /// The dataset, when the work has one.
    pub fn dataset(&self) -> Option<&str> {
        match self {
            Work::Handoff(r) => Some(&r.dataset),
            Work::Backfill(r) => r.dataset.as_deref(),
            Work::Weekly(_) => Some(crate::weekly::TRENDS),
        }
    }

    /// The id a backfill or a weekly run is claimed under (a hand-off's is its event's).
    fn own_id(&self) -> Option<String> {
        match self {
            Work::Handoff(_) => None,
            Work::Backfill(r) => Some(r.id()),
            Work::Weekly(r) => Some(r.id()),
        }
    }

    /// The input the events name: the handed-off object, or the backfill's raw prefix.
    fn source(&self) -> SourceRef {
        match self {
            Work::Handoff(r) => r.source.clone(),
            Work::Backfill(r) => SourceRef {
                bucket: r.raw_bucket.clone(),
                key: r.prefix.clone(),
                ..Default::default()
            },
            // The job reads every weekly_series manifest.
            Work::Weekly(r) => SourceRef {
                bucket: r.processed_bucket.clone(),
                key: format!("manifests/{}/", crate::weekly::SERIES),
                ..Default::default()
            },
        }
    }
}

/// One run for a backend to submit.
#[derive(Debug, Clone)]
pub struct Job {
    /// The `handoff` event's id, or the backfill's.
    pub handoff_event_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// `bondlake-<handoff event id>-a<attempt>`: the cluster's and the step's name.
    pub name: String,
    /// The request's key in the processed bucket.
    pub request_key: String,
    /// The request's location (`s3://processed/handoffs/...json`, `.../backfills/...json`),
    /// what the step is given.
    pub request_location: String,
    /// The request itself.
    pub work: Work,
}

/// The name of attempt `attempt` of hand-off `event_id`.
pub fn job_name(event_id: &str, attempt: u32) -> String {
    format!("bondlake-{event_id}-a{attempt}")
}

/// The hand-off event id and attempt a cluster or step name stands for; `None` when the name is
/// not one of ours.
pub fn parse_job_name(name: &str) -> Option<(String, u32)> {
    let rest = name.strip_prefix("bondlake-")?;
    let (id, attempt) = rest.rsplit_once("-a")?;
    let ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(())?;
    Some((id.to_string(), attempt.parse().ok().filter(|&n| n > 0)?))
}

/// What a backend answers for a submitted run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The cluster id, `cluster/step`, or the local run's.
    pub id: String,
    /// Where its logs go, when the backend knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// Where a hand-off runs: a transient EMR cluster, steps on a running one, or this machine.
pub trait Backend: Send + Sync {
    /// `transient_cluster`, `steps`, `local`: the events' `backend`.
    fn kind(&self) -> &'static str;
    /// Submits the run. Errors carry their disposition: throttling and 5xx retry, a refusal of
    /// the request as made (access denied, validation) is configuration.
    fn submit(&self, job: &Job) -> Result<Submission, HandleError>;
    /// The run of this job's name, if one was already submitted (a claim whose submission was
    /// never recorded).
    fn find(&self, job: &Job) -> Result<Option<Submission>, HandleError>;
}

/// A claim as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claim {
    handoff_event_id: String,
    attempt: u32,
    name: String,
    request: String,
    backend: String,
    claimed_at: String,
}

/// How an attempt ended, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ended {
    state: String,
    message: String,
}

/// What [`Launcher::launch`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Launched {
    /// Submitted now; the `launched` event published.
    Submitted(Box<PipelineEvent>),
    /// This attempt was already submitted (a redelivery): nothing done.
    AlreadySubmitted {
        /// The attempt.
        attempt: u32,
    },
    /// The hand-off's manifest exists: its file was processed.
    AlreadyDone,
}

/// An EMR step or cluster state change (EventBridge `aws.emr`), as the launcher needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateChange {
    /// The step's or cluster's name.
    pub name: String,
    /// The cluster id (and step id).
    pub id: String,
    /// `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, `TERMINATED`, `TERMINATED_WITH_ERRORS`.
    pub state: String,
    /// What EMR said (the failure's reason and message).
    pub message: String,
    /// The log location, when the event gives one.
    pub logs: Option<String>,
}

impl StateChange {
    /// Ended without the step succeeding.
    fn failed(&self) -> bool {
        matches!(
            self.state.as_str(),
            "FAILED" | "CANCELLED" | "TERMINATED_WITH_ERRORS" | "INTERRUPTED"
        )
    }
}

/// Claims, submits and reports hand-off runs (see the module's documentation).
pub struct Launcher {
    processed: Arc<dyn ObjectStore>,
    events: Arc<dyn EventSink>,
    backend: Arc<dyn Backend>,
}

impl Launcher {
    /// A launcher writing its claims to `processed` and its events to `events`.
    pub fn new(
        processed: Arc<dyn ObjectStore>,
        events: Arc<dyn EventSink>,
        backend: Arc<dyn Backend>,
    ) -> Self {
        Launcher {
            processed,
            events,
            backend,
        }
    }

    /// The key of a location in the processed bucket (`s3://processed/handoffs/x.json`, or a
    /// local path), as the hand-off event gives it.
    pub fn key_of(&self, location: &str) -> Result<String, HandleError> {
        let root = self.processed.locate("");
        location
            .strip_prefix(&root)
            .map(|k| k.trim_start_matches('/').to_string())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                HandleError::InvalidInput(format!(
                    "the hand-off request {location} is not in the processed bucket ({root})"
                ))
            })
    }

    /// Launches the hand-off `handoff_event_id` whose request is at `request_location`, once
    /// (see the module's documentation). A backfill's request is launched the same way, under
    /// its own id (a `retry` invocation names either).
    pub fn launch(
        &self,
        handoff_event_id: &str,
        request_location: &str,
    ) -> Result<Launched, HandleError> {
        if parse_job_name(&job_name(handoff_event_id, 1)).is_none() {
            return Err(HandleError::InvalidInput(format!(
                "hand-off event id `{handoff_event_id}` is not hexadecimal"
            )));
        }
        let request_key = self.key_of(request_location)?;
        let work: Work = self.read_json(&request_key)?.ok_or_else(|| {
            HandleError::Config(format!(
                "{request_location}: the request is missing (expired by the bucket's lifecycle?)"
            ))
        })?;
        if let Some(id) = work.own_id()
            && id != handoff_event_id
        {
            return Err(HandleError::InvalidInput(format!(
                "{request_location} is {} {id}, not {handoff_event_id}",
                work.kind()
            )));
        }
        if self.exists(&work.done_key())? {
            return Ok(Launched::AlreadyDone);
        }
        // The attempt to run, and whether its claim is already written (by an earlier delivery
        // whose submission was not recorded).
        let (attempt, claimed) = match self.latest_attempt(handoff_event_id)? {
            None => (1, false),
            Some(n) if self.exists(&marker(handoff_event_id, n, "ended"))? => (n + 1, false),
            Some(n) => {
                if self.exists(&marker(handoff_event_id, n, "submitted"))? {
                    return Ok(Launched::AlreadySubmitted { attempt: n });
                }
                (n, true)
            }
        };
        if attempt > MAX_ATTEMPTS {
            return Err(HandleError::Config(format!(
                "{request_location}: {MAX_ATTEMPTS} attempts on EMR ended without a manifest; fix the cause, then send it again (see the last launch_failed notice)"
            )));
        }
        let job = Job {
            handoff_event_id: handoff_event_id.to_string(),
            attempt,
            name: job_name(handoff_event_id, attempt),
            request_key,
            request_location: request_location.to_string(),
            work,
        };
        let claim_key = marker(handoff_event_id, attempt, "claim");
        if !claimed {
            let claim = Claim {
                handoff_event_id: job.handoff_event_id.clone(),
                attempt,
                name: job.name.clone(),
                request: job.request_location.clone(),
                backend: self.backend.kind().to_string(),
                claimed_at: rfc3339(now_us()),
            };
            if !self.put_new(&claim_key, &claim)? {
                // Another invocation claimed it between the look and the write: it submits.
                return Ok(Launched::AlreadySubmitted { attempt });
            }
        } else if let Some(found) = self.backend.find(&job)? {
            // Submitted before a crash kept it from being recorded.
            self.put_new(&marker(handoff_event_id, attempt, "submitted"), &found)?;
            return Ok(Launched::AlreadySubmitted { attempt });
        }
        let submission = self.backend.submit(&job)?;
        self.put_new(&marker(handoff_event_id, attempt, "submitted"), &submission)?;
        let launch = LaunchInfo {
            backend: self.backend.kind().to_string(),
            work: job.work.kind().to_string(),
            handoff_event_id: job.handoff_event_id.clone(),
            attempt,
            name: job.name.clone(),
            id: submission.id,
            state: "SUBMITTED".into(),
            request: job.request_location.clone(),
            logs: submission.logs,
        };
        let event = self.event(Outcome::Launched { launch }, &job.work, None);
        self.publish(&event)?;
        Ok(Launched::Submitted(Box::new(event)))
    }

    /// Launches a backfill once: its request is stored at `backfills/<id>.json` (the first
    /// sending's record is kept), then claimed and submitted like a hand-off. The same
    /// selection sent again is the same backfill: nothing more is submitted while it runs or
    /// once it is done, and a new attempt only after the last one ended failed.
    pub fn backfill(&self, request: &BackfillRequest) -> Result<Launched, HandleError> {
        let location = store_request(self.processed.as_ref(), &request.key(), request)?;
        self.launch(&request.id(), &location)
    }

    /// Launches a weekly run once: its request is stored at `weeklies/<id>.json`, then claimed
    /// and submitted like a backfill. The schedule's retried delivery (the same scheduled time)
    /// is the same run.
    pub fn weekly(&self, request: &WeeklyRequest) -> Result<Launched, HandleError> {
        let location = store_request(self.processed.as_ref(), &request.key(), request)?;
        self.launch(&request.id(), &location)
    }

    /// Reports an EMR state change of one of our runs: `launched` when it starts running,
    /// `launch_failed` (once per attempt, which frees the next attempt) when it ends without
    /// succeeding. Other states, and runs not ours, say nothing.
    pub fn state_changed(
        &self,
        change: &StateChange,
    ) -> Result<Option<PipelineEvent>, HandleError> {
        let Some((event_id, attempt)) = parse_job_name(&change.name) else {
            return Ok(None);
        };
        let Some(claim) = self.read_json::<Claim>(&marker(&event_id, attempt, "claim"))? else {
            return Ok(None);
        };
        let work = self.request_of(&claim)?;
        let launch = LaunchInfo {
            backend: claim.backend.clone(),
            work: work.kind().to_string(),
            handoff_event_id: event_id.clone(),
            attempt,
            name: claim.name.clone(),
            id: change.id.clone(),
            state: change.state.clone(),
            request: claim.request.clone(),
            logs: change.logs.clone(),
        };
        let event = if change.state == "RUNNING" {
            self.event(Outcome::Launched { launch }, &work, None)
        } else if change.failed() {
            let ended = Ended {
                state: change.state.clone(),
                message: change.message.clone(),
            };
            if !self.put_new(&marker(&event_id, attempt, "ended"), &ended)? {
                return Ok(None); // The step's and the cluster's change: told once.
            }
            let error = format!(
                "EMR {} {}: {}",
                change.id,
                change.state,
                if change.message.is_empty() {
                    "no reason given"
                } else {
                    &change.message
                }
            );
            self.event(Outcome::LaunchFailed { launch }, &work, Some(error))
        } else {
            return Ok(None);
        };
        self.publish(&event)?;
        Ok(Some(event))
    }

    /// Reports, once each, the latest attempts claimed more than `older_than` ago that have no
    /// manifest and no recorded end: state-change events are best effort, so the schedule looks.
    pub fn sweep(&self, older_than: Duration) -> Result<Vec<PipelineEvent>, HandleError> {
        let keys = self
            .processed
            .list(CLAIMS_PREFIX)
            .map_err(|e| self.storage("listing", CLAIMS_PREFIX, &e))?;
        let mut latest: std::collections::BTreeMap<String, u32> = Default::default();
        for key in &keys {
            if let Some((id, n, "claim")) = parse_marker(key) {
                let e = latest.entry(id).or_insert(n);
                *e = (*e).max(n);
            }
        }
        let bound = now_us() - older_than.as_micros() as i64;
        let mut told = Vec::new();
        for (id, n) in latest {
            let done = |what: &str| keys.contains(&marker(&id, n, what));
            if done("ended") || done("stuck") {
                continue;
            }
            let Some(claim) = self.read_json::<Claim>(&marker(&id, n, "claim"))? else {
                continue;
            };
            if parse_rfc3339_us(&claim.claimed_at).is_none_or(|at| at > bound) {
                continue;
            }
            let work = self.request_of(&claim)?;
            if self.exists(&work.done_key())? {
                continue;
            }
            if !self.put_new(&marker(&id, n, "stuck"), &claim)? {
                continue;
            }
            let submitted: Option<Submission> = self.read_json(&marker(&id, n, "submitted"))?;
            let launch = LaunchInfo {
                backend: claim.backend.clone(),
                work: work.kind().to_string(),
                handoff_event_id: id.clone(),
                attempt: n,
                name: claim.name.clone(),
                id: submitted.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
                state: if submitted.is_some() {
                    "SUBMITTED".into()
                } else {
                    "CLAIMED".into()
                },
                request: claim.request.clone(),
                logs: submitted.and_then(|s| s.logs),
            };
            let error = format!(
                "claimed at {} and no manifest since ({} s bound)",
                claim.claimed_at,
                older_than.as_secs()
            );
            let event = self.event(Outcome::LaunchStuck { launch }, &work, Some(error));
            self.publish(&event)?;
            told.push(event);
        }
        Ok(told)
    }

    fn request_of(&self, claim: &Claim) -> Result<Work, HandleError> {
        let key = self.key_of(&claim.request)?;
        self.read_json(&key)?.ok_or_else(|| {
            HandleError::Config(format!("{}: the request is missing", claim.request))
        })
    }

    fn event(&self, outcome: Outcome, work: &Work, error: Option<String>) -> PipelineEvent {
        let mut event = PipelineEvent::new(outcome, STAGE, work.source());
        event.dataset = work.dataset().map(String::from);
        if let Work::Handoff(request) = work {
            event.profile = Some(request.profile.clone());
            event.manifest = Some(self.processed.locate(&request.manifest_key));
        }
        event.error = error;
        event
    }

    fn publish(&self, event: &PipelineEvent) -> Result<(), HandleError> {
        self.events.publish(event).map_err(|e| {
            HandleError::Retryable(format!(
                "publishing the {} event: {e}",
                event.kind().as_str()
            ))
        })
    }

    /// The highest attempt claimed for a hand-off.
    fn latest_attempt(&self, event_id: &str) -> Result<Option<u32>, HandleError> {
        let prefix = format!("{CLAIMS_PREFIX}{event_id}/");
        let keys = self
            .processed
            .list(&prefix)
            .map_err(|e| self.storage("listing", &prefix, &e))?;
        Ok(keys
            .iter()
            .filter_map(|k| match parse_marker(k) {
                Some((_, n, "claim")) => Some(n),
                _ => None,
            })
            .max())
    }

    fn exists(&self, key: &str) -> Result<bool, HandleError> {
        self.processed
            .exists(key)
            .map_err(|e| self.storage("reading", key, &e))
    }

    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, HandleError> {
        let mut body = match self.processed.open(key) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.storage("reading", key, &e)),
        };
        let mut text = Vec::new();
        body.read_to_end(&mut text)
            .map_err(|e| self.storage("reading", key, &e))?;
        serde_json::from_slice(&text).map(Some).map_err(|e| {
            HandleError::Config(format!(
                "{}: not what the launcher wrote: {e}",
                self.processed.locate(key)
            ))
        })
    }

    /// Writes `value` at `key` only when nothing is there: `false` when something was.
    fn put_new(&self, key: &str, value: &impl Serialize) -> Result<bool, HandleError> {
        let json =
            serde_json::to_vec_pretty(value).map_err(|e| HandleError::Config(e.to_string()))?;
        self.processed
            .put_if(key, &json, Precondition::Absent)
            .map_err(|e| self.storage("writing", key, &e))
    }

    fn storage(&self, doing: &str, key: &str, e: &io::Error) -> HandleError {
        HandleError::storage(format_args!("{doing} {}", self.processed.locate(key)), e)
    }
}

/// Writes `request` at `key` in the processed bucket unless something is there already (the
/// same request sent again keeps the first one's record); its location.
pub fn store_request(
    processed: &dyn ObjectStore,
    key: &str,
    request: &impl Serialize,
) -> Result<String, HandleError> {
    let json =
        serde_json::to_vec_pretty(request).map_err(|e| HandleError::Config(e.to_string()))?;
    processed
        .put_if(key, &json, Precondition::Absent)
        .map_err(|e| HandleError::storage(format_args!("writing {}", processed.locate(key)), &e))?;
    Ok(processed.locate(key))
}

/// `launches/<id>/a<NN>.<what>.json`.
fn marker(event_id: &str, attempt: u32, what: &str) -> String {
    format!("{CLAIMS_PREFIX}{event_id}/a{attempt:02}.{what}.json")
}

/// The hand-off id, attempt and marker kind of a key [`marker`] wrote.
fn parse_marker(key: &str) -> Option<(String, u32, &str)> {
    let rest = key.strip_prefix(CLAIMS_PREFIX)?;
    let (id, file) = rest.split_once('/')?;
    let file = file.strip_suffix(".json")?.strip_prefix('a')?;
    let (n, what) = file.split_once('.')?;
    Some((id.to_string(), n.parse().ok()?, what))
}

/// Runs each job on this machine, at once and to the end: `bondlake run` and `demo`, where
/// nothing is too big. `run` is the step's own code (csv-processor's engine on the request, or
/// the backfill's objects in turn).
pub struct LocalBackend {
    run: Box<RunJob>,
}

/// What the local backend calls for each job: the step's own code.
type RunJob = dyn Fn(&Job) -> Result<(), HandleError> + Send + Sync;

impl LocalBackend {
    /// A backend that calls `run` for each job.
    pub fn new(run: impl Fn(&Job) -> Result<(), HandleError> + Send + Sync + 'static) -> Self {
        LocalBackend { run: Box::new(run) }
    }
}

impl Backend for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn submit(&self, job: &Job) -> Result<Submission, HandleError> {
        (self.run)(job)?;
        Ok(Submission {
            id: format!("local/{}", job.name),
            logs: None,
        })
    }

    fn find(&self, _job: &Job) -> Result<Option<Submission>, HandleError> {
        // A local run finishes inside `submit`: a claim left without a submission is a run that
        // died, to be run again.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::JsonLinesSink;
    use crate::manifest::SourceRef;
    use crate::store::LocalStore;
    use std::sync::Mutex;

    #[test]
    fn names_map_back_to_their_hand_off_and_attempt() {
        let name = job_name("5d0c0f1a9b7e3c21d4e8a6f0", 2);
        assert_eq!(name, "bondlake-5d0c0f1a9b7e3c21d4e8a6f0-a2");
        assert_eq!(
            parse_job_name(&name),
            Some(("5d0c0f1a9b7e3c21d4e8a6f0".to_string(), 2))
        );
        for other in [
            "my-cluster",
            "bondlake--a1",
            "bondlake-xyz-a1",
            "bondlake-ab-a0",
            "bondlake-ab",
        ] {
            assert_eq!(parse_job_name(other), None, "{other}");
        }
        assert_eq!(
            parse_marker("launches/ab12/a03.ended.json"),
            Some(("ab12".to_string(), 3, "ended"))
        );
    }

    /// Counts submissions; fails the first `fail_first` of them.
    struct Counting {
        submitted: Mutex<Vec<String>>,
        fail_first: Mutex<u32>,
    }

    impl Backend for Counting {
        fn kind(&self) -> &'static str {
            "transient_cluster"
        }
        fn submit(&self, job: &Job) -> Result<Submission, HandleError> {
            let mut fail = self.fail_first.lock().expect("lock");
            if *fail > 0 {
                *fail -= 1;
                return Err(HandleError::Retryable("ThrottlingException".into()));
            }
            self.submitted.lock().expect("lock").push(job.name.clone());
            Ok(Submission {
                id: format!("j-{}", job.attempt),
                logs: Some("s3://logs/j-1/".into()),
            })
        }
        fn find(&self, job: &Job) -> Result<Option<Submission>, HandleError> {
            let found = self.submitted.lock().expect("lock").contains(&job.name);
            Ok(found.then(|| Submission {
                id: format!("j-{}", job.attempt),
                logs: None,
            }))
        }
    }

    fn lake() -> (tempfile::TempDir, Arc<LocalStore>, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LocalStore::new(dir.path()));
        let request = HandoffRequest {
            handoff_version: 1,
            dataset: "investor_holdings".into(),
            profile: "standard".into(),
            contract_version: "1.1.0".into(),
            source: SourceRef {
                bucket: "raw".into(),
                key: "holdings/big.csv.gz".into(),
                etag: "e1".into(),
                bytes: 5 << 30,
                ..Default::default()
            },
            reason: "size".into(),
            detail: "big".into(),
            manifest_key: "manifests/investor_holdings/big.json".into(),
            requested_at: rfc3339(now_us()),
        };
        let key = "handoffs/investor_holdings/big.json";
        store
            .put_if(
                key,
                &serde_json::to_vec(&request).expect("json"),
                Precondition::Absent,
            )
            .expect("request written");
        let location = store.locate(key);
        (dir, store, location)
    }

    fn launcher(
        store: &Arc<LocalStore>,
        backend: Arc<Counting>,
        dir: &std::path::Path,
    ) -> Launcher {
        Launcher::new(
            store.clone(),
            Arc::new(JsonLinesSink::new(dir.join("events.jsonl"))),
            backend,
        )
    }

    fn counting(fail_first: u32) -> Arc<Counting> {
        Arc::new(Counting {
            submitted: Mutex::new(Vec::new()),
            fail_first: Mutex::new(fail_first),
        })
    }

    const ID: &str = "5d0c0f1a9b7e3c21d4e8a6f0";

    #[test]
    fn a_redelivered_hand_off_submits_nothing() {
        let (dir, store, request) = lake();
        let backend = counting(0);
        let l = launcher(&store, backend.clone(), dir.path());
        let first = l.launch(ID, &request).expect("launched");
        let Launched::Submitted(event) = first else {
            panic!("{first:?}")
        };
        let launch = event.launch().expect("launch");
        assert_eq!((launch.attempt, launch.state.as_str()), (1, "SUBMITTED"));
        assert_eq!(launch.name, format!("bondlake-{ID}-a1"));
        assert_eq!(
            l.launch(ID, &request).expect("again"),
            Launched::AlreadySubmitted { attempt: 1 }
        );
        assert_eq!(backend.submitted.lock().expect("lock").len(), 1);
    }

    #[test]
    fn a_failed_attempt_frees_one_more_and_only_one() {
        let (dir, store, request) = lake();
        let backend = counting(0);
        let l = launcher(&store, backend.clone(), dir.path());
        l.launch(ID, &request).expect("first");
        // Running: told; still no new attempt.
        let running = StateChange {
            name: job_name(ID, 1),
            id: "j-1".into(),
            state: "RUNNING".into(),
            ..Default::default()
        };
        let told = l.state_changed(&running).expect("running").expect("told");
        assert_eq!(told.kind().as_str(), "launched");
        assert!(matches!(
            l.launch(ID, &request),
            Ok(Launched::AlreadySubmitted { attempt: 1 })
        ));
        // The step fails, then its cluster ends with errors: one notice.
        let failed = StateChange {
            state: "FAILED".into(),
            message: "Step failed with exitCode 1".into(),
            logs: Some("s3://logs/j-1/steps/s-1/".into()),
            ..running.clone()
        };
        let told = l.state_changed(&failed).expect("failed").expect("told");
        assert_eq!(told.kind().as_str(), "launch_failed");
        assert!(told.error.as_deref().unwrap_or("").contains("exitCode 1"));
        let cluster = StateChange {
            state: "TERMINATED_WITH_ERRORS".into(),
            ..failed.clone()
        };
        assert_eq!(l.state_changed(&cluster).expect("cluster"), None);
        // The hand-off sent again: attempt 2, once, however often it is delivered.
        let Launched::Submitted(second) = l.launch(ID, &request).expect("second") else {
            panic!("not submitted")
        };
        assert_eq!(second.launch().map(|l| l.attempt), Some(2));
        assert!(matches!(
            l.launch(ID, &request),
            Ok(Launched::AlreadySubmitted { attempt: 2 })
        ));
        assert_eq!(
            *backend.submitted.lock().expect("lock"),
            [job_name(ID, 1), job_name(ID, 2)]
        );
    }

    #[test]
    fn a_retried_submission_submits_once_and_a_done_hand_off_none() {
        let (dir, store, request) = lake();
        let backend = counting(1);
        let l = launcher(&store, backend.clone(), dir.path());
        let e = l.launch(ID, &request).expect_err("throttled");
        assert!(e.is_retryable(), "{e}");
        assert!(matches!(l.launch(ID, &request), Ok(Launched::Submitted(_))));
        assert_eq!(backend.submitted.lock().expect("lock").len(), 1);
        // A claim whose submission went unrecorded finds the run by its name.
        store
            .delete(&marker(ID, 1, "submitted"))
            .expect("forget the record");
        assert!(matches!(
            l.launch(ID, &request),
            Ok(Launched::AlreadySubmitted { attempt: 1 })
        ));
        assert_eq!(backend.submitted.lock().expect("lock").len(), 1);
        // Once the manifest exists, nothing is launched again.
        store
            .put_if(
                "manifests/investor_holdings/big.json",
                b"{}",
                Precondition::Absent,
            )
            .expect("manifest");
        assert_eq!(l.launch(ID, &request).expect("done"), Launched::AlreadyDone);
    }

    #[test]
    fn the_sweep_reports_an_old_claim_without_a_manifest_once() {
        let (dir, store, request) = lake();
        let l = launcher(&store, counting(0), dir.path());
        l.launch(ID, &request).expect("launched");
        assert!(
            l.sweep(Duration::from_secs(3600))
                .expect("young")
                .is_empty()
        );
        let stuck = l.sweep(Duration::ZERO).expect("sweep");
        assert_eq!(stuck.len(), 1);
        assert_eq!(stuck[0].kind().as_str(), "launch_stuck");
        assert!(
            l.sweep(Duration::ZERO).expect("again").is_empty(),
            "told once"
        );
    }

    #[test]
    fn a_request_outside_the_processed_bucket_or_missing_is_refused() {
        let (dir, store, _) = lake();
        let l = launcher(&store, counting(0), dir.path());
        let e = l
            .launch(ID, "s3://elsewhere/handoffs/x.json")
            .expect_err("outside");
        assert!(!e.is_retryable(), "{e}");
        let missing = store.locate("handoffs/none.json");
        let e = l.launch(ID, &missing).expect_err("missing");
        assert!(e.to_string().contains("missing"), "{e}");
        assert!(l.launch("not-hex!", &missing).is_err());
    }
}
