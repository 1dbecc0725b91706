//! `bondlake weekly`: the weekly job over a local lake ([`bondlake_core::weekly`]), then the
//! export: the trends manifest loaded into MySQL when one is named (the data scientists'), else
//! into the lake's embedded warehouse; the team told, as the weekly chain tells it in AWS.

use crate::local::{PROCESSED_BUCKET, default_warehouse, events_path};
use crate::notify::Notifier;
use crate::warehouse::{AnyWarehouse, loader};
use bondlake_core::events::{EventSink, JsonLinesSink, PipelineEvent};
use bondlake_core::output::OutputOptions;
use bondlake_core::parse::format_date;
use bondlake_core::store::{LocalStore, ObjectStore};
use bondlake_core::warehouse::{Loader, ResultSet, load_and_report};
use bondlake_core::weekly;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct WeeklyArgs {
    /// The local lake (its processed weekly_series data is read; the trends are written beside).
    #[arg(long, default_value = "bondlake-lake")]
    root: PathBuf,
    /// Export the trends into this MySQL (mysql://user:password@host:port/database); default:
    /// the lake's embedded warehouse.
    #[arg(long, env = "BONDLAKE_MYSQL", hide_env_values = true)]
    mysql: Option<String>,
    /// Folder of contract files (default: the contracts built into this binary).
    #[arg(long)]
    contracts: Option<PathBuf>,
    /// Also post the notice to this Slack incoming webhook (it is always printed).
    #[arg(long, env = "BONDLAKE_SLACK_WEBHOOK", hide_env_values = true)]
    slack_webhook: Option<String>,
}

/// What the job and its export did.
pub struct Exported {
    /// The job's run.
    pub ran: weekly::Ran,
    /// The `processed` and `loaded` (or `load_failed`) events, as published.
    pub events: Vec<PipelineEvent>,
    /// Where the trends went.
    pub target: String,
    /// The latest week's trends, as the data scientists see them in the target.
    pub preview: Option<ResultSet>,
}

/// Runs the job over the lake at `root` and exports its manifest into `mysql`, or the lake's
/// embedded warehouse. The events go to the lake's topic file.
pub fn run_and_export(
    root: &Path,
    mysql: Option<&str>,
    contracts: Option<&Path>,
) -> Result<Exported, String> {
    let contract = bondlake_core::contract::load_dataset(weekly::TRENDS, contracts)
        .map_err(|e| e.to_string())?;
    let store = LocalStore::new(root);
    let ran = weekly::run(
        &store,
        PROCESSED_BUCKET,
        &contract,
        OutputOptions::default(),
    )
    .map_err(|e| format!("weekly: {e}"))?;
    let Some((key, manifest)) = &ran.manifest else {
        return Ok(Exported {
            ran,
            events: Vec::new(),
            target: String::new(),
            preview: None,
        });
    };
    let topic = JsonLinesSink::new(events_path(root));
    let mut processed =
        PipelineEvent::from_manifest("weekly", manifest, key, &store as &dyn ObjectStore);
    processed.output_prefix = Some(store.locate(&format!("processed/{}/", weekly::TRENDS)));
    let (mut loader, target): (Loader<AnyWarehouse>, String) = match mysql {
        Some(url) => {
            let l = loader(url, "bondlake", contracts)?;
            let db = l.schema().name().to_string();
            (l, format!("{db}.{} in MySQL", weekly::TRENDS))
        }
        None => (
            loader(&default_warehouse(root), "bondlake", contracts)?,
            format!("bondlake.{} in the embedded warehouse", weekly::TRENDS),
        ),
    };
    let loaded = load_and_report(&mut loader, &store, key).map_err(|e| e.to_string())?;
    for e in [&processed, &loaded] {
        topic.publish(e).map_err(|e| e.to_string())?;
    }
    let table = format!("\"{}\".\"{}\"", loader.schema().name(), weekly::TRENDS);
    let preview = loader
        .warehouse()
        .query_table(&format!(
            "SELECT source, dataset_code, series, week_ending, value, wow_change, wow_pct, ma_4w, ma_13w, \
             ROUND(zscore_13w, 4) AS zscore_13w FROM {table} \
             WHERE week_ending = (SELECT MAX(week_ending) FROM {table}) ORDER BY 1, 2, 3 LIMIT 9"
        ))
        .ok();
    Ok(Exported {
        ran,
        events: vec![processed, loaded],
        target,
        preview,
    })
}

/// The demo's weekly chain: the job over the demo's lake, the export, the preview, the notice.
pub fn demo_step(
    root: &Path,
    mysql: Option<&str>,
    notifier: &Notifier,
) -> Result<ExitCode, String> {
    println!("\nThe weekly chain: trends over each series' history, then the export");
    let done = run_and_export(root, mysql, None)?;
    let code = report(&done, root);
    if let Some(preview) = &done.preview {
        println!(
            "\nWeekly trends as the data scientists see them: {}, the latest week",
            done.target
        );
        print!("{}", crate::warehouse::render_table(preview));
    }
    println!("\nNotifications, {}:", notifier.describe());
    notifier.tell(done.events.clone());
    Ok(code)
}

/// Prints what the job and the export did; the exit code a failed export gives.
fn report(done: &Exported, root: &Path) -> ExitCode {
    let Some((key, manifest)) = &done.ran.manifest else {
        println!(
            "weekly: no processed weekly_series data under {}: nothing to compute",
            root.display()
        );
        return ExitCode::SUCCESS;
    };
    let weeks = &done.ran.weeks;
    let span = match (weeks.first(), weeks.last()) {
        (Some(a), Some(b)) if a != b => format!(" ({} to {})", format_date(*a), format_date(*b)),
        (Some(a), _) => format!(" ({})", format_date(*a)),
        _ => String::new(),
    };
    println!(
        "weekly: {} series, {} rows of history, {} weeks rebuilt{span}, {} rows written; manifest {}",
        done.ran.series,
        manifest.rows_ok,
        weeks.len(),
        manifest.rows_written,
        LocalStore::new(root).locate(key)
    );
    let loaded = done.events.last();
    match loaded.and_then(|e| e.load()) {
        Some(load) => {
            println!(
                "export: {} into {}: {} rows, reconciled",
                load.outcome.replace('_', " "),
                done.target,
                load.rows
            );
            ExitCode::SUCCESS
        }
        None => {
            println!(
                "export: failed into {}: {}",
                done.target,
                loaded.and_then(|e| e.error.as_deref()).unwrap_or("unknown")
            );
            ExitCode::from(2)
        }
    }
}

/// `bondlake weekly`.
pub fn run(a: WeeklyArgs) -> Result<ExitCode, String> {
    let mysql = a.mysql.as_deref().filter(|u| !u.is_empty());
    let done = run_and_export(&a.root, mysql, a.contracts.as_deref())?;
    let code = report(&done, &a.root);
    if done.events.is_empty() {
        return Ok(code);
    }
    let notifier = Notifier::new(&a.root, a.slack_webhook.as_deref())?;
    println!("\nNotifications, {}:", notifier.describe());
    notifier.tell(done.events.clone());
    Ok(code)
}
