//! Wire-level scenarios: what exactly goes out, in which order, in which
//! sizes. These drive bare `Connection`s with `poll_transmit` and decode the
//! headers with `yamux_proto::frame::Header::decode`, so nothing between the
//! state machine and the bytes is hidden.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use support::frames::{drain_events as events, encode, quiet_config, transmit_frames as frames};
use support::pattern::pattern;
use yamux_proto::frame::{Decoder, Flags, FrameType, Header, HEADER_LEN};
use yamux_proto::{
    CloseReason, CloseWriteError, Config, ConfigError, Connection, Event, GoAwayCode,
    ProtocolError, ReadError, ResetReason, Role, SendError, StopReadingError, StreamId,
    DEFAULT_WINDOW, MAX_FRAME_BODY,
};

fn conn(role: Role, config: Config, now: Instant) -> Connection {
    Connection::new(config, role, now).unwrap()
}

fn feed(c: &mut Connection, now: Instant, frames: &[(Header, Bytes)]) {
    c.handle_input(now, &encode(frames));
}

fn inject(c: &mut Connection, now: Instant, header: Header, body: &[u8]) {
    feed(c, now, &[(header, Bytes::copy_from_slice(body))]);
}

fn check(c: &Connection) {
    c.check_invariants().expect("invariants");
}

fn id(n: u32) -> StreamId {
    StreamId(n)
}

/// The bytes of a simple exchange are exactly what the spec prescribes:
/// SYN on a Window Update, Data, FIN alone on an empty Window Update, ACK on
/// a Window Update, Ping request/response, Go Away.
#[test]
fn wire_bytes_of_a_simple_exchange() {
    let now = Instant::now();
    let mut c = conn(Role::Client, quiet_config(), now);
    let mut s = conn(Role::Server, quiet_config(), now);

    let s1 = c.open().unwrap();
    assert_eq!(s1, id(1));
    let syn = encode(&frames(&mut c));
    assert_eq!(syn, [0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0], "Window Update, SYN, id 1, delta 0");
    c.send(s1, b"hi").unwrap();
    let data = encode(&frames(&mut c));
    assert_eq!(data, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, b'h', b'i'], "Data, id 1, 2 bytes");
    c.close_write(s1).unwrap();
    let fin = encode(&frames(&mut c));
    assert_eq!(fin, [0, 1, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0], "Window Update, FIN, id 1, delta 0");

    s.handle_input(now, &[syn, data, fin].concat());
    assert_eq!(
        events(&mut s),
        vec![
            Event::StreamOpened { id: s1 },
            Event::Readable { id: s1 },
            Event::PeerHalfClosed { id: s1 },
        ]
    );
    let ack = encode(&frames(&mut s));
    assert_eq!(ack, [0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0], "Window Update, ACK, id 1, delta 0");
    s.send(s1, b"yo").unwrap();
    s.close_write(s1).unwrap();
    let reply = encode(&frames(&mut s));
    assert_eq!(
        reply,
        [
            [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, b'y', b'o'].as_slice(),
            &[0, 1, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0]
        ]
        .concat(),
        "the data, then the FIN in a frame of its own (never on the data)"
    );

    c.handle_input(now, &[ack, reply].concat());
    assert_eq!(events(&mut c), vec![Event::Readable { id: s1 }, Event::PeerHalfClosed { id: s1 }]);
    assert_eq!(c.read(s1, usize::MAX), Ok(Some(Bytes::from_static(b"yo"))));
    assert_eq!(c.read(s1, usize::MAX), Ok(None), "the FIN, after the last byte");
    assert_eq!(events(&mut c), vec![Event::StreamClosed { id: s1 }], "read out: it ends");

    let opaque = c.ping().unwrap();
    let ping = encode(&frames(&mut c));
    let o = opaque.to_be_bytes();
    assert_eq!(ping, [0, 2, 0, 1, 0, 0, 0, 0, o[0], o[1], o[2], o[3]], "Ping, SYN, opaque");
    s.handle_input(now, &ping);
    let pong = encode(&frames(&mut s));
    assert_eq!(pong, [0, 2, 0, 2, 0, 0, 0, 0, o[0], o[1], o[2], o[3]], "Ping, ACK, same opaque");

    // The server reads "hi" last. Both FINs are out, so reading its last
    // byte ends the stream: nothing more goes out for it (the peer forgets
    // it on our FIN; credit now would only be discarded there).
    assert_eq!(s.read(s1, usize::MAX), Ok(Some(Bytes::from_static(b"hi"))));
    assert_eq!(events(&mut s), vec![Event::StreamClosed { id: s1 }]);
    assert!(frames(&mut s).is_empty(), "no credit for an ended stream");

    s.go_away(GoAwayCode::Normal);
    let go_away = encode(&frames(&mut s));
    assert_eq!(go_away, [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "Go Away, normal");

    check(&c);
    check(&s);
}

/// Close before ACK: the SYN and the FIN of a stream that never carried
/// data share one empty Window Update.
#[test]
fn close_before_ack_syn_and_fin_share_one_frame() {
    let now = Instant::now();
    let mut c = conn(Role::Client, quiet_config(), now);
    let s1 = c.open().unwrap();
    c.close_write(s1).unwrap();
    let out = frames(&mut c);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Header::window_update(s1, Flags::SYN.with(Flags::FIN), 0));
    check(&c);
}

