//! The local pipeline: `bondlake run` and `bondlake demo`. Folders stand in for the buckets, and
//! each function's own handler is called with the events `template.yaml` wires (see
//! [`crate::topology`]): csv-processor for each new raw file, emr-launcher for each hand-off (its
//! local backend runs the step here, to the end), warehouse-loader for each manifest, the
//! notifier for what the stages published.
//!
//! - `ROOT/raw/` is the raw bucket (routed by the same table as the template's S3 events);
//! - `ROOT/` holds what the processed bucket would: `processed/`, `quarantine/`, `manifests/`,
//!   `handoffs/`;
//! - `ROOT/events/pipeline-events.jsonl` stands in for the `pipeline-events` topic.

mod demo;
mod report;

pub use demo::demo;
use report::{Table, print_headlines};

use crate::notify::Notifier;
use crate::topology;
use crate::warehouse::AnyWarehouse;
use bondlake_core::backfill;
use bondlake_core::events::{EventKind, EventSink, JsonLinesSink, PipelineEvent};
use bondlake_core::failure::HandleError;
use bondlake_core::launch::{Launcher, LocalBackend, Work};
use bondlake_core::processor::{Budget, ObjectCreated, Processor, Settings};
use bondlake_core::route::Routes;
use bondlake_core::store::{LocalStore, ObjectStore, file_etag};
use bondlake_core::warehouse::Loader;
use bondlake_core::weekly;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The processed bucket's name in local events.
pub const PROCESSED_BUCKET: &str = "processed";

/// The local `pipeline-events` topic: each event appended to ROOT/events/pipeline-events.jsonl,
/// and kept until the runner delivers it onward, as SNS delivers to its subscribers.
pub struct LocalTopic {
    file: JsonLinesSink,
    published: Mutex<Vec<PipelineEvent>>,
}

impl LocalTopic {
    fn new(root: &Path) -> Self {
        LocalTopic {
            file: JsonLinesSink::new(events_path(root)),
            published: Mutex::new(Vec::new()),
        }
    }

    /// What was published since the last call.
    fn take(&self) -> Vec<PipelineEvent> {
        self.published
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }
}

impl EventSink for LocalTopic {
    fn publish(&self, event: &PipelineEvent) -> std::io::Result<()> {
        self.file.publish(event)?;
        self.published
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .push(event.clone());
        Ok(())
    }
}

/// The raw bucket's name in local events and manifests.
pub const RAW_BUCKET: &str = "raw";

#[derive(clap::Args)]
pub struct RunArgs {
    /// The local lake's root folder (raw files go in ROOT/raw).
    #[arg(long, default_value = "bondlake-lake")]
    root: PathBuf,
    /// Process what is in ROOT/raw now and exit, instead of watching for new files.
    #[arg(long)]
    once: bool,
    /// How often to look for new files when watching.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
    /// Routing table (TOML, the format of contracts/routes.toml); default: the built-in one.
    #[arg(long)]
    routes: Option<PathBuf>,
    /// Folder of contract files (default: the contracts built into this binary).
    #[arg(long)]
    contracts: Option<PathBuf>,
    /// Hand off (instead of processing) files larger than this many MiB, as the Lambda does.
    #[arg(long)]
    handoff_max_mb: Option<u64>,
    /// The warehouse each processed file is loaded into (default: the embedded DuckDB at
    /// duckdb:///ROOT/warehouse.duckdb; postgres://user@host:port/db also works).
    #[arg(long)]
    warehouse: Option<String>,
    /// Clean only; load nothing.
    #[arg(long, conflicts_with = "warehouse")]
    no_warehouse: bool,
    /// Also post notifications to this Slack incoming webhook (they are always printed).
    #[arg(long, env = "BONDLAKE_SLACK_WEBHOOK", hide_env_values = true)]
    slack_webhook: Option<String>,
}

