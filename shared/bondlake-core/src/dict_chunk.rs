//! Parquet column chunks of dictionary-coded text, written from the indices the cleaner knows.
//!
//! arrow-rs's writer hashes every value of a dictionary column to find its index (its
//! interner: about a tenth of a run's instructions). An enum's value, a derived label and a
//! file-wide constant (the source key) already have an index when the cleaner meets them, so
//! those columns reach the writer as Arrow dictionary arrays and their chunks are written here:
//! a PLAIN dictionary page, then data pages of RLE_DICTIONARY indices (format v1, as arrow-rs
//! writes them), compressed with the column's codec. [`crate::output`] splices each chunk into
//! its row group (`SerializedRowGroupWriter::append_column`); the file's schema still says
//! Utf8, so every reader sees what it saw when arrow-rs encoded the same values.

use arrow_array::cast::AsArray;
use arrow_array::types::UInt16Type;
use arrow_array::{Array, ArrayRef};
use bytes::Bytes;
use parquet::basic::{Compression, Encoding};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, OffsetIndexBuilder};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;
use std::collections::HashMap;
use std::sync::Arc;

/// Whether a chunk of `compression` can be written here (the codecs this crate links).
pub(crate) fn supports(compression: Compression) -> bool {
    matches!(
        compression,
        Compression::UNCOMPRESSED | Compression::ZSTD(_)
    )
}

/// One row group's worth of a dictionary column, gathered batch by batch.
pub(crate) struct DictChunk {
    descr: ColumnDescPtr,
    /// The chunk's dictionary: every distinct value any batch's dictionary held, first seen first.
    values: Vec<Box<[u8]>>,
    lookup: HashMap<Box<[u8]>, u16>,
    /// The last batch dictionary seen, and where its entries are in `values`.
    last: Option<(ArrayRef, Vec<u16>)>,
    /// Indices into `values` of the non-null rows, in row order.
    keys: Vec<u16>,
    /// Per row: present (1) or null (0); kept only when the column is nullable.
    defs: Vec<u8>,
    rows: usize,
    /// Which entries of `values` some row holds (for min/max), when statistics are on.
    used: Option<Vec<bool>>,
    value_bytes: i64,
}

impl DictChunk {
    /// An empty chunk for column `descr`.
    pub fn new(descr: ColumnDescPtr, props: &WriterProperties) -> Self {
        let stats = props.statistics_enabled(descr.path()) != EnabledStatistics::None;
        DictChunk {
            descr,
            values: Vec::new(),
            lookup: HashMap::new(),
            last: None,
            keys: Vec::new(),
            defs: Vec::new(),
            rows: 0,
            used: stats.then(Vec::new),
            value_bytes: 0,
        }
    }

    /// A rough size of the chunk once encoded, for rolling parts by size.
    pub fn estimated_bytes(&self) -> usize {
        self.keys.len() * 2 + self.values.iter().map(|v| v.len() + 4).sum::<usize>()
    }

    /// Adds a batch's column: a dictionary array of `UInt16` keys and Utf8 values.
    pub fn append(&mut self, array: &ArrayRef) -> Result<()> {
        let dict = array.as_dictionary_opt::<UInt16Type>().ok_or_else(|| {
            ParquetError::General(format!("{} is not a UInt16 dictionary", self.descr.path()))
        })?;
        let same = matches!(&self.last, Some((v, _)) if Arc::ptr_eq(v, dict.values()));
        if !same {
            let text = dict.values().as_string_opt::<i32>().ok_or_else(|| {
                ParquetError::General(format!(
                    "{}: dictionary values are not Utf8",
                    self.descr.path()
                ))
            })?;
            let mut map = Vec::with_capacity(text.len());
            for i in 0..text.len() {
                map.push(self.intern(text.value(i).as_bytes())?);
            }
            self.last = Some((dict.values().clone(), map));
        }
        let Some((_, map)) = &self.last else {
            unreachable!("set just above")
        };
        let nullable = self.descr.max_def_level() > 0;
        let keys = dict.keys();
        let n = keys.len();
        if keys.null_count() > 0 && !nullable {
            return Err(ParquetError::General(format!(
                "{}: nulls in a required column",
                self.descr.path()
            )));
        }
        self.keys.reserve(n);
        let before = self.keys.len();
        match keys.nulls().filter(|v| v.null_count() > 0) {
            None => {
                let max = keys.values().iter().copied().max().unwrap_or(0);
                if max as usize >= map.len() {
                    return Err(bad_key(max));
                }
                // Batches built over the same values map them to themselves (the usual case).
                if map.iter().enumerate().all(|(i, &m)| m as usize == i) {
                    self.keys.extend_from_slice(keys.values());
                } else {
                    self.keys
                        .extend(keys.values().iter().map(|&k| map[k as usize]));
                }
                if nullable {
                    self.defs.resize(self.defs.len() + n, 1);
                }
            }
            Some(valid) => {
                for (i, &k) in keys.values().iter().enumerate() {
                    let present = valid.is_valid(i);
                    self.defs.push(present as u8);
                    if present {
                        self.keys
                            .push(*map.get(k as usize).ok_or_else(|| bad_key(k))?);
                    }
                }
            }
        }
        // What statistics report: which values occur, and their bytes.
        if let Some(used) = &mut self.used {
            used.resize(self.values.len(), false);
            for &k in &self.keys[before..] {
                used[k as usize] = true;
                self.value_bytes += self.values[k as usize].len() as i64;
            }
        }
        self.rows += n;
        Ok(())
    }