/// A larger initial window is announced on the SYN and on the ACK as the
/// additive delta above 256 KiB.
#[test]
fn large_initial_window_delta_on_syn_and_ack() {
    let big = 1u32 << 20;
    let config = {
        let mut c = quiet_config();
        c.initial_stream_window = big;
        c.max_stream_window = big;
        c
    };
    let now = Instant::now();
    let mut c = conn(Role::Client, config.clone(), now);
    let mut s = conn(Role::Server, config, now);
    let s1 = c.open().unwrap();
    let syn = frames(&mut c);
    assert_eq!(
        syn.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![Header::window_update(s1, Flags::SYN, big - DEFAULT_WINDOW)]
    );
    assert_eq!(&encode(&syn)[8..12], &[0, 0x0c, 0, 0], "786432 = 0x000C0000");
    feed(&mut s, now, &syn);
    let ack = frames(&mut s);
    assert_eq!(
        ack.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![Header::window_update(s1, Flags::ACK, big - DEFAULT_WINDOW)]
    );
    feed(&mut c, now, &ack);
    assert_eq!(c.stream_info(s1).unwrap().send_credit, big);
    // The announcement is not credit returned for consumed data.
    assert!(!events(&mut c).iter().any(|e| matches!(e, Event::CreditsReturned { .. })));
    assert_eq!(c.stream_info(s1).unwrap().uncredited, 0);
    check(&c);
    check(&s);
}

/// Control frames go ahead of queued data: a pong and a window update
/// requested while a large transfer is queued come out before the remaining
/// data frames.
#[test]
fn control_frames_ahead_of_data() {
    let now = Instant::now();
    let mut c = conn(Role::Client, quiet_config(), now);
    let s1 = c.open().unwrap();
    let w = DEFAULT_WINDOW as usize;
    assert_eq!(c.send(s1, &pattern(w, 1)).unwrap(), w);
    let first = c.poll_transmit().unwrap();
    let h = Header::decode(&first.header).unwrap();
    assert_eq!(h, Header::data(s1, Flags::SYN, 64 * 1024), "SYN rides on the first data");

    // The server opens stream 2 and sends half a window; we read it, so
    // a window update (with our ACK) is due. Then a ping arrives.
    inject(&mut c, now, Header::window_update(id(2), Flags::SYN, 0), &[]);
    inject(&mut c, now, Header::data(id(2), Flags::NONE, (w / 2) as u32), &pattern(w / 2, 2));
    let ev = events(&mut c);
    assert_eq!(ev[0], Event::StreamOpened { id: id(2) });
    let mut read = 0;
    while let Ok(Some(piece)) = c.read(id(2), usize::MAX) {
        read += piece.len();
    }
    assert_eq!(read, w / 2);
    inject(&mut c, now, Header::ping(Flags::SYN, 7), &[]);

    let out: Vec<Header> = frames(&mut c).into_iter().map(|f| f.0).collect();
    assert_eq!(
        out,
        vec![
            Header::ping(Flags::ACK, 7),
            // The ACK's delta is initial window only (the peer reads it so);
            // the consumed credit follows in a Window Update of its own.
            Header::window_update(id(2), Flags::ACK, 0),
            Header::window_update(id(2), Flags::NONE, (w / 2) as u32),
            Header::data(s1, Flags::NONE, 64 * 1024),
            Header::data(s1, Flags::NONE, 64 * 1024),
            Header::data(s1, Flags::NONE, 64 * 1024),
        ]
    );
    check(&c);
}

/// Two bulk streams share the link fairly: their data frames alternate.
#[test]
fn fair_round_robin_between_bulk_streams() {
    let now = Instant::now();
    let mut c = conn(
        Role::Client,
        {
            let mut c = quiet_config();
            c.max_frame_size = 16 * 1024;
            c
        },
        now,
    );
    let a = c.open().unwrap();
    let b = c.open().unwrap();
    let w = DEFAULT_WINDOW as usize;
    c.send(a, &pattern(w, 1)).unwrap();
    c.send(b, &pattern(w, 2)).unwrap();
    let out = frames(&mut c);
    let ids: Vec<StreamId> = out.iter().map(|f| f.0.stream_id).collect();
    assert_eq!(ids.len(), 2 * w / (16 * 1024));
    for (i, pair) in ids.chunks(2).enumerate() {
        assert_eq!(pair, [a, b], "frame pair {i}: {ids:?}");
    }
    assert!(out.iter().all(|f| f.0.frame_type == FrameType::Data && f.1.len() == 16 * 1024));
    check(&c);
}

/// A stream with a little data is not starved behind a bulk one: it goes out
/// in the next round-robin slot.
#[test]
fn a_small_write_is_not_starved_by_a_bulk_stream() {
    let now = Instant::now();
    let mut c = conn(
        Role::Client,
        {
            let mut c = quiet_config();
            c.max_frame_size = 16 * 1024;
            c
        },
        now,
    );
    let bulk = c.open().unwrap();
    c.send(bulk, &pattern(DEFAULT_WINDOW as usize, 1)).unwrap();
    let _ = frames(&mut c).len(); // everything within credit went out
    let small = c.open().unwrap();
    // Grant the bulk stream more credit and queue more bulk data first.
    inject(&mut c, now, Header::window_update(bulk, Flags::ACK, 0), &[]);
    inject(&mut c, now, Header::window_update(bulk, Flags::NONE, 128 * 1024), &[]);
    c.send(bulk, &pattern(128 * 1024, 2)).unwrap();
    c.send(small, b"tiny").unwrap();
    let ids: Vec<StreamId> = frames(&mut c).iter().map(|f| f.0.stream_id).collect();
    let pos = ids.iter().position(|&i| i == small).unwrap();
    assert!(pos <= 1, "the small stream waited behind {pos} bulk frames: {ids:?}");
    check(&c);
}

