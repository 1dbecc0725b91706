//! The duplicate-key check, in record order across chunks: the first record with a key wins.

use super::*;

/// The one sequential step: `duplicate_key` needs the file's order. Chunks come to it checked
/// (possibly by several threads) and in order; the first record with a key stays, a later one is
/// taken out of its batch and quarantined. Rejected records never reach it, so they claim no key.
pub(crate) struct Deduper<'c> {
    contract: &'c Contract,
    encoding: Encoding,
    seen: crate::keyset::KeySet,
    /// Per key of the chunk at hand: whether it was new (reused from chunk to chunk).
    fresh: Vec<bool>,
    hashes: Vec<u64>,
    /// Counts and sums of the file so far.
    pub stats: Stats,
}

impl<'c> Deduper<'c> {
    /// A deduper for one file.
    pub fn new(contract: &'c Contract, profile: &Profile) -> Self {
        Deduper {
            contract,
            encoding: profile.encoding,
            seen: crate::keyset::KeySet::default(),
            fresh: Vec::new(),
            hashes: Vec::new(),
            stats: Stats::for_contract(contract),
        }
    }

    /// Applies the duplicate-key rule to the next chunk (`chunk` is the one `checked` came from).
    pub fn apply(
        &mut self,
        checked: Checked,
        chunk: &Chunk,
    ) -> Result<ChunkOutput, crate::error::Error> {
        self.stats.merge(&checked.stats);
        let mut drop: Vec<Vec<bool>> = Vec::new();
        let mut duplicates = Vec::new();
        self.hashes.clear();
        self.hashes.extend(checked.keys.iter().map(|k| k.hash));
        self.seen.insert_batch(&self.hashes, &mut self.fresh);
        for (k, _) in checked
            .keys
            .iter()
            .zip(&self.fresh)
            .filter(|(_, new)| !**new)
        {
            if drop.is_empty() {
                drop = checked
                    .batches
                    .iter()
                    .map(|(_, b)| vec![false; b.num_rows()])
                    .collect();
            }
            let (batch, row) = (k.batch as usize, k.row as usize);
            drop[batch][row] = true;
            let batch_ref = &checked.batches[batch].1;
            for (t, &c) in self.contract.control_totals.iter().enumerate() {
                self.stats.totals[t] -= numeric_value(batch_ref.column(c).as_ref(), row);
            }
            let rejected = Rejected {
                record_number: k.record,
                column: String::new(),
                reason: Reason::DuplicateKey,
                value: String::new(),
                record: join_record(
                    self.encoding,
                    &chunk.record((k.record - chunk.first_record) as usize),
                ),
            };
            self.stats.rows_ok -= 1;
            self.stats.reject(&rejected);
            duplicates.push(rejected);
        }
        let mut batches = checked.batches;
        if !drop.is_empty() {
            for ((_, batch), drop) in batches.iter_mut().zip(&drop) {
                if drop.iter().any(|&d| d) {
                    let keep = arrow_array::BooleanArray::from(
                        drop.iter().map(|&d| !d).collect::<Vec<_>>(),
                    );
                    *batch = arrow_select::filter::filter_record_batch(batch, &keep)?;
                }
            }
            batches.retain(|(_, b)| b.num_rows() > 0);
        }
        Ok(ChunkOutput {
            batches,
            rejects: merge_by_record(checked.rejects, duplicates),
        })
    }
}

/// A decimal (of any width a batch holds, `schema::narrow_decimal`) or Int64 cell as a scaled
/// integer (0 for null or another type).
fn numeric_value(a: &dyn arrow_array::Array, i: usize) -> i128 {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal32Type, Decimal64Type, Decimal128Type, Int64Type};
    if a.is_null(i) {
        return 0;
    }
    match a.data_type() {
        arrow_schema::DataType::Decimal128(..) => a.as_primitive::<Decimal128Type>().value(i),
        arrow_schema::DataType::Decimal64(..) => {
            i128::from(a.as_primitive::<Decimal64Type>().value(i))
        }
        arrow_schema::DataType::Decimal32(..) => {
            i128::from(a.as_primitive::<Decimal32Type>().value(i))
        }
        arrow_schema::DataType::Int64 => i128::from(a.as_primitive::<Int64Type>().value(i)),
        _ => 0,
    }
}

/// Merges two lists of rejects, each in record order, into one in record order.
fn merge_by_record(a: Vec<Rejected>, b: Vec<Rejected>) -> Vec<Rejected> {
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.record_number <= y.record_number,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
    out
}
