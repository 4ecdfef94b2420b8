//! Hostile peers: one test per attack. Each test plays the attacker with
//! hand-built frames fed into one `Connection` (the victim, a server) and
//! checks four things:
//!
//! (a) the typed outcome: the exact `CloseReason`, a `StreamReset` with its
//!     reason, or that the frame is tolerated;
//! (b) the Go Away code we send when the connection fails (our output is
//!     decoded with `Header::decode`);
//! (c) bounded work and memory: `check_invariants()` after every input, queue
//!     sizes from `stats()`, `stream_count()`, `send_buffered()`, the size of
//!     our output, and for the memory attacks the heap actually held (a
//!     per-thread counting allocator, below);
//! (d) a stream that was healthy before the attack either finishes or ends
//!     with a reason, and the data we accepted before the attack is delivered.
//!
//! `docs/security.md` maps every test here to the limit it exercises.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use yamux_proto::frame::{Flags, FrameType, Header, HEADER_LEN};
use yamux_proto::{
    CloseReason, Config, Connection, Event, FloodError, FrameError, GoAwayCode, ProtocolError,
    ReadError, ResetReason, Role, StreamId, DEFAULT_WINDOW,
};

mod support;
use support::frames::{data as data_header, frame, frame as wire, quiet_config, window_update};
use support::pattern::pattern;

// ---------------------------------------------------------------------------
// Heap accounting. Tests run on parallel threads, so live bytes are counted
// per thread: a test measures only what its own thread allocates and frees.

struct CountingAlloc;

thread_local! {
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    // `try_with`: the slot may be gone while the thread is being torn down.
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + delta));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the only
// addition is a thread-local counter that does not allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Heap bytes currently held by allocations made on this thread.
fn live_heap() -> isize {
    LIVE_BYTES.with(Cell::get)
}

// ---------------------------------------------------------------------------
// The victim: one server-side Connection, driven by hand.

/// What the victim's application saw and what the victim put on the wire.
struct Victim {
    conn: Connection,
    start: Instant,
    now: Instant,
    /// Every event, in order.
    events: Vec<Event>,
    /// Payload delivered per stream, in order.
    received: BTreeMap<StreamId, Vec<u8>>,
    /// Consume delivered data at once (the application keeps up).
    auto_read: bool,
    /// Every frame we transmitted: decoded header and body.
    sent: Vec<(Header, Bytes)>,
}

impl Victim {
    fn new(config: Config) -> Victim {
        let start = Instant::now();
        Victim {
            conn: Connection::new(config, Role::Server, start).expect("valid config"),
            start,
            now: start,
            events: Vec::new(),
            received: BTreeMap::new(),
            auto_read: true,
            sent: Vec::new(),
        }
    }

    /// Feeds raw bytes from the attacker and checks the invariants.
    fn feed(&mut self, bytes: &[u8]) {
        self.conn.handle_input(self.now, bytes);
        self.check();
    }

    /// Feeds one hand-built frame.
    fn frame(&mut self, header: Header, body: &[u8]) {
        self.feed(&frame(header, body));
    }

    /// Drains and records the events that are due; returns the new ones.
    fn poll(&mut self) -> Vec<Event> {
        let mut new = Vec::new();
        while let Some(event) = self.conn.poll_event() {
            if let Event::Readable { id } = event {
                if self.auto_read {
                    self.read(id);
                }
            }
            new.push(event);
        }
        // Once per drain: the check is O(streams) and a flood queues
        // thousands of events for thousands of streams.
        self.check();
        self.events.extend(new.iter().cloned());
        new
    }

    /// Reads everything readable on `id` into `received`; returns how many
    /// pieces `read` gave.
    fn read(&mut self, id: StreamId) -> usize {
        let mut pieces = 0;
        while let Ok(Some(data)) = self.conn.read(id, usize::MAX) {
            self.received.entry(id).or_default().extend_from_slice(&data);
            pieces += 1;
        }
        pieces
    }

    /// Drains our output (the attacker reads the transport); returns the new
    /// frames, headers decoded with `Header::decode`.
    fn transmit(&mut self) -> Vec<(Header, Bytes)> {
        let mut new = Vec::new();
        while let Some(t) = self.conn.poll_transmit() {
            let header = Header::decode(&t.header).expect("we only emit valid headers");
            assert_eq!(header.body_len() as usize, t.body.len(), "body matches its header");
            new.push((header, t.body));
            self.check();
        }
        self.sent.extend(new.iter().cloned());
        new
    }

    /// Lets `d` of virtual time pass, running every timer due on the way.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(t) = self.conn.poll_timeout().filter(|t| *t <= until) {
            self.now = self.now.max(t);
            self.conn.handle_timeout(self.now);
            self.check();
        }
        self.now = until;
        self.conn.handle_timeout(self.now);
        self.check();
    }

    fn check(&self) {
        if let Err(e) = self.conn.check_invariants() {
            panic!("invariant broken: {e}");
        }
    }

    /// The attacker opens stream `id` (SYN) and sends `data` on it: a stream
    /// that is healthy before the attack starts.
    fn healthy_stream(&mut self, id: u32, data: &[u8]) {
        self.frame(window_update(id, Flags::SYN, 0), &[]);
        self.frame(data_header(id, Flags::NONE, data.len() as u32), data);
        let events = self.poll();
        assert!(events.contains(&Event::StreamOpened { id: StreamId(id) }));
        if !self.auto_read {
            self.read(StreamId(id));
        }
        assert_eq!(self.received[&StreamId(id)], data, "healthy data read before the attack");
        // The attacker reads our ACK; from here on our output is the attack's.
        let frames = self.transmit();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0.stream_id, StreamId(id));
        assert!(frames[0].0.flags.contains(Flags::ACK));
    }

    /// Feeds `bytes` in 16 KiB reads, as a transport would deliver them (the
    /// decoder's buffer grows with the largest single input).
    fn feed_chunked(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(16 * 1024) {
            self.feed(chunk);
        }
    }

    /// The healthy stream finishes normally after the attack: the attacker
    /// sends FIN, we reply and half-close, the stream is closed and forgotten.
    fn finish_healthy(&mut self, id: u32, data: &[u8]) {
        let sid = StreamId(id);
        self.frame(data_header(id, Flags::FIN, 0), &[]);
        self.conn.send(sid, b"bye").expect("healthy stream still writable");
        self.conn.close_write(sid).expect("close_write");
        let frames = self.transmit();
        // (A Window Update returning the healthy data's credit may come first.)
        let ours: Vec<_> = frames
            .iter()
            .filter(|(h, _)| {
                h.stream_id == sid
                    && (h.frame_type == FrameType::Data || h.flags.contains(Flags::FIN))
            })
            .collect();
        assert!(
            matches!(ours[..], [(reply, body), (fin, _)]
                if reply.frame_type == FrameType::Data && !reply.flags.contains(Flags::FIN)
                    && &body[..] == b"bye"
                    && fin.frame_type == FrameType::WindowUpdate
                    && fin.flags == Flags::FIN && fin.length == 0),
            "our reply, then our FIN alone: {frames:?}"
        );
        let events = self.poll();
        assert!(events.contains(&Event::PeerHalfClosed { id: sid }), "{events:?}");
        let stream_events = self.stream_events(id);
        assert_eq!(stream_events.last(), Some(&Event::StreamClosed { id: sid }), "{events:?}");
        assert_eq!(self.received[&sid], data, "nothing accepted was lost");
        // Still open, unless it was draining after our go-away and this was
        // its last stream.
        if self.conn.is_closed() {
            assert_eq!(self.conn.close_reason(), Some(CloseReason::Drained));
        }
    }

    /// The events recorded for stream `id`, in order.
    fn stream_events(&self, id: u32) -> Vec<Event> {
        let sid = StreamId(id);
        self.events.iter().filter(|e| e.stream_id() == Some(sid)).cloned().collect()
    }

    /// The connection failed with `reason`: `ConnectionClosed` is the last
    /// event, and after the failure our output is exactly one Go Away with
    /// `go_away` (or nothing at all when `None`). The healthy stream `id` got
    /// its data, then a reset naming the connection's reason, then its end.
    fn assert_failed(&mut self, reason: CloseReason, go_away: Option<u32>, healthy: (u32, &[u8])) {
        self.poll();
        let events = &self.events;
        assert_eq!(self.conn.close_reason(), Some(reason));
        assert_eq!(events.last(), Some(&Event::ConnectionClosed { reason }));
        assert_eq!(
            events.iter().filter(|e| matches!(e, Event::ConnectionClosed { .. })).count(),
            1
        );
        let frames = self.transmit();
        let expected: Vec<Header> = go_away.map(Header::go_away).into_iter().collect();
        let got: Vec<Header> = frames.iter().map(|(h, _)| *h).collect();
        assert_eq!(got, expected, "after a failure only the Go Away goes out");
        assert!(!self.conn.has_pending_output());
        assert_eq!(self.conn.stream_count(), 0);
        assert_eq!(self.conn.send_buffered(), 0);

        let (id, data) = healthy;
        let sid = StreamId(id);
        assert_eq!(self.received[&sid], data, "data accepted before the attack is delivered");
        let tail: Vec<Event> = self
            .stream_events(id)
            .into_iter()
            .filter(|e| !matches!(e, Event::Readable { .. } | Event::CreditsReturned { .. }))
            .collect();
        assert_eq!(
            tail,
            vec![
                Event::StreamOpened { id: sid },
                Event::StreamReset { id: sid, reason: ResetReason::ConnectionClosed(reason) },
                Event::StreamClosed { id: sid },
            ]
        );
        // A closed connection ignores whatever else the attacker sends,
        // counting it as discarded.
        let mut expected = self.conn.stats().clone();
        expected.bytes_discarded += HEADER_LEN as u64;
        self.frame(window_update(id + 1000, Flags::SYN, 0), &[]);
        assert_eq!(self.conn.stats(), &expected);
        assert!(self.poll().is_empty());
        assert!(self.transmit().is_empty());
    }
}

