//! The hash for maps keyed by [`StreamId`](crate::StreamId): keyed (peers
//! choose ids, so a guessable hash would let them build collisions), cheap
//! (a few instructions, where SipHash was a fifth of a short-lived stream's
//! cost, see docs/performance.md), and local: 8 ids in a row of one opener
//! land in adjacent buckets. Used by the core's stream table and the
//! adapters' stream map.

use std::hash::{BuildHasher, Hasher, RandomState};

/// Builds [`IdHasher`]s sharing one map's secret keys.
#[derive(Clone, Debug)]
pub(crate) struct IdHashBuilder {
    seed: u64,
    multiplier: u64,
}

impl IdHashBuilder {
    /// Fresh secret keys, drawn from std's `RandomState` (randomly keyed per
    /// thread at first use, then varied per instance).
    pub(crate) fn new() -> IdHashBuilder {
        let random = RandomState::new();
        IdHashBuilder {
            seed: random.hash_one(0x7965_6d75_785f_6964_u64),
            // Odd, so multiplying is a bijection and no key bit is lost.
            multiplier: random.hash_one(0x6d75_6c74_6970_6c79_u64) | 1,
        }
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher { id: 0, seed: self.seed, multiplier: self.multiplier }
    }
}

/// A keyed hash for stream ids that keeps neighbouring ids neighbours.
///
/// An id's block (the 8 ids of the same opener among 16 in a row) goes
/// through two folded multiplies with secret keys; its position in the
/// block is kept as the low bits and mixed into hashbrown's 7-bit tag. So
/// the 8 ids of a block sit in 8 adjacent buckets, one cache line, while
/// blocks land where the keys put them. Keeping the two openers' ids in
/// separate blocks keeps blocks dense: sparse blocks overlap each other and
/// fill hashbrown's probe groups, whose erasures then leave tombstones.
/// Peers open ids in sequence, so a connection that touches its streams in
/// turn (round-robin over 100,000 streams) misses the cache once
/// per block instead of once per lookup: that took the per-frame cost there
/// from about 2x to about 1x the one-stream cost (docs/performance.md).
///
/// Against a hostile peer: without the keys it cannot tell where a block
/// lands, so it cannot build collisions offline; choosing ids inside one
/// block buys at most 8 adjacent entries, the same as any 8 ids in a
/// row. It is not a MAC, only a guard against hash flooding, like
/// `foldhash` (hashbrown's default hasher), whose mixing step this is.
#[derive(Debug)]
pub(crate) struct IdHasher {
    id: u64,
    seed: u64,
    multiplier: u64,
}

/// The high and low halves of the 128-bit product, XORed: every input bit
/// affects the high bits hashbrown uses for its tag and the low bits it uses
/// for the bucket.
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for IdHasher {
    /// Only `StreamId` is hashed (one `write_u32`); anything else written is
    /// folded in so the hasher stays total.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.id = folded_multiply(self.id ^ u64::from(b), self.multiplier);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.id ^= u64::from(n);
    }

    fn finish(&self) -> u64 {
        // A block: the 8 ids of one parity (one opener) in a row of 16,
        // numbered consecutively (parity in bit 0) so that consecutive
        // blocks differ in the low bits: with the id's own bits (block
        // number from bit 4 up) the product's low bits took only 16 values
        // and the buckets of 1 key in 10 were badly uneven.
        let number = ((self.id >> 3) & !1) | (self.id & 1);
        let mixed = folded_multiply(number ^ self.seed, self.multiplier);
        let block = folded_multiply(mixed ^ self.seed, self.multiplier);
        let lane = (self.id >> 1) & 7;
        ((block & !7) | lane) ^ (lane << 57)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamId;

    #[test]
    fn hasher_is_keyed() {
        // Two tables hash the same id differently (with overwhelming
        // probability), and one table hashes it the same way every time.
        let a = IdHashBuilder::new();
        let b = IdHashBuilder::new();
        let ids = (0..64u32).map(StreamId);
        let ha: Vec<u64> = ids.clone().map(|id| a.hash_one(id)).collect();
        let hb: Vec<u64> = ids.clone().map(|id| b.hash_one(id)).collect();
        assert_ne!(ha, hb);
        assert_eq!(ha, ids.map(|id| a.hash_one(id)).collect::<Vec<_>>());
    }

    #[test]
    fn sequential_ids_spread_over_buckets_and_tags() {
        // hashbrown takes the bucket from the low bits and a 7-bit tag from
        // the top bits; sequential ids (what peers send) must spread over both.
        let h = IdHashBuilder::new();
        let mut buckets = [0u32; 256];
        let mut tags = [0u32; 128];
        for n in 0..4096u32 {
            let hash = h.hash_one(StreamId(2 * n + 1));
            buckets[(hash & 255) as usize] += 1;
            tags[(hash >> 57) as usize] += 1;
        }
        // 16 per bucket and 32 per tag on average; a poor mix of the blocks
        // piles them up.
        assert!(buckets.iter().all(|&c| c > 2 && c < 48), "bucket loads {buckets:?}");
        assert!(tags.iter().all(|&c| c < 80), "tag loads {tags:?}");
    }

    #[test]
    fn ids_of_a_block_are_adjacent_with_distinct_tags() {
        let h = IdHashBuilder::new();
        for first in [1u32, 16, 16 * 77 + 1, 1 << 20] {
            let hashes: Vec<u64> = (0..8).map(|k| h.hash_one(StreamId(first + 2 * k))).collect();
            let homes: Vec<u64> = hashes.iter().map(|x| x & 0xffff).collect();
            let base = homes[0];
            assert!(homes.iter().enumerate().all(|(k, &b)| b == base + k as u64), "{homes:?}");
            let mut tags: Vec<u64> = hashes.iter().map(|x| x >> 57).collect();
            tags.sort_unstable();
            tags.dedup();
            assert_eq!(tags.len(), 8, "one tag per position in the block");
        }
    }
}