/// The local lake's stores and processor, and the warehouse-loader's part.
pub struct Lake {
    root: PathBuf,
    raw: LocalStore,
    processed: LocalStore,
    processor: Arc<Processor>,
    /// emr-launcher's state, with the local backend: the step's code, run here.
    launcher: emr_launcher::handler::State,
    /// The warehouse's URL and the contracts' folder, when the lake loads into one.
    warehouse: Option<(String, Option<PathBuf>)>,
    /// The warehouse-loader's state, open only while a poll loads files: DuckDB lets one process
    /// hold its file, and between polls `bondlake sql` may want it.
    loader: Option<warehouse_loader::handler::State<AnyWarehouse>>,
    topic: Arc<LocalTopic>,
}

/// The embedded warehouse's URL for a lake.
pub fn default_warehouse(root: &Path) -> String {
    format!("duckdb://{}", root.join(WAREHOUSE_FILE).display())
}

/// The embedded warehouse's file in a lake.
const WAREHOUSE_FILE: &str = "warehouse.duckdb";

impl Lake {
    pub fn open(
        root: &Path,
        routes: Option<&Path>,
        contracts: Option<&Path>,
        handoff_max_mb: Option<u64>,
        warehouse: Option<&str>,
    ) -> Result<Lake, String> {
        let mut settings = Settings::new(RAW_BUCKET, PROCESSED_BUCKET);
        if let Some(path) = routes {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            settings.routes =
                Routes::from_toml(&text, &path.display().to_string()).map_err(|e| e.to_string())?;
        }
        settings.contracts_dir = contracts.map(Path::to_path_buf);
        // Locally nothing bigger takes over, so everything is processed unless asked otherwise.
        settings.handoff_max_bytes = handoff_max_mb.map_or(u64::MAX, |mb| mb << 20);
        let raw = LocalStore::new(root.join("raw"));
        let topic = Arc::new(LocalTopic::new(root));
        let processor = Arc::new(
            Processor::new(
                settings,
                Arc::new(raw.clone()),
                Arc::new(LocalStore::new(root)),
                topic.clone(),
            )
            .map_err(|e| e.to_string())?,
        );
        let step = processor.clone();
        let whole = Arc::new(processor.without_handoffs().map_err(|e| e.to_string())?);
        let contracts_dir = contracts.map(Path::to_path_buf);
        let backend = LocalBackend::new(move |job| match &job.work {
            Work::Handoff(request) => step.run_handoff(request).map(|_| ()),
            Work::Backfill(request) => backfill::run_here(&whole, request).map(|_| ()),
            Work::Weekly(request) => {
                weekly::request::run_here(whole.processed(), request, contracts_dir.as_deref())
                    .map(|_| ())
            }
        });
        let launcher = emr_launcher::handler::State {
            raw_bucket: RAW_BUCKET.into(),
            processed_bucket: PROCESSED_BUCKET.into(),
            hive: Default::default(),
            launcher: Launcher::new(
                Arc::new(LocalStore::new(root)),
                topic.clone(),
                Arc::new(backend),
            ),
            stuck_after: Duration::from_secs(4 * 3600),
            log_uri: String::new(),
        };
        // Opened once now, so a bad URL or an unreachable server stops the start, not a file.
        if let Some(url) = warehouse {
            crate::warehouse::loader(url, "bondlake", contracts)?;
        }
        Ok(Lake {
            root: root.to_path_buf(),
            raw,
            processed: LocalStore::new(root),
            processor,
            launcher,
            warehouse: warehouse.map(|u| (u.to_string(), contracts.map(Path::to_path_buf))),
            loader: None,
            topic,
        })
    }