const PROTOCOL_ERROR: u32 = 1;

/// The healthy stream every test keeps alive through its attack.
const HEALTHY: u32 = 1;

// ---------------------------------------------------------------------------
// Stream limits.

#[test]
fn stream_flood_refuses_each_extra_syn_and_survives() {
    let config = {
        let mut c = quiet_config();
        c.max_streams = 4;
        c.max_pending_refusals = 8;
        c
    };
    let mut v = Victim::new(config);
    let healthy = pattern(1000, 1);
    v.healthy_stream(HEALTHY, &healthy);
    for id in [3, 5, 7] {
        v.frame(window_update(id, Flags::SYN, 0), &[]);
    }
    assert_eq!(v.conn.stream_count(), 4);
    v.poll();
    v.transmit();

    // 200 more SYNs, 8 at a time with our answers read in between: far more
    // refusals in total than `max_pending_refusals`, never more pending.
    let extra: Vec<u32> = (0..200).map(|i| 9 + 2 * i).collect();
    let mut refused = Vec::new();
    for batch in extra.chunks(8) {
        let mut raw = Vec::new();
        for &id in batch {
            raw.extend(wire(data_header(id, Flags::SYN, 5), b"hello"));
        }
        v.feed(&raw);
        assert!(!v.conn.is_closed());
        assert_eq!(v.conn.stream_count(), 4, "refused SYNs never become streams");
        assert!(v.poll().is_empty(), "no event for a refused stream");
        for (h, body) in v.transmit() {
            assert_eq!(h, window_update(h.stream_id.0, Flags::RST, 0), "one RST per refusal");
            assert!(body.is_empty());
            refused.push(h.stream_id.0);
        }
    }
    assert_eq!(refused, extra, "every extra SYN answered by exactly one RST, in order");
    let stats = v.conn.stats();
    assert_eq!(stats.streams_refused, 200);
    assert_eq!(stats.streams_accepted, 4);
    assert_eq!(stats.resets_sent, 200);
    // A refused SYN's payload is not data of any stream.
    assert_eq!(v.received.len(), 1);
    v.finish_healthy(HEALTHY, &healthy);
    // A slot freed by the healthy stream is usable again.
    v.frame(window_update(1001, Flags::SYN, 0), &[]);
    assert!(v.poll().contains(&Event::StreamOpened { id: StreamId(1001) }));
}