/// No Data frame body exceeds `max_frame_size`, the copying path cuts frames
/// to the room it is given, and nothing ever exceeds 1 MiB even when the
/// peer grants far more credit.
#[test]
fn frames_never_exceed_max_frame_size_nor_1_mib() {
    let now = Instant::now();
    // max_frame_size is bounded by configuration.
    let over = {
        let mut c = quiet_config();
        c.max_frame_size = MAX_FRAME_BODY + 1;
        c
    };
    assert_eq!(over.validate(), Err(ConfigError::FrameSize));

    // A 16 KiB bound.
    let mut c = conn(
        Role::Client,
        {
            let mut c = quiet_config();
            c.max_frame_size = 16 * 1024;
            c
        },
        now,
    );
    let s1 = c.open().unwrap();
    c.send(s1, &pattern(DEFAULT_WINDOW as usize, 1)).unwrap();
    let out = frames(&mut c);
    assert!(out.iter().all(|f| f.1.len() <= 16 * 1024));
    assert_eq!(out.iter().map(|f| f.1.len()).sum::<usize>(), DEFAULT_WINDOW as usize);

    // The copying path, with 1000 bytes of room at a time.
    let mut c = conn(Role::Client, quiet_config(), now);
    let s1 = c.open().unwrap();
    let data = pattern(100_000, 2);
    c.send(s1, &data).unwrap();
    let mut wire = Vec::new();
    loop {
        let mut buf = Vec::new();
        let n = c.write_transmits(&mut buf, 1000);
        assert_eq!(n, buf.len());
        assert!(n <= 1000, "wrote {n} bytes into 1000 of room");
        if n == 0 {
            break;
        }
        wire.extend(buf);
    }
    let mut d = Decoder::new(MAX_FRAME_BODY);
    d.extend(&wire);
    let mut got = Vec::new();
    while let Some(f) = d.decode().unwrap() {
        assert!(f.body.len() <= 1000 - HEADER_LEN);
        got.extend_from_slice(&f.body);
    }
    assert_eq!(got, data);

    // A peer granting 16 MiB: frames are still at most 1 MiB.
    let huge = 16u32 << 20;
    let mut c = conn(
        Role::Client,
        {
            let mut c = quiet_config();
            c.max_frame_size = MAX_FRAME_BODY;
            c.max_send_buffer = 4 << 20;
            c
        },
        now,
    );
    let mut s = conn(
        Role::Server,
        {
            let mut c = quiet_config();
            c.initial_stream_window = huge;
            c.max_stream_window = huge;
            c.max_streams = 16;
            c
        },
        now,
    );
    let s1 = c.open().unwrap();
    let syn = frames(&mut c);
    feed(&mut s, now, &syn);
    let ack = frames(&mut s);
    feed(&mut c, now, &ack);
    assert_eq!(c.stream_info(s1).unwrap().send_credit, huge);
    assert_eq!(c.send(s1, &pattern(4 << 20, 3)).unwrap(), 4 << 20);
    let out = frames(&mut c);
    assert_eq!(out.iter().map(|f| f.1.len()).collect::<Vec<_>>(), vec![1 << 20; 4]);
    check(&c);
    check(&s);
}

/// FIN is sent exactly once, after all data, even when `close_write` is
/// called twice or again after the FIN went out; data blocked on credit
/// holds the FIN back.
#[test]
fn fin_sent_exactly_once_after_all_data() {
    let now = Instant::now();
    let mut c = conn(Role::Client, quiet_config(), now);
    let s1 = c.open().unwrap();
    let w = DEFAULT_WINDOW as usize;
    assert_eq!(c.send(s1, &pattern(w, 1)).unwrap(), w);
    let first = frames(&mut c);
    assert_eq!(c.send(s1, b"tail").unwrap(), 4, "buffered, no credit left");
    c.close_write(s1).unwrap();
    c.close_write(s1).unwrap();
    assert_eq!(c.send(s1, b"x"), Err(SendError::WriteClosed));
    assert!(frames(&mut c).is_empty(), "the FIN waits behind data blocked on credit");
    inject(&mut c, now, Header::window_update(s1, Flags::ACK, 0), &[]);
    inject(&mut c, now, Header::window_update(s1, Flags::NONE, 4), &[]);
    let last = frames(&mut c);
    assert_eq!(last.len(), 2);
    assert_eq!(last[0].0, Header::data(s1, Flags::NONE, 4));
    assert_eq!(&last[0].1[..], b"tail");
    assert_eq!(last[1].0, Header::window_update(s1, Flags::FIN, 0), "FIN alone, after the data");
    c.close_write(s1).unwrap();
    inject(&mut c, now, Header::window_update(s1, Flags::NONE, 1000), &[]);
    let later = frames(&mut c);
    assert!(later.is_empty(), "{later:?}");
    let fins =
        first.iter().chain(&last).chain(&later).filter(|f| f.0.flags.contains(Flags::FIN)).count();
    assert_eq!(fins, 1);
    check(&c);
}

