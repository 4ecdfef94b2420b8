//! Streams: opening and acknowledging, data both ways, half-close, reset,
//! stop reading, the open backlog and the open and linger timeouts, on the
//! pair harness with virtual time.
//!
//! Most are counterparts of hashicorp/yamux's `session_test.go`, named so a
//! reader can compare (close before ACK, simultaneous open, small and large
//! transfers, many streams, many streams ping-pong, half-close, backlog
//! exceeded, open timeout, close (linger) timeout); then the
//! hashicorp/yamux#133 scenario and the close semantics (stop reading,
//! reset; docs/state-machines.md, docs/stop-reading.md). The pair checks
//! every event against the rules of `Event` as it comes, and every test
//! ends by checking both connections' invariants.
//!
//! Frame order and exact bytes are in `wire_format.rs`; windows in
//! `flow_control.rs`; the connection's life (ping, keep-alive, go-away,
//! close) in `connection.rs`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::frames::*;
use support::pair::*;
use support::pattern::{assert_same_bytes, pattern};
use support::Side;
use yamux_proto::frame::Flags;
use yamux_proto::{
    CloseWriteError, Event, OpenError, RecvState, ResetReason, SendError, SendState, StreamId,
};

use Side::{Client, Server};

/// TestCloseBeforeAck: streams half-closed before the peer's ACK arrived
/// neither leak nor block later opens (the un-ACKed slots come back).
#[test]
fn close_before_ack() {
    let mut p =
        Pair::with_configs(quiet_config_with(|c| c.max_unacked_outbound = 8), quiet_config());
    let ids: Vec<StreamId> = (0..8)
        .map(|_| {
            let id = p.conn(Client).open().unwrap();
            p.conn(Client).close_write(id).unwrap();
            id
        })
        .collect();
    assert_eq!(p.conn(Client).open(), Err(OpenError::Blocked), "8 streams await their ACK");
    p.drive();
    assert!(has(&p.client.events, &Event::OpenUnblocked));
    for &id in &ids {
        assert!(has(&p.server.events, &Event::StreamOpened { id }));
        assert!(has(&p.server.events, &Event::PeerHalfClosed { id }));
        p.conn(Server).close_write(id).unwrap();
    }
    p.drive();
    for &id in &ids {
        assert!(has(&p.client.events, &Event::PeerHalfClosed { id }));
        assert!(has(&p.client.events, &Event::StreamClosed { id }));
        assert!(has(&p.server.events, &Event::StreamClosed { id }));
    }
    assert_eq!((p.client.conn.stream_count(), p.server.conn.stream_count()), (0, 0));
    // A new stream opens and works.
    let id = p.open_with(Client, b"after", true);
    p.drive();
    assert_eq!(p.received(Server, id), b"after");
    p.check();
}

/// Resetting a stream before anything was transmitted: the peer never hears
/// of it (its RST is for an unknown id and is discarded without an answer).
#[test]
fn reset_before_ack() {
    let mut p = Pair::new();
    let id = p.open_with(Client, b"never sent", false);
    p.conn(Client).reset(id).unwrap();
    p.drive();
    assert!(p.server.events.is_empty(), "{:?}", p.server.events);
    assert_eq!(p.server.conn.stats().frames_discarded, 1);
    assert_eq!(p.server.conn.stats().frames_sent, 0, "no RST in answer");
    assert_eq!(p.client.events, vec![Event::StreamClosed { id }]);
    assert_eq!(p.client.conn.stats().data_sent, 0, "queued data is dropped by the reset");
    p.check();
}

/// Both sides open at once: ids do not collide, both streams work.
#[test]
fn simultaneous_open() {
    let mut p = Pair::new();
    let c = p.open_with(Client, b"from client", false);
    let s = p.open_with(Server, b"from server", false);
    assert_eq!((c, s), (StreamId(1), StreamId(2)));
    p.drive();
    assert_eq!(p.server.events[0], Event::StreamOpened { id: c });
    assert_eq!(p.client.events[0], Event::StreamOpened { id: s });
    assert_eq!(p.received(Server, c), b"from client");
    assert_eq!(p.received(Client, s), b"from server");
    assert!(p.client.conn.stream_info(c).unwrap().acknowledged);
    assert!(p.server.conn.stream_info(s).unwrap().acknowledged);
    for id in [c, s] {
        p.conn(Client).close_write(id).unwrap();
        p.conn(Server).close_write(id).unwrap();
    }
    p.drive();
    assert_eq!((p.client.conn.stream_count(), p.server.conn.stream_count()), (0, 0));
    p.check();
}

