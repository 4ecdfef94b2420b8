//! The two applications: the client opens the streams, pings and answers
//! the go-away; the server sinks, echoes, sees the reset, stops reading and
//! goes away.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Buf, Bytes};
use yamux_proto::{Connection, Event, GoAwayCode, OpenError, SendError, StreamError, StreamId};

use super::drive::App;
use super::report::{fnv, name, note_sent, pattern, size, Fnv, Log, Report};
use super::*;

/// What an application still wants to write on one stream. It is handed to
/// the connection as its send buffer allows; the rest waits for
/// `Event::Writable`. Optionally half-closes once everything was taken.
pub(crate) struct Outbox {
    pub(crate) id: StreamId,
    pub(crate) queue: VecDeque<Bytes>,
    pub(crate) close_when_empty: bool,
    pub(crate) closed: bool,
    /// Bytes the connection accepted.
    pub(crate) accepted: u64,
}

impl Outbox {
    pub(crate) fn new(id: StreamId) -> Outbox {
        Outbox { id, queue: VecDeque::new(), close_when_empty: false, closed: false, accepted: 0 }
    }

    /// Hands over as much as the connection takes. Returns the bytes taken
    /// (all of them also counted in `accepted`, even when a later `send`
    /// of the same call fails).
    pub(crate) fn pump(&mut self, conn: &mut Connection) -> Result<usize, StreamError> {
        let mut taken = 0;
        while let Some(front) = self.queue.front_mut() {
            // By reference: the frames sent will be slices of `front`.
            let n = conn.send_bytes(self.id, front.clone())?;
            taken += n;
            self.accepted += n as u64;
            front.advance(n);
            if !front.is_empty() {
                break; // short: an Event::Writable will tell when to go on
            }
            self.queue.pop_front();
        }
        if self.queue.is_empty() && self.close_when_empty && !self.closed {
            conn.close_write(self.id)?;
            self.closed = true;
        }
        Ok(taken)
    }
}

// ---------------------------------------------------------------------------
// The client: opens the streams, pings, answers the go-away.
// ---------------------------------------------------------------------------

pub(crate) struct ClientApp {
    pub(crate) log: Log,
    pub(crate) report: Report,
    pub(crate) bulk: Outbox,
    /// What the server's hash of the bulk data must be (checked by
    /// `tests/demo.rs`).
    #[allow(dead_code)]
    pub(crate) bulk_fnv: u64,
    /// Printed once the bulk data is all on the wire (netchan-style drain).
    pub(crate) bulk_drain_noted: bool,
    pub(crate) echo: Outbox,
    /// What the echo must bring back (checked by `tests/demo.rs`).
    #[allow(dead_code)]
    pub(crate) echo_sent: Bytes,
    pub(crate) echo_back: Vec<u8>,
    pub(crate) stop: Outbox,
    pub(crate) reset_sent: bool,
    /// `send` on the stream we reset, right after the reset.
    pub(crate) send_after_reset: Option<Result<usize, SendError>>,
    /// `send` on the stop-reading stream once its reset arrived, and when.
    pub(crate) stop_write_error: Option<(Result<usize, StreamError>, Instant)>,
    pub(crate) ping: Option<u32>,
    pub(crate) open_after_go_away: Option<Result<StreamId, OpenError>>,
}

impl ClientApp {
    pub(crate) fn new(log: Log) -> ClientApp {
        let bulk_data = Bytes::from(pattern(BULK_BYTES, 1));
        let echo_sent = Bytes::from(pattern(ECHO_BYTES, 3));
        let mut bulk = Outbox::new(BULK);
        bulk.queue.push_back(bulk_data.clone());
        let mut echo = Outbox::new(ECHO);
        echo.queue.push_back(echo_sent.clone());
        echo.close_when_empty = true; // half-close right after the request
        let mut stop = Outbox::new(STOP);
        for i in 0..STOP_MSGS_WRITTEN {
            stop.queue.push_back(Bytes::from(vec![i as u8; MSG]));
        }
        ClientApp {
            log,
            report: Report::default(),
            bulk_fnv: fnv(&bulk_data),
            bulk,
            bulk_drain_noted: false,
            echo,
            echo_sent,
            echo_back: Vec::new(),
            stop,
            reset_sent: false,
            send_after_reset: None,
            stop_write_error: None,
            ping: None,
            open_after_go_away: None,
        }
    }

    pub(crate) fn pump(&mut self, conn: &mut Connection, id: StreamId) {
        let outbox = match id {
            BULK => &mut self.bulk,
            ECHO => &mut self.echo,
            STOP => &mut self.stop,
            _ => return,
        };
        let accepted_before = outbox.accepted;
        let r = outbox.pump(conn);
        if id == STOP {
            // Count what was taken before a failure too.
            note_sent(&mut self.report, id, (self.stop.accepted - accepted_before) as usize);
            if let Err(e @ StreamError::Reset(_)) = r {
                // The #133 outcome we wait for: the writer learns at once.
                self.note_stop_write_error(Err(e));
                return;
            }
            self.report.check("send on the stop-reading stream", r);
            return;
        }
        if let Some(n) = self.report.check(&format!("send on stream {id}"), r) {
            note_sent(&mut self.report, id, n);
        }
    }

