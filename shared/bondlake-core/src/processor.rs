//! The csv-processor's work on one announced object, with no Lambda types: the Lambda and
//! `bondlake run` both call [`Processor::handle`], over S3 or over local folders.
//!
//! For each object: route the key, read it (pinned to the ETag the event named), decide whether
//! it can finish here or must be handed off to EMR, clean it with [`pipeline::process`], and
//! publish the outcome as a [`PipelineEvent`]. What to retry is decided in one place:
//! [`crate::failure::HandleError::is_retryable`].

use crate::contract::{self, Contract};
use crate::error::Error;
use crate::events::{EventSink, HandoffInfo, Outcome, PipelineEvent};
use crate::failure::HandleError;
use crate::manifest::{SourceRef, now_us, rfc3339};
use crate::output::OutputNames;
use crate::pipeline::{self, Options};
use crate::route::{Route, Routes};
use crate::store::{ObjectStore, Superseded};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{self, Read as _, Write as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The name this stage publishes under.
pub const STAGE: &str = "csv-processor";

/// Version of the hand-off request's layout.
pub const HANDOFF_VERSION: u32 = 1;

/// An object the raw bucket announced (an S3 `ObjectCreated` record, or a new local file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    /// Bucket.
    pub bucket: String,
    /// Key, decoded (S3 events carry it URL-encoded: see [`decode_event_key`]).
    pub key: String,
    /// The ETag the event names; the object is read only at this version.
    pub etag: Option<String>,
    /// When the object was written (the event's `eventTime`; a local file's modification time).
    pub event_time: Option<String>,
    /// The event's `sequencer` (orders two writes of one key).
    pub sequencer: Option<String>,
}

/// Decodes a key as S3 event notifications carry it: URL-encoded, with `+` for a space.
///
/// ```
/// use bondlake_core::processor::decode_event_key;
/// assert_eq!(decode_event_key("holdings/acme/Q4+report%C3%A9.csv.gz").as_deref(), Ok("holdings/acme/Q4 reporté.csv.gz"));
/// ```
pub fn decode_event_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("object key `{raw}` does not decode to UTF-8"))
}

/// The processor's settings; [`Settings::from_vars`] reads them from the environment (the
/// README's configuration table lists each).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bucket events must come from.
    pub raw_bucket: String,
    /// Where outputs go.
    pub processed_bucket: String,
    /// The `pipeline-events` topic (Lambda only).
    pub events_topic_arn: Option<String>,
    /// Key → dataset and profile.
    pub routes: Routes,
    /// Contracts folder; the built-in contracts when `None`.
    pub contracts_dir: Option<PathBuf>,
    /// Objects larger than this (compressed bytes) are handed off.
    pub handoff_max_bytes: u64,
    /// Compressed bytes a second assumed until a run here has measured it.
    pub assumed_bytes_per_second: u64,
    /// Time kept back from the deadline for removing outputs, handing off and publishing (at most
    /// a quarter of the invocation's time).
    pub deadline_margin: Duration,
    /// How many times a message may be deferred to a fresh invocation; past it the object is
    /// processed or handed off, so deferrals never carry a message to the dead-letter queue.
    pub max_deferrals: u32,
    /// S3 multipart part size.
    pub upload_part_bytes: usize,
    /// S3 parts uploading at once per object.
    pub upload_parts_in_flight: usize,
    /// The engine's options (threads, batch size, limits, part size).
    pub options: Options,
}

impl Settings {
    /// Settings with defaults for everything but the buckets.
    pub fn new(raw_bucket: &str, processed_bucket: &str) -> Settings {
        Settings {
            raw_bucket: raw_bucket.to_string(),
            processed_bucket: processed_bucket.to_string(),
            events_topic_arn: None,
            routes: Routes::builtin(),
            contracts_dir: None,
            handoff_max_bytes: 4 << 30,
            assumed_bytes_per_second: 20 << 20,
            deadline_margin: Duration::from_secs(20),
            max_deferrals: 3,
            upload_part_bytes: 8 << 20,
            upload_parts_in_flight: 2,
            options: Options::default(),
        }
    }

