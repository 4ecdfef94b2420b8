//! One table for every timer of a connection: the earliest deadline is
//! [`Connection::poll_timeout`](crate::Connection::poll_timeout).

use std::collections::BTreeSet;
use std::time::Instant;

use crate::StreamId;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Send the next keep-alive ping.
    KeepAlive,
    /// The oldest outstanding ping may have gone unanswered too long.
    PingTimeout,
    /// Our go-away drain deadline.
    GoAway,
    /// An outbound stream still has no ACK.
    Open(StreamId),
    /// A stopped, half-closed stream waits for the peer.
    Linger(StreamId),
    /// A stream's queued data has had zero credit too long.
    Stall(StreamId),
}

/// Deadlines ordered by time. Owners keep their own deadline in a slot so a
/// timer can be moved or cancelled in O(log n).
#[derive(Debug, Default)]
pub struct TimerTable {
    set: BTreeSet<(Instant, Timer)>,
}

impl TimerTable {
    /// Moves `timer` from the deadline in `slot` to `deadline` (either may
    /// be `None`) and records the new deadline in `slot`.
    pub fn set(&mut self, timer: Timer, slot: &mut Option<Instant>, deadline: Option<Instant>) {
        if *slot == deadline {
            return;
        }
        if let Some(old) = slot.take() {
            self.set.remove(&(old, timer));
        }
        if let Some(new) = deadline {
            self.set.insert((new, timer));
        }
        *slot = deadline;
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.set.first().map(|(t, _)| *t)
    }

    /// Removes and returns a timer due at or before `now`. The owner's slot
    /// still names the deadline; the caller clears it.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        let first = *self.set.first()?;
        if first.0 > now {
            return None;
        }
        self.set.remove(&first);
        Some(first)
    }

    /// Number of armed timers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_moves() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        let (mut a, mut b) = (None, None);
        table.set(Timer::KeepAlive, &mut a, Some(t0 + Duration::from_secs(5)));
        table.set(Timer::GoAway, &mut b, Some(t0 + Duration::from_secs(3)));
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(3)));
        table.set(Timer::GoAway, &mut b, None);
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(table.len(), 1);
        assert!(table.pop_due(t0 + Duration::from_secs(4)).is_none());
        assert_eq!(table.pop_due(t0 + Duration::from_secs(5)).map(|x| x.1), Some(Timer::KeepAlive));
        assert_eq!(table.len(), 0);
    }
}
