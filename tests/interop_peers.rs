//! The interop scenarios every real peer must pass, written once and run
//! against each peer, in both yamux roles and both TCP directions:
//! hashicorp/yamux (Go, `tests/go-peer`), js-libp2p's yamux
//! (`@chainsafe/libp2p-yamux` 7.0.4 on Node, `tests/js-peer`) and the
//! `yamux` crate 0.14 (`interop/crate_peer.rs`).
//!
//! Every byte is verified at both ends: the peer checks what we sent against
//! the shared pattern and reports counts and checksums; we check what it
//! sent. Where the peers differ on purpose (how a session ends, what a Go
//! Away means), the test says what each does; `docs/interop.md` tabulates it.
//! Peer-specific wire details live in `interop_go.rs`.

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

use driver::{config, Book, Driver, LIFE};
use peer::{Peer, PeerKind, PeerOutput, Setup};
use yamux_proto::frame::{Flags, FrameType};
use yamux_proto::{CloseReason, Config, Event, GoAwayCode, OpenError, ResetReason, StreamId};

/// Runs `f` against each peer in both setups, as six tests
/// (`programs_only`: the four against the two peer programs, for what the
/// `yamux` crate's API cannot do).
macro_rules! each_peer {
    ($name:ident) => {
        mod $name {
            use super::{PeerKind, Setup};
            against_programs!($name);
            #[test]
            fn yamux_crate_server_listens() {
                super::$name(PeerKind::YamuxCrate, Setup::PEER_SERVER);
            }
            #[test]
            fn yamux_crate_client_dials() {
                super::$name(PeerKind::YamuxCrate, Setup::PEER_CLIENT);
            }
        }
    };
    ($name:ident, programs_only) => {
        mod $name {
            use super::{PeerKind, Setup};
            against_programs!($name);
        }
    };
}

/// The four tests of `each_peer!` against hashicorp and js-libp2p.
macro_rules! against_programs {
    ($name:ident) => {
        #[test]
        fn hashicorp_server_listens() {
            super::$name(PeerKind::Hashicorp, Setup::PEER_SERVER);
        }
        #[test]
        fn hashicorp_client_dials() {
            super::$name(PeerKind::Hashicorp, Setup::PEER_CLIENT);
        }
        #[test]
        fn js_server_listens() {
            super::$name(PeerKind::Js, Setup::PEER_SERVER);
        }
        #[test]
        fn js_client_dials() {
            super::$name(PeerKind::Js, Setup::PEER_CLIENT);
        }
    };
}

/// Starts `kind` with `scenario` and a driver for our end.
fn start(kind: PeerKind, setup: Setup, scenario: &str, args: &[&str]) -> (Peer, Driver) {
    start_with(kind, setup, scenario, args, config())
}

fn start_with(
    kind: PeerKind,
    setup: Setup,
    scenario: &str,
    args: &[&str],
    config: Config,
) -> (Peer, Driver) {
    let (peer, sock) = Peer::start(kind, setup, scenario, args);
    let label = format!("{} {scenario}", kind.name());
    let drv = Driver::new(&label, sock, setup.peer_role.ours(), config, LIFE);
    (peer, drv)
}

/// After the scenario: ends the session and collects the peer's output.
/// Hashicorp and js-libp2p end it themselves once they served their
/// `-streams` (hashicorp closes TCP; js-libp2p sends Go Away, code 0, then
/// closes TCP), and we close ours after theirs. The `yamux` crate's acceptor
/// leaves the end to us (its `poll_close` can destroy bytes in flight: see
/// `interop/crate_peer.rs`): we close, and its session ends on our Go Away.
fn wait_for_peer_close(drv: &mut Driver, peer: Peer) -> PeerOutput {
    let kind = peer.kind;
    if kind == PeerKind::YamuxCrate {
        drv.close(|_, _| {});
    } else {
        drv.run("the peer to close the session", Duration::from_secs(15), |drv, _| drv.eof);
        let go_aways = if kind == PeerKind::Js { vec![0] } else { vec![] };
        assert_eq!(drv.wire_in.go_aways(), go_aways, "how {} ends a session", kind.name());
        drv.finish(|_, _| {});
    }
    let out = peer.wait(Duration::from_secs(10));
    assert_eq!(
        out.frames("in").get("bad"),
        "false",
        "the peer could not parse us:\n{}",
        out.dump()
    );
    out
}