/// TestSendData_Small: many tiny writes on several streams, both ways,
/// interleaved; every byte arrives, in order, on the right stream.
#[test]
fn send_data_small() {
    let mut p = Pair::new();
    let ids: Vec<StreamId> = (0..4).map(|_| p.conn(Client).open().unwrap()).collect();
    p.drive();
    let mut want: BTreeMap<(Side, StreamId), Vec<u8>> = BTreeMap::new();
    for round in 0..1000u32 {
        for (k, &id) in ids.iter().enumerate() {
            for side in [Client, Server] {
                let msg = format!("{k}:{round};");
                assert_eq!(p.conn(side).send(id, msg.as_bytes()).unwrap(), msg.len());
                want.entry((side.other(), id)).or_default().extend_from_slice(msg.as_bytes());
            }
        }
        if round % 10 == 0 {
            p.drive();
        }
    }
    for &id in &ids {
        p.conn(Client).close_write(id).unwrap();
        p.conn(Server).close_write(id).unwrap();
    }
    p.drive();
    for ((side, id), bytes) in &want {
        assert_same_bytes(p.received(*side, *id), bytes, &format!("{side:?} stream {id}"));
    }
    assert_eq!((p.client.conn.stream_count(), p.server.conn.stream_count()), (0, 0));
    p.check();
}

/// TestSendData_Large: several streams carry megabytes both ways at once,
/// over a delayed link with the input chunked like a TCP socket's.
#[test]
fn send_data_large() {
    let mut p = Pair::new();
    p.delay = ms(1);
    p.client.chunk = 1460;
    p.server.chunk = 1460;
    let ids: Vec<StreamId> = (0..3).map(|_| p.conn(Client).open().unwrap()).collect();
    p.advance(ms(2)); // the server learns of the streams before it writes
                      // (sender, stream, data, bytes accepted so far)
    let mut flows: Vec<(Side, StreamId, Vec<u8>, usize)> = Vec::new();
    for (k, &id) in ids.iter().enumerate() {
        flows.push((Client, id, pattern(3 << 20, k as u64), 0));
        flows.push((Server, id, pattern((1 << 20) + 12345, 100 + k as u64), 0));
    }
    for _ in 0..100_000 {
        let mut done = true;
        for (side, id, data, off) in flows.iter_mut() {
            if *off < data.len() {
                *off += p.conn(*side).send(*id, &data[*off..]).unwrap();
                done = false;
            }
        }
        if done {
            break;
        }
        p.advance(ms(1));
    }
    for (side, id, _, _) in &flows {
        p.conn(*side).close_write(*id).unwrap();
    }
    p.advance(ms(100));
    for (side, id, data, _) in &flows {
        assert_same_bytes(p.received(side.other(), *id), data, &format!("{side:?} → {id}"));
    }
    assert_eq!((p.client.conn.stream_count(), p.server.conn.stream_count()), (0, 0));
    p.check();
}

/// An echo server: answers every stream the client half-closed with the
/// bytes it received, then half-closes. Returns how many it answered.
fn echo(p: &mut Pair, answered: &mut std::collections::HashSet<StreamId>) -> usize {
    let ids: Vec<StreamId> = p
        .server
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PeerHalfClosed { id } if !answered.contains(id) => Some(*id),
            _ => None,
        })
        .collect();
    for &id in &ids {
        let data = p.server.received.get(&id).cloned().unwrap_or_default();
        assert_eq!(p.conn(Server).send(id, &data).unwrap(), data.len());
        p.conn(Server).close_write(id).unwrap();
        answered.insert(id);
    }
    ids.len()
}

