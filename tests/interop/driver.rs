//! A small blocking driver for our sans-IO [`Connection`] over a real
//! `std::net::TcpStream`, for the interop tests.
//!
//! One thread, a non-blocking socket, and the drive-loop contract of
//! `src/connection/mod.rs`: input → `handle_input`, `handle_timeout` at
//! `poll_timeout`, events → the scenario, output → `write_transmits` into the
//! socket, EOF → `handle_transport_closed`. When nothing happens it waits on
//! the socket with a short timeout (at most [`IDLE_WAIT`]), so it needs no
//! poller and never spins.
//!
//! The scenario is a closure called with every event (`Some(event)`) and once
//! per loop turn (`None`, a "tick" for timed actions and writes); it returns
//! `true` when its goal is reached. Every [`Driver::run`] has a time limit and
//! the driver a global deadline, so a test never hangs: it fails with a
//! message that says what it was waiting for and what was seen on the wire.
//!
//! Both directions of the byte stream are decoded with
//! `yamux_proto::frame::Decoder` into [`Wire`] records, so tests can assert what
//! the peer actually did (frame types, flags, lengths, timing).

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::support::rng::Rng;
use yamux_proto::frame::{Decoder, Flags, FrameType, Header};
use yamux_proto::{
    CloseReason, Config, Connection, Event, ResetReason, Role, StreamError, StreamId,
};

/// Longest the loop sleeps when idle; bounds the latency of ticks and of
/// noticing that the socket became writable again.
pub const IDLE_WAIT: Duration = Duration::from_millis(2);

/// Most bytes handed to `handle_input` per loop turn, so output and events
/// interleave with a fast peer's input.
const READ_PER_TURN: usize = 1 << 20;

/// Most bytes of frames produced per loop turn.
const WRITE_CHUNK: usize = 256 * 1024;

/// Global deadline of each driver: a test fails rather than hang.
pub const LIFE: Duration = Duration::from_secs(30);

/// Our configuration against real peers: defaults, but no keep-alive (tests
/// that want it turn it on), so the wire only carries what a scenario causes.
pub fn config() -> Config {
    {
        let mut c = Config::default();
        c.keep_alive_interval = None;
        c
    }
}

/// One frame seen on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRec {
    /// When it was decoded, from the driver's start.
    pub at: Duration,
    /// The header as it was on the wire.
    pub header: Header,
}

impl FrameRec {
    /// The stream id.
    pub fn id(&self) -> StreamId {
        self.header.stream_id
    }

    /// Whether the frame carries every flag of `f`.
    pub fn has(&self, f: Flags) -> bool {
        self.header.flags.contains(f)
    }

    /// Whether this is a Data frame.
    pub fn is_data(&self) -> bool {
        self.header.frame_type == FrameType::Data
    }

    /// Whether this is a Window Update frame.
    pub fn is_window_update(&self) -> bool {
        self.header.frame_type == FrameType::WindowUpdate
    }
}

/// The frames of one direction of the connection, decoded from a copy of the
/// bytes.
#[derive(Debug)]
pub struct Wire {
    decoder: Decoder,
    /// Every frame, in order.
    pub frames: Vec<FrameRec>,
    /// Set if the byte stream did not decode (the peer or we sent garbage).
    pub bad: Option<String>,
    /// Payload bytes of Data frames, per stream.
    pub data_bytes: BTreeMap<StreamId, u64>,
}

impl Wire {
    fn new() -> Wire {
        // Large enough for any body a peer could legally send us.
        Wire {
            decoder: Decoder::new(u32::MAX),
            frames: Vec::new(),
            bad: None,
            data_bytes: BTreeMap::new(),
        }
    }

    fn feed(&mut self, at: Duration, bytes: &[u8]) {
        if self.bad.is_some() {
            return;
        }
        self.decoder.extend(bytes);
        loop {
            match self.decoder.decode() {
                Ok(Some(frame)) => {
                    let header = frame.header;
                    if header.frame_type == FrameType::Data {
                        *self.data_bytes.entry(header.stream_id).or_default() +=
                            u64::from(header.length);
                    }
                    self.frames.push(FrameRec { at, header });
                }
                Ok(None) => break,
                Err(e) => {
                    self.bad = Some(e.to_string());
                    break;
                }
            }
        }
    }

