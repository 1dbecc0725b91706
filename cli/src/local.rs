//! The local pipeline: `bondlake run` and `bondlake demo`. Folders stand in for the buckets, and
//! each function's own handler is called with the events `template.yaml` wires (see
//! [`crate::topology`]): csv-processor for each new raw file, warehouse-loader for each manifest,
//! the notifier for what the stages published.
//!
//! - `ROOT/raw/` is the raw bucket (routed by the same table as the template's S3 events);
//! - `ROOT/` holds what the processed bucket would: `processed/`, `quarantine/`, `manifests/`,
//!   `handoffs/`;
//! - `ROOT/events/pipeline-events.jsonl` stands in for the `pipeline-events` topic.

use crate::notify::{Notifier, SlackStandIn};
use crate::topology;
use crate::warehouse::AnyWarehouse;
use bondlake_core::events::{EventKind, EventSink, JsonLinesSink, PipelineEvent};
use bondlake_core::failure::HandleError;
use bondlake_core::processor::{Budget, ObjectCreated, Processor, Settings};
use bondlake_core::route::Routes;
use bondlake_core::store::{LocalStore, ObjectStore, file_etag};
use bondlake_core::warehouse::Loader;
use bondlake_testkit::synth;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The processed bucket's name in local events.
const PROCESSED_BUCKET: &str = "processed";

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
    processor: Processor,
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
        let mut settings = Settings::new(RAW_BUCKET, "processed");
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
        let processor = Processor::new(
            settings,
            Arc::new(raw.clone()),
            Arc::new(LocalStore::new(root)),
            topic.clone(),
        )
        .map_err(|e| e.to_string())?;
        // Opened once now, so a bad URL or an unreachable server stops the start, not a file.
        if let Some(url) = warehouse {
            crate::warehouse::loader(url, "bondlake", contracts)?;
        }
        Ok(Lake {
            root: root.to_path_buf(),
            raw,
            processed: LocalStore::new(root),
            processor,
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
            .and_then(|incoming| match incoming {
                bondlake_lambda::Incoming::Sqs(batch) => {
                    warehouse_loader::handler::load_batch(state, batch).map_err(|e| e.0)
                }
                bondlake_lambda::Incoming::S3(_) => {
                    Err(HandleError::Config("not an SQS event".into()))
                }
            })
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

    /// The warehouse, when the lake loads into one.
    pub fn warehouse(&mut self) -> Option<Result<&mut AnyWarehouse, String>> {
        self.loader().map(|l| l.map(|l| l.warehouse()))
    }

    /// Handles the raw files not seen before at their current version: all of them (`stable`
    /// false), or only those unchanged since the last look (`stable` true, so a file still being
    /// copied in is not read half-written). Returns what was published, in key order.
    pub fn poll(&mut self, seen: &mut Seen, stable: bool) -> Result<Vec<Handled>, String> {
        let keys = self
            .raw
            .list("")
            .map_err(|e| format!("{}: {e}", self.root.display()))?;
        let mut handled = Vec::new();
        for key in keys {
            if being_written(&key) {
                continue;
            }
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
            let object = ObjectCreated {
                bucket: RAW_BUCKET.into(),
                key: key.clone(),
                etag: Some(etag.clone()),
                event_time: bondlake_core::store::file_event_time(&meta),
                sequencer: None,
            };
            match self.process(&object) {
                Ok(event) => {
                    seen.done.insert(key.clone(), etag);
                    let load = event.as_ref().and_then(|e| self.load(e));
                    handled.push(Handled {
                        key,
                        event,
                        error: None,
                        load,
                    });
                }
                Err(e) => {
                    // Retryable faults are tried again at the next look; the rest are final.
                    if !e.is_retryable() {
                        seen.done.insert(key.clone(), etag);
                    }
                    handled.push(Handled {
                        key,
                        event: None,
                        error: Some(e.to_string()),
                        load: None,
                    });
                }
            }
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
                error: None,
                load,
            });
        }
        Ok(())
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
        events.extend(h.event.clone());
        if let Some(Ok(load)) = &h.load {
            events.push(load.clone());
        }
    }
    events
}

/// Records of the demo's Kafka feed: a holdings file published to `investor-holdings`.
const DEMO_FEED_ROWS: u64 = 300;
/// Their timestamp: the demo's business day, 2026-11-25 21:00 UTC (the same feed lands the same
/// objects every time).
const DEMO_FEED_AT_MS: i64 = 1_795_640_400_000;

