//! An S3-protocol server on 127.0.0.1, in-process: `s3s-fs` serving a
//! folder, with SigV4 checked. The tests, `bondlake s3-server` and the S3 benchmark use it, so
//! nothing needs installing. Buckets are the folder's sub-folders.
//!
//! [`Faults`] injects failures at the HTTP layer, under the SDK: the client sees real 500
//! responses (and retries them, as it would against AWS). [`Grants`] makes it refuse what a
//! function's role may not do, as the template grants it.

mod grants;
pub use grants::Grants;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "bondlake";
/// The secret key the server accepts.
pub const SECRET_KEY: &str = "bondlake-local-secret";

/// Failures to inject, and counts of what was asked.
#[derive(Debug, Default)]
pub struct Faults {
    fail_parts_from: AtomicU32,
    slow_parts_from: AtomicU32,
    slow_parts_ms: AtomicU64,
    parts_uploaded: AtomicU64,
    uploads_aborted: AtomicU64,
    gets: AtomicU64,
}

impl Faults {
    /// Every UploadPart with a part number of `n` or more answers 500 (0 turns it off).
    pub fn fail_upload_parts_from(&self, n: u32) {
        self.fail_parts_from.store(n, Ordering::SeqCst);
    }

    /// Every UploadPart with a part number of `n` or more waits `ms` before it is served (0 turns
    /// it off): a slow upload, which holds the writer back.
    pub fn delay_upload_parts_from(&self, n: u32, ms: u64) {
        self.slow_parts_ms.store(ms, Ordering::SeqCst);
        self.slow_parts_from.store(n, Ordering::SeqCst);
    }

    /// UploadPart requests accepted so far.
    pub fn parts_uploaded(&self) -> u64 {
        self.parts_uploaded.load(Ordering::SeqCst)
    }

    /// AbortMultipartUpload requests so far.
    pub fn uploads_aborted(&self) -> u64 {
        self.uploads_aborted.load(Ordering::SeqCst)
    }

    /// GetObject requests so far.
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::SeqCst)
    }

    /// How long an UploadPart request must wait first.
    fn delay(&self, method: &http::Method, query: &str) -> Option<std::time::Duration> {
        let from = self.slow_parts_from.load(Ordering::SeqCst);
        let n = part_number(query)?;
        (*method == http::Method::PUT && from != 0 && n >= from)
            .then(|| std::time::Duration::from_millis(self.slow_parts_ms.load(Ordering::SeqCst)))
    }

    /// Counts the request; `true` when it must fail.
    fn check(&self, method: &http::Method, query: &str) -> bool {
        if *method == http::Method::GET && (query.is_empty() || query.contains("x-id=GetObject")) {
            self.gets.fetch_add(1, Ordering::SeqCst);
        }
        if *method == http::Method::DELETE && query_param(query, "uploadId").is_some() {
            self.uploads_aborted.fetch_add(1, Ordering::SeqCst);
        }
        if *method == http::Method::PUT
            && let Some(n) = part_number(query)
        {
            let from = self.fail_parts_from.load(Ordering::SeqCst);
            if from != 0 && n >= from {
                return true;
            }
            self.parts_uploaded.fetch_add(1, Ordering::SeqCst);
        }
        false
    }
}

/// The value of `name` in a URI query.
fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// An UploadPart request's part number.
fn part_number(query: &str) -> Option<u32> {
    query_param(query, "partNumber")?.parse().ok()
}

#[derive(Clone)]
struct WithFaults {
    inner: S3Service,
    faults: Arc<Faults>,
}

type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<s3s::HttpResponse, s3s::HttpError>> + Send>>;

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for WithFaults {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = ServiceFuture;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        // Keys are files under the root here: a `..` segment would write into another bucket's
        // folder (S3 itself takes such keys literally; a folder cannot).
        if escapes_its_bucket(req.uri().path()) {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidArgument</Code><Message>object keys with . or .. segments are refused by this server</Message></Error>";
            return Box::pin(async move {
                http::Response::builder()
                    .status(400)
                    .header("content-type", "application/xml")
                    .body(s3s::Body::from(xml.to_string()))
                    .map_err(|e| s3s::HttpError::new(Box::new(e)))
            });
        }
        if self
            .faults
            .check(req.method(), req.uri().query().unwrap_or(""))
        {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected by the test server</Message></Error>";
            return Box::pin(async move {
                // Read the request first, as S3 does: answering mid-upload breaks the pipe and
                // the client would see a connection error instead of the 500.
                use http_body_util::BodyExt as _;
                let _ = req.into_body().collect().await;
                http::Response::builder()
                    .status(500)
                    .header("content-type", "application/xml")
                    .body(s3s::Body::from(xml.to_string()))
                    .map_err(|e| s3s::HttpError::new(Box::new(e)))
            });
        }
        if let Some(wait) = self
            .faults
            .delay(req.method(), req.uri().query().unwrap_or(""))
        {
            let inner = self.inner.clone();
            return Box::pin(async move {
                tokio::time::sleep(wait).await;
                hyper::service::Service::call(&inner, req).await
            });
        }
        hyper::service::Service::call(&self.inner, req)
    }
}