    /// The frames of stream `id`, in order.
    pub fn stream(&self, id: StreamId) -> impl Iterator<Item = &FrameRec> + '_ {
        self.frames.iter().filter(move |f| f.id() == id)
    }

    /// The first frame of stream `id`.
    pub fn first(&self, id: StreamId) -> Option<&FrameRec> {
        self.stream(id).next()
    }

    /// Data and Window Update frames (stream frames) carrying flag `f`.
    pub fn with_flag(&self, f: Flags) -> impl Iterator<Item = &FrameRec> + '_ {
        self.frames.iter().filter(move |r| {
            matches!(r.header.frame_type, FrameType::Data | FrameType::WindowUpdate) && r.has(f)
        })
    }

    /// Frames of type `t`.
    pub fn of_type(&self, t: FrameType) -> impl Iterator<Item = &FrameRec> + '_ {
        self.frames.iter().filter(move |r| r.header.frame_type == t)
    }

    /// Ping requests (SYN).
    pub fn pings(&self) -> usize {
        self.of_type(FrameType::Ping).filter(|r| r.has(Flags::SYN)).count()
    }

    /// Ping answers (ACK).
    pub fn pongs(&self) -> usize {
        self.of_type(FrameType::Ping).filter(|r| r.has(Flags::ACK)).count()
    }

    /// Window Updates that return credit: non-zero delta, no SYN/ACK/RST.
    pub fn credit_updates(&self) -> impl Iterator<Item = &FrameRec> + '_ {
        self.of_type(FrameType::WindowUpdate).filter(|r| {
            r.header.length > 0 && !r.has(Flags::SYN) && !r.has(Flags::ACK) && !r.has(Flags::RST)
        })
    }

    /// Largest Data body.
    pub fn max_data_frame(&self) -> u32 {
        self.of_type(FrameType::Data).map(|r| r.header.length).max().unwrap_or(0)
    }

    /// Data bytes of stream `id` in frames recorded before `at`.
    pub fn data_before(&self, id: StreamId, at: Duration) -> u64 {
        self.stream(id)
            .filter(|r| r.is_data() && r.at < at)
            .map(|r| u64::from(r.header.length))
            .sum()
    }

    /// Go Away frames.
    pub fn go_aways(&self) -> Vec<u32> {
        self.of_type(FrameType::GoAway).map(|r| r.header.length).collect()
    }

    /// The last `n` frames, one per line, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let mut s = String::new();
        for r in self.frames.iter().rev().take(n).collect::<Vec<_>>().into_iter().rev() {
            let _ = writeln!(s, "    {}", describe(r));
        }
        s
    }
}

/// One line describing a frame, e.g. `+12.3ms WindowUpdate id=3 [ACK|FIN] len=0`.
pub fn describe(r: &FrameRec) -> String {
    let h = r.header;
    let mut flags = Vec::new();
    for (f, name) in
        [(Flags::SYN, "SYN"), (Flags::ACK, "ACK"), (Flags::FIN, "FIN"), (Flags::RST, "RST")]
    {
        if h.flags.contains(f) {
            flags.push(name);
        }
    }
    format!(
        "+{:.1}ms {:?} id={} [{}] len={}",
        r.at.as_secs_f64() * 1000.0,
        h.frame_type,
        h.stream_id,
        flags.join("|"),
        h.length
    )
}

/// Our side of an interop test: a `Connection` driven over a TCP socket.
pub struct Driver {
    /// The state machine under test. Scenarios issue commands on it directly.
    pub conn: Connection,
    sock: TcpStream,
    /// Names the test in failure messages.
    pub label: String,
    /// When the driver started; `FrameRec::at` and `elapsed` count from here.
    pub t0: Instant,
    deadline: Instant,
    /// Frames the peer sent us.
    pub wire_in: Wire,
    /// Frames we sent (including injected ones).
    pub wire_out: Wire,
    out: Vec<u8>,
    out_pos: usize,
    read_buf: Vec<u8>,
    /// The transport ended (EOF or error) and `handle_transport_closed` was called.
    pub eof: bool,
    /// The socket error that ended the transport, if it was not a clean EOF
    /// (e.g. `ConnectionReset` when the peer's kernel sent RST).
    pub transport_error: Option<io::ErrorKind>,
    /// Why the connection closed, once `ConnectionClosed` was polled.
    pub closed: Option<CloseReason>,
    /// Every event but `Data`, with its time (Data is summarised by `Book`).
    pub events: Vec<(Duration, Event)>,
}