/// Every stream in `book` came back whole from the peer's `echo`, and the
/// peer saw exactly the bytes we sent.
fn assert_echoed(book: &Book, out: &PeerOutput) {
    for (id, r) in &book.streams {
        assert!(r.reset.is_none(), "stream {id} reset: {:?}", r.reset);
        assert!(r.peer_fin, "stream {id}: no FIN from the peer");
        assert_eq!((r.recv, r.mismatch_at), (r.sent, None), "stream {id}: echo");
        assert_eq!(r.recv_fnv.0, r.sent_fnv.0, "stream {id}: echo checksum");
    }
    let lines = out.streams_with("echoed");
    assert_eq!(lines.len(), book.len(), "{}", out.dump());
    for l in lines {
        let r = &book.streams[&StreamId(l.int("stream") as u32)];
        assert!(l.flag("ok"), "the peer's stream failed: {}", l.raw);
        assert_eq!(l.int("bytes") as u64, r.sent, "{}", l.raw);
        assert_eq!(l.get("fnv"), r.sent_fnv.hex(), "the peer saw other bytes: {}", l.raw);
    }
    assert!(out.ok(), "{}", out.dump());
}

/// We never put FIN on a Data frame that carries payload: both peers apply
/// a frame's flags before its payload and would lose the bytes.
fn assert_no_fin_on_data(drv: &Driver) {
    let n = drv.wire_out.frames.iter().filter(|f| f.is_data() && f.header.length > 0);
    assert_eq!(n.filter(|f| f.has(Flags::FIN)).count(), 0, "FIN rode on a Data frame");
}

/// How each peer frames its control flags (the docs/interop.md table).
/// Hashicorp and js-libp2p put FIN and RST on zero-length Window Updates,
/// and SYN on a Window Update sent when the stream is opened, before any
/// data. The `yamux` crate uses Data frames for all three: FIN and RST on
/// empty ones, SYN on the stream's first frame, which may carry payload.
fn assert_peer_flag_frames(kind: PeerKind, drv: &Driver) {
    let on_window_updates = kind != PeerKind::YamuxCrate;
    let carrier = |f: &driver::FrameRec| f.is_window_update() == on_window_updates;
    for f in drv.wire_in.frames.iter().filter(|f| f.has(Flags::FIN) || f.has(Flags::RST)) {
        let what = driver::describe(f);
        assert!(carrier(f) && f.header.length == 0, "{} FIN/RST frame: {what}", kind.name());
    }
    for f in drv.wire_in.with_flag(Flags::SYN).filter(|f| f.id().0 != 0) {
        assert!(carrier(f), "{} SYN frame: {}", kind.name(), driver::describe(f));
    }
}

/// Prints what the peer's credit updates looked like, for docs/interop.md.
fn observe_credit(kind: PeerKind, drv: &Driver) -> Vec<u32> {
    let deltas: Vec<u32> = drv.wire_in.credit_updates().map(|f| f.header.length).collect();
    eprintln!(
        "observed: {} sent {} credit updates, min {:?} max {:?}; max Data frame {} B",
        kind.name(),
        deltas.len(),
        deltas.iter().min(),
        deltas.iter().max(),
        drv.wire_in.max_data_frame()
    );
    deltas
}

// ---------------------------------------------------------------------------
// Data both ways

/// One stream of 1 MiB to the peer's echo.
fn echo_one_mib(kind: PeerKind, setup: Setup) {
    let (peer, mut drv) = start(kind, setup, "echo", &["-streams", "1", "-bytes", "1048576"]);
    let mut book = Book::new(1);
    book.check_pattern = true;
    book.open(&mut drv, 1 << 20, true);
    book.run(&mut drv, "the echo", Duration::from_secs(20), |_, b, _| b.all_closed());
    let out = wait_for_peer_close(&mut drv, peer);
    assert_echoed(&book, &out);
    assert_no_fin_on_data(&drv);
}
each_peer!(echo_one_mib);