#[test]
fn syn_backlog_flood_without_reading_our_answers_ends_with_refused_streams() {
    // Default limits: max_streams 512, max_pending_refusals 1024.
    let config = quiet_config();
    let limit = config.max_pending_refusals;
    let max_streams = config.max_streams;
    let mut v = Victim::new(config);
    let healthy = pattern(3000, 2);
    v.healthy_stream(HEALTHY, &healthy);
    let mut raw = Vec::new();
    let mut id = 3;
    for _ in 1..max_streams + limit {
        raw.extend(wire(window_update(id, Flags::SYN, 0), &[]));
        id += 2;
    }
    // The attacker never reads our RSTs: refusals pile up to the limit...
    v.feed(&raw);
    assert!(!v.conn.is_closed());
    assert_eq!(v.conn.stream_count(), max_streams);
    assert_eq!(v.conn.stats().streams_refused, limit as u64);
    // ...and one more is a flood.
    v.frame(window_update(id, Flags::SYN, 0), &[]);
    assert_eq!(v.conn.stats().streams_refused, limit as u64);
    v.assert_failed(
        CloseReason::Flood(FloodError::RefusedStreams),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

#[test]
fn rapid_open_reset_cycles_end_with_rapid_reset() {
    // Default: 1000 peer resets of peer-opened streams per 1 s window.
    let config = quiet_config();
    let limit = config.max_rapid_resets as usize;
    let window = config.rapid_reset_window;
    let mut v = Victim::new(config);
    let healthy = pattern(500, 3);
    v.healthy_stream(HEALTHY, &healthy);
    let mut next_id = 3;
    // The application reads between transport reads of 100 cycles: a
    // reset stream holds its unread data (and its place under
    // `max_streams`) until it is read; see
    // `peer_reset_streams_keep_unread_data_within_max_streams`.
    let mut cycle = |v: &mut Victim, n: usize| {
        let mut left = n;
        while left > 0 {
            let mut raw = Vec::new();
            for _ in 0..left.min(100) {
                raw.extend(wire(data_header(next_id, Flags::SYN, 4), b"spam"));
                raw.extend(wire(window_update(next_id, Flags::RST, 0), &[]));
                next_id += 2;
            }
            left -= left.min(100);
            v.feed(&raw);
            v.poll();
        }
    };

    // A legitimate rate is tolerated indefinitely: just under the limit in
    // every window, for five windows.
    for _ in 0..5 {
        cycle(&mut v, limit - 1);
        assert!(!v.conn.is_closed());
        assert_eq!(
            v.conn.stream_count(),
            1,
            "reset streams are gone, only the healthy one is left"
        );
        // Nothing to answer: the ACK owed to a stream reset before we
        // transmitted is dropped with it.
        let out = v.transmit();
        assert!(out.is_empty(), "{out:?}");
        v.advance(window);
    }
    assert_eq!(v.conn.stats().resets_received, 5 * (limit as u64 - 1));
    // The data of the reset streams (accepted, then reset by the peer) is
    // still read, before each stream's reset.
    let reset_events = v.events.iter().filter(|e| matches!(e, Event::StreamReset { .. })).count();
    assert_eq!(reset_events, 5 * (limit - 1));
    let read: usize =
        v.received.iter().filter(|(id, _)| id.0 != HEALTHY).map(|(_, d)| d.len()).sum();
    assert_eq!(read, 5 * (limit - 1) * 4);

    // The limit within one window ends the connection.
    cycle(&mut v, limit);
    assert!(!v.conn.is_closed());
    cycle(&mut v, 1);
    v.assert_failed(
        CloseReason::Flood(FloodError::RapidReset),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

/// A peer that writes and then resets (the `yamux` crate does, for a
/// stream dropped after its last write) loses nothing: the data stays
/// readable after the reset. Such a stream keeps its place under
/// `max_streams` until it is read, so a flood of them that the application
/// does not read is refused beyond the limit, and memory stays bounded.
#[test]
fn peer_reset_streams_keep_unread_data_within_max_streams() {
    let config = quiet_config();
    let max = config.max_streams;
    let mut v = Victim::new(config);
    v.auto_read = false;
    let healthy = pattern(100, 5);
    v.healthy_stream(HEALTHY, &healthy);
    let mut raw = Vec::new();
    for k in 0..max as u32 + 9 {
        let id = 3 + 2 * k;
        raw.extend(wire(data_header(id, Flags::SYN, 4), b"kept"));
        raw.extend(wire(window_update(id, Flags::RST, 0), &[]));
    }
    v.feed(&raw);
    let events = v.poll();
    assert_eq!(v.conn.stream_count(), max, "unread reset streams hold their places");
    let refused = v.transmit().iter().filter(|(h, _)| h.flags.contains(Flags::RST)).count();
    assert_eq!(refused, 10, "the streams beyond max_streams are refused");
    let readable: Vec<StreamId> = events
        .iter()
        .filter_map(|e| match e {
            Event::Readable { id } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(readable.len(), max - 1);
    for id in readable {
        v.read(id);
        assert_eq!(v.received[&id], b"kept", "{id}: written before the reset, read after it");
        assert_eq!(v.conn.read(id, 1), Err(ReadError::Reset(ResetReason::Remote { code: 0 })));
    }
    v.poll();
    assert_eq!(v.conn.stream_count(), 1, "read out, they end: only the healthy one is left");
    assert!(!v.conn.is_closed());
    v.finish_healthy(HEALTHY, &healthy);
}

#[test]
fn new_syn_after_our_go_away_is_refused_with_rst() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(700, 4);
    v.healthy_stream(HEALTHY, &healthy);
    v.conn.go_away(GoAwayCode::Normal);
    let frames = v.transmit();
    let sent: Vec<Header> = frames.iter().map(|(h, _)| *h).collect();
    assert_eq!(sent[0], Header::go_away(0));
    assert_eq!(sent[1].frame_type, FrameType::Ping, "the probe that follows the Go Away");
    assert_eq!(sent.len(), 2);
    for id in [3, 5, 7] {
        v.frame(data_header(id, Flags::SYN, 3), b"abc");
    }
    assert!(v.poll().is_empty(), "refused streams are never reported");
    let frames: Vec<Header> = v.transmit().into_iter().map(|(h, _)| h).collect();
    assert_eq!(
        frames,
        [3, 5, 7].map(|id| window_update(id, Flags::RST, 0)).to_vec(),
        "one RST per SYN after our go-away"
    );
    assert_eq!(v.conn.stats().streams_refused, 3);
    // The healthy stream finishes, then the connection drains.
    v.finish_healthy(HEALTHY, &healthy);
    assert_eq!(v.events.last(), Some(&Event::ConnectionClosed { reason: CloseReason::Drained }));
    assert!(v.transmit().is_empty(), "a drained connection has nothing more to send");
}

// ---------------------------------------------------------------------------
// Control-frame floods.

#[test]
fn ping_flood_answers_are_bounded_and_oldest_dropped() {
    let config = quiet_config();
    let max_pongs = config.max_pending_pongs;
    let mut v = Victim::new(config);
    let healthy = pattern(100, 5);
    v.healthy_stream(HEALTHY, &healthy);

    // Pings answered as fast as they come: every one gets its pong.
    for opaque in 0..100u32 {
        v.frame(Header::ping(Flags::SYN, opaque), &[]);
        let frames = v.transmit();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, Header::ping(Flags::ACK, opaque));
    }
    assert_eq!(v.conn.stats().pongs_dropped, 0);

    // A flood while the attacker does not read: the pong queue stays at
    // `max_pending_pongs`, the newest answers are kept.
    const FLOOD: u32 = 20_000;
    let mut raw = Vec::new();
    for opaque in 0..FLOOD {
        raw.extend(wire(Header::ping(Flags::SYN, 1_000_000 + opaque), &[]));
    }
    let heap_before = live_heap();
    v.feed_chunked(&raw);
    let heap_growth = live_heap() - heap_before;
    assert!(
        heap_growth < 128 * 1024,
        "a ping flood holds no memory per ping (grew {heap_growth} bytes for {FLOOD} pings)"
    );
    assert!(!v.conn.is_closed(), "a ping flood is absorbed, not fatal");
    assert_eq!(v.conn.stats().pongs_dropped, u64::from(FLOOD) - max_pongs as u64);
    assert!(v.poll().is_empty(), "pings make no events");
    let frames: Vec<Header> = v.transmit().into_iter().map(|(h, _)| h).collect();
    let expected: Vec<Header> = (FLOOD - max_pongs as u32..FLOOD)
        .map(|i| Header::ping(Flags::ACK, 1_000_000 + i))
        .collect();
    assert_eq!(frames, expected);

    // Unsolicited pongs are ignored, answered with nothing.
    for opaque in 0..1000 {
        v.frame(Header::ping(Flags::ACK, opaque), &[]);
    }
    assert!(v.poll().is_empty());
    assert!(v.transmit().is_empty());
    v.finish_healthy(HEALTHY, &healthy);
}

#[test]
fn window_update_flood_is_tolerated_and_credit_is_exact() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 6);
    v.healthy_stream(HEALTHY, &healthy);
    let sid = StreamId(HEALTHY);
    let credit_before = v.conn.stream_info(sid).unwrap().send_credit;
    let mut raw = Vec::new();
    for _ in 0..10_000 {
        raw.extend(wire(window_update(HEALTHY, Flags::NONE, 3), &[]));
    }
    v.feed(&raw);
    assert!(!v.conn.is_closed());
    assert_eq!(v.conn.stream_info(sid).unwrap().send_credit, credit_before + 30_000);
    // One CreditsReturned per update: events are as many as the frames the
    // application fed in, and gone once polled.
    let events = v.poll();
    assert_eq!(events.len(), 10_000);
    assert!(events.iter().all(|e| *e == Event::CreditsReturned { id: sid, amount: 3 }));
    assert!(v.transmit().is_empty(), "credit is not answered");
    v.finish_healthy(HEALTHY, &healthy);
}

#[test]
fn credit_overflow_past_u32_is_a_protocol_error() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 7);
    v.healthy_stream(HEALTHY, &healthy);
    // Stream 3 announces the largest window there is on its SYN.
    v.frame(window_update(3, Flags::SYN, u32::MAX - DEFAULT_WINDOW), &[]);
    v.poll();
    assert_eq!(v.conn.stream_info(StreamId(3)).unwrap().send_credit, u32::MAX);
    assert!(!v.conn.is_closed());
    // One more byte of credit cannot be represented.
    v.frame(window_update(3, Flags::NONE, 1), &[]);
    v.assert_failed(
        CloseReason::Protocol(ProtocolError::CreditOverflow(StreamId(3))),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

#[test]
fn empty_data_frame_flood_ends_with_empty_frames() {
    let config = quiet_config();
    let limit = config.max_empty_frames as usize;
    let mut v = Victim::new(config);
    let healthy = pattern(100, 8);
    v.healthy_stream(HEALTHY, &healthy);
    let empties = |n: usize| {
        let mut raw = Vec::new();
        for i in 0..n {
            // Empty Data frames and zero Window Updates, on a live stream and
            // on unknown ones: all carry nothing.
            let header = match i % 3 {
                0 => data_header(HEALTHY, Flags::NONE, 0),
                1 => window_update(HEALTHY, Flags::NONE, 0),
                _ => data_header(999, Flags::NONE, 0),
            };
            raw.extend(wire(header, &[]));
        }
        raw
    };
    // Any frame that carries something resets the count.
    for _ in 0..3 {
        v.feed(&empties(limit));
        assert!(!v.conn.is_closed());
        v.frame(data_header(HEALTHY, Flags::NONE, 1), b"!");
    }
    assert!(v.transmit().is_empty(), "empty frames are never answered");
    let mut expected = healthy.clone();
    expected.extend_from_slice(b"!!!");
    v.feed(&empties(limit));
    v.frame(data_header(HEALTHY, Flags::NONE, 0), &[]);
    v.assert_failed(
        CloseReason::Flood(FloodError::EmptyFrames),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &expected),
    );
}

#[test]
fn empty_frames_with_meaningless_flags_are_counted_too() {
    let config = quiet_config();
    let limit = config.max_empty_frames as usize;
    let mut v = Victim::new(config);
    let healthy = pattern(100, 9);
    v.healthy_stream(HEALTHY, &healthy);
    let mut raw = Vec::new();
    for _ in 0..=limit {
        // 0x100 is no flag yamux defines: the frame carries nothing.
        raw.extend(wire(data_header(HEALTHY, Flags(0x100), 0), &[]));
    }
    v.feed(&raw);
    v.assert_failed(
        CloseReason::Flood(FloodError::EmptyFrames),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

#[test]
fn repeated_flag_only_frames_count_as_empty() {
    // A FIN or ACK repeated on a live stream changes nothing: it costs the
    // peer 12 bytes and us a lookup. Such frames count towards the empty-frame
    // limit, and until then leave no trace: no event, no output, no memory.
    let config = quiet_config();
    let limit = config.max_empty_frames as usize;
    let mut v = Victim::new(config);
    let healthy = pattern(100, 10);
    v.healthy_stream(HEALTHY, &healthy);
    v.frame(window_update(3, Flags::SYN.with(Flags::FIN), 0), &[]);
    let id = StreamId(3);
    assert_eq!(v.poll(), vec![Event::StreamOpened { id }, Event::PeerHalfClosed { id }]);
    v.transmit();
    let mut raw = Vec::new();
    for i in 0..limit {
        let flags = if i % 2 == 0 { Flags::FIN } else { Flags::ACK };
        raw.extend(wire(window_update(3, flags, 0), &[]));
    }
    let heap_before = live_heap();
    v.feed_chunked(&raw);
    let heap_growth = live_heap() - heap_before;
    // At most the decoder's input buffer (64 KiB) and its short queue of
    // full buffers, each allocated once (whole frames in the input are
    // decoded in place, so the buffer may first be needed here); one byte
    // per flag would be 10 KB more.
    assert!(heap_growth <= 64 * 1024 + 512, "no memory per repeated flag: grew {heap_growth}");
    assert!(!v.conn.is_closed());
    assert!(v.poll().is_empty(), "a second FIN is not reported again");
    assert!(v.transmit().is_empty());
    v.frame(window_update(3, Flags::FIN, 0), &[]);
    v.assert_failed(
        CloseReason::Flood(FloodError::EmptyFrames),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

// ---------------------------------------------------------------------------
// Data-frame attacks.

#[test]
fn one_byte_data_frames_are_coalesced_and_memory_stays_bounded() {
    let mut v = Victim::new(quiet_config());
    // The application reads the events but consumes nothing: everything
    // received is held, which is the worst case for memory.
    v.auto_read = false;
    v.frame(window_update(HEALTHY, Flags::SYN, 0), &[]);
    v.poll();
    v.transmit();
    const N: usize = 200_000; // < 256 KiB: stays within the window
    let payload = pattern(N, 11);
    let mut raw = Vec::with_capacity(N * (HEADER_LEN + 1));
    for b in &payload {
        raw.extend(wire(data_header(HEALTHY, Flags::NONE, 1), &[*b]));
    }
    let input_len = raw.len();
    let heap_before = live_heap();
    // The transport delivers 16 KiB reads; the application polls after each
    // but reads nothing yet: the bytes are held by the connection.
    let mut readable_events = 0;
    for chunk in raw.chunks(16 * 1024) {
        v.conn.handle_input(v.now, chunk);
        v.check();
        while let Some(event) = v.conn.poll_event() {
            readable_events += usize::from(matches!(event, Event::Readable { .. }));
        }
    }
    drop(raw); // allocated before the measurement started
    let heap_held = live_heap() - heap_before + input_len as isize;
    assert_eq!(readable_events, 1, "readable once, until it is read");
    let info = v.conn.stream_info(StreamId(HEALTHY)).unwrap();
    assert_eq!(info.recv_unread as usize, N, "held bytes are exactly the bytes received");
    assert_eq!(info.recv_window as usize, DEFAULT_WINDOW as usize - N);
    // Memory: the payload plus a constant, never a buffer per frame.
    assert!(
        heap_held < (2 * N + 256 * 1024) as isize,
        "{heap_held} heap bytes held for {N} one-byte frames"
    );
    assert!(!v.conn.is_closed());
    // Coalesced: a few large pieces, not one per frame.
    let pieces = v.read(StreamId(HEALTHY));
    assert!(pieces <= input_len.div_ceil(16 * 1024), "{pieces} pieces for {N} frames");
    assert!(v.received[&StreamId(HEALTHY)] == payload, "every byte read, in order");
    // Reading released the credit; the stream goes on.
    let frames = v.transmit();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0, window_update(HEALTHY, Flags::NONE, N as u32));
}

#[test]
fn small_retained_frames_do_not_pin_input_buffers() {
    // Stream 1 is read by a slow application: its 256-byte frames stay
    // unread. Stream 3 is read at once. The attacker sends one small
    // frame on stream 1 per 64 KiB of stream-3 data.
    let mut v = Victim::new(quiet_config());
    v.auto_read = false;
    v.frame(window_update(1, Flags::SYN, 0), &[]);
    v.frame(window_update(3, Flags::SYN, 0), &[]);
    v.poll();
    const ROUNDS: usize = 200;
    const SMALL: usize = 256;
    const BULK: usize = 64 * 1024 - 2 * HEADER_LEN - SMALL;
    let small = pattern(SMALL, 12);
    let bulk = pattern(BULK, 13);
    let heap_before = live_heap();
    for _ in 0..ROUNDS {
        let mut raw = wire(data_header(1, Flags::NONE, SMALL as u32), &small);
        raw.extend(wire(data_header(3, Flags::NONE, BULK as u32), &bulk));
        for chunk in raw.chunks(16 * 1024) {
            v.conn.handle_input(v.now, chunk);
        }
        while let Some(event) = v.conn.poll_event() {
            if event == (Event::Readable { id: StreamId(3) }) {
                while let Ok(Some(_)) = v.conn.read(StreamId(3), usize::MAX) {} // read and dropped
            }
        }
        v.check();
        // The attacker reads our window updates to keep stream 3 going.
        while v.conn.poll_transmit().is_some() {}
        assert!(!v.conn.is_closed());
    }
    let unread = ROUNDS * SMALL;
    assert_eq!(v.conn.stream_info(StreamId(1)).unwrap().recv_unread as usize, unread);
    let heap_held = live_heap() - heap_before;
    assert!(
        heap_held < (8 * unread + 256 * 1024) as isize,
        "{heap_held} heap bytes held for {unread} unread bytes"
    );
    v.read(StreamId(1));
    assert!(v.received[&StreamId(1)] == small.repeat(ROUNDS), "the slow reader's bytes");
}

#[test]
fn data_beyond_the_window_is_window_exceeded() {
    let mut v = Victim::new(quiet_config());
    v.auto_read = false;
    let healthy = pattern(100, 14);
    v.healthy_stream(HEALTHY, &healthy);
    v.frame(window_update(3, Flags::SYN, 0), &[]);
    // Exactly the window is fine.
    let full = pattern(DEFAULT_WINDOW as usize, 15);
    v.frame(data_header(3, Flags::NONE, DEFAULT_WINDOW), &full);
    assert!(!v.conn.is_closed());
    assert_eq!(v.conn.stream_info(StreamId(3)).unwrap().recv_window, 0);
    // One byte more is not.
    v.frame(data_header(3, Flags::NONE, 1), b"x");
    v.assert_failed(
        CloseReason::Protocol(ProtocolError::WindowExceeded(StreamId(3))),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
    // Received before the failure, it stays readable after the close.
    v.read(StreamId(3));
    assert!(v.received[&StreamId(3)] == full, "the data within the window is read");
}

#[test]
fn oversized_frame_is_rejected_at_its_header() {
    let config = quiet_config();
    let max = config.max_stream_window;
    let mut v = Victim::new(config);
    let healthy = pattern(100, 16);
    v.healthy_stream(HEALTHY, &healthy);
    // The header alone is enough: the body is never awaited or buffered.
    let heap_before = live_heap();
    v.feed(&data_header(HEALTHY, Flags::NONE, max + 1).encode());
    assert!(live_heap() - heap_before < 64 * 1024);
    v.assert_failed(
        CloseReason::Protocol(ProtocolError::Frame(FrameError::BodyTooLarge { len: max + 1, max })),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

/// A Data header announcing more than the stream's credit is a violation
/// by itself: waiting for its body would let a peer make us buffer up to
/// `max_stream_window` (16 MiB) per connection for a doomed frame. (Found
/// here as a weakness, fixed in the core since.)
#[test]
fn data_header_beyond_the_window_is_rejected_before_its_body() {
    // Default windows: Data bodies up to max_stream_window (16 MiB) decode.
    let mut v = Victim::new({
        let mut c = Config::default();
        c.keep_alive_interval = None;
        c
    });
    v.transmit(); // the start-up RTT ping
    let healthy = pattern(100, 30);
    v.healthy_stream(HEALTHY, &healthy);
    // 4 MiB announced on a stream with 256 KiB of credit: the header alone
    // proves the violation.
    let announced = 4 << 20;
    let heap_before = live_heap();
    v.feed(&data_header(HEALTHY, Flags::NONE, announced).encode());
    v.feed_chunked(&vec![0u8; 512 * 1024]);
    let heap_growth = live_heap() - heap_before;
    assert!(v.conn.is_closed(), "still buffering the body ({heap_growth} heap bytes)");
    assert!(heap_growth < 128 * 1024, "{heap_growth} heap bytes buffered for a doomed frame");
    v.assert_failed(
        CloseReason::Protocol(ProtocolError::WindowExceeded(StreamId(HEALTHY))),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

/// Through `handle_input_buf` the caller holds the partial frame, so the
/// same early check must run on the header at the front of its buffer:
/// otherwise the caller would be made to buffer the doomed body.
#[test]
fn data_header_beyond_the_window_is_rejected_from_the_callers_buffer() {
    let mut v = Victim::new({
        let mut c = Config::default();
        c.keep_alive_interval = None;
        c
    });
    v.transmit();
    let healthy = pattern(100, 31);
    v.healthy_stream(HEALTHY, &healthy);
    let mut held = BytesMut::new();
    held.extend_from_slice(&data_header(HEALTHY, Flags::NONE, 4 << 20).encode());
    held.extend_from_slice(&[0u8; 1000]);
    v.conn.handle_input_buf(v.now, &mut held);
    assert!(held.is_empty(), "bytes after the violation are dropped, not kept");
    v.assert_failed(
        CloseReason::Protocol(ProtocolError::WindowExceeded(StreamId(HEALTHY))),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

/// Small bodies are copied out of the caller's buffer, so a slow reader's
/// small frames do not keep it alive and the caller can reuse it in place;
/// a large body is a slice of it and does keep it, until it is dropped.
#[test]
fn small_frames_do_not_pin_the_callers_buffer() {
    let mut v = Victim::new(quiet_config());
    v.auto_read = false;
    v.frame(window_update(1, Flags::SYN, 0), &[]);
    v.poll();
    const CAP: usize = 64 * 1024;
    let mut held = BytesMut::with_capacity(CAP);
    for round in 0..50u8 {
        for _ in 0..16 {
            held.extend_from_slice(&frame(data_header(1, Flags::NONE, 256), &[round; 256]));
        }
        v.conn.handle_input_buf(v.now, &mut held);
        assert!(held.is_empty());
        assert!(held.try_reclaim(CAP), "round {round}: small frames pinned the buffer");
    }
    assert!(!v.conn.is_closed());
    let large = pattern(20_000, 32);
    held.extend_from_slice(&frame(data_header(1, Flags::NONE, large.len() as u32), &large));
    v.conn.handle_input_buf(v.now, &mut held);
    // The unread small bytes come first, copied; then the large body.
    let mut small = Vec::new();
    let body = loop {
        match v.conn.read(StreamId(1), usize::MAX) {
            Ok(Some(piece)) if piece.len() == large.len() => break piece,
            Ok(Some(piece)) => small.extend_from_slice(&piece),
            other => panic!("expected the large body, got {other:?}"),
        }
    };
    assert_eq!(small, (0..50u8).flat_map(|r| [r; 16 * 256]).collect::<Vec<_>>());
    assert_eq!(body, large);
    assert!(!held.try_reclaim(CAP), "the large body is a slice of the buffer");
    drop(body);
    assert!(held.try_reclaim(CAP), "dropped, it frees the buffer");
}

#[test]
fn frames_for_unknown_and_closed_streams_are_discarded_without_answer() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 17);
    v.healthy_stream(HEALTHY, &healthy);
    // Stream 3 lives and ends normally, and is forgotten.
    v.frame(data_header(3, Flags::SYN.with(Flags::FIN), 2), b"hi");
    v.conn.close_write(StreamId(3)).unwrap();
    v.transmit();
    let events = v.poll();
    assert!(events.contains(&Event::StreamClosed { id: StreamId(3) }));
    let before = v.conn.stats().clone();
    // Unknown ids (never opened, either parity) and the closed one: every
    // kind of stream frame except a SYN.
    let mut n = 0;
    for id in [3, 5, 1001, 2, 4, u32::MAX] {
        for header in [
            data_header(id, Flags::NONE, 4),
            data_header(id, Flags::FIN, 0),
            data_header(id, Flags::RST, 0),
            window_update(id, Flags::NONE, 1000),
            window_update(id, Flags::ACK, 0),
            window_update(id, Flags::RST, 7),
        ] {
            let body = vec![b'z'; header.body_len() as usize];
            v.frame(header, &body);
            n += 1;
        }
    }
    assert!(!v.conn.is_closed());
    assert!(v.poll().is_empty(), "no event for a stream we do not know");
    assert!(v.transmit().is_empty(), "never answered with RST");
    let stats = v.conn.stats();
    assert_eq!(stats.frames_discarded - before.frames_discarded, n);
    assert_eq!(stats.resets_received, before.resets_received, "not counted as resets");
    assert_eq!(stats.data_received - before.data_received, 6 * 4, "their bytes are accounted");
    assert_eq!(v.conn.stream_count(), 1);
    v.finish_healthy(HEALTHY, &healthy);
}

#[test]
fn data_after_fin_is_a_protocol_error() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 18);
    v.healthy_stream(HEALTHY, &healthy);
    v.frame(data_header(3, Flags::SYN, 5), b"first");
    v.frame(data_header(3, Flags::FIN, 0), &[]);
    // An empty frame after FIN carries no data: tolerated.
    v.frame(data_header(3, Flags::NONE, 0), &[]);
    assert!(!v.conn.is_closed());
    v.frame(data_header(3, Flags::NONE, 5), b"later");
    let reason = CloseReason::Protocol(ProtocolError::DataAfterFin(StreamId(3)));
    v.assert_failed(reason, Some(PROTOCOL_ERROR), (HEALTHY, &healthy));
    let id = StreamId(3);
    assert_eq!(
        v.stream_events(3),
        vec![
            Event::StreamOpened { id },
            Event::Readable { id },
            Event::PeerHalfClosed { id },
            Event::StreamReset { id, reason: ResetReason::ConnectionClosed(reason) },
            Event::StreamClosed { id },
        ],
    );
    assert_eq!(v.received[&id], b"first", "the data before FIN is read, nothing after it");
}

#[test]
fn duplicate_syn_is_stream_id_reused() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 19);
    v.healthy_stream(HEALTHY, &healthy);
    v.frame(data_header(3, Flags::SYN, 3), b"one");
    v.poll();
    v.frame(data_header(3, Flags::SYN, 3), b"two");
    v.assert_failed(
        CloseReason::Protocol(ProtocolError::StreamIdReused(StreamId(3))),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
    assert_eq!(v.received[&StreamId(3)], b"one");
}

#[test]
fn syn_reusing_a_forgotten_id_is_stream_id_reused() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 20);
    v.healthy_stream(HEALTHY, &healthy);
    v.frame(data_header(3, Flags::SYN.with(Flags::FIN), 0), &[]);
    v.conn.close_write(StreamId(3)).unwrap();
    v.transmit();
    assert!(v.poll().contains(&Event::StreamClosed { id: StreamId(3) }));
    v.frame(data_header(3, Flags::SYN, 0), &[]);
    v.assert_failed(
        CloseReason::Protocol(ProtocolError::StreamIdReused(StreamId(3))),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

#[test]
fn the_largest_client_id_cannot_be_reused_once_forgotten() {
    // Opened and reset from the top down, one id more than the victim keeps
    // individually (max_streams + 1,024), slowly enough to stay under the
    // rapid-reset limit: the last one pushes the floor of used ids past
    // them all, and past u32::MAX.
    let config = {
        let mut c = quiet_config();
        c.max_streams = 4;
        c
    };
    let mut v = Victim::new(config);
    let healthy = pattern(100, 22);
    v.healthy_stream(HEALTHY, &healthy);
    for k in 0..4 + 1_024 + 1 {
        v.frame(window_update(u32::MAX - 2 * k, Flags::SYN.with(Flags::RST), 0), &[]);
        if k % 500 == 499 {
            v.advance(Duration::from_secs(2));
        }
    }
    v.poll();
    assert_eq!(v.conn.close_reason(), None, "an honest (if odd) peer so far");
    v.frame(window_update(u32::MAX, Flags::SYN, 0), &[]);
    v.assert_failed(
        CloseReason::Protocol(ProtocolError::StreamIdReused(StreamId(u32::MAX))),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

#[test]
fn wrong_parity_syn_is_invalid_stream_id() {
    for bad in [2u32, 0] {
        let mut v = Victim::new(quiet_config());
        let healthy = pattern(100, 21);
        v.healthy_stream(HEALTHY, &healthy);
        // We are the server: even ids are ours to open; 0 is the session.
        v.frame(window_update(bad, Flags::SYN, 0), &[]);
        v.assert_failed(
            CloseReason::Protocol(ProtocolError::InvalidStreamId(StreamId(bad))),
            Some(PROTOCOL_ERROR),
            (HEALTHY, &healthy),
        );
    }
}

#[test]
fn unknown_frame_type_is_a_frame_error() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 22);
    v.healthy_stream(HEALTHY, &healthy);
    let mut raw = data_header(HEALTHY, Flags::NONE, 0).encode();
    raw[1] = 7;
    v.feed(&raw);
    v.assert_failed(
        CloseReason::Protocol(ProtocolError::Frame(FrameError::UnknownType(7))),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

#[test]
fn bad_version_is_a_frame_error() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 23);
    v.healthy_stream(HEALTHY, &healthy);
    let mut input = Header::ping(Flags::SYN, 1).encode().to_vec();
    input[0] = 1;
    // A valid ping after the bad frame in the same input is not answered.
    input.extend_from_slice(&Header::ping(Flags::SYN, 2).encode());
    v.feed(&input);
    v.assert_failed(
        CloseReason::Protocol(ProtocolError::Frame(FrameError::UnsupportedVersion(1))),
        Some(PROTOCOL_ERROR),
        (HEALTHY, &healthy),
    );
}

// ---------------------------------------------------------------------------
// Resets and go-away from the peer.

#[test]
fn rst_with_nonzero_length_is_tolerated() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 24);
    v.healthy_stream(HEALTHY, &healthy);
    // go-yamux puts an error code in a Window Update RST's length.
    v.frame(data_header(3, Flags::SYN, 4), b"data");
    v.frame(window_update(3, Flags::RST, 42), &[]);
    // A Data RST's length is a body: it is skipped, not charged to the window.
    v.frame(data_header(5, Flags::SYN, 4), b"more");
    v.frame(data_header(5, Flags::RST, 6), b"ignore");
    v.poll();
    assert!(!v.conn.is_closed());
    assert!(v.transmit().iter().all(|(h, _)| !h.flags.contains(Flags::RST)), "RST not answered");
    for (id, data, code) in [(3, &b"data"[..], 42), (5, &b"more"[..], 0)] {
        let sid = StreamId(id);
        assert_eq!(
            v.stream_events(id),
            vec![
                Event::StreamOpened { id: sid },
                Event::Readable { id: sid },
                Event::StreamReset { id: sid, reason: ResetReason::Remote { code } },
                Event::StreamClosed { id: sid },
            ],
        );
        assert_eq!(v.received[&sid], data, "data received before the reset is read first");
    }
    assert_eq!(v.conn.stats().resets_received, 2);
    v.finish_healthy(HEALTHY, &healthy);
}

#[test]
fn go_away_with_error_code_closes_with_remote_go_away() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 25);
    v.healthy_stream(HEALTHY, &healthy);
    v.frame(Header::go_away(2), &[]);
    // Repeated go-aways are ignored.
    v.frame(Header::go_away(1), &[]);
    assert!(v.poll().contains(&Event::GoAwayReceived { code: GoAwayCode::InternalError }));
    assert_eq!(v.conn.remote_go_away(), Some(GoAwayCode::InternalError));
    // The peer said goodbye: we send no Go Away of our own.
    v.assert_failed(
        CloseReason::RemoteGoAway(GoAwayCode::InternalError),
        None,
        (HEALTHY, &healthy),
    );
}

#[test]
fn normal_go_away_lets_streams_finish_and_refuses_our_opens() {
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 26);
    v.healthy_stream(HEALTHY, &healthy);
    v.frame(Header::go_away(0), &[]);
    assert_eq!(v.poll(), vec![Event::GoAwayReceived { code: GoAwayCode::Normal }]);
    assert_eq!(v.conn.open(), Err(yamux_proto::OpenError::RemoteGoingAway));
    v.finish_healthy(HEALTHY, &healthy);
}

// ---------------------------------------------------------------------------
// Peers that stop reading or stop writing.

#[test]
fn peer_not_reading_with_huge_window_keeps_send_buffer_bounded() {
    let config = {
        let mut c = quiet_config();
        c.max_send_buffer = 64 * 1024;
        c.max_connection_send_buffer = 256 * 1024;
        c
    };
    let (per_stream, per_conn) = (config.max_send_buffer, config.max_connection_send_buffer);
    let mut v = Victim::new(config);
    // Eight streams, each granted (almost) 4 GiB of credit on its SYN: credit
    // never limits us, only our own buffers do.
    let ids: Vec<u32> = (0..8).map(|i| 1 + 2 * i).collect();
    for &id in &ids {
        v.frame(window_update(id, Flags::SYN, u32::MAX - DEFAULT_WINDOW), &[]);
    }
    v.frame(data_header(1, Flags::NONE, 5), b"hello");
    v.poll();
    // The application writes as much as it is allowed; the attacker does not
    // read the transport, so `poll_transmit` is never called.
    let chunk = vec![7u8; 100 * 1024];
    let heap_before = live_heap();
    let mut accepted = BTreeMap::new();
    for _ in 0..10 {
        for &id in &ids {
            let n = v.conn.send(StreamId(id), &chunk).unwrap();
            *accepted.entry(id).or_insert(0) += n;
            assert!(v.conn.stream_info(StreamId(id)).unwrap().send_buffered <= per_stream);
            assert!(v.conn.send_buffered() <= per_conn);
        }
    }
    let total: usize = accepted.values().sum();
    assert_eq!(total, per_conn, "the connection bound caps what is accepted");
    assert_eq!(v.conn.send_buffered(), per_conn);
    assert!(accepted.values().all(|&n| n <= per_stream));
    let heap_growth = live_heap() - heap_before;
    assert!(heap_growth < (2 * per_conn) as isize, "{heap_growth} bytes held for {per_conn}");
    // Blocked streams are told nothing until space frees.
    assert!(!v.poll().iter().any(|e| matches!(e, Event::Writable { .. })));

    // The transport drains: every stream that fell short hears Writable once,
    // and may write again.
    let mut drained = 0;
    while let Some(t) = v.conn.poll_transmit() {
        drained += t.len();
        v.check();
    }
    assert!(drained >= total);
    assert_eq!(v.conn.send_buffered(), 0);
    let writable: Vec<StreamId> = v
        .poll()
        .into_iter()
        .filter_map(|e| match e {
            Event::Writable { id } => Some(id),
            _ => None,
        })
        .collect();
    let mut sorted = writable.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), writable.len(), "Writable once per shortfall: {writable:?}");
    assert_eq!(sorted, ids.iter().map(|&id| StreamId(id)).collect::<Vec<_>>());
    let share = per_conn / ids.len();
    for &id in &ids {
        assert_eq!(v.conn.send(StreamId(id), &chunk[..share]).unwrap(), share);
    }
    assert_eq!(v.conn.send(StreamId(1), b"more").unwrap(), 0, "the connection bound again");
    // The healthy data received while we were blocked was delivered.
    assert_eq!(v.received[&StreamId(1)], b"hello");
}