    fn intern(&mut self, value: &[u8]) -> Result<u16> {
        if let Some(&i) = self.lookup.get(value) {
            return Ok(i);
        }
        let i = u16::try_from(self.values.len()).map_err(|_| {
            ParquetError::General(format!(
                "{}: more than 65,536 distinct values",
                self.descr.path()
            ))
        })?;
        self.values.push(value.into());
        self.lookup.insert(value.into(), i);
        Ok(i)
    }

    /// Encodes the chunk: its bytes (dictionary page first, offsets from 0) and what
    /// `append_column` needs to know of them.
    pub fn close(self, props: &WriterProperties) -> Result<(Bytes, ColumnCloseResult)> {
        let path = self.descr.path().clone();
        let compression = props.compression(&path);
        let mut codec = Codec::new(compression)?;
        let mut sink = TrackedWrite::new(Vec::new());
        let mut pages = SerializedPageWriter::new(&mut sink);
        let mut encodings = vec![Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY];
        encodings.sort();
        let (mut compressed, mut uncompressed) = (0i64, 0i64);

        let mut plain = Vec::with_capacity(self.values.iter().map(|v| v.len() + 4).sum());
        for v in &self.values {
            plain.extend_from_slice(&(v.len() as u32).to_le_bytes());
            plain.extend_from_slice(v);
        }
        let spec = pages.write_page(codec.page(plain, |buf| Page::DictionaryPage {
            buf,
            num_values: self.values.len() as u32,
            encoding: props.dictionary_page_encoding(),
            is_sorted: false,
        })?)?;
        compressed += spec.compressed_size as i64;
        uncompressed += spec.uncompressed_size as i64;
        let dictionary_offset = spec.offset as i64;

        // At least one bit, so that even a one-entry dictionary reads with any reader.
        let bit_width = bit_width(self.values.len()).max(1);
        let nullable = self.descr.max_def_level() > 0;
        let page_rows = props.data_page_row_count_limit().clamp(1, 1 << 20);
        let mut offsets = (!props.offset_index_disabled()).then(OffsetIndexBuilder::new);
        let mut data_offset = None;
        let (mut row, mut key) = (0usize, 0usize);
        // One page at least, so that an empty chunk is still a valid one.
        loop {
            let end = (row + page_rows).min(self.rows);
            let mut buf = Vec::new();
            let present = if nullable {
                let defs = &self.defs[row..end];
                let mut levels = Vec::new();
                encode_hybrid(defs, 1, &mut levels);
                buf.extend_from_slice(&(levels.len() as u32).to_le_bytes());
                buf.extend_from_slice(&levels);
                defs.iter().filter(|&&d| d == 1).count()
            } else {
                end - row
            };
            buf.push(bit_width);
            encode_hybrid(&self.keys[key..key + present], bit_width, &mut buf);
            let spec = pages.write_page(codec.page(buf, |buf| Page::DataPage {
                buf,
                num_values: (end - row) as u32,
                encoding: Encoding::RLE_DICTIONARY,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            })?)?;
            compressed += spec.compressed_size as i64;
            uncompressed += spec.uncompressed_size as i64;
            data_offset.get_or_insert(spec.offset as i64);
            if let Some(o) = &mut offsets {
                o.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
                o.append_row_count((end - row) as i64);
            }
            key += present;
            row = end;
            if row >= self.rows {
                break;
            }
        }
        let bytes = Bytes::from(sink.into_inner()?);

        let mut meta = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(compression)
            .set_encodings(encodings)
            .set_total_compressed_size(compressed)
            .set_total_uncompressed_size(uncompressed)
            .set_num_values(self.rows as i64)
            .set_data_page_offset(data_offset.unwrap_or(dictionary_offset))
            .set_dictionary_page_offset(Some(dictionary_offset));
        if let Some(used) = &self.used {
            let mut present = self
                .values
                .iter()
                .zip(used)
                .filter(|(_, u)| **u)
                .map(|(v, _)| v);
            let first = present.next();
            let (min, max) = present.fold((first, first), |(lo, hi), v| {
                (lo.min(Some(v)), hi.max(Some(v)))
            });
            let nulls = (self.rows - self.keys.len()) as u64;
            let stats = ValueStatistics::new(
                min.map(|v| ByteArray::from(v.to_vec())),
                max.map(|v| ByteArray::from(v.to_vec())),
                None,
                Some(nulls),
                false,
            );
            meta = meta
                .set_statistics(Statistics::ByteArray(stats))
                .set_unencoded_byte_array_data_bytes(Some(self.value_bytes));
        }
        let close = ColumnCloseResult {
            bytes_written: compressed as u64,
            rows_written: self.rows as u64,
            metadata: meta.build()?,
            bloom_filter: None,
            column_index: None,
            offset_index: offsets.map(|o| o.build()),
        };
        Ok((bytes, close))
    }
}