/// 100 streams at once, random lengths up to 100 kB, to the peer's echo.
fn hundred_concurrent_streams(kind: PeerKind, setup: Setup) {
    let (peer, mut drv) = start(kind, setup, "echo", &["-streams", "100"]);
    let mut book = Book::new(2);
    book.check_pattern = true;
    let mut rng = support::rng::Rng::new(7);
    for _ in 0..100 {
        let n = rng.range(1, 100_000);
        book.open(&mut drv, n, true);
    }
    book.run(&mut drv, "100 echoes", Duration::from_secs(25), |_, b, _| b.all_closed());
    let out = wait_for_peer_close(&mut drv, peer);
    assert_echoed(&book, &out);
    assert_peer_flag_frames(kind, &drv);
    let acked =
        book.streams.keys().filter(|id| drv.wire_in.stream(**id).any(|f| f.has(Flags::ACK)));
    eprintln!("observed: {} ACKed {} of 100 streams", kind.name(), acked.count());
}
each_peer!(hundred_concurrent_streams);

/// 2,000 streams one after another (each opened when the last one closed),
/// 1,000 bytes each, to the peer's echo.
fn two_thousand_sequential_streams(kind: PeerKind, setup: Setup) {
    const STREAMS: usize = 2_000;
    let args = ["-streams", "2000", "-bytes", "1000", "-timeout", "60s"];
    let (peer, mut drv) = start(kind, setup, "echo", &args);
    let mut book = Book::new(3);
    book.check_pattern = true;
    let mut live: Option<StreamId> = None;
    book.run(&mut drv, "2,000 sequential echoes", Duration::from_secs(28), |drv, b, _| {
        if live.is_none_or(|id| b.streams[&id].closed) && b.len() < STREAMS {
            live = Some(b.open(drv, 1000, true));
        }
        b.len() == STREAMS && b.all_closed()
    });
    let out = wait_for_peer_close(&mut drv, peer);
    assert_echoed(&book, &out);
}
each_peer!(two_thousand_sequential_streams);

/// 64 MiB on one stream from us to the peer's sink.
fn bulk_64_mib_to_peer(kind: PeerKind, setup: Setup) {
    const BYTES: u64 = 64 << 20;
    let (peer, mut drv) = start(kind, setup, "sink", &["-streams", "1", "-bytes", "67108864"]);
    let mut book = Book::new(4);
    let id = book.open(&mut drv, BYTES, true);
    book.run(&mut drv, "64 MiB sunk", Duration::from_secs(25), |_, b, _| b.all_closed());
    let out = wait_for_peer_close(&mut drv, peer);
    assert_peer_flag_frames(kind, &drv);
    let deltas = observe_credit(kind, &drv);
    // Hashicorp returns credit once half its 256 KiB window was read;
    // js-libp2p after every chunk its reader takes, however small.
    if kind == PeerKind::Hashicorp {
        assert!(deltas.iter().all(|&d| d >= yamux_proto::DEFAULT_WINDOW / 2), "{deltas:?}");
    }
    let line = out.line("stream", "pattern");
    assert!(line.flag("ok") && line.flag("pattern"), "{}", out.dump());
    assert_eq!(line.int("bytes") as u64, BYTES);
    assert_eq!(line.get("fnv"), book.streams[&id].sent_fnv.hex());
    assert!(out.ok(), "{}", out.dump());
}
each_peer!(bulk_64_mib_to_peer);

