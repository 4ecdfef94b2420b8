//! A client and a server [`Connection`] speaking yamux over loopback TCP.
//!
//! Each side runs on its own thread with a non-blocking `std::net` socket and
//! a small drive loop that follows the contract in the `Connection` docs:
//! read → `handle_input`; `handle_timeout` every turn (timers due by
//! `poll_timeout` run, and the connection's clock stays fresh); drain
//! `poll_event`; write `poll_transmit` frames (header and body together with
//! `write_vectored`, no copy); sleep a little when nothing moved.
//!
//! The client opens four streams and pings; the server answers:
//!
//! * stream 1, **bulk**: 16 MiB client → server; the server reads as it
//!   arrives, credit comes back (`CreditsReturned`), FIN both ways.
//! * stream 3, **echo**: 200 KiB echoed back byte for byte; the client
//!   half-closes first, the server keeps writing, then half-closes too.
//! * stream 5, **reset**: the client sends 1 KiB and resets the stream once
//!   the server acknowledged it; the server sees the data, then `StreamReset`.
//! * stream 7, **stop-reading** (hashicorp/yamux#133): the client writes
//!   messages without end; the server reads 5, half-closes and stops reading.
//!   The client's next write fails at once (RST), far from any timeout.
//! * a **ping** with its RTT.
//! * a **go-away**: the server sends it once all four streams are open; the
//!   client can no longer open streams, answers with its own go-away, and both
//!   sides end with `ConnectionClosed { reason: Drained }` after the streams
//!   finished.
//!
//! Run it with `cargo run --release --example demo`. It prints what happens,
//! a summary, and exits 0 only if every check passed.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use yamux_proto::{
    CloseReason, Config, Connection, ConnectionStats, Event, GoAwayCode, OpenError, ResetReason,
    Role, StreamError, StreamId, Transmit,
};

/// `say!(log, "...", args)`: one timestamped line of the story.
macro_rules! say {
    ($log:expr, $($arg:tt)*) => { $log.say(format_args!($($arg)*)) };
}

/// The client opens odd ids from 1, in this order, so both sides know which
/// stream plays which part without any handshake of their own.
const BULK: StreamId = StreamId(1);
const ECHO: StreamId = StreamId(3);
const RESET: StreamId = StreamId(5);
const STOP: StreamId = StreamId(7);

const BULK_BYTES: usize = 16 << 20;
const ECHO_BYTES: usize = 200 << 10;
const RESET_BYTES: usize = 1 << 10;
/// The stop-reading writer sends messages of this size...
const MSG: usize = 1 << 10;
/// ...and would send this many (4 MiB, far more than a window)...
const STOP_MSGS_WRITTEN: usize = 4096;
/// ...but the reader reads this many and stops.
const STOP_MSGS_READ: usize = 5;
/// The whole demo must be over by then; a stall fails it instead of hanging.
const DEADLINE: Duration = Duration::from_secs(20);
/// How long the drive loop sleeps when nothing moved (a real loop would wait
/// in `poll`/`epoll` on the socket and `poll_timeout`).
const IDLE_SLEEP: Duration = Duration::from_micros(200);

