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
//!   turn every lookup into a scan. [`IdHasher`](crate::id_hash::IdHasher)
//!   is two folded 64×64→128-bit multiplies with secret keys (the mixing
//!   step of `foldhash`), a few instructions per lookup, and it keeps 8 ids
//!   in a row of one opener in adjacent buckets, so walking streams in id
//!   order stays in cache.
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

use super::stream::Stream;
use crate::id_hash::IdHashBuilder;
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
    #[cfg(any(test, feature = "testing"))]
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
}
