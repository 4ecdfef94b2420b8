//! quickcheck properties of the core (issue 2, "How it is checked"):
//!
//! * any chunking of the same input bytes gives the same events;
//! * credits are conserved across random operation sequences, timeouts
//!   included (and every other invariant of the shared driver holds);
//! * random bytes never panic a connection, in either role, and its
//!   invariants hold;
//! * queues stay within the bounds of `Config` under hostile frames;
//! * the same operations give the same bytes and events (determinism).
//!
//! The operation sequences and their checks live in `tests/support/ops.rs`,
//! shared with the fuzz targets. A failing case is shrunk by quickcheck and
//! printed as a `Script`; `Script::encode` turns it into a `pair_ops` fuzz
//! input (`fuzz/regressions/pair_ops/`).
//!
//! Case counts are chosen so each property runs in a few seconds in a debug
//! build. Set `QUICKCHECK_TESTS` to run more.

mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use quickcheck::{Gen, QuickCheck, TestResult};
use yamux_proto::frame::{Flags, FrameType, Header};
use yamux_proto::{Config, Connection, Event, GoAwayCode, Role, StreamId};

use support::events::EventChecker;
use support::harness::{self, Chunker, InputFeeder};
use support::ops::{FrameSpec, Op, Script, Setup, Side, StreamRef, World};

/// Runs `prop` on `tests` cases (or `QUICKCHECK_TESTS`) of size `size`.
fn check<A: quickcheck::Testable>(tests: u64, size: usize, prop: A) {
    let tests =
        std::env::var("QUICKCHECK_TESTS").ok().and_then(|s| s.parse().ok()).unwrap_or(tests);
    QuickCheck::new().tests(tests).max_tests(tests * 10).rng(Gen::new(size)).quickcheck(prop);
}

// ---- chunking ----

/// Events normalised for chunking: reads may be split differently, so the
/// data is compared per stream, concatenated; each stream's events in order,
/// and the connection's own events in order. (A stream that ends when its
/// last byte is read reports `StreamClosed` at that read: where it falls
/// among other streams' events depends on when the chunks let it be read.)
#[derive(Debug, PartialEq, Eq)]
struct Normalised {
    data: BTreeMap<StreamId, Vec<u8>>,
    stream_events: BTreeMap<StreamId, Vec<Event>>,
    others: Vec<Event>,
    /// Every byte the connection transmitted, drained once at the end.
    output: Vec<u8>,
}

/// Replays `input` into a fresh connection in `role`, in the chunks `seed`
/// picks. The application drains events after every chunk and reads all
/// data, but transmits only at the end: what it transmits then depends on
/// its whole state, so comparing it compares the states too. (Transmitting
/// between chunks would return credit at chunk-dependent points, which is
/// the application's doing, not the core's.)
fn replay(input: &[u8], role: Role, config: &Config, seed: u8) -> Normalised {
    let t0 = Instant::now();
    let mut conn = Connection::new(config.clone(), role, t0).unwrap();
    let mut checker = EventChecker::new(role);
    let mut n = Normalised {
        data: BTreeMap::new(),
        stream_events: BTreeMap::new(),
        others: Vec::new(),
        output: Vec::new(),
    };
    let mut feeder = InputFeeder::new(u64::from(seed));
    for chunk in Chunker::new(seed).split(input) {
        feeder.feed(&mut conn, t0, chunk);
        while let Some(event) = conn.poll_event() {
            checker.on_event(&event).unwrap();
            match event {
                // How often a stream becomes readable depends on the
                // chunking; what it reads does not.
                Event::Readable { id } => {
                    while let Ok(Some(data)) = conn.read(id, usize::MAX) {
                        n.data.entry(id).or_default().extend_from_slice(&data);
                    }
                }
                other => match other.stream_id() {
                    Some(id) => n.stream_events.entry(id).or_default().push(other),
                    None => n.others.push(other),
                },
            }
        }
        conn.check_invariants().unwrap();
    }
    conn.write_transmits(&mut n.output, usize::MAX);
    n
}