/// TestManyStreams: 500 streams, each echoed; opens beyond the 256 un-ACKed
/// limit report `Blocked` and `OpenUnblocked` follows.
#[test]
fn many_streams() {
    let mut p = Pair::new();
    let mut answered = std::collections::HashSet::new();
    let mut sent: Vec<(StreamId, Vec<u8>)> = Vec::new();
    let mut first_block = None;
    while sent.len() < 500 {
        match p.conn(Client).open() {
            Ok(id) => {
                let data = pattern(100 + 7 * sent.len(), sent.len() as u64);
                assert_eq!(p.conn(Client).send(id, &data).unwrap(), data.len());
                p.conn(Client).close_write(id).unwrap();
                sent.push((id, data));
            }
            Err(OpenError::Blocked) => {
                first_block.get_or_insert(sent.len());
                p.drive();
                assert!(has(&p.client.events, &Event::OpenUnblocked));
                echo(&mut p, &mut answered);
            }
            Err(e) => panic!("open: {e:?}"),
        }
    }
    assert_eq!(first_block, Some(256), "the 257th un-ACKed open is blocked");
    for _ in 0..10 {
        p.drive();
        echo(&mut p, &mut answered);
    }
    assert_eq!(answered.len(), 500);
    for (id, data) in &sent {
        assert_eq!(p.received(Server, *id), &data[..], "server side of {id}");
        assert_eq!(p.received(Client, *id), &data[..], "echo on {id}");
    }
    let closed = |e: &Event| matches!(e, Event::StreamClosed { .. });
    assert_eq!(count(&p.client.events, closed), 500);
    assert_eq!(count(&p.server.events, closed), 500);
    assert_eq!((p.client.conn.stream_count(), p.server.conn.stream_count()), (0, 0));
    p.check();
}

/// TestManyStreams_PingPong: 100 streams, 50 rounds of "ping" answered by
/// "pong" on each.
#[test]
fn many_streams_ping_pong() {
    let mut p = Pair::new();
    let ids: Vec<StreamId> = (0..100).map(|_| p.conn(Client).open().unwrap()).collect();
    for round in 1..=50usize {
        for &id in &ids {
            p.conn(Client).send(id, b"ping").unwrap();
        }
        p.drive();
        for &id in &ids {
            assert_eq!(p.received(Server, id).len(), 4 * round, "stream {id} round {round}");
            assert!(p.received(Server, id).ends_with(b"ping"));
            p.conn(Server).send(id, b"pong").unwrap();
        }
        p.drive();
        for &id in &ids {
            assert_eq!(p.received(Client, id).len(), 4 * round);
        }
    }
    for &id in &ids {
        assert_eq!(p.received(Server, id), b"ping".repeat(50));
        assert_eq!(p.received(Client, id), b"pong".repeat(50));
        p.conn(Client).close_write(id).unwrap();
        p.conn(Server).close_write(id).unwrap();
    }
    p.drive();
    assert_eq!((p.client.conn.stream_count(), p.server.conn.stream_count()), (0, 0));
    p.check();
}

/// TestHalfClose, each direction: after our FIN we cannot write but still
/// read; the peer gets `PeerHalfClosed` after all earlier data and may keep
/// writing (more than a window, so credit must keep flowing after the FIN).
fn half_close(closer: Side) {
    let other = closer.other();
    let mut p = Pair::new();
    let id = p.open_with(Client, b"hello", false);
    p.drive();
    p.conn(closer).send(id, b" bye").unwrap();
    p.conn(closer).close_write(id).unwrap();
    assert_eq!(p.conn(closer).send(id, b"x"), Err(SendError::WriteClosed));
    p.drive();
    let info = p.conn(closer).stream_info(id).unwrap();
    assert_eq!((info.send_state, info.recv_state), (SendState::Finished, RecvState::Open));
    let events = &p.end(other).events;
    assert_eq!(count(events, |e| *e == Event::PeerHalfClosed { id }), 1);
    let half = events.iter().position(|e| *e == Event::PeerHalfClosed { id }).unwrap();
    assert!(!events[half..].iter().any(|e| matches!(e, Event::Readable { .. })));

    let more = pattern(600_000, 42);
    p.send_all(other, id, &more);
    assert_same_bytes(
        &p.received(closer, id)[p.received(closer, id).len() - more.len()..],
        &more,
        "written after the peer's FIN",
    );
    p.conn(other).close_write(id).unwrap();
    p.drive();
    assert!(has(&p.end(closer).events, &Event::PeerHalfClosed { id }));
    for side in [Client, Server] {
        assert!(has(&p.end(side).events, &Event::StreamClosed { id }));
        assert!(reset_of(&p.end(side).events, id).is_none());
    }
    p.check();
}

#[test]
fn half_close_client_first() {
    half_close(Client);
}

#[test]
fn half_close_server_first() {
    half_close(Server);
}