    /// The warehouse-loader's state, opened on first use.
    fn loader_state(
        &mut self,
    ) -> Option<Result<&mut warehouse_loader::handler::State<AnyWarehouse>, String>> {
        let (url, contracts) = self.warehouse.as_ref()?;
        if self.loader.is_none() {
            let loader = match crate::warehouse::loader(url, "bondlake", contracts.as_deref()) {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            self.loader = Some(warehouse_loader::handler::State {
                settings: warehouse_loader::handler::Settings::local(PROCESSED_BUCKET),
                loader: Mutex::new(loader),
                processed: Arc::new(self.processed.clone()),
                events: self.topic.clone(),
            });
        }
        self.loader.as_mut().map(Ok)
    }

    /// The loader, opened on first use.
    fn loader(&mut self) -> Option<Result<&mut Loader<AnyWarehouse>, String>> {
        Some(self.loader_state()?.and_then(|s| {
            s.loader
                .get_mut()
                .map_err(|_| "the loader's lock is poisoned".to_string())
        }))
    }

    /// Hands the manifest an event names to the warehouse-loader's handler, as its notification
    /// on the manifest-events queue, and returns the `loaded` or `load_failed` it published.
    fn load(&mut self, event: &PipelineEvent) -> Option<Result<PipelineEvent, String>> {
        // As in AWS, every manifest's notification reaches the loader: a failed manifest is
        // recorded in the ledger as not loadable.
        if !matches!(event.kind(), EventKind::Processed | EventKind::Failed) {
            return None;
        }
        let location = event.manifest.as_deref()?;
        let key = Path::new(location)
            .strip_prefix(&self.root)
            .ok()?
            .to_string_lossy()
            .replace('\\', "/");
        let manifest = ObjectCreated {
            bucket: PROCESSED_BUCKET.into(),
            key,
            etag: None,
            event_time: None,
            sequencer: None,
        };
        let topic = self.topic.clone();
        let state = match self.loader_state()? {
            Ok(state) => state,
            Err(e) => return Some(Err(e)),
        };
        let ran = topology::manifest_events(&manifest)
            .and_then(|batch| warehouse_loader::handler::load_batch(state, batch).map_err(|e| e.0))
            .map_err(|e| e.to_string());
        let published = topic.take();
        Some(match ran {
            Ok(outcome) => match outcome.failures.into_iter().next() {
                Some((_, e)) => Err(e.to_string()),
                None => published
                    .into_iter()
                    .last()
                    .ok_or_else(|| format!("{location}: the loader published nothing")),
            },
            Err(e) => Err(e),
        })
    }

    /// Hands a raw object to csv-processor's handler, as its notification on the raw-events
    /// queue, and returns the event the processor published (none when it had nothing to say).
    fn process(&self, object: &ObjectCreated) -> Result<Option<PipelineEvent>, HandleError> {
        let incoming = topology::raw_events(object)?;
        // Locally nothing has a deadline: the whole file is processed here.
        let ran = csv_processor::handler::run(&self.processor, incoming, Budget::default())
            .map_err(|e| e.0)?;
        let published = self.topic.take();
        match ran.failures.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(published.into_iter().last()),
        }
    }

