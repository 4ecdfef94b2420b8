//! The connection's streams by id: a small keyed hash index over a paged
//! slab of stream records.
//!
//! ```text
//!   index: StreamId ──hash──► slot (u32)       8 bytes an entry
//!   pages: [ page 0: 64 × Option<Stream> ][ page 1 ] ...
//!   free:  slots to reuse, most recently freed first
//! ```
//!
//! Why not `HashMap<StreamId, Stream>`:
//!
//! * **Hashing cost.** std's SipHash was a fifth of the instructions of a
//!   short-lived stream (docs/performance.md). Peers choose stream ids, so
//!   the hash must still be keyed, or a peer could pick ids that collide and
//!   turn every lookup into a scan. [`IdHasher`] is one folded 64×64→128-bit
//!   multiply with secret keys (the construction of `foldhash`), a few
//!   instructions per lookup, and it keeps 8 ids in a row of one opener in
//!   adjacent buckets, so walking streams in id order stays in cache.
//! * **Memory.** The records live in fixed pages that never move, so growth
//!   costs one page, not a doubling of a 180-byte-per-bucket table, and the
//!   index that lookups probe stays small (8 bytes an entry): about 195
//!   bytes per idle stream in all.
//!
//! Determinism: the keys are the only randomness in the crate, and nothing
//! observable depends on them: [`StreamTable::iter`] follows the index, so
//! its order depends on the keys, and every caller that lets an order show
//! (closing the connection resets streams in order) sorts first.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

use super::stream::Stream;
use crate::StreamId;

/// Records per page: 64 × 176 bytes, 11 KiB.
const PAGE: usize = 64;

/// Where a stream's record sits, from [`StreamTable::find`]: a lookup done
/// once, so code that touches the same stream several times in a row (a
/// frame, then its state update) hashes once. Valid until the record is
/// removed; the connection removes records only in `poll_event`.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub id: StreamId,
    index: u32,
}

/// Streams by id.
#[derive(Debug)]
pub struct StreamTable {
    index: HashMap<StreamId, u32, IdHashBuilder>,
    pages: Vec<Box<[Option<Stream>]>>,
    /// Vacant slots; the last one freed is reused first (it is warm).
    free: Vec<u32>,
}

