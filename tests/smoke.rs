mod common;
use common::*;
use yamux_proto::{Event, StreamId};

#[test]
fn small_transfer_both_ways_and_close() {
    let mut p = Pair::new();
    let id = p.open_with(Side::Client, b"hello", true);
    p.drive();
    let ev = p.take_events(Side::Server);
    assert_eq!(ev[0], Event::StreamOpened { id });
    assert_eq!(p.server.received[&id], b"hello");
    assert!(ev.contains(&Event::HalfClosed { id }));
    p.conn(Side::Server).send(id, b"world").unwrap();
    p.conn(Side::Server).close_write(id).unwrap();
    p.drive();
    assert_eq!(p.client.received[&id], b"world");
    assert_eq!(p.client.conn.stream_count(), 0);
    assert_eq!(p.server.conn.stream_count(), 0);
    assert!(p.client.events.contains(&Event::StreamClosed { id }));
    assert!(p.take_events(Side::Server).contains(&Event::StreamClosed { id }));
    p.client.conn.check_invariants().unwrap();
    p.server.conn.check_invariants().unwrap();
}

#[test]
fn large_transfer() {
    let mut p = Pair::new();
    let id = p.conn(Side::Client).open().unwrap();
    let data = pattern(5 << 20, 7);
    p.send_all(Side::Client, id, &data);
    p.conn(Side::Client).close_write(id).unwrap();
    p.drive();
    assert_eq!(p.server.received[&id].len(), data.len());
    assert!(p.server.received[&id] == data);
    let _ = StreamId(1);
}