impl Driver {
    /// A driver for a new connection in `role` over `sock`. `life` is the
    /// global deadline: no `run` goes past it.
    pub fn new(label: &str, sock: TcpStream, role: Role, config: Config, life: Duration) -> Driver {
        let t0 = Instant::now();
        sock.set_nodelay(true).expect("set_nodelay");
        sock.set_nonblocking(true).expect("set_nonblocking");
        Driver {
            conn: Connection::new(config, role, t0).expect("valid config"),
            sock,
            label: label.to_string(),
            t0,
            deadline: t0 + life,
            wire_in: Wire::new(),
            wire_out: Wire::new(),
            out: Vec::new(),
            out_pos: 0,
            read_buf: vec![0; 256 * 1024],
            eof: false,
            transport_error: None,
            closed: None,
            events: Vec::new(),
        }
    }

    /// Time since the driver started.
    pub fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Queues raw bytes (whole frames) for the peer, after every frame already
    /// produced and before any later one.
    pub fn inject(&mut self, bytes: &[u8]) {
        let at = self.elapsed();
        self.wire_out.feed(at, bytes);
        self.out.extend_from_slice(bytes);
    }

    /// Queues one hand-built frame.
    pub fn inject_frame(&mut self, header: Header, body: &[u8]) {
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(body);
        self.inject(&bytes);
    }

    /// Runs the loop until `app` returns `true`, feeding it every event
    /// (`Some`) and a tick once per turn (`None`). Panics with a diagnostic if
    /// `limit` (or the driver's global deadline) passes first.
    pub fn run<F>(&mut self, what: &str, limit: Duration, mut app: F)
    where
        F: FnMut(&mut Driver, Option<Event>) -> bool,
    {
        if let Err(msg) = self.try_run(what, limit, &mut app) {
            panic!("{msg}");
        }
    }

    /// Like [`run`](Driver::run), but returns the diagnostic instead of panicking.
    pub fn try_run<F>(&mut self, what: &str, limit: Duration, mut app: F) -> Result<(), String>
    where
        F: FnMut(&mut Driver, Option<Event>) -> bool,
    {
        let started = Instant::now();
        let stop = (started + limit).min(self.deadline);
        loop {
            let mut progress = self.read_input();
            let now = Instant::now();
            if self.conn.poll_timeout().is_some_and(|t| t <= now) {
                progress = true;
            }
            // Every turn, not only when a timer is due (early calls are
            // harmless by contract): commands are stamped with the latest
            // time the connection saw, and without input that time goes
            // stale, so timers armed by commands or transmits (send stall,
            // open, linger) would start early by the idle gap.
            self.conn.handle_timeout(now);
            while let Some(event) = self.conn.poll_event() {
                progress = true;
                self.record(&event);
                if app(self, Some(event)) {
                    self.flush();
                    return Ok(());
                }
            }
            if app(self, None) {
                self.flush();
                return Ok(());
            }
            progress |= self.flush();
            if Instant::now() >= stop {
                return Err(self.diagnose(what, started.elapsed()));
            }
            if !progress {
                self.idle_wait(stop);
            }
        }
    }

    /// Keeps the connection serviced (pongs, window updates, output) for `d`.
    pub fn pump_for(&mut self, d: Duration, mut app: impl FnMut(&mut Driver, Option<Event>)) {
        let until = Instant::now() + d;
        self.run("pump_for", d + Duration::from_secs(1), |drv, ev| {
            app(drv, ev);
            Instant::now() >= until
        });
    }

    /// Closes the connection (`Connection::close`: Go Away, then nothing),
    /// flushes what is left and shuts the socket down. Events polled meanwhile
    /// go to `app`.
    pub fn close(&mut self, mut app: impl FnMut(&mut Driver, Option<Event>)) {
        self.conn.close();
        self.finish(|drv, ev| app(drv, ev));
    }

