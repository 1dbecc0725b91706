//! Local notifications: what the notifier Lambda would tell the team, printed on the console and,
//! when a webhook is configured (`--slack-webhook` or `BONDLAKE_SLACK_WEBHOOK`), posted to Slack.
//! The same [`deliver`] as the Lambda: duplicates dropped (sent log in ROOT/notifications),
//! failures alone, routine outcomes as one digest per poll.

use bondlake_core::events::PipelineEvent;
use bondlake_core::notify::{Console, Digest, Notice, SentLog, SlackOutlet, deliver};
use bondlake_core::store::LocalStore;
use bondlake_slack::{BlockingSlack, Retry, Slack, WebhookUrl};
use std::path::Path;
use std::sync::Arc;

/// The local notifier of one lake.
pub struct Notifier {
    log: SentLog,
    slack: Option<BlockingSlack>,
    /// Keeps the runtime the webhook's requests run on.
    _runtime: Option<tokio::runtime::Runtime>,
}

impl Notifier {
    /// A notifier for the lake at `root`, posting to `webhook` when given.
    pub fn new(root: &Path, webhook: Option<&str>) -> Result<Notifier, String> {
        let log = SentLog::new(Arc::new(LocalStore::new(root)));
        let Some(url) = webhook.filter(|w| !w.trim().is_empty()) else {
            return Ok(Notifier {
                log,
                slack: None,
                _runtime: None,
            });
        };
        let url = WebhookUrl::parse(url).map_err(|e| format!("BONDLAKE_SLACK_WEBHOOK: {e}"))?;
        let runtime = runtime()?;
        let slack = Slack::new(url, Retry::default()).map_err(|e| e.to_string())?;
        Ok(Notifier {
            log,
            slack: Some(BlockingSlack {
                slack,
                handle: runtime.handle().clone(),
                deadline: None,
            }),
            _runtime: Some(runtime),
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
        let notices = events
            .into_iter()
            .map(|e| Notice::Event(Box::new(e)))
            .collect();
        let slack = self.slack.as_ref().map(|s| s as &dyn SlackOutlet);
        match deliver(notices, &self.log, Digest::default(), slack, &Console) {
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
