//! The pair harness: two `Connection`s wired back to back over a virtual
//! network with virtual time. Knobs: input chunking, one-way delay, stalling
//! a direction, and injecting hand-built frames.
//!
//! Applications on each side are simulated minimally: events are recorded
//! and checked as they come ([`EventChecker`]), and (unless `auto_read` is
//! off) received data is read at once and collected per stream; otherwise
//! tests read it with [`Pair::read`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use yamux_proto::frame::Header;
use yamux_proto::{Config, Connection, Event, ResetReason, StreamId};

use super::events::EventChecker;
use super::frames::{frame, quiet_config, transmit_all};
use super::network::Link;
use super::Side;

/// One end: its connection plus what its application saw.
pub struct End {
    pub conn: Connection,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Data received per stream, in order.
    pub received: BTreeMap<StreamId, Vec<u8>>,
    /// Read data as soon as it is readable.
    pub auto_read: bool,
    /// Bytes delivered to this end's `handle_input` at a time (0 = all).
    pub chunk: usize,
    /// Checks every event as it is collected.
    pub checker: EventChecker,
    /// Bytes in flight towards this end.
    inbox: Link,
}

pub struct Pair {
    pub client: End,
    pub server: End,
    pub start: Instant,
    pub now: Instant,
    /// One-way latency of the virtual network.
    pub delay: Duration,
}

impl Pair {
    pub fn new() -> Pair {
        Pair::with_configs(quiet_config(), quiet_config())
    }

    pub fn with_configs(client: Config, server: Config) -> Pair {
        let start = Instant::now();
        let end = |config, side: Side| End {
            conn: Connection::new(config, side.role(), start).expect("valid config"),
            events: Vec::new(),
            received: BTreeMap::new(),
            auto_read: true,
            chunk: 0,
            checker: EventChecker::new(side.role()),
            inbox: Link::default(),
        };
        Pair {
            client: end(client, Side::Client),
            server: end(server, Side::Server),
            start,
            now: start,
            delay: Duration::ZERO,
        }
    }

    pub fn end(&mut self, side: Side) -> &mut End {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    pub fn conn(&mut self, side: Side) -> &mut Connection {
        &mut self.end(side).conn
    }

    /// Time since the pair started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// One round at the current time: both ends transmit, due bytes are
    /// delivered, events are collected. Returns whether anything moved.
    pub fn step(&mut self) -> bool {
        let mut moved = false;
        for side in [Side::Client, Side::Server] {
            moved |= self.transmit(side);
        }
        for side in [Side::Client, Side::Server] {
            moved |= self.deliver(side);
            moved |= self.collect(side);
        }
        moved
    }

    /// Steps until nothing moves at the current time.
    pub fn drive(&mut self) {
        for _ in 0..1_000_000 {
            if !self.step() {
                return;
            }
        }
        panic!("pair did not quiesce");
    }

    /// Lets `d` of virtual time pass, visiting every deadline and delivery
    /// time on the way and driving at each.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        self.drive();
        loop {
            let next = [self.next_wakeup(Side::Client), self.next_wakeup(Side::Server)]
                .into_iter()
                .flatten()
                .filter(|t| *t <= until)
                .min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            self.client.conn.handle_timeout(self.now);
            self.server.conn.handle_timeout(self.now);
            self.drive();
        }
        self.now = until;
        self.client.conn.handle_timeout(self.now);
        self.server.conn.handle_timeout(self.now);
        self.drive();
    }

