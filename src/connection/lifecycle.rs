//! Where stream and connection lives are decided. A change to a stream that
//! may end it, arm or cancel one of its timers or trigger the #133 reset
//! ends in [`Connection::update_stream`], which derives from the stream's
//! state alone what it needs next: queue slots, timers, the #133 reset, its
//! end. The two hot paths that can do none of that, `read` before the
//! last unread byte and `send` without a stall timeout, only queue the
//! stream for output themselves. Keeping the rest in one place is what
//! keeps the halves composable.

use std::time::{Duration, Instant};

use super::stream::{Stream, StreamLife, StreamLifeInput};
use super::stream_table::Slot;
use super::timers::{Timer, TimerTable};
use super::{Connection, Control, LifeInput, OutstandingPing, PendingEvent};
use crate::frame::Flags;
use crate::{
    CloseReason, Event, FloodError, GoAwayCode, RecvState, ResetReason, SendState, StreamId,
};

impl Connection {
    /// Re-derives what stream `id` needs after any change to it.
    pub(super) fn update_stream(&mut self, id: StreamId) {
        if let Some(slot) = self.streams.table.find(id) {
            self.update_stream_at(slot);
        }
    }

    /// [`update_stream`](Connection::update_stream) for a stream the caller
    /// has already looked up.
    pub(super) fn update_stream_at(&mut self, slot: Slot) {
        let (id, now) = (slot.id, self.now);
        let Some(s) = self.streams.table.at_mut(slot) else { return };
        if s.life.is_ended() {
            return;
        }
        // Stop-reading (docs/stop-reading.md, hashicorp/yamux#133): once our write half
        // is finished and everything we sent was credited back, nothing of
        // ours can be unread at the peer, so RST is safe and makes the peer's
        // writes fail at once instead of running into the void.
        if s.may_reset_after_stop() {
            s.reset = Some(ResetReason::StoppedReading);
            s.send.reset();
            s.recv.on_reset(false);
            self.streams.control.push_back(Control::Reset(id, 0));
        }
        if s.wants_control() && !s.in_control_queue {
            s.in_control_queue = true;
            self.streams.control.push_back(Control::Stream(id));
        }
        if s.send.is_sendable() && !s.in_data_queue {
            s.in_data_queue = true;
            self.streams.data_queue.push_back(id);
        }
        let stalled = s.send.is_stalled();
        let lingering = s.is_lingering();
        let finished = s.is_finished();
        let timers = &mut self.timers;
        let stall = (Timer::Stall(id), Stream::STALL);
        arm_while(timers, &mut s.armed, stall, stalled, self.config.send_stall_timeout, now);
        let linger = (Timer::Linger(id), Stream::LINGER);
        arm_while(timers, &mut s.armed, linger, lingering, self.config.linger_timeout, now);
        if finished {
            self.end_stream(slot);
        }
    }

    /// Aborts stream `id` in both directions. `rst` tells the peer, with
    /// that error code; `notify` reports it to the application (not for its
    /// own `reset`).
    pub(super) fn reset_stream(
        &mut self,
        id: StreamId,
        reason: ResetReason,
        rst: Option<u32>,
        notify: bool,
    ) {
        let Some(s) = self.streams.table.get(&id) else { return };
        if s.life.is_ended() || s.reset.is_some() {
            return;
        }
        // A peer that opens streams the application refuses, and never reads
        // our answers, must not grow the queue of refusals without bound.
        let refusal = rst.is_some() && s.pending_flags.contains(Flags::ACK);
        if refusal && self.refusals_full() {
            return self.fail(FloodError::RefusedStreams.into());
        }
        let Some(s) = self.streams.table.get_mut(&id) else { return };
        s.reset = Some(reason);
        let freed = s.send.reset();
        self.streams.send_buffered_total -= freed;
        // Data received before a reset by the peer (peers write and then
        // reset: the `yamux` crate resets a stream dropped after its last
        // write) or a connection close was accepted: it stays readable, and
        // the stream (and its place under `max_streams`) lives until it is
        // read. The application's own reset is an abort and drops it.
        let keep_unread = reason != ResetReason::Local;
        s.recv.on_reset(keep_unread);
        if let Some(code) = rst {
            // Resetting a peer's stream before our ACK went out is a refusal:
            // bounded like the core's own (checked above).
            if refusal {
                self.streams.queue_refusal(id, code);
            } else {
                self.streams.control.push_back(Control::Reset(id, code));
            }
        }
        if notify {
            self.events.push_back(PendingEvent::Ready(Event::StreamReset { id, reason }));
        }
        self.update_stream(id);
        if freed > 0 {
            self.wake_send_blocked();
        }
    }