fn main() -> ExitCode {
    let t0 = Instant::now();
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo: cannot listen on loopback: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().expect("bound listener has an address");
    println!("yamux-proto demo: client and server over TCP {addr}\n");
    println!("{:>12}  {:<6}  what happened", "time", "side");

    let server = thread::spawn(move || {
        let log = Log { side: "server", t0 };
        let mut app = ServerApp::new(log);
        let result = listener.accept().and_then(|(sock, _)| {
            let conn = Connection::new(Config::default(), Role::Server, Instant::now())
                .expect("the default config is valid");
            run(&mut app, conn, sock, log)
        });
        app.report.finish(result, t0);
        app
    });
    let client = thread::spawn(move || {
        let log = Log { side: "client", t0 };
        let mut app = ClientApp::new(log);
        let result = TcpStream::connect(addr).and_then(|sock| {
            let conn = Connection::new(Config::default(), Role::Client, Instant::now())
                .expect("the default config is valid");
            run(&mut app, conn, sock, log)
        });
        app.report.finish(result, t0);
        app
    });
    let client = client.join().expect("client thread panicked");
    let server = server.join().expect("server thread panicked");
    let elapsed = t0.elapsed();

    let checks = checks(&client, &server);
    print_summary(&client, &server, elapsed);
    println!("\nchecks:");
    let mut failed = 0;
    for (ok, what) in &checks {
        println!("  [{}] {what}", if *ok { " ok " } else { "FAIL" });
        failed += usize::from(!ok);
    }
    if failed == 0 {
        println!("\nall {} checks passed in {:.0} ms", checks.len(), ms(elapsed));
        ExitCode::SUCCESS
    } else {
        println!("\n{failed} of {} checks FAILED", checks.len());
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------
// The drive loop: the only place that touches the socket and the clock.
// ---------------------------------------------------------------------------

/// What a side's application does; the drive loop calls it.
trait App {
    /// Once, before the first input.
    fn start(&mut self, conn: &mut Connection);
    /// For every event, in order.
    fn on_event(&mut self, conn: &mut Connection, event: &Event);
    /// Once per loop turn, for work that waits on state rather than events.
    fn tick(&mut self, _conn: &mut Connection) {}
    /// Where the application records what it saw.
    fn report(&mut self) -> &mut Report;
}

/// Drives `conn` over `sock` until the connection has closed, its last frame
/// is written and the peer has closed its side of the TCP connection.
fn run(app: &mut dyn App, mut conn: Connection, sock: TcpStream, log: Log) -> io::Result<()> {
    let mut sock = sock;
    sock.set_nonblocking(true)?;
    sock.set_nodelay(true)?;
    let deadline = log.t0 + DEADLINE;
    let mut buf = vec![0u8; 256 << 10];
    let mut out = OutQueue::default();
    let mut eof = false;
    let mut shut_down = false;
    app.start(&mut conn);
    loop {
        let now = Instant::now();
        if now > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "did not finish in time"));
        }
        let mut busy = false;
        // 1. Input: whatever the transport has, in whatever chunking.
        if !eof {
            match sock.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    conn.handle_transport_closed();
                }
                Ok(n) => {
                    conn.handle_input(now, &buf[..n]);
                    busy = true;
                }
                Err(e) if would_block(&e) => {}
                Err(e) => {
                    say!(log, "transport read error: {e}");
                    eof = true;
                    conn.handle_transport_closed();
                }
            }
        }
        // 2. Timers. Calling it early is harmless, so it is called every turn:
        // that also keeps the connection's clock fresh, which stamps the
        // commands below (a stale clock would arm their timers early).
        // A loop that sleeps would wake at `poll_timeout()` at the latest.
        conn.handle_timeout(now);
        // 3. Events, and the application's reaction to them.
        while let Some(event) = conn.poll_event() {
            app.on_event(&mut conn, &event);
            busy = true;
        }
        app.tick(&mut conn);
        while let Some(event) = conn.poll_event() {
            app.on_event(&mut conn, &event);
        }
        // 4. Output, until the socket is full or nothing is left.
        match out.flush(&mut conn, &mut sock) {
            Ok(wrote) => busy |= wrote,
            Err(e) => {
                say!(log, "transport write error: {e}");
                out = OutQueue::default();
                eof = true;
                conn.handle_transport_closed();
            }
        }
        // 5. The end: closed, last frame (our Go Away) written, peer done.
        if conn.is_closed() && out.is_empty() && !conn.has_pending_output() {
            if !shut_down {
                let _ = sock.shutdown(Shutdown::Write);
                shut_down = true;
            }
            if eof {
                let invariants = conn.check_invariants();
                let report = app.report();
                report.stats = conn.stats().clone();
                report.invariants = Some(invariants);
                return Ok(());
            }
        }
        if !busy {
            let until_timer = conn.poll_timeout().map(|t| t.saturating_duration_since(now));
            thread::sleep(until_timer.map_or(IDLE_SLEEP, |d| d.min(IDLE_SLEEP)));
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// Frames taken from `poll_transmit` and not yet fully written. Header and
/// body (a slice of the sender's own buffer) go out together through
/// `write_vectored`: the payload is never copied on its way to the socket.
#[derive(Default)]
struct OutQueue {
    frames: VecDeque<Transmit>,
    /// Bytes of the front frame already written.
    offset: usize,
}

impl OutQueue {
    /// Frames gathered per `writev`; more are produced only as these drain,
    /// so the connection keeps deciding what goes next (control first).
    const BATCH: usize = 32;

    fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Writes until the socket would block or nothing is left. Returns
    /// whether any byte was written.
    fn flush(&mut self, conn: &mut Connection, sock: &mut TcpStream) -> io::Result<bool> {
        let mut wrote = false;
        loop {
            while self.frames.len() < Self::BATCH {
                match conn.poll_transmit() {
                    Some(t) => self.frames.push_back(t),
                    None => break,
                }
            }
            if self.frames.is_empty() {
                return Ok(wrote);
            }
            let mut slices = Vec::with_capacity(2 * self.frames.len());
            let mut skip = self.offset;
            for t in &self.frames {
                for part in [&t.header[..], &t.body[..]] {
                    if skip >= part.len() {
                        skip -= part.len();
                        continue;
                    }
                    slices.push(IoSlice::new(&part[skip..]));
                    skip = 0;
                }
            }
            match sock.write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    wrote = true;
                    self.advance(n);
                }
                Err(e) if would_block(&e) => return Ok(wrote),
                Err(e) => return Err(e),
            }
        }
    }

    fn advance(&mut self, n: usize) {
        let mut n = n + self.offset;
        while let Some(t) = self.frames.front() {
            if n < t.len() {
                break;
            }
            n -= t.len();
            self.frames.pop_front();
        }
        self.offset = n;
    }
}

