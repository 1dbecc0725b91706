//! `bondlake feed`: a vendor file as a producer would publish it to a Kafka topic, landed by the
//! same lander as msk-lander into ROOT/raw, then run through the local chain like `run --once`.

use crate::local::{Lake, RAW_BUCKET, default_warehouse, events_path};
use crate::notify::Notifier;
use bondlake_core::events::{JsonLinesSink, PipelineEvent};
use bondlake_core::kafka::{KafkaRecord, Lander, Topics};
use bondlake_core::store::{LocalStore, ObjectStore};
use bondlake_testkit::kafka_feed::{Feed, records_from_csv};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct FeedArgs {
    /// The topic to publish to (contracts/topics.toml names the known ones and their format).
    #[arg(long)]
    topic: String,
    /// The vendor file (CSV with a header; gzip or plain).
    #[arg(long)]
    input: PathBuf,
    /// The local lake's root folder.
    #[arg(long, default_value = "bondlake-lake")]
    root: PathBuf,
    /// Partitions the records are spread over (by their dataset key).
    #[arg(long, default_value_t = 3)]
    partitions: u32,
    /// Records per lander batch (the event source mapping's batch size).
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Start every partition at this offset instead of after the last feed of this topic
    /// (the same file with the same start offset replays the same batch).
    #[arg(long)]
    start_offset: Option<i64>,
    /// Make this many records undecodable (alternately not UTF-8 and ragged), to see them
    /// quarantined while their partitions move on.
    #[arg(long, default_value_t = 0)]
    poison: usize,
    /// Topic table (TOML, the format of contracts/topics.toml); default: the built-in one.
    #[arg(long)]
    topics: Option<PathBuf>,
    /// Folder of contract files (default: the contracts built into this binary).
    #[arg(long)]
    contracts: Option<PathBuf>,
    /// Only land the records in ROOT/raw; leave processing to `bondlake run`.
    #[arg(long)]
    land_only: bool,
    /// Also post notifications to this Slack incoming webhook (they are always printed).
    #[arg(long, env = "BONDLAKE_SLACK_WEBHOOK", hide_env_values = true)]
    slack_webhook: Option<String>,
}

/// What to feed, and how.
pub struct FeedPlan {
    pub topic: String,
    pub partitions: u32,
    pub batch_size: usize,
    pub start_offset: Option<i64>,
    pub poison: usize,
    pub topics: Option<PathBuf>,
    pub contracts: Option<PathBuf>,
}