    /// Stream `id` is finished both ways: release what it held and queue its
    /// `StreamClosed` event. The record stays until that event is polled (and
    /// after it while bytes are unread, when the connection closed).
    fn end_stream(&mut self, slot: Slot) {
        let id = slot.id;
        let Some(s) = self.streams.table.at_mut(slot) else { return };
        let was_unacked = s.life == StreamLife::Opening;
        s.life.on(StreamLifeInput::BothHalvesDone);
        self.streams.live -= 1;
        self.streams.recv_window_total -= u64::from(s.recv.window_size);
        for (timer, bit) in [
            (Timer::Open(id), Stream::OPEN),
            (Timer::Linger(id), Stream::LINGER),
            (Timer::Stall(id), Stream::STALL),
        ] {
            if s.armed & bit != 0 {
                self.timers.set(timer, None);
            }
        }
        s.armed = 0;
        if s.in_control_queue {
            self.streams.stale_control += 1;
            self.streams.compact_control();
        }
        self.events.push_back(PendingEvent::Closed(id));
        if was_unacked {
            self.release_unacked();
        }
        if self.life.go_away_sent && self.streams.live == 0 {
            self.close_connection(CloseReason::Drained, None);
        }
    }

    /// Whether `max_pending_refusals` RSTs refusing peer streams already wait
    /// for the transport: one more would let a peer that opens streams and
    /// never reads our answers grow the queue.
    pub(super) fn refusals_full(&self) -> bool {
        self.streams.pending_refusals >= self.config.max_pending_refusals
    }

    /// One of our streams stopped waiting for its ACK.
    pub(super) fn release_unacked(&mut self) {
        self.streams.unacked_outbound -= 1;
        if self.streams.open_blocked && !self.life.is_closed() {
            self.streams.open_blocked = false;
            self.events.push_back(PendingEvent::Ready(Event::OpenUnblocked));
        }
    }

    /// Ends the connection once: every live stream is reset with the reason,
    /// `go_away` (if any) is the last frame transmitted, and
    /// `ConnectionClosed` is the last event.
    pub(super) fn close_connection(&mut self, reason: CloseReason, go_away: Option<GoAwayCode>) {
        if !self.life.on(LifeInput::End(reason)) {
            return;
        }
        let graceful = matches!(reason, CloseReason::Drained | CloseReason::LocalClose);
        if !graceful {
            // After a failure only the Go Away goes out: the peer cannot be
            // trusted with more, and stream resets are implied.
            self.pongs.clear();
            self.streams.control.clear();
            self.streams.pending_refusals = 0;
        }
        let mut ids: Vec<StreamId> = self
            .streams
            .table
            .iter()
            .filter(|(_, s)| !s.life.is_ended())
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable(); // determinism: hash order never leaks out
        for id in ids {
            // A stream complete both ways (FINs sent and received) waited
            // only for its reader: it ends as it would have, unreset.
            let complete = self.streams.table.get(&id).is_some_and(|s| {
                s.send.state == SendState::Finished && s.recv.state == RecvState::Finished
            });
            if !complete {
                self.reset_stream(id, ResetReason::ConnectionClosed(reason), None, true);
            }
            // Every stream ends with the connection, read or not: what it
            // still holds unread stays readable past its `StreamClosed`.
            if let Some(slot) = self.streams.table.find(id) {
                if self.streams.table.at_mut(slot).is_some_and(|s| !s.life.is_ended()) {
                    self.end_stream(slot);
                }
            }
        }
        self.streams.data_queue.clear();
        self.timers.clear();
        // Input after the close is ignored: a half-received frame (perhaps
        // the doomed one that failed us) would only hold memory.
        self.decoder.discard();
        self.count_input();
        if let Some(code) = go_away {
            self.streams.control.push_back(Control::GoAway(code));
        }
        self.events.push_back(PendingEvent::Ready(Event::ConnectionClosed { reason }));
    }