/// Frames for unknown or closed streams happen in normal operation (races
/// with close): they are discarded, never answered with RST, and do not hurt
/// the connection.
#[test]
fn frames_for_unknown_or_closed_streams_are_discarded_without_rst() {
    let now = Instant::now();
    let mut s = conn(Role::Server, quiet_config(), now);
    inject(&mut s, now, Header::data(id(5), Flags::NONE, 3), b"zzz");
    inject(&mut s, now, Header::window_update(id(7), Flags::NONE, 1000), &[]);
    inject(&mut s, now, Header::data(id(9), Flags::FIN, 0), &[]);
    inject(&mut s, now, Header::window_update(id(11), Flags::RST, 0), &[]);
    inject(&mut s, now, Header::window_update(id(4), Flags::ACK, 0), &[]);
    assert!(frames(&mut s).is_empty());
    assert!(events(&mut s).is_empty());
    assert_eq!(s.stats().frames_discarded, 5);
    assert!(!s.is_closed());

    // A stream that was closed and forgotten.
    inject(&mut s, now, Header::data(id(1), Flags::SYN.with(Flags::FIN), 2), b"ok");
    s.close_write(id(1)).unwrap();
    assert_eq!(s.read(id(1), usize::MAX), Ok(Some(Bytes::from_static(b"ok"))));
    let _ = frames(&mut s);
    assert!(events(&mut s).contains(&Event::StreamClosed { id: id(1) }));
    inject(&mut s, now, Header::data(id(1), Flags::NONE, 4), b"late");
    inject(&mut s, now, Header::window_update(id(1), Flags::NONE, 100), &[]);
    inject(&mut s, now, Header::window_update(id(1), Flags::RST, 0), &[]);
    assert!(frames(&mut s).is_empty(), "no RST in answer");
    assert!(events(&mut s).is_empty());
    assert_eq!(s.stats().frames_discarded, 8);
    assert!(!s.is_closed());
    check(&s);
}

/// Two ends both configured as clients: the first stream fails the
/// connection with an error that says to check the roles.
#[test]
fn two_clients_are_told_to_check_the_roles() {
    let now = Instant::now();
    let mut a = conn(Role::Client, quiet_config(), now);
    let mut b = conn(Role::Client, quiet_config(), now);
    let id = a.open().unwrap();
    feed(&mut b, now, &frames(&mut a));
    let reason = b.close_reason().expect("closed");
    assert_eq!(reason, CloseReason::Protocol(ProtocolError::InvalidStreamId(id)));
    let message = reason.to_string();
    assert!(message.contains("check the roles"), "{message}");
    // The Go Away (protocol error) tells the other end too.
    feed(&mut a, now, &frames(&mut b));
    assert_eq!(a.close_reason(), Some(CloseReason::RemoteGoAway(GoAwayCode::ProtocolError)));
}