    /// Reads the settings from variables (`std::env::var` in the Lambda); each error names the
    /// variable and its value.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let vars = crate::vars::Vars::new(var);
        let number = |name: &str, default: u64| vars.number(name, default);
        let mut s = Settings::new(
            &vars.required("RAW_BUCKET")?,
            &vars.required("PROCESSED_BUCKET")?,
        );
        s.events_topic_arn = vars.get("PIPELINE_EVENTS_TOPIC_ARN");
        if let Some(text) = vars.get("ROUTES") {
            s.routes = Routes::from_toml(&text, "ROUTES").map_err(|e| e.to_string())?;
        }
        s.contracts_dir = vars.get("CONTRACTS_DIR").map(PathBuf::from);
        s.handoff_max_bytes = number("HANDOFF_MAX_MB", s.handoff_max_bytes >> 20)? << 20;
        s.assumed_bytes_per_second =
            number("ASSUMED_MB_PER_SECOND", s.assumed_bytes_per_second >> 20)?.max(1) << 20;
        s.deadline_margin = Duration::from_secs(number(
            "DEADLINE_MARGIN_SECONDS",
            s.deadline_margin.as_secs(),
        )?);
        s.max_deferrals = number("MAX_DEFERRALS", u64::from(s.max_deferrals))?.min(100) as u32;
        s.upload_part_bytes = (number("UPLOAD_PART_MB", 8)?.clamp(5, 5 << 10) as usize) << 20;
        s.upload_parts_in_flight = number("UPLOAD_PARTS_IN_FLIGHT", 2)?.max(1) as usize;
        let o = &mut s.options;
        let threads = number("THREADS", 0)? as usize;
        if threads > 0 {
            o.threads = threads;
        }
        o.batch_rows = number("BATCH_ROWS", o.batch_rows as u64)?.max(1) as usize;
        o.output.part_bytes = number("PART_MB", o.output.part_bytes >> 20)?.max(1) << 20;
        o.limits.max_field_bytes =
            number("MAX_FIELD_BYTES", o.limits.max_field_bytes as u64)? as usize;
        o.limits.max_decompressed_bytes =
            number("MAX_DECOMPRESSED_MB", o.limits.max_decompressed_bytes >> 20)? << 20;
        o.limits.max_inflate_ratio = number("MAX_INFLATE_RATIO", o.limits.max_inflate_ratio)?;
        Ok(s)
    }
}

/// What the EMR launcher needs to process a handed-off object with the same contract, and where
/// its manifest must go (the key this function would have written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRequest {
    /// [`HANDOFF_VERSION`].
    pub handoff_version: u32,
    /// Dataset.
    pub dataset: String,
    /// Vendor profile.
    pub profile: String,
    /// Contract version.
    pub contract_version: String,
    /// The input.
    pub source: SourceRef,
    /// `size`, `throughput` or `deadline`.
    pub reason: String,
    /// The numbers behind the decision.
    pub detail: String,
    /// Where the manifest must be written (last).
    pub manifest_key: String,
    /// When, RFC 3339 UTC.
    pub requested_at: String,
}

/// The time one object may take.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    /// When the invocation ends (the Lambda context's deadline).
    pub deadline: Option<Instant>,
    /// The time a fresh invocation has (what this one had when it began). With it, an object
    /// that fits in a fresh invocation but not in what is left is [`HandleError::Deferred`]
    /// instead of handed off: a slow first file in a batch does not send the rest to EMR.
    pub whole: Option<Duration>,
}

/// Compressed bytes per second, assumed at first, then measured on this instance's own runs.
#[derive(Debug)]
struct Throughput {
    bytes_per_second: f64,
    measured: bool,
}

impl Throughput {
    /// Files smaller than this say more about start-up costs than about speed.
    const MIN_SAMPLE_BYTES: u64 = 8 << 20;

    fn observe(&mut self, bytes: u64, elapsed: Duration) {
        if bytes < Self::MIN_SAMPLE_BYTES || elapsed.is_zero() {
            return;
        }
        let rate = bytes as f64 / elapsed.as_secs_f64();
        self.bytes_per_second = if self.measured {
            (self.bytes_per_second + rate) / 2.0
        } else {
            rate
        };
        self.measured = true;
    }
}