/// A session's wire bytes, recorded from a random run, replayed into a
/// fresh connection with two different chunkings, give the same events and
/// the same output.
#[test]
fn any_chunking_of_a_recorded_session_gives_the_same_events() {
    fn prop(script: Script, seeds: (u8, u8)) -> TestResult {
        let world = World::run(&script);
        let config = script.setup.chunking_config();
        for side in Side::BOTH {
            let input = world.delivered(side);
            let a = replay(input, side.role(), &config, seeds.0);
            let b = replay(input, side.role(), &config, seeds.1);
            let whole = replay(input, side.role(), &config, 2);
            if a != b || a != whole {
                return TestResult::error(format!(
                    "{side:?}: chunkings {seeds:?} disagree on {} input bytes",
                    input.len()
                ));
            }
        }
        TestResult::passed()
    }
    check(150, 80, prop as fn(Script, (u8, u8)) -> TestResult);
}

/// Inside a live session, cutting every delivery into different chunk sizes
/// changes neither what either end transmits nor any event.
#[test]
fn chunking_inside_a_session_changes_nothing() {
    fn prop(script: Script, chunks: (u8, u8)) -> TestResult {
        let a = World::run_chunked(&script, usize::from(chunks.0 % 20) + 1).transcript();
        let b = World::run_chunked(&script, usize::from(chunks.1) * 97 + 1).transcript();
        if a != b {
            return TestResult::error("transcripts differ between chunkings");
        }
        TestResult::passed()
    }
    check(100, 80, prop as fn(Script, (u8, u8)) -> TestResult);
}

// ---- conservation and the driver's invariants ----

/// Random operation sequences on a pair, timers included: the driver checks
/// credit conservation across the pair, data integrity, event consistency
/// and the invariants of both ends after every operation.
#[test]
fn credits_are_conserved_across_random_operations() {
    fn prop(script: Script) -> bool {
        World::run(&script);
        true
    }
    check(400, 100, prop as fn(Script) -> bool);
}

/// Same, with timers always on and time passing often, so open, linger,
/// send-stall, keep-alive and go-away deadlines fire in the middle of
/// transfers.
#[test]
fn credits_are_conserved_through_timeouts() {
    fn prop(mut script: Script, gaps: Vec<u8>) -> bool {
        script.setup.timers = true;
        // Interleave time steps of up to ~0.25 s (the timers are 40-120 ms).
        let mut ops = Vec::new();
        for (i, op) in script.ops.iter().enumerate() {
            ops.push(*op);
            if let Some(g) = gaps.get(i).filter(|g| **g % 3 == 0) {
                ops.push(Op::Advance { millis: u16::from(*g), drive: g % 2 == 0 });
            }
        }
        script.ops = ops;
        World::run(&script);
        true
    }
    check(300, 100, prop as fn(Script, Vec<u8>) -> bool);
}

/// The checks above are not vacuous: a plain transfer script exercises the
/// cross-pair credit, delivery and FIN checks.
#[test]
fn the_driver_checks_actually_run() {
    let script = Script {
        setup: Setup::default(),
        ops: vec![
            Op::Open(Side::Client),
            Op::Send { side: Side::Client, stream: 0, len: 60_000 },
            Op::Flush,
            Op::Send { side: Side::Server, stream: 0, len: 5_000 },
            Op::CloseWrite { side: Side::Client, stream: 0 },
            Op::Flush,
        ],
    };
    let w = World::run(&script);
    assert!(w.coverage.credit_checks >= 4, "{:?}", w.coverage);
    assert!(w.coverage.delivery_checks >= 4, "{:?}", w.coverage);
    assert_eq!(w.coverage.fin_checks, 1, "{:?}", w.coverage);
    assert_eq!(w.coverage.bytes_checked, 65_000, "{:?}", w.coverage);
}

// ---- hostile input ----

/// Random bytes into a connection, both roles, any settings: no panic, the
/// invariants hold after every chunk and the connection ends cleanly.
#[test]
fn random_bytes_never_panic_a_connection() {
    fn prop(settings: u8, seed: u8, body: Vec<u8>) -> bool {
        let mut data = vec![settings, seed];
        data.extend_from_slice(&body);
        harness::connection(&data);
        true
    }
    check(400, 300, prop as fn(u8, u8, Vec<u8>) -> bool);
}

