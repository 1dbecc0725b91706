//! The invocation: the messages of an SQS batch (each an SNS envelope from `pipeline-events`) or
//! of a direct SNS delivery become notices, and [`deliver`] tells the team on a blocking thread.
//! An SQS message whose notice could not be sent goes back to the queue; one already sent, a
//! duplicate, or one that cannot be read (reported instead) is done.

use bondlake_core::failure::HandleError;
use bondlake_core::notify::{
    Delivery, Digest, Message, Notice, SentLog, SlackOutlet, TextOutlet, deliver,
};
use bondlake_core::vars::Vars;
use bondlake_lambda::{FunctionError, TopicDelivery};
use bondlake_slack::secrets::{CachedWebhook, SecretError, SecretSource};
use bondlake_slack::{BlockingSlack, Retry, Slack, WebhookUrl};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

/// The function's configuration, from its environment (README, "notifier").
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bucket the sent log lives in (`notifications/sent/`).
    pub processed_bucket: String,
    /// Where the Slack webhook URL is kept; no Slack when absent.
    pub webhook: Option<SecretSource>,
    /// How long the URL is cached before it is read again.
    pub webhook_cache: Duration,
    /// The topic e-mail subscribers are on; no e-mail when absent.
    pub email_topic_arn: Option<String>,
    /// When routine outcomes become one digest.
    pub digest: Digest,
    /// How posts are retried.
    pub retry: Retry,
}

impl Settings {
    /// The settings of a local run (`bondlake run`): the sent log in the folder standing in for
    /// `processed_bucket`, Slack and the console as the outlets the caller passes.
    pub fn local(processed_bucket: &str) -> Self {
        Settings {
            processed_bucket: processed_bucket.to_string(),
            webhook: None,
            webhook_cache: Duration::ZERO,
            email_topic_arn: None,
            digest: Digest::default(),
            retry: Retry::default(),
        }
    }

    /// Reads the settings through `var` (the environment); every error names the variable.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, HandleError> {
        let vars = Vars::new(var);
        let some = |name: &str| vars.get(name);
        let number =
            |name: &str, default: u64| vars.number(name, default).map_err(HandleError::Config);
        let webhook = match (
            some("SLACK_WEBHOOK_SECRET_ARN"),
            some("SLACK_WEBHOOK_PARAMETER"),
        ) {
            (Some(_), Some(_)) => {
                return Err(HandleError::Config(
                    "set SLACK_WEBHOOK_SECRET_ARN or SLACK_WEBHOOK_PARAMETER, not both".into(),
                ));
            }
            (Some(arn), None) => Some(SecretSource::SecretsManager(arn)),
            (None, Some(name)) => Some(SecretSource::Parameter(name)),
            (None, None) => None,
        };
        let email_topic_arn = some("NOTIFICATIONS_TOPIC_ARN");
        if webhook.is_none() && email_topic_arn.is_none() {
            return Err(HandleError::Config(
                "nowhere to notify: set SLACK_WEBHOOK_SECRET_ARN (or SLACK_WEBHOOK_PARAMETER) and/or NOTIFICATIONS_TOPIC_ARN".into(),
            ));
        }
        let retry = Retry {
            attempts: number("SLACK_MAX_ATTEMPTS", 5)?.clamp(1, 20) as u32,
            max_wait: Duration::from_secs(number("SLACK_MAX_WAIT_SECONDS", 30)?),
            ..Retry::default()
        };
        Ok(Settings {
            processed_bucket: vars
                .required("PROCESSED_BUCKET")
                .map_err(HandleError::Config)?,
            webhook,
            webhook_cache: Duration::from_secs(number("WEBHOOK_CACHE_SECONDS", 900)?),
            email_topic_arn,
            digest: Digest {
                after: number("DIGEST_AFTER", 3)?.max(1) as usize,
            },
            retry,
        })
    }
}

/// No e-mail configured: the plain text is not sent anywhere (Slack has the message).
#[derive(Debug)]
pub struct NoText;

