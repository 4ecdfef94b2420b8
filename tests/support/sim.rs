//! A seeded, deterministic simulator: two `Connection`s, a virtual network
//! and two random applications, all driven by one PRNG and virtual time.
//!
//! * The network is reliable (TCP-like): bytes are never reordered, lost or
//!   corrupted, but they are re-chunked, delayed, stalled, and held back when
//!   the sender's transport buffer is full (backpressure).
//! * Each application opens streams, writes a per-stream checkable pattern in
//!   random pieces, consumes at random pace (some readers are slow),
//!   half-closes, and now and then resets, stops reading, pings or goes away.
//! * Timers are on: keep-alive, ping, open, linger, go-away and (in some
//!   profiles) send-stall timeouts.
//!
//! Everything the run checks is listed on [`run`]. A failure panics with a
//! message naming the seed; `tests/simulator.rs` adds the replay command.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use yamux_proto::frame::HEADER_LEN;

use super::events::EventChecker;
use super::network::Link;
use super::pattern::{pattern_at, pattern_byte};
use super::rng::{mix, Rng};
use yamux_proto::{
    CloseReason, Config, Connection, Event, GoAwayCode, OpenError, PingError, ReadError,
    ResetReason, Role, StreamId, DEFAULT_WINDOW,
};

// ---------------------------------------------------------------------------
// The per-seed profile: every knob of a run, drawn from the seed.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunking {
    /// Each transmission arrives in one piece.
    Whole,
    /// Random pieces.
    Random,
    /// Pieces of 1 to 16 bytes (only with little data).
    Tiny,
}

#[derive(Debug)]
struct Profile {
    configs: [Config; 2],
    /// Streams each side opens over the run.
    opens: [usize; 2],
    /// Largest stream a writer plans (bytes).
    max_plan: u64,
    chunking: Chunking,
    latency: Duration,
    jitter: Duration,
    /// Stalls per direction, each starting in the first 10 s of the run.
    stalls: u64,
    max_stall: Duration,
    /// Bytes a sender's transport holds in flight before it is full.
    wire_cap: usize,
    /// Largest step of virtual time while an application is busy.
    max_tick: Duration,
    /// Probability per stream of a local reset / a stop_reading, out of 100.
    reset_percent: u64,
    stop_percent: u64,
    /// Ping probability per step and side, out of 1000.
    ping_per_mille: u64,
    /// A side that calls go_away in the middle of the run, and when.
    mid_go_away: Option<(usize, Duration)>,
    /// The side that ends the run, and whether with `close()` instead of
    /// `go_away()`.
    closer: usize,
    close_abruptly: bool,
}

impl Profile {
    fn draw(rng: &mut Rng) -> Profile {
        let config = |rng: &mut Rng| {
            let max_send_buffer = rng.pick(&[1024, 4096, 64 * 1024, 256 * 1024]);
            {
                let mut c = Config::default();
                c.max_stream_window =
                    if rng.chance(1, 3) { 4 * DEFAULT_WINDOW } else { DEFAULT_WINDOW };
                c.max_frame_size = rng.pick(&[512, 4096, 16 * 1024, 64 * 1024]);
                c.max_streams = rng.range(2, 16) as usize;
                c.max_unacked_outbound = rng.pick(&[1, 2, 4, 256]);
                c.max_send_buffer = max_send_buffer;
                c.max_connection_send_buffer = max_send_buffer * rng.range(1, 4) as usize;
                c.keep_alive_interval = if rng.chance(3, 4) {
                    Some(Duration::from_secs(rng.range(1, 30)))
                } else {
                    None
                };
                c.send_stall_timeout =
                    if rng.chance(1, 4) { Some(Duration::from_secs(30)) } else { None };
                c.linger_timeout = Some(Duration::from_secs(rng.pick(&[5, 60])));
                c
            }
        };
        let configs = [config(rng), config(rng)];
        // A cheap transport (tiny buffer) with a lot of data would only make
        // the run long; the large class exceeds the 256 KiB window.
        let wire_cap = rng.pick(&[64, 2048, 16 * 1024, 256 * 1024, 4 << 20]);
        let max_plan = match rng.below(20) {
            0..=11 => 1_000,
            12..=18 => 16 * 1024,
            _ if wire_cap >= 16 * 1024 => 300 * 1024,
            _ => 16 * 1024,
        };
        let chunking = match rng.below(10) {
            0..=3 => Chunking::Whole,
            4..=8 => Chunking::Random,
            _ if max_plan <= 1_000 => Chunking::Tiny,
            _ => Chunking::Random,
        };
        let long_stalls = rng.chance(1, 10);
        Profile {
            configs,
            opens: [rng.range(0, 4) as usize, rng.range(0, 4) as usize],
            max_plan,
            chunking,
            latency: Duration::from_millis(rng.range(0, 50)),
            jitter: Duration::from_millis(rng.range(0, 20)),
            stalls: rng.pick(&[0, 0, 1, 3]),
            max_stall: if long_stalls {
                Duration::from_secs(25)
            } else {
                Duration::from_millis(rng.range(10, 2000))
            },
            wire_cap,
            max_tick: Duration::from_millis(rng.range(1, 20)),
            reset_percent: rng.pick(&[0, 5, 20]),
            stop_percent: rng.pick(&[0, 10, 30]),
            ping_per_mille: rng.pick(&[0, 5]),
            mid_go_away: if rng.chance(1, 8) {
                Some((rng.below(2) as usize, Duration::from_millis(rng.range(0, 3000))))
            } else {
                None
            },
            closer: rng.below(2) as usize,
            close_abruptly: rng.chance(1, 4),
        }
    }