#[test]
fn half_written_header_then_silence_ends_with_keep_alive_timeout() {
    let config = {
        let mut c = Config::default();
        c.max_stream_window = DEFAULT_WINDOW;
        c
    };
    let (interval, timeout) = (config.keep_alive_interval.unwrap(), config.ping_timeout);
    let mut v = Victim::new(config);
    let healthy = pattern(100, 27);
    v.healthy_stream(HEALTHY, &healthy);
    v.feed(&data_header(HEALTHY, Flags::NONE, 10).encode()[..5]);
    // The keep-alive ping goes out; the answer can never be parsed, since it
    // would have to follow the unfinished frame.
    v.advance(interval);
    let frames = v.transmit();
    assert_eq!(
        frames.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
        vec![Header::ping(Flags::SYN, 0)]
    );
    v.advance(timeout - Duration::from_millis(1));
    assert!(!v.conn.is_closed());
    v.advance(Duration::from_millis(1));
    assert_eq!(v.now - v.start, interval + timeout, "closed at the ping deadline exactly");
    // A dead peer gets no Go Away.
    v.assert_failed(CloseReason::KeepAliveTimeout, None, (HEALTHY, &healthy));
}

#[test]
fn slowly_trickled_body_ends_with_keep_alive_timeout() {
    // The slowloris variant: a complete header announcing a large body, the
    // body one byte at a time, each just before any idle timer would fire.
    let config = {
        let mut c = Config::default();
        c.max_stream_window = DEFAULT_WINDOW;
        c
    };
    let limit = config.keep_alive_interval.unwrap() + config.ping_timeout;
    let mut v = Victim::new(config);
    let healthy = pattern(100, 28);
    v.healthy_stream(HEALTHY, &healthy);
    v.feed(&data_header(HEALTHY, Flags::NONE, 1000).encode());
    let mut trickled = 0;
    while !v.conn.is_closed() {
        v.feed(b"x");
        trickled += 1;
        v.transmit(); // the attacker reads our pings, but cannot answer them in time
        v.advance(Duration::from_secs(1));
        assert!(v.now - v.start <= limit + Duration::from_secs(1));
    }
    assert!(trickled < 1000);
    v.assert_failed(CloseReason::KeepAliveTimeout, None, (HEALTHY, &healthy));
}