/// Handles announced objects: one per call, with the stores and topic it was built with.
pub struct Processor {
    settings: Settings,
    raw: Arc<dyn ObjectStore>,
    processed: Arc<dyn ObjectStore>,
    events: Arc<dyn EventSink>,
    contracts: HashMap<String, Contract>,
    throughput: Mutex<Throughput>,
}

impl Processor {
    /// Loads every contract the routes name and checks each route's profile, so a bad setting
    /// fails at start-up rather than on the first file.
    pub fn new(
        settings: Settings,
        raw: Arc<dyn ObjectStore>,
        processed: Arc<dyn ObjectStore>,
        events: Arc<dyn EventSink>,
    ) -> Result<Processor, HandleError> {
        let mut contracts = HashMap::new();
        for (dataset, profile) in settings.routes.targets() {
            if !contracts.contains_key(dataset) {
                let c = contract::load_dataset(dataset, settings.contracts_dir.as_deref())
                    .map_err(|e| HandleError::Config(format!("route to `{dataset}`: {e}")))?;
                contracts.insert(dataset.to_string(), c);
            }
            if let Some(c) = contracts.get(dataset) {
                c.candidates(Some(profile)).map_err(|e| {
                    HandleError::Config(format!("route to `{dataset}`, profile `{profile}`: {e}"))
                })?;
            }
        }
        let throughput = Mutex::new(Throughput {
            bytes_per_second: settings.assumed_bytes_per_second as f64,
            measured: false,
        });
        Ok(Processor {
            settings,
            raw,
            processed,
            events,
            contracts,
            throughput,
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A processor over the same stores and topic that hands nothing off: what runs where
    /// there is no deadline and nothing bigger to hand to (a backfill, the EMR step).
    pub fn without_handoffs(&self) -> Result<Processor, HandleError> {
        let mut settings = self.settings.clone();
        settings.handoff_max_bytes = u64::MAX;
        Processor::new(
            settings,
            self.raw.clone(),
            self.processed.clone(),
            self.events.clone(),
        )
    }

    /// The raw bucket's store.
    pub fn raw(&self) -> &dyn ObjectStore {
        self.raw.as_ref()
    }

    /// The processed bucket's store.
    pub fn processed(&self) -> &dyn ObjectStore {
        self.processed.as_ref()
    }

    /// Whether this version of `key` already has a manifest or a hand-off request (the local
    /// runner skips those; in AWS a redelivery simply rewrites the same objects).
    pub fn is_done(&self, key: &str, etag: &str) -> io::Result<bool> {
        let Some(route) = self.settings.routes.route(key) else {
            return Ok(false);
        };
        let Some(contract) = self.contracts.get(&route.dataset) else {
            return Ok(false);
        };
        let object = ObjectCreated {
            bucket: self.settings.raw_bucket.clone(),
            key: key.to_string(),
            etag: Some(etag.to_string()),
            event_time: None,
            sequencer: None,
        };
        let names = OutputNames::for_source(contract, &self.source(&object, etag, 0));
        Ok(self.processed.exists(&names.manifest_key())?
            || self.processed.exists(&names.handoff_key())?)
    }

    fn source(&self, object: &ObjectCreated, etag: &str, bytes: u64) -> SourceRef {
        SourceRef {
            bucket: self.settings.raw_bucket.clone(),
            key: object.key.clone(),
            etag: etag.to_string(),
            bytes,
            event_time: object.event_time.clone(),
            sequencer: object.sequencer.clone(),
        }
    }

    /// Handles one object. `Ok(None)` means nothing was to be done (a folder marker, or an object
    /// replaced since the event, whose own event will come); otherwise the published event.
    /// `deadline` is when the invocation ends (the Lambda context's deadline).
    pub fn handle(
        &self,
        object: &ObjectCreated,
        deadline: Option<Instant>,
    ) -> Result<Option<PipelineEvent>, HandleError> {
        self.handle_within(
            object,
            Budget {
                deadline,
                whole: None,
            },
        )
    }

    /// [`Processor::handle`] within a [`Budget`]: one object of a batch, which may be deferred
    /// to a fresh invocation when the time left is too short for it.
    pub fn handle_within(
        &self,
        object: &ObjectCreated,
        budget: Budget,
    ) -> Result<Option<PipelineEvent>, HandleError> {
        let deadline = budget.deadline;
        let started = Instant::now();
        if object.bucket != self.settings.raw_bucket {
            return Err(HandleError::InvalidInput(format!(
                "event for bucket `{}`, but this function reads `{}`",
                object.bucket, self.settings.raw_bucket
            )));
        }
        let key = object.key.as_str();
        if key.ends_with('/') {
            tracing::info!(key, "folder marker; nothing to do");
            return Ok(None);
        }
        let where_ = self.raw.locate(key);
        let Some(route) = self.settings.routes.route(key) else {
            let error = format!("{where_}: no route for this key (see the routing table, ROUTES)");
            return self.fail_unread(object, None, error, started);
        };
        let contract = self.contracts.get(&route.dataset).ok_or_else(|| {
            HandleError::Config(format!("no contract loaded for `{}`", route.dataset))
        })?;
        let body = match self.raw.get(key, object.etag.as_deref()) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let error = format!(
                    "{where_}: the object no longer exists (deleted before it was processed)"
                );
                return self.fail_unread(object, Some(&route), error, started);
            }
            Err(e) if Superseded::is(&e) => {
                tracing::info!(key, error = %e, "superseded; skipped");
                return Ok(None);
            }
            Err(e) => return Err(HandleError::storage(&where_, &e)),
        };
        let source = self.source(object, &body.etag, body.size);
        // A margin larger than the invocation itself would hand off everything: keep at most a
        // quarter of the time there is.
        let margin = deadline.map_or(self.settings.deadline_margin, |d| {
            (self.settings.deadline_margin).min(d.saturating_duration_since(started) / 4)
        });
        if let Some((reason, detail)) = self.handoff_reason(body.size, deadline, margin) {
            drop(body);
            if reason == "throughput" && self.fits_a_fresh_invocation(source.bytes, budget) {
                return Err(HandleError::Deferred(format!("{where_}: {detail}")));
            }
            return self.hand_off(&route, contract, source, reason, detail, started);
        }
        // Whether this object began with less than a fresh invocation's time: only then can a
        // fresh one do better when the deadline comes mid-file.
        let began_short = match (deadline, budget.whole) {
            (Some(d), Some(whole)) => d.saturating_duration_since(started) < whole.mul_f64(0.9),
            _ => false,
        };
        let opts = Options {
            deadline: deadline.and_then(|d| d.checked_sub(margin)),
            ..self.settings.options.clone()
        };
        let run = pipeline::process(
            contract,
            Some(&route.profile),
            source.clone(),
            body.body,
            self.processed.as_ref(),
            &opts,
        );
        match run {
            Ok(outcome) => {
                if let Ok(mut t) = self.throughput.lock() {
                    t.observe(source.bytes, started.elapsed());
                }
                let mut event = PipelineEvent::from_manifest(
                    STAGE,
                    &outcome.manifest,
                    &outcome.manifest_key,
                    self.processed.as_ref(),
                );
                event.output_prefix = Some(
                    self.processed
                        .locate(&OutputNames::for_source(contract, &source).dataset_prefix()),
                );
                self.publish(event, started)
            }
            Err(Error::DeadlineExceeded) => {
                let detail = format!(
                    "stopped after {:.1} s with {:.1} s kept back for hand-off",
                    started.elapsed().as_secs_f64(),
                    margin.as_secs_f64()
                );
                if began_short {
                    // Its outputs are removed; a fresh invocation has its whole time for it.
                    return Err(HandleError::Deferred(format!(
                        "{where_}: {detail}, having started late in its batch"
                    )));
                }
                self.hand_off(&route, contract, source, "deadline", detail, started)
            }
            Err(e) if e.is_retryable() => Err(HandleError::Retryable(format!("{where_}: {e}"))),
            Err(e) => Err(HandleError::Config(format!("{where_}: {e}"))),
        }
    }

    /// Whether the measured (or assumed) speed says `bytes` finish within a fresh invocation,
    /// less its margin.
    fn fits_a_fresh_invocation(&self, bytes: u64, budget: Budget) -> bool {
        let Some(whole) = budget.whole else {
            return false;
        };
        let margin = self.settings.deadline_margin.min(whole / 4);
        let rate = self
            .throughput
            .lock()
            .map(|t| t.bytes_per_second)
            .unwrap_or(self.settings.assumed_bytes_per_second as f64);
        bytes as f64 / rate.max(1.0) <= whole.saturating_sub(margin).as_secs_f64()
    }

    /// `size` when the object is over the size limit; `throughput` when the measured (or
    /// assumed) speed says it cannot finish before the deadline.
    fn handoff_reason(
        &self,
        bytes: u64,
        deadline: Option<Instant>,
        margin: Duration,
    ) -> Option<(&'static str, String)> {
        let max = self.settings.handoff_max_bytes;
        if bytes > max {
            return Some((
                "size",
                format!("{bytes} bytes is over the limit of {max} bytes (HANDOFF_MAX_MB)"),
            ));
        }
        let deadline = deadline?;
        let left = deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(margin);
        let (rate, measured) = self
            .throughput
            .lock()
            .map(|t| (t.bytes_per_second, t.measured))
            .unwrap_or((self.settings.assumed_bytes_per_second as f64, false));
        let needed = bytes as f64 / rate.max(1.0);
        (needed > left.as_secs_f64()).then(|| {
            (
                "throughput",
                format!(
                    "{bytes} bytes at {:.1} MB/s ({}) needs about {needed:.0} s; {:.0} s left before the deadline margin",
                    rate / (1 << 20) as f64,
                    if measured { "measured" } else { "assumed" },
                    left.as_secs_f64()
                ),
            )
        })
    }

    /// Writes the hand-off request next to where the manifest would go, and publishes it.
    fn hand_off(
        &self,
        route: &Route,
        contract: &Contract,
        source: SourceRef,
        reason: &str,
        detail: String,
        started: Instant,
    ) -> Result<Option<PipelineEvent>, HandleError> {
        let names = OutputNames::for_source(contract, &source);
        let request = HandoffRequest {
            handoff_version: HANDOFF_VERSION,
            dataset: contract.dataset.clone(),
            profile: route.profile.clone(),
            contract_version: contract.version.clone(),
            source: source.clone(),
            reason: reason.to_string(),
            detail: detail.clone(),
            manifest_key: names.manifest_key(),
            requested_at: rfc3339(now_us()),
        };
        let key = names.handoff_key();
        let storage = |e: io::Error| {
            HandleError::storage(format_args!("writing {}", self.processed.locate(&key)), &e)
        };
        let json =
            serde_json::to_vec_pretty(&request).map_err(|e| HandleError::Config(e.to_string()))?;
        let mut w = self.processed.create(&key).map_err(storage)?;
        w.write_all(&json).map_err(storage)?;
        w.commit().map_err(storage)?;
        tracing::info!(key = %source.key, reason, detail = %detail, "handed off");
        let handoff = HandoffInfo {
            reason: reason.to_string(),
            detail,
            request: self.processed.locate(&key),
        };
        let mut event = PipelineEvent::new(Outcome::Handoff { handoff }, STAGE, source);
        event.dataset = Some(contract.dataset.clone());
        event.profile = Some(route.profile.clone());
        event.output_prefix = Some(self.processed.locate(&names.dataset_prefix()));
        self.publish(event, started)
    }

    /// Processes a handed-off object to the end, with no deadline: the EMR step's work (and the
    /// local backend's). The outputs, manifest and event are the ones a Lambda run of the same
    /// object would have written: the same engine, contract, profile and keys. `Ok(None)` when
    /// the object was replaced since the hand-off (its own event brings the new version).
    pub fn run_handoff(
        &self,
        request: &HandoffRequest,
    ) -> Result<Option<PipelineEvent>, HandleError> {
        let started = Instant::now();
        if request.handoff_version != HANDOFF_VERSION {
            return Err(HandleError::Config(format!(
                "hand-off request version {} (this build reads {HANDOFF_VERSION})",
                request.handoff_version
            )));
        }
        let loaded;
        let contract = match self.contracts.get(&request.dataset) {
            Some(c) => c,
            None => {
                loaded = contract::load_dataset(
                    &request.dataset,
                    self.settings.contracts_dir.as_deref(),
                )
                .map_err(|e| HandleError::Config(e.to_string()))?;
                &loaded
            }
        };
        if contract.version != request.contract_version {
            return Err(HandleError::Config(format!(
                "{}: handed off under contract {} {}, but this build has {}: run the step with the contracts the Lambda had (CONTRACTS_DIR), or replay the object",
                request.source.key, request.dataset, request.contract_version, contract.version
            )));
        }
        let source = request.source.clone();
        let names = OutputNames::for_source(contract, &source);
        if names.manifest_key() != request.manifest_key {
            return Err(HandleError::Config(format!(
                "{}: the request's manifest key {} is not this build's {}",
                source.key,
                request.manifest_key,
                names.manifest_key()
            )));
        }
        let where_ = self.raw.locate(&source.key);
        let body = match self.raw.get(&source.key, Some(&source.etag)) {
            Ok(b) => b,
            Err(e) if Superseded::is(&e) => {
                tracing::info!(key = %source.key, "replaced since the hand-off; skipped");
                return Ok(None);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(HandleError::Config(format!(
                    "{where_}: the object no longer exists (deleted after its hand-off)"
                )));
            }
            Err(e) => return Err(HandleError::storage(&where_, &e)),
        };
        let opts = Options {
            deadline: None,
            ..self.settings.options.clone()
        };
        let outcome = pipeline::process(
            contract,
            Some(&request.profile),
            source,
            body.body,
            self.processed.as_ref(),
            &opts,
        )
        .map_err(|e| {
            if e.is_retryable() {
                HandleError::Retryable(format!("{where_}: {e}"))
            } else {
                HandleError::Config(format!("{where_}: {e}"))
            }
        })?;
        let mut event = PipelineEvent::from_manifest(
            STAGE,
            &outcome.manifest,
            &outcome.manifest_key,
            self.processed.as_ref(),
        );
        event.output_prefix = Some(self.processed.locate(&names.dataset_prefix()));
        self.publish(event, started)
    }

    /// Publishes `failed` for an object that was never read, so it has no manifest.
    fn fail_unread(
        &self,
        object: &ObjectCreated,
        route: Option<&Route>,
        error: String,
        started: Instant,
    ) -> Result<Option<PipelineEvent>, HandleError> {
        let source = self.source(object, object.etag.as_deref().unwrap_or(""), 0);
        let mut event = PipelineEvent::new(Outcome::Failed, STAGE, source);
        event.dataset = route.map(|r| r.dataset.clone());
        event.profile = route.map(|r| r.profile.clone());
        event.error = Some(error);
        self.publish(event, started)
    }

    fn publish(
        &self,
        mut event: PipelineEvent,
        started: Instant,
    ) -> Result<Option<PipelineEvent>, HandleError> {
        event.duration_ms = started.elapsed().as_millis() as u64;
        self.events.publish(&event).map_err(|e| {
            HandleError::Retryable(format!(
                "publishing the {} event for {}: {e}",
                event.kind().as_str(),
                event.source.key
            ))
        })?;
        Ok(Some(event))
    }
}

/// Reads the hand-off request at `key` in the processed bucket `processed`.
pub fn read_handoff(processed: &dyn ObjectStore, key: &str) -> Result<HandoffRequest, HandleError> {
    let location = processed.locate(key);
    let mut text = Vec::new();
    processed
        .open(key)
        .and_then(|mut r| r.read_to_end(&mut text))
        .map_err(|e| HandleError::storage(format_args!("reading {location}"), &e))?;
    serde_json::from_slice(&text)
        .map_err(|e| HandleError::Config(format!("{location}: not a hand-off request: {e}")))
}