    /// Drains events until `ConnectionClosed` has been polled (it must already
    /// be queued or imminent), flushes the remaining output (such as the
    /// final Go Away) and shuts the socket down.
    pub fn finish(&mut self, mut app: impl FnMut(&mut Driver, Option<Event>)) {
        self.run(
            "connection end (ConnectionClosed, output flushed)",
            Duration::from_secs(5),
            |drv, ev| {
                app(drv, ev);
                drv.closed.is_some()
                    && !drv.conn.has_pending_output()
                    && drv.out_pos == drv.out.len()
            },
        );
        self.linger_close(Duration::from_secs(2));
    }

    /// Closes the socket without losing what we wrote: our FIN follows the
    /// data, then we read (and record) until the peer's EOF or `limit`.
    /// Closing a socket with unread input makes the kernel send RST, which
    /// can destroy data still in flight to the peer.
    pub fn linger_close(&mut self, limit: Duration) {
        let _ = self.sock.shutdown(Shutdown::Write);
        let stop = Instant::now() + limit;
        let _ = self.sock.set_nonblocking(false);
        while !self.eof && Instant::now() < stop {
            let _ = self.sock.set_read_timeout(Some(Duration::from_millis(20)));
            match self.sock.read(&mut self.read_buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    let at = self.elapsed();
                    self.wire_in.feed(at, &self.read_buf[..n]);
                }
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.eof = true,
            }
        }
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// Shuts the TCP connection down without telling the `Connection`.
    pub fn shutdown_socket(&mut self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    fn record(&mut self, event: &Event) {
        if let Event::ConnectionClosed { reason } = event {
            self.closed = Some(*reason);
        }
        if !matches!(event, Event::Readable { .. }) {
            self.events.push((self.elapsed(), event.clone()));
        }
    }

    /// Reads what the socket has (bounded per turn). Returns whether anything happened.
    fn read_input(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut total = 0;
        while total < READ_PER_TURN {
            match self.sock.read(&mut self.read_buf) {
                Ok(0) => {
                    self.transport_ended();
                    return true;
                }
                Ok(n) => {
                    let now = Instant::now();
                    self.wire_in.feed(now - self.t0, &self.read_buf[..n]);
                    self.conn.handle_input(now, &self.read_buf[..n]);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.transport_error = Some(e.kind());
                    self.transport_ended();
                    return true;
                }
            }
        }
        total > 0
    }

    fn transport_ended(&mut self) {
        if !self.eof {
            self.eof = true;
            self.conn.handle_transport_closed();
        }
    }

    /// Writes as much output as the socket takes. Returns whether any byte went out.
    fn flush(&mut self) -> bool {
        let mut wrote = false;
        loop {
            if self.out_pos == self.out.len() {
                self.out.clear();
                self.out_pos = 0;
                if self.conn.write_transmits(&mut self.out, WRITE_CHUNK) == 0 {
                    return wrote;
                }
                let at = self.elapsed();
                self.wire_out.feed(at, &self.out);
            }
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(0) => return wrote,
                Ok(n) => {
                    self.out_pos += n;
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return wrote,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The peer is gone: nothing more can be delivered.
                    self.transport_error = Some(e.kind());
                    self.out.clear();
                    self.out_pos = 0;
                    self.transport_ended();
                    return wrote;
                }
            }
        }
    }

    /// Waits until the socket is readable, a timer is due, or `IDLE_WAIT`.
    fn idle_wait(&mut self, stop: Instant) {
        let now = Instant::now();
        let mut wake = (now + IDLE_WAIT).min(stop);
        if let Some(t) = self.conn.poll_timeout() {
            wake = wake.min(t);
        }
        let Some(wait) = wake.checked_duration_since(now).filter(|d| !d.is_zero()) else {
            return;
        };
        if self.eof {
            std::thread::sleep(wait);
            return;
        }
        // A blocking peek with a timeout returns as soon as input arrives.
        if self.sock.set_nonblocking(false).is_ok()
            && self.sock.set_read_timeout(Some(wait)).is_ok()
        {
            let mut b = [0u8; 1];
            let _ = self.sock.peek(&mut b);
        }
        let _ = self.sock.set_nonblocking(true);
    }