#[test]
fn open_reset_cycles_while_not_reading_keep_the_control_queue_bounded() {
    // The ACK owed to each stream the peer opens waits in the control queue;
    // when the peer resets the stream first and never reads our output,
    // those entries must not accumulate.
    let config = quiet_config();
    let window = config.rapid_reset_window;
    let limit = config.max_rapid_resets;
    let mut v = Victim::new(config);
    let healthy = pattern(100, 29);
    v.healthy_stream(HEALTHY, &healthy);
    v.transmit();
    let mut id = 3;
    // Windows at just under the rapid-reset rate; the attacker never reads,
    // so `poll_transmit` is not called.
    let mut windows = |v: &mut Victim, n: usize| {
        for _ in 0..n {
            let mut raw = Vec::new();
            for _ in 0..limit - 1 {
                raw.extend(wire(window_update(id, Flags::SYN, 0), &[]));
                raw.extend(wire(window_update(id, Flags::RST, 0), &[]));
                id += 2;
            }
            v.feed_chunked(&raw);
            v.poll();
            v.events.clear(); // the test's own record must not count
            v.advance(window);
        }
    };
    // Warm-up: queues reach the size one window's input needs (events are
    // drained once per window, so their queue holds a window's worth).
    windows(&mut v, 3);
    let heap_before = live_heap();
    windows(&mut v, 60);
    assert!(!v.conn.is_closed());
    // A leak of the ACK entries would grow by thousands of bytes a window
    // (999 streams each). What may happen once, at a random window: the
    // stream index keeps neighbouring ids in neighbouring buckets, so
    // hashbrown leaves tombstones and can double once (2048 -> 4096
    // buckets, 18 KiB) before it settles into rehashing in place.
    let heap_growth = live_heap() - heap_before;
    assert!(heap_growth < 40 * 1024, "{heap_growth} heap bytes more after 60 more windows");
    // Nothing is owed to the peer: the reset streams need no frame.
    let owes_output = v.conn.has_pending_output();
    assert!(v.transmit().is_empty());
    assert!(!owes_output, "has_pending_output() claims a frame that poll_transmit never gives");
}

