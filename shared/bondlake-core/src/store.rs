//! Object storage behind one trait: a local folder here, S3 in the Lambda (issue 3).
//!
//! Writes stream: an [`ObjectWriter`] is a `Write` that becomes visible only on [`ObjectWriter::commit`]
//! (a local file is renamed into place; S3 completes its multipart upload). Dropping a writer
//! without committing aborts it, so a failed run leaves no partial object.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A streaming write of one object.
pub trait ObjectWriter: Write + Send {
    /// Makes the object visible under its key; returns its size in bytes.
    fn commit(self: Box<Self>) -> io::Result<u64>;
}

/// An object being read: its body as a stream, and its identity.
pub struct Object {
    /// The content, streamed.
    pub body: Box<dyn Read + Send>,
    /// Size in bytes.
    pub size: u64,
    /// The version identity: S3's ETag (quotes removed); size and modification time for a file.
    pub etag: String,
}

/// One object as a listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Key.
    pub key: String,
    /// Version identity, as [`Object::etag`] gives it.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was last written, RFC 3339 UTC (S3's `LastModified`; a file's modification time).
    pub modified: Option<String>,
}

/// When a conditional write ([`ObjectStore::put_if`]) may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition<'a> {
    /// No object is under the key (S3's `If-None-Match: *`): the first writer wins.
    Absent,
    /// The object under the key has this ETag (S3's `If-Match`): no write since it was read.
    Matches(&'a str),
}

/// Writes `value` as pretty JSON at `key`, replacing what is there (a run's result, written last).
pub fn write_json(
    store: &dyn ObjectStore,
    key: &str,
    value: &impl serde::Serialize,
) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let mut w = store.create(key)?;
    w.write_all(&json)?;
    w.commit().map(drop)
}

/// Where outputs go and inputs come from.
pub trait ObjectStore: Send + Sync {
    /// Starts writing the object `key`.
    fn create(&self, key: &str) -> io::Result<Box<dyn ObjectWriter>>;
    /// Writes `bytes` as the object `key` only when `condition` holds, atomically: `Ok(false)`
    /// when it does not (another writer was first). What the lander's exactly-once rests on.
    fn put_if(&self, key: &str, bytes: &[u8], condition: Precondition<'_>) -> io::Result<bool>;
    /// Opens the object `key` for reading. With `etag`, only that version: a newer object under
    /// the key is an error of kind [`io::ErrorKind::Other`] wrapping [`Superseded`].
    /// A missing key is [`io::ErrorKind::NotFound`].
    fn get(&self, key: &str, etag: Option<&str>) -> io::Result<Object>;
    /// Opens the object `key` for reading.
    fn open(&self, key: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(self.get(key, None)?.body)
    }
    /// Whether `key` exists.
    fn exists(&self, key: &str) -> io::Result<bool> {
        match self.get(key, None) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    /// Deletes `key`; deleting a missing key is not an error.
    fn delete(&self, key: &str) -> io::Result<()>;
    /// Keys under `prefix`, sorted.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// The objects under `prefix` with their versions, sorted by key: what a backfill selects
    /// from (one listing, no request per object).
    fn list_versions(&self, prefix: &str) -> io::Result<Vec<Listed>>;
    /// A human-readable location of `key` (a path, or `s3://bucket/key`).
    fn locate(&self, key: &str) -> String;
}

/// A folder standing in for a bucket: key `a/b.parquet` is the file `root/a/b.parquet`.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        if key.split('/').any(|s| s == ".." || s.is_empty()) || key.starts_with('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad object key `{key}`"),
            ));
        }
        Ok(self.root.join(key))
    }
}

/// The object under a key is no longer the version an event named.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{key}` was replaced after the event (expected ETag {expected}); the new version's own event processes it"
)]
pub struct Superseded {
    /// The key.
    pub key: String,
    /// The ETag the caller asked for.
    pub expected: String,
}

impl Superseded {
    /// Whether `e` says an object was superseded.
    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|i| i.is::<Superseded>())
    }
}