/// Random but well-framed frames (valid headers, any ids, flags and
/// lengths) reach much deeper than random bytes.
#[test]
fn random_frames_never_panic_a_connection() {
    fn prop(settings: u8, seed: u8, frames: Vec<FrameSpec>) -> bool {
        let mut data = vec![settings, seed];
        let known: Vec<StreamId> = (1..8).map(StreamId).collect();
        for f in &frames {
            data.extend_from_slice(&f.build(&known).0);
        }
        harness::connection(&data);
        true
    }
    check(300, 100, prop as fn(u8, u8, Vec<FrameSpec>) -> bool);
}

/// Random bytes into the frame decoder: same frames for any chunking, exact
/// re-encoding, the right error at the right place.
#[test]
fn the_decoder_agrees_with_itself_on_random_bytes() {
    fn prop(sel: u8, seed: u8, body: Vec<u8>) -> bool {
        let mut data = vec![sel, seed];
        data.extend_from_slice(&body);
        harness::decoder(&data);
        true
    }
    check(500, 200, prop as fn(u8, u8, Vec<u8>) -> bool);
}

/// Small bounds in `Config` and a hostile peer that opens, resets, pings,
/// floods and never reads our output: after every frame every bounded queue
/// is within its bound, and at most the bounded number of pongs and
/// refusals wait for transmission.
#[test]
fn queues_stay_within_config_bounds() {
    fn prop(frames: Vec<FrameSpec>, local: Vec<u8>, server: bool) -> TestResult {
        let setup = Setup { small_limits: true, ..Setup::default() };
        let config = setup.config();
        let role = if server { Role::Server } else { Role::Client };
        let t0 = Instant::now();
        let mut conn = Connection::new(config.clone(), role, t0).unwrap();
        let mut checker = EventChecker::new(role);
        let mut opened = Vec::new();
        let peer_ids: Vec<StreamId> = (0..12)
            .map(|i| StreamId(if server { 2 * i + 1 } else { 2 * i + 2 }))
            .chain(opened.iter().copied())
            .collect();
        for (i, f) in frames.iter().enumerate() {
            // Our application opens and fills streams now and then, so the
            // send-side bounds are exercised too.
            match local.get(i).map(|b| b % 8) {
                Some(0) => {
                    if let Ok(id) = conn.open() {
                        checker.opened_locally(id).unwrap();
                        opened.push(id);
                    }
                }
                Some(1) => {
                    for id in &opened {
                        let _ = conn.send(*id, &[1; 3000]);
                    }
                }
                _ => {}
            }
            let mut ids = peer_ids.clone();
            ids.extend(opened.iter().copied());
            let (bytes, _) = f.build(&ids);
            conn.handle_input(t0, &bytes);
            while let Some(event) = conn.poll_event() {
                if let Err(e) = checker.on_event(&event) {
                    return TestResult::error(e);
                }
            }
            if let Err(e) = conn.check_invariants() {
                return TestResult::error(format!("after frame {i} {f:?}: {e}"));
            }
            if conn.stream_count() > config.max_streams
                || conn.send_buffered() > config.max_connection_send_buffer
            {
                return TestResult::error(format!("after frame {i}: over a bound"));
            }
            for id in &opened {
                if let Some(info) = conn.stream_info(*id) {
                    if info.send_buffered > config.max_send_buffer {
                        return TestResult::error(format!("{id}: send buffer over its bound"));
                    }
                }
            }
        }
        // Now read what waited: pongs and refusals within their bounds.
        let (mut pongs, mut refusals) = (0, 0);
        let opened_by_peer: Vec<StreamId> = checker.stream_ids().collect();
        while let Some(t) = conn.poll_transmit() {
            let h = Header::decode(&t.header).unwrap();
            match h.frame_type {
                FrameType::Ping if h.flags.contains(Flags::ACK) => pongs += 1,
                FrameType::WindowUpdate | FrameType::Data
                    if h.flags.contains(Flags::RST) && !opened_by_peer.contains(&h.stream_id) =>
                {
                    refusals += 1
                }
                _ => {}
            }
        }
        if pongs > config.max_pending_pongs || refusals > config.max_pending_refusals {
            return TestResult::error(format!("{pongs} pongs and {refusals} refusals queued"));
        }
        TestResult::passed()
    }
    check(300, 120, prop as fn(Vec<FrameSpec>, Vec<u8>, bool) -> TestResult);
}

