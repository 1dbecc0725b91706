//! The input side: bytes in (any `Read`), compression detected from content, CSV records out in
//! chunks that own their bytes, so a chunk can cross to another thread.

use crate::error::{DecompressLimit, FileError, ZipCorrupt};
use flate2::read::MultiGzDecoder;
use std::io::{self, Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Limits that keep one bad file from taking the process down. All configurable.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most decompressed bytes one file may expand to: the absolute ceiling.
    pub max_decompressed_bytes: u64,
    /// Most decompressed bytes per compressed byte read, once past [`RATIO_FLOOR_BYTES`]: a gzip
    /// bomb (about 1000 to 1) fails within a fraction of a second, where the ceiling alone lets
    /// it burn minutes of CPU. CSV compresses 5 to 30 to 1. 0 turns the check off.
    pub max_inflate_ratio: u64,
    /// Longest field; a longer one rejects its record as `field_too_long`.
    pub max_field_bytes: usize,
    /// Longest record; a longer one fails the file (memory stays bounded).
    pub max_record_bytes: usize,
    /// Largest zip archive: a zip's directory is at its end, so the archive is held in memory
    /// (gzip streams; BSE's zipped bhavcopies are well under a megabyte).
    pub max_zip_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed_bytes: 64 << 30,
            max_inflate_ratio: 200,
            max_field_bytes: 64 << 10,
            max_record_bytes: 8 << 20,
            max_zip_bytes: 256 << 20,
        }
    }
}

/// A reader over the decompressed, BOM-less text of an object.
pub type Decoded = Box<dyn Read + Send>;

/// Opens an object's bytes: gzip (multi-member) when it starts with gzip's magic bytes, a zip
/// archive of one file when it starts with zip's, plain text otherwise (docs/datasets.md, decision 19); a UTF-8 BOM
/// is dropped; other compressions and UTF-16 are named errors.
pub fn open(mut raw: impl Read + Send + 'static, limits: &Limits) -> Result<Decoded, FileError> {
    let head = read_prefix(&mut raw, 4).map_err(FileError::read)?;
    let read_so_far = Arc::new(AtomicU64::new(head.len() as u64));
    let compressed = Cursor::new(head.clone()).chain(Counting {
        inner: raw,
        count: read_so_far.clone(),
    });
    let decompressed: Decoded = match head.as_slice() {
        [0x1f, 0x8b, ..] => Box::new(MultiGzDecoder::new(compressed)),
        [b'P', b'K', 3, 4] => unzip(compressed, limits.max_zip_bytes)?,
        [b'B', b'Z', b'h', ..] => {
            return Err(FileError::Unsupported(
                "bzip2; expected gzip or plain CSV".into(),
            ));
        }
        [0x28, 0xb5, 0x2f, 0xfd] => {
            return Err(FileError::Unsupported(
                "zstd; expected gzip or plain CSV".into(),
            ));
        }
        [0xfd, b'7', b'z', b'X'] => {
            return Err(FileError::Unsupported(
                "xz; expected gzip or plain CSV".into(),
            ));
        }
        _ => Box::new(compressed),
    };
    let mut limited = LimitedReader {
        inner: decompressed,
        out: 0,
        limit: limits.max_decompressed_bytes,
        ratio: limits.max_inflate_ratio,
        compressed: read_so_far,
    };
    let text_head = read_prefix(&mut limited, 3).map_err(FileError::read)?;
    let rest: &[u8] = match text_head.as_slice() {
        [0xef, 0xbb, 0xbf] => &[],
        [0xff, 0xfe, ..] | [0xfe, 0xff, ..] => {
            return Err(FileError::Unsupported(
                "UTF-16 text (byte-order mark FF FE / FE FF); expected UTF-8".into(),
            ));
        }
        other => other,
    };
    Ok(Box::new(Cursor::new(rest.to_vec()).chain(limited)))
}

/// The one file of a zip archive, streamed. The archive is read into memory (its directory is at
/// the end; at most `limit` bytes) and the entry inflated on a thread of its own, which owns the
/// archive, into a bounded channel: memory stays the archive plus four 256 KiB blocks.
fn unzip(raw: impl Read + Send + 'static, limit: u64) -> Result<Decoded, FileError> {
    let mut bytes = Vec::new();
    raw.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(FileError::read)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge(format!(
            "zip archive over {limit} bytes (zip is read whole: send gzip instead)"
        )));
    }
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| FileError::Zip(e.to_string()))?;
    let files: Vec<usize> = (0..archive.len())
        .filter(|&i| archive.by_index_raw(i).is_ok_and(|f| f.is_file()))
        .collect();
    let &[index] = files.as_slice() else {
        return Err(FileError::Unsupported(format!(
            "zip archive holds {} files; expected exactly one CSV",
            files.len()
        )));
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
    std::thread::Builder::new()
        .name("unzip".into())
        .spawn(move || {
            let corrupt = |e: &dyn std::fmt::Display| io::Error::other(ZipCorrupt(e.to_string()));
            let mut entry = match archive.by_index(index) {
                Ok(entry) => entry,
                Err(e) => {
                    let _ = tx.send(Err(corrupt(&e)));
                    return;
                }
            };
            loop {
                let mut block = vec![0u8; 256 << 10];
                match entry.read(&mut block) {
                    Ok(0) => break,
                    Ok(n) => {
                        block.truncate(n);
                        // The reader went away (the file failed or finished): stop.
                        if tx.send(Ok(block)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(corrupt(&e)));
                        break;
                    }
                }
            }
        })
        .map_err(|e| FileError::Read(format!("unzip thread: {e}")))?;
    Ok(Box::new(ChannelReader {
        rx,
        block: Vec::new(),
        at: 0,
    }))
}