impl TextOutlet for NoText {
    fn send(&self, _: &Message) -> io::Result<()> {
        Ok(())
    }

    fn has_listeners(&self) -> io::Result<bool> {
        Ok(false)
    }
}

/// Kept back from the invocation's deadline to mark what was sent and answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// What every invocation shares.
pub struct State {
    settings: Settings,
    log: SentLog,
    webhook: Option<CachedWebhook>,
    /// The client for the current URL (rebuilt when a rotated secret gives a new one).
    slack: tokio::sync::Mutex<Option<(WebhookUrl, Slack)>>,
    text: Arc<dyn TextOutlet>,
    handle: Handle,
}

impl State {
    pub fn new(
        settings: Settings,
        log: SentLog,
        webhook: Option<CachedWebhook>,
        text: Arc<dyn TextOutlet>,
        handle: Handle,
    ) -> Self {
        State {
            settings,
            log,
            webhook,
            slack: tokio::sync::Mutex::new(None),
            text,
            handle,
        }
    }

    /// A client for the webhook's current URL, when Slack is configured; no post or retry
    /// outlasts `deadline`.
    async fn slack(
        &self,
        deadline: Option<std::time::Instant>,
    ) -> Result<Option<BlockingSlack>, HandleError> {
        let Some(webhook) = &self.webhook else {
            return Ok(None);
        };
        let url = match webhook.get().await {
            Ok(url) => url,
            // Not set yet (the template's placeholder) or mistyped: say so loudly on every
            // invocation, and still send the e-mail form rather than hold every message back.
            Err(e @ SecretError::Unusable { .. }) => {
                tracing::error!(error = %e, "Slack is off until the webhook secret holds a URL");
                return Ok(None);
            }
            Err(e) => return Err(HandleError::Retryable(e.to_string())),
        };
        let mut current = self.slack.lock().await;
        if current.as_ref().is_none_or(|(u, _)| *u != url) {
            let client = Slack::new(url.clone(), self.settings.retry)
                .map_err(|e| HandleError::Config(e.to_string()))?;
            *current = Some((url, client));
        }
        Ok(current.as_ref().map(|(_, slack)| BlockingSlack {
            slack: slack.clone(),
            handle: self.handle.clone(),
            deadline,
        }))
    }
}

/// One delivery from the topic: its id (the SQS message, or the SNS message), and its body.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub id: String,
    pub notice: Notice,
}

/// Whether the invocation came from SQS (partial batch responses) or SNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Sqs,
    Sns,
}

/// The notices an invocation carries.
pub fn incoming(payload: &Value) -> Result<(Via, Vec<Delivered>), HandleError> {
    Ok(notices(bondlake_lambda::topic_messages(payload.clone())?))
}

/// The notices of the topic's messages, each with the delivery to answer for.
pub fn notices(delivery: TopicDelivery) -> (Via, Vec<Delivered>) {
    let (via, messages) = match delivery {
        TopicDelivery::Sqs(messages) => (Via::Sqs, messages),
        TopicDelivery::Sns(messages) => (Via::Sns, messages),
    };
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        out.extend(
            Notice::read_all(&m.message, &m.message_id)
                .into_iter()
                .map(|notice| Delivered {
                    id: m.delivery_id.clone(),
                    notice,
                }),
        );
    }
    (via, out)
}

/// The Lambda handler.
pub async fn handle(
    state: Arc<State>,
    event: LambdaEvent<TopicDelivery>,
) -> Result<Value, FunctionError> {
    tracing::info!(request_id = %event.context.request_id, "invocation");
    let (via, delivered) = notices(event.payload);
    // Time to mark what was sent and answer: what is not posted by then goes back to the queue.
    let deadline = bondlake_lambda::deadline_instant(event.context.deadline)
        .map(|d| d.checked_sub(DEADLINE_MARGIN).unwrap_or(d));
    let slack = state.slack(deadline).await.map_err(FunctionError)?;
    tokio::task::spawn_blocking(move || {
        run(
            &state,
            via,
            delivered,
            slack.as_ref().map(|s| s as &dyn SlackOutlet),
        )
    })
    .await
    .map_err(|e| FunctionError(HandleError::Retryable(format!("worker thread: {e}"))))?
}