/// TestBacklogExceeded: inbound streams beyond the server's `max_streams`
/// are refused one by one with RST; the connection and the accepted
/// streams carry on, and a freed slot is usable again.
#[test]
fn backlog_exceeded() {
    let mut p = Pair::with_configs(quiet_config(), quiet_config_with(|c| c.max_streams = 4));
    let ids: Vec<StreamId> = (0..6).map(|i| p.open_with(Client, &[i as u8; 10], false)).collect();
    p.drive();
    let (accepted, refused) = ids.split_at(4);
    for &id in accepted {
        assert!(has(&p.server.events, &Event::StreamOpened { id }));
        assert!(reset_of(&p.client.events, id).is_none());
    }
    for &id in refused {
        assert_eq!(reset_of(&p.client.events, id), Some(ResetReason::Refused));
        assert!(!has(&p.server.events, &Event::StreamOpened { id }));
        // The stream is closed and forgotten once its events were polled.
        assert_eq!(p.conn(Client).send(id, b"x"), Err(SendError::UnknownStream));
    }
    assert_eq!(p.server.conn.stats().streams_refused, 2);
    assert!(!p.client.conn.is_closed() && !p.server.conn.is_closed());
    for &id in accepted {
        p.conn(Server).send(id, b"ok").unwrap();
    }
    p.drive();
    for &id in accepted {
        assert_eq!(p.received(Client, id), b"ok");
    }
    // Free one slot; the next stream is accepted.
    p.conn(Client).close_write(accepted[0]).unwrap();
    p.conn(Server).close_write(accepted[0]).unwrap();
    p.drive();
    let next = p.open_with(Client, b"next", false);
    p.drive();
    assert!(has(&p.server.events, &Event::StreamOpened { id: next }));
    assert_eq!(p.received(Server, next), b"next");
    p.check();
}

/// TestOpenTimeout (hashicorp's StreamOpenTimeout): a stream whose ACK never
/// comes is reset alone with `OpenTimeout`; the session and the other
/// streams survive, and the peer, once it reads again, sees the stream
/// opened and reset.
#[test]
fn open_timeout() {
    let mut p =
        Pair::with_configs(quiet_config_with(|c| c.open_timeout = Some(secs(5))), quiet_config());
    let healthy = p.open_with(Client, b"a", false);
    p.drive();
    assert!(p.client.conn.stream_info(healthy).unwrap().acknowledged);
    p.stall(Server, true);
    let late = p.open_with(Client, b"b", false);
    p.advance(ms(4_999));
    assert!(reset_of(&p.client.events, late).is_none());
    p.advance(ms(2));
    assert_eq!(reset_of(&p.client.events, late), Some(ResetReason::OpenTimeout));
    assert!(reset_of(&p.client.events, healthy).is_none());
    assert!(!p.client.conn.is_closed());

    p.stall(Server, false);
    p.drive();
    assert!(has(&p.server.events, &Event::StreamOpened { id: late }));
    assert_eq!(reset_of(&p.server.events, late), Some(ResetReason::Remote { code: 0 }));
    // The server's late ACK for the reset stream is discarded, not answered.
    assert_eq!(p.server.conn.stats().resets_received, 1);
    assert_eq!(p.client.conn.stats().resets_sent, 1);
    p.conn(Client).send(healthy, b"still").unwrap();
    p.conn(Server).send(healthy, b"fine").unwrap();
    p.drive();
    assert_eq!(p.received(Server, healthy), b"astill");
    assert_eq!(p.received(Client, healthy), b"fine");
    p.check();
}

/// Close (linger) timeout: we half-closed and stopped reading, the peer
/// neither finishes nor consumes our data; after the linger timeout the
/// stream is reset with `LingerTimeout`, not before. The peer keeps what was
/// delivered to it.
#[test]
fn close_linger_timeout() {
    let mut p = Pair::with_configs(
        quiet_config_with(|c| c.linger_timeout = Some(secs(10))),
        quiet_config(),
    );
    p.server.auto_read = false;
    let data = pattern(1000, 1);
    let id = p.open_with(Client, &data, false);
    p.drive();
    p.conn(Client).close_write(id).unwrap();
    p.conn(Client).stop_reading(id).unwrap();
    p.advance(ms(9_999));
    let info = p.client.conn.stream_info(id).expect("lingering, not reset");
    assert_eq!((info.send_state, info.recv_state), (SendState::Finished, RecvState::Stopped));
    assert_eq!(info.uncredited, 1000);
    p.advance(ms(2));
    assert_eq!(reset_of(&p.client.events, id), Some(ResetReason::LingerTimeout));
    assert_eq!(reset_of(&p.server.events, id), Some(ResetReason::Remote { code: 0 }));
    // What arrived before the reset is still read; the client's FIN came
    // before its RST, so that direction was complete and reading ends with
    // the end, not the reset.
    assert_eq!(p.read(Server, id, usize::MAX), data.len());
    assert_eq!(p.received(Server, id), &data[..]);
    assert_eq!(p.conn(Server).read(id, 1), Ok(None));
    assert!(!p.client.conn.is_closed() && !p.server.conn.is_closed());
    p.check();
}

