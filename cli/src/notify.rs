//! Local notifications: what the notifier Lambda would tell the team, printed on the console and,
//! when a webhook is configured (`--slack-webhook` or `BONDLAKE_SLACK_WEBHOOK`), posted to Slack.
//! The same [`deliver`] as the Lambda: duplicates dropped (sent log in ROOT/notifications),
//! failures alone, routine outcomes as one digest per poll.

use bondlake::events::PipelineEvent;
use bondlake::notify::slack::{BlockingSlack, Retry, Slack, WebhookUrl};
use bondlake::notify::{Console, Digest, Notice, SentLog, SlackOutlet, deliver};
use bondlake::store::LocalStore;
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
        // Multi-threaded: a Handle blocks on it from this thread while a worker drives the I/O.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let slack = Slack::new(url, Retry::default()).map_err(|e| e.to_string())?;
        Ok(Notifier {
            log,
            slack: Some(BlockingSlack {
                slack,
                handle: runtime.handle().clone(),
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

/// `bondlake webhook-receiver`: prints each post's fallback text and block count until stopped.
pub fn receive(listen: &str) -> Result<std::process::ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let receiver = bondlake::webhook_server::WebhookReceiver::start(
        listen,
        "/services/local/bondlake",
        runtime.handle(),
    )
    .map_err(|e| format!("{listen}: {e}"))?;
    println!(
        "bondlake webhook-receiver: posting to {0} shows here; try\n  BONDLAKE_SLACK_WEBHOOK={0} bondlake demo",
        receiver.url()
    );
    let mut shown = 0;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let received = receiver.received();
        for r in &received[shown..] {
            let payload: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            println!(
                "received: {} ({} blocks)",
                payload["text"].as_str().unwrap_or("(no text)"),
                payload["blocks"].as_array().map_or(0, Vec::len)
            );
        }
        shown = received.len();
    }
}
