//! Commands from the application. Each takes effect at once on the state;
//! the frames it implies go out with the next `poll_transmit`.

use bytes::Bytes;

use super::recv::RecvState;
use super::send::{CloseOutcome, SendHalf, SendState};
use super::stream::Stream;
use super::timers::Timer;
use super::{Connection, Control, LifeInput};
use crate::{
    CloseReason, CloseWriteError, GoAwayCode, OpenError, PingError, ReadError, ResetError,
    ResetReason, SendError, StopReadingError, StreamId,
};

impl Connection {
    /// Opens a stream. The SYN goes out with the next transmit; data may be
    /// sent at once, before the peer's ACK (optimistic open). If the peer
    /// announced nothing, the stream has 256 KiB of send credit.
    pub fn open(&mut self) -> Result<StreamId, OpenError> {
        if self.life.is_closed() {
            return Err(OpenError::Closed);
        }
        if self.life.go_away_sent {
            return Err(OpenError::GoingAway);
        }
        if self.life.go_away_received.is_some() {
            return Err(OpenError::RemoteGoingAway);
        }
        let window = self.config.initial_stream_window;
        if let Some(limit) = self.streams.limit_for_new(window, &self.config) {
            return Err(limit);
        }
        if self.streams.unacked_outbound >= self.config.max_unacked_outbound {
            self.streams.open_blocked = true;
            return Err(OpenError::Blocked);
        }
        let Ok(raw) = u32::try_from(self.next_id) else {
            return Err(OpenError::IdsExhausted);
        };
        let id = StreamId(raw);
        self.next_id += 2;
        let mut stream = Stream::new(true, window);
        if let Some(limit) = self.config.open_timeout {
            self.timers.set(Timer::Open(id), Some(self.now + limit));
            stream.armed |= Stream::OPEN;
        }
        let slot = self.streams.table.insert(id, stream);
        self.streams.live += 1;
        self.streams.unacked_outbound += 1;
        self.streams.recv_window_total += u64::from(window);
        self.stats.streams_opened += 1;
        self.update_stream_at(slot);
        Ok(id)
    }

    /// Queues a copy of `data` on stream `id`. Returns how many bytes were
    /// taken: at most what the stream's and the connection's send buffers
    /// allow, whatever the peer's credit. When short, an
    /// [`Event::Writable`](crate::Event::Writable) follows once space frees.
    pub fn send(&mut self, id: StreamId, data: &[u8]) -> Result<usize, SendError> {
        self.send_with(id, data.len(), |half, n| half.push_slice(&data[..n]))
    }

    /// Like [`send`](Connection::send), but keeps `data` by reference: the
    /// transmitted frame bodies are slices of it (small writes are copied so
    /// they coalesce).
    pub fn send_bytes(&mut self, id: StreamId, mut data: Bytes) -> Result<usize, SendError> {
        self.send_with(id, data.len(), |half, n| {
            data.truncate(n);
            half.push_bytes(data);
        })
    }

    /// Reads up to `max` bytes received on stream `id`, oldest first, as a
    /// zero-copy chunk (large frames are slices of the input, small ones are
    /// coalesced, so one chunk never spans two pieces and may be shorter than
    /// what is available: call again). Reading releases the bytes' credit:
    /// it goes back to the peer once half the window (at most 1 MiB) is due.
    ///
    /// * `Ok(Some(chunk))`: bytes (empty only when `max` is 0 and bytes wait);
    /// * `Ok(None)`: the peer's FIN, after every byte before it was read
    ///   (also when a reset came after that FIN: the direction was
    ///   complete);
    /// * `Err(ReadError::Blocked)`: nothing to read yet; an
    ///   [`Event::Readable`](crate::Event::Readable) follows when bytes arrive;
    /// * `Err(ReadError::Reset(reason))`: the stream was reset, after every
    ///   byte received before a reset by the peer or a connection close was
    ///   read (peers write and then reset; nothing they sent is lost). Our
    ///   own [`reset`](Connection::reset) drops what is unread;
    /// * `Err(ReadError::Stopped)`: [`stop_reading`](Connection::stop_reading)
    ///   was called;
    /// * `Err(ReadError::UnknownStream)`: never opened, or forgotten after
    ///   its [`Event::StreamClosed`](crate::Event::StreamClosed).
    ///
    /// A stream is not forgotten while it has unread bytes: after the peer's
    /// FIN or RST it keeps its place under `max_streams` until it is read
    /// to the end, stopped or reset (after a connection close, until it is
    /// read).
    pub fn read(&mut self, id: StreamId, max: usize) -> Result<Option<Bytes>, ReadError> {
        let (slot, s) = self.streams.table.find_mut(id).ok_or(ReadError::UnknownStream)?;
        if max == 0 && s.recv.has_unread() {
            return Ok(Some(Bytes::new()));
        }
        if let Some(chunk) = s.recv.read(max) {
            let drained = !s.recv.has_unread();
            if s.life.is_forgotten() {
                // Kept until the reader has seen how the stream ended.
            } else if drained {
                // The last unread byte may be what the stream's end waited for.
                self.update_stream_at(slot);
            } else if s.wants_control() && !s.in_control_queue {
                // Reading can only make credit due: queue the stream's
                // control frame without re-deriving everything else.
                s.in_control_queue = true;
                self.streams.control.push_back(Control::Stream(id));
            }
            return Ok(Some(chunk));
        }
        // A half that would end cleanly (FIN, maybe a reset after it) but
        // was stopped first answers as stopped.
        let ends = s.recv.state == RecvState::Finished || s.recv.ends_cleanly();
        let answer = match s.recv.state {
            RecvState::Open => Err(ReadError::Blocked),
            RecvState::Stopped => Err(ReadError::Stopped),
            _ if ends && s.recv.was_stopped() => Err(ReadError::Stopped),
            RecvState::Finished => Ok(None),
            RecvState::Reset if s.recv.ends_cleanly() => Ok(None),
            RecvState::Reset => Err(ReadError::Reset(s.reset.unwrap_or(ResetReason::Local))),
        };
        if s.life.is_forgotten() {
            // Read to its end after its `StreamClosed`: the record goes.
            self.streams.table.remove(&id);
        }
        answer
    }