/// Tells the notices (duplicates dropped, failures alone, routine outcomes as digests) and says
/// what was sent and what was not.
pub fn notify(
    state: &State,
    delivered: Vec<Delivered>,
    slack: Option<&dyn SlackOutlet>,
) -> Result<Delivery, FunctionError> {
    let notices = delivered.into_iter().map(|d| d.notice).collect();
    let delivery = deliver(
        notices,
        &state.log,
        state.settings.digest,
        slack,
        state.text.as_ref(),
    )
    .map_err(|e| FunctionError(HandleError::Retryable(format!("sent log: {e}"))))?;
    tracing::info!(
        sent = delivery.sent.len(),
        failed = delivery.failed.len(),
        duplicates = delivery.duplicates,
        "notified"
    );
    Ok(delivery)
}

/// Delivers the notices; the SQS response names the messages to retry.
pub fn run(
    state: &State,
    via: Via,
    delivered: Vec<Delivered>,
    slack: Option<&dyn SlackOutlet>,
) -> Result<Value, FunctionError> {
    let owners: Vec<(String, String)> = delivered
        .iter()
        .map(|d| (d.notice.id(), d.id.clone()))
        .collect();
    // A deployment is never silently mute: with no Slack URL and nobody subscribed to the
    // e-mail topic, fail the invocation (the errors alarm, then the dead-letter queue) and mark
    // nothing sent, so that everything is told once an outlet is set and the queue redriven.
    if slack.is_none() {
        let listening = state
            .text
            .has_listeners()
            .map_err(|e| FunctionError(HandleError::Retryable(format!("e-mail outlet: {e}"))))?;
        if !listening {
            return Err(FunctionError(HandleError::Config(
                "nobody would be told: the Slack webhook secret holds no URL and the notifications topic has no confirmed subscription; put the webhook's URL in the secret or subscribe an address, then redrive the notifier's dead-letter queue".into(),
            )));
        }
    }
    let delivery = notify(state, delivered, slack)?;
    let unsent: HashSet<&str> = delivery
        .failed
        .iter()
        .flat_map(|(m, _, _)| m.ids.iter().map(String::as_str))
        .collect();
    let retry: Vec<&str> = owners
        .iter()
        .filter(|(notice, _)| unsent.contains(notice.as_str()))
        .map(|(_, message)| message.as_str())
        .collect();
    match via {
        Via::Sqs => Ok(json!({
            "batchItemFailures": retry.iter().map(|id| json!({"itemIdentifier": id})).collect::<Vec<_>>()
        })),
        Via::Sns if retry.is_empty() => Ok(json!({"sent": delivery.sent.len()})),
        Via::Sns => Err(FunctionError(HandleError::Retryable(format!(
            "{} notifications not sent: {}",
            delivery.failed.len(),
            delivery
                .failed
                .first()
                .map_or("", |(_, why, _)| why.as_str())
        )))),
    }
}

#[cfg(test)]
mod tests {
    //! The notifier against a real HTTP server on 127.0.0.1 that records what it receives and can
    //! answer 429 with `Retry-After`, or 500.

    use super::*;
    use bondlake_core::store::LocalStore;
    use bondlake_testkit::webhook_server::{Answer, WebhookReceiver};
    use std::sync::Mutex;
    use std::time::Instant;

    const SECRET_PATH: &str = "/services/T0BONDLAKE/B0NOTIFY/s3cr3tW3bh00kT0k3n";

    /// Records each plain-text message (the e-mail form).
    #[derive(Default)]
    struct Mailbox(Mutex<Vec<Message>>);

    impl TextOutlet for Mailbox {
        fn send(&self, m: &Message) -> io::Result<()> {
            self.0.lock().expect("lock").push(m.clone());
            Ok(())
        }
    }

    struct Harness {
        _dir: tempfile::TempDir,
        runtime: tokio::runtime::Runtime,
        receiver: WebhookReceiver,
        state: State,
        mail: Arc<Mailbox>,
    }