#[test]
fn streams_refused_by_the_application_while_not_reading_stay_bounded() {
    // `Event::StreamOpened` says "reset it to refuse": an application with a
    // policy of refusing (say, over its own quota) resets every stream the
    // attacker opens. The attacker opens stream after stream and never
    // reads, so each refusal's RST waits in our output.
    let mut v = Victim::new(quiet_config());
    let healthy = pattern(100, 31);
    v.healthy_stream(HEALTHY, &healthy);
    let mut id = 3;
    let mut round = |v: &mut Victim, n: usize| {
        for _ in 0..n {
            let mut raw = Vec::new();
            // Fewer than max_streams per input: the application, not the
            // core's stream limit, refuses them.
            for _ in 0..200 {
                raw.extend(wire(window_update(id, Flags::SYN, 0), &[]));
                id += 2;
            }
            v.feed_chunked(&raw);
            while let Some(event) = v.conn.poll_event() {
                if let Event::StreamOpened { id } = event {
                    v.conn.reset(id).unwrap();
                }
            }
            v.check();
        }
    };
    round(&mut v, 3); // warm-up: queues sized for one round's input
    let heap_before = live_heap();
    round(&mut v, 250);
    let heap_growth = live_heap() - heap_before;
    // Refusing a stream before our ACK went out counts against
    // max_pending_refusals, like the core's own refusals: past it, the
    // connection ends with the typed flood reason instead of queueing RSTs.
    assert_eq!(v.conn.close_reason(), Some(CloseReason::Flood(FloodError::RefusedStreams)));
    assert!(heap_growth < 64 * 1024, "{heap_growth} heap bytes more after the refusals");
    assert_eq!(v.received[&StreamId(HEALTHY)], healthy, "accepted data still delivered");
}