    /// Half-closes stream `id`: FIN goes out once, after the data already
    /// queued. Reading continues. Calling it again is a no-op.
    pub fn close_write(&mut self, id: StreamId) -> Result<(), CloseWriteError> {
        // Ended streams included: on one that ended normally (its
        // `StreamClosed` still queued) a repeated close is the same no-op.
        let (slot, s) = self.live_stream(id).ok_or(CloseWriteError::UnknownStream)?;
        match s.send.close_write() {
            CloseOutcome::Closing => {}
            CloseOutcome::AlreadyClosed => return Ok(()),
            CloseOutcome::Reset => {
                return Err(CloseWriteError::Reset(s.reset.unwrap_or(ResetReason::Local)))
            }
        }
        self.update_stream_at(slot);
        Ok(())
    }

    /// Stops reading stream `id` (the answer to hashicorp/yamux#133).
    ///
    /// Unread data is released, and from now on incoming
    /// data is discarded and its credit returned at once, so the peer's
    /// writer never stalls. Once our write half is finished (FIN sent) and
    /// everything we sent has been credited back, the stream is reset, so the
    /// peer's writes fail at once; data we sent is never destroyed before
    /// the peer could read it. A peer that neither finishes nor credits is
    /// reset after the linger timeout.
    ///
    /// Fails with [`StopReadingError::Reset`] on a reset stream, as `close_write`
    /// does (after dropping what the reset left unread). On a stream that
    /// ended normally but whose `StreamClosed` is still queued it is a no-op.
    pub fn stop_reading(&mut self, id: StreamId) -> Result<(), StopReadingError> {
        let (slot, s) = self.streams.table.find_mut(id).ok_or(StopReadingError::UnknownStream)?;
        if s.life.is_forgotten() {
            // Only its unread bytes were left: they go.
            self.discard_after_reset(slot);
            return Err(StopReadingError::UnknownStream);
        }
        if let Some(reason) = s.reset {
            self.discard_after_reset(slot);
            return Err(StopReadingError::Reset(reason));
        }
        s.recv.stop();
        if !s.life.is_ended() {
            self.update_stream_at(slot);
        }
        Ok(())
    }

    /// Aborts stream `id` both ways: RST goes out, queued data is dropped,
    /// received data not yet read is released. A no-op on a stream that
    /// already ended; on one the peer reset first it drops what is unread.
    /// The RST carries code 0; see [`reset_with_code`](Connection::reset_with_code).
    pub fn reset(&mut self, id: StreamId) -> Result<(), ResetError> {
        self.reset_with_code(id, 0)
    }

    /// [`reset`](Connection::reset) with an error code for the peer, carried
    /// in the RST frame's length as go-yamux does (libp2p/specs#622; such a
    /// peer reports it, and we report a peer's code as
    /// [`ResetReason::Remote`]). hashicorp/yamux, js-libp2p and the `yamux`
    /// crate ignore it. The meaning of codes is the application's.
    pub fn reset_with_code(&mut self, id: StreamId, code: u32) -> Result<(), ResetError> {
        let (slot, s) = self.streams.table.find_mut(id).ok_or(ResetError::UnknownStream)?;
        if s.life.is_forgotten() {
            // Only its unread bytes were left: they go.
            self.discard_after_reset(slot);
            return Err(ResetError::UnknownStream);
        }
        if s.reset.is_some() {
            self.discard_after_reset(slot);
            return Ok(());
        }
        if s.life.is_ended() {
            return Ok(());
        }
        self.reset_stream(id, ResetReason::Local, Some(code), false);
        Ok(())
    }