/// `reset_with_code` puts the code in the RST frame's length (go-yamux's
/// convention), on an established stream and on a refusal alike; the
/// receiving side reports it as `ResetReason::Remote { code }` (a refusal
/// as `Refused`).
#[test]
fn reset_with_code_carries_the_code_to_the_peer() {
    let now = Instant::now();
    let mut c = conn(Role::Client, quiet_config(), now);
    let mut s = conn(Role::Server, quiet_config(), now);
    let a = c.open().unwrap();
    let b = c.open().unwrap();
    feed(&mut s, now, &frames(&mut c));
    events(&mut s);
    // `b` is refused: reset before its ACK went out.
    s.reset_with_code(b, 0xdead_beef).unwrap();
    let out = frames(&mut s);
    // `a`'s ACK, and the refusal of `b` (no ACK before it).
    assert_eq!(out[0].0, Header::window_update(a, Flags::ACK, 0));
    assert_eq!(out[1..].len(), 1, "{out:?}");
    assert_eq!(out[1].0, Header::window_update(b, Flags::RST, 0xdead_beef));
    feed(&mut c, now, &out);
    // `a` is established, then reset.
    s.reset_with_code(a, 42).unwrap();
    let rst = frames(&mut s);
    assert_eq!(rst.len(), 1);
    assert_eq!(rst[0].0, Header::window_update(a, Flags::RST, 42));
    feed(&mut c, now, &rst);
    let resets: Vec<_> = events(&mut c)
        .into_iter()
        .filter_map(|e| match e {
            Event::StreamReset { id, reason } => Some((id, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        resets,
        [
            // An RST before any other frame of the peer is a refusal to
            // its opener, whatever the code.
            (b, ResetReason::Refused),
            (a, ResetReason::Remote { code: 42 }),
        ]
    );
    // A plain reset sends 0.
    let d = c.open().unwrap();
    let _ = frames(&mut c);
    c.reset(d).unwrap();
    assert_eq!(frames(&mut c)[0].0, Header::window_update(d, Flags::RST, 0));
    check(&c);
    check(&s);
}

/// A stream the peer reset keeps what arrived before the reset until it is
/// read, but takes no more frames: the peer's Window Update or data still in
/// flight is discarded, so nothing about the stream (`CreditsReturned`
/// included) follows its `StreamReset`, however slowly it is read.
#[test]
fn a_reset_stream_waiting_to_be_read_takes_no_more_frames() {
    let now = Instant::now();
    let mut s = conn(Role::Server, quiet_config(), now);
    inject(&mut s, now, Header::data(id(1), Flags::SYN, 5), b"early");
    inject(&mut s, now, Header::window_update(id(1), Flags::RST, 0), &[]);
    let before = s.stats().frames_discarded;
    inject(&mut s, now, Header::window_update(id(1), Flags::NONE, 70_000), &[]);
    inject(&mut s, now, Header::window_update(id(1), Flags::FIN, 0), &[]);
    assert_eq!(s.stats().frames_discarded, before + 2);
    assert_eq!(
        events(&mut s),
        [
            Event::StreamOpened { id: id(1) },
            Event::Readable { id: id(1) },
            Event::StreamReset { id: id(1), reason: ResetReason::Remote { code: 0 } },
        ]
    );
    assert_eq!(s.read(id(1), usize::MAX), Ok(Some(Bytes::from_static(b"early"))));
    assert_eq!(events(&mut s), [Event::StreamClosed { id: id(1) }]);
    assert!(!s.is_closed());
    check(&s);
}

/// A SYN reusing the id of a stream that was closed is a protocol error, as
/// `ProtocolError::StreamIdReused` documents ("open, or was used before"):
/// the ids the peer used are remembered after their streams are forgotten.
#[test]
fn syn_reusing_a_closed_stream_id_is_a_protocol_error() {
    let now = Instant::now();
    let mut s = conn(Role::Server, quiet_config(), now);
    inject(&mut s, now, Header::data(id(1), Flags::SYN.with(Flags::FIN), 2), b"ok");
    s.close_write(id(1)).unwrap();
    assert_eq!(s.read(id(1), usize::MAX), Ok(Some(Bytes::from_static(b"ok"))));
    let _ = frames(&mut s);
    assert!(events(&mut s).contains(&Event::StreamClosed { id: id(1) }));
    inject(&mut s, now, Header::window_update(id(1), Flags::SYN, 0), &[]);
    assert_eq!(s.close_reason(), Some(CloseReason::Protocol(ProtocolError::StreamIdReused(id(1)))));
}

/// A SYN for a stream that is still open is a protocol error: Go Away (1).
#[test]
fn syn_for_an_open_stream_is_a_protocol_error() {
    let now = Instant::now();
    let mut s = conn(Role::Server, quiet_config(), now);
    inject(&mut s, now, Header::window_update(id(1), Flags::SYN, 0), &[]);
    let _ = frames(&mut s);
    inject(&mut s, now, Header::window_update(id(1), Flags::SYN, 0), &[]);
    let reason = CloseReason::Protocol(ProtocolError::StreamIdReused(id(1)));
    assert_eq!(s.close_reason(), Some(reason));
    let out: Vec<Header> = frames(&mut s).into_iter().map(|f| f.0).collect();
    assert_eq!(out, vec![Header::go_away(1)]);
    check(&s);
}

/// The peer exceeding our receive window is fatal (as in both reference
/// implementations): Go Away (protocol error) and a typed reason.
#[test]
fn receive_window_overflow_is_fatal() {
    let now = Instant::now();
    let mut s = conn(Role::Server, quiet_config(), now);
    let w = DEFAULT_WINDOW as usize;
    inject(&mut s, now, Header::data(id(1), Flags::SYN, w as u32), &pattern(w, 1));
    let _ = frames(&mut s);
    inject(&mut s, now, Header::data(id(1), Flags::NONE, 1), b"!");
    let reason = CloseReason::Protocol(ProtocolError::WindowExceeded(id(1)));
    assert_eq!(s.close_reason(), Some(reason));
    let out: Vec<Header> = frames(&mut s).into_iter().map(|f| f.0).collect();
    assert_eq!(out, vec![Header::go_away(1)]);
    let ev = events(&mut s);
    assert_eq!(ev.last(), Some(&Event::ConnectionClosed { reason }));
    check(&s);
}

/// The #133 answer on the wire: the reader (which sent nothing) half-closes
/// and stops: the credit of everything unread goes back first, then the FIN,
/// then the RST, so the peer's writer neither stalls nor writes into the void.
#[test]
fn stop_reading_on_the_wire_credit_then_fin_then_rst() {
    let now = Instant::now();
    let mut s = conn(Role::Server, quiet_config(), now);
    inject(&mut s, now, Header::data(id(1), Flags::SYN, 1000), &pattern(1000, 1));
    let _ = events(&mut s);
    assert_eq!(
        frames(&mut s).into_iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![Header::window_update(id(1), Flags::ACK, 0)]
    );
    assert_eq!(s.read(id(1), 500).map(|c| c.map(|c| c.len())), Ok(Some(500)));
    assert!(frames(&mut s).is_empty(), "500 bytes is below half the window");
    s.close_write(id(1)).unwrap();
    s.stop_reading(id(1)).unwrap();
    let out: Vec<Header> = frames(&mut s).into_iter().map(|f| f.0).collect();
    assert_eq!(
        out,
        vec![
            Header::window_update(id(1), Flags::NONE, 1000),
            Header::window_update(id(1), Flags::FIN, 0),
            Header::window_update(id(1), Flags::RST, 0),
        ]
    );
    assert_eq!(events(&mut s), vec![Event::StreamClosed { id: id(1) }]);
    check(&s);
}

/// After the stop-reading RST, commands on the stream say why it was reset:
/// not `Local` (the application never called `reset`).
#[test]
fn commands_after_the_stop_reading_reset_name_stop_reading() {
    let now = Instant::now();
    let mut s = conn(Role::Server, quiet_config(), now);
    inject(&mut s, now, Header::data(id(1), Flags::SYN, 10), &pattern(10, 1));
    let _ = frames(&mut s);
    s.close_write(id(1)).unwrap();
    s.stop_reading(id(1)).unwrap();
    let out: Vec<Header> = frames(&mut s).into_iter().map(|f| f.0).collect();
    assert!(out.contains(&Header::window_update(id(1), Flags::RST, 0)), "{out:?}");
    let reason = ResetReason::StoppedReading;
    assert_eq!(s.send(id(1), b"late"), Err(SendError::Reset(reason)));
    assert_eq!(s.close_write(id(1)), Err(CloseWriteError::Reset(reason)));
    assert_eq!(s.stop_reading(id(1)), Err(StopReadingError::Reset(reason)));
    check(&s);
}

/// Bytes still unread when the application stops reading are released
/// then: `read` answers `Stopped` from then on, also once the peer's FIN has
/// arrived, and their credit goes back exactly once. Likewise for a stream
/// stopped after the FIN.
#[test]
fn read_after_stop_reading_is_stopped_whatever_the_peer_sends() {
    for fin_before_stop in [false, true] {
        let now = Instant::now();
        let mut s = conn(Role::Server, quiet_config(), now);
        inject(&mut s, now, Header::data(id(1), Flags::SYN, 1000), &pattern(1000, 1));
        if fin_before_stop {
            inject(&mut s, now, Header::window_update(id(1), Flags::FIN, 0), &[]);
        }
        assert!(events(&mut s).contains(&Event::Readable { id: id(1) }));
        assert_eq!(s.stream_info(id(1)).unwrap().recv_unread, 1000);
        s.stop_reading(id(1)).unwrap();
        if !fin_before_stop {
            inject(&mut s, now, Header::window_update(id(1), Flags::FIN, 0), &[]);
        }
        let what = format!("fin before stop: {fin_before_stop}");
        assert_eq!(s.read(id(1), usize::MAX), Err(ReadError::Stopped), "{what}");
        assert_eq!(s.stream_info(id(1)).unwrap().recv_unread, 0, "{what}");
        let out: Vec<Header> = frames(&mut s).into_iter().map(|f| f.0).collect();
        assert!(
            out.contains(&Header::window_update(id(1), Flags::ACK, 1000))
                || out.contains(&Header::window_update(id(1), Flags::NONE, 1000)),
            "the released bytes' credit goes back: {out:?}"
        );
        let granted: u32 =
            out.iter().filter(|h| h.frame_type == FrameType::WindowUpdate).map(|h| h.length).sum();
        assert_eq!(granted, 1000, "{what}: once, not twice");
        check(&s);
    }
}

/// A stream whose halves are both done (the peer's FIN and ours) but whose
/// data is unread lives until it is read; `stop_reading` drops that data
/// and ends it, and `reset` and `close_write` on it are then no-ops. On a
/// reset stream it reports the reset, like `close_write`.
#[test]
fn stop_reading_a_done_stream_drops_its_unread_data_and_ends_it() {
    let now = Instant::now();
    let mut s = conn(Role::Server, quiet_config(), now);
    inject(&mut s, now, Header::data(id(1), Flags::SYN.with(Flags::FIN), 10), &pattern(10, 1));
    s.close_write(id(1)).unwrap();
    let out: Vec<Header> = frames(&mut s).into_iter().map(|f| f.0).collect();
    assert_eq!(out, vec![Header::window_update(id(1), Flags::ACK.with(Flags::FIN), 0)]);
    assert_eq!(s.stream_count(), 1, "both halves done, 10 bytes unread: it lives");
    s.stop_reading(id(1)).unwrap();
    assert_eq!(s.stream_count(), 0, "nothing left to read: it ended");
    s.reset(id(1)).unwrap();
    s.close_write(id(1)).unwrap();
    assert_eq!(s.read(id(1), 10), Err(ReadError::Stopped));
    assert_eq!(
        events(&mut s),
        vec![
            Event::StreamOpened { id: id(1) },
            Event::Readable { id: id(1) },
            Event::PeerHalfClosed { id: id(1) },
            Event::StreamClosed { id: id(1) },
        ]
    );
    let out: Vec<Header> = frames(&mut s).into_iter().map(|f| f.0).collect();
    assert!(out.is_empty(), "nothing more goes out for an ended stream: {out:?}");
    assert_eq!(
        s.stop_reading(id(1)),
        Err(StopReadingError::UnknownStream),
        "forgotten once polled"
    );

    inject(&mut s, now, Header::data(id(3), Flags::SYN, 10), &pattern(10, 3));
    inject(&mut s, now, Header::window_update(id(3), Flags::RST, 0), &[]);
    let reset = ResetReason::Remote { code: 0 };
    assert_eq!(s.stop_reading(id(3)), Err(StopReadingError::Reset(reset)));
    assert_eq!(s.close_write(id(3)), Err(CloseWriteError::Reset(reset)));
    check(&s);
}

/// Stop reading when data we sent is still unread at the peer: no RST until
/// the peer credits all of it back (a hashicorp peer returns credit after
/// our FIN as its application reads), then RST at once. Meanwhile incoming
/// data is discarded and credited immediately.
#[test]
fn stop_reading_resets_only_once_our_data_is_credited_back() {
    let now = Instant::now();
    let mut s = conn(Role::Server, quiet_config(), now);
    inject(&mut s, now, Header::data(id(1), Flags::SYN, 2), b"hi");
    let _ = events(&mut s);
    s.send(id(1), &pattern(1000, 1)).unwrap();
    s.close_write(id(1)).unwrap();
    s.stop_reading(id(1)).unwrap();
    // The ACK (initial window only), the credit of the discarded "hi", our
    // data, then the FIN alone. No RST: our 1000 bytes may still be unread
    // at the peer.
    let out: Vec<Header> = frames(&mut s).into_iter().map(|f| f.0).collect();
    assert_eq!(
        out,
        vec![
            Header::window_update(id(1), Flags::ACK, 0),
            Header::window_update(id(1), Flags::NONE, 2),
            Header::data(id(1), Flags::NONE, 1000),
            Header::window_update(id(1), Flags::FIN, 0),
        ]
    );

    // The peer keeps writing: discarded, credited at once, not delivered.
    inject(&mut s, now, Header::data(id(1), Flags::NONE, 300), &pattern(300, 2));
    let out: Vec<Header> = frames(&mut s).into_iter().map(|f| f.0).collect();
    assert_eq!(out, vec![Header::window_update(id(1), Flags::NONE, 300)]);
    assert!(events(&mut s).is_empty());

    // The peer reads part of our data: still no RST.
    inject(&mut s, now, Header::window_update(id(1), Flags::NONE, 600), &[]);
    assert!(frames(&mut s).is_empty());
    assert_eq!(s.stream_info(id(1)).unwrap().uncredited, 400);
    // It reads the rest: now nothing of ours can be unread, RST at once.
    inject(&mut s, now, Header::window_update(id(1), Flags::NONE, 400), &[]);
    let out: Vec<Header> = frames(&mut s).into_iter().map(|f| f.0).collect();
    assert_eq!(out, vec![Header::window_update(id(1), Flags::RST, 0)]);
    assert_eq!(
        events(&mut s),
        vec![
            Event::CreditsReturned { id: id(1), amount: 600 },
            Event::CreditsReturned { id: id(1), amount: 400 },
            Event::StreamClosed { id: id(1) },
        ]
    );
    check(&s);
}

/// We never send a Ping ACK nobody asked for (the `yamux` crate treats an
/// unexpected Pong as a protocol error), and an unexpected Pong from the
/// peer is ignored.
#[test]
fn no_unsolicited_pong_and_unknown_pongs_are_ignored() {
    let now = Instant::now();
    let mut c = conn(Role::Client, quiet_config(), now);
    inject(&mut c, now, Header::ping(Flags::ACK, 12345), &[]);
    assert!(frames(&mut c).is_empty());
    assert!(events(&mut c).is_empty());
    assert!(!c.is_closed());
    inject(&mut c, now, Header::ping(Flags::SYN, 1), &[]);
    inject(&mut c, now, Header::ping(Flags::SYN, 2), &[]);
    let out: Vec<Header> = frames(&mut c).into_iter().map(|f| f.0).collect();
    assert_eq!(out, vec![Header::ping(Flags::ACK, 1), Header::ping(Flags::ACK, 2)]);
    check(&c);
}

/// hashicorp with `MaxStreamWindowSize` above 256 KiB, when our FIN reaches
/// it before its Accept: its first frame on our stream is a Window Update
/// **without ACK** carrying only its extra initial window. That delta is
/// window, not our data consumed: no `CreditsReturned`, `uncredited` stays,
/// and stop-reading sends no RST (hashicorp's `Read` would drop our unread
/// 1,000 bytes). Credit that does come back afterwards counts, and then the
/// RST goes out.
#[test]
fn the_delta_that_establishes_our_stream_is_window_not_credit() {
    for establishing in [Flags::NONE, Flags::ACK] {
        let now = Instant::now();
        let mut c = conn(Role::Client, quiet_config(), now);
        let s1 = c.open().unwrap();
        c.send(s1, &pattern(1000, 1)).unwrap();
        c.close_write(s1).unwrap();
        c.stop_reading(s1).unwrap();
        let _ = frames(&mut c);
        inject(&mut c, now, Header::window_update(s1, establishing, 786_432), &[]);
        let ev = events(&mut c);
        assert!(!ev.iter().any(|e| matches!(e, Event::CreditsReturned { .. })), "{ev:?}");
        let info = c.stream_info(s1).unwrap();
        assert_eq!(info.uncredited, 1000, "{establishing:?}: nothing was consumed yet");
        assert_eq!(info.send_credit, DEFAULT_WINDOW - 1000 + 786_432, "the window still grew");
        let out: Vec<Header> = frames(&mut c).into_iter().map(|f| f.0).collect();
        assert!(out.is_empty(), "{establishing:?}: no RST while our data may be unread: {out:?}");
        // hashicorp's reader consumes the 1,000 bytes and returns them.
        inject(&mut c, now, Header::window_update(s1, Flags::NONE, 1000), &[]);
        assert!(events(&mut c).contains(&Event::CreditsReturned { id: s1, amount: 1000 }));
        let out: Vec<Header> = frames(&mut c).into_iter().map(|f| f.0).collect();
        assert_eq!(out, vec![Header::window_update(s1, Flags::RST, 0)]);
        check(&c);
    }
}

/// With keep-alive off nothing ends a silent peer: the start-up ping that
/// auto-tuning sends for an RTT estimate is not held to `ping_timeout`. An
/// application's own ping still is.
#[test]
fn with_keep_alive_off_the_start_up_ping_never_times_out() {
    let now = Instant::now();
    let config = {
        let mut c = yamux_proto::Config::default();
        c.keep_alive_interval = None;
        c.max_stream_window = 4 * yamux_proto::DEFAULT_WINDOW;
        c
    };
    let mut c = conn(Role::Client, config.clone(), now);
    let out: Vec<Header> = frames(&mut c).into_iter().map(|f| f.0).collect();
    assert!(out.iter().any(|h| h.frame_type == FrameType::Ping), "the RTT ping went out");
    assert_eq!(c.poll_timeout(), None, "no deadline for it");
    c.handle_timeout(now + 3600 * config.ping_timeout);
    assert_eq!(c.close_reason(), None, "a silent peer is not cut off");
    // An application ping is held to the timeout, counted from when it left.
    let later = now + 3600 * config.ping_timeout;
    c.handle_timeout(later);
    c.ping().unwrap();
    assert_eq!(c.poll_timeout(), Some(later + config.ping_timeout));
    c.handle_timeout(later + config.ping_timeout);
    assert_eq!(c.close_reason(), Some(yamux_proto::CloseReason::KeepAliveTimeout));
}

/// `write_transmits` with room for exactly one header writes a bodiless
/// frame (here our SYN, then a ping), never a Data frame cut to nothing nor
/// a FIN ahead of the data; the data follows, then the FIN, once there is
/// room.
#[test]
fn write_transmits_fills_exactly_a_header_with_a_bodiless_frame() {
    let now = Instant::now();
    let mut c = conn(Role::Client, quiet_config(), now);
    let s = c.open().unwrap();
    c.send(s, &pattern(100, 5)).unwrap();
    c.close_write(s).unwrap();
    c.ping().unwrap();
    let mut out = Vec::new();
    let mut headers = Vec::new();
    while c.write_transmits(&mut out, HEADER_LEN) == HEADER_LEN {
        headers.push(Header::decode(out[out.len() - HEADER_LEN..].try_into().unwrap()).unwrap());
    }
    assert_eq!(out.len(), HEADER_LEN * headers.len(), "only whole headers");
    assert!(headers.iter().any(|h| h.frame_type == FrameType::Ping), "{headers:?}");
    assert!(headers
        .iter()
        .all(|h| h.frame_type != FrameType::Data && !h.flags.contains(Flags::FIN)));
    assert!(headers.iter().any(|h| h.stream_id == s && h.flags.contains(Flags::SYN)));
    let rest: Vec<Header> = frames(&mut c).into_iter().map(|f| f.0).collect();
    assert_eq!(
        rest,
        vec![Header::data(s, Flags::NONE, 100), Header::window_update(s, Flags::FIN, 0)]
    );
    check(&c);
}

/// A peer that ends the session on our Go Away (go-yamux, js-libp2p) never
/// finishes its streams. The Ping that follows our Go Away goes unanswered,
/// and the connection closes after `ping_timeout` with a reason that says
/// so, not after the 60 s `go_away_timeout`.
#[test]
fn a_peer_silent_after_our_go_away_is_closed_at_the_ping_timeout() {
    let now = Instant::now();
    let config = {
        let mut c = Config::default();
        c.keep_alive_interval = None;
        c
    };
    let mut c = conn(Role::Client, config.clone(), now);
    let s = c.open().unwrap();
    c.send(s, b"request").unwrap();
    frames(&mut c);
    c.go_away(GoAwayCode::Normal);
    let out: Vec<Header> = frames(&mut c).into_iter().map(|f| f.0).collect();
    let go_away = out.iter().position(|h| h.frame_type == FrameType::GoAway).expect("Go Away");
    let ping = out.iter().position(|h| h.frame_type == FrameType::Ping).expect("a Ping");
    assert!(go_away < ping, "the Ping follows the Go Away: {out:?}");
    let deadline = now + config.ping_timeout;
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(c.close_reason(), None);
    c.handle_timeout(deadline);
    assert_eq!(c.close_reason(), Some(CloseReason::GoAwayUnanswered));
    assert!(events(&mut c).contains(&Event::StreamReset {
        id: s,
        reason: ResetReason::ConnectionClosed(CloseReason::GoAwayUnanswered)
    }));
}

/// A peer that answers the Ping after our Go Away is still serving: the
/// drain goes on past `ping_timeout` and ends when the stream finishes.
#[test]
fn a_peer_that_answers_after_our_go_away_drains_normally() {
    let now = Instant::now();
    let config = {
        let mut c = Config::default();
        c.keep_alive_interval = None;
        c
    };
    let mut c = conn(Role::Client, config.clone(), now);
    let s = c.open().unwrap();
    c.close_write(s).unwrap();
    frames(&mut c);
    c.go_away(GoAwayCode::Normal);
    let out = frames(&mut c);
    let (ping, _) = out.iter().find(|f| f.0.frame_type == FrameType::Ping).expect("a Ping");
    let later = now + Duration::from_secs(1);
    inject(&mut c, later, Header::ping(Flags::ACK, ping.length), &[]);
    let at = now + 2 * config.ping_timeout;
    c.handle_timeout(at);
    assert_eq!(c.close_reason(), None, "an answering peer is given the drain");
    inject(&mut c, at, Header::window_update(s, Flags::ACK.with(Flags::FIN), 0), &[]);
    assert_eq!(c.close_reason(), Some(CloseReason::Drained));
}