/// Reads the blocks a producer thread sends; the end of the channel is the end of the data.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    block: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            match self.rx.recv() {
                Ok(Ok(block)) => {
                    self.block = block;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads up to `n` bytes, however short the reads of `r` are.
fn read_prefix(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Decompressed output allowed before the ratio is checked: small files (and the first blocks of
/// any file, before the decoder has read much) are never judged by it.
pub(crate) const RATIO_FLOOR_BYTES: u64 = 64 << 20;

/// Counts the compressed bytes the decoder has read.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct LimitedReader<R> {
    inner: R,
    out: u64,
    limit: u64,
    ratio: u64,
    compressed: Arc<AtomicU64>,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if self.out > self.limit {
            return Err(io::Error::other(DecompressLimit(format!(
                "decompressed size exceeds the limit of {} bytes",
                self.limit
            ))));
        }
        let compressed = self.compressed.load(Ordering::Relaxed).max(1);
        if self.ratio > 0 && self.out > RATIO_FLOOR_BYTES && self.out / compressed > self.ratio {
            return Err(io::Error::other(DecompressLimit(format!(
                "{compressed} compressed bytes inflated to more than {} ({}:1, over the limit of {}:1): a gzip bomb, or data far more repetitive than CSV",
                self.out,
                self.out / compressed,
                self.ratio
            ))));
        }
        Ok(n)
    }
}

/// A run of CSV records whose fields live in one buffer.
#[derive(Debug, Default)]
pub struct Chunk {
    data: Vec<u8>,
    /// End offset in `data` of every field, records one after the other.
    ends: Vec<u32>,
    /// Index into `ends` of each record's first field; one extra entry closes the last record.
    starts: Vec<u32>,
    /// 1-based number of the first record (header excluded).
    pub first_record: u64,
}

impl Chunk {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// True when the chunk holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th record.
    #[inline]
    pub fn record(&self, i: usize) -> Record<'_> {
        let (a, b) = (self.starts[i] as usize, self.starts[i + 1] as usize);
        let base = if a == 0 { 0 } else { self.ends[a - 1] as usize };
        Record {
            data: &self.data,
            ends: &self.ends[a..b],
            base,
        }
    }

    /// Bytes held, for accounting.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Every field's bytes, run together: one validation pass can cover the whole chunk.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

/// One CSV record: its fields, unescaped.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    data: &'a [u8],
    ends: &'a [u32],
    base: usize,
}

impl<'a> Record<'a> {
    /// Number of fields.
    #[inline]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True for a record with no field (never produced by the reader).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `j`-th field's bytes.
    #[inline]
    pub fn field(&self, j: usize) -> &'a [u8] {
        let start = if j == 0 {
            self.base
        } else {
            self.ends[j - 1] as usize
        };
        &self.data[start..self.ends[j] as usize]
    }

    /// All the record's bytes, fields run together (for an all-ASCII check).
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        &self.data[self.base..self.ends.last().map_or(self.base, |&e| e as usize)]
    }

    /// The fields, in order.
    pub fn fields(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).map(|j| self.field(j))
    }
}

/// Splits decoded text into CSV records (RFC 4180: quoted commas, doubled quotes, quoted newlines;
/// LF or CRLF; blank lines skipped and not numbered, docs/datasets.md, decision 17).
pub struct CsvChunker<R> {
    src: R,
    reader: csv_core::Reader,
    inbuf: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    eof: bool,
    next_record: u64,
    max_record_bytes: usize,
    skip_whitespace_lines: bool,
    /// The last byte read from the input, once any was.
    last_byte: Option<u8>,
    /// Set at the end of input when the last record had no line end (a file cut short, or
    /// merely written without one): shared, since the chunker moves to the reading thread.
    unterminated: Arc<std::sync::atomic::AtomicBool>,
    /// Chunks handed back ([`CsvChunker::recycle`]), whose buffers the next chunks reuse.
    spare: Vec<Chunk>,
}

impl<R: Read> CsvChunker<R> {
    /// A flag that turns true when the input ends without a line end after its last record.
    pub fn unterminated(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.unterminated.clone()
    }