// ---------------------------------------------------------------------------
// Input after the end: a closed connection holds nothing for its peer.

/// Each way the connection can close on the peer's word: a fatal frame, a
/// bad version, a peer Go Away (protocol error).
fn closing_frames() -> Vec<(Vec<u8>, CloseReason)> {
    let mut bad_version = wire(window_update(3, Flags::SYN, 0), &[]);
    bad_version[0] = 1;
    vec![
        (
            wire(window_update(2, Flags::SYN, 0), &[]),
            CloseReason::Protocol(ProtocolError::InvalidStreamId(StreamId(2))),
        ),
        (
            bad_version,
            CloseReason::Protocol(ProtocolError::Frame(FrameError::UnsupportedVersion(1))),
        ),
        (
            wire(Header::go_away(PROTOCOL_ERROR), &[]),
            CloseReason::RemoteGoAway(GoAwayCode::ProtocolError),
        ),
    ]
}

#[test]
fn input_after_close_is_dropped_and_counted_through_every_input_api() {
    const CHUNK: usize = 64 * 1024;
    const TOTAL: usize = 16 << 20;
    let garbage = vec![0u8; CHUNK];
    for (closing, reason) in closing_frames() {
        for api in ["handle_input", "handle_input_buf", "input_buffer"] {
            let mut v = Victim::new(quiet_config());
            let healthy = pattern(100, 23);
            v.healthy_stream(HEALTHY, &healthy);
            v.feed(&closing);
            v.poll();
            assert_eq!(v.conn.close_reason(), Some(reason), "{api}");
            let (received, discarded) =
                (v.conn.stats().bytes_received, v.conn.stats().bytes_discarded);
            // The drive loop cannot flush its Go Away (say the peer stopped
            // reading) and keeps reading the transport meanwhile.
            let mut buf = BytesMut::with_capacity(CHUNK);
            let heap_before = live_heap();
            for _ in 0..TOTAL / CHUNK {
                match api {
                    "handle_input" => v.conn.handle_input(v.now, &garbage),
                    "handle_input_buf" => {
                        buf.extend_from_slice(&garbage);
                        v.conn.handle_input_buf(v.now, &mut buf);
                        assert!(buf.is_empty(), "the caller's buffer is emptied");
                    }
                    _ => {
                        let input = v.conn.input_buffer();
                        input.reserve(CHUNK);
                        input.extend_from_slice(&garbage);
                        v.conn.process_input(v.now);
                    }
                }
            }
            let heap_growth = live_heap() - heap_before;
            assert!(heap_growth <= 2 * CHUNK as isize, "{api}: {heap_growth} heap bytes held");
            let stats = v.conn.stats();
            assert_eq!(stats.bytes_received, received, "{api}: nothing more taken in");
            assert_eq!(stats.bytes_discarded - discarded, TOTAL as u64, "{api}: all counted");
            assert_eq!(v.received[&StreamId(HEALTHY)], healthy);
        }
    }
}