    /// The record of stream `id` for a command other than `read`: a stream
    /// forgotten after its `StreamClosed` (kept only for its unread bytes)
    /// is unknown to them.
    fn live_stream(
        &mut self,
        id: StreamId,
    ) -> Option<(super::stream_table::Slot, &mut super::stream::Stream)> {
        self.streams.table.find_mut(id).filter(|(_, s)| !s.life.is_forgotten())
    }

    /// Drops the bytes a reset stream still holds unread: the application
    /// will not read them, so the stream may end (or its record go).
    fn discard_after_reset(&mut self, slot: super::stream_table::Slot) {
        let id = slot.id;
        let Some(s) = self.streams.table.at_mut(slot) else { return };
        if s.life.is_forgotten() {
            self.streams.table.remove(&id);
            return;
        }
        let had_unread = s.recv.has_unread();
        // Also when nothing is unread: reading now ends with the reset.
        s.recv.discard();
        if had_unread {
            self.update_stream_at(slot);
        }
    }

    /// Sends a ping; an [`Event::Pong`](crate::Event::Pong) with the same
    /// opaque value reports the RTT. Unanswered past `ping_timeout`, the
    /// connection closes with [`CloseReason::KeepAliveTimeout`].
    pub fn ping(&mut self) -> Result<u32, PingError> {
        if self.life.is_closed() {
            return Err(PingError::Closed);
        }
        if !self.has_ping_room() {
            return Err(PingError::TooMany);
        }
        Ok(self.send_ping(true))
    }

    /// Graceful shutdown: sends Go Away with `code`, refuses new streams both
    /// ways, lets existing ones finish. The connection closes with
    /// [`CloseReason::Drained`] when the last stream ends, or
    /// [`CloseReason::DrainTimeout`] at the go-away deadline. Idempotent.
    ///
    /// With streams live, a Ping follows the Go Away: a peer that has ended
    /// the session on our Go Away (go-yamux, js-libp2p) never answers it,
    /// and the connection closes with [`CloseReason::GoAwayUnanswered`]
    /// after `ping_timeout` rather than waiting out `go_away_timeout`.
    pub fn go_away(&mut self, code: GoAwayCode) {
        if !self.life.on(LifeInput::GoAwaySent) {
            return;
        }
        self.streams.control.push_back(Control::GoAway(code));
        if self.streams.live == 0 {
            return self.close_connection(CloseReason::Drained, None);
        }
        if let Some(limit) = self.config.go_away_timeout {
            self.timers.set(Timer::GoAway, Some(self.now + limit));
        }
        // Queued after the Go Away, so its answer proves the peer read it and
        // still serves the session.
        if self.has_ping_room() {
            self.send_ping(true);
        }
    }

    /// Closes at once: live streams are reset
    /// ([`ResetReason::ConnectionClosed`]), Go Away (normal) is the last frame.
    /// Flush `poll_transmit`, then close the transport.
    pub fn close(&mut self) {
        let go_away = (!self.life.go_away_sent).then_some(GoAwayCode::Normal);
        self.close_connection(CloseReason::LocalClose, go_away);
    }

    /// The body of `send` and `send_bytes`, with one stream lookup: checks
    /// the write half, takes what the stream's and the connection's send
    /// bounds allow, and queues the stream. A send changes only the buffer,
    /// so only the data queue (and a configured stall timer) need a look.
    fn send_with(
        &mut self,
        id: StreamId,
        wanted: usize,
        push: impl FnOnce(&mut SendHalf, usize),
    ) -> Result<usize, SendError> {
        let conn_room =
            self.config.max_connection_send_buffer.saturating_sub(self.streams.send_buffered_total);
        let (slot, s) = self.streams.table.find_mut(id).ok_or(SendError::UnknownStream)?;
        if s.life.is_forgotten() {
            return Err(SendError::UnknownStream);
        }
        match s.send.state {
            SendState::Open if !s.life.is_ended() => {}
            SendState::Open | SendState::Closing | SendState::Finished => {
                return Err(SendError::WriteClosed)
            }
            SendState::Reset => {
                return Err(SendError::Reset(s.reset.unwrap_or(ResetReason::Local)))
            }
        }
        let stream_room = self.config.max_send_buffer.saturating_sub(s.send.buffered);
        let n = wanted.min(stream_room).min(conn_room);
        if n < wanted && !s.send.blocked {
            s.send.blocked = true;
            if conn_room < stream_room {
                self.streams.send_blocked.push_back(id);
            }
        }
        if n == 0 {
            return Ok(0);
        }
        push(&mut s.send, n);
        self.streams.send_buffered_total += n;
        if s.send.is_sendable() && !s.in_data_queue {
            s.in_data_queue = true;
            self.streams.data_queue.push_back(id);
        }
        if self.config.send_stall_timeout.is_some() {
            self.update_stream_at(slot);
        }
        Ok(n)
    }
}
