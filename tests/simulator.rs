//! Deterministic simulation: thousands of seeded runs of two connections,
//! a virtual network and random applications (see `tests/sim/mod.rs` for
//! the model and every property checked).
//!
//! A failing seed prints the one command that replays it with a trace:
//!
//! ```text
//! SIM_SEED=1234 cargo test --test simulator -- replay --nocapture
//! ```
//!
//! `SIM_SEEDS=n` changes how many seeds each of the four batches runs
//! (default 750, so 3000 in all).

mod common;
mod sim;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use sim::Trace;

/// Seeds per batch unless `SIM_SEEDS` says otherwise.
const DEFAULT_SEEDS_PER_BATCH: u64 = 750;

fn seeds_per_batch() -> u64 {
    std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEEDS_PER_BATCH)
}

/// What every batch of seeds must reach at least once: otherwise the
/// workload has drifted and the simulator checks less than it claims.
const MUST_COVER: &[&str] = &[
    "event: StreamOpened",
    "event: Data",
    "event: HalfClosed",
    "event: CreditsReturned",
    "event: Writable",
    "event: OpenUnblocked",
    "event: Pong",
    "event: GoAwayReceived",
    "reset: remote",
    "reset: refused",
    "reset: connection closed",
    "closed: drained",
    "closed: local close",
    "closed: transport closed",
    "closed: keep-alive timeout",
    "open: blocked",
    "open: too many streams",
    "command: reset",
    "command: stop_reading",
    "command: go_away mid-run",
];

/// Runs seeds `batch * n .. (batch + 1) * n`; on the first failure, panics
/// with the command that replays it. Then checks the batch's coverage.
fn run_batch(batch: u64) {
    let n = seeds_per_batch();
    let (mut steps, mut lost) = (0, 0);
    let mut coverage: BTreeMap<&str, u64> = BTreeMap::new();
    for seed in batch * n..(batch + 1) * n {
        match catch_unwind(AssertUnwindSafe(|| sim::run(seed, Trace::Off))) {
            Ok(outcome) => {
                steps += outcome.steps;
                lost += outcome.lost_writables;
                for (k, v) in outcome.coverage {
                    *coverage.entry(k).or_insert(0) += v;
                }
            }
            Err(_) => panic!(
                "simulation seed {seed} failed (message above); replay it with:\n    \
                 SIM_SEED={seed} cargo test --test simulator -- replay --nocapture"
            ),
        }
    }
    println!("batch {batch}: {n} seeds, {steps} steps, {lost} Writable events lost (known bug)");
    println!("batch {batch}: coverage {coverage:?}");
    if n >= 500 {
        for key in MUST_COVER {
            assert!(coverage.contains_key(key), "batch {batch} never reached {key:?}");
        }
    }
}

#[test]
fn seeds_batch_0() {
    run_batch(0);
}

#[test]
fn seeds_batch_1() {
    run_batch(1);
}

#[test]
fn seeds_batch_2() {
    run_batch(2);
}

#[test]
fn seeds_batch_3() {
    run_batch(3);
}

