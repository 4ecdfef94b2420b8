//! Interop with hashicorp/yamux (Go), both yamux roles, over loopback TCP.
//!
//! The Go side is `tests/go-peer` (see its README for scenarios and output);
//! our side is a `Connection` driven by `tests/interop/driver.rs`. Every
//! scenario runs twice: Go as yamux server listening for us, and Go as yamux
//! client dialling us. Besides the outcome, the tests assert what hashicorp
//! put on the wire where the spec leaves room; `docs/interop.md` tabulates
//! these observations.
//!
//! The scenarios every peer shares (echo, many streams, bulk, half-close,
//! write-then-close, ping, go-away) run against hashicorp from
//! `interop_peers.rs`; this file holds hashicorp's own wire details and the
//! scenarios only the Go peer program has (resets, slow readers, larger
//! windows, backlog, stop-reading, keep-alive, unknown streams).

#[path = "interop/crate_peer.rs"]
mod crate_peer;
#[path = "interop/driver.rs"]
mod driver;
#[path = "interop/peer.rs"]
mod peer;
#[path = "interop/rust_yamux.rs"]
mod rust_yamux;
mod support;

use std::time::Duration;

use driver::{config, read_one_stream_slowly, Book, Driver, LIFE};
use peer::{Peer, PeerKind, PeerOutput, PeerRole, Setup};
use support::rng::Rng;
use yamux_proto::frame::{Flags, FrameType, Header};
use yamux_proto::{CloseReason, Event, GoAwayCode, OpenError, ResetReason, SendError, StreamId};

/// Runs `f` in both setups, as two tests.
macro_rules! both_setups {
    ($name:ident) => {
        mod $name {
            #[test]
            fn go_server_listens() {
                super::$name(super::Setup::PEER_SERVER);
            }
            #[test]
            fn go_client_dials() {
                super::$name(super::Setup::PEER_CLIENT);
            }
        }
    };
}

/// Starts the hashicorp peer (`tests/go-peer`).
fn start_go(setup: Setup, scenario: &str, extra: &[&str]) -> (Peer, std::net::TcpStream) {
    Peer::start(PeerKind::Hashicorp, setup, scenario, extra)
}

/// After the scenario: waits for the Go peer to close the session (it does
/// when its scenario ends), then closes ours and collects Go's output.
fn wait_for_go_close(drv: &mut Driver, go: Peer, book: &mut Book) -> PeerOutput {
    book.run(drv, "the Go peer to close the session", Duration::from_secs(10), |drv, _, _| drv.eof);
    // Hashicorp's Session.Close sends no GoAway: it just closes TCP.
    assert!(drv.wire_in.go_aways().is_empty(), "hashicorp sent GoAway on close");
    eprintln!("observed: Go closed TCP with {:?}", drv.transport_error);
    drv.finish(|_, _| {});
    let out = go.wait(Duration::from_secs(10));
    assert!(
        out.frames("in").get("bad") == "false",
        "Go could not parse our frames:\n{}",
        out.dump()
    );
    out
}

/// After our connection ended `Drained`: leaves the TCP connection open
/// until Go closes it. Closing first would cost data: hashicorp's
/// `Stream.Read` returns "session shutdown" instead of the bytes it still
/// buffers when the window update it wants to send cannot go out (see
/// docs/interop.md), so a drained transport must linger for the peer.
fn close_after_drained(drv: &mut Driver, go: Peer) -> PeerOutput {
    assert_eq!(drv.closed, Some(CloseReason::Drained));
    drv.run("the Go peer to close after our drain", Duration::from_secs(10), |drv, _| drv.eof);
    drv.finish(|_, _| {});
    go.wait(Duration::from_secs(10))
}

/// Closes our session (Go Away, TCP shutdown) and collects Go's output.
fn close_and_collect(drv: &mut Driver, go: Peer) -> PeerOutput {
    drv.close(|_, _| {});
    let out = go.wait(Duration::from_secs(10));
    assert!(
        out.frames("in").get("bad") == "false",
        "Go could not parse our frames:\n{}",
        out.dump()
    );
    out
}

/// What hashicorp puts on the wire for FIN and ACK, asserted wherever Go
/// half-closed or accepted streams (the docs/interop.md table).
fn assert_hashicorp_fin_and_ack(drv: &Driver) {
    let fins: Vec<_> = drv.wire_in.with_flag(Flags::FIN).collect();
    for f in &fins {
        assert!(
            f.is_window_update() && f.header.length == 0,
            "hashicorp FIN is a zero-length Window Update, saw {}",
            driver::describe(f)
        );
    }
    for f in drv.wire_in.with_flag(Flags::ACK) {
        assert!(
            f.is_window_update() || f.is_data(),
            "ACK rides on a stream frame, saw {}",
            driver::describe(f)
        );
    }
}

/// No frame we sent was larger than our `max_frame_size`, and nothing from
/// either side failed to decode.
fn assert_wire_sane(drv: &Driver) {
    assert!(drv.wire_in.bad.is_none(), "peer bytes did not decode: {:?}", drv.wire_in.bad);
    assert!(drv.wire_out.bad.is_none(), "our bytes did not decode: {:?}", drv.wire_out.bad);
    assert!(drv.wire_out.max_data_frame() <= config().max_frame_size);
    // We never answer frames for unknown streams with RST and send FIN once.
    let mut fins = std::collections::BTreeSet::new();
    for f in drv.wire_out.with_flag(Flags::FIN) {
        assert!(fins.insert(f.id()), "we sent FIN twice on stream {}", f.id());
    }
}

// ---------------------------------------------------------------------------
// Many concurrent streams, random write sizes, every byte verified.

