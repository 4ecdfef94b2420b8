//! One table for every timer of a connection: the earliest deadline is
//! [`Connection::poll_timeout`](crate::Connection::poll_timeout).
//!
//! The table owns the deadlines, so an idle stream (no timer armed) costs
//! nothing here. Setting, moving and cancelling are O(log n).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use crate::StreamId;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// Armed timers, ordered by deadline.
#[derive(Debug, Default)]
pub struct TimerTable {
    by_time: BTreeSet<(Instant, Timer)>,
    armed: HashMap<Timer, Instant>,
}

impl TimerTable {
    /// Arms `timer` at `deadline`, moving it if armed; `None` cancels it.
    pub fn set(&mut self, timer: Timer, deadline: Option<Instant>) {
        let old = match deadline {
            Some(at) => self.armed.insert(timer, at),
            None => self.armed.remove(&timer),
        };
        if old == deadline {
            return;
        }
        if let Some(old) = old {
            self.by_time.remove(&(old, timer));
        }
        if let Some(at) = deadline {
            self.by_time.insert((at, timer));
        }
    }

    /// Arms `timer` at `deadline` unless it is already armed.
    pub fn set_if_unarmed(&mut self, timer: Timer, deadline: Instant) {
        if !self.armed.contains_key(&timer) {
            self.set(timer, Some(deadline));
        }
    }

    /// When `timer` fires, if armed.
    #[cfg(test)]
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.armed.get(&timer).copied()
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// Disarms and returns a timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let &(at, timer) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.remove(&(at, timer));
        self.armed.remove(&timer);
        Some(timer)
    }

    /// Disarms everything.
    pub fn clear(&mut self) {
        self.by_time.clear();
        self.armed.clear();
    }

    /// Number of armed timers.
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> usize {
        self.armed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_moves_and_cancels() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut table = TimerTable::default();
        table.set(Timer::KeepAlive, Some(s(5)));
        table.set(Timer::GoAway, Some(s(3)));
        assert_eq!(table.next_deadline(), Some(s(3)));
        table.set(Timer::GoAway, None);
        assert_eq!(table.next_deadline(), Some(s(5)));
        table.set(Timer::KeepAlive, Some(s(7)));
        table.set_if_unarmed(Timer::KeepAlive, s(1));
        assert_eq!(table.deadline(Timer::KeepAlive), Some(s(7)));
        assert_eq!(table.len(), 1);
        assert!(table.pop_due(s(6)).is_none());
        assert_eq!(table.pop_due(s(7)), Some(Timer::KeepAlive));
        assert_eq!(table.len(), 0);
        assert_eq!(table.next_deadline(), None);
    }
}
