//! # bondlake-slack
//!
//! Posting to a Slack incoming webhook: HTTPS with rustls, retries on 429 and 5xx with
//! exponential backoff, honouring `Retry-After`, requests paced a second apart (Slack's rate
//! for a webhook), and never a wait that outlasts the invocation.
//!
//! The webhook URL is a credential (anyone holding it can post to the channel), so it lives in a
//! [`WebhookUrl`] that never prints itself: errors and logs name the host only.

pub mod secrets;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A webhook URL: shown as its host only.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: http::Uri,
}

impl WebhookUrl {
    /// Checks that `url` is an http(s) URL with a host.
    pub fn parse(url: &str) -> Result<WebhookUrl, SlackError> {
        let uri: http::Uri = url
            .trim()
            .parse()
            .map_err(|_| SlackError::BadUrl("it is not a URL".into()))?;
        match (uri.scheme_str(), uri.host()) {
            (Some("https" | "http"), Some(_)) => Ok(WebhookUrl { url: uri }),
            _ => Err(SlackError::BadUrl(
                "it needs https:// (or http:// for a local receiver) and a host".into(),
            )),
        }
    }

    /// The host, which is safe to show.
    pub fn host(&self) -> &str {
        self.url.host().unwrap_or("?")
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({}/***)", self.host())
    }
}

/// How posting failed.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// The configured URL is unusable (its value is never shown).
    #[error("the Slack webhook URL is unusable: {0}")]
    BadUrl(String),
    /// Slack refused the message for good (a 4xx other than 429: revoked hook, bad payload).
    #[error("Slack webhook at {host} refused the message: HTTP {status}: {body}")]
    Refused {
        /// The host.
        host: String,
        /// The status.
        status: u16,
        /// Slack's explanation (`invalid_blocks`, `no_service`, ...).
        body: String,
    },
    /// Still throttled or failing after every attempt, or asked to wait longer than allowed.
    #[error("Slack webhook at {host}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// The host.
        host: String,
        /// Attempts made.
        attempts: u32,
        /// The last answer or connection error.
        last: String,
    },
}

impl SlackError {
    /// Whether a later try may work (a refusal will not).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SlackError::GaveUp { .. })
    }
}

/// The retry policy for posts.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff; it doubles each time.
    pub base: Duration,
    /// The longest backoff, and the longest `Retry-After` honoured (a longer one gives up, so
    /// the invocation ends and the queue retries later).
    pub max_wait: Duration,
    /// At least this long between two requests to the webhook: Slack allows about one message
    /// a second per incoming webhook, and answers a faster sender with 429s.
    pub spacing: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            base: Duration::from_millis(500),
            max_wait: Duration::from_secs(30),
            spacing: Duration::from_secs(1),
        }
    }
}

impl Retry {
    /// The wait before attempt `n + 1` after `n` failures: `Retry-After` when the server gave
    /// one, else `base · 2^(n-1)`, capped at `max_wait`; `None` when `Retry-After` asks for more.
    pub fn wait(&self, failures: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(d) if d > self.max_wait => None,
            Some(d) => Some(d),
            None => Some(
                self.base
                    .saturating_mul(1 << failures.saturating_sub(1).min(16))
                    .min(self.max_wait),
            ),
        }
    }
}

/// A webhook client. Its clones share one pace: requests to the webhook at least
/// [`Retry::spacing`] apart.
#[derive(Clone)]
pub struct Slack {
    url: WebhookUrl,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    retry: Retry,
    /// When the last request went out.
    last_request: Arc<tokio::sync::Mutex<Option<tokio::time::Instant>>>,
}

impl fmt::Debug for Slack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slack")
            .field("url", &self.url)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Slack {
    /// A client for `url` (the system's root certificates, HTTP/1.1).
    pub fn new(url: WebhookUrl, retry: Retry) -> Result<Slack, SlackError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| SlackError::BadUrl(format!("no root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Slack {
            url,
            client,
            retry,
            last_request: Arc::default(),
        })
    }

    /// The webhook's host.
    pub fn host(&self) -> &str {
        self.url.host()
    }

    /// Posts one JSON payload, retrying 429 and 5xx as [`Retry`] says, paced to
    /// [`Retry::spacing`], and giving up (retryable) rather than wait past `deadline`.
    pub async fn post(
        &self,
        payload: &serde_json::Value,
        deadline: Option<std::time::Instant>,
    ) -> Result<(), SlackError> {
        let body = Bytes::from(serde_json::to_vec(payload).unwrap_or_default());
        let host = self.host().to_string();
        let deadline = deadline.map(tokio::time::Instant::from_std);
        let past_deadline = |at: tokio::time::Instant| deadline.is_some_and(|d| at >= d);
        let mut failures = 0u32;
        loop {
            let request = http::Request::post(self.url.url.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()))
                .map_err(|e| SlackError::BadUrl(e.to_string()))?;
            let mut last = self.last_request.lock().await;
            let start = last.map_or_else(tokio::time::Instant::now, |t| {
                (t + self.retry.spacing).max(tokio::time::Instant::now())
            });
            // A request may take up to its 10 s timeout; none starts that could outlast the deadline.
            if past_deadline(start + Duration::from_secs(10)) {
                return Err(SlackError::GaveUp {
                    host,
                    attempts: failures,
                    last: "the invocation's deadline is near; left for the queue's next delivery"
                        .into(),
                });
            }
            tokio::time::sleep_until(start).await;
            *last = Some(tokio::time::Instant::now());
            let answer =
                tokio::time::timeout(Duration::from_secs(10), self.client.request(request)).await;
            drop(last);
            let (last, retry_after) = match answer {
                Err(_) => ("no answer in 10 s".to_string(), None),
                Ok(Err(e)) => (format!("connection failed: {}", connect_error(&e)), None),
                Ok(Ok(response)) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = match response.into_body().collect().await {
                        Ok(b) => String::from_utf8_lossy(&b.to_bytes())
                            .chars()
                            .take(200)
                            .collect(),
                        Err(_) => String::new(),
                    };
                    if status.is_success() {
                        return Ok(());
                    }
                    if status.as_u16() != 429 && !status.is_server_error() {
                        return Err(SlackError::Refused {
                            host,
                            status: status.as_u16(),
                            body: text,
                        });
                    }
                    (format!("HTTP {}: {text}", status.as_u16()), retry_after)
                }
            };
            failures += 1;
            let wait = (failures < self.retry.attempts)
                .then(|| self.retry.wait(failures, retry_after))
                .flatten()
                .filter(|w| !past_deadline(tokio::time::Instant::now() + *w));
            let Some(wait) = wait else {
                return Err(SlackError::GaveUp {
                    host,
                    attempts: failures,
                    last,
                });
            };
            tracing::warn!(host = %host, attempt = failures, wait_ms = wait.as_millis() as u64, answer = %last, "Slack webhook: retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Posts from a blocking thread on `handle`'s runtime (the pipeline's threads are not async).
#[derive(Debug, Clone)]
pub struct BlockingSlack {
    /// The client.
    pub slack: Slack,
    /// The runtime its requests run on.
    pub handle: tokio::runtime::Handle,
    /// No request or retry outlasts this (the invocation's deadline, less a margin).
    pub deadline: Option<std::time::Instant>,
}

impl bondlake_core::notify::SlackOutlet for BlockingSlack {
    fn post(&self, payload: &serde_json::Value) -> Result<(), (String, bool)> {
        self.handle
            .block_on(self.slack.post(payload, self.deadline))
            .map_err(|e| (e.to_string(), e.is_retryable()))
    }
}

/// A connection error without the URL (hyper's errors do not carry it, but their sources might).
fn connect_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_never_prints_its_secret_part() {
        let url = WebhookUrl::parse("https://hooks.slack.com/services/T000/B000/SECRETSECRET")
            .expect("url");
        assert_eq!(format!("{url:?}"), "WebhookUrl(hooks.slack.com/***)");
        let e = WebhookUrl::parse("hooks.slack.com/services/T000/B000/SECRETSECRET")
            .expect_err("no scheme")
            .to_string();
        assert!(!e.contains("SECRET"), "{e}");
    }

    #[test]
    fn retry_after_is_honoured_within_the_limit_and_backoff_doubles() {
        let r = Retry {
            attempts: 5,
            base: Duration::from_millis(100),
            max_wait: Duration::from_secs(2),
            spacing: Duration::ZERO,
        };
        assert_eq!(r.wait(1, None), Some(Duration::from_millis(100)));
        assert_eq!(r.wait(3, None), Some(Duration::from_millis(400)));
        assert_eq!(r.wait(10, None), Some(Duration::from_secs(2)));
        assert_eq!(
            r.wait(1, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(r.wait(1, Some(Duration::from_secs(3))), None);
    }
}