/// We open 16 streams to Go's `echo`, write random amounts of pattern in
/// random-size writes, half-close, and verify every echoed byte.
fn we_open_many_echo_streams(setup: Setup) {
    const STREAMS: usize = 16;
    let (go, sock) = start_go(setup, "echo", &["-streams", &STREAMS.to_string()]);
    let mut drv = Driver::new("go echo", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(11);
    book.check_pattern = true;
    let mut rng = Rng::new(5);
    for _ in 0..STREAMS {
        let n = rng.range(1, 700_000);
        book.open(&mut drv, n, true);
    }
    book.run(&mut drv, "every echoed stream to close", Duration::from_secs(20), |_, b, _| {
        b.all_closed()
    });
    let out = wait_for_go_close(&mut drv, go, &mut book);

    for (id, r) in &book.streams {
        assert!(r.reset.is_none(), "stream {id} reset: {:?}", r.reset);
        assert!(r.peer_fin, "stream {id}: no FIN from Go");
        assert_eq!(r.recv, r.sent, "stream {id}: echoed length");
        assert_eq!(r.mismatch_at, None, "stream {id}: echoed bytes differ");
        assert_eq!(r.recv_fnv.0, r.sent_fnv.0, "stream {id}: echo checksum");
    }
    let lines = out.streams_with("echoed");
    assert_eq!(lines.len(), STREAMS, "{}", out.dump());
    for l in lines {
        let id = StreamId(l.int("stream") as u32);
        let r = &book.streams[&id];
        assert!(l.flag("ok"), "Go stream failed: {}", l.raw);
        assert_eq!(l.int("bytes") as u64, r.sent, "{}", l.raw);
        assert_eq!(l.get("fnv"), r.sent_fnv.hex(), "Go saw other bytes than we sent: {}", l.raw);
    }
    assert!(out.ok(), "{}", out.dump());
    assert_hashicorp_fin_and_ack(&drv);
    assert_wire_sane(&drv);
    // Hashicorp ACKs from AcceptStream, before it writes anything: the first
    // frame of a stream is a Window Update carrying ACK. But when our FIN
    // reached it before its application accepted, it never ACKs (the stream
    // left SYN-received for remote-close): the ACK is missing altogether,
    // and our side must treat any frame as establishing the stream.
    let mut unacked = 0;
    for id in book.streams.keys() {
        let first = *drv.wire_in.first(*id).expect("Go sent something on every stream");
        if first.has(Flags::ACK) {
            assert!(first.is_window_update(), "stream {id}: ACK on {}", driver::describe(&first));
        } else {
            unacked += 1;
            assert_eq!(drv.wire_in.stream(*id).filter(|f| f.has(Flags::ACK)).count(), 0);
            let our_fin = drv.wire_out.stream(*id).find(|f| f.has(Flags::FIN)).expect("our FIN");
            assert!(
                our_fin.at <= first.at,
                "stream {id}: no ACK although our FIN ({}) came after Go's first frame ({})",
                driver::describe(our_fin),
                driver::describe(&first)
            );
        }
    }
    // Credit comes back in Window Updates of at least half the window
    // (hashicorp waits until half of MaxStreamWindowSize was read).
    let updates: Vec<u32> = drv.wire_in.credit_updates().map(|r| r.header.length).collect();
    assert!(!updates.is_empty(), "Go returned no credit while echoing ~5 MiB");
    assert!(
        updates.iter().all(|&d| d >= yamux_proto::DEFAULT_WINDOW / 2),
        "hashicorp credit updates below half a window: {updates:?}"
    );
    // Hashicorp never pings on its own here (keep-alive is off in the peer),
    // except the echo scenario's barrier pings after each FIN.
    assert!(drv.wire_in.pings() <= STREAMS * 2);
    eprintln!(
        "observed: {unacked} of {STREAMS} streams never ACKed; go max data frame {} B, \
         credit updates min {} max {} B, pings {}",
        drv.wire_in.max_data_frame(),
        updates.iter().min().unwrap(),
        updates.iter().max().unwrap(),
        drv.wire_in.pings()
    );
}
both_setups!(we_open_many_echo_streams);

// ---------------------------------------------------------------------------
// Reset, both ways.

/// Go opens, writes 1000 bytes and reads; we reset. Go's Read fails with
/// "connection reset"; our RST is a zero-length Window Update.
fn we_reset_go_stream(setup: Setup) {
    let (go, sock) = start_go(setup, "reset", &["-bytes", "1000", "-deadline", "5s"]);
    let mut drv = Driver::new("we reset", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(4);
    let mut after_reset = None;
    book.run(
        &mut drv,
        "1000 bytes from Go, then our reset",
        Duration::from_secs(10),
        |drv, b, _| {
            if after_reset.is_none() {
                if let Some((&id, r)) = b.streams.iter().next() {
                    if r.recv == 1000 {
                        drv.conn.reset(id).unwrap();
                        after_reset = Some((id, drv.conn.send(id, b"late")));
                    }
                }
            }
            b.all_closed()
        },
    );
    let (id, late_send) = after_reset.unwrap();
    assert_eq!(late_send, Err(SendError::Reset(ResetReason::Local)));
    // A reset the application asked for is not reported back to it.
    assert_eq!(book.streams[&id].reset, None);
    let rst: Vec<_> = drv.wire_out.stream(id).filter(|f| f.has(Flags::RST)).collect();
    assert_eq!(rst.len(), 1);
    assert!(rst[0].is_window_update() && rst[0].header.length == 0);
    let out = wait_for_go_close(&mut drv, go, &mut book);
    let l = out.streams_with("read_err")[0];
    assert!(l.flag("ok") && l.flag("peer_rst"), "{}", out.dump());
    assert_eq!(l.get("read_err"), "connection reset", "{}", l.raw);
    assert!(!l.flag("read_fin"));
}
both_setups!(we_reset_go_stream);

/// We open and keep writing; Go reads 1000 bytes and resets (a raw RST
/// frame: hashicorp has no public reset). We see `StreamReset{Remote}`, and
/// transmit no data on the stream after the RST arrived.
fn go_resets_our_stream(setup: Setup) {
    let (go, sock) = start_go(setup, "go-reset", &["-streams", "1", "-bytes", "1000"]);
    let mut drv = Driver::new("go resets", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(5);
    book.max_write = 4096;
    let id = book.open(&mut drv, 2_000_000, true);
    let mut late_send = None;
    book.run(&mut drv, "Go's reset", Duration::from_secs(10), |drv, b, ev| {
        if let Some(Event::StreamReset { .. }) = ev {
            late_send = Some(drv.conn.send(id, b"late"));
        }
        b.all_closed()
    });
    let r = &book.streams[&id];
    assert_eq!(r.reset, Some(ResetReason::Remote { code: 0 }));
    assert!(matches!(late_send, Some(Err(SendError::Reset(ResetReason::Remote { code: 0 })))));
    let rst = *drv.wire_in.stream(id).find(|f| f.has(Flags::RST)).unwrap();
    assert!(rst.is_window_update() && rst.header.length == 0);
    let late: Vec<_> = drv.wire_out.stream(id).filter(|f| f.at > rst.at).collect();
    assert!(late.is_empty(), "we sent frames after the peer's RST: {late:?}");
    assert!(r.sent < 2_000_000, "the reset should have cut the transfer short");
    let out = wait_for_go_close(&mut drv, go, &mut book);
    let l = out.streams_with("rst_injected")[0];
    assert!(l.flag("ok") && l.flag("rst_injected"), "{}", out.dump());
}
both_setups!(go_resets_our_stream);

// ---------------------------------------------------------------------------
// Larger initial windows.

/// Go announces a 1 MiB window (`-window`): its ACK carries the extra
/// 768 KiB, and we use it (we send well past 256 KiB before Go returns credit).
fn go_announces_larger_window(setup: Setup) {
    const WINDOW: u32 = 1 << 20;
    const BYTES: u64 = 3 << 20;
    let (go, sock) = start_go(setup, "sink", &["-streams", "1", "-window", &WINDOW.to_string()]);
    let mut drv = Driver::new("go window 1 MiB", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(6);
    let id = book.open(&mut drv, BYTES, true);
    let mut max_credit = 0;
    book.run(&mut drv, "3 MiB into Go's sink", Duration::from_secs(15), |drv, b, _| {
        if let Some(info) = drv.conn.stream_info(id) {
            max_credit = max_credit.max(info.send_credit + info.uncredited as u32);
        }
        b.all_closed()
    });
    let ack = *drv.wire_in.first(id).unwrap();
    assert!(ack.is_window_update() && ack.has(Flags::ACK), "{}", driver::describe(&ack));
    assert_eq!(ack.header.length, WINDOW - yamux_proto::DEFAULT_WINDOW, "additive delta on ACK");
    let first_credit = drv.wire_in.credit_updates().find(|f| f.id() == id).unwrap().at;
    let before = drv.wire_out.data_before(id, first_credit);
    assert!(before > u64::from(yamux_proto::DEFAULT_WINDOW), "sent only {before} B before credit");
    assert!(before <= u64::from(WINDOW));
    assert!(max_credit <= WINDOW, "we assumed more credit ({max_credit}) than Go granted");
    let out = wait_for_go_close(&mut drv, go, &mut book);
    let l = out.streams_with("pattern")[0];
    assert!(l.flag("ok") && l.flag("pattern"), "{}", out.dump());
    assert_eq!(l.int("bytes") as u64, BYTES);
    assert_eq!(l.get("fnv"), book.streams[&id].sent_fnv.hex());
    let updates: Vec<u32> = drv.wire_in.credit_updates().map(|f| f.header.length).collect();
    assert!(updates.iter().all(|&d| d >= WINDOW / 2), "hashicorp updates {updates:?}");
    eprintln!(
        "observed: {before} B sent before Go's first credit update (window {WINDOW}), updates {:?}..{:?}",
        updates.iter().min(),
        updates.iter().max()
    );
}
both_setups!(go_announces_larger_window);

/// We announce a 1 MiB window on our ACK and consume nothing: Go (hashicorp)
/// uses all of it, and stops exactly there until we consume.
fn we_announce_larger_window(setup: Setup) {
    const WINDOW: u32 = 1 << 20;
    const BYTES: u64 = 2_000_000;
    // Go announces a larger window too, on its SYN.
    let (go, sock) = start_go(
        setup,
        "source",
        &["-streams", "1", "-bytes", &BYTES.to_string(), "-window", &WINDOW.to_string()],
    );
    let cfg = {
        let mut c = config();
        c.initial_stream_window = WINDOW;
        c
    };
    let mut drv = Driver::new("our window 1 MiB", sock, setup.peer_role.ours(), cfg, LIFE);
    let mut book = Book::new(7);
    book.check_pattern = true;
    let mut id = None;
    book.run(&mut drv, "Go to fill our 1 MiB window", Duration::from_secs(10), |drv, b, ev| {
        if let Some(Event::StreamOpened { id: new }) = ev {
            id = Some(*new);
            b.set_read_limit(drv, *new, Some(0));
        }
        id.is_some_and(|id| b.received(drv, id) >= u64::from(WINDOW))
    });
    let id = id.unwrap();
    // Hold a little: Go must not send more than the window.
    drv.pump_for(Duration::from_millis(150), |drv, ev| {
        if let Some(ev) = ev {
            book.on_event(drv, &ev);
        }
    });
    assert_eq!(book.received(&drv, id), u64::from(WINDOW), "Go overran or underused our window");
    let ack = *drv.wire_out.first(id).unwrap();
    assert!(ack.is_window_update() && ack.has(Flags::ACK));
    assert_eq!(ack.header.length, WINDOW - yamux_proto::DEFAULT_WINDOW);
    let syn = *drv.wire_in.first(id).unwrap();
    assert!(syn.is_window_update() && syn.has(Flags::SYN), "{}", driver::describe(&syn));
    assert_eq!(syn.header.length, WINDOW - yamux_proto::DEFAULT_WINDOW, "additive delta on SYN");
    assert_eq!(
        drv.conn.stream_info(id).unwrap().send_credit,
        WINDOW,
        "we took Go's announcement as credit"
    );
    book.set_read_limit(&mut drv, id, None);
    book.run(&mut drv, "the rest of Go's data", Duration::from_secs(10), |_, b, ev| {
        if let Some(Event::PeerHalfClosed { id }) = ev {
            b.send_pattern(*id, 0, true);
        }
        b.all_closed()
    });
    let r = &book.streams[&id];
    assert_eq!((r.recv, r.mismatch_at), (BYTES, None));
    let out = wait_for_go_close(&mut drv, go, &mut book);
    assert!(out.ok(), "{}", out.dump());
}
both_setups!(we_announce_larger_window);

// ---------------------------------------------------------------------------
// Slow readers: backpressure holds, other streams keep flowing.

/// Go's `slow-reader` reads its first stream at ~200 KiB/s; our writer on it
/// runs out of credit and waits while three other streams finish at full
/// speed; then it completes.
fn go_reads_one_stream_slowly(setup: Setup) {
    const SLOW: u64 = 320 * 1024;
    const FAST: u64 = 2 << 20;
    let (go, sock) = start_go(setup, "slow-reader", &["-streams", "4"]);
    let mut drv = Driver::new("go slow reader", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(8);
    let slow = book.open(&mut drv, SLOW, true);
    let fast: Vec<StreamId> = (0..3).map(|_| book.open(&mut drv, FAST, true)).collect();
    let mut stalled_at = None;
    let mut fast_done_while_stalled = 0;
    let mut max_uncredited = 0;
    book.run(&mut drv, "slow and fast streams to finish", Duration::from_secs(15), |drv, b, ev| {
        if let Some(info) = drv.conn.stream_info(slow) {
            max_uncredited = max_uncredited.max(info.uncredited);
            if info.send_credit == 0 && info.send_buffered > 0 {
                stalled_at.get_or_insert(drv.elapsed());
            }
        }
        if let (Some(Event::StreamClosed { id }), Some(_)) = (ev, stalled_at) {
            if fast.contains(id) && !b.streams[&slow].closed {
                fast_done_while_stalled += 1;
            }
        }
        b.all_closed()
    });
    assert!(stalled_at.is_some(), "the slow stream never ran out of credit");
    assert_eq!(fast_done_while_stalled, 3, "fast streams should finish while the slow one waits");
    assert!(max_uncredited <= u64::from(yamux_proto::DEFAULT_WINDOW));
    let slow_closed = book.streams[&slow].closed_at.unwrap();
    for id in &fast {
        assert!(book.streams[id].closed_at.unwrap() < slow_closed);
    }
    let out = wait_for_go_close(&mut drv, go, &mut book);
    assert!(out.ok(), "{}", out.dump());
    let order = out.line("served", "finish_order").get("finish_order").to_string();
    assert!(order.ends_with(&slow.to_string()), "Go finished the slow stream last: {order}");
    for l in out.streams_with("slow") {
        let id = StreamId(l.int("stream") as u32);
        assert_eq!(l.flag("slow"), id == slow, "{}", l.raw);
        assert_eq!(l.get("fnv"), book.streams[&id].sent_fnv.hex());
    }
}
both_setups!(go_reads_one_stream_slowly);

/// We read one of Go's three streams slowly (8 KiB per 10 ms): hashicorp's
/// writer is held to our window on it, while the other two finish.
fn we_read_one_go_stream_slowly(setup: Setup) {
    const BYTES: u64 = 1_000_000;
    let (go, sock) = start_go(setup, "source", &["-streams", "3", "-bytes", &BYTES.to_string()]);
    // A fixed window: auto-tuning could (rightly) grow it when the start-up
    // RTT sample is slow, and the bound below is about the fixed window.
    let cfg = {
        let mut c = config();
        c.max_stream_window = yamux_proto::DEFAULT_WINDOW;
        c
    };
    let mut drv = Driver::new("we read slowly", sock, setup.peer_role.ours(), cfg, LIFE);
    let mut book = Book::new(9);
    read_one_stream_slowly(&mut drv, &mut book, BYTES, "Go");
    let out = wait_for_go_close(&mut drv, go, &mut book);
    assert!(out.ok(), "{}", out.dump());
}
both_setups!(we_read_one_go_stream_slowly);

// ---------------------------------------------------------------------------
// Go away from either side.

/// Go's `goaway`: Go sends GoAway (code 0) halfway through a 1 MiB echo; the
/// stream finishes. Hashicorp still opens a probe stream after its own
/// GoAway, and we accept it (a peer's GoAway does not stop inbound streams).
/// We can no longer open, and hashicorp refuses a SYN we inject anyway.
fn go_sends_go_away(setup: Setup) {
    let (go, sock) = start_go(setup, "goaway", &["-hold", "5s"]);
    let mut drv = Driver::new("go goaway", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(10);
    book.echo = true;
    let mut open_after = None;
    book.run(&mut drv, "Go's stream and probe echoed", Duration::from_secs(15), |drv, b, ev| {
        if let Some(Event::GoAwayReceived { code }) = ev {
            assert_eq!(*code, GoAwayCode::Normal);
            open_after = Some(drv.conn.open());
        }
        b.len() == 2 && b.all_closed()
    });
    assert_eq!(open_after, Some(Err(OpenError::RemoteGoingAway)));
    assert_eq!(drv.conn.remote_go_away(), Some(GoAwayCode::Normal));
    assert!(!drv.conn.is_closed(), "a normal GoAway must not end the connection");
    assert_eq!(drv.wire_in.go_aways(), vec![0]);
    let ids: Vec<StreamId> = book.streams.keys().copied().collect();
    let go_away_at = drv.wire_in.of_type(FrameType::GoAway).next().unwrap().at;
    let probe_syn = drv.wire_in.first(ids[1]).unwrap().at;
    assert!(probe_syn > go_away_at, "the probe stream was opened after Go's GoAway");
    assert_eq!(book.streams[&ids[0]].recv, 1 << 20);
    assert_eq!(book.streams[&ids[1]].recv, 16);
    // A SYN from us anyway (hand-built): hashicorp refuses it with RST
    // because it sent GoAway itself.
    let probe = StreamId(match setup.peer_role {
        PeerRole::Server => 1001,
        PeerRole::Client => 1002,
    });
    let discarded = drv.conn.stats().frames_discarded;
    drv.inject_frame(Header::window_update(probe, Flags::SYN, 0), &[]);
    drv.run("Go's RST for a SYN after its GoAway", Duration::from_secs(5), |drv, _| {
        drv.wire_in.stream(probe).any(|f| f.has(Flags::RST))
    });
    let rst = *drv.wire_in.first(probe).unwrap();
    assert!(rst.is_window_update() && rst.has(Flags::RST) && rst.header.length == 0);
    assert_eq!(
        drv.conn.stats().frames_discarded,
        discarded + 1,
        "we discard the RST for a stream we do not know"
    );
    let out = close_and_collect(&mut drv, go);
    assert!(out.ok(), "{}", out.dump());
    let first = out.results.iter().find(|r| r.kind == "stream" && r.kv.contains_key("goaway_err"));
    assert!(first.unwrap().flag("ok"));
    let probe_line = out.line("open_after_goaway_err", "probe_stream");
    assert_eq!(probe_line.get("open_after_goaway_err"), "none");
    assert!(probe_line.flag("probe_fin") && probe_line.int("probe_bytes_recv") == 16);
    let hold = out.line("goaway_hold_ms", "refused");
    assert!(hold.flag("session_closed"), "closing our session ends Go's hold: {}", hold.raw);
    // (The peer's per-stream `refused` count can lag its send goroutine; its
    // exit summary cannot.)
    assert_eq!(out.frames("out").int("rst"), 1, "{}", out.dump());
}
both_setups!(go_sends_go_away);

/// We send GoAway while Go's own streams (open-echo) are running: they
/// finish, and we end `Drained`.
fn we_go_away_during_go_streams(setup: Setup) {
    let (go, sock) = start_go(setup, "open-echo", &["-streams", "2", "-bytes", "500000"]);
    let mut drv =
        Driver::new("we go away, Go streams", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(12);
    book.echo = true;
    book.check_pattern = true;
    let mut sent_go_away = false;
    book.run(&mut drv, "drained after our go-away", Duration::from_secs(15), |drv, b, ev| {
        if !sent_go_away && b.len() == 2 && matches!(ev, Some(Event::Readable { .. })) {
            drv.conn.go_away(GoAwayCode::Normal);
            sent_go_away = true;
        }
        drv.closed.is_some()
    });
    assert_eq!(drv.closed, Some(CloseReason::Drained));
    for r in book.streams.values() {
        assert_eq!((r.recv, r.mismatch_at, r.sent), (500_000, None, 500_000));
    }
    let out = close_after_drained(&mut drv, go);
    assert!(out.ok(), "{}", out.dump());
}
both_setups!(we_go_away_during_go_streams);

/// A GoAway with an error code ends a hashicorp session at once (its
/// streams die with it), unlike code 0.
fn go_away_error_code_ends_hashicorp_session(setup: Setup) {
    let (go, sock) = start_go(setup, "echo", &[]);
    let mut drv = Driver::new("go away code 2", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(13);
    let id = book.open(&mut drv, 50_000, false);
    book.run(&mut drv, "some echo", Duration::from_secs(5), |_, b, _| b.streams[&id].recv > 0);
    drv.conn.go_away(GoAwayCode::InternalError);
    book.run(&mut drv, "Go to drop the connection", Duration::from_secs(5), |drv, _, _| {
        drv.closed.is_some()
    });
    assert_eq!(drv.closed, Some(CloseReason::TransportClosed));
    assert_eq!(
        book.streams[&id].reset,
        Some(ResetReason::ConnectionClosed(CloseReason::TransportClosed))
    );
    assert_eq!(drv.wire_out.go_aways(), vec![2]);
    drv.finish(|_, _| {});
    let out = go.wait(Duration::from_secs(10));
    assert_eq!(out.line("served", "session_err").get("session_err"), "remote yamux internal error");
    assert!(!out.ok());
}
both_setups!(go_away_error_code_ends_hashicorp_session);

// ---------------------------------------------------------------------------
// Pings and keep-alive.

/// Go pings us five times; every ping is answered with its opaque value.
fn go_pings_us(setup: Setup) {
    let (go, sock) = start_go(setup, "ping", &["-msgs", "5"]);
    let mut drv = Driver::new("go pings", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(14);
    let out = wait_for_go_close(&mut drv, go, &mut book);
    assert!(out.ok(), "{}", out.dump());
    assert_eq!(out.lines("ping").len(), 5);
    // (Our own start-up RTT probes and Go's answers to them are the other
    // pings. Go closes right after its five: a probe of ours may still be
    // unanswered then, and each probe goes out only after the previous
    // answer.)
    let ping_values = |w: &driver::Wire, flag| -> Vec<u32> {
        w.of_type(FrameType::Ping).filter(|f| f.has(flag)).map(|f| f.header.length).collect()
    };
    let pings = ping_values(&drv.wire_in, Flags::SYN);
    let pongs = ping_values(&drv.wire_out, Flags::ACK);
    assert_eq!(pings.len(), 5, "{}", drv.wire_in.tail(20));
    assert_eq!(pings, pongs, "each pong echoes its ping's opaque value");
    assert!(drv.wire_in.of_type(FrameType::Ping).all(|f| f.id().0 == 0));
    let our_pings = ping_values(&drv.wire_out, Flags::SYN);
    let go_pongs = ping_values(&drv.wire_in, Flags::ACK);
    assert!(
        our_pings.starts_with(&go_pongs),
        "Go answers our probes in order: {our_pings:?} {go_pongs:?}"
    );
    assert!(
        our_pings.len() <= go_pongs.len() + 1,
        "a probe goes out only after the previous answer"
    );
}
both_setups!(go_pings_us);

/// Both sides keep-alive every 50 ms (and we ping once more by hand):
/// pings flow both ways and are answered; hashicorp does not ping at start.
fn keep_alive_both_ways(setup: Setup) {
    let (go, sock) = start_go(setup, "idle", &["-keepalive", "50ms", "-hold", "5s"]);
    let cfg = {
        let mut c = config();
        c.keep_alive_interval = Some(Duration::from_millis(50));
        c
    };
    let mut drv = Driver::new("keep-alive", sock, setup.peer_role.ours(), cfg, LIFE);
    let manual = drv.conn.ping().unwrap();
    let mut pongs = Vec::new();
    drv.pump_for(Duration::from_millis(400), |_, ev| {
        if let Some(Event::Pong { opaque, rtt }) = ev {
            pongs.push((opaque, rtt));
        }
    });
    assert!(pongs.iter().any(|&(o, _)| o == manual), "our manual ping was answered");
    assert!(pongs.len() >= 5, "keep-alive pings answered: {pongs:?}");
    // (The start-up RTT probe can wait for the Go session to start: tens of ms.)
    assert!(pongs.iter().all(|&(_, rtt)| rtt < Duration::from_secs(1)), "{pongs:?}");
    let go_pings = drv.wire_in.pings();
    assert!(go_pings >= 4, "hashicorp keep-alive pings: {go_pings}");
    let first = drv.wire_in.of_type(FrameType::Ping).find(|f| f.has(Flags::SYN)).unwrap().at;
    assert!(first >= Duration::from_millis(30), "hashicorp pinged at start ({first:?})");
    let out = close_and_collect(&mut drv, go);
    let l = out.line("session_closed", "pongs_in");
    assert!(l.flag("session_closed"));
    assert!(l.int("pongs_in") >= 5 && l.int("pongs_out") >= 4, "{}", l.raw);
    assert!(drv.closed == Some(CloseReason::LocalClose));
}
both_setups!(keep_alive_both_ways);

/// A Go peer that stops answering (SIGSTOP) is declared dead by our
/// keep-alive: `ConnectionClosed{KeepAliveTimeout}` after interval + timeout.
fn keep_alive_detects_frozen_go(setup: Setup) {
    let (go, sock) = start_go(setup, "idle", &["-hold", "10s"]);
    let cfg = {
        let mut c = config();
        c.keep_alive_interval = Some(Duration::from_millis(50));
        c.ping_timeout = Duration::from_millis(300);
        c
    };
    let mut drv = Driver::new("frozen go", sock, setup.peer_role.ours(), cfg, LIFE);
    drv.pump_for(Duration::from_millis(150), |_, _| {});
    assert!(drv.events.iter().any(|(_, e)| matches!(e, Event::Pong { .. })));
    go.signal("STOP");
    let frozen = drv.elapsed();
    drv.run("the keep-alive timeout", Duration::from_secs(3), |drv, _| drv.closed.is_some());
    go.signal("CONT");
    assert_eq!(drv.closed, Some(CloseReason::KeepAliveTimeout));
    let took = drv.elapsed() - frozen;
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(1000), "{took:?}");
    drv.finish(|_, _| {});
    drop(go);
}
both_setups!(keep_alive_detects_frozen_go);

// ---------------------------------------------------------------------------
// Refused streams.

/// Go never accepts and has a backlog of 2: of our 4 streams, 2 are refused
/// (RST, zero-length Window Update) and 2 wait, never ACKed.
fn go_backlog_full_refuses(setup: Setup) {
    let (go, sock) = start_go(setup, "accept-none", &["-backlog", "2", "-hold", "5s"]);
    let mut drv = Driver::new("go backlog 2", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(15);
    let ids: Vec<StreamId> = (0..4).map(|_| book.open(&mut drv, 1000, false)).collect();
    book.run(&mut drv, "two refusals", Duration::from_secs(5), |_, b, _| {
        b.streams.values().filter(|r| r.reset.is_some()).count() == 2
    });
    drv.pump_for(Duration::from_millis(100), |drv, ev| {
        if let Some(ev) = ev {
            book.on_event(drv, &ev);
        }
    });
    for (k, id) in ids.iter().enumerate() {
        let r = &book.streams[id];
        if k < 2 {
            assert_eq!(r.reset, None, "stream {id} (queued in Go's backlog)");
            assert!(!drv.conn.stream_info(*id).unwrap().acknowledged);
            assert_eq!(drv.wire_in.stream(*id).count(), 0, "hashicorp ACKs only from Accept");
        } else {
            assert_eq!(r.reset, Some(ResetReason::Refused), "stream {id}");
            let rst = drv.wire_in.first(*id).unwrap();
            assert!(rst.is_window_update() && rst.has(Flags::RST) && rst.header.length == 0);
        }
    }
    let out = close_and_collect(&mut drv, go);
    let l = out.line("backlog", "refused");
    assert_eq!((l.int("syn_in"), l.int("refused"), l.int("queued")), (4, 2, 2), "{}", l.raw);
}
both_setups!(go_backlog_full_refuses);

/// Our `max_streams` is 2 and Go opens 4: we refuse 2 with RST; hashicorp
/// reports "connection reset" on those and completes the others.
fn we_refuse_over_max_streams(setup: Setup) {
    let (go, sock) = start_go(setup, "open-echo", &["-streams", "4", "-bytes", "1000000"]);
    let cfg = {
        let mut c = config();
        c.max_streams = 2;
        c
    };
    let mut drv = Driver::new("our max_streams 2", sock, setup.peer_role.ours(), cfg, LIFE);
    let mut book = Book::new(16);
    book.echo = true;
    book.run(&mut drv, "two refusals", Duration::from_secs(10), |drv, b, _| {
        // Keep the two accepted streams open (no FIN from us) until both
        // extra streams were refused, however late Go's goroutines open them.
        let refused = drv.conn.stats().streams_refused;
        for r in b.streams.values_mut() {
            r.close_when_sent = r.peer_fin && refused >= 2;
        }
        refused == 2
    });
    let out = wait_for_go_close(&mut drv, go, &mut book);
    assert_eq!(drv.conn.stats().streams_refused, 2);
    assert_eq!(book.len(), 2);
    assert!(book.streams.values().all(|r| r.recv == 1_000_000 && r.closed));
    let lines = out.streams_with("bytes_recv");
    let (ok, failed): (Vec<&peer::ResultLine>, Vec<&peer::ResultLine>) =
        lines.into_iter().partition(|l| l.flag("ok"));
    assert_eq!((ok.len(), failed.len()), (2, 2), "{}", out.dump());
    for l in failed {
        let errs = [l.get("write_err"), l.get("read_err")];
        assert!(errs.contains(&"connection reset"), "{}", l.raw);
    }
    for f in drv.wire_out.with_flag(Flags::RST) {
        assert!(f.is_window_update() && f.header.length == 0);
    }
}
both_setups!(we_refuse_over_max_streams);

// ---------------------------------------------------------------------------
// Stop reading (hashicorp/yamux#133).

/// Go writes 1 KiB messages until an error; we read 5, then half-close and
/// stop reading. Having sent nothing ourselves, we reset at once after our
/// FIN, so Go's Write fails with "connection reset" in milliseconds instead
/// of stalling until its 5 s deadline (the #133 fix, against the real peer).
fn stop_reading_fails_go_writer_fast(setup: Setup) {
    let (go, sock) = start_go(
        setup,
        "write-until-error",
        &["-msgs", "5000", "-msgsize", "1024", "-deadline", "5s"],
    );
    let mut drv =
        Driver::new("stop reading vs Go writer", sock, setup.peer_role.ours(), config(), LIFE);
    let mut book = Book::new(17);
    let mut stopped = None;
    book.run(&mut drv, "5 messages, then stop", Duration::from_secs(10), |drv, b, _| {
        if stopped.is_none() {
            if let Some((&id, r)) = b.streams.iter().next() {
                if r.recv >= 5 * 1024 {
                    drv.conn.close_write(id).unwrap();
                    drv.conn.stop_reading(id).unwrap();
                    stopped = Some((id, drv.elapsed()));
                }
            }
        }
        b.all_closed()
    });
    let (id, _) = stopped.unwrap();
    let fin = *drv.wire_out.stream(id).find(|f| f.has(Flags::FIN)).unwrap();
    let rst = *drv.wire_out.stream(id).find(|f| f.has(Flags::RST)).unwrap();
    assert!(fin.at <= rst.at, "FIN goes out before RST");
    assert!(rst.is_window_update() && rst.header.length == 0);
    let out = wait_for_go_close(&mut drv, go, &mut book);
    let l = out.streams_with("write_err")[0];
    assert_eq!(l.get("write_err"), "connection reset", "{}", l.raw);
    assert!(!l.flag("all") && l.flag("peer_rst") && l.flag("peer_fin"), "{}", l.raw);
    let after = l.int("after_ms");
    assert!(after < 1000, "Go's writer failed after {after} ms (deadline 5000 ms): {}", l.raw);
    eprintln!(
        "observed: Go writer failed with {} after {after} ms, {} writes ok",
        l.get("write_err"),
        l.int("writes_ok")
    );
}
both_setups!(stop_reading_fails_go_writer_fast);

/// With a window above 256 KiB hashicorp answers a stream whose FIN
/// arrived before its Accept with a Window Update **without ACK** that
/// carries only its extra initial window. We write 1,000 bytes, half-close
/// and stop reading in one turn on 20 streams: that delta is window, not
/// credit for our bytes, so we must not reset (hashicorp's `Read` fails with
/// "connection reset" and drops what it buffers) before Go has read them.
/// Go returns no credit for 1,000 bytes, so the stream ends at our linger
/// timeout; every Go reader got its 1,000 bytes and our FIN by then.
fn stop_reading_keeps_our_data_for_go_with_a_larger_window(setup: Setup) {
    const STREAMS: usize = 20;
    const BYTES: usize = 1_000;
    const WINDOW: u32 = 1 << 20;
    let args = ["-streams", "20", "-bytes", "1000", "-plain-read", "-window", "1048576"];
    let (go, sock) = start_go(setup, "sink", &args);
    let linger = Duration::from_secs(1);
    let cfg = {
        let mut c = config();
        c.linger_timeout = Some(linger);
        c
    };
    let mut drv =
        Driver::new("stop reading, Go window 1 MiB", sock, setup.peer_role.ours(), cfg, LIFE);
    let mut ids = Vec::new();
    let mut closed = 0;
    drv.run("20 streams written, half-closed, stopped", Duration::from_secs(10), |drv, ev| {
        if let Some(Event::StreamClosed { .. }) = ev {
            closed += 1;
        }
        while ids.len() < STREAMS {
            let id = drv.conn.open().unwrap();
            let body = driver::pattern(id.0, 0, BYTES);
            assert_eq!(drv.conn.send(id, &body).unwrap(), BYTES);
            drv.conn.close_write(id).unwrap();
            drv.conn.stop_reading(id).unwrap();
            ids.push(id);
        }
        closed == STREAMS
    });
    // What hashicorp answered: ACK with the extra window, or (FIN before
    // Accept) a plain Window Update carrying it.
    let extra = WINDOW - yamux_proto::DEFAULT_WINDOW;
    let mut unacked_window = 0;
    for &id in &ids {
        let first = *drv.wire_in.first(id).unwrap();
        assert!(first.is_window_update(), "{}", driver::describe(&first));
        assert_eq!(first.header.length, extra, "{}", driver::describe(&first));
        if !first.has(Flags::ACK) {
            unacked_window += 1;
        }
        // No RST before the linger timeout: nothing of ours was credited.
        if let Some(rst) = drv.wire_out.stream(id).find(|f| f.has(Flags::RST)) {
            let fin = drv.wire_out.stream(id).find(|f| f.has(Flags::FIN)).unwrap();
            assert!(rst.at >= fin.at + linger, "RST {:?} after FIN {:?}", rst.at, fin.at);
        }
    }
    let out = wait_for_go_close(&mut drv, go, &mut Book::new(0));
    let lines = out.streams_with("fin");
    assert_eq!(lines.len(), STREAMS, "{}", out.dump());
    for l in &lines {
        assert_eq!(l.get("read_err"), "none", "{}", l.raw);
        assert_eq!(l.int("bytes") as usize, BYTES, "{}", l.raw);
        assert!(l.flag("ok") && l.flag("pattern"), "{}", l.raw);
    }
    eprintln!(
        "observed: {unacked_window} of {STREAMS} streams established by a Window Update \
         without ACK carrying {extra} B; Go read all {BYTES} B on every stream"
    );
}
both_setups!(stop_reading_keeps_our_data_for_go_with_a_larger_window);

/// Go reads 10 messages, half-closes and stops reading (`stop-after`).
/// Hashicorp neither resets nor returns credit, so our writer would stall
/// for good (hashicorp/yamux#133 on their side); our send-stall timeout
/// resets the stream instead.
fn go_stops_reading_we_cope(setup: Setup) {
    let (go, sock) = start_go(setup, "stop-after", &["-msgs", "10", "-hold", "5s"]);
    let cfg = {
        let mut c = config();
        c.send_stall_timeout = Some(Duration::from_millis(300));
        c
    };
    let mut drv = Driver::new("Go stops reading", sock, setup.peer_role.ours(), cfg, LIFE);
    let mut book = Book::new(18);
    book.max_write = 1024;
    let id = book.open(&mut drv, 64 << 20, false);
    book.run(&mut drv, "our send-stall reset", Duration::from_secs(5), |_, b, _| b.all_closed());
    let r = &book.streams[&id];
    assert_eq!(r.reset, Some(ResetReason::SendStall));
    assert!(r.peer_fin, "Go half-closed");
    assert_eq!(
        drv.wire_out.data_bytes[&id],
        u64::from(yamux_proto::DEFAULT_WINDOW),
        "hashicorp returned no credit after reading 10 KiB"
    );
    assert_eq!(drv.wire_in.credit_updates().count(), 0);
    let stall_start = drv.wire_out.stream(id).filter(|f| f.is_data()).last().unwrap().at;
    let rst = drv.wire_out.stream(id).find(|f| f.has(Flags::RST)).unwrap().at;
    let waited = rst - stall_start;
    // (The stall clock starts at the connection's latest `now`, which can be
    // a little older than the moment the last frame was written.)
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(900),
        "{waited:?}"
    );
    let out = close_and_collect(&mut drv, go);
    assert_eq!(out.line("stream", "msgs_read").int("msgs_read"), 10);
    let l = out.line("stream", "after_close_bytes_in");
    assert!(l.flag("peer_rst") && !l.flag("peer_fin"), "{}", l.raw);
}
both_setups!(go_stops_reading_we_cope);

// ---------------------------------------------------------------------------
// Frames for unknown streams.

/// Data, Window Update and FIN frames for streams hashicorp does not know
/// are discarded silently: no RST, the session lives on.
fn unknown_stream_frames_get_no_rst(setup: Setup) {
    let (go, sock) = start_go(setup, "idle", &["-hold", "5s"]);
    let mut drv = Driver::new("unknown streams", sock, setup.peer_role.ours(), config(), LIFE);
    let base = match setup.peer_role {
        PeerRole::Server => 2001,
        PeerRole::Client => 2002,
    };
    let ids = [StreamId(base), StreamId(base + 2), StreamId(base + 4)];
    drv.inject_frame(Header::data(ids[0], Flags::NONE, 10), &[7; 10]);
    drv.inject_frame(Header::window_update(ids[1], Flags::NONE, 4096), &[]);
    drv.inject_frame(Header::window_update(ids[2], Flags::FIN, 0), &[]);
    let opaque = drv.conn.ping().unwrap();
    drv.run(
        "the pong after the stray frames",
        Duration::from_secs(5),
        |_, ev| matches!(ev, Some(Event::Pong { opaque: o, .. }) if o == opaque),
    );
    drv.pump_for(Duration::from_millis(50), |_, _| {});
    for id in ids {
        assert_eq!(drv.wire_in.stream(id).count(), 0, "hashicorp answered a frame for stream {id}");
    }
    let out = close_and_collect(&mut drv, go);
    assert!(out.stderr.contains("Discarding data for stream"), "{}", out.dump());
    assert!(out.stderr.contains("frame for missing stream"), "{}", out.dump());
    assert_eq!(out.frames("out").int("rst"), 0);
}
both_setups!(unknown_stream_frames_get_no_rst);