fn bad_key(k: u16) -> ParquetError {
    ParquetError::General(format!("dictionary key {k} out of range"))
}

/// Bits an index into a dictionary of `n` entries takes.
fn bit_width(n: usize) -> u8 {
    (usize::BITS - n.saturating_sub(1).leading_zeros()) as u8
}

/// The page compressor: one zstd context reused for the chunk's pages.
enum Codec {
    None,
    Zstd(zstd::bulk::Compressor<'static>),
}

impl Codec {
    fn new(c: Compression) -> Result<Self> {
        match c {
            Compression::UNCOMPRESSED => Ok(Codec::None),
            Compression::ZSTD(level) => zstd::bulk::Compressor::new(level.compression_level())
                .map(Codec::Zstd)
                .map_err(|e| ParquetError::External(Box::new(e))),
            other => Err(ParquetError::NYI(format!(
                "dictionary chunks compressed with {other}"
            ))),
        }
    }

    /// `raw` as a page of `kind`, compressed.
    fn page(&mut self, raw: Vec<u8>, kind: impl FnOnce(Bytes) -> Page) -> Result<CompressedPage> {
        let size = raw.len();
        let buf = match self {
            Codec::None => raw,
            Codec::Zstd(z) => z
                .compress(&raw)
                .map_err(|e| ParquetError::External(Box::new(e)))?,
        };
        Ok(CompressedPage::new(kind(Bytes::from(buf)), size))
    }
}

/// Appends `values` in Parquet's RLE / bit-packing hybrid at `width` bits (at most 16): eight
/// or more equal values starting a group of eight as one RLE run, the rest bit-packed eight at a
/// time (the last group padded with zeros, which readers skip by the page's value count).
pub(crate) fn encode_hybrid<T: Copy + PartialEq + Into<u64>>(
    values: &[T],
    width: u8,
    out: &mut Vec<u8>,
) {
    let mut i = 0;
    // Values waiting to be bit-packed: values[packed_from..i], whole groups of eight.
    let mut packed_from = 0;
    while i + 8 <= values.len() {
        let v = values[i];
        if values[i + 1..i + 8].iter().all(|&x| x == v) {
            let run = 8 + values[i + 8..].iter().take_while(|&&x| x == v).count();
            bit_pack(&values[packed_from..i], width, out);
            put_uleb(out, (run as u64) << 1);
            let value_bytes = (width as usize).div_ceil(8);
            out.extend_from_slice(&v.into().to_le_bytes()[..value_bytes]);
            i += run;
            packed_from = i;
        } else {
            i += 8;
        }
    }
    bit_pack(&values[packed_from..], width, out);
}

/// One bit-packed run of `values` (padded to a multiple of eight).
fn bit_pack<T: Copy + Into<u64>>(values: &[T], width: u8, out: &mut Vec<u8>) {
    if values.is_empty() {
        return;
    }
    let groups = values.len().div_ceil(8);
    put_uleb(out, ((groups as u64) << 1) | 1);
    // Eight values of `width` bits are `width` bytes: a group at a time through 128 bits.
    for group in values.chunks(8) {
        let mut acc = 0u128;
        for (j, &v) in group.iter().enumerate() {
            acc |= u128::from(v.into()) << (j * width as usize);
        }
        out.extend_from_slice(&acc.to_le_bytes()[..width as usize]);
    }
}

fn put_uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}