// ---- determinism ----

/// The same operations, run twice, transmit the same bytes and report the
/// same events.
#[test]
fn the_same_operations_give_the_same_bytes_and_events() {
    fn prop(script: Script) -> bool {
        World::run(&script).transcript() == World::run(&script).transcript()
    }
    check(150, 100, prop as fn(Script) -> bool);
}

// ---- the op encoding used for seed corpora ----

/// `Script::encode` is the exact inverse of the fuzz input decoding, so
/// hand-written scripts can be checked in as fuzz seeds.
#[test]
fn script_encoding_round_trips() {
    fn prop(script: Script) -> bool {
        let ops = script.ops.into_iter().take(Script::MAX_OPS).collect();
        let script = Script { ops, ..script };
        Script::from_bytes(&script.encode()) == script
    }
    check(300, 200, prop as fn(Script) -> bool);
}

/// Every byte string decodes to some script (fuzz inputs are never wasted)
/// and decoding is bounded.
#[test]
fn any_bytes_decode_to_a_bounded_script() {
    fn prop(bytes: Vec<u8>) -> bool {
        Script::from_bytes(&bytes).ops.len() <= Script::MAX_OPS.min(bytes.len())
    }
    check(300, 500, prop as fn(Vec<u8>) -> bool);
}

/// Hand-built hostile frames in the middle of a transfer end in the right
/// typed reason (or, for a valid frame, in nothing at all), and the driver's
/// checks still hold through them and through the final close.
#[test]
fn injected_frames_end_in_the_right_typed_reason() {
    use yamux_proto::{CloseReason, FrameError, ProtocolError};
    let id = StreamId(1);
    let cases: [(FrameSpec, Option<CloseReason>); 5] = [
        // Valid extra data within the window: accepted, nothing ends.
        (FrameSpec { kind: 0, flags: 0, stream: StreamRef::Known(0), length: 100 }, None),
        (
            FrameSpec { kind: 1, flags: 0, stream: StreamRef::Known(0), length: u32::MAX },
            Some(ProtocolError::CreditOverflow(id).into()),
        ),
        (
            FrameSpec { kind: 1, flags: Flags::SYN.0, stream: StreamRef::Known(0), length: 0 },
            Some(ProtocolError::StreamIdReused(id).into()),
        ),
        (
            FrameSpec { kind: 3, flags: 0, stream: StreamRef::Raw(0), length: 1 },
            Some(CloseReason::RemoteGoAway(GoAwayCode::ProtocolError)),
        ),
        (
            FrameSpec { kind: 4, flags: 0, stream: StreamRef::Raw(1), length: 0 },
            Some(ProtocolError::Frame(FrameError::UnknownType(4)).into()),
        ),
    ];
    for (frame, expected) in cases {
        let mut w = World::new(Setup::default());
        for op in [
            Op::Open(Side::Client),
            Op::Send { side: Side::Client, stream: 0, len: 1000 },
            Op::Flush,
            Op::Inject { to: Side::Server, frame },
            Op::Flush,
            Op::Send { side: Side::Client, stream: 0, len: 1000 },
            Op::Flush,
        ] {
            w.apply(&op);
        }
        let closed = w.events(Side::Server).iter().find_map(|e| match e {
            Event::ConnectionClosed { reason } => Some(*reason),
            _ => None,
        });
        assert_eq!(closed, expected, "{frame:?}");
        let data = w.bytes_read(Side::Server, id);
        // The first 1000 bytes always arrive; the rest only if nothing ended.
        let want = if expected.is_none() { 2100 } else { 1000 };
        assert_eq!(data, want, "{frame:?}");
        w.finish();
    }
}
