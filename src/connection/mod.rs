//! The yamux state machine: [`Connection`].

mod chunks;
mod commands;
mod flow_control;
mod input;
mod life;
mod lifecycle;
mod output;
mod recv;
mod send;
mod stream;
mod stream_table;
mod streams;
mod timers;
mod used_ids;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::frame::Decoder;
use crate::{CloseReason, Config, ConfigError, Event, GoAwayCode, Role, StreamId};

pub use output::Transmit;
pub use recv::RecvState;
pub use send::SendState;

use life::{Life, LifeInput};
use stream::StreamLifeInput;
use streams::Streams;
use timers::{Timer, TimerTable};
use used_ids::UsedIds;

/// One yamux session: a pure state machine driven by its caller.
///
/// # The drive-loop contract
///
/// A `Connection` never performs I/O and never reads a clock. The caller owns
/// the transport and the time, and repeats:
///
/// 1. **Input.** Bytes read from the transport go to [`handle_input`], in any
///    chunking; or, to avoid copying large payloads, read them into a
///    `BytesMut` you own and pass it to [`handle_input_buf`], which takes
///    the whole frames and leaves a partial one for the next read to append
///    to. End of stream or a transport error goes to
///    [`handle_transport_closed`].
/// 2. **Timers.** Call [`handle_timeout`] with the current time, at least
///    when it reaches [`poll_timeout`]. Calling it early or often is harmless.
/// 3. **Events.** Drain [`poll_event`] until `None`. On
///    [`Event::Readable`], [`read`] the stream's bytes (zero-copy chunks;
///    reading is what returns their credit to the peer). Commands ([`open`],
///    [`send`], [`read`], [`close_write`], [`stop_reading`], [`reset`],
///    [`ping`], [`go_away`], [`close`]) may be issued at any point.
/// 4. **Output.** Drain [`poll_transmit`] (zero-copy: header plus a `Bytes`
///    body, ready for `writev`) or [`write_transmits`] (copies into a buffer)
///    into the transport. Stop when the transport is full: nothing is lost,
///    frames are produced lazily from stream state when asked for.
///
///    **Then repeat steps 3 and 4 until a pass of step 3 finds no event.**
///    Taking frames frees send room, which queues [`Event::Writable`] (and
///    other events may follow); handling events queues frames. A loop that
///    waits with an event still queued can wait for ever: an edge-triggered
///    socket that has nothing new to report never wakes it.
/// 5. **Wait** for the transport, the application, or [`poll_timeout`].
///
/// The loop ends after [`Event::ConnectionClosed`] once
/// [`has_pending_output`] is false (the final Go Away is flushed).
///
/// Time: every input carries `now`; commands and outgoing frames are stamped
/// with the latest `now` seen. Call [`handle_timeout`] with the current time
/// on every turn (it is cheap when nothing is due) so that timers armed by a
/// command (send stall, linger, open) start from the right moment even when
/// no input arrives. Time never goes backwards: an earlier `now` is treated
/// as the latest one.
///
/// Guarantees: the same inputs at the same times give the same outputs and
/// events. Nothing the peer sends can panic the connection or grow its memory
/// beyond the bounds in [`Config`]; a violation ends the connection with a
/// typed [`CloseReason`] and a Go Away. Control frames (pongs, window updates,
/// resets, go-away) are transmitted before data, and data from ready streams
/// is interleaved round-robin in frames of at most `max_frame_size` bytes.
///
/// [`handle_input`]: Connection::handle_input
/// [`handle_input_buf`]: Connection::handle_input_buf
/// [`handle_transport_closed`]: Connection::handle_transport_closed
/// [`poll_timeout`]: Connection::poll_timeout
/// [`handle_timeout`]: Connection::handle_timeout
/// [`poll_event`]: Connection::poll_event
/// [`open`]: Connection::open
/// [`send`]: Connection::send
/// [`read`]: Connection::read
/// [`close_write`]: Connection::close_write
/// [`stop_reading`]: Connection::stop_reading
/// [`reset`]: Connection::reset
/// [`ping`]: Connection::ping
/// [`go_away`]: Connection::go_away
/// [`close`]: Connection::close
/// [`poll_transmit`]: Connection::poll_transmit
/// [`write_transmits`]: Connection::write_transmits
/// [`has_pending_output`]: Connection::has_pending_output
#[derive(Debug)]
pub struct Connection {
    config: Config,
    role: Role,
    now: Instant,
    decoder: Decoder,
    /// Every stream's record, the queues that schedule their frames, and
    /// the connection-wide budgets their state adds up to.
    streams: Streams,
    /// Ids the peer has opened, so reuse is caught after streams are forgotten.
    used_ids: UsedIds,
    /// Next id we open; u64 so exhaustion is visible.
    next_id: u64,
    events: VecDeque<PendingEvent>,
    /// Pong answers, sent before anything else; bounded, oldest dropped.
    pongs: VecDeque<u32>,
    timers: TimerTable,
    /// Our pings awaiting their answer, oldest first.
    pings: VecDeque<OutstandingPing>,
    next_ping: u32,
    rtt: Option<Duration>,
    /// The least RTT any ping measured: the path's own delay, without the
    /// queueing in front of it. Window auto-tuning sizes windows by it.
    min_rtt: Option<Duration>,
    /// RTT probes still to send after the one in flight.
    rtt_probes_left: u8,
    /// `min_rtt` is worth tuning by: the last RTT probe was answered, or
    /// another ping was.
    rtt_settled: bool,
    /// Open, draining or closed, and the Go Aways exchanged.
    life: Life,
    empty_frames: u32,
    rapid_resets: u32,
    rapid_reset_window_start: Instant,
    stats: ConnectionStats,
}