/// hashicorp/yamux#133: the writer sends 10 messages; the reader reads 5,
/// then half-closes and stops reading. The writer must learn promptly (a
/// round trip, far below any linger timeout) and never stall on credit.
#[test]
fn issue_133_writer_fails_fast_when_reader_stops() {
    const MSG: usize = 64 * 1024;
    let linger = secs(60);
    let delay = ms(10);
    let mut p = Pair::with_configs(
        quiet_config_with(|c| c.linger_timeout = Some(linger)),
        quiet_config_with(|c| c.linger_timeout = Some(linger)),
    );
    p.delay = delay;
    p.server.auto_read = false;
    let data = pattern(10 * MSG, 33);
    let id = p.conn(Client).open().unwrap();
    let mut off = 0;
    let mut consumed = 0usize;
    let mut stopped_at = None;
    let mut write_error = None;
    let mut stalled_since: Option<Duration> = None;
    let mut longest_stall = Duration::ZERO;
    let mut last_sent = 0;
    while write_error.is_none() && p.elapsed() < secs(5) {
        // The writer: keeps writing its 10 messages.
        if off < data.len() {
            match p.conn(Client).send(id, &data[off..]) {
                Ok(n) => off += n,
                Err(e) => write_error = Some((e, p.elapsed())),
            }
        }
        // The reader: reads exactly 5 messages, then closes and stops.
        if stopped_at.is_none() {
            consumed += p.read(Server, id, 5 * MSG - consumed);
            if consumed == 5 * MSG {
                p.conn(Server).close_write(id).unwrap();
                p.conn(Server).stop_reading(id).unwrap();
                stopped_at = Some(p.elapsed());
            }
        }
        // Stall: data queued, zero credit, and nothing sent since the last
        // sample (credit may come back and be used up within one step).
        if let Some(info) = p.client.conn.stream_info(id) {
            if info.send_buffered > 0 && info.send_credit == 0 && info.sent == last_sent {
                let since = *stalled_since.get_or_insert(p.elapsed());
                longest_stall = longest_stall.max(p.elapsed() - since);
            } else {
                stalled_since = None;
            }
            last_sent = info.sent;
        }
        if reset_of(&p.client.events, id).is_some() && write_error.is_none() {
            let e = p.conn(Client).send(id, b"x").unwrap_err();
            write_error = Some((e, p.elapsed()));
        }
        p.advance(ms(1));
    }
    let stopped_at = stopped_at.expect("the reader read 5 messages");
    let (err, failed_at) = write_error.expect("the writer saw an error");
    assert!(
        matches!(err, SendError::Reset(ResetReason::Remote { code: 0 }) | SendError::UnknownStream),
        "{err:?}"
    );
    assert_eq!(reset_of(&p.client.events, id), Some(ResetReason::Remote { code: 0 }));
    // The reset arrives one one-way delay after the stop (plus the 1 ms
    // granularity of this loop), far below the linger timeout.
    assert!(failed_at - stopped_at <= 2 * delay + ms(2), "{failed_at:?} vs {stopped_at:?}");
    assert!(failed_at < linger / 100);
    // A stall lasts at most the round trip of a window update (the reader
    // consumes as data arrives until it stops; then all credit comes back).
    assert!(longest_stall <= 2 * delay + ms(2), "writer stalled for {longest_stall:?}");
    // The reader got the 5 messages it read, intact.
    assert_same_bytes(&p.received(Server, id)[..5 * MSG], &data[..5 * MSG], "read part");
    p.check();
}

