//! The connection's life: ping and keep-alive, go-away and draining,
//! closing with streams open, and input cut into pieces of any size, on the
//! pair harness with virtual time.
//!
//! The first are counterparts of hashicorp/yamux's `session_test.go` (ping,
//! go away, half-close then session shutdown, keep-alive, keep-alive
//! timeout). The pair checks every event against the rules of `Event` as it
//! comes, and every test ends by checking both connections' invariants.

mod support;

use support::events::check_events;
use support::frames::*;
use support::pair::*;
use support::pattern::{assert_same_bytes, pattern};
use support::Side;
use yamux_proto::frame::Header;
use yamux_proto::{
    CloseReason, Event, GoAwayCode, OpenError, ReadError, ResetReason, Role, DEFAULT_WINDOW,
};

use Side::{Client, Server};

/// TestPing: a ping is answered and reports the round trip.
#[test]
fn ping() {
    let mut p = Pair::new();
    p.delay = ms(10);
    let opaque = p.conn(Client).ping().unwrap();
    p.advance(ms(100));
    let pongs: Vec<_> =
        p.client.events.iter().filter(|e| matches!(e, Event::Pong { .. })).cloned().collect();
    assert_eq!(pongs, vec![Event::Pong { opaque, rtt: ms(20) }]);
    assert_eq!(p.client.conn.rtt(), Some(ms(20)));
    assert!(p.server.events.is_empty(), "a ping is answered silently: {:?}", p.server.events);

    let opaque = p.conn(Server).ping().unwrap();
    p.advance(ms(100));
    assert!(has(&p.server.events, &Event::Pong { opaque, rtt: ms(20) }));
    p.check();
}

/// TestGoAway, both roles: after a graceful go-away existing streams finish
/// both ways, new ones are refused with a typed error on both sides (and a
/// SYN that crossed the Go Away gets RST), and the side that went away
/// reports `Drained` once its last stream ends.
fn go_away_from(side: Side) {
    let peer = side.other();
    let mut p = Pair::new();
    let theirs = p.open_with(peer, b"theirs", false);
    let mine = p.open_with(side, b"mine", false);
    p.drive();

    p.conn(side).go_away(GoAwayCode::Normal);
    assert_eq!(p.conn(side).open(), Err(OpenError::GoingAway));
    // The peer opens a stream before it hears of the go-away: the SYN
    // crosses the Go Away frame on the wire.
    let racing = p.open_with(peer, b"racing", false);
    p.drive();
    assert!(has(&p.end(peer).events, &Event::GoAwayReceived { code: GoAwayCode::Normal }));
    assert_eq!(p.conn(peer).remote_go_away(), Some(GoAwayCode::Normal));
    assert_eq!(p.conn(peer).open(), Err(OpenError::RemoteGoingAway));
    assert_eq!(reset_of(&p.end(peer).events, racing), Some(ResetReason::Refused));
    assert!(!has(&p.end(side).events, &Event::StreamOpened { id: racing }));
    assert!(p.received(side, racing).is_empty(), "data on a refused stream is discarded");
    assert_eq!(p.conn(side).stats().streams_refused, 1);

    // Existing streams go on, both ways.
    for id in [theirs, mine] {
        p.conn(side).send(id, b"+more").unwrap();
        p.conn(peer).send(id, b"+more").unwrap();
    }
    p.drive();
    assert_eq!(p.received(side, theirs), b"theirs+more");
    assert_eq!(p.received(peer, mine), b"mine+more");
    assert_eq!(p.received(side, mine), b"+more");
    assert_eq!(p.received(peer, theirs), b"+more");
    assert!(!p.conn(side).is_closed() && !p.conn(peer).is_closed());

    // Finish one stream: still not drained.
    p.conn(side).close_write(theirs).unwrap();
    p.conn(peer).close_write(theirs).unwrap();
    p.drive();
    assert!(!p.conn(side).is_closed());
    // Finish the last one: drained.
    p.conn(side).close_write(mine).unwrap();
    p.conn(peer).close_write(mine).unwrap();
    p.drive();
    let events = p.end(side).events.clone();
    assert_eq!(events.last(), Some(&Event::ConnectionClosed { reason: CloseReason::Drained }));
    assert!(has(&events, &Event::StreamClosed { id: mine }));
    assert!(has(&events, &Event::StreamClosed { id: theirs }));
    assert!(reset_of(&events, mine).is_none() && reset_of(&events, theirs).is_none());
    assert!(!p.conn(side).has_pending_output());
    // The peer's connection stays up until its transport ends.
    assert!(!p.conn(peer).is_closed());
    assert_eq!(p.conn(peer).stream_count(), 0);
    p.conn(peer).handle_transport_closed();
    p.drive();
    assert_eq!(
        p.end(peer).events.last(),
        Some(&Event::ConnectionClosed { reason: CloseReason::TransportClosed })
    );
    p.check();
}