/// Peer ids remembered out of order beyond `max_streams`. Refused SYNs use
/// ids too, and hashicorp sends up to 256 SYNs in flight in any order; a
/// late SYN must not be mistaken for a reused id.
const REORDER_ALLOWANCE: usize = 1024;

/// An event as queued: a closing is resolved when polled, since that is
/// when the stream's record may go.
#[derive(Debug)]
enum PendingEvent {
    Ready(Event),
    Closed(StreamId),
}

/// A control frame waiting for transmission.
#[derive(Clone, Copy, Debug)]
enum Control {
    /// Flags (SYN/ACK) and/or returned credit for a live stream, computed
    /// when transmitted.
    Stream(StreamId),
    /// RST for a stream we reset, with its error code (0 unless the
    /// application gave one).
    Reset(StreamId, u32),
    /// RST refusing a peer's SYN, with its error code.
    Refuse(StreamId, u32),
    Ping(u32),
    GoAway(GoAwayCode),
}

/// One of our pings awaiting its Pong.
#[derive(Clone, Copy, Debug)]
struct OutstandingPing {
    opaque: u32,
    sent: Instant,
    /// Whether going unanswered past `ping_timeout` ends the connection:
    /// keep-alive and application pings do, the start-up RTT probes do
    /// only when keep-alive is on.
    timed: bool,
    /// One of the RTT probes sent from the start (see [`RTT_PROBES`]).
    probe: bool,
}

/// Pings sent one after the other from the start, while window auto-tuning
/// is possible, each when the previous one's answer arrives; auto-tuning
/// uses the least RTT they measure. The first alone is a poor sample: it is
/// stamped when the connection is created, before the transport is even
/// polled, and it waits for the peer to start. Over loopback TCP it measured
/// 180-430 us where a ping-pong takes 50: windows then grew to 4-16 MiB,
/// and a small reply waited behind that much bulk data.
const RTT_PROBES: u8 = 3;

