//! The stream ids the peer has used, so a SYN reusing one is caught even
//! after the stream is forgotten.
//!
//! Peers allocate ids in order but need not send SYNs in order (hashicorp
//! takes an id with a CAS and sends its SYN later, so concurrent opens can
//! arrive swapped): a "must increase" rule would kill healthy sessions.
//! Instead: every id below `floor` counts as used, and used ids above it are
//! kept in a set. The set is bounded; when it is full, the floor moves up
//! past its lowest entry, so a gap left that far behind counts as used. A
//! real peer's reordering is a few ids, far inside the bound.

use std::collections::BTreeSet;

use crate::{Role, StreamId};

#[derive(Debug)]
pub struct UsedIds {
    /// Every peer id below this (of the peer's parity) is used. Wider than
    /// an id so it can pass the largest one: `u32::MAX` is a client id.
    floor: u64,
    /// Used ids at or above `floor`.
    above: BTreeSet<u32>,
    max_above: usize,
}

impl UsedIds {
    /// Ids opened by `peer`, remembering at most `max_above` out-of-order ones.
    pub fn new(peer: Role, max_above: usize) -> UsedIds {
        let floor = match peer {
            Role::Client => 1,
            Role::Server => 2,
        };
        UsedIds { floor, above: BTreeSet::new(), max_above: max_above.max(1) }
    }

    /// Whether `id` was used before.
    pub fn contains(&self, id: StreamId) -> bool {
        u64::from(id.0) < self.floor || self.above.contains(&id.0)
    }

    /// Records `id` (of the peer's parity) as used.
    pub fn insert(&mut self, id: StreamId) {
        if self.contains(id) {
            return;
        }
        // The common case, an id in order: no set operation at all.
        if u64::from(id.0) == self.floor && self.above.is_empty() {
            self.floor += 2;
            return;
        }
        self.above.insert(id.0);
        while self.above.len() > self.max_above {
            if let Some(lowest) = self.above.pop_first() {
                self.floor = u64::from(lowest) + 2;
            }
        }
        while u32::try_from(self.floor).is_ok_and(|floor| self.above.remove(&floor)) {
            self.floor += 2;
        }
        // Ids skipped below the new floor are used too: drop any kept below it.
        while self.above.first().is_some_and(|&low| u64::from(low) < self.floor) {
            self.above.pop_first();
        }
    }

    /// Ids remembered individually (bounded by `max_above`).
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> usize {
        self.above.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_ids_keep_the_set_empty() {
        let mut used = UsedIds::new(Role::Client, 4);
        for n in (1..1000).step_by(2) {
            assert!(!used.contains(StreamId(n)));
            used.insert(StreamId(n));
            assert!(used.contains(StreamId(n)));
            assert_eq!(used.len(), 0);
        }
    }

    #[test]
    fn swapped_ids_are_both_fresh_then_used() {
        let mut used = UsedIds::new(Role::Server, 4);
        used.insert(StreamId(4));
        assert!(!used.contains(StreamId(2)), "a late SYN for a lower id is legitimate");
        used.insert(StreamId(2));
        assert!(used.contains(StreamId(2)) && used.contains(StreamId(4)));
        assert_eq!(used.len(), 0);
    }

    #[test]
    fn gaps_are_bounded_and_fall_behind_the_floor() {
        let mut used = UsedIds::new(Role::Client, 4);
        for n in [5, 9, 13, 17, 21, 25] {
            used.insert(StreamId(n));
            assert!(used.len() <= 4);
        }
        // The oldest gaps (1, 3, 7) are now behind the floor: counted as used.
        assert!(used.contains(StreamId(1)) && used.contains(StreamId(3)));
        assert!(used.contains(StreamId(25)));
        assert!(!used.contains(StreamId(27)));
    }

    #[test]
    fn the_largest_ids_stay_used_once_the_floor_passes_them() {
        // u32::MAX is the last client id, u32::MAX - 1 the last server id.
        for (peer, top) in [(Role::Client, u32::MAX), (Role::Server, u32::MAX - 1)] {
            let mut used = UsedIds::new(peer, 4);
            // Highest first, so the set fills and the floor is pushed up
            // past the top.
            for k in 0..6 {
                used.insert(StreamId(top - 2 * k));
            }
            for k in 0..6 {
                assert!(used.contains(StreamId(top - 2 * k)), "{peer:?}: {} reusable", top - 2 * k);
            }
            assert_eq!(used.len(), 0);
            // In order up to the top: the floor steps past it too.
            let mut used = UsedIds::new(peer, 4);
            used.insert(StreamId(top - 2));
            used.insert(StreamId(top));
            used.insert(StreamId(top - 4));
            assert!(used.contains(StreamId(top)) && used.contains(StreamId(top - 2)));
        }
    }
}