/// What a storage call's failure means for whoever asked: the one classification every stage's
/// retry decision reads ([`crate::failure::HandleError::storage`]). A store's errors are
/// `io::Error`s (the trait is `Read`/`Write`-shaped) whose payload says the kind: a
/// [`StorageError`], or [`Superseded`]; [`StorageKind::of`] reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// No such object.
    NotFound,
    /// The object under the key is no longer the version asked for.
    Superseded,
    /// The store refused the request as made (access denied, no such bucket, a key it does not
    /// take): retrying cannot help, a person must fix the configuration.
    Denied,
    /// Anything that may succeed later: throttling, a 5xx, a dropped connection, a disk error.
    Transient,
}

impl StorageKind {
    /// The kind of `e`: its [`StorageError`] or [`Superseded`] payload when it has one, else its
    /// `io::ErrorKind` (`NotFound`; `PermissionDenied` and `InvalidInput` are `Denied`).
    pub fn of(e: &io::Error) -> StorageKind {
        if let Some(inner) = e.get_ref() {
            if let Some(s) = inner.downcast_ref::<StorageError>() {
                return s.kind;
            }
            if inner.is::<Superseded>() {
                return StorageKind::Superseded;
            }
        }
        match e.kind() {
            io::ErrorKind::NotFound => StorageKind::NotFound,
            io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput => StorageKind::Denied,
            _ => StorageKind::Transient,
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(self) -> bool {
        self == StorageKind::Transient
    }

    fn io_kind(self) -> io::ErrorKind {
        match self {
            StorageKind::NotFound => io::ErrorKind::NotFound,
            StorageKind::Denied => io::ErrorKind::PermissionDenied,
            StorageKind::Superseded | StorageKind::Transient => io::ErrorKind::Other,
        }
    }
}

/// A storage failure with its kind, its message (the action and the object, as `s3://b/k` or a
/// path) and the store's own error kept as its source.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    /// What it means for the caller.
    pub kind: StorageKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StorageError {
    /// A failure of `kind`, described by `message`, caused by `source`.
    pub fn new(
        kind: StorageKind,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StorageError {
        StorageError {
            kind,
            message: message.into(),
            source,
        }
    }
}

impl From<StorageError> for io::Error {
    fn from(e: StorageError) -> io::Error {
        io::Error::new(e.kind.io_kind(), e)
    }
}

/// A local file's identity: size and modification time, which change when it is rewritten.
pub fn file_etag(meta: &fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{}-{mtime}", meta.len())
}

/// A local file's modification time as RFC 3339 UTC: its "event time" when the local runner
/// announces it, as S3's `eventTime` is for an object.
pub fn file_event_time(meta: &fs::Metadata) -> Option<String> {
    let at = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(crate::manifest::rfc3339(at.as_micros() as i64))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// One conditional write at a time in this process: a local folder has no compare-and-swap,
/// and the local runner is one process.
static CONDITIONAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct LocalWriter {
    file: Option<io::BufWriter<fs::File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("writer closed"))?
            .write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("writer closed"))?
            .flush()
    }
}

impl ObjectWriter for LocalWriter {
    fn commit(mut self: Box<Self>) -> io::Result<u64> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("writer closed"))?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        let size = file.metadata().map_err(|e| at(&self.tmp, e))?.len();
        drop(file);
        fs::rename(&self.tmp, &self.dest).map_err(|e| at(&self.dest, e))?;
        Ok(size)
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Not committed: abort.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// `e` with the path it is about: "No space left on device" alone names nothing to fix.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Outputs hold investors' names and accounts (the quarantine keeps raw records): created
/// readable by their owner only, whatever the umask.
fn owner_only() -> fs::OpenOptions {
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

/// Removes, the first time this process writes into `dir`, the temporaries that writers in
/// processes no longer running left there (killed before they committed or aborted):
/// `.<name>.<pid>-<n>.tmp`. Once per folder, so that writing many objects into one folder (the
/// sent log's markers) does not list it again for each.
fn remove_orphaned_temporaries(dir: &Path) {
    if !first_time(&CLEANED_FOLDERS, dir) {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .filter(|f| f.starts_with('.'))
            .and_then(|f| f.strip_suffix(".tmp"))
            .and_then(|f| f.rsplit_once('.'))
            .and_then(|(_, writer)| writer.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_is_running(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The folders this process has cleared of dead writers' temporaries.
static CLEANED_FOLDERS: std::sync::Mutex<Option<std::collections::HashSet<PathBuf>>> =
    std::sync::Mutex::new(None);
/// The symbolic links this process has warned about.
static LINKS_SEEN: std::sync::Mutex<Option<std::collections::HashSet<PathBuf>>> =
    std::sync::Mutex::new(None);

/// Whether this process meets `path` in `seen` for the first time (and remembers it).
fn first_time(
    seen: &std::sync::Mutex<Option<std::collections::HashSet<PathBuf>>>,
    path: &Path,
) -> bool {
    seen.lock().is_ok_and(|mut seen| {
        seen.get_or_insert_with(Default::default)
            .insert(path.to_path_buf())
    })
}

/// Says once per process and path that a symbolic link is skipped.
fn warn_once_about_link(path: &Path) {
    if first_time(&LINKS_SEEN, path) {
        tracing::warn!(path = %path.display(), "a symbolic link in a local bucket is skipped");
    }
}

/// Whether a process `pid` exists. Where that cannot be told, it is assumed to run, so that no
/// live writer's file is ever removed.
fn process_is_running(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

impl ObjectStore for LocalStore {
    fn create(&self, key: &str) -> io::Result<Box<dyn ObjectWriter>> {
        let dest = self.path(key)?;
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
            remove_orphaned_temporaries(dir);
        }
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("object");
        let tmp = dest.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
        let file = owner_only().open(&tmp).map_err(|e| at(&tmp, e))?;
        Ok(Box::new(LocalWriter {
            file: Some(io::BufWriter::with_capacity(1 << 20, file)),
            tmp,
            dest,
        }))
    }

    fn put_if(&self, key: &str, bytes: &[u8], condition: Precondition<'_>) -> io::Result<bool> {
        let _one_at_a_time = CONDITIONAL.lock().map_err(|_| io::Error::other("lock"))?;
        let dest = self.path(key)?;
        let current = match fs::metadata(&dest) {
            Ok(meta) => Some(file_etag(&meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let holds = match condition {
            Precondition::Absent => current.is_none(),
            Precondition::Matches(etag) => current.as_deref() == Some(etag),
        };
        if !holds {
            return Ok(false);
        }
        let mut w = self.create(key)?;
        w.write_all(bytes)?;
        w.commit()?;
        Ok(true)
    }

    fn get(&self, key: &str, etag: Option<&str>) -> io::Result<Object> {
        let path = self.path(key)?;
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: a symbolic link, not read (it may lead out of the lake)",
                    path.display()
                ),
            ));
        }
        let file = fs::File::open(&path).map_err(|e| at(&path, e))?;
        let meta = file.metadata()?;
        let actual = file_etag(&meta);
        if let Some(expected) = etag.filter(|e| *e != actual) {
            return Err(io::Error::other(Superseded {
                key: key.to_string(),
                expected: expected.to_string(),
            }));
        }
        Ok(Object {
            body: Box::new(file),
            size: meta.len(),
            etag: actual,
        })
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other.map_err(|e| at(&path, e)),
        }
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        // Walk from the deepest folder the prefix names.
        let dir_part = prefix.rsplit_once('/').map_or("", |(d, _)| d);
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.root.join(dir_part)
        };
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                let kind = entry.file_type().map_err(|e| at(&path, e))?;
                if kind.is_symlink() {
                    // A link may lead out of the lake (or loop): a bucket has no links.
                    warn_once_about_link(&path);
                    continue;
                }
                if kind.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    let hidden = rel
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'));
                    if key.starts_with(prefix) && !hidden {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn list_versions(&self, prefix: &str) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        for key in self.list(prefix)? {
            let path = self.path(&key)?;
            let meta = match fs::metadata(&path) {
                Ok(m) => m,
                // Removed between the walk and the look: not there any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(at(&path, e)),
            };
            out.push(Listed {
                etag: file_etag(&meta),
                size: meta.len(),
                modified: file_event_time(&meta),
                key,
            });
        }
        Ok(out)
    }

    fn locate(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}