    pub(crate) fn note_stop_write_error(&mut self, r: Result<usize, StreamError>) {
        if self.stop_write_error.is_none() {
            say!(self.log, "stream {STOP}: the writer's write -> {r:?}");
            self.stop_write_error = Some((r, Instant::now()));
        }
    }
}

impl App for ClientApp {
    fn start(&mut self, conn: &mut Connection) {
        let log = self.log;
        for (want, what) in [
            (BULK, format!("bulk: sending {}", size(BULK_BYTES as u64))),
            (ECHO, format!("echo: sending {}, then FIN", size(ECHO_BYTES as u64))),
            (RESET, format!("reset: sending {}, reset once ACKed", size(RESET_BYTES as u64))),
            (
                STOP,
                format!("stop-reading: writing {STOP_MSGS_WRITTEN} messages of {MSG} B, no end"),
            ),
        ] {
            match conn.open() {
                Ok(id) if id == want => say!(log, "opened stream {id}  ({what})"),
                Ok(id) => self.report.errors.push(format!("open gave {id}, expected {want}")),
                Err(e) => self.report.errors.push(format!("open failed: {e}")),
            }
        }
        // Optimistic open: data goes out with the SYN, before any ACK.
        for id in [BULK, ECHO, STOP] {
            self.pump(conn, id);
        }
        let r = conn.send(RESET, &[5u8; RESET_BYTES]);
        if let Some(n) = self.report.check("send on the reset stream", r) {
            note_sent(&mut self.report, RESET, n);
        }
        self.ping = self.report.check("ping", conn.ping());
        if let Some(opaque) = self.ping {
            say!(log, "ping sent (opaque {opaque})");
        }
    }

    fn on_event(&mut self, conn: &mut Connection, event: &Event) {
        self.report.record(event);
        let log = self.log;
        match *event {
            Event::Readable { id } => {
                while let Some(data) = self.report.read(conn, id, usize::MAX) {
                    if id == ECHO {
                        self.echo_back.extend_from_slice(&data);
                    }
                }
            }
            Event::Writable { id } => self.pump(conn, id),
            Event::CreditsReturned { id, amount } => {
                let s = self.report.stream(id);
                if s.credit_events == 1 {
                    say!(
                        log,
                        "stream {id}: first credit returned ({}): the peer is reading",
                        size(u64::from(amount))
                    );
                }
            }
            Event::PeerHalfClosed { id } => {
                let extra = if id == ECHO {
                    format!(" after echoing {}", size(self.echo_back.len() as u64))
                } else {
                    String::new()
                };
                say!(log, "stream {id}: peer half-closed (FIN){extra}");
            }
            Event::StreamReset { id, reason } => {
                say!(log, "stream {id}: reset: {reason}");
                if id == STOP {
                    // The #133 writer: its very next write must fail.
                    let r = conn.send(STOP, &[0u8; MSG]).map_err(StreamError::from);
                    self.note_stop_write_error(r);
                }
            }
            Event::StreamClosed { id } => say!(log, "stream {id}: closed"),
            Event::Pong { opaque, rtt } => {
                let whose = if Some(opaque) == self.ping { "our ping" } else { "start-up ping" };
                say!(log, "pong for {whose} (opaque {opaque}): rtt {:.3} ms", ms(rtt));
            }
            Event::GoAwayReceived { code } => {
                let r = conn.open();
                say!(log, "go-away received ({code:?}); open() now -> {r:?}; going away too");
                self.open_after_go_away = Some(r);
                conn.go_away(GoAwayCode::Normal);
            }
            Event::ConnectionClosed { reason } => say!(log, "connection closed: {reason:?}"),
            Event::StreamOpened { id } => say!(log, "unexpected stream {id} from the server"),
            Event::OpenUnblocked => {}
            _ => {}
        }
    }

    fn tick(&mut self, conn: &mut Connection) {
        let log = self.log;
        // Reset the stream once the server has it, so the peer does see the
        // reset (a stream reset before its SYN left is never announced).
        if !self.reset_sent && conn.stream_info(RESET).is_some_and(|i| i.acknowledged) {
            self.reset_sent = true;
            let r = conn.reset(RESET);
            self.report.check("reset", r);
            let after = conn.send(RESET, b"too late");
            say!(log, "stream {RESET}: acknowledged; reset it; a later send -> {after:?}");
            self.send_after_reset = Some(after);
        }
        // Netchan-style drain: all handed to the transport, then look at how
        // much the peer has credited back, then FIN.
        if !self.bulk_drain_noted && self.bulk.queue.is_empty() {
            if let Some(info) = conn.stream_info(BULK).filter(|i| i.send_buffered == 0) {
                self.bulk_drain_noted = true;
                say!(
                    log,
                    "stream {BULK}: all {} on the wire; peer credited back {} so far, \
                     uncredited {}; FIN",
                    size(info.sent),
                    size(self.report.stream(BULK).credits),
                    size(info.uncredited)
                );
                let r = conn.close_write(BULK);
                self.report.check("close_write(bulk)", r);
            }
        }
    }