    /// The end on `side`, to read.
    pub fn end_ref(&self, side: Side) -> &End {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    /// Bytes in flight towards `side`.
    pub fn in_flight(&self, side: Side) -> usize {
        self.end_ref(side).inbox.in_flight()
    }

    /// Stops (or resumes) delivering input to `side`: its transport is not
    /// read meanwhile.
    pub fn stall(&mut self, side: Side, on: bool) {
        self.end(side).inbox.stalled = on;
    }

    /// Puts raw bytes on the wire towards `to`, as if its peer sent them.
    pub fn inject(&mut self, to: Side, bytes: &[u8]) {
        let at = self.now;
        self.end(to).inbox.send(at, Bytes::copy_from_slice(bytes));
    }

    /// Puts one hand-built frame on the wire towards `to`.
    pub fn inject_frame(&mut self, to: Side, header: Header, body: &[u8]) {
        self.inject(to, &frame(header, body));
    }

    /// Takes the events `side` recorded so far.
    pub fn take_events(&mut self, side: Side) -> Vec<Event> {
        std::mem::take(&mut self.end(side).events)
    }

    /// Opens a stream on `side`, sends `data`, optionally half-closes.
    pub fn open_with(&mut self, side: Side, data: &[u8], fin: bool) -> StreamId {
        let conn = self.conn(side);
        let id = conn.open().expect("open");
        assert_eq!(conn.send(id, data).expect("send"), data.len());
        if fin {
            conn.close_write(id).expect("close_write");
        }
        id
    }

    /// Sends all of `data` on `id` from `side`, driving the pair whenever the
    /// send buffer is full. Panics if no progress is possible.
    pub fn send_all(&mut self, side: Side, id: StreamId, mut data: &[u8]) {
        let mut idle = 0;
        while !data.is_empty() {
            let n = self.conn(side).send(id, data).expect("send");
            data = &data[n..];
            if n == 0 {
                idle += 1;
                assert!(idle < 1000, "send made no progress");
            } else {
                idle = 0;
            }
            self.drive();
        }
    }

    fn next_wakeup(&self, side: Side) -> Option<Instant> {
        let end = self.end_ref(side);
        let delivery = if end.inbox.stalled { None } else { end.inbox.next_due() };
        [delivery, end.conn.poll_timeout()].into_iter().flatten().min()
    }

    fn transmit(&mut self, from: Side) -> bool {
        let at = self.now + self.delay;
        let out = transmit_all(self.conn(from));
        if out.is_empty() {
            return false;
        }
        self.end(from.other()).inbox.send(at, Bytes::from(out));
        true
    }

    fn deliver(&mut self, to: Side) -> bool {
        let now = self.now;
        let end = self.end(to);
        let mut moved = false;
        while let Some(bytes) = end.inbox.take(now, usize::MAX) {
            let chunk = if end.chunk == 0 { bytes.len().max(1) } else { end.chunk };
            for piece in bytes.chunks(chunk) {
                end.conn.handle_input(now, piece);
            }
            moved = true;
        }
        moved
    }

    fn collect(&mut self, side: Side) -> bool {
        let end = self.end(side);
        let mut moved = false;
        while let Some(event) = end.conn.poll_event() {
            moved = true;
            // Streams opened by a test's own `open` call are learnt from
            // their first event.
            if let Err(e) = end.checker.observe(&event) {
                panic!("{side:?}: {e}");
            }
            let readable = match event {
                Event::Readable { id }
                | Event::PeerHalfClosed { id }
                | Event::StreamReset { id, .. } => Some(id),
                _ => None,
            };
            end.events.push(event);
            if let Some(id) = readable.filter(|_| end.auto_read) {
                read_into(end, id, usize::MAX);
            }
        }
        moved
    }
}

/// Reads up to `max` bytes of stream `id` into `end.received`; returns how
/// many were read.
fn read_into(end: &mut End, id: StreamId, max: usize) -> usize {
    let mut n = 0;
    while n < max {
        let Ok(Some(data)) = end.conn.read(id, max - n) else { break };
        end.received.entry(id).or_default().extend_from_slice(&data);
        n += data.len();
    }
    n
}

impl Pair {
    /// The application on `side` reads up to `max` bytes of stream `id`
    /// (releasing their credit); returns how many it read.
    pub fn read(&mut self, side: Side, id: StreamId, max: usize) -> usize {
        read_into(self.end(side), id, max)
    }
}

impl Pair {
    /// Moves everything `from` has to transmit straight into its peer's
    /// input, now, without collecting events: for tests that must control
    /// exactly when input is fed and when events are polled (they poll the
    /// connections themselves and must not call [`Pair::drive`]).
    pub fn transfer(&mut self, from: Side) {
        let now = self.now;
        let bytes = transmit_all(self.conn(from));
        self.conn(from.other()).handle_input(now, &bytes);
    }

    /// Panics unless both connections' invariants hold. (Events are checked
    /// as they are collected.)
    pub fn check(&self) {
        self.client.conn.check_invariants().expect("client invariants");
        self.server.conn.check_invariants().expect("server invariants");
    }

    /// What `side`'s application read on `id` so far.
    pub fn received(&self, side: Side, id: StreamId) -> &[u8] {
        self.end_ref(side).received.get(&id).map_or(&[], |v| v.as_slice())
    }

    /// Bytes received on `id` at `side` and not yet read.
    pub fn unread(&self, side: Side, id: StreamId) -> usize {
        self.end_ref(side).conn.stream_info(id).map_or(0, |i| i.recv_unread as usize)
    }
}

/// Reads stream `id` of `conn` until nothing more comes.
pub fn read_all(conn: &mut Connection, id: StreamId) -> Vec<u8> {
    let mut got = Vec::new();
    while let Ok(Some(data)) = conn.read(id, usize::MAX) {
        got.extend_from_slice(&data);
    }
    got
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Whether `events` contain `e`.
pub fn has(events: &[Event], e: &Event) -> bool {
    events.contains(e)
}

/// How many of `events` match `f`.
pub fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

/// The RTTs of the `Pong` events among `events`, in order.
pub fn pong_rtts(events: &[Event]) -> Vec<Duration> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Pong { rtt, .. } => Some(*rtt),
            _ => None,
        })
        .collect()
}

/// The reset reason `events` report for `id`, if any.
pub fn reset_of(events: &[Event], id: StreamId) -> Option<ResetReason> {
    events.iter().find_map(|e| match e {
        Event::StreamReset { id: i, reason } if *i == id => Some(*reason),
        _ => None,
    })
}