/// 64 MiB on one stream from the peer's source to us.
fn bulk_64_mib_from_peer(kind: PeerKind, setup: Setup) {
    const BYTES: u64 = 64 << 20;
    let (peer, mut drv) = start(kind, setup, "source", &["-streams", "1", "-bytes", "67108864"]);
    let mut book = Book::new(5);
    book.check_pattern = true;
    book.run(&mut drv, "64 MiB received", Duration::from_secs(25), |_, b, ev| {
        if let Some(Event::PeerHalfClosed { id }) = ev {
            b.send_pattern(*id, 0, true);
        }
        b.len() == 1 && b.all_closed()
    });
    let out = wait_for_peer_close(&mut drv, peer);
    assert_peer_flag_frames(kind, &drv);
    observe_credit(kind, &drv);
    let r = book.streams.values().next().unwrap();
    assert_eq!((r.recv, r.mismatch_at, r.reset), (BYTES, None, None));
    let line = out.line("stream", "bytes_sent");
    assert!(line.flag("ok"), "{}", out.dump());
    assert_eq!(line.get("recv_fnv"), driver::Fnv::default().hex(), "we sent nothing back");
    assert!(out.ok(), "{}", out.dump());
}
each_peer!(bulk_64_mib_from_peer);

/// Half-close: we write and FIN four streams; the peer's `respond` reads
/// to our FIN and only then writes 1 MiB back on each, then FIN. Every byte
/// of the reply arrives although our side of each stream was closed first.
fn peer_writes_after_our_fin(kind: PeerKind, setup: Setup) {
    let (peer, mut drv) = start(kind, setup, "respond", &["-streams", "4", "-bytes", "1048576"]);
    let mut book = Book::new(6);
    book.check_pattern = true;
    for _ in 0..4 {
        book.open(&mut drv, 50_000, true);
    }
    book.run(&mut drv, "four replies", Duration::from_secs(20), |_, b, _| b.all_closed());
    for (id, r) in &book.streams {
        assert_eq!((r.recv, r.mismatch_at, r.reset), (1 << 20, None, None), "stream {id}");
        let our_fin = drv.wire_out.stream(*id).find(|f| f.has(Flags::FIN)).expect("our FIN");
        assert_eq!(drv.wire_in.data_before(*id, our_fin.at), 0, "stream {id}: reply before FIN");
    }
    let out = wait_for_peer_close(&mut drv, peer);
    let lines = out.streams_with("sent");
    assert_eq!(lines.len(), 4, "{}", out.dump());
    for l in lines {
        assert!(l.flag("ok") && l.int("bytes") == 50_000, "{}", l.raw);
    }
    assert!(out.ok(), "{}", out.dump());
}
each_peer!(peer_writes_after_our_fin);

/// The peer's `open-echo` opens 8 streams and writes 400 kB of pattern on
/// each in random-size chunks; we echo every byte and half-close after its
/// FIN; the peer verifies. Each stream carries exactly one SYN, on the frame
/// each peer uses for it, and our first frame on it carries the ACK.
fn peer_opens_many_streams(kind: PeerKind, setup: Setup) {
    const STREAMS: usize = 8;
    const BYTES: u64 = 400_000;
    let args = ["-streams", "8", "-bytes", "400000", "-seed", "9"];
    let (peer, mut drv) = start(kind, setup, "open-echo", &args);
    let mut book = Book::new(11);
    book.echo = true;
    book.check_pattern = true;
    book.run(&mut drv, "8 streams from the peer", Duration::from_secs(20), |_, b, _| {
        b.len() == STREAMS && b.all_closed()
    });
    for (id, r) in &book.streams {
        assert_eq!((r.recv, r.mismatch_at, r.reset), (BYTES, None, None), "stream {id}");
        let syn = drv.wire_in.first(*id).unwrap();
        assert!(syn.has(Flags::SYN), "stream {id} began {}", driver::describe(syn));
        assert_eq!(drv.wire_in.stream(*id).filter(|f| f.has(Flags::SYN)).count(), 1);
        // Hashicorp and js-libp2p open with a zero-length Window Update at
        // once; the crate opens lazily, with its first bytes.
        match kind {
            PeerKind::YamuxCrate => assert!(syn.is_data() && syn.header.length > 0),
            _ => assert!(syn.is_window_update() && syn.header.length == 0),
        }
        assert!(drv.wire_out.first(*id).unwrap().has(Flags::ACK), "we ACK on our first frame");
    }
    let out = wait_for_peer_close(&mut drv, peer);
    let lines = out.streams_with("bytes_recv");
    assert_eq!(lines.len(), STREAMS, "{}", out.dump());
    for l in lines {
        assert!(l.flag("ok") && l.flag("recv_pattern"), "{}", l.raw);
        assert_eq!(l.int("bytes_recv") as u64, BYTES, "{}", l.raw);
        let r = &book.streams[&StreamId(l.int("stream") as u32)];
        assert_eq!(l.get("recv_fnv"), r.sent_fnv.hex(), "{}", l.raw);
    }
    assert!(out.ok(), "{}", out.dump());
    assert_peer_flag_frames(kind, &drv);
}
each_peer!(peer_opens_many_streams);

