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
    /// The fields' bytes in `data[..used]`; the buffer stays at its full length, so a chunk
    /// that reuses it writes over old bytes instead of zeroing them first.
    data: Vec<u8>,
    used: usize,
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
            data: &self.data[..self.used],
            ends: &self.ends[a..b],
            base,
        }
    }

    /// Bytes held, for accounting.
    pub fn bytes(&self) -> usize {
        self.used
    }

    /// Every field's bytes, run together: one validation pass can cover the whole chunk.
    pub fn data(&self) -> &[u8] {
        &self.data[..self.used]
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
    /// Split plain lines without csv-core ([`CsvChunker::split_plain_line`]).
    plain_lines: bool,
    /// csv-core has read once (it strips a byte-order mark only before its first read).
    core_started: bool,
    /// In `inbuf`, the first quote or CR at or after where it was last looked for (`in_len`
    /// when none): lines before it are plain. Forgotten when the buffer is refilled.
    next_special: Option<usize>,
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
            plain_lines: true,
            core_started: false,
            next_special: None,
        }
    }

    /// Every record through csv-core alone, without the plain-line path (for the tests that
    /// hold the two equal).
    pub fn without_plain_lines(mut self) -> Self {
        self.plain_lines = false;
        self
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
                c.used = 0;
                c.first_record = self.next_record + 1;
                c
            }
            None => Chunk {
                data: vec![0; max_bytes.clamp(4096, 1 << 20)],
                used: 0,
                ends: Vec::with_capacity(max_records.min(1 << 16) * 8),
                starts: Vec::with_capacity(max_records.min(1 << 16) + 1),
                first_record: self.next_record + 1,
            },
        };
        chunk.starts.push(0);
        let mut used = 0usize;
        let mut rec_start = 0usize;
        let mut ends_scratch = [0usize; 64];
        // csv-core is between records, so a plain line may go around it.
        let mut at_record_start = true;
        use csv_core::ReadRecordResult as R;
        loop {
            if self.in_pos == self.in_len && !self.eof {
                self.refill()?;
            }
            let res = if at_record_start && self.split_plain_line(&mut chunk, &mut used) {
                R::Record
            } else {
                if used == chunk.data.len() {
                    let grown = chunk.data.len() * 2;
                    chunk.data.resize(grown, 0);
                }
                let (res, nin, nout, nend) = self.reader.read_record(
                    &self.inbuf[self.in_pos..self.in_len],
                    &mut chunk.data[used..],
                    &mut ends_scratch,
                );
                self.core_started = true;
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
                res
            };
            at_record_start = matches!(res, R::Record);
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
        chunk.used = used;
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

    /// Splits the next line itself when csv-core could only split it at its commas: the line
    /// is wholly in the read buffer, ends with LF, holds no quote and no CR, and is within the
    /// record limit. Anything else (and the first record, before which csv-core strips a
    /// byte-order mark) is left to csv-core, so RFC 4180 behaviour does not change. Blank
    /// lines before it are skipped, as csv-core skips them. Returns whether it split a line.
    fn split_plain_line(&mut self, chunk: &mut Chunk, used: &mut usize) -> bool {
        if !self.plain_lines || !self.core_started {
            return false;
        }
        let avail = &self.inbuf[self.in_pos..self.in_len];
        let start = self.in_pos + avail.iter().take_while(|&&b| b == b'\n').count();
        let Some(len) = memchr::memchr(b'\n', &self.inbuf[start..self.in_len]) else {
            return false;
        };
        let end = start + len;
        if len > self.max_record_bytes {
            return false;
        }
        let special = match self.next_special {
            Some(s) if s >= start => s,
            _ => {
                let s = memchr::memchr2(b'"', b'\r', &self.inbuf[start..self.in_len])
                    .map_or(self.in_len, |i| start + i);
                self.next_special = Some(s);
                s
            }
        };
        if special < end {
            return false;
        }
        // Room for the line's fields and one 32-byte copy past the last.
        if chunk.data.len() < *used + len + 32 {
            let grown = (chunk.data.len() * 2).max(*used + len + 32);
            chunk.data.resize(grown, 0);
        }
        let src = &self.inbuf[..];
        let mut field_start = start;
        let mut push_field = |field_end: usize| {
            let n = field_end - field_start;
            // A short field (the usual) is copied as 32 fixed bytes rather than its own length;
            // the bytes past it are overwritten by the next field or never read.
            if n <= 32 && field_start + 32 <= src.len() {
                copy_32(
                    &mut chunk.data[*used..*used + 32],
                    &src[field_start..field_start + 32],
                );
            } else {
                chunk.data[*used..*used + n].copy_from_slice(&src[field_start..field_end]);
            }
            *used += n;
            chunk.ends.push(*used as u32);
            field_start = field_end + 1;
        };
        // Commas 64 bytes at a time, as a bit mask; the last block is cut at the line's end
        // when the buffer holds 64 bytes from it (bytes past the end are the next line's).
        let mut i = start;
        while i < end {
            let Some(block) = src.get(i..i + 64) else {
                for (k, &b) in src[i..end].iter().enumerate() {
                    if b == b',' {
                        push_field(i + k);
                    }
                }
                break;
            };
            let mut hits = commas_in(block.try_into().expect("64 bytes"));
            if end - i < 64 {
                hits &= (1u64 << (end - i)) - 1;
            }
            while hits != 0 {
                push_field(i + hits.trailing_zeros() as usize);
                hits &= hits - 1;
            }
            i += 64;
        }
        push_field(end);
        self.in_pos = end + 1;
        true
    }

    fn refill(&mut self) -> Result<(), FileError> {
        self.next_special = None;
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

/// Copies 32 bytes as four 8-byte words. A `copy_from_slice` of 32 bytes is a `memcpy` of a
/// fixed length, which the compiler merged with the long fields' `memcpy` of any length into
/// one call (`perf`: 2% of a one-thread run in `memcpy`, called for the last field of every
/// line); word loads and stores are not merged, and compile to four plain moves each way.
#[inline(always)]
fn copy_32(to: &mut [u8], from: &[u8]) {
    for (t, f) in to[..32].chunks_exact_mut(8).zip(from[..32].chunks_exact(8)) {
        let word = u64::from_ne_bytes(f.try_into().expect("8 bytes"));
        t.copy_from_slice(&word.to_ne_bytes());
    }
}

/// Bit k set where `block[k]` is a comma: SSE2 (part of every x86_64), 16 bytes a compare.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline]
fn commas_in(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut mask = 0u64;
    // SAFETY: SSE2 is part of every x86_64 target, so its intrinsics are always available; each
    // load reads the 16 bytes at 16k..16k+16 of a 64-byte array, unaligned, as
    // `_mm_loadu_si128` allows.
    unsafe {
        let comma = _mm_set1_epi8(b',' as i8);
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast::<__m128i>());
            mask |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, comma)) as u16) << (16 * k);
        }
    }
    mask
}

