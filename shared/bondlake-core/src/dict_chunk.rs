//! Parquet column chunks of dictionary-coded columns, written by bondlake instead of arrow-rs.
//!
//! arrow-rs's writer hashes every value of a dictionary column to find its index (its
//! interner: about a tenth of a run's instructions). An enum's value, a derived label and a
//! file-wide constant (the source key) already have an index when the cleaner meets them, and
//! free text is interned by the cleaner into each batch's own dictionary (on the cleaning
//! threads, and once a batch here, not once a row); those columns reach the writer as Arrow
//! dictionary arrays and their chunks are written here from the keys. 32-bit integer columns
//! with a dictionary (dates, day counts, ranks) are interned here too, by value, for fewer
//! instructions than arrow-rs's generic path spends. Either way: a PLAIN dictionary page, then
//! data pages of RLE_DICTIONARY indices (format v1, as arrow-rs writes them), compressed with
//! the column's codec; past the dictionary page size limit, text goes on in PLAIN data pages,
//! as arrow-rs falls back. [`crate::output`] splices each
//! chunk into its row group (`SerializedRowGroupWriter::append_column`); the file's schema is
//! unchanged, so every reader sees what it saw when arrow-rs encoded the same values.

use crate::contract::{FastMap, text_eq};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int32Type, UInt16Type};
use arrow_array::{Array, ArrayRef, DictionaryArray, PrimitiveArray};
use arrow_schema::DataType;
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
use std::sync::Arc;

/// Whether a chunk of `compression` can be written here (the codecs this crate links).
pub(crate) fn supports(compression: Compression) -> bool {
    matches!(
        compression,
        Compression::UNCOMPRESSED | Compression::ZSTD(_)
    )
}

/// Whether a column of `data_type` is written here: text that comes as a dictionary of UInt16
/// keys, or 32-bit integers (when the column is to have a dictionary at all).
pub(crate) fn takes(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Dictionary(..) | DataType::Int32 | DataType::Date32
    )
}

/// A batch key whose value the chunk's full dictionary did not take.
const UNMAPPED: u32 = u32::MAX;

/// Slots of the 32-bit integer chunks' value cache (32 KiB).
const INT_CACHE: usize = 4096;

/// A chunk's dictionary: every distinct value its rows hold, first seen first.
enum Dict {
    /// BYTE_ARRAY text, from Arrow dictionaries; the last batch dictionary seen, and where its
    /// entries are in `values`.
    Text {
        values: TextValues,
        last: Option<(ArrayRef, Vec<u32>)>,
    },
    /// INT32, from Int32 or Date32 arrays; `min` and `max` of the rows' values; recent values
    /// and their keys (plus one) by value modulo [`INT_CACHE`].
    Int32 {
        values: Vec<i32>,
        lookup: FastMap<i32, u32>,
        range: Option<(i32, i32)>,
        cache: Vec<(i32, u32)>,
    },
}

impl Dict {
    fn len(&self) -> usize {
        match self {
            Dict::Text { values, .. } => values.len(),
            Dict::Int32 { values, .. } => values.len(),
        }
    }
}

/// A text dictionary's values laid out as its PLAIN page holds them (each value's length, u32
/// little-endian, then its bytes), found through an open-addressed table of keys: a new value
/// costs no allocation of its own (a map of boxed values took two, and freed them again at the
/// chunk's end), and the page is written from the buffer as it is.
#[derive(Default)]
struct TextValues {
    page: Vec<u8>,
    /// Where each value's bytes start in `page`.
    starts: Vec<usize>,
    /// A value's key plus one (0: empty) at its hash's slot; at most half full.
    slots: Vec<u32>,
    hasher: foldhash::fast::FixedState,
}

impl TextValues {
    fn len(&self) -> usize {
        self.starts.len()
    }