/// We half-close at once, before reading anything, and then read the whole
/// echo: our half-close never ends our reading.
fn we_half_close_then_read(kind: PeerKind, setup: Setup) {
    const BYTES: u64 = 300_000;
    let (peer, mut drv) = start(kind, setup, "echo", &["-streams", "1"]);
    let mut book = Book::new(12);
    book.check_pattern = true;
    let id = book.open(&mut drv, BYTES, true);
    // Bytes read while our FIN was already on the wire (the book reads
    // before it hands us the event, so the growth of its count is a read).
    let mut read_while_half_closed = 0u64;
    let mut last_recv = 0u64;
    book.run(&mut drv, "the echo after our half-close", Duration::from_secs(10), |drv, b, _| {
        let recv = b.streams[&id].recv;
        if drv.wire_out.stream(id).any(|f| f.has(Flags::FIN)) {
            read_while_half_closed += recv - last_recv;
        }
        last_recv = recv;
        b.all_closed()
    });
    let r = &book.streams[&id];
    assert_eq!((r.recv, r.mismatch_at, r.reset), (BYTES, None, None));
    let our_fin = drv.wire_out.stream(id).find(|f| f.has(Flags::FIN)).unwrap().at;
    let after_fin = BYTES - drv.wire_in.data_before(id, our_fin);
    assert!(after_fin > 0, "nothing was read after our FIN");
    assert!(read_while_half_closed > 0, "nothing read while our write half was finished");
    let out = wait_for_peer_close(&mut drv, peer);
    assert_echoed(&book, &out);
    eprintln!("observed: {after_fin} of {BYTES} echoed bytes arrived after our FIN");
}
each_peer!(we_half_close_then_read);

/// The peer's `source` writes 100 kB and half-closes first; only after its
/// FIN do we write our 150 kB answer, which it reads after its own FIN.
fn peer_half_closes_first_we_answer(kind: PeerKind, setup: Setup) {
    const PEER_BYTES: u64 = 100_000;
    const ANSWER: u64 = 150_000;
    let (peer, mut drv) = start(kind, setup, "source", &["-streams", "1", "-bytes", "100000"]);
    let mut book = Book::new(13);
    book.check_pattern = true;
    book.run(&mut drv, "the peer's FIN, then our answer", Duration::from_secs(10), |_, b, ev| {
        if let Some(Event::PeerHalfClosed { id }) = ev {
            b.send_pattern(*id, ANSWER, true);
        }
        b.len() == 1 && b.all_closed()
    });
    let (&id, r) = book.streams.iter().next().unwrap();
    assert_eq!((r.recv, r.mismatch_at, r.sent), (PEER_BYTES, None, ANSWER));
    let answer_fnv = r.sent_fnv.hex();
    let peer_fin = drv.wire_in.stream(id).find(|f| f.has(Flags::FIN)).unwrap().at;
    assert_eq!(drv.wire_out.data_before(id, peer_fin), 0, "we wrote before the peer's FIN");
    let out = wait_for_peer_close(&mut drv, peer);
    let l = out.line("stream", "bytes_recv");
    assert!(l.flag("ok") && l.flag("recv_pattern") && l.flag("fin"), "{}", out.dump());
    assert_eq!(l.int("bytes_recv") as u64, ANSWER);
    assert_eq!(l.get("recv_fnv"), answer_fnv);
}
each_peer!(peer_half_closes_first_we_answer);