impl Default for StreamTable {
    fn default() -> StreamTable {
        StreamTable {
            index: HashMap::with_hasher(IdHashBuilder::new()),
            pages: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl StreamTable {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether `id` has a record.
    pub fn contains_key(&self, id: &StreamId) -> bool {
        self.index.contains_key(id)
    }

    /// Where the record of `id` is.
    pub fn find(&self, id: StreamId) -> Option<Slot> {
        Some(Slot { id, index: *self.index.get(&id)? })
    }

    /// Where the record of `id` is, and the record: for code that updates
    /// the stream through its slot afterwards.
    #[inline]
    pub fn find_mut(&mut self, id: StreamId) -> Option<(Slot, &mut Stream)> {
        let slot = self.find(id)?;
        Some((slot, self.at_mut(slot)?))
    }

    /// The record at `slot` (`None` only if it was removed since `find`).
    pub fn at_mut(&mut self, slot: Slot) -> Option<&mut Stream> {
        self.record_mut(slot.index)?.as_mut()
    }

    /// The record of `id`.
    pub fn get(&self, id: &StreamId) -> Option<&Stream> {
        self.record(*self.index.get(id)?)?.as_ref()
    }

    /// The record of `id`, mutably.
    pub fn get_mut(&mut self, id: &StreamId) -> Option<&mut Stream> {
        self.find_mut(*id).map(|(_, s)| s)
    }

    fn record(&self, index: u32) -> Option<&Option<Stream>> {
        let i = index as usize;
        self.pages.get(i / PAGE).map(|page| &page[i % PAGE])
    }

    fn record_mut(&mut self, index: u32) -> Option<&mut Option<Stream>> {
        let i = index as usize;
        self.pages.get_mut(i / PAGE).map(|page| &mut page[i % PAGE])
    }

    /// Adds the record of `id`, which must not have one (the connection
    /// checks that first: a known id is a protocol error, not a replacement).
    pub fn insert(&mut self, id: StreamId, stream: Stream) -> Slot {
        debug_assert!(!self.index.contains_key(&id), "stream {id} inserted twice");
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                // Slots are u32: 2^32 records of 176 bytes would be 700 GiB,
                // far beyond what `max_streams` lets a connection hold.
                let first = self.pages.len() * PAGE;
                self.pages.push((0..PAGE).map(|_| None).collect());
                self.free.extend((first as u32 + 1..(first + PAGE) as u32).rev());
                first as u32
            }
        };
        if let Some(record) = self.record_mut(slot) {
            *record = Some(stream);
        }
        self.index.insert(id, slot);
        Slot { id, index: slot }
    }

    /// Removes and returns the record of `id`.
    pub fn remove(&mut self, id: &StreamId) -> Option<Stream> {
        let slot = self.index.remove(id)?;
        self.free.push(slot);
        self.record_mut(slot)?.take()
    }

    /// Every record with its id, in an order that depends on the hash keys:
    /// sort before letting it show.
    pub fn iter(&self) -> impl Iterator<Item = (StreamId, &Stream)> {
        self.index.iter().filter_map(|(&id, &slot)| Some((id, self.record(slot)?.as_ref()?)))
    }
}

/// Builds [`IdHasher`]s sharing one connection's secret keys.
#[derive(Clone, Debug)]
pub struct IdHashBuilder {
    seed: u64,
    multiplier: u64,
}

impl IdHashBuilder {
    /// Fresh secret keys, drawn from std's `RandomState` (randomly keyed per
    /// thread at first use, then varied per instance).
    pub fn new() -> IdHashBuilder {
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
/// through one folded multiply with secret keys; its position in the block
/// is kept as the low bits and mixed into hashbrown's 7-bit tag. So the 8
/// ids of a block sit in 8 adjacent buckets, one cache line, while blocks
/// land where the keys put them. Keeping the two openers' ids in separate
/// blocks keeps blocks dense: sparse blocks overlap each other and fill
/// hashbrown's probe groups, whose erasures then leave tombstones. Peers open ids in sequence, so a connection that touches its
/// streams in turn (round-robin over 100,000 streams) misses the cache once
/// per block instead of once per lookup: that took the per-frame cost there
/// from about 2x to about 1x the one-stream cost (docs/performance.md).
///
/// Against a hostile peer: without the keys it cannot tell where a block
/// lands, so it cannot build collisions offline; choosing ids inside one
/// block buys at most 8 adjacent entries, the same as any 8 ids in a
/// row. It is not a MAC, only a guard against hash flooding, like
/// `foldhash` (hashbrown's default hasher), whose mixing step this is.
#[derive(Debug)]
pub struct IdHasher {
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
    use crate::config::DEFAULT_WINDOW as WINDOW;

    #[test]
    fn insert_get_remove_reuses_slots() {
        let mut table = StreamTable::default();
        for n in 1..=200u32 {
            table.insert(StreamId(n), Stream::new(n % 2 == 1, WINDOW + n));
        }
        assert_eq!(table.len(), 200);
        assert_eq!(table.pages.len(), 4, "200 records fill four pages of 64");
        assert_eq!(table.get(&StreamId(77)).map(|s| s.recv.window_size), Some(WINDOW + 77));
        table.get_mut(&StreamId(77)).unwrap().recv.window = 7;
        assert_eq!(table.get(&StreamId(77)).map(|s| s.recv.window), Some(7));
        assert_eq!(table.remove(&StreamId(77)).map(|s| s.recv.window), Some(7));
        assert!(table.get(&StreamId(77)).is_none());
        assert!(table.remove(&StreamId(77)).is_none());
        // The freed slot is reused: no new page for the next record.
        table.insert(StreamId(1000), Stream::new(false, WINDOW));
        assert_eq!(table.pages.len(), 4);
        assert_eq!(table.len(), 200);
        let mut ids: Vec<u32> = table.iter().map(|(id, _)| id.0).collect();
        ids.sort_unstable();
        let expected: Vec<u32> = (1..=200).filter(|&n| n != 77).chain([1000]).collect();
        assert_eq!(ids, expected);
    }

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