/// Bit k set where `block[k]` is a comma: eight bytes a word elsewhere (aarch64 Lambdas).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn commas_in(block: &[u8; 64]) -> u64 {
    commas_in_words(block)
}

/// The portable way: in `x` a comma's byte is zero; the top bit of exactly those bytes is set
/// (no borrow runs between bytes), then gathered into one bit a byte by a multiply.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline]
fn commas_in_words(block: &[u8; 64]) -> u64 {
    const COMMAS: u64 = u64::from_ne_bytes([b','; 8]);
    const LOW7: u64 = u64::from_ne_bytes([0x7f; 8]);
    let mut mask = 0u64;
    for (w, word) in block.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ COMMAS;
        let tops = !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7);
        let bits = ((tops >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        mask |= bits << (8 * w);
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    /// Every record of `text` as (number, fields), and how the input ended, read `step` bytes at
    /// a time in chunks of up to `batch` records, with or without the plain-line path.
    type Split = (Vec<(u64, Vec<Vec<u8>>)>, String, bool);

    fn split(text: &[u8], step: usize, batch: usize, limit: usize, plain: bool) -> Split {
        let limits = Limits {
            max_record_bytes: limit,
            ..Limits::default()
        };
        let mut chunker = CsvChunker::new(Cursor::new(text.to_vec()), step, &limits);
        if !plain {
            chunker = chunker.without_plain_lines();
        }
        let unterminated = chunker.unterminated();
        let mut records = Vec::new();
        let end = match chunker.read_header() {
            Ok(Some(h)) => {
                records.push((0, h));
                loop {
                    match chunker.next_chunk(batch, 4096) {
                        Ok(Some(chunk)) => {
                            for i in 0..chunk.len() {
                                let fields = chunk.record(i).fields().map(<[u8]>::to_vec).collect();
                                records.push((chunk.first_record + i as u64, fields));
                            }
                            chunker.recycle(chunk);
                        }
                        Ok(None) => break "end".to_string(),
                        Err(e) => break e.to_string(),
                    }
                }
            }
            Ok(None) => "empty".into(),
            Err(e) => e.to_string(),
        };
        (records, end, unterminated.load(Ordering::Relaxed))
    }

    #[test]
    fn plain_lines_split_at_their_commas_and_the_rest_goes_to_csv_core() {
        let text =
            b"\xef\xbb\xbfa,b,c\n1,2,3\n\n\nfour,\"fi,ve\",6\r\n   \nseventeen-bytes-x,,\nx,y,z";
        let (records, end, unterminated) = split(text, 1 << 16, 100, 1024, true);
        let fields = |r: &(u64, Vec<Vec<u8>>)| -> Vec<String> {
            r.1.iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect()
        };
        let got: Vec<(u64, Vec<String>)> = records.iter().map(|r| (r.0, fields(r))).collect();
        let want: Vec<(u64, Vec<&str>)> = vec![
            (0, vec!["a", "b", "c"]),
            (1, vec!["1", "2", "3"]),
            (2, vec!["four", "fi,ve", "6"]),
            (3, vec!["seventeen-bytes-x", "", ""]),
            (4, vec!["x", "y", "z"]),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((n, f), (m, g)) in got.iter().zip(&want) {
            assert_eq!((n, f), (m, &g.iter().map(|s| s.to_string()).collect()));
        }
        assert_eq!(end, "end");
        assert!(unterminated);
        assert_eq!(
            (records, end, unterminated),
            split(text, 1 << 16, 100, 1024, false)
        );
    }

    #[test]
    fn a_plain_line_over_the_record_limit_fails_as_csv_core_fails_it() {
        let text = b"a,b\n1,2\n0123456789,0123456789\n3,4\n";
        let plain = split(text, 1 << 16, 100, 16, true);
        assert!(plain.1.contains("record 2"), "{}", plain.1);
        assert_eq!(plain, split(text, 1 << 16, 100, 16, false));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Both ways of finding commas give the bit of exactly each comma.
        #[test]
        fn comma_masks_mark_exactly_the_commas(
            block in proptest::collection::vec(prop::sample::select(b",,\x2c\xac\x00\x7f\x80\xffa-+".to_vec()), 64),
        ) {
            let block: [u8; 64] = block.try_into().expect("64 bytes");
            let want = block.iter().enumerate().fold(0u64, |m, (k, &b)| m | (u64::from(b == b',') << k));
            prop_assert_eq!(commas_in(&block), want);
            prop_assert_eq!(commas_in_words(&block), want);
        }

        /// The plain-line path splits every input exactly as csv-core alone does: quotes, bare
        /// CRs, CRLF, blank and space-only lines, records over the limit, records across reads.
        #[test]
        fn plain_lines_split_as_csv_core_splits_them(
            text in proptest::collection::vec(prop::sample::select(b"ab ,,,\"\r\n\n\n\t\xc3\xa9".to_vec()), 0..400),
            step in 1usize..80,
            batch in 1usize..9,
        ) {
            prop_assert_eq!(split(&text, step, batch, 64, true), split(&text, step, batch, 64, false));
        }

        /// The same with few separators, so that fields run past the 32-byte copy and commas
        /// fall anywhere in the eight-byte words.
        #[test]
        fn long_plain_fields_split_as_csv_core_splits_them(
            text in proptest::collection::vec(prop::sample::select(b"abcdefghijklmnopqrstuvwxyz0123456789,\n\"".to_vec()), 0..2000),
            step in prop::sample::select(vec![1usize, 7, 64, 333, 4096]),
            batch in 1usize..50,
            limit in prop::sample::select(vec![8usize, 40, 1 << 16]),
        ) {
            prop_assert_eq!(split(&text, step, batch, limit, true), split(&text, step, batch, limit, false));
        }
    }
}