/// 2,000 streams, each written with one `send` and half-closed in the same
/// turn, with no flush in between (what `write_all` then `shutdown` does),
/// read by the peer as a plain application reads: the first end of stream
/// ends it (`-plain-read` for hashicorp: no FIN check, no Ping barrier;
/// js-libp2p always reads so). Both peers apply a frame's FIN before its
/// payload, so a FIN riding on the last Data frame would lose those bytes.
fn write_then_close_at_once_loses_nothing(kind: PeerKind, setup: Setup) {
    const STREAMS: usize = 2_000;
    const BYTES: usize = 10_000;
    const IN_FLIGHT: usize = 32;
    let args = ["-streams", "2000", "-bytes", "10000", "-plain-read", "-timeout", "60s"];
    let (peer, mut drv) = start(kind, setup, "sink", &args);
    let mut book = Book::new(7);
    let (mut opened, mut closed, mut live) = (0, 0, 0);
    book.run(&mut drv, "2,000 write-then-close streams", Duration::from_secs(28), |drv, _, ev| {
        if let Some(Event::StreamClosed { .. }) = ev {
            closed += 1;
            live -= 1;
        }
        while opened < STREAMS && live < IN_FLIGHT {
            let Ok(id) = drv.conn.open() else { break };
            let body = driver::pattern(id.0, 0, BYTES);
            assert_eq!(drv.conn.send(id, &body).unwrap(), BYTES, "the whole message is taken");
            drv.conn.close_write(id).unwrap();
            opened += 1;
            live += 1;
        }
        closed == STREAMS
    });
    let out = wait_for_peer_close(&mut drv, peer);
    let lines = out.streams_with("fin");
    assert_eq!(lines.len(), STREAMS, "{}", out.dump());
    let short: Vec<_> = lines.iter().filter(|l| l.int("bytes") as usize != BYTES).collect();
    assert!(short.is_empty(), "{} streams arrived short, e.g. {}", short.len(), short[0].raw);
    assert!(lines.iter().all(|l| l.flag("ok") && l.flag("pattern")), "{}", out.dump());
    assert_no_fin_on_data(&drv);
}
each_peer!(write_then_close_at_once_loses_nothing);

// ---------------------------------------------------------------------------
// Ping

/// The peer pings us ten times; every ping is answered.
fn peer_pings_us(kind: PeerKind, setup: Setup) {
    let (peer, mut drv) = start(kind, setup, "ping", &["-msgs", "10"]);
    let out = wait_for_peer_close(&mut drv, peer);
    let pings = out.lines("ping");
    assert_eq!(pings.len(), 10, "{}", out.dump());
    assert!(pings.iter().all(|l| l.get("err") == "none"), "{}", out.dump());
    // js-libp2p also pings once when its muxer starts.
    assert_eq!(drv.wire_out.pongs(), drv.wire_in.pings(), "every ping answered once");
    assert!(drv.wire_in.pings() >= 10);
    assert!(out.ok(), "{}", out.dump());
}
// The `yamux` crate has no ping API.
each_peer!(peer_pings_us, programs_only);

/// We ping the idle peer five times, one after another; each is answered
/// (as are the pings our connection sends by itself to measure the RTT:
/// the run waits for those answers too before closing).
fn we_ping_peer(kind: PeerKind, setup: Setup) {
    let (peer, mut drv) = start(kind, setup, "idle", &["-hold", "10s"]);
    let mut ours: Vec<u32> = Vec::new();
    let mut answered = 0;
    drv.run("five pongs", Duration::from_secs(10), |drv, ev| {
        if let Some(Event::Pong { opaque, .. }) = ev {
            answered += usize::from(ours.last() == Some(&opaque));
        }
        if answered == ours.len() && ours.len() < 5 {
            ours.push(drv.conn.ping().expect("ping"));
        }
        answered == 5 && drv.wire_in.pongs() == drv.wire_out.pings()
    });
    drv.close(|_, _| {});
    let out = peer.wait(Duration::from_secs(10));
    assert_eq!(drv.wire_in.pongs(), drv.wire_out.pings(), "every ping answered");
    let idle = out.line("session_closed", "pings_in");
    assert!(idle.flag("session_closed"), "our close ends the peer's session: {}", idle.raw);
    assert_eq!(idle.int("pings_in") as usize, drv.wire_out.pings(), "{}", idle.raw);
    // (The peer's own `pongs_out` count is not compared: hashicorp answers
    // from a goroutine, and its summary can be printed before the last pong
    // passes its sniffer. Our side of the wire saw every pong, above.)
    assert!(out.ok(), "{}", out.dump());
}
each_peer!(we_ping_peer);