/// What an application still wants to write on one stream. It is handed to
/// the connection as its send buffer allows; the rest waits for
/// `Event::Writable`. Optionally half-closes once everything was taken.
struct Outbox {
    id: StreamId,
    queue: VecDeque<Bytes>,
    close_when_empty: bool,
    closed: bool,
    /// Bytes the connection accepted.
    accepted: u64,
}

impl Outbox {
    fn new(id: StreamId) -> Outbox {
        Outbox { id, queue: VecDeque::new(), close_when_empty: false, closed: false, accepted: 0 }
    }

    /// Hands over as much as the connection takes. Returns the bytes taken
    /// (all of them also counted in `accepted`, even when a later `send`
    /// of the same call fails).
    fn pump(&mut self, conn: &mut Connection) -> Result<usize, StreamError> {
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
// What each side saw.
// ---------------------------------------------------------------------------

#[derive(Default, Debug)]
struct StreamLog {
    /// Bytes our `send` accepted.
    sent: u64,
    /// Bytes we read.
    received: u64,
    /// `CreditsReturned` events and their total.
    credit_events: u64,
    credits: u64,
    /// The peer's FIN (`PeerHalfClosed`).
    half_closed: bool,
    /// `StreamReset`, with its reason.
    reset: Option<ResetReason>,
    /// `StreamClosed` events (must be exactly one).
    closed: u32,
    /// An event after `StreamClosed`, or `Data` after `PeerHalfClosed`/`StreamReset`:
    /// a broken guarantee of `Event`.
    out_of_order: bool,
}

#[derive(Default, Debug)]
struct Report {
    streams: BTreeMap<StreamId, StreamLog>,
    /// `StreamOpened` events, in order.
    opened: Vec<StreamId>,
    pongs: Vec<(u32, Duration)>,
    go_away: Option<GoAwayCode>,
    closed: Option<CloseReason>,
    /// Events after `ConnectionClosed` (must be none).
    after_close: u32,
    /// Commands that failed unexpectedly.
    errors: Vec<String>,
    stats: ConnectionStats,
    /// `check_invariants` at the end (`None`: never got there).
    invariants: Option<Result<(), String>>,
    /// When the drive loop ended, and how.
    finished_at: Duration,
    outcome: Option<Result<(), String>>,
}

impl Report {
    /// Reads up to `max` bytes of stream `id` and counts them; `None` when
    /// nothing more is readable now (blocked, end of stream or reset; the
    /// events say which).
    fn read(&mut self, conn: &mut Connection, id: StreamId, max: usize) -> Option<Bytes> {
        let data = conn.read(id, max).ok().flatten()?;
        self.streams.entry(id).or_default().received += data.len() as u64;
        Some(data)
    }

    /// Bookkeeping common to both sides, before the application reacts.
    fn record(&mut self, event: &Event) {
        if self.closed.is_some() {
            self.after_close += 1;
        }
        match *event {
            Event::StreamOpened { id } => {
                self.opened.push(id);
                self.streams.entry(id).or_default();
            }
            Event::Readable { id } => {
                let s = self.streams.entry(id).or_default();
                s.out_of_order |= s.half_closed || s.reset.is_some() || s.closed > 0;
            }
            Event::PeerHalfClosed { id } => {
                let s = self.streams.entry(id).or_default();
                s.out_of_order |= s.half_closed || s.closed > 0;
                s.half_closed = true;
            }
            Event::StreamReset { id, reason } => {
                let s = self.streams.entry(id).or_default();
                s.out_of_order |= s.reset.is_some() || s.closed > 0;
                s.reset = Some(reason);
            }
            Event::CreditsReturned { id, amount } => {
                let s = self.streams.entry(id).or_default();
                s.out_of_order |= s.closed > 0;
                s.credit_events += 1;
                s.credits += u64::from(amount);
            }
            Event::StreamClosed { id } => self.streams.entry(id).or_default().closed += 1,
            Event::Pong { opaque, rtt } => self.pongs.push((opaque, rtt)),
            Event::GoAwayReceived { code } => self.go_away = Some(code),
            Event::ConnectionClosed { reason } => self.closed = Some(reason),
            Event::Writable { .. } | Event::OpenUnblocked => {}
            _ => {}
        }
    }

    /// Keeps the value of a command that succeeded; records one that did not.
    fn check<T, E: fmt::Display>(&mut self, what: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(format!("{what}: {e}"));
                None
            }
        }
    }