    fn report(&mut self) -> &mut Report {
        &mut self.report
    }
}

// ---------------------------------------------------------------------------
// The server: sinks, echoes, sees the reset, stops reading, goes away.
// ---------------------------------------------------------------------------

pub(crate) struct ServerApp {
    pub(crate) log: Log,
    pub(crate) report: Report,
    pub(crate) bulk_fnv: Fnv,
    pub(crate) echo: Outbox,
    pub(crate) stop_read: usize,
    pub(crate) stop_at: Option<Instant>,
    pub(crate) go_away_sent: bool,
}

impl ServerApp {
    pub(crate) fn new(log: Log) -> ServerApp {
        ServerApp {
            log,
            report: Report::default(),
            bulk_fnv: Fnv::new(),
            echo: Outbox::new(ECHO),
            stop_read: 0,
            stop_at: None,
            go_away_sent: false,
        }
    }

    /// Echo with back-pressure: received bytes are read (and their credit
    /// may go back to the client) only while our send buffer takes them;
    /// after the client's FIN and the last byte, our FIN follows.
    pub(crate) fn pump_echo(&mut self, conn: &mut Connection) {
        loop {
            let r = self.echo.pump(conn);
            if let Some(n) = self.report.check("echo send", r) {
                note_sent(&mut self.report, ECHO, n);
            }
            if !self.echo.queue.is_empty() || self.echo.closed {
                return; // an Event::Writable will tell when to go on
            }
            match conn.read(ECHO, usize::MAX) {
                Ok(Some(data)) => {
                    self.report.streams.entry(ECHO).or_default().received += data.len() as u64;
                    // Sent back by reference: the echo is a slice of the input.
                    self.echo.queue.push_back(data);
                }
                Ok(None) => self.echo.close_when_empty = true,
                Err(_) => return,
            }
        }
    }
}

impl App for ServerApp {
    fn start(&mut self, _conn: &mut Connection) {
        say!(self.log, "accepted the TCP connection");
    }

    fn on_event(&mut self, conn: &mut Connection, event: &Event) {
        self.report.record(event);
        let log = self.log;
        match *event {
            Event::StreamOpened { id } => {
                say!(log, "stream {id} opened by the client ({})", name(id));
                if self.report.opened.len() == 4 && !self.go_away_sent {
                    self.go_away_sent = true;
                    conn.go_away(GoAwayCode::Normal);
                    say!(
                        log,
                        "go-away sent: no new streams, these {} may finish",
                        conn.stream_count()
                    );
                }
            }
            Event::Readable { id } => match id {
                BULK => {
                    while let Some(data) = self.report.read(conn, id, usize::MAX) {
                        self.bulk_fnv.update(&data);
                    }
                }
                ECHO => self.pump_echo(conn),
                STOP => {
                    while self.stop_read < STOP_MSGS_READ * MSG {
                        let want = STOP_MSGS_READ * MSG - self.stop_read;
                        let Some(data) = self.report.read(conn, id, want) else { break };
                        self.stop_read += data.len();
                    }
                    if self.stop_read == STOP_MSGS_READ * MSG && self.stop_at.is_none() {
                        // The #133 reader: half-close, then stop reading.
                        let r = conn
                            .close_write(id)
                            .map_err(StreamError::from)
                            .and_then(|()| conn.stop_reading(id).map_err(StreamError::from));
                        self.report.check("close_write + stop_reading", r);
                        self.stop_at = Some(Instant::now());
                        say!(
                            log,
                            "stream {id}: read {STOP_MSGS_READ} messages; FIN and stop reading"
                        );
                    }
                }
                _ => while self.report.read(conn, id, usize::MAX).is_some() {},
            },
            Event::Writable { id } if id == ECHO => self.pump_echo(conn),
            Event::Writable { .. } => {}
            Event::PeerHalfClosed { id } => {
                let got = self.report.stream(id).received;
                say!(log, "stream {id}: client half-closed (FIN) after {}", size(got));
                match id {
                    BULK => {
                        let r = conn.close_write(id);
                        self.report.check("close_write(bulk)", r);
                    }
                    // Keep echoing what is still unread or queued, then FIN.
                    ECHO => self.pump_echo(conn),
                    _ => {}
                }
            }
            Event::StreamReset { id, reason } => {
                say!(
                    log,
                    "stream {id}: reset: {reason} (after {} of data)",
                    size(self.report.stream(id).received)
                );
            }
            Event::StreamClosed { id } => say!(log, "stream {id}: closed"),
            Event::Pong { opaque, rtt } => {
                say!(log, "pong for start-up ping (opaque {opaque}): rtt {:.3} ms", ms(rtt));
            }
            Event::GoAwayReceived { code } => say!(log, "go-away received ({code:?})"),
            Event::ConnectionClosed { reason } => say!(log, "connection closed: {reason:?}"),
            Event::CreditsReturned { .. } | Event::OpenUnblocked => {}
            _ => {}
        }
    }

    fn report(&mut self) -> &mut Report {
        &mut self.report
    }
}