#[test]
fn go_away_from_server() {
    go_away_from(Server);
}

#[test]
fn go_away_from_client() {
    go_away_from(Client);
}

/// Go away with no stream open drains at once, and the Go Away still goes out.
#[test]
fn go_away_idle_drains_at_once() {
    let mut p = Pair::new();
    p.conn(Server).go_away(GoAwayCode::Normal);
    p.drive();
    assert_eq!(p.server.events, vec![Event::ConnectionClosed { reason: CloseReason::Drained }]);
    assert_eq!(p.client.events, vec![Event::GoAwayReceived { code: GoAwayCode::Normal }]);
    p.check();
}

/// The go-away drain deadline: a stream that never finishes does not hold
/// the connection open forever.
#[test]
fn go_away_drain_timeout() {
    let mut p = Pair::with_configs(
        quiet_config(),
        quiet_config_with(|c| c.go_away_timeout = Some(secs(5))),
    );
    let id = p.open_with(Client, b"x", false);
    p.drive();
    p.conn(Server).go_away(GoAwayCode::Normal);
    p.advance(ms(4_999));
    assert!(!p.server.conn.is_closed());
    p.advance(ms(2));
    assert_eq!(p.server.conn.close_reason(), Some(CloseReason::DrainTimeout));
    assert_eq!(
        reset_of(&p.server.events, id),
        Some(ResetReason::ConnectionClosed(CloseReason::DrainTimeout))
    );
    p.check();
}

/// TestHalfCloseSessionShutdown: the writer writes a full window, half-closes
/// and shuts its session down at once. The reader had not read anything yet;
/// it still gets every byte, and the FIN, before the stream is reset by the
/// end of the connection. Here the input and the transport's end reach the
/// reader before it polls a single event.
#[test]
fn half_close_then_session_shutdown() {
    let mut r = Pair::new();
    let data = pattern(DEFAULT_WINDOW as usize, 9);
    let id = r.client.conn.open().unwrap();
    assert_eq!(r.client.conn.send(id, &data).unwrap(), data.len());
    r.client.conn.close_write(id).unwrap();
    let mut wire = transmit_all(&mut r.client.conn);
    r.client.conn.close();
    wire.extend(transmit_all(&mut r.client.conn));
    r.server.conn.handle_input(r.now, &wire);
    r.server.conn.handle_transport_closed();
    let events = drain_events(&mut r.server.conn);
    check_events(Role::Server, &events);
    // The connection has closed; what arrived is still read in full.
    let got = read_all(&mut r.server.conn, id);
    assert_same_bytes(&got, &data, "reader");
    assert_eq!(r.server.conn.read(id, 1), Err(ReadError::UnknownStream), "then the stream is gone");
    let pos = |want: &dyn Fn(&Event) -> bool| events.iter().position(want).unwrap();
    let last_data = events.iter().rposition(|e| matches!(e, Event::Readable { .. })).unwrap();
    let half = pos(&|e| *e == Event::PeerHalfClosed { id });
    let reset = pos(&|e| matches!(e, Event::StreamReset { .. }));
    assert!(last_data < half && half < reset, "{events:?}");
    assert_eq!(
        events[reset],
        Event::StreamReset {
            id,
            reason: ResetReason::ConnectionClosed(CloseReason::TransportClosed)
        }
    );
    assert!(has(&events, &Event::GoAwayReceived { code: GoAwayCode::Normal }));
    assert_eq!(
        events.last(),
        Some(&Event::ConnectionClosed { reason: CloseReason::TransportClosed })
    );
    r.server.conn.check_invariants().unwrap();
    r.client.conn.check_invariants().unwrap();
}

/// The same when the connection ends through a peer Go Away with an error
/// code arriving right behind the data: what was received is delivered first.
#[test]
fn data_then_error_go_away_still_delivers_the_data() {
    let mut r = Pair::new();
    let data = pattern(100_000, 3);
    let id = r.client.conn.open().unwrap();
    r.client.conn.send(id, &data).unwrap();
    let mut wire = transmit_all(&mut r.client.conn);
    wire.extend_from_slice(&Header::go_away(2).encode());
    r.server.conn.handle_input(r.now, &wire);
    let events = drain_events(&mut r.server.conn);
    check_events(Role::Server, &events);
    assert_same_bytes(&read_all(&mut r.server.conn, id), &data, "reader");
    let reason = CloseReason::RemoteGoAway(GoAwayCode::InternalError);
    assert_eq!(reset_of(&events, id), Some(ResetReason::ConnectionClosed(reason)));
    assert_eq!(events.last(), Some(&Event::ConnectionClosed { reason }));
}

