//! Inputs: bytes from the transport and the end of the transport.

use std::time::Instant;

use bytes::{Buf, BytesMut};

use super::flow_control;
use super::recv::{Body, DataOutcome, RecvState, COALESCE_BELOW};
use super::stream::{Stream, StreamLifeInput};
use super::timers::Timer;
use super::{Connection, LifeInput, PendingEvent};
use crate::config::DEFAULT_WINDOW;
use crate::frame::{Flags, FrameType, Header, HEADER_LEN};
use crate::{CloseReason, Event, FloodError, GoAwayCode, ProtocolError, ResetReason, StreamId};

impl Connection {
    /// Feeds bytes received from the transport, in any chunking: the same
    /// bytes give the same events however they are split. Data payloads are
    /// copied once: small ones (under 16 KiB) straight from `data` into the
    /// stream's receive buffer, where they coalesce into one chunk for
    /// [`read`](Connection::read); larger ones into the connection's input
    /// buffer, and `read` returns slices of it.
    /// [`handle_input_buf`](Connection::handle_input_buf) avoids that copy
    /// for a caller that can hand over its read buffer.
    ///
    /// A malformed byte stream or a protocol violation closes the connection
    /// (see [`Event::ConnectionClosed`]); input after that is ignored.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.advance_time(now);
        // Once closed, the decoder drops (and counts) what it is given.
        let used = self.decode_in_place(data);
        self.decoder.extend(&data[used..]);
        self.decode_frames();
    }

    /// Handles the whole frames at the front of `data` whose bodies would be
    /// copied anyway (below [`COALESCE_BELOW`]), without first copying them
    /// into the decoder: that copy and the buffer's bookkeeping were a tenth
    /// of the work of short-lived streams. Stops at the first frame that is
    /// incomplete, large or malformed, and leaves it and the rest to the
    /// decoder, which reports errors and pending headers as usual. Only
    /// while the decoder holds nothing, so frames stay in order. Returns the
    /// bytes handled.
    fn decode_in_place(&mut self, data: &[u8]) -> usize {
        if !self.decoder.is_idle() {
            return 0;
        }
        let mut used = 0;
        while !self.life.is_closed() {
            let Some((header, body)) = self.decoder.whole_frame(&data[used..]) else { break };
            if body.len() >= COALESCE_BELOW {
                break;
            }
            let len = HEADER_LEN + body.len();
            self.decoder.skip_decoded(len);
            used += len;
            self.stats.frames_received += 1;
            self.on_frame(header, Body::Borrowed(body));
        }
        used
    }

    /// Feeds the transport bytes at the front of `buf`, a buffer the caller
    /// owns and reads into (e.g. with tokio's `read_buf`), without copying
    /// large payloads: the whole frames at its front are taken out of it,
    /// and the chunks `read` returns share its memory. A frame not yet complete is
    /// left at the front of `buf`, for the next read to append to; call
    /// again once it has. Small payloads (under 16 KiB) are copied, as with
    /// [`handle_input`](Connection::handle_input), so a peer's small frames
    /// cannot keep the caller's buffer alive.
    ///
    /// This is the codec-style input: the caller keeps the partial frame and
    /// chooses how much room to reserve, so the connection needs no lock
    /// held while the transport is read. May be mixed with `handle_input`
    /// only at frame boundaries (`buf` empty); bytes given while the
    /// connection itself holds a partial frame (from `handle_input`) are
    /// moved into its buffer, in order.
    ///
    /// Large bodies keep the allocation they were read into alive until
    /// they are read, so a caller that reserves `r` bytes at a time
    /// holds at most about `r / 16 KiB` times the unread data. After the
    /// connection has ended, `buf` is emptied and its bytes are ignored.
    pub fn handle_input_buf(&mut self, now: Instant, buf: &mut BytesMut) {
        self.advance_time(now);
        if !self.life.is_closed() && !self.decoder.is_idle() {
            self.decoder.extend(buf);
            buf.clear();
            self.decode_frames();
            return;
        }
        // Runs of small frames are handled in place, as `handle_input`
        // does; `buf` itself is cut only for a large body, and once at the
        // end.
        let mut pos = 0;
        while !self.life.is_closed() {
            pos += self.decode_in_place(&buf[pos..]);
            if self.life.is_closed() {
                break;
            }
            // What stopped it: the end of `buf`, a malformed header, a frame
            // not yet complete, or a large body.
            let header = match self.decoder.header_at(&buf[pos..]) {
                Ok(Some(header)) => header,
                Ok(None) => break,
                Err(e) => {
                    self.fail(CloseReason::Protocol(ProtocolError::Frame(e)));
                    break;
                }
            };
            let body_len = header.body_len() as usize;
            if buf.len() - pos < HEADER_LEN + body_len {
                self.check_data_header(header);
                break;
            }
            self.decoder.skip_decoded(HEADER_LEN + body_len);
            self.stats.frames_received += 1;
            buf.advance(pos + HEADER_LEN);
            pos = 0;
            let body = buf.split_to(body_len).freeze();
            self.on_frame(header, Body::Shared(body));
        }
        if self.life.is_closed() {
            // Ignored: counted, and the buffer's room kept for the next read.
            self.decoder.count_dropped(buf.len() - pos);
            buf.clear();
        } else if pos == buf.len() {
            buf.clear();
        } else {
            buf.advance(pos);
        }
        self.count_input();
    }

    /// The input buffer, for reading the transport straight into it without
    /// the copy [`handle_input`](Connection::handle_input) makes, e.g. with
    /// tokio's `read_buf`. It always has some spare capacity; reserve more if
    /// you like. Then call [`process_input`](Connection::process_input).
    /// This suits a caller that can read while holding the connection;
    /// one that must not (a lock it will not hold across I/O) reads into its
    /// own buffer and uses [`handle_input_buf`](Connection::handle_input_buf).
    /// Bytes written here are part of the stream: write only transport bytes.
    /// Once the connection has closed, what is written here is dropped at
    /// the next call (counted in [`ConnectionStats::bytes_discarded`](crate::ConnectionStats::bytes_discarded)) and
    /// the same room offered again.
    ///
    /// Only with the `testing` feature: it is a second way to do what
    /// `handle_input_buf` does, kept for the tests that compare the input
    /// paths, and not part of the stable API.
    #[cfg(feature = "testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
    pub fn input_buffer(&mut self) -> &mut BytesMut {
        self.decoder.buffer_mut()
    }

    /// Processes what was written into [`input_buffer`](Connection::input_buffer)
    /// since the last call. Equivalent to `handle_input` for those bytes.
    /// Only with the `testing` feature.
    #[cfg(feature = "testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
    pub fn process_input(&mut self, now: Instant) {
        self.advance_time(now);
        // Once closed, this drops (and counts) what was written.
        self.decode_frames();
    }

    fn decode_frames(&mut self) {
        if self.life.is_closed() {
            self.decoder.drop_written();
        }
        while !self.life.is_closed() {
            match self.decoder.decode() {
                Ok(Some(frame)) => {
                    self.stats.frames_received += 1;
                    self.on_frame(frame.header, Body::Shared(frame.body));
                }
                Ok(None) => {
                    self.check_pending_header();
                    break;
                }
                Err(e) => self.fail(CloseReason::Protocol(ProtocolError::Frame(e))),
            }
        }
        self.count_input();
    }

    /// Brings the input counters up to date with the decoder's.
    pub(super) fn count_input(&mut self) {
        self.stats.bytes_received = self.decoder.total_input();
        self.stats.bytes_discarded = self.decoder.total_dropped();
    }

    /// A Data header whose body is still arriving may already prove a
    /// violation (more than the stream's credit, or data after FIN): fail now
    /// rather than buffer up to `max_stream_window` bytes first.
    fn check_pending_header(&mut self) {
        if let Some(h) = self.decoder.pending_header() {
            self.check_data_header(h);
        }
    }

    /// Whether the header of a frame whose body is still arriving already
    /// proves a violation; if so, fails the connection.
    fn check_data_header(&mut self, h: Header) {
        if h.frame_type != FrameType::Data || h.flags.contains(Flags::RST) {
            return;
        }
        let id = h.stream_id;
        let violation = if h.flags.contains(Flags::SYN) {
            (h.length > DEFAULT_WINDOW).then_some(ProtocolError::WindowExceeded(id))
        } else {
            match self.streams.table.get(&id).filter(|s| !s.life.is_ended()) {
                Some(s) => match s.recv.state {
                    RecvState::Open | RecvState::Stopped if h.length > s.recv.window => {
                        Some(ProtocolError::WindowExceeded(id))
                    }
                    RecvState::Finished => Some(ProtocolError::DataAfterFin(id)),
                    _ => None,
                },
                None => None,
            }
        };
        if let Some(violation) = violation {
            self.fail(violation.into());
        }
    }

    /// The transport ended (EOF or error). Live streams are reset with
    /// [`CloseReason::TransportClosed`], after any data already received is
    /// delivered; nothing more is transmitted.
    pub fn handle_transport_closed(&mut self) {
        self.close_connection(CloseReason::TransportClosed, None);
        self.pongs.clear();
        self.streams.control.clear();
        self.streams.pending_refusals = 0;
    }

    fn on_frame(&mut self, header: Header, body: Body<'_>) {
        match header.frame_type {
            FrameType::Data | FrameType::WindowUpdate => self.on_stream_frame(header, body),
            FrameType::Ping => self.on_ping(header),
            FrameType::GoAway => self.on_go_away(header),
        }
    }

    /// Data and Window Update frames, with any of SYN/ACK/FIN/RST (both peers'
    /// habits are accepted on both types: hashicorp puts FIN/RST on Window
    /// Updates, the `yamux` crate on Data).
    fn on_stream_frame(&mut self, header: Header, body: Body<'_>) {
        let useful = self.apply_stream_frame(header, body);
        if self.life.is_closed() {
            return;
        }
        // A frame that changed nothing (no payload, no new stream, no state
        // change of a live stream) costs us work and the peer only 12 bytes:
        // too many in a row is a flood, whatever its flag bits say.
        if useful {
            self.empty_frames = 0;
        } else {
            self.empty_frames += 1;
            if self.empty_frames > self.config.max_empty_frames {
                self.fail(FloodError::EmptyFrames.into());
            }
        }
    }

    /// Applies one Data or Window Update frame. Returns whether it did
    /// anything: carried payload, opened (or was refused) a stream, or
    /// changed a live stream's state or credit.
    fn apply_stream_frame(&mut self, header: Header, body: Body<'_>) -> bool {
        let id = header.stream_id;
        let flags = header.flags;
        let is_data = header.frame_type == FrameType::Data;
        // Payload consumed the peer's credit even when it is discarded (data
        // in flight to a stream we just reset is normal): never "empty".
        let carried_payload = !body.as_slice().is_empty();
        if is_data {
            self.stats.data_received += body.as_slice().len() as u64;
        }
        if flags.contains(Flags::SYN) && !self.accept_syn(id) {
            self.stats.frames_discarded += 1;
            return true;
        }
        // A reset stream takes no more frames, also while its record waits
        // for the reader to take what arrived before the reset: the peer's
        // frames still in flight are races with that reset. (Taking their
        // credit would report `CreditsReturned` after `StreamReset`, and
        // only when the reader happened to be slow.)
        let live = |s: &Stream| !s.life.is_ended() && s.reset.is_none();
        let Some((slot, s)) = self.streams.table.find_mut(id).filter(|(_, s)| live(s)) else {
            // Races with close make these normal: discard, never answer with RST.
            self.stats.frames_discarded += 1;
            return carried_payload;
        };
        let mut useful = carried_payload || flags.contains(Flags::SYN);
        let was_acked = s.life.is_acknowledged();
        // Any frame but RST from the peer establishes our stream, not only
        // ACK: hashicorp never ACKs a stream whose FIN arrived before its
        // application accepted it (observed with the Go peer).
        if !flags.contains(Flags::RST) && s.life.on(StreamLifeInput::PeerAnswered) {
            useful = true;
            if s.armed & Stream::OPEN != 0 {
                s.armed &= !Stream::OPEN;
                self.timers.set(Timer::Open(id), None);
            }
            self.release_unacked();
        }
        if flags.contains(Flags::RST) {
            self.on_remote_reset(id, header, was_acked);
            return true;
        }
        let Some(s) = self.streams.table.at_mut(slot) else { return useful };
        if is_data {
            let had_unread = s.recv.has_unread();
            match s.recv.on_data(body) {
                DataOutcome::Buffered => {
                    // Once per transition to readable: a reader that has not
                    // drained the stream has been told already.
                    if !had_unread {
                        self.events.push_back(PendingEvent::Ready(Event::Readable { id }));
                    }
                }
                DataOutcome::Discarded | DataOutcome::Ignored => {}
                DataOutcome::WindowExceeded => {
                    self.fail(ProtocolError::WindowExceeded(id).into());
                    return true;
                }
                DataOutcome::AfterFin => {
                    self.fail(ProtocolError::DataAfterFin(id).into());
                    return true;
                }
            }
        } else if header.length > 0 {
            let delta = header.length;
            let returned = flow_control::delta_is_returned_credit(flags, s.outbound, was_acked);
            if s.send.add_credit(delta, returned).is_err() {
                self.fail(ProtocolError::CreditOverflow(id).into());
                return true;
            }
            useful = true;
            if returned {
                let amount = delta;
                self.events.push_back(PendingEvent::Ready(Event::CreditsReturned { id, amount }));
            }
        }
        if flags.contains(Flags::FIN) {
            let before = s.recv.state;
            if s.recv.on_fin() {
                self.events.push_back(PendingEvent::Ready(Event::PeerHalfClosed { id }));
            }
            useful |= s.recv.state != before;
        }
        self.update_stream_at(slot);
        useful
    }

    /// A SYN for `id`. Returns whether the stream now exists to take the
    /// rest of the frame; refused streams get RST.
    fn accept_syn(&mut self, id: StreamId) -> bool {
        if id.opener() == Some(self.role) || id == StreamId::SESSION {
            self.fail(ProtocolError::InvalidStreamId(id).into());
            return false;
        }
        if self.streams.table.contains_key(&id) || self.used_ids.contains(id) {
            self.fail(ProtocolError::StreamIdReused(id).into());
            return false;
        }
        self.used_ids.insert(id);
        let window = self.config.initial_stream_window;
        let full = self.streams.limit_for_new(window, &self.config).is_some();
        if self.life.go_away_sent || full {
            // Refusal is per stream (a limit is not a reason to kill the session).
            if self.refusals_full() {
                self.fail(FloodError::RefusedStreams.into());
                return false;
            }
            self.stats.streams_refused += 1;
            self.streams.queue_refusal(id, 0);
            return false;
        }
        self.streams.table.insert(id, Stream::new(false, window));
        self.streams.live += 1;
        self.streams.recv_window_total += u64::from(window);
        self.stats.streams_accepted += 1;
        self.events.push_back(PendingEvent::Ready(Event::StreamOpened { id }));
        true
    }

    fn on_remote_reset(&mut self, id: StreamId, header: Header, was_acked: bool) {
        self.stats.resets_received += 1;
        let outbound = self.streams.table.get(&id).is_some_and(|s| s.outbound);
        let reason = if outbound && !was_acked {
            ResetReason::Refused
        } else {
            // A RST Data frame's length is its (discarded) body; a Window
            // Update's may carry go-yamux's error code.
            let code = if header.frame_type == FrameType::WindowUpdate { header.length } else { 0 };
            ResetReason::Remote { code }
        };
        if !outbound && !self.count_rapid_reset() {
            return;
        }
        self.reset_stream(id, reason, None, true);
    }

    /// Counts peer resets of peer-opened streams per window (the HTTP/2
    /// "rapid reset" attack). Returns false if the connection failed.
    fn count_rapid_reset(&mut self) -> bool {
        if self.now.duration_since(self.rapid_reset_window_start) >= self.config.rapid_reset_window
        {
            self.rapid_reset_window_start = self.now;
            self.rapid_resets = 0;
        }
        self.rapid_resets += 1;
        if self.rapid_resets > self.config.max_rapid_resets {
            self.fail(FloodError::RapidReset.into());
            return false;
        }
        true
    }

    /// Ping request: answer (bounded queue, oldest answer dropped under a
    /// flood). Ping response: match it to ours, or ignore it.
    fn on_ping(&mut self, header: Header) {
        if header.flags.contains(Flags::SYN) {
            if self.pongs.len() >= self.config.max_pending_pongs {
                self.pongs.pop_front();
                self.stats.pongs_dropped += 1;
            }
            self.pongs.push_back(header.length);
        } else if header.flags.contains(Flags::ACK) {
            let Some(pos) = self.pings.iter().position(|p| p.opaque == header.length) else {
                return;
            };
            let Some(ping) = self.pings.remove(pos) else { return };
            let (opaque, rtt) = (ping.opaque, self.now.saturating_duration_since(ping.sent));
            self.rtt = Some(rtt);
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
            self.events.push_back(PendingEvent::Ready(Event::Pong { opaque, rtt }));
            if ping.probe && self.rtt_probes_left > 0 {
                self.send_rtt_probe();
            } else {
                self.rtt_settled = true;
            }
            // Re-arm the ping timeout for the oldest timed ping unanswered.
            let next = self.ping_deadline();
            self.timers.set(Timer::PingTimeout, next);
        }
    }

    /// Go Away: normal means no new outbound streams; anything else ends
    /// the connection (existing streams cannot be trusted to finish).
    fn on_go_away(&mut self, header: Header) {
        let code = GoAwayCode::from_u32(header.length);
        if !self.life.on(LifeInput::GoAwayReceived(code)) {
            return;
        }
        self.events.push_back(PendingEvent::Ready(Event::GoAwayReceived { code }));
        if code != GoAwayCode::Normal {
            self.close_connection(CloseReason::RemoteGoAway(code), None);
        }
    }
}