    /// Hands a `handoff` event to emr-launcher's handler, as its message on the `handoffs` queue;
    /// the local backend runs the step to the end. Returns what was published meanwhile: the
    /// step's `processed` (or `failed`) event and the launcher's `launched`.
    fn launch(&self, handoff: &PipelineEvent) -> Result<Vec<PipelineEvent>, HandleError> {
        let messages = match topology::handoff_queue(std::slice::from_ref(handoff))? {
            bondlake_lambda::TopicDelivery::Sqs(m) | bondlake_lambda::TopicDelivery::Sns(m) => m,
        };
        let batch = emr_launcher::handler::launch_all(&self.launcher.launcher, &messages);
        let published = self.topic.take();
        match batch.failures.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(published),
        }
    }

    /// The warehouse, when the lake loads into one.
    pub fn warehouse(&mut self) -> Option<Result<&mut AnyWarehouse, String>> {
        self.loader().map(|l| l.map(|l| l.warehouse()))
    }

    /// Handles the raw files not seen before at their current version: all of them (`stable`
    /// false), or only those unchanged since the last look (`stable` true, so a file still being
    /// copied in is not read half-written). Returns what was published, in key order.
    pub fn poll(&mut self, seen: &mut Seen, stable: bool) -> Result<Vec<Handled>, String> {
        let mut handled = Vec::new();
        for key in self.raw_keys()? {
            let path = self.raw.root().join(&key);
            let meta = if stable {
                std::fs::metadata(&path).ok()
            } else {
                settled(&path)
            };
            let Some(meta) = meta else {
                continue;
            };
            let etag = file_etag(&meta);
            if seen.done.get(&key) == Some(&etag) {
                continue;
            }
            if stable && seen.pending.insert(key.clone(), etag.clone()) != Some(etag.clone()) {
                continue;
            }
            seen.pending.remove(&key);
            if self.processor.is_done(&key, &etag).unwrap_or(false) {
                seen.done.insert(key, etag);
                continue;
            }
            let object = raw_object(key.clone(), &meta);
            let (h, done) = self.run_object(&object);
            // Retryable faults are tried again at the next look; the rest are final.
            if done {
                seen.done.insert(key, etag);
            }
            handled.push(h);
        }
        if !seen.caught_up {
            self.catch_up(&mut handled)?;
            seen.caught_up = true;
        }
        // Let go of the warehouse between polls (see `loader`).
        self.loader = None;
        Ok(handled)
    }

    /// Loads every manifest the warehouse's ledger does not hold: what a run killed between a
    /// manifest and its load left, or one written while no warehouse was set. (In AWS the
    /// manifest's notification stays on the loader's queue until a load succeeds.)
    fn catch_up(&mut self, handled: &mut Vec<Handled>) -> Result<(), String> {
        if self.warehouse.is_none() {
            return Ok(());
        }
        let manifests: Vec<String> = self
            .processed
            .list("manifests/")
            .map_err(|e| format!("{}: {e}", self.root.display()))?
            .into_iter()
            .filter(|k| k.ends_with(".json"))
            .collect();
        if manifests.is_empty() {
            return Ok(());
        }
        let just_loaded: std::collections::HashSet<String> = handled
            .iter()
            .filter_map(|h| h.event.as_ref()?.manifest.clone())
            .collect();
        let recorded = match self.loader() {
            Some(Ok(loader)) => loader.recorded().map_err(|e| e.to_string())?,
            Some(Err(e)) => return Err(e),
            None => return Ok(()),
        };
        let processed = self.processed.clone();
        for key in manifests {
            if recorded.contains(&key) || just_loaded.contains(&processed.locate(&key)) {
                continue;
            }
            let event = match bondlake_core::warehouse::read_manifest(&processed, &key) {
                Ok(m) => PipelineEvent::from_manifest(
                    bondlake_core::processor::STAGE,
                    &m,
                    &key,
                    &processed,
                ),
                Err(e) => {
                    handled.push(Handled {
                        key: key.clone(),
                        event: None,
                        emr: Vec::new(),
                        error: Some(format!("{}: {}", processed.locate(&key), e.message)),
                        load: None,
                    });
                    continue;
                }
            };
            let load = self.load(&event);
            handled.push(Handled {
                key: event.source.key.clone(),
                event: Some(event),
                emr: Vec::new(),
                error: None,
                load,
            });
        }
        Ok(())
    }
}

impl Lake {
    /// The raw bucket's keys, without the files a copy is still writing (see [`being_written`]).
    fn raw_keys(&self) -> Result<Vec<String>, String> {
        let keys = self
            .raw
            .list("")
            .map_err(|e| format!("{}: {e}", self.root.display()))?;
        Ok(keys.into_iter().filter(|k| !being_written(k)).collect())
    }