    fn finish(&mut self, result: io::Result<()>, t0: Instant) {
        self.finished_at = t0.elapsed();
        self.outcome = Some(result.map_err(|e| e.to_string()));
    }

    fn stream(&self, id: StreamId) -> &StreamLog {
        static EMPTY: StreamLog = StreamLog {
            sent: 0,
            received: 0,
            credit_events: 0,
            credits: 0,
            half_closed: false,
            reset: None,
            closed: 0,
            out_of_order: false,
        };
        self.streams.get(&id).unwrap_or(&EMPTY)
    }
}

/// Every stream an application writes to goes through an `Outbox`; this
/// mirrors its count into the report.
fn note_sent(report: &mut Report, id: StreamId, n: usize) {
    report.streams.entry(id).or_default().sent += n as u64;
}

// ---------------------------------------------------------------------------
// The client: opens the streams, pings, answers the go-away.
// ---------------------------------------------------------------------------

struct ClientApp {
    log: Log,
    report: Report,
    bulk: Outbox,
    bulk_fnv: u64,
    /// Printed once the bulk data is all on the wire (netchan-style drain).
    bulk_drain_noted: bool,
    echo: Outbox,
    echo_sent: Bytes,
    echo_back: Vec<u8>,
    stop: Outbox,
    reset_sent: bool,
    /// `send` on the stream we reset, right after the reset.
    send_after_reset: Option<Result<usize, StreamError>>,
    /// `send` on the stop-reading stream once its reset arrived, and when.
    stop_write_error: Option<(Result<usize, StreamError>, Instant)>,
    ping: Option<u32>,
    open_after_go_away: Option<Result<StreamId, OpenError>>,
}