    /// The value of key `k`.
    fn get(&self, k: u32) -> &[u8] {
        let start = self.starts[k as usize];
        let mut len = [0; 4];
        len.copy_from_slice(&self.page[start - 4..start]);
        &self.page[start..start + u32::from_le_bytes(len) as usize]
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len() as u32).map(|k| self.get(k))
    }

    /// The key of `v`, or the slot it would take.
    fn find(&self, v: &[u8]) -> std::result::Result<u32, usize> {
        use std::hash::BuildHasher;
        if self.slots.is_empty() {
            return Err(0);
        }
        let mask = self.slots.len() - 1;
        let mut i = self.hasher.hash_one(v) as usize & mask;
        loop {
            match self.slots[i] {
                0 => return Err(i),
                k if text_eq(self.get(k - 1), v) => return Ok(k - 1),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Adds `v` (not held yet) at `slot`, as [`TextValues::find`] gave it; returns its key.
    fn insert(&mut self, slot: usize, v: &[u8]) -> u32 {
        let k = self.len() as u32;
        self.page.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.starts.push(self.page.len());
        self.page.extend_from_slice(v);
        if (self.len() + 1) * 2 > self.slots.len() {
            self.rehash();
        } else {
            self.slots[slot] = k + 1;
        }
        k
    }

    /// Doubles the table (64 slots at first) and places every value again.
    fn rehash(&mut self) {
        use std::hash::BuildHasher;
        self.slots = vec![0; (self.slots.len() * 2).max(64)];
        let mask = self.slots.len() - 1;
        for k in 0..self.len() as u32 {
            let mut i = self.hasher.hash_one(self.get(k)) as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = k + 1;
        }
    }
}

/// One row group's worth of a dictionary column, gathered batch by batch.
pub(crate) struct DictChunk {
    descr: ColumnDescPtr,
    dict: Dict,
    /// Indices into the dictionary of the non-null rows not yet in a page, in row order.
    keys: Vec<u32>,
    /// Per row not yet in a page: present (1) or null (0); kept only when the column is nullable.
    defs: Vec<u8>,
    rows: usize,
    /// Which entries of a text dictionary some row holds (for min/max), when statistics are on.
    used: Option<Vec<bool>>,
    value_bytes: i64,
    /// Rows not yet in a page, and non-null rows in all.
    pending: usize,
    present: usize,
    /// Data pages encoded and compressed as they filled (so a row group's keys are not all held),
    /// with their rows; the dictionary page goes before them when the chunk closes.
    pages: Vec<(CompressedPage, usize)>,
    page_rows: usize,
    codec: Codec,
    /// Text only: past this many bytes of dictionary, later rows go in PLAIN pages (as
    /// arrow-rs falls back), so that near-unique text never makes a huge dictionary page.
    dictionary_limit: usize,
    dictionary_bytes: usize,
    page_bytes: usize,
    plain: Option<Plain>,
}

/// The PLAIN pages' state, once a text chunk's dictionary has passed its limit.
#[derive(Default)]
struct Plain {
    /// The pending rows' present values, each as its length (u32, little-endian) and bytes.
    values: Vec<u8>,
    min: Option<Vec<u8>>,
    max: Option<Vec<u8>>,
}

impl DictChunk {
    /// An empty chunk for column `descr`, whose batches hold `data_type` (see [`takes`]).
    pub fn new(
        descr: ColumnDescPtr,
        data_type: &DataType,
        props: &WriterProperties,
    ) -> Result<Self> {
        let stats = props.statistics_enabled(descr.path()) != EnabledStatistics::None;
        let dict = match data_type {
            DataType::Int32 | DataType::Date32 => Dict::Int32 {
                values: Vec::new(),
                lookup: FastMap::default(),
                range: None,
                cache: vec![(0, 0); INT_CACHE],
            },
            _ => Dict::Text {
                values: TextValues::default(),
                last: None,
            },
        };
        Ok(DictChunk {
            codec: Codec::new(props.compression(descr.path()))?,
            descr,
            dict,
            keys: Vec::new(),
            defs: Vec::new(),
            rows: 0,
            used: stats.then(Vec::new),
            value_bytes: 0,
            pending: 0,
            present: 0,
            pages: Vec::new(),
            page_rows: props.data_page_row_count_limit().clamp(1, 1 << 20),
            dictionary_limit: props.dictionary_page_size_limit(),
            dictionary_bytes: 0,
            page_bytes: props.data_page_size_limit().max(1),
            plain: None,
        })
    }

    /// A rough size of the chunk once encoded, for rolling parts by size.
    pub fn estimated_bytes(&self) -> usize {
        let dict = match &self.dict {
            Dict::Text { values, .. } => values.page.len(),
            Dict::Int32 { values, .. } => values.len() * 4,
        };
        let pages: usize = self.pages.iter().map(|(p, _)| p.data().len()).sum();
        let plain = self.plain.as_ref().map_or(0, |p| p.values.len());
        pages + self.keys.len() * 2 + dict + plain
    }

    /// Adds a batch's column: a dictionary array of `UInt16` keys and Utf8 values, or an
    /// Int32 or Date32 array, as the chunk was made for.
    pub fn append(&mut self, array: &ArrayRef) -> Result<()> {
        let nullable = self.nullable();
        if array.null_count() > 0 && !nullable {
            return Err(ParquetError::General(format!(
                "{}: nulls in a required column",
                self.descr.path()
            )));
        }
        if let Dict::Int32 { .. } = self.dict {
            return match array.data_type() {
                DataType::Int32 => self.append_int32(array.as_primitive::<Int32Type>()),
                DataType::Date32 => self.append_int32(array.as_primitive::<Date32Type>()),
                other => Err(ParquetError::General(format!(
                    "{}: {other} where 32-bit integers were",
                    self.descr.path()
                ))),
            };
        }
        let dict = array.as_dictionary_opt::<UInt16Type>().ok_or_else(|| {
            ParquetError::General(format!("{} is not a UInt16 dictionary", self.descr.path()))
        })?;
        if self.plain.is_some() {
            return self.append_plain(dict);
        }
        let Dict::Text { values, last } = &mut self.dict else {
            unreachable!("the 32-bit integer case returned above")
        };
        let same = matches!(last, Some((v, _)) if Arc::ptr_eq(v, dict.values()));
        if !same {
            let text = dict.values().as_string_opt::<i32>().ok_or_else(|| {
                ParquetError::General(format!(
                    "{}: dictionary values are not Utf8",
                    self.descr.path()
                ))
            })?;
            let mut map = Vec::with_capacity(text.len());
            for i in 0..text.len() {
                let value = text.value(i).as_bytes();
                let key = match values.find(value) {
                    Ok(k) => k,
                    // A full dictionary takes no more values: the rows that hold one go PLAIN.
                    Err(_) if self.dictionary_bytes >= self.dictionary_limit => UNMAPPED,
                    Err(slot) => {
                        self.dictionary_bytes += 4 + value.len();
                        values.insert(slot, value)
                    }
                };
                map.push(key);
            }
            *last = Some((dict.values().clone(), map));
        }
        let Some((batch_values, map)) = last.take() else {
            unreachable!("set just above")
        };
        // The first row whose value is not in the dictionary: from it on, rows go PLAIN.
        let cut = if self.dictionary_bytes >= self.dictionary_limit {
            dict.keys()
                .iter()
                .position(|k| k.is_some_and(|k| map.get(usize::from(k)) == Some(&UNMAPPED)))
        } else {
            None
        };
        let coded = match cut {
            Some(row) => self.append_keys(&dict.slice(0, row), &map),
            None => self.append_keys(dict, &map),
        };
        if let Dict::Text { last, .. } = &mut self.dict {
            *last = Some((batch_values, map));
        }
        coded?;
        if self.dictionary_bytes >= self.dictionary_limit {
            // The rows so far stay dictionary-coded; the rest go PLAIN.
            if self.pending > 0 {
                self.encode_page(self.pending)?;
            }
            self.plain = Some(Plain::default());
        }
        match cut {
            Some(row) => self.append_plain(&dict.slice(row, dict.len() - row)),
            None => Ok(()),
        }
    }

    /// Adds a batch's rows as keys of the chunk's dictionary (`map`: the batch's keys to the
    /// chunk's; every row's value is mapped).
    fn append_keys(&mut self, dict: &DictionaryArray<UInt16Type>, map: &[u32]) -> Result<()> {
        let nullable = self.nullable();
        let keys = dict.keys();
        let n = keys.len();
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
                    self.keys
                        .extend(keys.values().iter().map(|&k| u32::from(k)));
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
        if let (Some(used), Dict::Text { values, .. }) = (&mut self.used, &self.dict) {
            used.resize(values.len(), false);
            for &k in &self.keys[before..] {
                used[k as usize] = true;
                self.value_bytes += values.get(k).len() as i64;
            }
        }
        self.added(n, before)
    }

    /// Adds a batch's text as PLAIN values, once the dictionary is full.
    fn append_plain(&mut self, dict: &DictionaryArray<UInt16Type>) -> Result<()> {
        let nullable = self.nullable();
        let stats = self.used.is_some();
        let text = dict.values().as_string_opt::<i32>().ok_or_else(|| {
            ParquetError::General(format!(
                "{}: dictionary values are not Utf8",
                self.descr.path()
            ))
        })?;
        for i in 0..dict.len() {
            let present = dict.is_valid(i);
            if nullable {
                self.defs.push(present as u8);
            }
            if present {
                let k = dict.keys().value(i) as usize;
                if k >= text.len() {
                    return Err(bad_key(k as u16));
                }
                let v = text.value(k).as_bytes();
                let plain = self.plain.as_mut().expect("in PLAIN mode");
                plain
                    .values
                    .extend_from_slice(&(v.len() as u32).to_le_bytes());
                plain.values.extend_from_slice(v);
                if stats {
                    if plain.min.as_deref().is_none_or(|m| v < m) {
                        plain.min = Some(v.to_vec());
                    }
                    if plain.max.as_deref().is_none_or(|m| v > m) {
                        plain.max = Some(v.to_vec());
                    }
                    self.value_bytes += v.len() as i64;
                }
                self.present += 1;
            }
            self.rows += 1;
            self.pending += 1;
            let full = self.plain.as_ref().map_or(0, |p| p.values.len()) >= self.page_bytes;
            if self.pending >= self.page_rows || full {
                self.encode_plain_page()?;
            }
        }
        Ok(())
    }

    /// Encodes every pending row as a PLAIN data page.
    fn encode_plain_page(&mut self) -> Result<()> {
        let rows = self.pending;
        let (mut buf, _) = self.take_levels(rows);
        if let Some(plain) = &mut self.plain {
            buf.append(&mut plain.values);
        }
        self.push_page(buf, rows, Encoding::PLAIN)
    }

    /// A data page's start: the definition levels of the first `rows` pending rows, when the
    /// column is nullable (taken off the pending ones), and how many of them hold a value.
    fn take_levels(&mut self, rows: usize) -> (Vec<u8>, usize) {
        let mut buf = Vec::new();
        if !self.nullable() {
            return (buf, rows);
        }
        let defs = &self.defs[..rows];
        let mut levels = Vec::new();
        encode_hybrid(defs, 1, &mut levels);
        buf.extend_from_slice(&(levels.len() as u32).to_le_bytes());
        buf.extend_from_slice(&levels);
        let present = defs.iter().filter(|&&d| d == 1).count();
        self.defs.drain(..rows);
        (buf, present)
    }

    /// Compresses a data page of `rows` pending rows and counts them out of the pending ones.
    fn push_page(&mut self, buf: Vec<u8>, rows: usize, encoding: Encoding) -> Result<()> {
        let page = self.codec.page(buf, |buf| Page::DataPage {
            buf,
            num_values: rows as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        })?;
        self.pages.push((page, rows));
        self.pending -= rows;
        Ok(())
    }

    /// Whether the column takes nulls (and so its pages carry definition levels).
    fn nullable(&self) -> bool {
        self.descr.max_def_level() > 0
    }

    /// Counts `n` rows just appended (their keys from `keys_before` on) and encodes the pages
    /// they fill.
    fn added(&mut self, n: usize, keys_before: usize) -> Result<()> {
        self.rows += n;
        self.pending += n;
        self.present += self.keys.len() - keys_before;
        while self.pending >= self.page_rows {
            self.encode_page(self.page_rows)?;
        }
        Ok(())
    }

    /// Encodes the first `rows` pending rows as a data page: definition levels when the column
    /// is nullable, then the indices at the bit width the dictionary needs so far.
    fn encode_page(&mut self, rows: usize) -> Result<()> {
        // At least one bit, so that even a one-entry dictionary reads with any reader.
        let bit_width = bit_width(self.dict.len()).max(1);
        let (mut buf, present) = self.take_levels(rows);
        buf.push(bit_width);
        encode_hybrid(&self.keys[..present], bit_width, &mut buf);
        self.keys.drain(..present);
        self.push_page(buf, rows, Encoding::RLE_DICTIONARY)
    }

    /// Interns each present value, through a direct-mapped cache of recent values in front of
    /// the map (dates, day counts and ranks span a few thousand values at most, so nearly every
    /// lookup is one compare), and keeps the range for statistics.
    fn append_int32<T>(&mut self, array: &PrimitiveArray<T>) -> Result<()>
    where
        T: arrow_array::ArrowPrimitiveType<Native = i32>,
    {
        let nullable = self.nullable();
        let Dict::Int32 {
            values,
            lookup,
            range,
            cache,
        } = &mut self.dict
        else {
            unreachable!("called for 32-bit integer chunks only")
        };
        let n = array.len();
        self.keys.reserve(n);
        let before = self.keys.len();
        let mut intern = |v: i32| -> u32 {
            let slot = &mut cache[v as u32 as usize % INT_CACHE];
            // A slot holds a value and its key plus one (0: empty).
            if slot.1 != 0 && slot.0 == v {
                return slot.1 - 1;
            }
            let k = *lookup.entry(v).or_insert_with(|| {
                values.push(v);
                (values.len() - 1) as u32
            });
            *slot = (v, k + 1);
            k
        };
        let (lo, hi) = match array.nulls().filter(|v| v.null_count() > 0) {
            None => {
                self.keys.extend(array.values().iter().map(|&v| intern(v)));
                if nullable {
                    self.defs.resize(self.defs.len() + n, 1);
                }
                let v = array.values();
                (v.iter().copied().min(), v.iter().copied().max())
            }
            Some(valid) => {
                let (mut lo, mut hi) = (None::<i32>, None::<i32>);
                for (i, &v) in array.values().iter().enumerate() {
                    let present = valid.is_valid(i);
                    self.defs.push(present as u8);
                    if present {
                        self.keys.push(intern(v));
                        lo = Some(lo.map_or(v, |l| l.min(v)));
                        hi = Some(hi.map_or(v, |h| h.max(v)));
                    }
                }
                (lo, hi)
            }
        };
        if let (Some(lo), Some(hi)) = (lo, hi) {
            *range = Some(range.map_or((lo, hi), |(l, h)| (l.min(lo), h.max(hi))));
        }
        self.added(n, before)
    }

    /// Encodes the chunk: its bytes (dictionary page first, offsets from 0) and what
    /// `append_column` needs to know of them.
    pub fn close(mut self, props: &WriterProperties) -> Result<(Bytes, ColumnCloseResult)> {
        // The rest of the rows, and one page at least, so that an empty chunk is a valid one.
        if self.plain.is_some() {
            if self.pending > 0 {
                self.encode_plain_page()?;
            }
        } else if self.pending > 0 || self.pages.is_empty() {
            self.encode_page(self.pending)?;
        }
        let compression = props.compression(self.descr.path());
        let mut sink = TrackedWrite::new(Vec::new());
        let mut pages = SerializedPageWriter::new(&mut sink);
        let mut encodings = vec![Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY];
        encodings.sort();
        let (mut compressed, mut uncompressed) = (0i64, 0i64);

        // Text values are held in the page's layout already.
        let plain = match &self.dict {
            Dict::Text { values, .. } => values.page.clone(),
            Dict::Int32 { values, .. } => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        let spec = pages.write_page(self.codec.page(plain, |buf| Page::DictionaryPage {
            buf,
            num_values: self.dict.len() as u32,
            encoding: props.dictionary_page_encoding(),
            is_sorted: false,
        })?)?;
        compressed += spec.compressed_size as i64;
        uncompressed += spec.uncompressed_size as i64;
        let dictionary_offset = spec.offset as i64;

        let mut offsets = (!props.offset_index_disabled()).then(OffsetIndexBuilder::new);
        let mut data_offset = None;
        for (page, rows) in std::mem::take(&mut self.pages) {
            let spec = pages.write_page(page)?;
            compressed += spec.compressed_size as i64;
            uncompressed += spec.uncompressed_size as i64;
            data_offset.get_or_insert(spec.offset as i64);
            if let Some(o) = &mut offsets {
                o.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
                o.append_row_count(rows as i64);
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
        let nulls = (self.rows - self.present) as u64;
        match (&self.dict, &self.used) {
            (Dict::Text { values, .. }, Some(used)) => {
                let mut present = values.iter().zip(used).filter(|(_, u)| **u).map(|(v, _)| v);
                let first = present.next();
                let (mut min, mut max) = present.fold((first, first), |(lo, hi), v| {
                    (lo.min(Some(v)), hi.max(Some(v)))
                });
                if let Some(plain) = &self.plain {
                    // `None` is below every value: take the other side's where one is missing.
                    min = match (min, plain.min.as_deref()) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    max = max.max(plain.max.as_deref());
                }
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
            (Dict::Int32 { range, .. }, Some(_)) => {
                // As arrow-rs writes them: a signed sort order keeps the deprecated min/max too.
                let stats = ValueStatistics::new(
                    range.map(|r| r.0),
                    range.map(|r| r.1),
                    None,
                    Some(nulls),
                    false,
                )
                .with_backwards_compatible_min_max(self.descr.sort_order().is_signed());
                meta = meta.set_statistics(Statistics::Int32(stats));
            }
            _ => {}
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
    out.reserve(groups * usize::from(width));
    // Eight values of `width` bits are `width` bytes: a group at a time through 64 bits up to
    // width 8, two halves of four values joined in 128 bits up to 16 (one wide shift a group,
    // not one a value), and two 128-bit halves beyond.
    for group in values.chunks(8) {
        let mut v = [0u64; 8];
        for (slot, &x) in v.iter_mut().zip(group) {
            *slot = x.into();
        }
        let w = u32::from(width);
        if width <= 8 {
            let acc = (0..8).fold(0u64, |acc, j| acc | v[j] << (j as u32 * w));
            out.extend_from_slice(&acc.to_le_bytes()[..usize::from(width)]);
            continue;
        }
        if width <= 16 {
            let lo = (0..4).fold(0u64, |acc, j| acc | v[j] << (j as u32 * w));
            let hi = (0..4).fold(0u64, |acc, j| acc | v[4 + j] << (j as u32 * w));
            let acc = u128::from(lo) | u128::from(hi) << (4 * w);
            out.extend_from_slice(&acc.to_le_bytes()[..usize::from(width)]);
            continue;
        }
        let mut acc = [0u128; 2];
        for (j, &x) in v.iter().enumerate() {
            acc[j / 4] |= u128::from(x) << ((j % 4) * usize::from(width));
        }
        // Four values of `width` bits are `width / 2` bytes when `width` is even; an odd
        // width leaves half a byte between the halves, so they are joined bit by bit: the
        // second half's low bits complete the first 16 bytes, its high bits follow (at width
        // 32 the first half fills all 128 bits, and the shift would overflow).
        let (a, b) = (acc[0], acc[1]);
        let bits = 4 * w; // 68 to 128
        let whole = a | b.checked_shl(bits).unwrap_or(0);
        let high = b >> (128 - bits);
        out.extend_from_slice(&whole.to_le_bytes());
        out.extend_from_slice(&high.to_le_bytes()[..usize::from(width) - 16]);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hybrid(values: &[u16], width: u8) -> Vec<u8> {
        let mut out = Vec::new();
        encode_hybrid(values, width, &mut out);
        out
    }

    /// The format's own example (parquet-format, Encodings.md): 0 to 7 at three bits is one
    /// bit-packed group, `10001000 11000110 11111010`.
    #[test]
    fn bit_packs_as_the_format_describes() {
        let values: Vec<u16> = (0..8).collect();
        assert_eq!(
            hybrid(&values, 3),
            [0b11, 0b1000_1000, 0b1100_0110, 0b1111_1010]
        );
        // A short tail is one group, padded with zeros.
        assert_eq!(hybrid(&[2], 3), [0b11, 2, 0, 0]);
        // Sixteen bits: two bytes a value, little-endian.
        let wide = hybrid(&[0x1234; 3], 16);
        assert_eq!(&wide[..3], [0b11, 0x34, 0x12]);
        assert_eq!(wide.len(), 1 + 16);
    }

    #[test]
    fn runs_of_eight_or_more_are_rle_runs_where_a_group_starts() {
        // Nine equal values: one RLE run (header 9 << 1, the value in one byte), then the rest.
        assert_eq!(
            hybrid(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 2], 3),
            [18, 1, 0b11, 2, 0, 0]
        );
        // A run starting mid-group stays bit-packed up to the group's end: eight values packed,
        // then the run's remaining ten values as a run.
        let mut v = vec![0u16, 1, 2];
        v.extend([7; 15]);
        let out = hybrid(&v, 3);
        assert_eq!(out[0], 0b11); // one bit-packed group
        assert_eq!(&out[4..], [20, 7]); // then a run of ten sevens
        // One value throughout: a single run, whatever the length.
        assert_eq!(hybrid(&[3; 100_000], 2), [0xc0, 0x9a, 0x0c, 3]);
        assert!(hybrid(&[], 5).is_empty());
    }

    /// Every width up to 32 packs as a bit-by-bit reference packs (LSB first).
    #[test]
    fn every_width_packs_bit_by_bit() {
        for width in 1..=32u8 {
            let mask = if width == 32 {
                u32::MAX
            } else {
                (1u32 << width) - 1
            };
            let values: Vec<u32> = (0..21u32)
                .map(|i| i.wrapping_mul(2_654_435_761) & mask)
                .collect();
            let mut got = Vec::new();
            bit_pack(&values, width, &mut got);
            let groups = values.len().div_ceil(8);
            let mut want = vec![((groups as u8) << 1) | 1];
            let mut bits = vec![false; groups * 8 * width as usize];
            for (j, v) in values.iter().enumerate() {
                for b in 0..width as usize {
                    bits[j * width as usize + b] = (v >> b) & 1 == 1;
                }
            }
            want.extend(bits.chunks(8).map(|byte| {
                byte.iter()
                    .enumerate()
                    .fold(0u8, |acc, (b, &on)| acc | (u8::from(on) << b))
            }));
            assert_eq!(got, want, "width {width}");
        }
    }

    #[test]
    fn bit_width_fits_the_largest_index() {
        assert_eq!(bit_width(1), 0);
        assert_eq!(bit_width(2), 1);
        assert_eq!(bit_width(23), 5);
        assert_eq!(bit_width(180), 8);
        assert_eq!(bit_width(65_536), 16);
    }
}