pub fn demo(root: &Path, dirty: f64, seed: u64, webhook: Option<&str>) -> Result<ExitCode, String> {
    let wiped = fresh_root(root)?;
    let raw = LocalStore::new(root.join("raw"));
    if wiped {
        println!(
            "bondlake demo: replacing the previous demo in {}",
            root.display()
        );
    }
    println!(
        "bondlake demo: one business day of vendor files into {0}/raw (the raw bucket), and a Kafka topic's records landed beside them; routed and cleaned as the Lambda does into {0}\n",
        root.display()
    );
    for (k, (key, dataset, profile, rows)) in synth::DAY.iter().enumerate() {
        let spec = synth::Spec {
            dataset: dataset.to_string(),
            profile: profile.to_string(),
            rows: *rows,
            seed: seed + k as u64,
            dirty,
        };
        let mut w = raw
            .create(key)
            .map_err(|e| format!("{}: {e}", raw.locate(key)))?;
        synth::generate_file(&spec, key.ends_with(".gz"), &mut w).map_err(|e| e.to_string())?;
        w.commit().map_err(|e| e.to_string())?;
    }
    // With no webhook named, the demo posts to a Slack stand-in of its own on 127.0.0.1, so one
    // run shows every leg, Slack included.
    let standin = match webhook {
        Some(_) => None,
        None => Some(SlackStandIn::start(
            "127.0.0.1:0",
            "/services/demo/stand-in",
        )?),
    };
    let notifier = Notifier::new(root, webhook.or(standin.as_ref().map(|s| s.url())))?;
    // Kafka → raw: a producer's holdings records, two of them poison, through the lander.
    let spec = synth::Spec {
        dataset: "investor_holdings".into(),
        profile: "standard".into(),
        rows: DEMO_FEED_ROWS,
        seed: seed + 100,
        dirty,
    };
    let mut file = Vec::new();
    synth::generate_file(&spec, false, &mut file).map_err(|e| e.to_string())?;
    let landed = crate::feed::land(
        root,
        &crate::feed::FeedPlan {
            topic: "investor-holdings".into(),
            partitions: 3,
            batch_size: 500,
            start_offset: None,
            poison: 2,
            topics: None,
            contracts: None,
        },
        "demo-holdings.csv",
        DEMO_FEED_AT_MS,
        Box::new(std::io::Cursor::new(file)),
    )?;
    println!();
    let url = default_warehouse(root);
    let mut lake = Lake::open(root, None, None, None, Some(&url))?;
    let code = once(&mut lake, &notifier, Some(&url), landed)?;
    if let Some(standin) = standin {
        let posts = standin.posts();
        println!(
            "\nSlack: the demo's stand-in channel received {} posts (set BONDLAKE_SLACK_WEBHOOK to post to yours):",
            posts.len()
        );
        for post in posts {
            println!("  {post}");
        }
    }
    Ok(code)
}

/// Empties the folders a previous demo wrote; refuses a non-empty folder that is not one.
fn fresh_root(root: &Path) -> Result<bool, String> {
    const OURS: [&str; 11] = [
        "raw",
        "kafka",
        "notifications",
        "processed",
        "quarantine",
        "manifests",
        "handoffs",
        "events",
        "loads",
        WAREHOUSE_FILE,
        "warehouse.duckdb.wal",
    ];
    let entries: Vec<String> = match std::fs::read_dir(root) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => return Ok(false),
    };
    if let Some(other) = entries.iter().find(|e| !OURS.contains(&e.as_str())) {
        return Err(format!(
            "{} holds `{other}`, which a demo did not write; pick another --root",
            root.display()
        ));
    }
    for e in &entries {
        let p = root.join(e);
        let removed = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        removed.map_err(|err| format!("{}: {err}", p.display()))?;
    }
    Ok(!entries.is_empty())
}

#[derive(Default)]
struct Table {
    read: u64,
    ok: u64,
    rejected: u64,
    failed: u64,
    handed_off: u64,
    errors: u64,
    loaded: u64,
    load_failed: u64,
    started: Option<Instant>,
}

impl Table {
    fn print_header(&mut self) {
        self.started = Some(Instant::now());
        println!(
            "{:<48} {:<18} {:>8} {:>8} {:>8}  {:<24} top reasons",
            "raw object", "dataset/profile", "read", "ok", "rejected", "outcome"
        );
    }