/// With `SIM_SEED` set: replays that seed and prints its trace. Without:
/// checks determinism, running one seed twice (the core's hash maps get
/// different random keys each time) and comparing the full traces.
#[test]
fn replay() {
    match std::env::var("SIM_SEED") {
        Ok(s) => {
            let seed: u64 = s.trim().parse().expect("SIM_SEED must be an integer");
            // The trace is printed as the run goes, so a failing seed shows
            // everything up to the failed check.
            let outcome = sim::run(seed, Trace::Print);
            println!(
                "seed {seed} passed: {} steps, {:?} virtual, {:?} streams opened, \
                 {:?} bytes written, reasons {:?}",
                outcome.steps, outcome.elapsed, outcome.streams, outcome.written, outcome.reasons
            );
        }
        Err(_) => {
            for seed in [7, 1234, 99_991] {
                let a = sim::run(seed, Trace::Collect);
                let b = sim::run(seed, Trace::Collect);
                assert!(!a.trace.is_empty());
                assert_eq!(a, b, "seed {seed} is not deterministic");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Deterministic reproductions of what the simulator found, one scenario each.

use std::time::{Duration, Instant};

use common::{Pair, Side};
use yamux_proto::frame::{Flags, Header};
use yamux_proto::{Config, Connection, Event, Role, StreamId, DEFAULT_WINDOW};

fn writable_events(conn: &mut Connection) -> Vec<StreamId> {
    let mut ids = Vec::new();
    while let Some(event) = conn.poll_event() {
        if let Event::Writable { id } = event {
            ids.push(id);
        }
    }
    ids
}

/// Found by the simulator (seed 1081 before the workaround in
/// `Sim::lost_writable`): a stream held back by the connection-wide send
/// bound is woken only when data is transmitted, not when a reset drops
/// another stream's buffer. An application that waits for `Writable`, as
/// documented, waits forever.
#[test]
#[ignore = "core bug: Writable is lost when a reset (local or remote) frees the connection's \
            send buffer: reset_stream lowers send_buffered_total without waking send_blocked"]
fn writable_follows_space_freed_by_a_reset() {
    for remote in [false, true] {
        let config = Config {
            max_send_buffer: 1024,
            max_connection_send_buffer: 1024,
            keep_alive_interval: None,
            max_stream_window: DEFAULT_WINDOW,
            ..Config::default()
        };
        let t0 = Instant::now();
        let mut conn = Connection::new(config, Role::Client, t0).unwrap();
        let (a, b) = (conn.open().unwrap(), conn.open().unwrap());
        assert_eq!(conn.send(a, &[1; 1024]).unwrap(), 1024, "a fills the connection's buffer");
        assert_eq!(conn.send(b, &[2; 10]).unwrap(), 0, "b is held by the connection bound");
        assert!(writable_events(&mut conn).is_empty());
        if remote {
            conn.handle_input(t0, &Header::window_update(a, Flags::RST, 0).encode());
        } else {
            conn.reset(a).unwrap();
        }
        assert_eq!(conn.send_buffered(), 0, "the reset freed the whole buffer");
        let mut woken = writable_events(&mut conn);
        while conn.poll_transmit().is_some() {}
        woken.extend(writable_events(&mut conn));
        assert_eq!(woken, vec![b], "remote reset: {remote}");
        assert_eq!(conn.send(b, &[2; 10]).unwrap(), 10);
    }
}

/// Found by the simulator's credit check: with window auto-tuning on the
/// receiving side, the growth of the window is granted in the same Window
/// Update as consumed credit, and the sender reports all of it as
/// `CreditsReturned` and counts it in `StreamInfo::uncredited`. The sender
/// then believes the peer consumed data it has not, which also breaks the
/// stop-reading rule (RST only once everything sent was credited back).
#[test]
#[ignore = "core bug: window growth is reported as returned credit (CreditsReturned, \
            StreamInfo::uncredited), so credit 'returned' exceeds what the peer consumed"]
fn credits_returned_never_exceed_what_the_peer_consumed() {
    let client = Config { keep_alive_interval: None, ..Config::default() };
    // The server grows its windows (max_stream_window > initial).
    let server = Config { keep_alive_interval: None, ..Config::default() };
    let mut p = Pair::with_configs(client, server);
    p.delay = Duration::from_millis(10);
    p.advance(Duration::from_millis(50)); // start-up pings measure the RTT
    let id = p.conn(Side::Client).open().unwrap();
    let data = common::pattern(2 << 20, 3);
    let mut rest = &data[..];
    while !rest.is_empty() {
        let n = p.conn(Side::Client).send(id, rest).unwrap();
        rest = &rest[n..];
        p.advance(Duration::from_millis(1));
    }
    p.advance(Duration::from_millis(100));
    let consumed = p.server.received[&id].len() as u64; // auto-consumed on delivery
    assert_eq!(consumed, data.len() as u64);
    let credited: u64 = p
        .take_events(Side::Client)
        .iter()
        .map(|e| match e {
            Event::CreditsReturned { id: i, amount } if *i == id => u64::from(*amount),
            _ => 0,
        })
        .sum();
    let info = p.conn(Side::Client).stream_info(id).unwrap();
    assert!(credited <= consumed, "{credited} bytes credited back, {consumed} consumed");
    assert_eq!(info.uncredited, info.sent - credited);
}

/// The consequence for stop-reading (DESIGN §5, hashicorp/yamux#133): the
/// writer that stopped reading sends RST once `uncredited` reaches 0, which
/// window growth makes happen while the reader still holds unread data. A
/// hashicorp reader drops its buffered data on RST.
#[test]
#[ignore = "core bug: with window growth, stop_reading's RST goes out while the peer still \
            has unconsumed data (uncredited counts growth as consumption)"]
fn stop_reading_never_resets_before_the_peer_consumed_everything() {
    let client = Config { keep_alive_interval: None, ..Config::default() };
    let server = Config { keep_alive_interval: None, ..Config::default() };
    let mut p = Pair::with_configs(client, server);
    p.delay = Duration::from_millis(10);
    p.server.auto_consume = false;
    p.advance(Duration::from_millis(50));
    let id = p.conn(Side::Client).open().unwrap();
    let data = common::pattern(400 * 1024, 4);
    let mut rest = &data[..];
    // The server reads slowly but steadily; the client writes everything,
    // half-closes and stops reading (it only wanted to send).
    let mut consumed = 0usize;
    let mut closed = false;
    for _ in 0..200 {
        if !rest.is_empty() {
            let n = p.conn(Side::Client).send(id, rest).unwrap();
            rest = &rest[n..];
        }
        if rest.is_empty() && !closed {
            p.conn(Side::Client).close_write(id).unwrap();
            p.conn(Side::Client).stop_reading(id).unwrap();
            closed = true;
        }
        p.advance(Duration::from_millis(5));
        let received = p.server.received.get(&id).map_or(0, Vec::len);
        let reset = p.server.events.iter().any(|e| matches!(e, Event::StreamReset { .. }));
        if reset {
            assert_eq!(received, data.len(), "RST only after everything was received");
            assert_eq!(consumed, received, "RST arrived with {} bytes unread", received - consumed);
            return;
        }
        // Consume in 150 KiB steps, twice in quick succession: the second
        // update grows the window.
        let step = (received - consumed).min(150 * 1024);
        if step > 0 {
            p.conn(Side::Server).consume(id, step as u32).unwrap();
            consumed += step;
        }
    }
    panic!("the stream never ended: the client never reset it");
}