#[test]
fn the_rest_of_an_input_after_the_closing_frame_is_dropped_not_held() {
    const REST: usize = 1 << 20;
    let mut closings = closing_frames();
    // The frame that completes a drain: our go-away is out, and the peer's
    // RST ends the last stream.
    closings.push((wire(window_update(HEALTHY, Flags::RST, 0), &[]), CloseReason::Drained));
    for (closing, reason) in closings {
        for cut in [closing.len(), closing.len() + 5_000] {
            let mut v = Victim::new(quiet_config());
            let healthy = pattern(100, 29);
            v.healthy_stream(HEALTHY, &healthy);
            if reason == CloseReason::Drained {
                v.conn.go_away(GoAwayCode::Normal);
                v.transmit();
            }
            let before = v.conn.stats().bytes_received;
            let mut input = closing.clone();
            // The rest: the start of a large Data frame, as a peer would send.
            input.extend(wire(data_header(HEALTHY, Flags::NONE, 200_000), &[]));
            input.resize(closing.len() + REST, 7);
            let heap_before = live_heap();
            // One input, or the closing frame split across two.
            v.feed(&input[..cut]);
            v.feed(&input[cut..]);
            v.poll();
            let heap_growth = live_heap() - heap_before;
            assert_eq!(v.conn.close_reason(), Some(reason));
            assert!(heap_growth < 128 * 1024, "{reason:?}: {heap_growth} heap bytes held");
            let stats = v.conn.stats();
            // A frame that decoded counts as received; a malformed header
            // is dropped with the rest.
            let decoded = stats.bytes_received - before;
            assert!(decoded == closing.len() as u64 || decoded == 0, "{reason:?}: {decoded}");
            assert_eq!(stats.bytes_discarded, input.len() as u64 - decoded, "{reason:?}");
        }
    }
}