    /// Whether the network may stall longer than a ping timeout, so that
    /// timeouts are a legitimate outcome.
    fn timeouts_allowed(&self) -> bool {
        self.max_stall >= Duration::from_secs(5)
    }
}

// ---------------------------------------------------------------------------
// The network: one reliable byte pipe per direction.

#[derive(Default)]
struct Wire {
    /// The bytes in flight.
    link: Link,
    /// Latest delivery time scheduled, including the spacing after the last
    /// piece: the next transmission arrives no earlier.
    last_due: Option<Instant>,
    /// Stalls as (start, end), in no particular order: nothing is read
    /// from this direction in between.
    stalls: Vec<(Instant, Instant)>,
    /// The sender closed its transport after the pieces in flight.
    eof: bool,
}

impl Wire {
    /// When a stall covering `t` ends (following stalls that overlap), or
    /// `None` if the direction flows at `t`.
    fn stall_end(&self, t: Instant) -> Option<Instant> {
        let mut end: Option<Instant> = None;
        loop {
            let at = end.unwrap_or(t);
            let next =
                self.stalls.iter().filter(|(s, e)| *s <= at && *e > at).map(|(_, e)| *e).max();
            match next {
                Some(e) => end = Some(e),
                None => return end,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The applications.

/// What one side's application knows about one stream.
#[derive(Debug, Default)]
struct AppStream {
    outbound: bool,
    /// Pattern keys of what we write and what we read.
    key_out: u64,
    key_in: u64,
    // Writing.
    plan: u64,
    written: u64,
    close_write_called: bool,
    /// `send` fell short: wait for `Writable`.
    send_blocked: bool,
    reset_at: Option<u64>,
    local_reset: bool,
    credits_returned: u64,
    // Reading.
    /// Bytes read (every one checked against the peer's pattern).
    received: u64,
    /// A `Readable` event came and `read` has not answered `Blocked` since.
    readable: bool,
    /// `read` returned the end (`Ok(None)`).
    read_end: bool,
    slow_reader: bool,
    stop_at: Option<u64>,
    stopped: bool,
    half_closed: bool,
    /// A `StreamReset` event and its reason.
    reset: Option<ResetReason>,
    closed: bool,
}

impl AppStream {
    fn write_done(&self) -> bool {
        self.local_reset || self.reset.is_some() || self.closed || self.close_write_called
    }
}

struct Side {
    name: &'static str,
    conn: Connection,
    streams: BTreeMap<StreamId, AppStream>,
    /// Streams still to open.
    to_open: usize,
    /// `open` said Blocked: wait for `OpenUnblocked`.
    open_blocked: bool,
    /// `open` said TooManyStreams: wait for a `StreamClosed`.
    open_full: bool,
    go_away_received: Option<GoAwayCode>,
    /// The `ConnectionClosed` reason, once seen.
    closed: Option<CloseReason>,
    /// Our transport is closed (we closed it, or it reached EOF).
    transport_closed: bool,
    pings_outstanding: usize,
    /// The rules of `Event` every connection keeps (the checks below are
    /// what this application knows on top of them).
    checker: EventChecker,
}

impl Side {
    fn busy(&self) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let opening = self.to_open > 0 && !self.open_blocked && !self.open_full;
        opening
            || self.streams.values().any(|s| {
                !s.closed
                    && (s.readable
                        || (!s.write_done() && (s.written < s.plan && !s.send_blocked))
                        || (!s.write_done() && s.written == s.plan))
            })
    }

    /// Every stream it knows of has ended and it will open no more.
    fn done(&self) -> bool {
        (self.to_open == 0 || self.closed.is_some()) && self.streams.values().all(|s| s.closed)
    }
}

// ---------------------------------------------------------------------------
// The simulation.

/// What a run ends with, for the determinism check and reports.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Steps taken.
    pub steps: u64,
    /// Virtual time at the end.
    pub elapsed: Duration,
    /// Each side's close reason.
    pub reasons: [CloseReason; 2],
    /// Streams each side opened.
    pub streams: [usize; 2],
    /// Payload bytes each side wrote.
    pub written: [u64; 2],
    /// How often each kind of event, command outcome and close happened:
    /// shows the workload reaches the cases it is meant to.
    pub coverage: BTreeMap<&'static str, u64>,
    /// The trace, when asked for.
    pub trace: Vec<String>,
}

/// Upper bound of virtual time for a run: the longest timer is 75 s, so a
/// run that needs more is stuck.
const TIME_BOUND: Duration = Duration::from_secs(30 * 60);
const STEP_BOUND: u64 = 400_000;

struct Sim {
    seed: u64,
    rng: Rng,
    profile: Profile,
    start: Instant,
    now: Instant,
    sides: [Side; 2],
    /// `wires[i]` carries bytes towards side `i`.
    wires: [Wire; 2],
    shutdown_started: bool,
    mid_go_away_done: bool,
    trace: Option<Vec<String>>,
    coverage: BTreeMap<&'static str, u64>,
    /// Print trace lines as they happen (a failing replay shows its path).
    echo: bool,
}

/// What a run records of what happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trace {
    /// Nothing: the fast path for the seed batches.
    Off,
    /// Lines kept in [`Outcome::trace`].
    Collect,
    /// Lines kept and printed at once.
    Print,
}

/// Runs seed `seed` to the end and checks, panicking with the seed on the
/// first violation:
///
/// * `check_invariants()` on both connections after every input, timeout,
///   command and transmission;
/// * per stream and side: events in a legal order, by the one
///   [`EventChecker`] (opened first, no `Readable` after `PeerHalfClosed` or
///   `StreamReset`, each at most once, `StreamClosed` exactly once and last,
///   nothing after `ConnectionClosed`), plus what this application knows
///   (no `Readable` after its own `stop_reading` or reset), and commands on
///   streams the application believes live succeed;
/// * every byte delivered equals the pattern the peer wrote at that offset;
/// * a stream that ended normally (no reset, no stop) delivered exactly the
///   bytes the writer's `send` accepted, with the FIN;
/// * `CreditsReturned` never exceeds what the peer's application consumed,
///   when the peer's windows are fixed (growth arrives as credit too);
/// * no `Writable` is lost: a blocked stream with room again hears of it;
/// * every opened stream was closed at the end, both connections closed
///   with an expected reason, within [`TIME_BOUND`] and [`STEP_BOUND`].
pub fn run(seed: u64, trace: Trace) -> Outcome {
    let mut rng = Rng::new(seed);
    let profile = Profile::draw(&mut rng);
    let start = Instant::now();
    let side = |name, config: &Config, role, opens| Side {
        name,
        conn: Connection::new(config.clone(), role, start).expect("valid config"),
        streams: BTreeMap::new(),
        to_open: opens,
        open_blocked: false,
        open_full: false,
        go_away_received: None,
        closed: None,
        transport_closed: false,
        pings_outstanding: 0,
        checker: EventChecker::new(role),
    };
    let sides = [
        side("client", &profile.configs[0], Role::Client, profile.opens[0]),
        side("server", &profile.configs[1], Role::Server, profile.opens[1]),
    ];
    let mut sim = Sim {
        seed,
        rng,
        start,
        now: start,
        sides,
        wires: [Wire::default(), Wire::default()],
        shutdown_started: false,
        mid_go_away_done: false,
        trace: (trace != Trace::Off).then(Vec::new),
        coverage: BTreeMap::new(),
        echo: trace == Trace::Print,
        profile,
    };
    let profile_line = format!("{:?}", sim.profile);
    sim.log(|| format!("profile: {profile_line}"));
    for w in 0..2 {
        for _ in 0..sim.profile.stalls {
            let at = start + Duration::from_millis(sim.rng.range(0, 10_000));
            let max = sim.profile.max_stall.as_millis() as u64;
            let d = Duration::from_millis(sim.rng.range(1, max));
            sim.wires[w].stalls.push((at, at + d));
            sim.log(|| format!("wire to side {w} will stall {:?} from {:?}", d, at - start));
        }
    }
    let steps = sim.run_loop();
    sim.final_checks();
    let reasons = [sim.sides[0].closed.unwrap(), sim.sides[1].closed.unwrap()];
    let written = [0, 1].map(|i| sim.sides[i].streams.values().map(|s| s.written).sum());
    Outcome {
        steps,
        elapsed: sim.now - sim.start,
        reasons,
        streams: [0, 1].map(|i| sim.sides[i].streams.values().filter(|s| s.outbound).count()),
        written,
        coverage: std::mem::take(&mut sim.coverage),
        trace: sim.trace.take().unwrap_or_default(),
    }
}

impl Sim {
    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let t = self.now - self.start;
            let line = format!("[{:>10.3?}] {}", t, line());
            if self.echo {
                println!("{line}");
            }
            trace.push(line);
        }
    }

    fn count(&mut self, key: &'static str) {
        *self.coverage.entry(key).or_insert(0) += 1;
    }

    fn fail(&self, what: String) -> ! {
        if self.trace.is_some() {
            self.dump();
        }
        panic!("seed {}: at {:?}: {what}", self.seed, self.now - self.start)
    }

    /// Prints what both applications and connections hold (replay only).
    fn dump(&self) {
        for side in &self.sides {
            println!(
                "== {}: closed {:?}, transport closed {}, to_open {}, live {}, \
                 send_buffered {}, pending output {}",
                side.name,
                side.closed,
                side.transport_closed,
                side.to_open,
                side.conn.stream_count(),
                side.conn.send_buffered(),
                side.conn.has_pending_output()
            );
            for (id, s) in &side.streams {
                println!("   {id}: {s:?}");
                println!("   {id}: {:?}", side.conn.stream_info(*id));
            }
        }
        for (i, w) in self.wires.iter().enumerate() {
            println!(
                "== wire to {i}: {} pieces, {} bytes, eof {}",
                w.link.pieces(),
                w.link.in_flight(),
                w.eof
            );
        }
    }

    fn check(&self, i: usize) {
        if let Err(e) = self.sides[i].conn.check_invariants() {
            self.fail(format!("{}: invariant broken: {e}", self.sides[i].name));
        }
    }

    fn run_loop(&mut self) -> u64 {
        let mut steps = 0;
        loop {
            steps += 1;
            if steps > STEP_BOUND || self.now - self.start > TIME_BOUND {
                self.fail(format!("no quiescence after {steps} steps"));
            }
            for i in 0..2 {
                self.deliver(i);
            }
            for i in 0..2 {
                if !self.sides[i].transport_closed {
                    self.sides[i].conn.handle_timeout(self.now);
                    self.check(i);
                }
                self.drain(i);
            }
            for i in 0..2 {
                self.act(i);
            }
            self.maybe_shutdown();
            for i in 0..2 {
                self.transmit(i);
                self.lost_writable(i);
            }
            if self.finished() {
                return steps;
            }
            self.advance();
        }
    }

    // ---- network ----

    fn deliver(&mut self, i: usize) {
        if self.sides[i].transport_closed {
            return;
        }
        let now = self.now;
        if self.wires[i].stall_end(now).is_some() {
            return;
        }
        while let Some(piece) = self.wires[i].link.take(now, usize::MAX) {
            self.sides[i].conn.handle_input(now, &piece);
            self.check(i);
        }
        let wire = &mut self.wires[i];
        if wire.eof && wire.link.is_empty() {
            let name = self.sides[i].name;
            self.log(|| format!("{name}: transport EOF"));
            self.sides[i].conn.handle_transport_closed();
            self.sides[i].transport_closed = true;
            self.check(i);
            self.drain(i);
            // Our transport is gone: nothing more goes out or comes in.
            self.wires[1 - i] = Wire::default();
        }
    }

    fn transmit(&mut self, i: usize) {
        if self.sides[i].transport_closed {
            return;
        }
        let to = 1 - i;
        let cap = self.profile.wire_cap;
        let mut out = Vec::new();
        let room = cap.saturating_sub(self.wires[to].link.in_flight());
        if room > HEADER_LEN {
            if self.rng.chance(1, 2) {
                let max = self.rng.range(HEADER_LEN as u64 + 1, room as u64) as usize;
                self.sides[i].conn.write_transmits(&mut out, max);
            } else {
                // Whole frames while the transport has room (the last one may
                // overshoot the cap: a socket takes what it is given).
                while out.len() < room {
                    let Some(t) = self.sides[i].conn.poll_transmit() else { break };
                    out.extend_from_slice(&t.header);
                    out.extend_from_slice(&t.body);
                }
            }
            self.check(i);
            self.drain(i);
        }
        // Bytes for a peer that closed its transport are lost, as on a socket.
        if !out.is_empty() && !self.sides[to].transport_closed {
            self.push_wire(to, Bytes::from(out));
        }
        // A closed connection closes its transport once its last frame is out.
        if self.sides[i].closed.is_some() && !self.sides[i].conn.has_pending_output() {
            let name = self.sides[i].name;
            self.log(|| format!("{name}: closes its transport"));
            self.sides[i].transport_closed = true;
            self.wires[to].eof = true;
            self.wires[i] = Wire::default();
        }
    }

    /// `Writable` is owed to every stream whose `send` fell short, once space
    /// frees; space only frees when data is transmitted or a stream is reset.
    /// So after transmitting, a blocked stream with room in both its own and
    /// the connection's buffer has lost its `Writable`, and an application
    /// that waits for it, as documented, would wait forever. (Found by this
    /// simulator when a reset freed the room; fixed in the core since, and
    /// pinned by `writable_follows_space_freed_by_a_reset`.)
    fn lost_writable(&self, i: usize) {
        let side = &self.sides[i];
        if side.closed.is_some() {
            return;
        }
        let config = &self.profile.configs[i];
        if side.conn.send_buffered() >= config.max_connection_send_buffer {
            return;
        }
        for (id, s) in &side.streams {
            let room = || {
                side.conn
                    .stream_info(*id)
                    .is_some_and(|info| info.send_buffered < config.max_send_buffer)
            };
            if s.send_blocked && !s.write_done() && room() {
                self.fail(format!("{}: {id} has room to send, but no Writable came", side.name));
            }
        }
    }

    fn push_wire(&mut self, to: usize, bytes: Bytes) {
        let jitter = self.rng.below(self.profile.jitter.as_micros() as u64 + 1);
        let mut due = self.now + self.profile.latency + Duration::from_micros(jitter);
        if let Some(last) = self.wires[to].last_due {
            due = due.max(last);
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = match self.profile.chunking {
                Chunking::Whole => rest.len(),
                Chunking::Random => self.rng.range(1, rest.len() as u64) as usize,
                Chunking::Tiny => self.rng.range(1, 16).min(rest.len() as u64) as usize,
            };
            let piece = rest.split_to(n);
            self.wires[to].link.send(due, piece);
            due += Duration::from_micros(self.rng.below(200));
        }
        self.wires[to].last_due = Some(due);
    }

    /// Moves virtual time: small random ticks while an application has work,
    /// otherwise straight to the next delivery, stall end or timer.
    fn advance(&mut self) {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        for i in 0..2 {
            // The next piece, or the EOF behind the last one, once any stall ends.
            let wire = &self.wires[i];
            let due = match wire.link.next_due() {
                Some(due) => Some(due),
                None if wire.eof => Some(self.now),
                None => None,
            };
            consider(due.map(|due| wire.stall_end(due).unwrap_or(due)));
            if !self.sides[i].transport_closed {
                consider(self.sides[i].conn.poll_timeout());
            }
        }
        if let Some((_, at)) = self.profile.mid_go_away.filter(|_| !self.mid_go_away_done) {
            consider(Some(self.start + at));
        }
        let busy = self.sides.iter().any(|s| s.busy() && !s.transport_closed);
        if busy {
            let tick = self.rng.range(0, self.profile.max_tick.as_micros() as u64);
            consider(Some(self.now + Duration::from_micros(tick)));
        }
        match next {
            Some(t) => self.now = self.now.max(t),
            None if self.finished() => {}
            None => self.fail("nothing can happen any more, yet the run is not over".into()),
        }
    }

    fn finished(&self) -> bool {
        self.sides.iter().all(|s| s.transport_closed)
            && self.wires.iter().all(|w| w.link.is_empty())
    }

    /// Mid-run go-away, and the end of the run once both applications are done.
    fn maybe_shutdown(&mut self) {
        if let Some((i, at)) = self.profile.mid_go_away {
            if !self.mid_go_away_done && self.now >= self.start + at {
                self.mid_go_away_done = true;
                if self.sides[i].closed.is_none() {
                    let name = self.sides[i].name;
                    self.log(|| format!("{name}: go_away(Normal) mid-run"));
                    self.sides[i].conn.go_away(GoAwayCode::Normal);
                    self.sides[i].to_open = 0;
                    self.count("command: go_away mid-run");
                    self.check(i);
                    self.drain(i);
                }
            }
        }
        if self.shutdown_started || !self.sides.iter().all(Side::done) {
            return;
        }
        if self.wires.iter().any(|w| !w.link.is_empty())
            || self.sides.iter().any(|s| !s.transport_closed && s.conn.has_pending_output())
        {
            return; // quiescent first: nothing in flight
        }
        self.shutdown_started = true;
        let i = self.profile.closer;
        if self.sides[i].closed.is_some() {
            return;
        }
        let name = self.sides[i].name;
        if self.profile.close_abruptly {
            self.log(|| format!("{name}: close()"));
            self.sides[i].conn.close();
        } else {
            self.log(|| format!("{name}: go_away(Normal) to end the run"));
            self.sides[i].conn.go_away(GoAwayCode::Normal);
        }
        self.check(i);
        self.drain(i);
    }

    // ---- the application ----

    fn new_stream(&mut self, i: usize, id: StreamId, outbound: bool) -> AppStream {
        let plan = match self.rng.below(4) {
            0 => 0,
            _ => self.rng.range(1, self.profile.max_plan),
        };
        let reset_at =
            self.rng.chance(self.profile.reset_percent, 100).then(|| self.rng.range(0, plan));
        let stop_at = self
            .rng
            .chance(self.profile.stop_percent, 100)
            .then(|| self.rng.range(0, self.profile.max_plan));
        AppStream {
            outbound,
            key_out: stream_key(self.seed, id, i),
            key_in: stream_key(self.seed, id, 1 - i),
            plan,
            reset_at,
            stop_at,
            slow_reader: self.rng.chance(1, 5),
            ..AppStream::default()
        }
    }

    fn act(&mut self, i: usize) {
        if self.sides[i].closed.is_some() || self.sides[i].transport_closed {
            // What was received before the end stays readable: read it out.
            let ids: Vec<StreamId> = self.sides[i]
                .streams
                .iter()
                .filter(|(_, s)| s.readable)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                while self.sides[i].streams[&id].readable {
                    self.read(i, id, usize::MAX);
                }
                self.count("read: after the end");
            }
            return;
        }
        // Opens.
        let side = &self.sides[i];
        if side.to_open > 0 && !side.open_blocked && !side.open_full && self.rng.chance(1, 4) {
            match self.sides[i].conn.open() {
                Ok(id) => {
                    if let Err(e) = self.sides[i].checker.opened_locally(id) {
                        self.fail(format!("{}: {e}", self.sides[i].name));
                    }
                    let s = self.new_stream(i, id, true);
                    let name = self.sides[i].name;
                    self.log(|| format!("{name}: open {id} plan {} ", s.plan));
                    let side = &mut self.sides[i];
                    if side.streams.insert(id, s).is_some() {
                        self.fail(format!("open returned {id} twice"));
                    }
                    self.sides[i].to_open -= 1;
                }
                Err(OpenError::Blocked) => {
                    self.count("open: blocked");
                    self.sides[i].open_blocked = true
                }
                Err(OpenError::TooManyStreams { .. } | OpenError::ReceiveBudgetFull { .. }) => {
                    self.count("open: too many streams");
                    self.sides[i].open_full = true
                }
                Err(OpenError::GoingAway | OpenError::RemoteGoingAway) => self.sides[i].to_open = 0,
                Err(e) => self.fail(format!("open failed: {e:?}")),
            }
            self.check(i);
            self.drain(i);
        }
        // Pings.
        if self.rng.chance(self.profile.ping_per_mille, 1000) {
            match self.sides[i].conn.ping() {
                Ok(_) => self.sides[i].pings_outstanding += 1,
                Err(PingError::TooMany) => {}
                Err(e) => self.fail(format!("ping failed: {e:?}")),
            }
            self.drain(i);
        }
        let ids: Vec<StreamId> = self.sides[i].streams.keys().copied().collect();
        for id in ids {
            self.act_on_stream(i, id);
        }
    }

    fn act_on_stream(&mut self, i: usize, id: StreamId) {
        let name = self.sides[i].name;
        let Some(s) = self.sides[i].streams.get(&id) else { return };
        if s.closed || s.local_reset || self.sides[i].closed.is_some() {
            return;
        }
        // A planned local reset.
        if s.reset.is_none() && s.reset_at.is_some_and(|at| s.written >= at) {
            self.log(|| format!("{name}: reset {id}"));
            if let Err(e) = self.sides[i].conn.reset(id) {
                self.fail(format!("{name}: reset {id}: {e:?}"));
            }
            self.sides[i].streams.get_mut(&id).unwrap().local_reset = true;
            self.count("command: reset");
            self.check(i);
            return self.drain(i);
        }
        // Writing.
        if !s.write_done() && s.written < s.plan && !s.send_blocked && self.rng.chance(1, 2) {
            let want = self.rng.range(1, (s.plan - s.written).min(32 * 1024)) as usize;
            let data = pattern_at(s.key_out, s.written, want);
            let result = if self.rng.chance(1, 2) {
                self.sides[i].conn.send(id, &data)
            } else {
                self.sides[i].conn.send_bytes(id, Bytes::from(data))
            };
            match result {
                Ok(n) => {
                    let s = self.sides[i].streams.get_mut(&id).unwrap();
                    s.written += n as u64;
                    if n < want {
                        s.send_blocked = true;
                    }
                }
                Err(e) => self.fail(format!("{name}: send on live stream {id}: {e:?}")),
            }
            self.check(i);
            self.drain(i);
        }
        let Some(s) = self.sides[i].streams.get(&id) else { return };
        if !s.write_done() && s.written == s.plan && self.rng.chance(1, 3) {
            let written = s.written;
            self.log(|| format!("{name}: close_write {id} after {written} bytes"));
            if let Err(e) = self.sides[i].conn.close_write(id) {
                self.fail(format!("{name}: close_write {id}: {e:?}"));
            }
            self.sides[i].streams.get_mut(&id).unwrap().close_write_called = true;
            self.check(i);
            self.drain(i);
        }
        // Reading.
        let Some(s) = self.sides[i].streams.get(&id) else { return };
        if s.closed {
            return;
        }
        let pace = if s.slow_reader { 50 } else { 2 };
        if s.readable && self.rng.chance(1, pace) {
            let max = if self.rng.chance(1, 2) { u64::MAX } else { self.rng.range(1, 70_000) };
            self.read(i, id, max as usize);
            self.check(i);
            self.drain(i);
        }
        let Some(s) = self.sides[i].streams.get(&id) else { return };
        if !s.closed
            && !s.stopped
            && s.reset.is_none()
            && s.stop_at.is_some_and(|at| s.received >= at)
        {
            let received = s.received;
            self.log(|| format!("{name}: stop_reading {id} after {received} bytes"));
            if let Err(e) = self.sides[i].conn.stop_reading(id) {
                self.fail(format!("{name}: stop_reading {id}: {e:?}"));
            }
            let s = self.sides[i].streams.get_mut(&id).unwrap();
            s.stopped = true;
            s.readable = false;
            self.count("command: stop_reading");
            self.check(i);
            self.drain(i);
        }
    }

    /// One `read` of at most `max` bytes on stream `id` of side `i`, its
    /// answer checked against what the application knows.
    fn read(&mut self, i: usize, id: StreamId, max: usize) {
        let name = self.sides[i].name;
        let answer = self.sides[i].conn.read(id, max);
        let s = self.sides[i].streams.get_mut(&id).unwrap();
        let (problem, key) = match answer {
            Ok(Some(data)) => {
                let offset = s.received;
                s.received += data.len() as u64;
                let wrong = data
                    .iter()
                    .zip(offset..)
                    .find(|&(b, at)| *b != pattern_byte(s.key_in, at))
                    .map(|(_, at)| at);
                let problem = if data.is_empty() || data.len() > max {
                    Some(format!("read {} of at most {max} on {id}", data.len()))
                } else if s.stopped || s.local_reset || s.read_end {
                    Some(format!("data read on {id} after stop/reset/end"))
                } else {
                    wrong.map(|at| format!("stream {id}: wrong byte at offset {at}"))
                };
                (problem, "read: data")
            }
            Ok(None) => {
                let problem = (!s.half_closed || s.read_end)
                    .then(|| format!("read the end of {id} before PeerHalfClosed or twice"));
                s.read_end = true;
                s.readable = false;
                (problem, "read: end")
            }
            Err(ReadError::Blocked) => {
                let problem = (s.half_closed || s.reset.is_some())
                    .then(|| format!("read {id} Blocked after its end or reset"));
                s.readable = false;
                (problem, "read: blocked")
            }
            Err(ReadError::Reset(reason)) => {
                let problem = (s.reset != Some(reason))
                    .then(|| format!("read {id}: {reason:?}, saw {:?}", s.reset));
                s.readable = false;
                (problem, "read: reset")
            }
            // Forgotten after its `StreamClosed` with nothing left unread.
            Err(ReadError::UnknownStream) if s.closed => {
                s.readable = false;
                (None, "read: forgotten")
            }
            Err(e) => (Some(format!("read {id}: {e:?}")), "read: error"),
        };
        if let Some(what) = problem {
            self.fail(format!("{name}: {what}"));
        }
        self.count(key);
    }

    /// Polls every event of side `i` and checks it against what the
    /// application knows.
    fn drain(&mut self, i: usize) {
        while let Some(event) = self.sides[i].conn.poll_event() {
            self.on_event(i, event);
            self.check(i);
        }
    }

    fn on_event(&mut self, i: usize, event: Event) {
        self.count(event_key(&event));
        let name = self.sides[i].name;
        if self.trace.is_some() {
            let line = format!("{name}: {event:?}");
            self.log(|| line);
        }
        // Order, parity, once-only and nothing after the end: the rules
        // every connection keeps.
        if let Err(e) = self.sides[i].checker.on_event(&event) {
            self.fail(format!("{name}: {e}"));
        }
        if let Event::StreamOpened { id } = event {
            let s = self.new_stream(i, id, false);
            self.sides[i].streams.insert(id, s);
            return;
        }
        let seed = self.seed;
        let seed_fail = |what: String| -> ! { panic!("seed {seed}: {name}: {what}") };
        match event {
            Event::StreamOpened { .. } => unreachable!(),
            Event::Readable { id } => {
                let s = self.sides[i].streams.get_mut(&id).unwrap();
                // (After PeerHalfClosed or StreamReset: the checker's.)
                if s.stopped || s.local_reset {
                    seed_fail(format!("Readable {id} after our stop or reset"));
                }
                s.readable = true;
            }
            Event::PeerHalfClosed { id } => {
                let s = self.sides[i].streams.get_mut(&id).unwrap();
                if s.local_reset || s.stopped {
                    seed_fail(format!("PeerHalfClosed on {id} after our reset or stop"));
                }
                s.half_closed = true;
                // The application reads on to learn the end.
                s.readable = true;
            }
            Event::StreamReset { id, reason } => {
                let s = self.sides[i].streams.get_mut(&id).unwrap();
                if s.local_reset {
                    seed_fail(format!("StreamReset on {id} after our own reset"));
                }
                // (Twice, `Local` or `StoppedReading`: the checker's.)
                match reason {
                    ResetReason::Remote { code: 0 } | ResetReason::ConnectionClosed(_) => {}
                    ResetReason::Remote { code } => seed_fail(format!("{id}: RST code {code}")),
                    ResetReason::Refused if !s.outbound => {
                        seed_fail(format!("{id}: inbound stream reported Refused"))
                    }
                    ResetReason::Refused => {}
                    ResetReason::OpenTimeout
                    | ResetReason::LingerTimeout
                    | ResetReason::SendStall => {
                        if !self.profile.timeouts_allowed() {
                            seed_fail(format!("{id}: {reason:?} without long stalls"));
                        }
                    }
                    other => {
                        seed_fail(format!("{id}: a reset the simulator does not know: {other:?}"))
                    }
                }
                s.reset = Some(reason);
                // The application reads on to learn of the reset (after
                // any bytes it left).
                s.readable = !s.stopped;
            }
            Event::CreditsReturned { id, amount } => {
                // Credit is not buffer space: only `Writable` unblocks.
                let s = self.sides[i].streams.get_mut(&id).unwrap();
                s.credits_returned += u64::from(amount);
            }
            Event::Writable { id } => {
                let s = self.sides[i].streams.get_mut(&id).unwrap();
                s.send_blocked = false;
            }
            Event::StreamClosed { id } => {
                let s = self.sides[i].streams.get_mut(&id).unwrap();
                s.closed = true;
                self.sides[i].open_full = false;
            }
            Event::OpenUnblocked => self.sides[i].open_blocked = false,
            Event::Pong { rtt, .. } => {
                if rtt > self.now - self.start {
                    seed_fail(format!("rtt {rtt:?} longer than the run"));
                }
                self.sides[i].pings_outstanding = self.sides[i].pings_outstanding.saturating_sub(1);
            }
            Event::GoAwayReceived { code } => {
                if code != GoAwayCode::Normal {
                    seed_fail(format!("peer sent go-away {code:?}"));
                }
                self.sides[i].go_away_received = Some(code);
                self.sides[i].to_open = 0;
            }
            Event::ConnectionClosed { reason } => {
                self.check_close_reason(i, reason);
                let side = &mut self.sides[i];
                side.closed = Some(reason);
                side.to_open = 0;
            }
            other => seed_fail(format!("an event the simulator does not know: {other:?}")),
        }
    }

    fn check_close_reason(&self, i: usize, reason: CloseReason) {
        let name = self.sides[i].name;
        let ok = match reason {
            CloseReason::Drained | CloseReason::LocalClose | CloseReason::TransportClosed => true,
            CloseReason::KeepAliveTimeout
            | CloseReason::DrainTimeout
            | CloseReason::GoAwayUnanswered => self.profile.timeouts_allowed(),
            CloseReason::RemoteGoAway(_) | CloseReason::Protocol(_) | CloseReason::Flood(_) => {
                false
            }
            _ => false,
        };
        if !ok {
            self.fail(format!("{name}: connection closed with {reason:?}"));
        }
        // Streams reset by the connection name its reason.
        for (id, s) in &self.sides[i].streams {
            if let Some(ResetReason::ConnectionClosed(r)) = s.reset {
                if r != reason {
                    self.fail(format!("{name}: {id} reset with {r:?}, connection {reason:?}"));
                }
            }
        }
    }

    fn final_checks(&self) {
        for i in 0..2 {
            let side = &self.sides[i];
            let peer = &self.sides[1 - i];
            if let Err(e) = side.checker.finish() {
                self.fail(format!("{}: at the end: {e}", side.name));
            }
            if side.conn.stream_count() != 0 {
                self.fail(format!("{}: streams left open", side.name));
            }
            for (id, s) in &side.streams {
                if !s.closed {
                    self.fail(format!("{}: {id} never closed", side.name));
                }
                // What this side wrote, as the peer saw it.
                let Some(r) = peer.streams.get(id) else {
                    // The peer never saw the stream: it cannot have been
                    // delivered, so ours must have been reset.
                    if s.reset.is_none() && !s.local_reset {
                        self.fail(format!(
                            "{}: {id} unknown to the peer, yet not reset",
                            side.name
                        ));
                    }
                    continue;
                };
                if r.received > s.written {
                    self.fail(format!("{id}: received {} of {} written", r.received, s.written));
                }
                let ended_normally = r.reset.is_none() && !r.local_reset && !r.stopped;
                if ended_normally
                    && (!r.half_closed || r.received != s.written || !s.close_write_called)
                {
                    self.fail(format!(
                        "{id} from {}: ended normally but {} of {} bytes delivered \
                         (PeerHalfClosed {}, close_write {})",
                        side.name, r.received, s.written, r.half_closed, s.close_write_called
                    ));
                }
                // Credit comes back only for what the peer's application
                // consumed (or, after stop_reading, what it discarded). Not
                // when the peer grows its windows: growth arrives as credit
                // too and the wire cannot tell them apart (documented on
                // `Event::CreditsReturned`; see
                // `credits_returned_equal_what_a_fixed_window_peer_consumed`).
                let peer_grows = {
                    let c = &self.profile.configs[1 - i];
                    c.max_stream_window > c.initial_stream_window
                };
                if !peer_grows && !r.stopped && s.credits_returned > r.received {
                    self.fail(format!(
                        "{id} from {}: {} bytes credited back, peer read {}",
                        side.name, s.credits_returned, r.received
                    ));
                }
            }
        }
    }
}