/// Counters over the connection's life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Transport bytes taken in: given to `handle_input` or
    /// `process_input`, or taken out of the caller's buffer by
    /// `handle_input_buf` (a partial frame left there is counted once its
    /// frame is complete), up to the end of the frame that closed the
    /// connection, if one did.
    pub bytes_received: u64,
    /// Transport bytes given after the connection closed, or held in a
    /// partial frame when it closed: dropped without being decoded, so a
    /// drive loop that keeps reading holds no memory for them.
    pub bytes_discarded: u64,
    /// Transport bytes handed out by `poll_transmit`/`write_transmits`.
    pub bytes_sent: u64,
    /// Frames decoded.
    pub frames_received: u64,
    /// Frames produced.
    pub frames_sent: u64,
    /// Stream payload bytes received.
    pub data_received: u64,
    /// Stream payload bytes sent.
    pub data_sent: u64,
    /// Streams we opened.
    pub streams_opened: u64,
    /// Streams the peer opened that we accepted.
    pub streams_accepted: u64,
    /// Peer SYNs answered with RST (limits, go-away).
    pub streams_refused: u64,
    /// RST frames we sent.
    pub resets_sent: u64,
    /// RST frames received for known streams.
    pub resets_received: u64,
    /// Window Update frames we sent.
    pub window_updates_sent: u64,
    /// Pings we sent.
    pub pings_sent: u64,
    /// Pong answers dropped because a ping flood exceeded the pong queue.
    pub pongs_dropped: u64,
    /// Frames for unknown or closed streams, discarded.
    pub frames_discarded: u64,
}

/// A snapshot of one stream, from [`Connection::stream_info`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamInfo {
    /// Where our write half is.
    pub send_state: SendState,
    /// Where our read half is. `Finished` also when the stream was reset by
    /// the peer or a connection close after the peer's FIN had arrived:
    /// that direction was complete, and `read` ends with `Ok(None)`.
    pub recv_state: RecvState,
    /// Whether the peer acknowledged the stream (always true for inbound).
    pub acknowledged: bool,
    /// Bytes we may still send before the peer grants more.
    pub send_credit: u32,
    /// Bytes accepted by `send` and not yet transmitted.
    pub send_buffered: usize,
    /// Bytes transmitted over the stream's life.
    pub sent: u64,
    /// Bytes transmitted that the peer has not credited back: `sent` minus
    /// the credit granted after the initial window, floored at 0. Exact
    /// against peers with fixed windows (hashicorp); a lower bound against
    /// peers that grow windows, since growth arrives as credit too. A
    /// netchan-style `Drain` waits for `send_buffered == 0 && uncredited == 0`.
    pub uncredited: u64,
    /// Credit the peer still holds to send to us.
    pub recv_window: u32,
    /// The stream's receive window (grows with auto-tuning).
    pub recv_window_size: u32,
    /// Bytes received and not yet read.
    pub recv_unread: u32,
}

impl Connection {
    /// A new connection in `role`, starting at time `now`. Fails if `config`
    /// does not validate.
    ///
    /// When window auto-tuning is possible (`max_stream_window` above
    /// `initial_stream_window`) a first ping measures the RTT at once.
    pub fn new(config: Config, role: Role, now: Instant) -> Result<Connection, ConfigError> {
        config.validate()?;
        let mut conn = Connection {
            decoder: Decoder::new(config.max_stream_window),
            role,
            now,
            streams: Streams::default(),
            used_ids: UsedIds::new(
                match role {
                    Role::Client => Role::Server,
                    Role::Server => Role::Client,
                },
                config.max_streams.saturating_add(REORDER_ALLOWANCE),
            ),
            next_id: match role {
                Role::Client => 1,
                Role::Server => 2,
            },
            events: VecDeque::new(),
            pongs: VecDeque::new(),
            timers: TimerTable::default(),
            pings: VecDeque::new(),
            next_ping: 0,
            rtt: None,
            min_rtt: None,
            rtt_probes_left: 0,
            rtt_settled: false,
            life: Life::new(),
            empty_frames: 0,
            rapid_resets: 0,
            rapid_reset_window_start: now,
            stats: ConnectionStats::default(),
            config,
        };
        if let Some(interval) = conn.config.keep_alive_interval {
            conn.timers.set(Timer::KeepAlive, Some(now + interval));
        }
        if conn.config.max_stream_window > conn.config.initial_stream_window {
            conn.rtt_probes_left = RTT_PROBES;
            conn.send_rtt_probe();
        }
        Ok(conn)
    }

