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
        let shard = &mut self.shards[(hash >> (64 - SHARD_BITS)) as usize];
        let bytes = hash.to_be_bytes();
        let rest = &bytes[8 - WIDTH..];
        let want = hash & ((1 << (8 * WIDTH)) - 1);
        let (mut lo, mut hi) = (0, shard.len() / WIDTH);
        while lo < hi {
            let mid = (lo + hi) / 2;
            // Compared as integers: a slice comparison would call memcmp for six bytes.
            match remainder(&shard[mid * WIDTH..(mid + 1) * WIDTH]).cmp(&want) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return false,
            }
        }
        if shard.len() == shard.capacity() {
            // Grow by a quarter: slack stays small, and no shard ever doubles a large table.
            shard.reserve_exact(shard.len() / 4 + 8 * WIDTH);
        }
        shard.extend_from_slice(rest);
        shard[lo * WIDTH..].rotate_right(WIDTH);
        self.len += 1;
        true
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
}