/// The coverage key of an event.
fn event_key(event: &Event) -> &'static str {
    match event {
        Event::StreamOpened { .. } => "event: StreamOpened",
        Event::Readable { .. } => "event: Readable",
        Event::PeerHalfClosed { .. } => "event: PeerHalfClosed",
        Event::StreamReset { reason, .. } => match reason {
            ResetReason::Local => "reset: local",
            ResetReason::StoppedReading => "reset: stopped reading",
            ResetReason::Remote { .. } => "reset: remote",
            ResetReason::Refused => "reset: refused",
            ResetReason::OpenTimeout => "reset: open timeout",
            ResetReason::LingerTimeout => "reset: linger timeout",
            ResetReason::SendStall => "reset: send stall",
            ResetReason::ConnectionClosed(_) => "reset: connection closed",
            _ => "reset: other",
        },
        Event::CreditsReturned { .. } => "event: CreditsReturned",
        Event::Writable { .. } => "event: Writable",
        Event::StreamClosed { .. } => "event: StreamClosed",
        Event::OpenUnblocked => "event: OpenUnblocked",
        Event::Pong { .. } => "event: Pong",
        Event::GoAwayReceived { .. } => "event: GoAwayReceived",
        Event::ConnectionClosed { reason } => match reason {
            CloseReason::Drained => "closed: drained",
            CloseReason::LocalClose => "closed: local close",
            CloseReason::TransportClosed => "closed: transport closed",
            CloseReason::KeepAliveTimeout => "closed: keep-alive timeout",
            CloseReason::DrainTimeout => "closed: drain timeout",
            CloseReason::GoAwayUnanswered => "closed: go-away unanswered",
            _ => "closed: other",
        },
        _ => "event: other",
    }
}

fn stream_key(seed: u64, id: StreamId, writer: usize) -> u64 {
    mix(seed ^ (u64::from(id.0) << 1 | writer as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93))
}