    /// The next event, or `None` when there is none. Drain it after every
    /// input, timeout and command.
    pub fn poll_event(&mut self) -> Option<Event> {
        match self.events.pop_front()? {
            PendingEvent::Ready(event) => Some(event),
            PendingEvent::Closed(id) => {
                // Bytes received before a connection close stay readable:
                // the record goes once `read` has answered their end.
                match self.streams.table.get_mut(&id) {
                    Some(s) if s.recv.has_unread() => {
                        s.life.on(StreamLifeInput::ClosedPolledUnread);
                    }
                    _ => {
                        self.streams.table.remove(&id);
                    }
                }
                Some(Event::StreamClosed { id })
            }
        }
    }

    /// The earliest time [`handle_timeout`](Connection::handle_timeout) has
    /// work to do, `None` if no timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Runs every timer due at `now`: keep-alive pings, ping timeout, open,
    /// linger and send-stall timeouts, the go-away drain deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance_time(now);
        while let Some(timer) = self.timers.pop_due(self.now) {
            self.on_timer(timer);
        }
    }

    // ---- getters ----

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Streams open in either direction (not yet ended).
    pub fn stream_count(&self) -> usize {
        self.streams.live
    }

    /// A snapshot of stream `id`, `None` if unknown or forgotten (after its
    /// `StreamClosed` event was polled). An ended stream whose last events are
    /// still queued shows terminal states.
    pub fn stream_info(&self, id: StreamId) -> Option<StreamInfo> {
        let s = self.streams.table.get(&id).filter(|s| !s.life.is_forgotten())?;
        Some(StreamInfo {
            send_state: s.send.state,
            recv_state: if s.recv.ends_cleanly() { RecvState::Finished } else { s.recv.state },
            acknowledged: s.life.is_acknowledged(),
            send_credit: s.send.credit,
            send_buffered: s.send.buffered,
            sent: s.send.sent,
            uncredited: s.send.uncredited(),
            recv_window: s.recv.window,
            recv_window_size: s.recv.window_size,
            recv_unread: s.recv.unread,
        })
    }

    /// Counters over the connection's life.
    pub fn stats(&self) -> &ConnectionStats {
        &self.stats
    }

    /// The latest RTT measured by a ping, if any.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Whether the connection has ended (the `ConnectionClosed` event is
    /// queued or was delivered).
    pub fn is_closed(&self) -> bool {
        self.life.is_closed()
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.life.close_reason()
    }

    /// Whether the peer sent Go Away, and its code.
    pub fn remote_go_away(&self) -> Option<GoAwayCode> {
        self.life.go_away_received
    }

    /// Whether [`poll_transmit`](Connection::poll_transmit) would return a
    /// frame now. When false and every stream's `send_buffered` is 0,
    /// everything given to the connection has been handed to the transport.
    pub fn has_pending_output(&self) -> bool {
        !self.pongs.is_empty() || self.streams.has_pending_output()
    }

    /// Bytes accepted by `send` on all streams and not yet transmitted.
    pub fn send_buffered(&self) -> usize {
        self.streams.send_buffered_total
    }

    /// Checks the internal invariants: the per-stream credit conservation
    /// (`window_size == window + unread + pending_return`),
    /// buffer counts, connection totals and queue bounds. O(streams).
    ///
    /// Only with the `testing` feature: for tests, fuzzers and simulators
    /// (call it after every step of a harness); what it checks follows the
    /// internals, so it is not part of the stable API.
    #[cfg(feature = "testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.streams.check_totals(&self.config)?;
        // Connection timers plus at most open, linger and stall per stream.
        if self.timers.len() > 3 + 3 * self.streams.table.len() {
            return Err(format!("{} timers armed", self.timers.len()));
        }
        if self.pongs.len() > self.config.max_pending_pongs
            || self.pings.len() > self.config.max_outstanding_pings
            || self.used_ids.len() > self.config.max_streams.saturating_add(REORDER_ALLOWANCE)
        {
            return Err("a bounded queue is over its bound".into());
        }
        Ok(())
    }

    fn advance_time(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }
}