    /// One raw object through the chain, as AWS wires it: csv-processor's handler, emr-launcher's
    /// for a hand-off, the loader's for the manifest. `false` when it failed in a way worth
    /// trying again.
    fn run_object(&mut self, object: &ObjectCreated) -> (Handled, bool) {
        let key = object.key.clone();
        match self.process(object) {
            Ok(Some(handoff)) if handoff.kind() == EventKind::Handoff => {
                (self.run_on_emr(key, handoff), true)
            }
            Ok(event) => {
                let load = event.as_ref().and_then(|e| self.load(e));
                let h = Handled {
                    key,
                    event,
                    emr: Vec::new(),
                    error: None,
                    load,
                };
                (h, true)
            }
            Err(e) => {
                let done = !e.is_retryable();
                let h = Handled {
                    key,
                    event: None,
                    emr: Vec::new(),
                    error: Some(e.to_string()),
                    load: None,
                };
                (h, done)
            }
        }
    }

    /// Runs again every raw object that arrived (was last written) on the days `from..=to`
    /// (days since 1970-01-01, UTC), of `dataset` when given, whether or not it was processed:
    /// the same contract writes the same keys and the loader says `already_loaded`; a new
    /// contract version writes new keys, which the loader merges.
    pub fn replay(
        &mut self,
        days: std::ops::RangeInclusive<i32>,
        dataset: Option<&str>,
    ) -> Result<Vec<Handled>, String> {
        let mut handled = Vec::new();
        for key in self.raw_keys()? {
            let Ok(meta) = std::fs::metadata(self.raw.root().join(&key)) else {
                continue;
            };
            let day = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| (d.as_secs() / 86_400) as i32);
            if !day.is_some_and(|d| days.contains(&d)) {
                continue;
            }
            let routed = self
                .processor
                .settings()
                .routes
                .route(&key)
                .map(|r| r.dataset.clone());
            if dataset.is_some_and(|d| routed.as_deref() != Some(d)) {
                continue;
            }
            handled.push(self.run_object(&raw_object(key, &meta)).0);
        }
        self.loader = None;
        Ok(handled)
    }

    /// A handed-off file through the launcher, then its manifest loaded like any other: the
    /// row shows the step's outcome, with the hand-off and the launch before it.
    fn run_on_emr(&mut self, key: String, handoff: PipelineEvent) -> Handled {
        match self.launch(&handoff) {
            Ok(published) => {
                let (done, mut emr): (Vec<PipelineEvent>, Vec<PipelineEvent>) = published
                    .into_iter()
                    .partition(|e| matches!(e.kind(), EventKind::Processed | EventKind::Failed));
                emr.insert(0, handoff);
                let event = done.into_iter().last();
                let load = event.as_ref().and_then(|e| self.load(e));
                Handled {
                    key,
                    event,
                    emr,
                    error: None,
                    load,
                }
            }
            Err(e) => Handled {
                key,
                event: Some(handoff),
                emr: Vec::new(),
                error: Some(format!("on EMR: {e}")),
                load: None,
            },
        }
    }
}

/// The notification a raw file's arrival stands for: its version is its size and modification
/// time, its event time the modification time.
fn raw_object(key: String, meta: &std::fs::Metadata) -> ObjectCreated {
    ObjectCreated {
        bucket: RAW_BUCKET.into(),
        key,
        etag: Some(file_etag(meta)),
        event_time: bondlake_core::store::file_event_time(meta),
        sequencer: None,
    }
}