/// Whether a request path (percent-encoded, path-style `/bucket/key`) names a key with a `.` or
/// `..` segment, or a backslash, which a folder-backed bucket cannot hold safely.
fn escapes_its_bucket(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    decoded.contains('\\')
        || decoded
            .trim_start_matches('/')
            .split('/')
            .skip(1)
            .any(|segment| segment == ".." || segment == ".")
}

/// Serves HTTP/1 and HTTP/2 connections to `service` on `addr` (`127.0.0.1:0` picks a free
/// port) on `handle`'s runtime, until the returned sender is dropped or sent to: the one accept
/// loop of the local servers (this one and [`crate::webhook_server`]).
pub(crate) fn serve<S, B>(
    addr: &str,
    handle: &Handle,
    service: S,
) -> io::Result<(std::net::SocketAddr, oneshot::Sender<()>)>
where
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = std::net::TcpListener::bind(loopback(addr)?.as_slice())?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let (stop, mut stopped) = oneshot::channel::<()>();
    let _guard = handle.enter();
    let listener = tokio::net::TcpListener::from_std(listener)?;
    handle.spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let socket = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(_) => continue,
                },
                _ = &mut stopped => break,
            };
            let _ = socket.set_nodelay(true);
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    Ok((local, stop))
}

/// The addresses `addr` names, when every one is a loopback address: the local servers' keys
/// and webhook paths are public, so they never listen where another machine could reach them.
fn loopback(addr: &str) -> io::Result<Vec<std::net::SocketAddr>> {
    use std::net::ToSocketAddrs as _;
    let addrs: Vec<_> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a loopback address (a stand-in whose keys are public listens only on 127.0.0.1 or [::1])",
        ));
    }
    Ok(addrs)
}

/// A running server; it stops when dropped.
#[derive(Debug)]
pub struct S3Server {
    endpoint: String,
    root: PathBuf,
    faults: Arc<Faults>,
    denied: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
}

/// The secret key of a role's access key (the role's name) on a server with grants.
fn role_secret(role: &str) -> String {
    format!("{role}-local-secret")
}

impl S3Server {
    /// Serves `root` on `addr` (`127.0.0.1:0` picks a free port), on `handle`'s runtime. Its one
    /// key ([`ACCESS_KEY`]) may do anything.
    pub fn start(root: &Path, addr: &str, handle: &Handle) -> io::Result<S3Server> {
        Self::serve_with(root, addr, handle, Grants::default())
    }

    /// As [`S3Server::start`], and each role in `grants` signs with a key of its own
    /// ([`S3Server::client_as`]) that may do only what its grants allow.
    pub fn start_with_grants(
        root: &Path,
        addr: &str,
        handle: &Handle,
        grants: Grants,
    ) -> io::Result<S3Server> {
        Self::serve_with(root, addr, handle, grants)
    }

    fn serve_with(
        root: &Path,
        addr: &str,
        handle: &Handle,
        grants: Grants,
    ) -> io::Result<S3Server> {
        std::fs::create_dir_all(root)?;
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| io::Error::other(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        let mut auth = SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY);
        for role in grants.roles() {
            auth.register(role.to_string(), role_secret(role).into());
        }
        builder.set_auth(auth);
        let denied = Arc::new(Mutex::new(Vec::new()));
        builder.set_access(grants::Enforce {
            grants: Arc::new(grants),
            admin: ACCESS_KEY.to_string(),
            root: root.to_path_buf(),
            denied: denied.clone(),
        });
        let faults = Arc::new(Faults::default());
        let service = WithFaults {
            inner: builder.build(),
            faults: faults.clone(),
        };
        let (addr, stop) = serve(addr, handle, service)?;
        let endpoint = format!("http://{addr}");
        Ok(S3Server {
            endpoint,
            root: root.to_path_buf(),
            faults,
            denied,
            stop: Some(stop),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The folder served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Failure injection and request counts.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Creates a bucket (a folder).
    pub fn create_bucket(&self, name: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.root.join(name))
    }

    /// Multipart uploads begun and neither completed nor aborted (s3s-fs keeps one
    /// `.upload-<id>.json` file each in the root), and their stored parts.
    pub fn open_uploads(&self) -> io::Result<usize> {
        Ok(std::fs::read_dir(&self.root)?
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with(".upload-") || name.starts_with(".upload_id-")
            })
            .count())
    }

    /// An S3 client for this server: its keys, path-style addressing.
    pub fn client(&self) -> aws_sdk_s3::Client {
        local_client(&self.endpoint, ACCESS_KEY, SECRET_KEY)
    }

    /// A client signing as `role` (a function of `tests/grants.json`), allowed only its grants.
    pub fn client_as(&self, role: &str) -> aws_sdk_s3::Client {
        local_client(&self.endpoint, role, &role_secret(role))
    }

    /// The requests refused for want of a grant so far, as `role: action on resource`.
    pub fn denied(&self) -> Vec<String> {
        self.denied.lock().expect("denials").clone()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A client for an S3-protocol server at `endpoint` with static keys (region `us-east-1`,
/// path-style addressing, no credential lookups).
pub fn local_client(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "bondlake-local",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