// ---------------------------------------------------------------------------
// Go Away both ways

/// The peer's `goaway`: it opens a stream, writes 1 MiB that we echo, and
/// sends Go Away (code 0): hashicorp halfway through the stream, js-libp2p
/// (`muxer.close()`) and the `yamux` crate (`poll_close`) once the stream is
/// done, then they close TCP. The stream arrives whole both ways, we can no
/// longer open, and the connection ends with a typed reason.
fn peer_goes_away(kind: PeerKind, setup: Setup) {
    let (peer, mut drv) = start(kind, setup, "goaway", &["-hold", "5s"]);
    let mut book = Book::new(8);
    book.echo = true;
    book.check_pattern = true;
    let mut open_after = None;
    // Hashicorp opens a 16-byte probe stream after its own Go Away and keeps
    // TCP open; the others open nothing more and close TCP.
    let ends = kind.ends_session_with_go_away();
    let streams = if ends { 1 } else { 2 };
    book.run(&mut drv, "the peer's streams and go-away", Duration::from_secs(15), |drv, b, ev| {
        if let Some(Event::GoAwayReceived { code }) = ev {
            assert_eq!(*code, GoAwayCode::Normal);
            open_after = Some(drv.conn.open());
        }
        b.len() == streams && b.all_closed() && (!ends || drv.eof) && open_after.is_some()
    });
    // The TCP FIN follows a session-ending Go Away at once; when both arrive
    // in one read, the connection has already closed by the time the event
    // is polled, and `open` says `Closed`.
    match open_after {
        Some(Err(OpenError::RemoteGoingAway)) => {}
        Some(Err(OpenError::Closed)) if ends && drv.eof => {}
        other => panic!("open after the peer's go-away: {other:?}"),
    }
    assert_eq!(drv.wire_in.go_aways(), vec![0]);
    let first = book.streams.values().next().unwrap();
    assert_eq!((first.recv, first.sent, first.mismatch_at), (1 << 20, 1 << 20, None));
    let out = if ends {
        drv.finish(|_, _| {});
        assert_eq!(drv.closed, Some(CloseReason::TransportClosed));
        let out = peer.wait(Duration::from_secs(10));
        if kind == PeerKind::Js {
            let after = out.line("goaway_sent", "open_after_goaway_err");
            assert_eq!(after.get("open_after_goaway_err"), "Muxer closed locally");
        }
        out
    } else {
        assert!(!drv.conn.is_closed(), "a normal Go Away does not end the connection");
        drv.close(|_, _| {});
        peer.wait(Duration::from_secs(10))
    };
    let line = out.results.iter().find(|r| r.kind == "stream" && r.kv.contains_key("bytes_recv"));
    assert!(line.is_some_and(|l| l.flag("ok")), "{}", out.dump());
    assert!(out.ok(), "{}", out.dump());
}
each_peer!(peer_goes_away);

/// Runs until our connection closes, sending Go Away (code 0) once stream
/// `a` has sent 200 kB. Returns when the Go Away was sent and how long the
/// end took after it.
fn go_away_midway(drv: &mut Driver, book: &mut Book, a: StreamId) -> (Duration, Duration) {
    let mut sent_at = None;
    book.run(drv, "the end after our go-away", Duration::from_secs(15), |drv, b, _| {
        if sent_at.is_none() && b.streams[&a].sent >= 200_000 {
            drv.conn.go_away(GoAwayCode::Normal);
            sent_at = Some(drv.elapsed());
        }
        drv.closed.is_some()
    });
    let sent_at = sent_at.expect("go-away sent");
    (sent_at, drv.elapsed() - sent_at)
}

