//! S3 behind [`ObjectStore`]: streaming GetObject in, multipart upload out, with bounded buffers.
//!
//! The engine is synchronous (it runs on its own threads); this adapter bridges to the SDK's async
//! client through a Tokio runtime handle. Call it from threads that are not the runtime's own
//! workers (`spawn_blocking`, or plain threads), where blocking on a future is allowed.
//!
//! - Reading: a task pulls the body and hands chunks over a bounded channel, so download and
//!   decompression overlap and at most `read_ahead_chunks` chunks wait in memory.
//! - Writing: bytes collect into one part of `part_bytes`; full parts upload in the background,
//!   at most `parts_in_flight` at once. An object smaller than one part is a single PutObject.
//!   A writer dropped without `commit`, or whose upload failed, aborts its multipart upload, so
//!   no orphan parts are left to bill.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bondlake_core::store::{
    Listed, Object, ObjectStore, ObjectWriter, StorageError, StorageKind, Superseded,
};
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Buffer sizes of the S3 adapter.
#[derive(Debug, Clone, Copy)]
pub struct S3Options {
    /// Multipart part size (S3's minimum is 5 MiB for every part but the last).
    pub part_bytes: usize,
    /// Parts uploading at once per object.
    pub parts_in_flight: usize,
    /// Body chunks read ahead of the engine.
    pub read_ahead_chunks: usize,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            part_bytes: 8 << 20,
            parts_in_flight: 2,
            read_ahead_chunks: 8,
        }
    }
}

/// One bucket as an [`ObjectStore`].
#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    handle: Handle,
    options: S3Options,
}

impl S3Store {
    /// A store over `bucket`; SDK futures run on `handle`'s runtime.
    pub fn new(client: Client, bucket: &str, handle: Handle, options: S3Options) -> Self {
        S3Store {
            client,
            bucket: bucket.to_string(),
            handle,
            options,
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn error<E>(&self, action: &str, key: &str, e: aws_sdk_s3::error::SdkError<E>) -> io::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        sdk_error(action, &self.locate(key), e)
    }
}

/// Keeps the SDK's error (code, message, request ids) as the source, and classifies it once, by
/// S3's error code and HTTP status ([`storage_kind`]).
fn sdk_error<E>(action: &str, location: &str, e: aws_sdk_s3::error::SdkError<E>) -> io::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let kind = storage_kind(e.code(), status);
    let message = format!("{action} {location}: {}", DisplayErrorContext(&e));
    StorageError::new(kind, message, Some(Box::new(e))).into()
}