    fn harness() -> Harness {
        let dir = tempfile::tempdir().expect("tmp");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let receiver =
            WebhookReceiver::start("127.0.0.1:0", SECRET_PATH, runtime.handle()).expect("server");
        // The settings `sam local invoke --env-vars events/env.json` gives the function.
        let env = bondlake_core::vars::sam_env_vars(
            include_str!("../../../events/env.json"),
            "NotifierFunction",
        )
        .expect("env.json");
        let settings = Settings::from_vars(&|name| env.get(name).cloned()).expect("settings");
        let mail = Arc::new(Mailbox::default());
        let state = State::new(
            Settings {
                retry: Retry {
                    attempts: 4,
                    base: Duration::from_millis(50),
                    max_wait: Duration::from_secs(3),
                    spacing: Duration::from_millis(200),
                },
                ..settings
            },
            SentLog::new(Arc::new(LocalStore::new(dir.path()))),
            None,
            mail.clone(),
            runtime.handle().clone(),
        );
        Harness {
            _dir: dir,
            runtime,
            receiver,
            state,
            mail,
        }
    }

    impl Harness {
        fn slack(&self) -> BlockingSlack {
            BlockingSlack {
                slack: Slack::new(
                    WebhookUrl::parse(self.receiver.url()).expect("url"),
                    self.state.settings.retry,
                )
                .expect("client"),
                handle: self.runtime.handle().clone(),
                deadline: None,
            }
        }

        fn run(&self, payload: &str) -> Value {
            let (via, delivered) =
                incoming(&serde_json::from_str(payload).expect("json")).expect("incoming");
            let slack = self.slack();
            run(&self.state, via, delivered, Some(&slack)).expect("ran")
        }

        fn posts(&self) -> Vec<Value> {
            self.receiver
                .received()
                .iter()
                .filter(|r| r.status == 200)
                .map(|r| serde_json::from_str(&r.body).expect("JSON body"))
                .collect()
        }
    }

    const BATCH: &str = include_str!("../../../events/sqs-notifications.json");

    fn one_event(kind: &str, key: &str) -> String {
        let event = json!({
            "event_version": 1, "kind": kind, "stage": "csv-processor",
            "at": "2026-11-25T22:00:00Z", "dataset": "market_daily",
            "source": {"bucket": "raw", "key": key, "etag": "e", "bytes": 1},
            "rows_read": 10, "rows_ok": 10, "rows_rejected": 0, "top_reasons": [], "duration_ms": 5,
            "status": if kind == "failed" { "failed" } else { "ok" },
            "error": "market/NYSE/x.csv: not gzip and not CSV",
        });
        json!({"Records": [{
            "messageId": "m-1", "eventSource": "aws:sqs",
            "body": json!({"Type": "Notification", "MessageId": "sns-1", "Message": event.to_string()}).to_string(),
        }]})
        .to_string()
    }

