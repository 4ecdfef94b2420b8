//! Outputs: frames for the transport, produced on demand.
//!
//! Order (the lesson of golang/go#58804 in x/net/http2: a bulk stream must not
//! hold up control frames): pongs first, then other
//! control frames in the order they arose (window updates, SYN/ACK, resets,
//! pings, go-away), then data, one bounded frame per ready stream in turn.
//! A slow stream never delays control frames or other streams.

use bytes::Bytes;

use super::flow_control;
use super::stream_table::Slot;
use super::{Connection, Control, PendingEvent};
use crate::frame::{Flags, Header, HEADER_LEN};
use crate::{Event, StreamId};

/// One frame ready for the transport: a header and a body that is a slice of
/// the application's own data (no copy), so the caller may `writev` both.
/// Write the whole of it before the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The 12-byte frame header.
    pub header: [u8; HEADER_LEN],
    /// The payload (empty unless Data).
    pub body: Bytes,
}

impl Transmit {
    /// Bytes on the wire: header plus body.
    pub fn len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Always false: a frame has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Connection {
    /// The next frame to transmit, `None` when there is nothing to send.
    /// Frames are built from current state when asked for, so a caller whose
    /// transport is full simply stops asking.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.next_transmit(self.config.max_frame_size)
    }

    /// Copies as many whole frames as fit into `out`, up to `max_bytes` more
    /// bytes (data frames are cut to fit). Returns the bytes written. The
    /// copying alternative to [`poll_transmit`](Connection::poll_transmit).
    pub fn write_transmits(&mut self, out: &mut Vec<u8>, max_bytes: usize) -> usize {
        let mut written = 0;
        // Exactly a header's room still takes a frame without a body.
        while max_bytes - written >= HEADER_LEN {
            let room = (max_bytes - written - HEADER_LEN).min(u32::MAX as usize) as u32;
            let Some(t) = self.next_transmit(room.min(self.config.max_frame_size)) else { break };
            out.extend_from_slice(&t.header);
            out.extend_from_slice(&t.body);
            written += t.len();
        }
        written
    }

    /// `max_body` bounds a Data frame's body; 0 allows only bodiless frames.
    fn next_transmit(&mut self, max_body: u32) -> Option<Transmit> {
        let t = self.build_next(max_body)?;
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += t.len() as u64;
        Some(t)
    }

    fn build_next(&mut self, max_body: u32) -> Option<Transmit> {
        if let Some(opaque) = self.pongs.pop_front() {
            return Some(frame(Header::ping(Flags::ACK, opaque)));
        }
        while let Some(control) = self.streams.control.pop_front() {
            let header = match control {
                Control::Stream(id) => match self.stream_control(id, max_body) {
                    Some(t) => return Some(t),
                    None => {
                        if self.streams.table.get(&id).is_none_or(|s| s.life.is_ended()) {
                            self.streams.stale_control =
                                self.streams.stale_control.saturating_sub(1);
                        }
                        continue;
                    }
                },
                // The code rides in the length, as go-yamux sends it
                // (libp2p/specs#622); 0 unless the application gave one.
                Control::Reset(id, code) => {
                    self.stats.resets_sent += 1;
                    Header::window_update(id, Flags::RST, code)
                }
                Control::Refuse(id, code) => {
                    self.streams.pending_refusals = self.streams.pending_refusals.saturating_sub(1);
                    self.stats.resets_sent += 1;
                    Header::window_update(id, Flags::RST, code)
                }
                Control::Ping(opaque) => Header::ping(Flags::SYN, opaque),
                Control::GoAway(code) => Header::go_away(code.to_u32()),
            };
            return Some(frame(header));
        }
        if max_body == 0 {
            // No room for a body: the data queue keeps its order for later.
            return None;
        }
        while let Some(id) = self.streams.data_queue.pop_front() {
            let Some((slot, s)) = self.streams.table.find_mut(id) else { continue };
            s.in_data_queue = false;
            if let Some(t) = self.stream_data(slot, max_body) {
                return Some(t);
            }
        }
        None
    }

    /// The control frame stream `id` needs: its pending SYN/ACK and any
    /// credit to return, in one Window Update; a SYN/ACK carries only the
    /// initial window, so consumed credit then follows in the next one.
    /// Flags alone ride on the stream's first Data frame instead when it has
    /// one ready.
    fn stream_control(&mut self, id: StreamId, max_body: u32) -> Option<Transmit> {
        let (slot, s) = self.streams.table.find_mut(id)?;
        s.in_control_queue = false;
        if s.life.is_ended() || !s.wants_control() {
            return None;
        }
        // (With no room for a body, the flags go on a Window Update.)
        if s.recv.pending_return == 0 && s.send.is_sendable() && max_body > 0 {
            return self.stream_data(slot, max_body);
        }
        self.maybe_grow_window(id);
        let s = self.streams.table.at_mut(slot)?;
        let flags = std::mem::take(&mut s.pending_flags);
        let delta = flow_control::update_delta(&mut s.recv, flags);
        self.stats.window_updates_sent += 1;
        self.update_stream_at(slot);
        Some(frame(Header::window_update(id, flags, delta)))
    }

    /// The next frame of stream `id`'s send half: a Data frame with any
    /// pending flags, or, once a closing half has sent everything, its FIN.
    fn stream_data(&mut self, slot: Slot, max_body: u32) -> Option<Transmit> {
        let id = slot.id;
        let max_frame = self.config.max_frame_size.min(max_body);
        let max_send_buffer = self.config.max_send_buffer;
        let s = self.streams.table.at_mut(slot)?;
        if s.life.is_ended() {
            return None;
        }
        let piece = s.send.take_piece(max_frame)?;
        let flags = std::mem::take(&mut s.pending_flags);
        if piece.fin {
            // FIN alone, on a zero-length Window Update as hashicorp sends it
            // (docs/interop.md): every peer applies it there without touching
            // its data path, and no payload can be lost behind it.
            self.update_stream_at(slot);
            return Some(frame(Header::window_update(id, flags.with(Flags::FIN), 0)));
        }
        let len = piece.body.len();
        self.streams.send_buffered_total -= len;
        self.stats.data_sent += len as u64;
        if s.send.blocked && s.send.buffered < max_send_buffer {
            s.send.blocked = false;
            self.events.push_back(PendingEvent::Ready(Event::Writable { id }));
        }
        self.update_stream_at(slot);
        if len > 0 {
            self.wake_send_blocked();
        }
        Some(Transmit { header: Header::data(id, flags, len as u32).encode(), body: piece.body })
    }

    /// Streams held back by the connection-wide send bound may write again.
    pub(super) fn wake_send_blocked(&mut self) {
        while self.streams.send_buffered_total < self.config.max_connection_send_buffer {
            let Some(id) = self.streams.send_blocked.pop_front() else { return };
            if let Some(s) =
                self.streams.table.get_mut(&id).filter(|s| s.send.blocked && !s.life.is_ended())
            {
                s.send.blocked = false;
                self.events.push_back(PendingEvent::Ready(Event::Writable { id }));
            }
        }
    }
}

fn frame(header: Header) -> Transmit {
    Transmit { header: header.encode(), body: Bytes::new() }
}
