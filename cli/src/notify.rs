//! Local notifications: what the notifier Lambda would tell the team, printed on the console and,
//! when a webhook is configured (`--slack-webhook` or `BONDLAKE_SLACK_WEBHOOK`), posted to Slack.
//! The notifier's own handler tells them, from the SQS messages its queue would hold: duplicates
//! dropped (sent log in ROOT/notifications), failures alone, routine outcomes as one digest per
//! poll.

use crate::topology;
use bondlake_core::events::PipelineEvent;
use bondlake_core::notify::{Console, SentLog, SlackOutlet};
use bondlake_core::store::LocalStore;
use bondlake_slack::{BlockingSlack, Retry, Slack, WebhookUrl};
use std::path::Path;
use std::sync::Arc;

/// The local notifier of one lake.
pub struct Notifier {
    state: notifier::handler::State,
    slack: Option<BlockingSlack>,
    /// Keeps the runtime the webhook's requests run on.
    _runtime: tokio::runtime::Runtime,
}

impl Notifier {
    /// A notifier for the lake at `root`, posting to `webhook` when given.
    pub fn new(root: &Path, webhook: Option<&str>) -> Result<Notifier, String> {
        let runtime = runtime()?;
        let state = notifier::handler::State::new(
            notifier::handler::Settings::local(crate::local::PROCESSED_BUCKET),
            SentLog::new(Arc::new(LocalStore::new(root))),
            None,
            Arc::new(Console),
            runtime.handle().clone(),
        );
        let slack = match webhook.filter(|w| !w.trim().is_empty()) {
            None => None,
            Some(url) => {
                let url =
                    WebhookUrl::parse(url).map_err(|e| format!("BONDLAKE_SLACK_WEBHOOK: {e}"))?;
                let slack = Slack::new(url, Retry::default()).map_err(|e| e.to_string())?;
                Some(BlockingSlack {
                    slack,
                    handle: runtime.handle().clone(),
                    deadline: None,
                })
            }
        };
        Ok(Notifier {
            state,
            slack,
            _runtime: runtime,
        })
    }

    /// Where messages go, for the run's banner.
    pub fn describe(&self) -> String {
        match &self.slack {
            Some(s) => format!("to the console and the Slack webhook at {}", s.slack.host()),
            None => "to the console; set BONDLAKE_SLACK_WEBHOOK to post them to Slack too".into(),
        }
    }

    /// Tells the team about one poll's events; returns how many messages could not be sent.
    pub fn tell(&self, events: Vec<PipelineEvent>) -> usize {
        if events.is_empty() {
            return 0;
        }
        let slack = self.slack.as_ref().map(|s| s as &dyn SlackOutlet);
        // What the notify queue would hold: each event in SNS's envelope, as one batch.
        let told = topology::notify_queue(&events)
            .map_err(|e| e.to_string())
            .and_then(|delivery| {
                let (_, delivered) = notifier::handler::notices(delivery);
                notifier::handler::notify(&self.state, delivered, slack)
                    .map_err(|e| e.0.to_string())
            });
        match told {
            Ok(d) => {
                for (m, why, _) in &d.failed {
                    eprintln!("bondlake: notification `{}` not sent: {why}", m.title);
                }
                if let Some(s) = &self.slack {
                    let posted = d.sent.len();
                    if posted > 0 {
                        println!(
                            "notify: {posted} message{} posted to the Slack webhook at {}",
                            if posted == 1 { "" } else { "s" },
                            s.slack.host()
                        );
                    }
                }
                d.failed.len()
            }
            Err(e) => {
                eprintln!("bondlake: notifications: {e}");
                1
            }
        }
    }
}

/// A runtime for the webhook's client or the stand-in server. Multi-threaded: a `Handle` blocks
/// on it from this thread while its worker drives the I/O.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// A stand-in Slack channel in this process (`bondlake_testkit::webhook_server`).
pub struct SlackStandIn {
    receiver: bondlake_testkit::webhook_server::WebhookReceiver,
    _runtime: tokio::runtime::Runtime,
}

impl SlackStandIn {
    /// Listens on `addr`; posts go to the URL with `path`.
    pub fn start(addr: &str, path: &str) -> Result<SlackStandIn, String> {
        let runtime = runtime()?;
        let receiver =
            bondlake_testkit::webhook_server::WebhookReceiver::start(addr, path, runtime.handle())
                .map_err(|e| format!("Slack stand-in on {addr}: {e}"))?;
        Ok(SlackStandIn {
            receiver,
            _runtime: runtime,
        })
    }

    /// The URL to post to.
    pub fn url(&self) -> &str {
        self.receiver.url()
    }

    /// Each post so far as a channel would show it: its text and how many Block Kit blocks.
    pub fn posts(&self) -> Vec<String> {
        self.receiver
            .received()
            .iter()
            .map(|r| {
                let payload: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
                format!(
                    "{} ({} Block Kit blocks)",
                    payload["text"].as_str().unwrap_or("(no text)"),
                    payload["blocks"].as_array().map_or(0, Vec::len)
                )
            })
            .collect()
    }
}

/// `bondlake webhook-receiver`: prints each post's text and block count until stopped.
pub fn receive(listen: &str) -> Result<std::process::ExitCode, String> {
    let standin = SlackStandIn::start(listen, "/services/local/bondlake")?;
    println!(
        "bondlake webhook-receiver: posting to {0} shows here; try\n  BONDLAKE_SLACK_WEBHOOK={0} bondlake demo",
        standin.url()
    );
    let mut shown = 0;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let posts = standin.posts();
        for post in &posts[shown..] {
            println!("received: {post}");
        }
        shown = posts.len();
    }
}
