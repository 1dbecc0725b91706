//! The local pipeline: `bondlake run` and `bondlake demo`. Folders stand in for the buckets and
//! the same [`Processor`] as the Lambda handles each new file:
//!
//! - `ROOT/raw/` is the raw bucket (routed by the same table as the template's S3 events);
//! - `ROOT/` holds what the processed bucket would: `processed/`, `quarantine/`, `manifests/`,
//!   `handoffs/`;
//! - `ROOT/events/pipeline-events.jsonl` stands in for the `pipeline-events` topic.

use bondlake::events::{EventKind, JsonLinesSink, PipelineEvent};
use bondlake::processor::{ObjectCreated, Processor, Settings};
use bondlake::route::Routes;
use bondlake::store::{LocalStore, ObjectStore, file_etag};
use bondlake::synth;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
}

/// The local lake's stores and processor.
pub struct Lake {
    root: PathBuf,
    raw: LocalStore,
    processor: Processor,
}

impl Lake {
    pub fn open(
        root: &Path,
        routes: Option<&Path>,
        contracts: Option<&Path>,
        handoff_max_mb: Option<u64>,
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
        let processor = Processor::new(
            settings,
            Arc::new(raw.clone()),
            Arc::new(LocalStore::new(root)),
            Arc::new(JsonLinesSink::new(events_path(root))),
        )
        .map_err(|e| e.to_string())?;
        Ok(Lake {
            root: root.to_path_buf(),
            raw,
            processor,
        })
    }

    /// Handles the raw files not seen before at their current version: all of them (`stable`
    /// false), or only those unchanged since the last look (`stable` true, so a file still being
    /// copied in is not read half-written). Returns what was published, in key order.
    pub fn poll(&self, seen: &mut Seen, stable: bool) -> Result<Vec<Handled>, String> {
        let keys = self
            .raw
            .list("")
            .map_err(|e| format!("{}: {e}", self.root.display()))?;
        let mut handled = Vec::new();
        for key in keys {
            let path = self.raw.root().join(&key);
            let Ok(meta) = std::fs::metadata(&path) else {
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
            };
            match self.processor.handle(&object, None) {
                Ok(event) => {
                    seen.done.insert(key.clone(), etag);
                    handled.push(Handled {
                        key,
                        event,
                        error: None,
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
                    });
                }
            }
        }
        Ok(handled)
    }
}

/// What the runner has handled (key → version) and what it saw once (waiting to be stable).
#[derive(Default)]
pub struct Seen {
    done: HashMap<String, String>,
    pending: HashMap<String, String>,
}

/// One file's outcome.
pub struct Handled {
    pub key: String,
    pub event: Option<PipelineEvent>,
    pub error: Option<String>,
}

pub fn events_path(root: &Path) -> PathBuf {
    root.join("events").join("pipeline-events.jsonl")
}

pub fn run(a: RunArgs) -> Result<ExitCode, String> {
    let lake = Lake::open(
        &a.root,
        a.routes.as_deref(),
        a.contracts.as_deref(),
        a.handoff_max_mb,
    )?;
    std::fs::create_dir_all(lake.raw.root())
        .map_err(|e| format!("{}: {e}", lake.raw.root().display()))?;
    let mut seen = Seen::default();
    let mut table = Table::default();
    if a.once {
        let handled = lake.poll(&mut seen, false)?;
        table.print_header();
        for h in &handled {
            table.add(h);
        }
        table.print_summary(&a.root);
        return Ok(table.exit_code());
    }
    eprintln!(
        "bondlake run: watching {} (Ctrl-C to stop); events go to {}",
        lake.raw.root().display(),
        events_path(&a.root).display()
    );
    table.print_header();
    loop {
        let started = Instant::now();
        for h in lake.poll(&mut seen, true)? {
            table.add(&h);
        }
        std::thread::sleep(Duration::from_millis(a.poll_ms).saturating_sub(started.elapsed()));
    }
}

pub fn demo(root: &Path, dirty: f64, seed: u64) -> Result<ExitCode, String> {
    let wiped = fresh_root(root)?;
    let raw = LocalStore::new(root.join("raw"));
    if wiped {
        println!(
            "bondlake demo: replacing the previous demo in {}",
            root.display()
        );
    }
    println!(
        "bondlake demo: one business day of vendor files into {0}/raw (the raw bucket), routed and cleaned as the Lambda does into {0}\n",
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
    let lake = Lake::open(root, None, None, None)?;
    let mut table = Table::default();
    table.print_header();
    for h in lake.poll(&mut Seen::default(), false)? {
        table.add(&h);
    }
    table.print_summary(root);
    Ok(table.exit_code())
}

/// Empties the folders a previous demo wrote; refuses a non-empty folder that is not one.
fn fresh_root(root: &Path) -> Result<bool, String> {
    const OURS: [&str; 6] = [
        "raw",
        "processed",
        "quarantine",
        "manifests",
        "handoffs",
        "events",
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
        std::fs::remove_dir_all(&p).map_err(|err| format!("{}: {err}", p.display()))?;
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
        let outcome = match (e.kind, e.status) {
            (EventKind::Processed, Some(s)) => format!("{s:?}").to_lowercase(),
            (EventKind::Handoff, _) => {
                self.handed_off += 1;
                format!(
                    "handoff ({})",
                    e.handoff.as_ref().map_or("", |h| h.reason.as_str())
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
    }

    fn exit_code(&self) -> ExitCode {
        if self.errors > 0 {
            ExitCode::from(1)
        } else if self.failed > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    }
}