    fn diagnose(&self, what: &str, waited: Duration) -> String {
        let mut s = format!(
            "[{}] timed out after {:?} waiting for: {}\n  eof={} ({:?}) closed={:?} streams={} send_buffered={}\n",
            self.label,
            waited,
            what,
            self.eof,
            self.transport_error,
            self.closed,
            self.conn.stream_count(),
            self.conn.send_buffered()
        );
        let _ = writeln!(s, "  stats: {:?}", self.conn.stats());
        let _ = writeln!(s, "  last events:");
        for (at, e) in self.events.iter().rev().take(12).collect::<Vec<_>>().into_iter().rev() {
            let _ = writeln!(s, "    +{:.1}ms {:?}", at.as_secs_f64() * 1000.0, e);
        }
        let _ = writeln!(
            s,
            "  last frames in ({} total):\n{}",
            self.wire_in.frames.len(),
            self.wire_in.tail(16)
        );
        let _ = writeln!(
            s,
            "  last frames out ({} total):\n{}",
            self.wire_out.frames.len(),
            self.wire_out.tail(16)
        );
        s
    }
}

// ---------------------------------------------------------------------------
// The data pattern shared with the Go peer (tests/go-peer/README.md).

/// Byte `i` of stream `k`: `(i*31 + k*7 + i/251) & 0xff`.
pub fn pattern_byte(k: u32, i: u64) -> u8 {
    (i.wrapping_mul(31).wrapping_add(u64::from(k) * 7).wrapping_add(i / 251) & 0xff) as u8
}

/// `n` pattern bytes of stream `k` starting at offset `off`.
pub fn pattern(k: u32, off: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|j| pattern_byte(k, off + j)).collect()
}

