//! `bondlake demo`: one business day of generated vendor files and a Kafka topic's records,
//! through the same chain as `bondlake run --once`, then the weekly chain: twenty weeks of three
//! vendors' series made into trends and exported (into MySQL when one is named).

use super::{Lake, WAREHOUSE_FILE, default_warehouse, once};
use crate::notify::{Notifier, SlackStandIn};
use bondlake_core::store::{LocalStore, ObjectStore};
use bondlake_testkit::synth;
use std::path::Path;
use std::process::ExitCode;

/// Files over this many MiB are handed off to the EMR launcher (only the holdings file is).
const DEMO_HANDOFF_MB: u64 = 1;

/// Weeks of history in each vendor's weekly file, and the last of them: Friday 2026-11-20, the
/// week before the demo's business day.
const DEMO_WEEKS: u32 = 20;
const DEMO_LAST_FRIDAY: (i32, u32, u32) = (2026, 11, 20);

/// Records of the demo's Kafka feed: a holdings file published to `investor-holdings`.
const DEMO_FEED_ROWS: u64 = 300;
/// Their timestamp: the demo's business day, 2026-11-25 21:00 UTC (the same feed lands the same
/// objects every time).
const DEMO_FEED_AT_MS: i64 = 1_795_640_400_000;

pub fn demo(
    root: &Path,
    dirty: f64,
    seed: u64,
    webhook: Option<&str>,
    mysql: Option<&str>,
) -> Result<ExitCode, String> {
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
    // The weekly vendors' files: twenty weeks of each one's series, for the weekly chain.
    let (y, m, d) = DEMO_LAST_FRIDAY;
    let last_friday = bondlake_core::parse::days_from_civil(y, m, d).ok_or("demo: no such day")?;
    for (k, vendor) in synth::weekly::VENDORS.iter().enumerate() {
        let key = vendor.key(last_friday);
        let mut w = raw
            .create(&key)
            .map_err(|e| format!("{}: {e}", raw.locate(&key)))?;
        synth::weekly::history(
            vendor,
            last_friday,
            DEMO_WEEKS,
            seed + 200 + k as u64,
            &mut w,
        )
        .map_err(|e| e.to_string())?;
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
    // A threshold small enough that the day's largest file, the custodian's holdings, goes to
    // emr-launcher as a file too big for Lambda would: its local backend runs the step here.
    let mut lake = Lake::open(root, None, None, Some(DEMO_HANDOFF_MB), Some(&url))?;
    let code = once(&mut lake, &notifier, Some(&url), landed)?;
    drop(lake);
    let weekly = crate::weekly::demo_step(root, mysql, &notifier)?;
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
    Ok(if weekly == ExitCode::SUCCESS {
        code
    } else {
        weekly
    })
}

/// Empties the folders a previous demo wrote; refuses a non-empty folder that is not one.
fn fresh_root(root: &Path) -> Result<bool, String> {
    const OURS: [&str; 13] = [
        "raw",
        "kafka",
        "notifications",
        "processed",
        "quarantine",
        "manifests",
        "handoffs",
        "launches",
        "events",
        "loads",
        "state",
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