/// TestKeepAlive: a ping every interval, each answered with a `Pong` event.
#[test]
fn keep_alive() {
    let ka = quiet_config_with(|c| {
        c.keep_alive_interval = Some(secs(1));
        c.ping_timeout = secs(5);
    });
    let mut p = Pair::with_configs(ka.clone(), ka);
    p.delay = ms(10);
    p.advance(ms(10_500));
    for side in [Client, Server] {
        let pongs = pong_rtts(&p.end(side).events);
        assert_eq!(pongs, vec![ms(20); 10], "{side:?}");
        assert_eq!(p.conn(side).stats().pings_sent, 10);
        assert!(!p.conn(side).is_closed());
    }
    p.check();
}

/// TestKeepAlive_Timeout: the peer stops reading; the first unanswered ping
/// times out and the connection closes with `KeepAliveTimeout`, resetting
/// its streams with that reason.
#[test]
fn keep_alive_timeout() {
    let ka = quiet_config_with(|c| {
        c.keep_alive_interval = Some(secs(1));
        c.ping_timeout = secs(2);
    });
    let mut p = Pair::with_configs(ka, quiet_config());
    let id = p.open_with(Client, b"x", false);
    p.drive();
    p.stall(Server, true);
    // First ping at 1 s, unanswered by 3 s.
    p.advance(ms(2_999));
    assert!(!p.client.conn.is_closed());
    p.advance(ms(2));
    let reason = CloseReason::KeepAliveTimeout;
    assert_eq!(p.client.conn.close_reason(), Some(reason));
    assert_eq!(reset_of(&p.client.events, id), Some(ResetReason::ConnectionClosed(reason)));
    assert_eq!(p.client.events.last(), Some(&Event::ConnectionClosed { reason }));
    p.check();
}

/// A connection closed by the application: live streams are reset with
/// `ConnectionClosed(LocalClose)`, the peer gets a Go Away (normal), and the
/// closing side's last event is `ConnectionClosed`.
#[test]
fn local_close_resets_streams_and_sends_go_away() {
    let mut p = Pair::new();
    let id = p.open_with(Client, b"x", false);
    p.drive();
    p.conn(Client).close();
    assert_eq!(p.conn(Client).open(), Err(OpenError::Closed));
    p.drive();
    let reason = CloseReason::LocalClose;
    assert_eq!(reset_of(&p.client.events, id), Some(ResetReason::ConnectionClosed(reason)));
    assert_eq!(p.client.events.last(), Some(&Event::ConnectionClosed { reason }));
    assert!(has(&p.server.events, &Event::GoAwayReceived { code: GoAwayCode::Normal }));
    assert!(!p.client.conn.has_pending_output());
    p.check();
}

/// One scripted exchange touching every kind of frame; returns both sides'
/// events.
fn scripted_exchange(chunk: usize) -> (Vec<Event>, Vec<Event>) {
    let mut p = Pair::new();
    p.client.chunk = chunk;
    p.server.chunk = chunk;
    p.delay = ms(3);
    let a = p.open_with(Client, b"small", false);
    let b = p.open_with(Client, &pattern(200_000, 1), true);
    let c = p.open_with(Server, &pattern(70_000, 2), false);
    p.conn(Client).ping().unwrap();
    p.advance(ms(20));
    p.conn(Server).send(a, &pattern(1000, 3)).unwrap();
    p.conn(Server).close_write(a).unwrap();
    p.conn(Client).reset(c).unwrap();
    p.advance(ms(20));
    p.conn(Server).close_write(b).unwrap();
    p.conn(Client).close_write(a).unwrap();
    p.advance(ms(20));
    p.conn(Server).go_away(GoAwayCode::Normal);
    p.advance(ms(20));
    p.check();
    (p.client.events, p.server.events)
}

/// Input chunked one byte at a time (or any size) gives the same events as
/// whole input.
#[test]
fn chunking_gives_the_same_events() {
    let whole = scripted_exchange(0);
    // The script exercises data, FIN, RST, ping and go-away on both sides.
    assert!(whole.0.iter().any(|e| matches!(e, Event::Pong { .. })));
    assert!(whole.1.iter().any(|e| matches!(e, Event::StreamReset { .. })));
    assert!(whole.1.iter().any(|e| matches!(e, Event::ConnectionClosed { .. })));
    assert!(whole.0.iter().any(|e| matches!(e, Event::GoAwayReceived { .. })));
    for chunk in [1, 2, 5, 11, 12, 13, 4096] {
        let got = scripted_exchange(chunk);
        assert!(got.0 == whole.0, "client events differ with chunk {chunk}");
        assert!(got.1 == whole.1, "server events differ with chunk {chunk}");
    }
}
