//! [`Streams`]: the one owner of stream bookkeeping. It holds every
//! stream's record, the queues that schedule their frames, and the
//! connection-wide budgets that the streams' states add up to, so that a
//! count and the records it counts are never kept in two places.
//!
//! The connection changes a stream through `update_stream`
//! (`lifecycle.rs`), which derives queue membership and budgets from the
//! stream's state; the hot paths (`read`, `send`) touch only the queue
//! entry they need. `check_invariants` recomputes every total here from
//! the records.

use std::collections::VecDeque;

use super::stream_table::StreamTable;
use super::Control;
use crate::{Config, OpenError, StreamId};

/// Stream records, output queues and budgets.
#[derive(Debug, Default)]
pub(super) struct Streams {
    /// Stream records by id. Never iterated without sorting, so the hash
    /// keys (the only randomness in the crate) cannot affect outputs.
    pub table: StreamTable,
    /// Streams not yet ended (the records of ended ones wait for their
    /// `StreamClosed` event to be polled). Bounded by `max_streams`.
    pub live: usize,
    /// Our streams the peer has not acknowledged yet. Bounded by
    /// `max_unacked_outbound`.
    pub unacked_outbound: usize,
    /// `open` reported `Blocked`: an `OpenUnblocked` event is owed.
    pub open_blocked: bool,
    /// Sum of the receive windows of live streams. Bounded by
    /// `connection_receive_window`.
    pub recv_window_total: u64,
    /// Sum of the send buffers of all streams. Bounded by
    /// `max_connection_send_buffer`.
    pub send_buffered_total: usize,
    /// Streams whose `send` was cut short by the connection-wide send
    /// bound, in the order they were.
    pub send_blocked: VecDeque<StreamId>,
    /// Control frames in the order they arose: stream flags and credit,
    /// resets, refusals, pings, Go Away.
    pub control: VecDeque<Control>,
    /// `Control::Stream` entries whose stream has ended since it was
    /// queued; compacted away when they dominate, so open/reset cycles
    /// cannot grow the queue while the transport is not written.
    pub stale_control: usize,
    /// Streams with data (or a FIN) ready, served round-robin.
    pub data_queue: VecDeque<StreamId>,
    /// RSTs refusing peer streams, queued in `control` and not yet sent.
    /// Bounded by `max_pending_refusals`.
    pub pending_refusals: usize,
}

impl Streams {
    /// Whether one more stream, with a receive window of `window`, fits
    /// under `max_streams` and the connection's receive budget; the limit
    /// it would break if not. Both our `open` and the peer's SYN ask.
    pub fn limit_for_new(&self, window: u32, config: &Config) -> Option<OpenError> {
        if self.live >= config.max_streams {
            return Some(OpenError::TooManyStreams { max_streams: config.max_streams });
        }
        let budget = config.connection_receive_window;
        if self.recv_window_total + u64::from(window) > budget {
            return Some(OpenError::ReceiveBudgetFull { budget });
        }
        None
    }

    /// Drops control entries of ended streams once they are most of the
    /// queue: amortised O(1) per entry.
    pub fn compact_control(&mut self) {
        if self.stale_control < 64 || self.stale_control * 2 < self.control.len() {
            return;
        }
        let table = &self.table;
        self.control.retain(|c| match c {
            Control::Stream(id) => table.get(id).is_some_and(|s| !s.life.is_ended()),
            _ => true,
        });
        self.stale_control = 0;
    }

    /// Queues an RST refusing the peer's stream `id` with `code` (the
    /// caller checked the bound).
    pub fn queue_refusal(&mut self, id: StreamId, code: u32) {
        self.pending_refusals += 1;
        self.control.push_back(Control::Refuse(id, code));
    }

    /// Whether a control or data frame is ready to go out (pongs aside).
    pub fn has_pending_output(&self) -> bool {
        self.control.iter().any(|c| self.control_is_live(c))
            || self.data_queue.iter().any(|id| {
                self.table.get(id).is_some_and(|s| !s.life.is_ended() && s.send.is_sendable())
            })
    }

    /// Whether a queued control entry will still produce a frame.
    pub fn control_is_live(&self, control: &Control) -> bool {
        match control {
            Control::Stream(id) => {
                self.table.get(id).is_some_and(|s| !s.life.is_ended() && s.wants_control())
            }
            _ => true,
        }
    }

    /// Recomputes every total from the records and checks it against its
    /// count and its bound in `config`; also each stream's own invariants.
    #[cfg(feature = "testing")]
    pub fn check_totals(&self, config: &Config) -> Result<(), String> {
        let mut live = 0;
        let mut window_total = 0u64;
        let mut buffered_total = 0usize;
        for (id, s) in self.table.iter() {
            if !s.recv.check_invariant() {
                return Err(format!("stream {id}: receive credit not conserved: {:?}", s.recv));
            }
            if !s.send.check_invariant() {
                return Err(format!("stream {id}: send buffer count wrong"));
            }
            if s.send.buffered > config.max_send_buffer {
                return Err(format!("stream {id}: send buffer over its bound"));
            }
            buffered_total += s.send.buffered;
            if !s.life.is_ended() {
                live += 1;
                window_total += u64::from(s.recv.window_size);
            }
        }
        if live != self.live || live > config.max_streams {
            return Err(format!("live streams {live} counted as {}", self.live));
        }
        if window_total != self.recv_window_total || window_total > config.connection_receive_window
        {
            return Err(format!(
                "receive windows {window_total} counted as {}",
                self.recv_window_total
            ));
        }
        if buffered_total != self.send_buffered_total
            || buffered_total > config.max_connection_send_buffer
        {
            return Err(format!(
                "send buffered {buffered_total} counted as {}",
                self.send_buffered_total
            ));
        }
        if self.pending_refusals > config.max_pending_refusals
            || self.unacked_outbound > config.max_unacked_outbound
        {
            return Err("refusals or unacknowledged streams over their bound".into());
        }
        Ok(())
    }
}