/// What an S3 error means for the caller. S3's error codes
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>): throttling, 5xx,
/// timeouts, expired credentials and no response at all may pass; access denied, no such
/// bucket and any other refusal of the request as made need a person.
pub fn storage_kind(code: Option<&str>, status: Option<u16>) -> StorageKind {
    match (code, status) {
        (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => StorageKind::NotFound,
        (
            Some(
                "SlowDown"
                | "Throttling"
                | "ThrottlingException"
                | "RequestTimeout"
                | "RequestTimeTooSkewed"
                | "ExpiredToken"
                | "TokenRefreshRequired"
                | "InternalError"
                | "ServiceUnavailable"
                | "OperationAborted",
            ),
            _,
        ) => StorageKind::Transient,
        (_, Some(429)) | (_, Some(500..=599)) | (_, None) => StorageKind::Transient,
        (_, Some(_)) => StorageKind::Denied,
    }
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

impl ObjectStore for S3Store {
    fn create(&self, key: &str) -> io::Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer {
            store: self.clone(),
            key: key.to_string(),
            buf: Vec::new(),
            upload_id: None,
            in_flight: VecDeque::new(),
            done: Vec::new(),
            size: 0,
            finished: false,
        }))
    }

    fn put_if(
        &self,
        key: &str,
        bytes: &[u8],
        condition: bondlake_core::store::Precondition<'_>,
    ) -> io::Result<bool> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes.to_vec()));
        let request = match condition {
            bondlake_core::store::Precondition::Absent => request.if_none_match("*"),
            bondlake_core::store::Precondition::Matches(etag) => {
                request.if_match(format!("\"{}\"", unquote(etag)))
            }
        };
        match self.handle.block_on(request.send()) {
            Ok(_) => Ok(true),
            // 412: the condition did not hold (another writer was first). 409 is a concurrent
            // conditional write in flight: an error, retried with the batch.
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(412) => Ok(false),
            Err(e) => Err(self.error("PutObject", key, e)),
        }
    }

    fn get(&self, key: &str, etag: Option<&str>) -> io::Result<Object> {
        let mut request = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(e) = etag.filter(|e| !e.is_empty()) {
            request = request.if_match(format!("\"{}\"", unquote(e)));
        }
        let superseded = || {
            io::Error::other(Superseded {
                key: key.to_string(),
                expected: etag.unwrap_or_default().to_string(),
            })
        };
        let out = self.handle.block_on(request.send()).map_err(|e| {
            if e.raw_response().map(|r| r.status().as_u16()) == Some(412) {
                superseded()
            } else {
                self.error("GetObject", key, e)
            }
        })?;
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        let actual = out.e_tag().map(unquote).unwrap_or_default();
        // Checked here too: not every S3-protocol server honours If-Match.
        if etag.is_some_and(|e| !e.is_empty() && unquote(e) != actual) {
            return Err(superseded());
        }
        let (tx, rx) = mpsc::channel(self.options.read_ahead_chunks.max(1));
        let location = self.locate(key);
        let mut body = out.body;
        self.handle.spawn(async move {
            loop {
                let next = match body.try_next().await {
                    Ok(Some(chunk)) => Ok(chunk),
                    Ok(None) => break,
                    Err(e) => Err(io::Error::other(format!(
                        "reading {location}: {}",
                        DisplayErrorContext(&e)
                    ))),
                };
                let failed = next.is_err();
                // The reader went away (the engine stopped): stop downloading.
                if tx.send(next).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Object {
            body: Box::new(S3Body {
                rx,
                chunk: Bytes::new(),
            }),
            size,
            etag: actual,
        })
    }

    /// HeadObject: no body is opened or streamed to learn that a key is there.
    fn exists(&self, key: &str) -> io::Result<bool> {
        let request = self.client.head_object().bucket(&self.bucket).key(key);
        match self.handle.block_on(request.send()) {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = self.error("HeadObject", key, e);
                if StorageKind::of(&e) == StorageKind::NotFound {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        let request = self.client.delete_object().bucket(&self.bucket).key(key);
        self.handle
            .block_on(request.send())
            .map(|_| ())
            .map_err(|e| self.error("DeleteObject", key, e))
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        Ok(self
            .list_versions(prefix)?
            .into_iter()
            .map(|o| o.key)
            .collect())
    }

    fn list_versions(&self, prefix: &str) -> io::Result<Vec<Listed>> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take());
            let out = self
                .handle
                .block_on(request.send())
                .map_err(|e| self.error("ListObjectsV2", prefix, e))?;
            objects.extend(out.contents().iter().filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_string(),
                    etag: o.e_tag().map(unquote).unwrap_or_default(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    modified: o.last_modified().and_then(|t| {
                        let us =
                            t.secs().checked_mul(1_000_000)? + i64::from(t.subsec_nanos() / 1_000);
                        Some(bondlake_core::manifest::rfc3339(us))
                    }),
                })
            }));
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    fn locate(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// A GetObject body as a blocking `Read`, fed by the download task.
struct S3Body {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for S3Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(next) => self.chunk = next?,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// A multipart upload in progress (or one buffered PutObject, for objects under a part).
struct S3Writer {
    store: S3Store,
    key: String,
    buf: Vec<u8>,
    upload_id: Option<String>,
    in_flight: VecDeque<JoinHandle<io::Result<CompletedPart>>>,
    done: Vec<CompletedPart>,
    size: u64,
    finished: bool,
}

impl S3Writer {
    fn location(&self) -> String {
        self.store.locate(&self.key)
    }

    /// Sends the buffer as the next part, then waits while too many parts are uploading.
    fn send_part(&mut self) -> io::Result<()> {
        let s = &self.store;
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let request = s
                    .client
                    .create_multipart_upload()
                    .bucket(&s.bucket)
                    .key(&self.key);
                let out = s
                    .handle
                    .block_on(request.send())
                    .map_err(|e| s.error("CreateMultipartUpload", &self.key, e))?;
                let id = out
                    .upload_id()
                    .ok_or_else(|| {
                        io::Error::other(format!(
                            "CreateMultipartUpload {}: no upload id",
                            self.location()
                        ))
                    })?
                    .to_string();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let part = std::mem::take(&mut self.buf);
        self.size += part.len() as u64;
        let part_number = (self.done.len() + self.in_flight.len() + 1) as i32;
        let request = s
            .client
            .upload_part()
            .bucket(&s.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(part_number)
            .body(ByteStream::from(part))
            .customize()
            // The SDK's CRC32 checksum still protects the part (S3 verifies it): no second pass
            // over every byte for a SHA-256 payload signature.
            .disable_payload_signing();
        let location = self.location();
        self.in_flight.push_back(s.handle.spawn(async move {
            let out = request
                .send()
                .await
                .map_err(|e| sdk_error(&format!("UploadPart {part_number}"), &location, e))?;
            Ok(CompletedPart::builder()
                .set_e_tag(out.e_tag().map(String::from))
                .part_number(part_number)
                .build())
        }));
        while self.in_flight.len() > self.store.options.parts_in_flight.max(1) {
            self.wait_oldest()?;
        }
        Ok(())
    }

    fn wait_oldest(&mut self) -> io::Result<()> {
        if let Some(task) = self.in_flight.pop_front() {
            let part = self
                .store
                .handle
                .block_on(task)
                .map_err(|e| io::Error::other(format!("upload task: {e}")))??;
            self.done.push(part);
        }
        Ok(())
    }
}

impl Write for S3Writer {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        if self.finished {
            return Err(io::Error::other("writer closed"));
        }
        let written = data.len();
        let part = self.store.options.part_bytes.max(1);
        while !data.is_empty() {
            if self.buf.len() == self.buf.capacity() {
                // Grow by doubling from 64 KiB but never past one part: a small object stays
                // small, and a part never holds a doubled buffer's slack.
                let want = (self.buf.capacity() * 2).clamp(64 << 10, part);
                self.buf.reserve_exact(want - self.buf.len());
            }
            let n = (self.buf.capacity() - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() >= part {
                self.send_part()?;
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    fn commit(mut self: Box<Self>) -> io::Result<u64> {
        let s = self.store.clone();
        if self.upload_id.is_none() {
            let body = std::mem::take(&mut self.buf);
            let size = body.len() as u64;
            let request = s
                .client
                .put_object()
                .bucket(&s.bucket)
                .key(&self.key)
                .body(ByteStream::from(body))
                .customize()
                .disable_payload_signing();
            s.handle
                .block_on(request.send())
                .map_err(|e| s.error("PutObject", &self.key, e))?;
            self.finished = true;
            return Ok(size);
        }
        if !self.buf.is_empty() {
            self.send_part()?;
        }
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        let parts = std::mem::take(&mut self.done);
        let request = s
            .client
            .complete_multipart_upload()
            .bucket(&s.bucket)
            .key(&self.key)
            .set_upload_id(self.upload_id.clone())
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        s.handle
            .block_on(request.send())
            .map_err(|e| s.error("CompleteMultipartUpload", &self.key, e))?;
        self.finished = true;
        Ok(self.size)
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let in_flight: Vec<_> = self.in_flight.drain(..).collect();
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let s = &self.store;
        let request = s
            .client
            .abort_multipart_upload()
            .bucket(&s.bucket)
            .key(&self.key)
            .upload_id(&upload_id);
        let handle = s.handle.clone();
        let location = self.location();
        // Parts still uploading finish first, so none lands after the abort. On a thread of its
        // own: a drop may run anywhere, even where blocking on the runtime would panic.
        let aborted = std::thread::spawn(move || {
            for task in in_flight {
                let _ = handle.block_on(task);
            }
            handle
                .block_on(request.send())
                .map_err(|e| DisplayErrorContext(&e).to_string())
        })
        .join();
        match aborted {
            Ok(Ok(_)) => tracing::info!(object = %location, "multipart upload aborted"),
            Ok(Err(e)) => {
                tracing::warn!(object = %location, error = %e, "aborting the multipart upload failed; a lifecycle rule removes it")
            }
            Err(_) => tracing::warn!(object = %location, "aborting the multipart upload panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::storage_kind;
    use bondlake_core::store::StorageKind::{self, *};

    #[test]
    fn s3_errors_are_classified_by_code_and_status() {
        let cases: [(Option<&str>, Option<u16>, StorageKind); 12] = [
            (Some("NoSuchKey"), Some(404), NotFound),
            (None, Some(404), NotFound),
            (Some("AccessDenied"), Some(403), Denied),
            (None, Some(403), Denied),
            (Some("NoSuchBucket"), Some(404), Denied),
            (Some("InvalidAccessKeyId"), Some(403), Denied),
            (Some("SlowDown"), Some(503), Transient),
            (Some("InternalError"), Some(500), Transient),
            (None, Some(502), Transient),
            (Some("RequestTimeout"), Some(400), Transient),
            (Some("ExpiredToken"), Some(400), Transient),
            (None, None, Transient),
        ];
        for (code, status, kind) in cases {
            assert_eq!(storage_kind(code, status), kind, "{code:?} {status:?}");
        }
    }
}