    fn add(&mut self, h: &Handled) {
        let Some(e) = &h.event else {
            if let Some(error) = &h.error {
                self.errors += 1;
                println!("{:<48} error: {error}", h.key);
            }
            return;
        };
        let outcome = match (e.kind(), e.status) {
            (EventKind::Processed, Some(s)) => format!("{s:?}").to_lowercase(),
            (EventKind::Handoff, _) => {
                self.handed_off += 1;
                format!(
                    "handoff ({})",
                    e.handoff().map_or("", |h| h.reason.as_str())
                )
            }
            (kind, _) => {
                self.failed += 1;
                kind.as_str().to_string()
            }
        };
        let top: Vec<String> = e
            .top_reasons
            .iter()
            .take(3)
            .map(|r| format!("{} {}", r.reason, r.count))
            .collect();
        let routed = match (&e.dataset, &e.profile) {
            (Some(d), Some(p)) => format!("{}/{p}", d.split('_').next().unwrap_or("")),
            _ => "-".into(),
        };
        println!(
            "{:<48} {:<18} {:>8} {:>8} {:>8}  {:<24} {}",
            h.key,
            routed,
            e.rows_read,
            e.rows_ok,
            e.rows_rejected,
            outcome,
            top.join(", ")
        );
        if let Some(error) = &e.error {
            println!("    {error}");
        }
        match &h.load {
            Some(Ok(l)) if l.kind() == EventKind::Loaded => {
                self.loaded += 1;
                if let Some(info) = l.load() {
                    let totals: Vec<String> = info
                        .control_totals
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect();
                    println!(
                        "    warehouse: {} {} rows into {}{}{}",
                        info.outcome.replace('_', " "),
                        info.rows,
                        info.table,
                        if info.superseded > 0 {
                            format!(" ({} superseded by newer input)", info.superseded)
                        } else {
                            String::new()
                        },
                        if totals.is_empty() {
                            String::new()
                        } else {
                            format!(", reconciled: {}", totals.join(", "))
                        }
                    );
                }
            }
            Some(Ok(l)) => {
                self.load_failed += 1;
                println!(
                    "    warehouse: load failed: {}",
                    l.error.as_deref().unwrap_or("")
                );
            }
            Some(Err(e)) => {
                self.load_failed += 1;
                println!("    warehouse: load failed: {e}");
            }
            None => {}
        }
        self.read += e.rows_read;
        self.ok += e.rows_ok;
        self.rejected += e.rows_rejected;
    }

    fn print_summary(&self, root: &Path) {
        let secs = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let balance = if self.read == self.ok + self.rejected {
            "none lost".to_string()
        } else {
            format!(
                "{} UNACCOUNTED",
                self.read.abs_diff(self.ok + self.rejected)
            )
        };
        println!(
            "\n{} records read: {} clean, {} quarantined, {balance} ({secs:.1}s).",
            self.read, self.ok, self.rejected
        );
        if self.failed + self.handed_off + self.errors > 0 {
            println!(
                "{} files failed, {} handed off, {} errors (see above).",
                self.failed, self.handed_off, self.errors
            );
        }
        let r = root.display();
        println!("Parquet:     {r}/processed/<dataset>/<partition>=<value>/");
        println!(
            "Quarantine:  {r}/quarantine/<dataset>/*.csv.gz (record_number,column,reason,value,record)"
        );
        println!("Manifests:   {r}/manifests/<dataset>/*.json");
        println!("Events:      {}", events_path(root).display());
        if self.loaded + self.load_failed > 0 {
            println!(
                "Warehouse:   {} files loaded or recorded, {} failed: {}",
                self.loaded,
                self.load_failed,
                root.join(WAREHOUSE_FILE).display()
            );
        }
    }

    fn exit_code(&self) -> ExitCode {
        if self.errors > 0 {
            ExitCode::from(1)
        } else if self.failed + self.load_failed > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// The views' headline rows, as an analyst's first queries would show them.
fn print_headlines(lake: &mut Lake, url: Option<&str>) {
    let w = match lake.warehouse() {
        None => return,
        Some(Err(e)) => {
            println!("\nWarehouse: {e}");
            return;
        }
        Some(Ok(w)) => w,
    };
    const HEADLINES: [(&str, &str); 4] = [
        (
            "Exposure by investor type (v_portfolio_exposure, top 5 by market value)",
            "SELECT as_of_date, investor_type, SUM(positions) AS positions, SUM(market_value) AS market_value, SUM(par_value) AS par_value FROM bondlake.v_portfolio_exposure GROUP BY 1, 2 ORDER BY market_value DESC LIMIT 5",
        ),
        (
            "Top issuers (v_top_issuers, exposure_rank <= 3)",
            "SELECT as_of_date, exposure_rank, issuer, positions, market_value FROM bondlake.v_top_issuers WHERE exposure_rank <= 3 ORDER BY as_of_date, exposure_rank",
        ),
        (
            "Market summary (v_market_summary)",
            "SELECT trade_date, exchange, symbols, advancers, decliners, volume, avg_return FROM bondlake.v_market_summary ORDER BY trade_date, exchange",
        ),
        (
            "Data quality (v_data_quality)",
            "SELECT dataset, status, rows_read, rows_ok, rows_rejected, rows_loaded, load_ms FROM bondlake.v_data_quality ORDER BY dataset, source_key",
        ),
    ];
    println!();
    for (title, sql) in HEADLINES {
        match w.query_table(sql) {
            Ok(result) => {
                println!("{title}");
                print!("{}", crate::warehouse::render_table(&result));
                println!();
            }
            Err(e) => println!("{title}: {e}\n"),
        }
    }
    if let Some(url) = url {
        println!(
            "Query it: bondlake sql --warehouse {url} \"SELECT * FROM bondlake.v_data_quality\""
        );
    }
}