/// We send Go Away (code 0) while two of our streams are running to the
/// peer's echo. Hashicorp keeps serving: both streams finish and we end
/// `Drained`. js-libp2p and the `yamux` crate take a Go Away as the end of
/// the session: they drop their streams without RST and close TCP, so ours
/// end at once with a typed reset (`ConnectionClosed(TransportClosed)`),
/// never after a timeout, and what did arrive is intact.
fn we_go_away_during_our_streams(kind: PeerKind, setup: Setup) {
    const BYTES: u64 = 600_000;
    let (peer, mut drv) = start(kind, setup, "echo", &[]);
    let mut book = Book::new(9);
    book.check_pattern = true;
    let a = book.open(&mut drv, BYTES, true);
    let b_id = book.open(&mut drv, BYTES, true);
    let (_, took) = go_away_midway(&mut drv, &mut book, a);
    assert_eq!(drv.wire_out.go_aways(), vec![0]);
    if !kind.ends_session_with_go_away() {
        assert_eq!(drv.closed, Some(CloseReason::Drained));
        for id in [a, b_id] {
            let r = &book.streams[&id];
            assert_eq!((r.recv, r.mismatch_at, r.reset), (BYTES, None, None), "stream {id}");
        }
        // Hashicorp still reads what it buffered after our drain: leave
        // TCP open until it closes.
        drv.run("hashicorp to close", Duration::from_secs(10), |drv, _| drv.eof);
        drv.finish(|_, _| {});
    } else {
        assert_eq!(drv.closed, Some(CloseReason::TransportClosed));
        assert!(took < Duration::from_secs(2), "the end took {took:?}");
        for id in [a, b_id] {
            let r = &book.streams[&id];
            assert_eq!(r.mismatch_at, None, "stream {id}: what arrived is intact");
            if r.recv < BYTES {
                let reason = ResetReason::ConnectionClosed(CloseReason::TransportClosed);
                assert_eq!(r.reset, Some(reason), "stream {id}: cut short, so reset");
            }
        }
        drv.finish(|_, _| {});
    }
    let out = peer.wait(Duration::from_secs(10));
    assert_eq!(out.line("remote_goaway", "open_err").int("code"), 0, "{}", out.dump());
    eprintln!("observed: {} ended {:?} {took:?} after our go-away", kind.name(), drv.closed);
}
each_peer!(we_go_away_during_our_streams);

/// js-libp2p on a transport that stays open when its muxer closes (the
/// socket is not ended: `-keep-tcp`). After our Go Away it neither answers
/// nor closes, so the Ping that follows our Go Away goes unanswered and the
/// connection ends `GoAwayUnanswered` at the ping timeout, not at the 60 s
/// drain deadline.
#[test]
fn we_go_away_to_js_that_keeps_tcp_open() {
    let ping_timeout = Duration::from_secs(2);
    let config = {
        let mut c = config();
        c.ping_timeout = ping_timeout;
        c
    };
    let (peer, mut drv) =
        start_with(PeerKind::Js, Setup::PEER_SERVER, "echo", &["-keep-tcp"], config);
    let mut book = Book::new(10);
    let a = book.open(&mut drv, 600_000, true);
    let (sent_at, took) = go_away_midway(&mut drv, &mut book, a);
    assert_eq!(drv.closed, Some(CloseReason::GoAwayUnanswered));
    assert!(!drv.eof, "js-libp2p kept TCP open");
    // (Timed from our command; the Ping is stamped with the connection's last
    // input time, up to one driver turn earlier.)
    assert!(took > ping_timeout * 9 / 10 && took < ping_timeout * 2, "took {took:?}");
    let pings: Vec<_> = drv.wire_out.of_type(FrameType::Ping).collect();
    assert!(pings.iter().any(|p| p.at >= sent_at && p.has(Flags::SYN)));
    let reason = ResetReason::ConnectionClosed(CloseReason::GoAwayUnanswered);
    assert_eq!(book.streams[&a].reset, Some(reason));
    drv.finish(|_, _| {});
    drop(peer);
}