    /// A chunker reading `read_size` bytes at a time.
    pub fn new(src: R, read_size: usize, limits: &Limits) -> Self {
        CsvChunker {
            src,
            reader: csv_core::ReaderBuilder::new().build(),
            inbuf: vec![0; read_size.max(1)],
            in_pos: 0,
            in_len: 0,
            eof: false,
            next_record: 0,
            max_record_bytes: limits.max_record_bytes,
            skip_whitespace_lines: false,
            last_byte: None,
            unterminated: Default::default(),
            spare: Vec::new(),
        }
    }

    /// Hands a spent chunk back: the next chunk reuses its buffers instead of allocating (and,
    /// above the allocator's mmap threshold, faulting in) fresh ones.
    pub fn recycle(&mut self, chunk: Chunk) {
        if self.spare.len() < 2 {
            self.spare.push(chunk);
        }
    }

    /// The next up-to-`max_records` records (or about `max_bytes` of field data, whichever comes
    /// first); `None` at the end of input. A chunk always ends on a record boundary.
    pub fn next_chunk(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Option<Chunk>, FileError> {
        let mut chunk = match self.spare.pop() {
            Some(mut c) => {
                c.ends.clear();
                c.starts.clear();
                // Old bytes past `used` are never read: only the zeroing of a new tail is paid.
                let len = c.data.capacity().max(4096);
                c.data.resize(len, 0);
                c.first_record = self.next_record + 1;
                c
            }
            None => Chunk {
                // The buffer is kept at its full length; `used` marks what holds data.
                data: vec![0; max_bytes.clamp(4096, 1 << 20)],
                ends: Vec::with_capacity(max_records.min(1 << 16) * 8),
                starts: Vec::with_capacity(max_records.min(1 << 16) + 1),
                first_record: self.next_record + 1,
            },
        };
        chunk.starts.push(0);
        let mut used = 0usize;
        let mut rec_start = 0usize;
        let mut ends_scratch = [0usize; 64];
        loop {
            if self.in_pos == self.in_len && !self.eof {
                self.refill()?;
            }
            if used == chunk.data.len() {
                let grown = chunk.data.len() * 2;
                chunk.data.resize(grown, 0);
            }
            let (res, nin, nout, nend) = self.reader.read_record(
                &self.inbuf[self.in_pos..self.in_len],
                &mut chunk.data[used..],
                &mut ends_scratch,
            );
            self.in_pos += nin;
            used += nout;
            // csv_core reports field ends relative to the record's start.
            chunk
                .ends
                .extend(ends_scratch[..nend].iter().map(|&e| (rec_start + e) as u32));
            if used - rec_start > self.max_record_bytes {
                return Err(FileError::RecordTooLong {
                    record: self.next_record + 1,
                    limit: self.max_record_bytes,
                });
            }
            use csv_core::ReadRecordResult as R;
            match res {
                R::InputEmpty | R::OutputFull | R::OutputEndsFull => {}
                R::Record => {
                    let first_end = chunk.starts.last().map_or(0, |&i| i as usize);
                    if self.skip_whitespace_lines
                        && chunk.ends.len() == first_end + 1
                        && chunk.data[rec_start..used]
                            .iter()
                            .all(|b| matches!(b, b' ' | b'\t'))
                    {
                        // A line of only spaces is a blank line: skipped, neither counted nor
                        // numbered (docs/datasets.md, decision 17).
                        chunk.ends.truncate(first_end);
                        used = rec_start;
                        continue;
                    }
                    chunk.starts.push(chunk.ends.len() as u32);
                    rec_start = used;
                    self.next_record += 1;
                    if chunk.len() >= max_records
                        || used >= max_bytes
                        || used > (u32::MAX / 2) as usize
                    {
                        break;
                    }
                }
                R::End => break,
            }
        }
        chunk.data.truncate(used);
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    /// Reads the header record: its fields, or `None` for an empty file. Records after it are
    /// numbered from 1.
    pub fn read_header(&mut self) -> Result<Option<Vec<Vec<u8>>>, FileError> {
        let chunk = self.next_chunk(1, 4096)?;
        self.next_record = 0;
        let header: Option<Vec<Vec<u8>>> =
            chunk.map(|c| c.record(0).fields().map(<[u8]>::to_vec).collect());
        // With more than one column, a record of one blank field can only be a blank line.
        self.skip_whitespace_lines = header.as_ref().is_some_and(|h| h.len() > 1);
        Ok(header)
    }

    fn refill(&mut self) -> Result<(), FileError> {
        loop {
            match self.src.read(&mut self.inbuf) {
                Ok(n) => {
                    self.in_pos = 0;
                    self.in_len = n;
                    self.eof = n == 0;
                    if n > 0 {
                        self.last_byte = Some(self.inbuf[n - 1]);
                    } else if self.last_byte.is_some_and(|b| b != b'\n' && b != b'\r') {
                        self.unterminated.store(true, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FileError::read(e)),
            }
        }
    }
}
