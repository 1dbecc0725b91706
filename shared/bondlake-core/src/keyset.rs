//! The set of key hashes one file has shown, for `duplicate_key`: exact to the 64-bit hash, in
//! about 6.7 bytes a key and without the doubling spikes of a hash table.
//!
//! The hash's top 16 bits pick one of 65,536 shards; each shard is a sorted run of the remaining
//! 48 bits, 6 bytes each (big-endian, so byte order is numeric order). At 10 million keys a shard
//! holds about 150 entries: a binary search and a short shift per insert, and each shard grows on
//! its own, so memory rises smoothly (measured in README, Benchmark).

const SHARD_BITS: u32 = 16;
const WIDTH: usize = 6;

/// A set of 64-bit hashes.
pub struct KeySet {
    shards: Vec<Vec<u8>>,
    len: usize,
}

impl Default for KeySet {
    fn default() -> Self {
        KeySet {
            shards: (0..1usize << SHARD_BITS).map(|_| Vec::new()).collect(),
            len: 0,
        }
    }
}

impl KeySet {
    /// Adds `hash`; false when it was already there.
    #[inline]
    pub fn insert(&mut self, hash: u64) -> bool {
        let shard = &mut self.shards[shard_of(hash)];
        let bytes = hash.to_be_bytes();
        let rest = &bytes[8 - WIDTH..];
        let want = hash & ((1 << (8 * WIDTH)) - 1);
        let (mut lo, mut hi) = (0, shard.len() / WIDTH);
        while lo < hi {
            let mid = (lo + hi) / 2;
            // Compared as integers: a slice comparison would call memcmp for six bytes.
            match entry(shard, mid).cmp(&want) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return false,
            }
        }
        if shard.capacity() - shard.len() < WIDTH {
            // Grow by a quarter: slack stays small, and no shard ever doubles a large table.
            // Whole entries, so that the capacity stays a multiple of WIDTH: any other left
            // `extend_from_slice` a few bytes short of the next entry, and it doubled the shard.
            shard.reserve_exact((shard.len() / 4).next_multiple_of(WIDTH) + 8 * WIDTH);
        }
        shard.extend_from_slice(rest);
        shard[lo * WIDTH..].rotate_right(WIDTH);
        self.len += 1;
        true
    }

    /// Adds every hash of `hashes` in order, as [`KeySet::insert`] one at a time would, and
    /// says for each whether it was new. Looking a key up is a few cache misses (its shard's
    /// header, then its sorted run); here each key's are requested ahead while earlier keys are
    /// inserted, so the misses overlap instead of coming one after another.
    pub fn insert_batch(&mut self, hashes: &[u64], fresh: &mut Vec<bool>) {
        /// How far ahead the shard's header is requested, and (half as far) its sorted run.
        const AHEAD: usize = 16;
        fresh.clear();
        fresh.reserve(hashes.len());
        for (i, &h) in hashes.iter().enumerate() {
            if let Some(&later) = hashes.get(i + AHEAD) {
                prefetch(&self.shards[shard_of(later)] as *const Vec<u8> as *const u8);
            }
            if let Some(&soon) = hashes.get(i + AHEAD / 2) {
                let run = &self.shards[shard_of(soon)];
                // A run is at most a few cache lines: ask for its first, middle and last.
                if !run.is_empty() {
                    let p = run.as_ptr();
                    prefetch(p);
                    prefetch(p.wrapping_add(run.len() / 2));
                    prefetch(p.wrapping_add(run.len() - 1));
                }
            }
            fresh.push(self.insert(h));
        }
    }

    /// Hashes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no hash is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The shard a hash lives in: its top bits.
#[inline(always)]
fn shard_of(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

/// Asks the CPU to bring the cache line holding `p` in, without waiting for it (a no-op where
/// no stable instruction is at hand).
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// Entry `i` of a shard's sorted run as a number: one eight-byte load where the run goes on two
/// bytes past it (every entry but the last), else its six bytes one by one.
#[inline]
fn entry(shard: &[u8], i: usize) -> u64 {
    let at = i * WIDTH;
    match shard
        .get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        Some(word) => u64::from_be_bytes(word) >> 16,
        None => remainder(&shard[at..at + WIDTH]),
    }
}

/// Six big-endian bytes as a number.
#[inline]
fn remainder(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn behaves_like_a_hash_set(hashes in proptest::collection::vec(any::<u64>(), 0..2000), dup_every in 1usize..7) {
            let mut mine = KeySet::default();
            let mut reference = std::collections::HashSet::new();
            for (i, h) in hashes.iter().enumerate() {
                // Reuse earlier hashes often, and hashes that share a shard or the low 48 bits.
                let h = if i % dup_every == 0 && i > 0 { hashes[i / 2] } else { *h };
                let h = if i % 5 == 0 { h & 0xFFFF_0000_0000_0000 | (i as u64 & 7) } else { h };
                prop_assert_eq!(mine.insert(h), reference.insert(h));
            }
            prop_assert_eq!(mine.len(), reference.len());
        }
    }

    proptest! {
        #[test]
        fn a_batch_says_what_one_at_a_time_says(hashes in proptest::collection::vec(any::<u64>(), 0..3000), dup_every in 1usize..7, split in 0usize..3000) {
            let hashes: Vec<u64> = hashes
                .iter()
                .enumerate()
                .map(|(i, &h)| if i % dup_every == 0 && i > 0 { hashes[i / 2] } else { h })
                .collect();
            let (mut one, mut batched) = (KeySet::default(), KeySet::default());
            let singly: Vec<bool> = hashes.iter().map(|&h| one.insert(h)).collect();
            // Two batches, so the second sees the first's keys.
            let (a, b) = hashes.split_at(split.min(hashes.len()));
            let (mut fa, mut fb) = (Vec::new(), Vec::new());
            batched.insert_batch(a, &mut fa);
            batched.insert_batch(b, &mut fb);
            fa.extend(fb);
            prop_assert_eq!(fa, singly);
            prop_assert_eq!(batched.len(), one.len());
        }
    }

    #[test]
    fn the_top_bits_are_part_of_the_identity() {
        let mut s = KeySet::default();
        assert!(s.insert(0x0001_0000_0000_0005));
        assert!(
            s.insert(0x0002_0000_0000_0005),
            "same low 48 bits, other shard"
        );
        assert!(!s.insert(0x0001_0000_0000_0005));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_shard_grows_by_a_quarter_and_never_doubles() {
        let mut s = KeySet::default();
        for i in 0..20_000u64 {
            // Distinct low 48 bits (an odd multiplier), all in shard 7.
            assert!(s.insert((7 << 48) | (i.wrapping_mul(0x9E37_79B9) & ((1 << 48) - 1))));
            let shard = &s.shards[7];
            assert_eq!(shard.capacity() % WIDTH, 0, "whole entries, at {i}");
            assert!(
                shard.capacity() <= shard.len() + shard.len() / 4 + 9 * WIDTH,
                "{} bytes held for {} at {i}",
                shard.capacity(),
                shard.len()
            );
        }
    }
}