    #[test]
    fn the_sample_batch_posts_failures_alone_and_one_digest_and_drops_the_duplicate() {
        let h = harness();
        let response = h.run(BATCH);
        assert_eq!(response, json!({"batchItemFailures": []}));
        let posts = h.posts();
        let titles: Vec<&str> = posts
            .iter()
            .map(|p| p["text"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            titles,
            [
                ":x: investor_holdings: positions_20261125.csv.gz failed",
                "a message on pipeline-events could not be read",
                "stuck: bondlake-dev-DeadLetterAlarm-1ABC",
                "3 files: 122,740 ok, 360 rejected, 119,640 rows loaded",
            ]
        );
        // The failure says what, where and what to do, in Block Kit.
        let failed = posts[0].to_string();
        for needle in [
            "\"type\":\"header\"",
            "*Dataset*\\ninvestor_holdings (standard)",
            "`holdings/vendor-b/positions_20261125.csv.gz`",
            "the required column `security_id` is missing",
            "*What to do:*",
        ] {
            assert!(failed.contains(needle), "{needle} not in {failed}");
        }
        assert!(
            posts[1]
                .to_string()
                .contains("version 2 is newer than this build reads")
        );
        // The digest lists every routine outcome, the Kafka landing among them.
        let digest = posts[3].to_string();
        for line in [
            "positions_20261125.csv.gz: 119,640 ok, 360 rejected, loaded 119,640",
            "nyse_eod_20261125.csv.gz: 3,100 ok, 0 rejected",
            "investor-holdings p0 offsets 100-101: landed 2 from Kafka",
        ] {
            assert!(digest.contains(line), "{line} not in {digest}");
        }
        // E-mail subscribers got the same four messages as plain text.
        let mail = h.mail.0.lock().expect("lock");
        assert_eq!(mail.len(), 4);
        assert!(
            mail[0].text.contains("What to do: Nothing was loaded."),
            "{}",
            mail[0].text
        );
        assert!(!mail[0].text.contains('*'), "plain text, no markup");
    }

    #[test]
    fn a_redelivered_batch_posts_nothing_again() {
        let h = harness();
        h.run(BATCH);
        let before = h.receiver.received().len();
        assert_eq!(h.run(BATCH), json!({"batchItemFailures": []}));
        assert_eq!(h.receiver.received().len(), before);
    }

    #[test]
    fn a_429_is_retried_after_its_retry_after_and_a_500_with_backoff() {
        let h = harness();
        h.receiver.script(&[
            Answer::TooManyRequests { retry_after_s: 1 },
            Answer::ServerError,
        ]);
        let response = h.run(&one_event("failed", "market/NYSE/x.csv"));
        assert_eq!(response, json!({"batchItemFailures": []}));
        let got = h.receiver.received();
        assert_eq!(
            got.iter().map(|r| r.status).collect::<Vec<_>>(),
            [429, 500, 200]
        );
        let after_429 = got[1].at.duration_since(got[0].at);
        let after_500 = got[2].at.duration_since(got[1].at);
        assert!(after_429 >= Duration::from_millis(990), "{after_429:?}");
        assert!(after_500 >= Duration::from_millis(90), "{after_500:?}");
        assert!(after_500 < Duration::from_millis(900), "{after_500:?}");
        assert!(
            got.iter().all(|r| r.body == got[2].body),
            "the same message each time"
        );
    }

    #[test]
    fn posts_to_one_webhook_are_paced_apart() {
        let h = harness();
        h.run(BATCH);
        let got = h.receiver.received();
        assert!(got.len() >= 3, "{} posts", got.len());
        for pair in got.windows(2) {
            let gap = pair[1].at.duration_since(pair[0].at);
            // The harness paces at 200 ms (a real webhook at Slack's one a second).
            assert!(gap >= Duration::from_millis(190), "{gap:?}");
        }
    }

    #[test]
    fn nothing_is_posted_that_could_outlast_the_invocation_and_all_of_it_goes_back() {
        let h = harness();
        let slack = BlockingSlack {
            // Less than one request's 10 s allowance is left.
            deadline: Some(Instant::now() + Duration::from_secs(3)),
            ..h.slack()
        };
        let (via, delivered) =
            incoming(&serde_json::from_str(BATCH).expect("json")).expect("incoming");
        let messages = delivered.len();
        let response = run(&h.state, via, delivered, Some(&slack)).expect("ran");
        let back = response["batchItemFailures"].as_array().expect("failures");
        assert_eq!(back.len(), messages, "every message back to the queue");
        assert!(h.receiver.received().is_empty(), "nothing posted");
        // With time, the same batch is told in full.
        let response = h.run(BATCH);
        assert_eq!(response, json!({"batchItemFailures": []}));
    }

    #[test]
    fn a_webhook_that_keeps_failing_sends_the_message_back_and_a_later_try_posts_it() {
        let h = harness();
        h.receiver.script(&[Answer::ServerError; 4]);
        let started = Instant::now();
        let response = h.run(&one_event("failed", "market/NYSE/y.csv"));
        assert_eq!(
            response,
            json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]})
        );
        // 50 + 100 + 200 ms of backoff between the four attempts.
        assert!(started.elapsed() >= Duration::from_millis(340));
        assert!(h.posts().is_empty());
        assert_eq!(
            h.run(&one_event("failed", "market/NYSE/y.csv")),
            json!({"batchItemFailures": []})
        );
        assert_eq!(h.posts().len(), 1, "not marked sent until it was posted");
    }

    #[test]
    fn a_retry_after_longer_than_allowed_gives_up_at_once() {
        let h = harness();
        h.receiver
            .script(&[Answer::TooManyRequests { retry_after_s: 30 }]);
        let started = Instant::now();
        let response = h.run(&one_event("failed", "market/NYSE/z.csv"));
        assert_eq!(
            response,
            json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]})
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_revoked_webhook_is_not_retried_in_a_loop() {
        let h = harness();
        h.receiver.script(&[Answer::NotFound]);
        h.run(&one_event("failed", "market/NYSE/w.csv"));
        assert_eq!(h.receiver.received().len(), 1, "a 404 is final");
    }

    #[test]
    fn the_webhook_url_never_appears_in_logs_or_errors() {
        let h = harness();
        let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = {
            let logs = logs.clone();
            move || LogWriter(logs.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(writer)
            .finish();
        h.receiver.script(&[
            Answer::TooManyRequests { retry_after_s: 0 },
            Answer::ServerError,
            Answer::ServerError,
            Answer::ServerError,
            Answer::ServerError,
        ]);
        tracing::subscriber::with_default(subscriber, || {
            h.run(&one_event("failed", "market/NYSE/v.csv"));
            h.run(BATCH);
        });
        let logs = String::from_utf8(logs.lock().expect("lock").clone()).expect("utf8");
        assert!(logs.contains("Slack webhook: retrying"), "{logs}");
        assert!(logs.contains("notification not sent"), "{logs}");
        let secret = SECRET_PATH.rsplit('/').next().expect("token");
        assert!(
            !logs.contains(secret),
            "the token leaked into the logs:\n{logs}"
        );
        assert!(!format!("{:?}", h.slack()).contains(secret));
        assert!(!format!("{:?}", h.state.settings).contains(secret));
    }

    #[derive(Clone)]
    struct LogWriter(Arc<Mutex<Vec<u8>>>);

    impl io::Write for LogWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("lock"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_direct_sns_delivery_is_read_and_a_failure_fails_the_invocation() {
        let h = harness();
        let (via, delivered) = incoming(
            &serde_json::from_str(include_str!("../../../events/sns-pipeline-events.json"))
                .expect("json"),
        )
        .expect("incoming");
        assert_eq!(via, Via::Sns);
        assert_eq!(delivered.len(), 3);
        h.receiver.script(&[Answer::ServerError; 4]);
        let slack = h.slack();
        let err = run(&h.state, via, delivered, Some(&slack)).expect_err("not sent");
        assert!(err.0.is_retryable());
    }

    /// A webhook cache whose Secrets Manager answers `secret` (the SDK's mock client).
    fn cached(secret: String) -> (CachedWebhook, aws_smithy_mocks::Rule) {
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
        use aws_smithy_mocks::{mock, mock_client};
        let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .match_requests(|r| r.secret_id() == Some("bondlake/dev/slack-webhook"))
            .then_output(move || {
                GetSecretValueOutput::builder()
                    .secret_string(secret.clone())
                    .build()
            });
        let secrets = mock_client!(aws_sdk_secretsmanager, [&rule]);
        let ssm = mock_client!(aws_sdk_ssm, []);
        let cache = CachedWebhook::new(
            SecretSource::SecretsManager("bondlake/dev/slack-webhook".into()),
            secrets,
            ssm,
            Duration::from_secs(900),
        );
        (cache, rule)
    }

    #[test]
    fn the_url_is_read_from_the_secret_once_and_a_placeholder_turns_slack_off() {
        let mut h = harness();
        let (cache, rule) = cached(json!({"url": h.receiver.url()}).to_string());
        h.state.webhook = Some(cache);
        for key in ["market/NYSE/a.csv", "market/NYSE/b.csv"] {
            let slack = h
                .runtime
                .block_on(h.state.slack(None))
                .expect("slack")
                .expect("on");
            let (via, delivered) =
                incoming(&serde_json::from_str(&one_event("failed", key)).expect("json"))
                    .expect("incoming");
            run(&h.state, via, delivered, Some(&slack)).expect("ran");
        }
        assert_eq!(h.posts().len(), 2);
        assert_eq!(rule.num_calls(), 1, "cached across invocations");

        // Deployed but not set yet: e-mail still goes out, Slack waits for the URL.
        let (placeholder, _) = cached(r#"{"url": ""}"#.to_string());
        h.state.webhook = Some(placeholder);
        let slack = h
            .runtime
            .block_on(h.state.slack(None))
            .expect("not an error");
        assert!(slack.is_none());
        let (via, delivered) = incoming(
            &serde_json::from_str(&one_event("failed", "market/NYSE/c.csv")).expect("json"),
        )
        .expect("incoming");
        run(&h.state, via, delivered, None).expect("ran");
        assert_eq!(h.posts().len(), 2);
        assert_eq!(h.mail.0.lock().expect("lock").len(), 3);
    }

    /// An e-mail topic whose subscribers come and go.
    #[derive(Default)]
    struct Topic {
        subscribed: std::sync::atomic::AtomicBool,
        sent: Mutex<Vec<Message>>,
    }

    impl TextOutlet for Topic {
        fn send(&self, m: &Message) -> io::Result<()> {
            self.sent.lock().expect("lock").push(m.clone());
            Ok(())
        }
        fn has_listeners(&self) -> io::Result<bool> {
            Ok(self.subscribed.load(std::sync::atomic::Ordering::SeqCst))
        }
    }

    #[test]
    fn with_no_slack_and_no_subscriber_it_fails_loudly_and_tells_everything_once_one_exists() {
        let mut h = harness();
        let topic = Arc::new(Topic::default());
        h.state.text = topic.clone();
        let (placeholder, _) = cached(r#"{"url": ""}"#.to_string());
        h.state.webhook = Some(placeholder);
        let deliver = |h: &Harness| {
            let slack = h
                .runtime
                .block_on(h.state.slack(None))
                .expect("not an error");
            let (via, delivered) =
                incoming(&serde_json::from_str(BATCH).expect("json")).expect("incoming");
            run(
                &h.state,
                via,
                delivered,
                slack.as_ref().map(|s| s as &dyn SlackOutlet),
            )
        };
        let err = deliver(&h).expect_err("nobody to tell");
        assert_eq!(err.0.error_type(), "Configuration");
        assert!(
            err.0.to_string().contains("nobody would be told"),
            "{}",
            err.0
        );
        assert!(topic.sent.lock().expect("lock").is_empty());
        // An address confirms its subscription; the redriven batch is told in full.
        topic
            .subscribed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let (placeholder, _) = cached(r#"{"url": ""}"#.to_string());
        h.state.webhook = Some(placeholder);
        assert_eq!(deliver(&h).expect("told"), json!({"batchItemFailures": []}));
        assert_eq!(
            topic.sent.lock().expect("lock").len(),
            4,
            "nothing was marked sent before"
        );
    }

    #[test]
    fn settings_refuse_two_webhook_sources_and_none_at_all() {
        let both = Settings::from_vars(&|n| {
            matches!(
                n,
                "PROCESSED_BUCKET" | "SLACK_WEBHOOK_PARAMETER" | "SLACK_WEBHOOK_SECRET_ARN"
            )
            .then(|| "x".to_string())
        })
        .expect_err("both")
        .to_string();
        assert!(both.contains("not both"), "{both}");
        let none = Settings::from_vars(&|n| (n == "PROCESSED_BUCKET").then(|| "x".to_string()))
            .expect_err("none")
            .to_string();
        assert!(none.contains("nowhere to notify"), "{none}");
    }
}