/// FNV-1a 64, as the Go peer reports it.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Adds bytes.
    pub fn write(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// 16 lowercase hex digits, the Go peer's format.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

// ---------------------------------------------------------------------------
// Book: per-stream bookkeeping most scenarios share.

/// What our application did and saw on one stream.
#[derive(Debug, Default)]
pub struct StreamRec {
    /// Bytes received, in order (kept only when `Book::keep_data`).
    pub data: Vec<u8>,
    /// Bytes received.
    pub recv: u64,
    /// FNV-1a of the bytes received.
    pub recv_fnv: Fnv,
    /// First offset where the received bytes differ from the pattern of this
    /// stream (only checked when `Book::check_pattern`).
    pub mismatch_at: Option<u64>,
    /// Bytes still to send: pattern bytes (`pattern_left`) or echo bytes (`echo_queue`).
    pub pattern_left: u64,
    /// Bytes queued for echoing back.
    pub echo_queue: VecDeque<u8>,
    /// Bytes accepted by `send`.
    pub sent: u64,
    /// FNV-1a of the bytes accepted by `send`.
    pub sent_fnv: Fnv,
    /// Half-close once everything queued was sent.
    pub close_when_sent: bool,
    /// `close_write` was called.
    pub write_closed: bool,
    /// The peer's FIN arrived (`PeerHalfClosed`).
    pub peer_fin: bool,
    /// The stream was reset (event), and why.
    pub reset: Option<ResetReason>,
    /// `StreamClosed` was seen.
    pub closed: bool,
    /// Times (from the driver's start).
    pub opened_at: Option<Duration>,
    /// When `PeerHalfClosed` arrived.
    pub fin_at: Option<Duration>,
    /// When `StreamClosed` arrived.
    pub closed_at: Option<Duration>,
    /// Read received data only up to this many bytes (None = read all); the
    /// rest waits in the connection, holding its credit.
    pub read_limit: Option<u64>,
    /// An error a command returned (send after reset, ...), for assertions.
    pub last_error: Option<StreamError>,
}

/// Per-stream bookkeeping for scenarios: records data, echoes, sends pattern
/// bytes in random-size writes, half-closes when done.
#[derive(Debug)]
pub struct Book {
    /// Streams by id.
    pub streams: BTreeMap<StreamId, StreamRec>,
    /// Echo every received byte back (and half-close after the peer's FIN).
    pub echo: bool,
    /// Check received bytes against the pattern of their stream.
    pub check_pattern: bool,
    /// Keep received bytes in `StreamRec::data`.
    pub keep_data: bool,
    /// Sizes of `send` calls are drawn from `1..=max_write`.
    pub max_write: usize,
    rng: Rng,
}

impl Book {
    /// A book with everything off; writes of 1..=65536 bytes.
    pub fn new(seed: u64) -> Book {
        Book {
            streams: BTreeMap::new(),
            echo: false,
            check_pattern: false,
            keep_data: false,
            max_write: 65536,
            rng: Rng::new(seed),
        }
    }

    /// The record of `id` (created empty if new).
    pub fn rec(&mut self, id: StreamId) -> &mut StreamRec {
        self.streams.entry(id).or_default()
    }

    /// Opens a stream that will send `n` pattern bytes and then half-close
    /// if `close` is set.
    pub fn open(&mut self, drv: &mut Driver, n: u64, close: bool) -> StreamId {
        let id = drv.conn.open().unwrap_or_else(|e| panic!("[{}] open failed: {e}", drv.label));
        let at = drv.elapsed();
        let r = self.rec(id);
        r.opened_at = Some(at);
        r.pattern_left = n;
        r.close_when_sent = close;
        id
    }

    /// Queues `n` more pattern bytes on `id` (continuing the stream's pattern).
    pub fn send_pattern(&mut self, id: StreamId, n: u64, close: bool) {
        let r = self.rec(id);
        r.pattern_left += n;
        r.close_when_sent |= close;
    }

    /// Handles the bookkeeping of one event. Returns it for the scenario.
    pub fn on_event(&mut self, drv: &mut Driver, event: &Event) {
        let at = drv.elapsed();
        match event {
            Event::StreamOpened { id } => {
                self.rec(*id).opened_at = Some(at);
            }
            Event::Readable { id } => self.read(drv, *id),
            Event::PeerHalfClosed { id } => {
                self.read(drv, *id);
                let echo = self.echo;
                let r = self.rec(*id);
                r.peer_fin = true;
                r.fin_at = Some(at);
                if echo {
                    r.close_when_sent = true;
                }
            }
            Event::StreamReset { id, reason } => {
                self.read(drv, *id);
                self.rec(*id).reset = Some(*reason);
            }
            Event::StreamClosed { id } => {
                let r = self.rec(*id);
                r.closed = true;
                r.closed_at = Some(at);
            }
            _ => {}
        }
    }

    /// Reads what the stream's `read_limit` allows, recording (and
    /// checking, keeping, echoing) the bytes.
    pub fn read(&mut self, drv: &mut Driver, id: StreamId) {
        let (check, keep, echo) = (self.check_pattern, self.keep_data, self.echo);
        let r = self.rec(id);
        loop {
            let allowed = r.read_limit.map_or(usize::MAX, |l| l.saturating_sub(r.recv) as usize);
            if allowed == 0 {
                return;
            }
            let data = match drv.conn.read(id, allowed) {
                Ok(Some(data)) => data,
                Ok(None) | Err(_) => return,
            };
            if check && r.mismatch_at.is_none() {
                if let Some(j) = data
                    .iter()
                    .enumerate()
                    .position(|(j, &b)| b != pattern_byte(id.0, r.recv + j as u64))
                {
                    r.mismatch_at = Some(r.recv + j as u64);
                }
            }
            r.recv_fnv.write(&data);
            r.recv += data.len() as u64;
            if keep {
                r.data.extend_from_slice(&data);
            }
            if echo {
                r.echo_queue.extend(data.iter());
            }
        }
    }

    /// Bytes received on `id`: read by the book, plus what waits unread in
    /// the connection.
    pub fn received(&self, drv: &Driver, id: StreamId) -> u64 {
        let unread = drv.conn.stream_info(id).map_or(0, |i| u64::from(i.recv_unread));
        self.streams.get(&id).map_or(0, |r| r.recv) + unread
    }

    /// Raises the read limit of `id` (None: unlimited) and reads.
    pub fn set_read_limit(&mut self, drv: &mut Driver, id: StreamId, limit: Option<u64>) {
        self.rec(id).read_limit = limit;
        self.read(drv, id);
    }

    /// Pushes queued bytes into the connection in random-size writes, and
    /// half-closes streams that are done. Call it on every tick.
    pub fn pump(&mut self, drv: &mut Driver) {
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        for id in ids {
            self.pump_stream(drv, id);
        }
    }

    fn pump_stream(&mut self, drv: &mut Driver, id: StreamId) {
        let max_write = self.max_write;
        loop {
            let size = self.rng.range(1, max_write as u64) as usize;
            let r = self.streams.get_mut(&id).expect("known stream");
            if r.reset.is_some() || r.closed || r.write_closed {
                return;
            }
            let chunk: Vec<u8> = if !r.echo_queue.is_empty() {
                r.echo_queue.iter().take(size).copied().collect()
            } else if r.pattern_left > 0 {
                pattern(id.0, r.sent, size.min(r.pattern_left as usize))
            } else {
                if r.close_when_sent {
                    match drv.conn.close_write(id) {
                        Ok(()) => r.write_closed = true,
                        Err(e) => r.last_error = Some(e.into()),
                    }
                }
                return;
            };
            match drv.conn.send(id, &chunk) {
                Ok(n) => {
                    if !r.echo_queue.is_empty() {
                        r.echo_queue.drain(..n);
                    } else {
                        r.pattern_left -= n as u64;
                    }
                    r.sent += n as u64;
                    r.sent_fnv.write(&chunk[..n]);
                    if n < chunk.len() {
                        return; // buffer full: more on a later tick
                    }
                }
                Err(e) => {
                    r.last_error = Some(e.into());
                    return;
                }
            }
        }
    }

    /// Whether every stream is closed (both directions done).
    pub fn all_closed(&self) -> bool {
        !self.streams.is_empty() && self.streams.values().all(|r| r.closed)
    }

    /// Number of streams.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether there are no streams.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

impl Book {
    /// Runs `drv` with this book doing the bookkeeping: every event goes to
    /// [`Book::on_event`] first, then to `f`; every tick pumps sends, then
    /// calls `f` with `None`. Stops when `f` returns `true`.
    pub fn run<F>(&mut self, drv: &mut Driver, what: &str, limit: Duration, mut f: F)
    where
        F: FnMut(&mut Driver, &mut Book, Option<&Event>) -> bool,
    {
        drv.run(what, limit, |drv, ev| match ev {
            Some(ev) => {
                self.on_event(drv, &ev);
                f(drv, self, Some(&ev))
            }
            None => {
                self.pump(drv);
                f(drv, self, None)
            }
        });
    }
}

/// The slow-reader scenario shared by both peers' suites: the peer opens
/// three streams and writes `bytes` on each; we read the first one slowly
/// (8 KiB more every 10 ms) and the others at once, echoing each after its
/// FIN. Asserts that backpressure held the slow stream within our fixed
/// window while the two fast streams finished, and that every byte arrived
/// intact. `peer` names the peer in failure messages.
pub fn read_one_stream_slowly(drv: &mut Driver, book: &mut Book, bytes: u64, peer: &str) {
    book.check_pattern = true;
    let mut slow: Option<StreamId> = None;
    let mut last_bump = drv.elapsed();
    let mut max_unread = 0;
    let mut fast_fin_while_slow_open = 0;
    book.run(drv, "all three streams", Duration::from_secs(15), |drv, b, ev| {
        match ev {
            Some(Event::StreamOpened { id }) if slow.is_none() => {
                slow = Some(*id);
                b.set_read_limit(drv, *id, Some(0));
            }
            Some(Event::PeerHalfClosed { id }) => {
                b.send_pattern(*id, 0, true);
                if Some(*id) != slow && slow.is_some_and(|s| !b.streams[&s].peer_fin) {
                    fast_fin_while_slow_open += 1;
                }
            }
            None => {
                if let Some(s) = slow {
                    let unread = drv.conn.stream_info(s).map_or(0, |i| u64::from(i.recv_unread));
                    max_unread = max_unread.max(unread);
                    if drv.elapsed() - last_bump >= Duration::from_millis(10) {
                        last_bump = drv.elapsed();
                        let limit = b.streams[&s].read_limit.unwrap_or(0) + 8192;
                        b.set_read_limit(drv, s, Some(limit));
                    }
                }
            }
            _ => {}
        }
        // The peer may close the connection once its data is in our window
        // and our FINs are out: what it sent stays readable after the close.
        b.len() == 3 && b.all_closed() && b.streams.values().all(|r| r.recv == bytes)
    });
    let window = u64::from(yamux_proto::DEFAULT_WINDOW);
    assert!(max_unread <= window, "{peer} overran our window");
    assert!(max_unread >= window / 2, "backpressure not reached");
    assert_eq!(fast_fin_while_slow_open, 2);
    for r in book.streams.values() {
        assert_eq!((r.recv, r.mismatch_at), (bytes, None));
    }
}