/// Stop reading while data we sent is still unread at the peer: no RST
/// (hashicorp drops buffered data on RST), the peer's writer never stalls
/// (its data is discarded and credited at once), our data is read in full,
/// and the stream ends cleanly when the peer half-closes.
#[test]
fn stop_reading_with_our_data_unread_at_peer() {
    let mut p = Pair::new();
    p.client.auto_read = false;
    let id = p.open_with(Client, b"hello", false);
    p.drive();
    let reply = pattern(100_000, 8);
    p.conn(Server).send(id, &reply).unwrap();
    p.drive();
    p.conn(Server).close_write(id).unwrap();
    p.conn(Server).stop_reading(id).unwrap();
    p.drive();
    let info = p.server.conn.stream_info(id).expect("no RST while our data is unread");
    assert_eq!((info.send_state, info.recv_state), (SendState::Finished, RecvState::Stopped));
    assert!(reset_of(&p.client.events, id).is_none());

    // The client keeps writing, four windows' worth: credit keeps coming back.
    let flood = pattern(1 << 20, 9);
    p.send_all(Client, id, &flood);
    assert_eq!(p.received(Server, id), b"hello", "nothing is delivered after the stop");
    assert!(!has(&p.server.events, &Event::PeerHalfClosed { id }));
    assert!(p.client.conn.stream_info(id).unwrap().send_credit > 0);
    assert!(reset_of(&p.client.events, id).is_none());

    // Our data was never destroyed: the client reads all of it, then the FIN.
    assert!(has(&p.client.events, &Event::PeerHalfClosed { id }));
    assert_eq!(p.read(Client, id, usize::MAX), reply.len());
    assert_same_bytes(p.received(Client, id), &reply, "the stopped side's data");
    assert_eq!(p.conn(Client).read(id, 1), Ok(None), "then the end of the stream");
    p.conn(Client).close_write(id).unwrap();
    p.drive();
    for side in [Client, Server] {
        assert!(has(&p.end(side).events, &Event::StreamClosed { id }), "{side:?}");
        assert!(reset_of(&p.end(side).events, id).is_none(), "{side:?}");
    }
    p.check();
}

/// Stop reading after we sent a small reply. Peers return credit only per
/// half window, so the reply comes back as credit only if the peer returns
/// its last credit after our FIN once it consumed everything (this crate
/// does; hashicorp and the `yamux` crate do not). Then the RST goes out at
/// once. Otherwise the stopper keeps discarding (the peer's writer never
/// stalls) and resets at the linger timeout. See docs/stop-reading.md.
fn stop_reading_after_sending(client_consumes: bool) -> (Duration, usize) {
    let linger = secs(10);
    let mut p =
        Pair::with_configs(quiet_config(), quiet_config_with(|c| c.linger_timeout = Some(linger)));
    p.client.auto_read = client_consumes;
    let id = p.open_with(Client, b"request", false);
    p.drive();
    p.send_all(Server, id, &pattern(1000, 1));
    let arrived = p.received(Client, id).len() + p.unread(Client, id);
    assert_eq!(arrived, 1000, "the reply arrived");
    p.conn(Server).close_write(id).unwrap();
    p.conn(Server).stop_reading(id).unwrap();
    // The client keeps writing until it learns the stream is gone.
    let start = p.elapsed();
    let mut written = 0usize;
    while reset_of(&p.client.events, id).is_none() && p.elapsed() < start + 2 * linger {
        written += p.conn(Client).send(id, &[7u8; 4096]).unwrap_or(0);
        p.advance(ms(100));
    }
    assert_eq!(reset_of(&p.client.events, id), Some(ResetReason::Remote { code: 0 }));
    assert_eq!(p.received(Server, id), b"request");
    p.check();
    (p.elapsed() - start, written)
}

#[test]
fn stop_reading_after_sending_resets_once_the_reply_was_read() {
    let (failed_after, _) = stop_reading_after_sending(true);
    assert!(failed_after <= ms(100), "the writer failed after {failed_after:?}");
}

#[test]
fn stop_reading_after_sending_falls_back_to_the_linger_timeout() {
    let linger = secs(10);
    let (failed_after, written) = stop_reading_after_sending(false);
    assert!(failed_after >= linger && failed_after <= linger + ms(100), "{failed_after:?}");
    assert!(written >= 99 * 4096, "the writer never stalled: {written} bytes written");
}