/// Names that copy and download tools give a file until it is complete (then they rename it).
fn being_written(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
    name.starts_with('~')
        || [
            ".tmp",
            ".part",
            ".partial",
            ".crdownload",
            ".filepart",
            ".download",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// A file's metadata once it has not changed for [`SETTLE`]: `--once` looks only once, so a file
/// still being copied in is waited for (at most [`SETTLE_LIMIT`]) rather than read half-written.
/// `None` for a file gone meanwhile, or still changing at the limit (left for the next run).
fn settled(path: &Path) -> Option<std::fs::Metadata> {
    let started = Instant::now();
    let mut meta = std::fs::metadata(path).ok()?;
    loop {
        let age = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .unwrap_or(SETTLE);
        if age >= SETTLE {
            return Some(meta);
        }
        if started.elapsed() > SETTLE_LIMIT {
            eprintln!(
                "bondlake run: {} is still being written; left for the next run",
                path.display()
            );
            return None;
        }
        std::thread::sleep(SETTLE - age);
        meta = std::fs::metadata(path).ok()?;
    }
}

/// How long a file must go unchanged before `--once` reads it.
const SETTLE: Duration = Duration::from_secs(1);
/// The longest `--once` waits for one file to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// What the runner has handled (key → version) and what it saw once (waiting to be stable).
#[derive(Default)]
pub struct Seen {
    done: HashMap<String, String>,
    pending: HashMap<String, String>,
    /// Whether the manifests the ledger lacks were loaded (once, at the first look).
    caught_up: bool,
}

/// One file's outcome.
pub struct Handled {
    pub key: String,
    pub event: Option<PipelineEvent>,
    /// For a file handed off: the `handoff` and the launcher's events, before the step's `event`.
    pub emr: Vec<PipelineEvent>,
    pub error: Option<String>,
    /// The warehouse-loader's event, when the file was loaded (or its load failed).
    pub load: Option<Result<PipelineEvent, String>>,
}

pub fn events_path(root: &Path) -> PathBuf {
    root.join("events").join("pipeline-events.jsonl")
}

pub fn run(a: RunArgs) -> Result<ExitCode, String> {
    let warehouse = match (&a.warehouse, a.no_warehouse) {
        (_, true) => None,
        (Some(url), false) => Some(url.clone()),
        (None, false) => Some(default_warehouse(&a.root)),
    };
    std::fs::create_dir_all(&a.root).map_err(|e| format!("{}: {e}", a.root.display()))?;
    let mut lake = Lake::open(
        &a.root,
        a.routes.as_deref(),
        a.contracts.as_deref(),
        a.handoff_max_mb,
        warehouse.as_deref(),
    )?;
    std::fs::create_dir_all(lake.raw.root())
        .map_err(|e| format!("{}: {e}", lake.raw.root().display()))?;
    let notifier = Notifier::new(&a.root, a.slack_webhook.as_deref())?;
    if a.once {
        return once(&mut lake, &notifier, warehouse.as_deref(), Vec::new());
    }
    eprintln!(
        "bondlake run: watching {} (Ctrl-C to stop); events go to {}; notifications {}",
        lake.raw.root().display(),
        events_path(&a.root).display(),
        notifier.describe()
    );
    let mut seen = Seen::default();
    let mut table = Table::default();
    table.print_header();
    loop {
        let started = Instant::now();
        let first = !seen.caught_up;
        let handled = lake.poll(&mut seen, true)?;
        for h in &handled {
            table.add(h);
        }
        // One poll is one digest window; the first also tells what a killed run did not.
        let events = events_of(&handled, Vec::new());
        notifier.tell(if first {
            with_untold(&a.root, events)
        } else {
            events
        });
        std::thread::sleep(Duration::from_millis(a.poll_ms).saturating_sub(started.elapsed()));
    }
}

/// One look at ROOT/raw: handles what is new, prints the table, tells the team (with `landed`,
/// the lander's events that came first), and shows the views' headlines.
pub fn once(
    lake: &mut Lake,
    notifier: &Notifier,
    warehouse: Option<&str>,
    landed: Vec<PipelineEvent>,
) -> Result<ExitCode, String> {
    let mut table = Table::default();
    table.print_header();
    let handled = lake.poll(&mut Seen::default(), false)?;
    for h in &handled {
        table.add(h);
    }
    let root = lake.root.clone();
    table.print_summary(&root);
    println!("\nNotifications, {}:", notifier.describe());
    let unsent = notifier.tell(with_untold(&root, events_of(&handled, landed)));
    print_headlines(lake, warehouse);
    let code = table.exit_code();
    Ok(if unsent > 0 && code == ExitCode::SUCCESS {
        ExitCode::from(1)
    } else {
        code
    })
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The local lake's root folder.
    #[arg(long, default_value = "bondlake-lake")]
    root: PathBuf,
    /// The first day (YYYY-MM-DD, UTC) whose raw objects run again: the day they arrived.
    #[arg(long)]
    from: String,
    /// The last day (default: --from).
    #[arg(long)]
    to: Option<String>,
    /// Only this dataset's objects.
    #[arg(long)]
    dataset: Option<String>,
    /// Routing table (default: the built-in one).
    #[arg(long)]
    routes: Option<PathBuf>,
    /// Folder of contract files (a new contract version writes new keys, merged by the loader).
    #[arg(long)]
    contracts: Option<PathBuf>,
    /// The warehouse (default: the lake's embedded DuckDB).
    #[arg(long)]
    warehouse: Option<String>,
    /// Also post notifications to this Slack incoming webhook (they are always printed).
    #[arg(long, env = "BONDLAKE_SLACK_WEBHOOK", hide_env_values = true)]
    slack_webhook: Option<String>,
}

/// A day as days since 1970-01-01.
fn day_number(text: &str, what: &str) -> Result<i32, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let parsed = match parts.as_slice() {
        [y, m, d] => match (y.parse(), m.parse(), d.parse()) {
            (Ok(y), Ok(m), Ok(d)) => bondlake_core::parse::days_from_civil(y, m, d),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| format!("{what} `{text}` is not a day (YYYY-MM-DD)"))
}

/// `bondlake replay`: the raw objects of some days through the chain again.
pub fn replay(a: ReplayArgs) -> Result<ExitCode, String> {
    let from = day_number(&a.from, "--from")?;
    let to = day_number(a.to.as_deref().unwrap_or(&a.from), "--to")?;
    if to < from {
        return Err(format!(
            "--to {} is before --from {}",
            a.to.unwrap_or_default(),
            a.from
        ));
    }
    let warehouse = a
        .warehouse
        .clone()
        .unwrap_or_else(|| default_warehouse(&a.root));
    let mut lake = Lake::open(
        &a.root,
        a.routes.as_deref(),
        a.contracts.as_deref(),
        None,
        Some(&warehouse),
    )?;
    let notifier = Notifier::new(&a.root, a.slack_webhook.as_deref())?;
    let mut table = Table::default();
    table.print_header();
    let handled = lake.replay(from..=to, a.dataset.as_deref())?;
    for h in &handled {
        table.add(h);
    }
    table.print_summary(&a.root);
    println!("\nNotifications, {}:", notifier.describe());
    notifier.tell(events_of(&handled, Vec::new()));
    Ok(table.exit_code())
}

/// `events`, after every event of the lake's topic file, which the notifier's sent log then
/// sorts into told and untold: what a run killed before it notified is told now, as the notifier's
/// queue would still hold it in AWS.
fn with_untold(root: &Path, events: Vec<PipelineEvent>) -> Vec<PipelineEvent> {
    let Ok(text) = std::fs::read_to_string(events_path(root)) else {
        return events;
    };
    let mut all: Vec<PipelineEvent> = text
        .lines()
        .filter_map(|line| bondlake_core::events::parse(line).ok())
        .collect();
    let known: std::collections::HashSet<String> = all.iter().map(PipelineEvent::id).collect();
    all.extend(events.into_iter().filter(|e| !known.contains(&e.id())));
    all
}

/// The events a poll published, in order: the lander's first, then each file's and its load's.
fn events_of(handled: &[Handled], landed: Vec<PipelineEvent>) -> Vec<PipelineEvent> {
    let mut events = landed;
    for h in handled {
        events.extend(h.emr.iter().cloned());
        events.extend(h.event.clone());
        if let Some(Ok(load)) = &h.load {
            events.push(load.clone());
        }
    }
    events
}