pub fn feed(a: FeedArgs) -> Result<ExitCode, String> {
    let file = std::fs::File::open(&a.input).map_err(|e| format!("{}: {e}", a.input.display()))?;
    // The file's modification time stamps every record: feeding the same file again from the
    // same offsets replays the same batch, byte for byte.
    let at_ms = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    let name = a.input.file_name().map_or_else(
        || a.input.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let plan = FeedPlan {
        topic: a.topic.clone(),
        partitions: a.partitions,
        batch_size: a.batch_size,
        start_offset: a.start_offset,
        poison: a.poison,
        topics: a.topics.clone(),
        contracts: a.contracts.clone(),
    };
    std::fs::create_dir_all(&a.root).map_err(|e| format!("{}: {e}", a.root.display()))?;
    let notifier = Notifier::new(&a.root, a.slack_webhook.as_deref())?;
    let landed = land(&a.root, &plan, &name, at_ms, Box::new(file))?;
    if a.land_only {
        println!("\nNotifications, {}:", notifier.describe());
        let unsent = notifier.tell(landed);
        return Ok(if unsent > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    println!();
    let url = default_warehouse(&a.root);
    let mut lake = Lake::open(&a.root, None, a.contracts.as_deref(), None, Some(&url))?;
    crate::local::once(&mut lake, &notifier, Some(&url), landed)
}

/// Publishes `input`'s records to the plan's topic (in the lake's offsets) and lands them in
/// batches with the lander; prints what landed and returns the `landed` events.
pub fn land(
    root: &Path,
    plan: &FeedPlan,
    name: &str,
    at_ms: i64,
    input: Box<dyn Read + Send>,
) -> Result<Vec<PipelineEvent>, String> {
    let topics = match &plan.topics {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Topics::from_toml(&text, &path.display().to_string()).map_err(|e| e.to_string())?
        }
        None => Topics::builtin(),
    };
    let lander =
        Lander::new(topics, plan.contracts.as_deref(), RAW_BUCKET).map_err(|e| e.to_string())?;
    let mut offsets = Offsets::read(root)?;
    let start_offsets = match plan.start_offset {
        Some(n) => (0..i64::from(plan.partitions.max(1)))
            .map(|p| (p, n))
            .collect(),
        None => offsets.next(&plan.topic),
    };
    let feed = Feed {
        topic: plan.topic.clone(),
        partitions: plan.partitions,
        start_offsets,
        timestamp_ms: at_ms,
        headers: vec![
            ("producer".into(), b"bondlake feed".to_vec()),
            ("file".into(), name.as_bytes().to_vec()),
        ],
    };
    let mut records =
        records_from_csv(&lander, &feed, input).map_err(|e| format!("{name}: {e}"))?;
    poison(&mut records, plan.poison);
    let raw = LocalStore::new(root.join("raw"));
    let processed = LocalStore::new(root);
    let events = JsonLinesSink::new(events_path(root));
    println!(
        "Kafka: {} records of {name} published to `{}` ({} partitions) and landed by msk-lander in batches of {}:",
        records.len(),
        plan.topic,
        plan.partitions.max(1),
        plan.batch_size.max(1)
    );
    let mut out = Vec::new();
    for batch in records.chunks(plan.batch_size.max(1)) {
        for l in lander
            .land(batch, &raw, &processed, &events)
            .map_err(|e| e.to_string())?
        {
            let e = &l.event;
            let reasons: Vec<String> = e
                .top_reasons
                .iter()
                .map(|r| format!("{} {}", r.reason, r.count))
                .collect();
            println!(
                "  {:<92} {:>5} landed{}",
                l.key.as_deref().unwrap_or("(nothing landed)"),
                e.rows_ok,
                if e.rows_rejected > 0 {
                    format!(
                        ", {} quarantined ({}) in {}",
                        e.rows_rejected,
                        reasons.join(", "),
                        e.quarantine.as_deref().unwrap_or("")
                    )
                } else {
                    String::new()
                }
            );
            out.push(l.event);
        }
    }
    print_totals(records.len() as u64, &out);
    offsets.advance(&plan.topic, &records);
    offsets.write(root)?;
    Ok(out)
}

/// The feed's totals: every record landed, quarantined, or already landed earlier (at or below
/// its partition's high-water mark: a replay).
fn print_totals(records: u64, events: &[PipelineEvent]) {
    let landed: u64 = events.iter().map(|e| e.rows_ok).sum();
    let quarantined: u64 = events.iter().map(|e| e.rows_rejected).sum();
    let earlier = records.saturating_sub(landed + quarantined);
    println!(
        "  {records} records: {landed} landed, {quarantined} quarantined{}, none lost.",
        if earlier > 0 {
            format!(", {earlier} landed before (at or below their partition's mark)")
        } else {
            String::new()
        }
    );
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Records of batches the MSK event source mapping gave up on, as its S3 on-failure
    /// destination keeps them: files, or `s3://bucket/prefix` for every object under a prefix.
    #[arg(required = true, num_args = 1..)]
    failures: Vec<String>,
    /// Land into this local lake (ROOT/raw, ROOT/quarantine/kafka).
    #[arg(long, conflicts_with_all = ["raw", "processed"])]
    root: Option<PathBuf>,
    /// Or into these buckets: the raw bucket...
    #[arg(long, requires = "processed")]
    raw: Option<String>,
    /// ...and the processed bucket (quarantine, the partitions' marks).
    #[arg(long, requires = "raw")]
    processed: Option<String>,
    /// S3-protocol endpoint for `s3://` paths; AWS when absent.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Topic table (TOML, the format of contracts/topics.toml); default: the built-in one.
    #[arg(long)]
    topics: Option<PathBuf>,
    /// Folder of contract files (default: the contracts built into this binary).
    #[arg(long)]
    contracts: Option<PathBuf>,
}

/// Where a replay lands: the raw bucket (its name, for the keys' lineage), the processed one
/// (marks, quarantine), and where the outcomes are told.
struct LandingPlace {
    raw_bucket: String,
    raw: Box<dyn ObjectStore>,
    processed: Box<dyn ObjectStore>,
    events: Box<dyn bondlake_core::events::EventSink>,
}

/// `bondlake kafka-replay`: lands the batches the event source mapping gave up on, each offset
/// once (below the partitions' marks, which stay), then the raw bucket's notifications process
/// them as any landing.
pub fn replay(a: ReplayArgs) -> Result<ExitCode, String> {
    let topics = match &a.topics {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Topics::from_toml(&text, &path.display().to_string()).map_err(|e| e.to_string())?
        }
        None => Topics::builtin(),
    };
    let session = crate::s3::Session::connect_if_needed(
        a.failures
            .iter()
            .chain(a.raw.iter())
            .chain(a.processed.iter())
            .any(|p| p.starts_with("s3://")),
        a.endpoint_url.as_deref(),
    )?;
    let bucket_store = |url: &str| -> Result<Box<dyn ObjectStore>, String> {
        let (bucket, _) =
            crate::s3::split_url(url).ok_or_else(|| format!("`{url}` is not s3://bucket"))?;
        let session = session.as_ref().ok_or("no S3 session")?;
        Ok(Box::new(session.store(bucket)))
    };
    let to = match (&a.root, &a.raw, &a.processed) {
        (Some(root), _, _) => LandingPlace {
            raw_bucket: RAW_BUCKET.to_string(),
            raw: Box::new(LocalStore::new(root.join("raw"))),
            processed: Box::new(LocalStore::new(root)),
            events: Box::new(JsonLinesSink::new(events_path(root))),
        },
        (None, Some(raw), Some(processed)) => LandingPlace {
            raw_bucket: crate::s3::split_url(raw)
                .map(|(b, _)| b.to_string())
                .unwrap_or_default(),
            raw: bucket_store(raw)?,
            processed: bucket_store(processed)?,
            events: Box::new(bondlake_core::events::StdoutSink),
        },
        _ => {
            return Err(
                "say where to land: --root DIR, or --raw s3://... and --processed s3://...".into(),
            );
        }
    };
    let LandingPlace {
        raw_bucket,
        raw,
        processed,
        events,
    } = to;
    let lander =
        Lander::new(topics, a.contracts.as_deref(), &raw_bucket).map_err(|e| e.to_string())?;
    let mut records_in = 0u64;
    let mut all = Vec::new();
    for source in &a.failures {
        let texts: Vec<(String, String)> = match crate::s3::split_url(source) {
            Some((bucket, prefix)) => {
                let session = session.as_ref().ok_or("no S3 session")?;
                let store = session.store(bucket);
                let mut out = Vec::new();
                for key in store.list(prefix).map_err(|e| format!("{source}: {e}"))? {
                    let mut text = String::new();
                    store
                        .open(&key)
                        .and_then(|mut r| r.read_to_string(&mut text))
                        .map_err(|e| format!("{}: {e}", store.locate(&key)))?;
                    out.push((store.locate(&key), text));
                }
                out
            }
            None => vec![(
                source.clone(),
                std::fs::read_to_string(source).map_err(|e| format!("{source}: {e}"))?,
            )],
        };
        for (name, text) in texts {
            let records = bondlake_lambda::kafka_failure_records(&text)
                .map_err(|e| format!("{name}: {e}"))?;
            records_in += records.len() as u64;
            let landed = lander
                .replay(&records, raw.as_ref(), processed.as_ref(), events.as_ref())
                .map_err(|e| format!("{name}: {e}"))?;
            for l in &landed {
                println!(
                    "  {name}: {} records to {}",
                    l.event.rows_read,
                    l.key
                        .as_deref()
                        .or(l.quarantine_key.as_deref())
                        .unwrap_or("")
                );
            }
            all.extend(landed.into_iter().map(|l| l.event));
        }
    }
    print_totals(records_in, &all);
    Ok(ExitCode::SUCCESS)
}

/// Spoils `n` records, spread over the batch: alternately bytes that are not UTF-8 and a line
/// with too few fields.
fn poison(records: &mut [KafkaRecord], n: usize) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let step = records.len() / (n + 1);
    for i in 1..=n.min(records.len()) {
        let r = &mut records[(i * step).min(records.len() - 1)];
        let spoiled: Vec<u8> = if i % 2 == 1 {
            let mut v = r
                .value
                .as_deref()
                .and_then(|v| b64.decode(v).ok())
                .unwrap_or_default();
            v.extend_from_slice(&[0xff, 0xfe]);
            v
        } else {
            b"2026-11-25,INV-TRUNCATED,bank".to_vec()
        };
        r.value = Some(b64.encode(spoiled));
    }
}

/// The next offset per topic and partition, kept in ROOT/kafka/offsets.json.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Offsets(BTreeMap<String, BTreeMap<i64, i64>>);

impl Offsets {
    fn path(root: &Path) -> PathBuf {
        root.join("kafka").join("offsets.json")
    }

    fn read(root: &Path) -> Result<Offsets, String> {
        let path = Offsets::path(root);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Offsets::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    fn next(&self, topic: &str) -> BTreeMap<i64, i64> {
        self.0.get(topic).cloned().unwrap_or_default()
    }

    fn advance(&mut self, topic: &str, records: &[KafkaRecord]) {
        let t = self.0.entry(topic.to_string()).or_default();
        for r in records {
            let next = t.entry(r.partition).or_insert(0);
            *next = (*next).max(r.offset + 1);
        }
    }

    fn write(&self, root: &Path) -> Result<(), String> {
        let path = Offsets::path(root);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))
    }
}