/// Stop reading on a stream whose write half is still open: incoming data
/// is discarded and credited, nothing is reset, and we can keep writing.
#[test]
fn stop_reading_keeps_the_write_half() {
    let mut p = Pair::new();
    let id = p.open_with(Client, b"a", false);
    p.drive();
    p.conn(Server).stop_reading(id).unwrap();
    p.send_all(Client, id, &pattern(700_000, 1));
    assert_eq!(p.received(Server, id), b"a");
    p.send_all(Server, id, b"still writing");
    assert_eq!(p.received(Client, id), b"still writing");
    assert!(reset_of(&p.client.events, id).is_none());
    assert_eq!(p.server.conn.stream_info(id).unwrap().recv_state, RecvState::Stopped);
    p.check();
}

/// Reset, each way: the peer gets `StreamReset { Remote }`, the resetter no
/// reset event (it asked for it); both get `StreamClosed`; commands on the
/// reset stream fail with the reason until the stream is forgotten.
fn reset_from(resetter: Side) {
    let mut r = Pair::new();
    let id = r.client.conn.open().unwrap();
    r.client.conn.send(id, b"data").unwrap();
    r.transfer(Client);
    r.server.conn.send(id, b"back").unwrap();
    r.transfer(Server);
    assert!(drain_events(&mut r.client.conn).contains(&Event::Readable { id }));
    assert!(drain_events(&mut r.server.conn).contains(&Event::Readable { id }));
    assert_eq!(r.client.conn.read(id, usize::MAX), Ok(Some("back".into())));
    assert_eq!(r.server.conn.read(id, usize::MAX), Ok(Some("data".into())));

    let (me, peer) = match resetter {
        Client => (&mut r.client.conn, &mut r.server.conn),
        Server => (&mut r.server.conn, &mut r.client.conn),
    };
    me.send(id, b"queued, dropped").unwrap();
    me.reset(id).unwrap();
    assert_eq!(me.send(id, b"x"), Err(SendError::Reset(ResetReason::Local)));
    assert_eq!(me.close_write(id), Err(CloseWriteError::Reset(ResetReason::Local)));
    assert_eq!(me.reset(id), Ok(()), "reset is idempotent");
    let wire = transmit_all(me);
    assert_eq!(wire.len(), 12, "only the RST goes out: queued data is dropped");
    peer.handle_input(r.now, &wire);
    let remote = ResetReason::Remote { code: 0 };
    assert_eq!(peer.send(id, b"x"), Err(SendError::Reset(remote)));
    assert_eq!(drain_events(me), vec![Event::StreamClosed { id }]);
    assert_eq!(
        drain_events(peer),
        vec![Event::StreamReset { id, reason: remote }, Event::StreamClosed { id }]
    );
    // Forgotten once its last event was polled.
    assert_eq!(peer.send(id, b"x"), Err(SendError::UnknownStream));
    assert_eq!(me.send(id, b"x"), Err(SendError::UnknownStream));
    assert!(transmit_all(peer).is_empty(), "a RST is never answered");
    r.client.conn.check_invariants().unwrap();
    r.server.conn.check_invariants().unwrap();
}

#[test]
fn reset_from_client() {
    reset_from(Client);
}

#[test]
fn reset_from_server() {
    reset_from(Server);
}

/// Both sides reset at once: the crossing RSTs are discarded, nobody hears
/// of a reset it did not make, each stream closes exactly once.
#[test]
fn reset_crossing() {
    let mut p = Pair::new();
    let id = p.open_with(Client, b"x", false);
    p.drive();
    p.conn(Client).reset(id).unwrap();
    p.conn(Server).reset(id).unwrap();
    p.drive();
    for side in [Client, Server] {
        assert!(reset_of(&p.end(side).events, id).is_none(), "{side:?}");
        assert_eq!(count(&p.end(side).events, |e| *e == Event::StreamClosed { id }), 1);
    }
    p.check();
}

/// Data and a RST in the same input: the data is still delivered, then the
/// reset; a go-yamux style error code in the RST's length is reported.
#[test]
fn data_then_rst_delivers_data_and_reports_the_code() {
    let mut p = Pair::new();
    let id = p.open_with(Client, b"", false);
    p.drive();
    p.stall(Server, true);
    p.conn(Server).send(id, b"last words").unwrap();
    p.drive();
    p.stall(Server, false);
    p.inject_frame(Client, window_update(id.0, Flags::RST, 42), &[]);
    p.drive();
    assert_eq!(p.received(Client, id), b"last words");
    assert_eq!(reset_of(&p.client.events, id), Some(ResetReason::Remote { code: 42 }));
    p.check();
}