    /// The peer broke the protocol or a flood limit: Go Away (protocol error).
    pub(super) fn fail(&mut self, reason: CloseReason) {
        self.close_connection(reason, Some(GoAwayCode::ProtocolError));
    }

    /// Whether another ping may be outstanding (`max_outstanding_pings`).
    pub(super) fn has_ping_room(&self) -> bool {
        self.pings.len() < self.config.max_outstanding_pings
    }

    /// Queues a ping and tracks it for the ping timeout.
    /// A `timed` ping ends the connection if unanswered past `ping_timeout`.
    pub(super) fn send_ping(&mut self, timed: bool) -> u32 {
        self.queue_ping(timed, false)
    }

    /// Sends the next RTT probe, if one is left (see `RTT_PROBES`). Only for
    /// an RTT estimate: with keep-alive off, a peer that never answers it is
    /// not thereby dead, so it is timed only with keep-alive on.
    pub(super) fn send_rtt_probe(&mut self) {
        if self.rtt_probes_left == 0 || self.life.is_closed() || !self.has_ping_room() {
            return;
        }
        self.rtt_probes_left -= 1;
        let timed = self.config.keep_alive_interval.is_some();
        self.queue_ping(timed, true);
    }

    fn queue_ping(&mut self, timed: bool, probe: bool) -> u32 {
        let opaque = self.next_ping;
        self.next_ping = self.next_ping.wrapping_add(1);
        self.pings.push_back(OutstandingPing { opaque, sent: self.now, timed, probe });
        self.streams.control.push_back(Control::Ping(opaque));
        self.stats.pings_sent += 1;
        if timed {
            self.timers.set_if_unarmed(Timer::PingTimeout, self.now + self.config.ping_timeout);
        }
        opaque
    }

    /// When the oldest timed ping still unanswered runs out of time.
    pub(super) fn ping_deadline(&self) -> Option<Instant> {
        let oldest = self.pings.iter().find(|p| p.timed)?;
        Some(oldest.sent + self.config.ping_timeout)
    }

    pub(super) fn on_timer(&mut self, timer: Timer) {
        let now = self.now;
        match timer {
            Timer::KeepAlive => {
                if self.has_ping_room() {
                    self.send_ping(true);
                }
                if let Some(interval) = self.config.keep_alive_interval {
                    self.timers.set(Timer::KeepAlive, Some(now + interval));
                }
            }
            Timer::PingTimeout => {
                if let Some(deadline) = self.ping_deadline() {
                    if deadline <= now {
                        let reason = if self.life.go_away_sent {
                            CloseReason::GoAwayUnanswered
                        } else {
                            CloseReason::KeepAliveTimeout
                        };
                        self.close_connection(reason, None);
                    } else {
                        self.timers.set(Timer::PingTimeout, Some(deadline));
                    }
                }
            }
            Timer::GoAway => self.close_connection(CloseReason::DrainTimeout, None),
            Timer::Open(id) | Timer::Linger(id) | Timer::Stall(id) => {
                let Some(s) = self.streams.table.get_mut(&id) else { return };
                let (bit, reason) = match timer {
                    Timer::Open(_) => (Stream::OPEN, ResetReason::OpenTimeout),
                    Timer::Linger(_) => (Stream::LINGER, ResetReason::LingerTimeout),
                    _ => (Stream::STALL, ResetReason::SendStall),
                };
                s.armed &= !bit; // the table already dropped it
                if bit != Stream::OPEN || !s.life.is_acknowledged() {
                    self.reset_stream(id, reason, Some(0), true);
                }
            }
        }
    }
}

/// Keeps `timer` armed while `condition` holds: armed at `now + limit` when
/// it starts holding (not moved while it keeps holding), cancelled when not.
/// `armed` mirrors the table, so nothing is looked up when nothing changes.
#[inline]
fn arm_while(
    timers: &mut TimerTable,
    armed: &mut u8,
    (timer, bit): (Timer, u8),
    condition: bool,
    limit: Option<Duration>,
    now: Instant,
) {
    let want = condition && limit.is_some();
    if want == (*armed & bit != 0) {
        return;
    }
    match limit.filter(|_| want) {
        Some(limit) => {
            timers.set(timer, Some(now + limit));
            *armed |= bit;
        }
        None => {
            timers.set(timer, None);
            *armed &= !bit;
        }
    }
}