impl ClientApp {
    fn new(log: Log) -> ClientApp {
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

    fn pump(&mut self, conn: &mut Connection, id: StreamId) {
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

    fn note_stop_write_error(&mut self, r: Result<usize, StreamError>) {
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
                    let r = conn.send(STOP, &[0u8; MSG]);
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

struct ServerApp {
    log: Log,
    report: Report,
    bulk_fnv: Fnv,
    echo: Outbox,
    stop_read: usize,
    stop_at: Option<Instant>,
    go_away_sent: bool,
}

impl ServerApp {
    fn new(log: Log) -> ServerApp {
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
    fn pump_echo(&mut self, conn: &mut Connection) {
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
                        let r = conn.close_write(id).and_then(|()| conn.stop_reading(id));
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

// ---------------------------------------------------------------------------
// Checks and summary.
// ---------------------------------------------------------------------------

fn checks(c: &ClientApp, s: &ServerApp) -> Vec<(bool, String)> {
    let (cr, sr) = (&c.report, &s.report);
    let mut v: Vec<(bool, String)> = Vec::new();
    let mut check = |ok: bool, what: String| v.push((ok, what));

    for (side, r) in [("client", cr), ("server", sr)] {
        check(
            r.outcome == Some(Ok(())),
            format!("{side}: drive loop ended cleanly ({:?})", r.outcome),
        );
        check(
            r.errors.is_empty(),
            format!("{side}: no command failed unexpectedly {:?}", r.errors),
        );
        check(
            r.invariants == Some(Ok(())),
            format!("{side}: connection invariants hold at the end ({:?})", r.invariants),
        );
        check(
            r.closed == Some(CloseReason::Drained),
            format!("{side}: ConnectionClosed {{ Drained }} (got {:?})", r.closed),
        );
        check(r.after_close == 0, format!("{side}: no event after ConnectionClosed"));
        for id in [BULK, ECHO, RESET, STOP] {
            let st = r.stream(id);
            check(
                st.closed == 1 && !st.out_of_order,
                format!("{side}: stream {id}: StreamClosed exactly once, events in order"),
            );
        }
    }

    // bulk
    let (cb, sb) = (cr.stream(BULK), sr.stream(BULK));
    check(
        sb.received == BULK_BYTES as u64 && s.bulk_fnv.0 == c.bulk_fnv,
        format!(
            "bulk: server got all {} intact (got {}, hash {})",
            size(BULK_BYTES as u64),
            size(sb.received),
            if s.bulk_fnv.0 == c.bulk_fnv { "matches" } else { "differs" }
        ),
    );
    check(sb.half_closed && cb.half_closed, "bulk: FIN seen by both sides".into());
    // Credit below half a window may never come back once the stream closes,
    // so all we can require is most of it.
    let window = u64::from(Config::default().max_stream_window);
    check(
        cb.credit_events > 0 && cb.credits + window >= BULK_BYTES as u64,
        format!("bulk: credit came back ({} events, {})", cb.credit_events, size(cb.credits)),
    );

    // echo
    check(
        c.echo_back == c.echo_sent[..],
        format!("echo: all {} came back unchanged", size(ECHO_BYTES as u64)),
    );
    check(
        sr.stream(ECHO).half_closed && cr.stream(ECHO).half_closed,
        "echo: half-closed in both directions (client first, server kept writing)".into(),
    );

    // reset
    let sreset = sr.stream(RESET);
    check(
        sreset.received == RESET_BYTES as u64
            && matches!(sreset.reset, Some(ResetReason::Remote { code: 0 })),
        format!(
            "reset: server got the {} then StreamReset {{ Remote }} ({:?})",
            size(RESET_BYTES as u64),
            sreset.reset
        ),
    );
    check(
        cr.stream(RESET).reset.is_none(),
        "reset: the client is not told of its own reset".into(),
    );
    check(
        matches!(c.send_after_reset, Some(Err(StreamError::Reset(ResetReason::Local)))),
        format!("reset: send after reset fails ({:?})", c.send_after_reset),
    );

    // stop-reading (#133)
    let cstop = cr.stream(STOP);
    check(
        s.stop_read == STOP_MSGS_READ * MSG && sr.stream(STOP).received >= s.stop_read as u64,
        format!("stop-reading: server read {} of {MSG} B messages", s.stop_read / MSG),
    );
    check(
        matches!(cstop.reset, Some(ResetReason::Remote { .. })),
        format!("stop-reading: the writer saw StreamReset {{ Remote }} ({:?})", cstop.reset),
    );
    let promptly = match (&c.stop_write_error, s.stop_at) {
        (Some((Err(StreamError::Reset(_)), at)), Some(stop)) => {
            Some(at.saturating_duration_since(stop))
        }
        _ => None,
    };
    check(
        promptly.is_some_and(|d| d < Duration::from_secs(1)),
        format!(
            "stop-reading: the writer's next write failed promptly ({:?} after the reader \
             stopped; the linger timeout is {:?})",
            promptly,
            Config::default().linger_timeout.unwrap_or_default()
        ),
    );
    check(
        c.stop.accepted < (STOP_MSGS_WRITTEN * MSG) as u64,
        format!(
            "stop-reading: the writer was stopped before it wrote everything ({} of {})",
            size(c.stop.accepted),
            size((STOP_MSGS_WRITTEN * MSG) as u64)
        ),
    );

    // ping
    let ours = c.ping.and_then(|p| cr.pongs.iter().find(|(o, _)| *o == p));
    check(
        ours.is_some_and(|(_, rtt)| *rtt < Duration::from_secs(1)),
        format!("ping: answered with an RTT ({:?})", ours.map(|(_, rtt)| *rtt)),
    );

    // go-away
    check(cr.go_away == Some(GoAwayCode::Normal), "go-away: the client received it".into());
    check(
        c.open_after_go_away == Some(Err(OpenError::RemoteGoingAway)),
        format!("go-away: the client's open() is refused ({:?})", c.open_after_go_away),
    );
    check(
        sr.opened == [BULK, ECHO, RESET, STOP],
        format!("server: saw exactly the four streams opened ({:?})", sr.opened),
    );
    v
}

fn print_summary(c: &ClientApp, s: &ServerApp, elapsed: Duration) {
    let (cr, sr) = (&c.report, &s.report);
    println!("\nsummary");
    println!(
        "  {:<13} {:>3}  {:>11} {:>11}  {:>11} {:>11}  how it ended",
        "stream", "id", "c→s sent", "delivered", "s→c sent", "delivered"
    );
    for id in [BULK, ECHO, RESET, STOP] {
        let (cs, ss) = (cr.stream(id), sr.stream(id));
        let how = match id {
            BULK => {
                format!(
                    "FIN both ways; {} credit returns, {} (incl. window growth)",
                    cs.credit_events,
                    size(cs.credits)
                )
            }
            ECHO => "FIN both ways (client first)".to_string(),
            RESET => format!("client reset; server saw {}", reason(ss.reset)),
            _ => format!(
                "server stopped after {STOP_MSGS_READ} msgs; client saw {}",
                reason(cs.reset)
            ),
        };
        println!(
            "  {:<13} {:>3}  {:>11} {:>11}  {:>11} {:>11}  {how}",
            name(id),
            id.0,
            size(cs.sent),
            size(ss.received),
            size(ss.sent),
            size(cs.received)
        );
    }
    println!("\n  {:<22} {:>12} {:>12}", "connection", "client", "server");
    let row = |what: &str, f: fn(&ConnectionStats) -> u64| {
        println!("  {:<22} {:>12} {:>12}", what, f(&cr.stats), f(&sr.stats));
    };
    row("frames sent", |s| s.frames_sent);
    row("frames received", |s| s.frames_received);
    row("bytes sent", |s| s.bytes_sent);
    row("payload bytes sent", |s| s.data_sent);
    row("window updates sent", |s| s.window_updates_sent);
    row("resets sent", |s| s.resets_sent);
    row("resets received", |s| s.resets_received);
    row("pings sent", |s| s.pings_sent);
    row("streams opened", |s| s.streams_opened);
    row("streams accepted", |s| s.streams_accepted);
    println!(
        "  {:<22} {:>12} {:>12}",
        "finished at (ms)",
        format!("{:.1}", ms(cr.finished_at)),
        format!("{:.1}", ms(sr.finished_at))
    );
    println!("  elapsed: {:.1} ms", ms(elapsed));
}

fn reason(r: Option<ResetReason>) -> String {
    match r {
        Some(ResetReason::Remote { code }) => format!("StreamReset(Remote {{ code: {code} }})"),
        Some(other) => format!("StreamReset({other:?})"),
        None => "no reset".into(),
    }
}

fn name(id: StreamId) -> &'static str {
    match id {
        BULK => "bulk",
        ECHO => "echo",
        RESET => "reset",
        STOP => "stop-reading",
        _ => "?",
    }
}

// ---------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------

/// Timestamped log lines, one per thing that happened.
#[derive(Clone, Copy)]
struct Log {
    side: &'static str,
    t0: Instant,
}

impl Log {
    fn say(&self, what: fmt::Arguments<'_>) {
        println!("{:>9.3} ms  {:<6}  {what}", ms(self.t0.elapsed()), self.side);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / (1 << 10) as f64),
        n => format!("{n} B"),
    }
}

/// A checkable byte pattern, different per seed.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed).wrapping_add((i >> 8) as u8))
        .collect()
}

/// FNV-1a 64, fed incrementally.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn fnv(data: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.update(data);
    h.0
}
