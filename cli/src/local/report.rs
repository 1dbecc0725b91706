//! What a look prints: one line per file, the summary, and the views' headline rows.

use super::{Handled, Lake, WAREHOUSE_FILE, events_path};
use bondlake_core::events::EventKind;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Default)]
pub(super) struct Table {
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
    pub(super) fn print_header(&mut self) {
        self.started = Some(Instant::now());
        println!(
            "{:<48} {:<18} {:>8} {:>8} {:>8}  {:<24} top reasons",
            "raw object", "dataset/profile", "read", "ok", "rejected", "outcome"
        );
    }

    pub(super) fn add(&mut self, h: &Handled) {
        let Some(e) = &h.event else {
            if let Some(error) = &h.error {
                self.errors += 1;
                println!("{:<48} error: {error}", h.key);
            }
            return;
        };
        let via = h.emr.iter().find_map(|e| e.handoff()).map(|handoff| {
            self.handed_off += 1;
            format!(" on EMR ({})", handoff.reason)
        });
        let outcome = match (e.kind(), e.status) {
            (EventKind::Processed, Some(s)) => {
                format!(
                    "{}{}",
                    format!("{s:?}").to_lowercase(),
                    via.unwrap_or_default()
                )
            }
            // Handed off, and the launcher failed: the error follows.
            (EventKind::Handoff, _) => {
                self.failed += 1;
                format!(
                    "handoff ({}) not run",
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

    pub(super) fn print_summary(&self, root: &Path) {
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
        if self.handed_off > 0 {
            println!(
                "{} handed off to EMR (the local backend ran the step here, then loaded it like the others).",
                self.handed_off
            );
        }
        if self.failed + self.errors > 0 {
            println!(
                "{} files failed, {} errors (see above).",
                self.failed, self.errors
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

    pub(super) fn exit_code(&self) -> ExitCode {
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
pub(super) fn print_headlines(lake: &mut Lake, url: Option<&str>) {
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
