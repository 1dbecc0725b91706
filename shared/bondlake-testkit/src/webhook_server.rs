//! A Slack-webhook stand-in on 127.0.0.1: it records
//! every POST and answers 200 `ok`, or, when told to, 429 with `Retry-After` or 500 first. The
//! notifier's tests, `bondlake webhook-receiver` and the demo's CI check use it.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request path (the secret part of a real webhook URL).
    pub path: String,
    /// The body.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
    /// The status answered.
    pub status: u16,
}

/// An answer to give instead of 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 429 with `Retry-After: seconds`.
    TooManyRequests { retry_after_s: u64 },
    /// 500.
    ServerError,
    /// 404 `no_service` (a revoked webhook).
    NotFound,
}

#[derive(Debug, Default)]
struct Shared {
    received: Vec<Received>,
    script: VecDeque<Answer>,
}

/// A running receiver; it stops when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    url: String,
    shared: Arc<Mutex<Shared>>,
    stop: Option<oneshot::Sender<()>>,
}

impl WebhookReceiver {
    /// Listens on `addr` (`127.0.0.1:0` picks a free port) on `handle`'s runtime; `path` is the
    /// URL's path (e.g. `/services/T000/B000/XXXX`).
    pub fn start(addr: &str, path: &str, handle: &Handle) -> io::Result<WebhookReceiver> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move {
                    let path = req.uri().path().to_string();
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                        .unwrap_or_default();
                    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                    let (status, text, retry_after) = match s.script.pop_front() {
                        None => (200, "ok", None),
                        Some(Answer::TooManyRequests { retry_after_s }) => {
                            (429, "rate_limited", Some(retry_after_s))
                        }
                        Some(Answer::ServerError) => (500, "internal_error", None),
                        Some(Answer::NotFound) => (404, "no_service", None),
                    };
                    s.received.push(Received {
                        path,
                        body,
                        at: Instant::now(),
                        status,
                    });
                    let mut response = http::Response::builder().status(status);
                    if let Some(after) = retry_after {
                        response = response.header("retry-after", after.to_string());
                    }
                    response.body(Full::new(Bytes::from_static(text.as_bytes())))
                }
            });
        let (local, stop) = crate::s3_server::serve(addr, handle, service)?;
        let url = format!("http://{local}{path}");
        Ok(WebhookReceiver {
            url,
            shared,
            stop: Some(stop),
        })
    }

    /// The URL to post to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers the next requests with `answers`, in order, then 200 again.
    pub fn script(&self, answers: &[Answer]) {
        self.lock().script.extend(answers.iter().copied());
    }

    /// Everything received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
