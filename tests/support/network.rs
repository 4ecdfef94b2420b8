//! The one virtual network of the tests: a reliable byte pipe per direction
//! with delivery times, as TCP is. Bytes are never lost, reordered or
//! altered; they can be delayed, held (stalled) and taken in pieces.
//!
//! The pair harness, the operation driver and the simulator all carry their
//! bytes on [`Link`]s; each adds its own policy (a fixed delay, stall
//! windows, a sender's buffer cap) on top.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

/// One direction of the network.
#[derive(Debug, Default)]
pub struct Link {
    /// Pieces in flight, in order, with the time each becomes deliverable.
    pieces: VecDeque<(Instant, Bytes)>,
    in_flight: usize,
    /// Nothing is delivered while set: the receiver does not read.
    pub stalled: bool,
}

impl Link {
    /// Puts `bytes` on the link, deliverable at `due` or when the piece
    /// before it is, whichever is later: a reliable pipe never lets a later
    /// piece overtake an earlier one. Returns when it will be deliverable.
    pub fn send(&mut self, due: Instant, bytes: Bytes) -> Instant {
        let due = self.pieces.back().map_or(due, |(last, _)| due.max(*last));
        if !bytes.is_empty() {
            self.in_flight += bytes.len();
            self.pieces.push_back((due, bytes));
        }
        due
    }

    /// When the next piece becomes deliverable (stalled or not).
    pub fn next_due(&self) -> Option<Instant> {
        self.pieces.front().map(|(t, _)| *t)
    }

    /// Takes up to `max` bytes of the next piece due at `now`, or `None` if
    /// the link is stalled or nothing is due. A piece cut short keeps its
    /// rest at the front.
    pub fn take(&mut self, now: Instant, max: usize) -> Option<Bytes> {
        if self.stalled || max == 0 {
            return None;
        }
        let (due, front) = self.pieces.front_mut()?;
        if *due > now {
            return None;
        }
        let piece = if front.len() <= max {
            self.pieces.pop_front().expect("front exists").1
        } else {
            front.split_to(max)
        };
        self.in_flight -= piece.len();
        Some(piece)
    }

    /// Bytes in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Pieces in flight.
    pub fn pieces(&self) -> usize {
        self.pieces.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Drops everything in flight (the transport died).
    pub fn clear(&mut self) {
        self.pieces.clear();
        self.in_flight = 0;
    }
}
