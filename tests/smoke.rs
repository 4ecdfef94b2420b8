mod support;
use support::frames::quiet_config;
use support::pair::Pair;
use support::pattern::pattern;
use support::Side;
use yamux_proto::{Event, StreamId};

#[test]
fn small_transfer_both_ways_and_close() {
    let mut p = Pair::new();
    let id = p.open_with(Side::Client, b"hello", true);
    p.drive();
    let ev = p.take_events(Side::Server);
    assert_eq!(ev[0], Event::StreamOpened { id });
    assert_eq!(p.server.received[&id], b"hello");
    assert!(ev.contains(&Event::PeerHalfClosed { id }));
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

/// A client's frames on two streams (100 kB, so large frames, and 4 bytes),
/// and what a server makes of them in one `handle_input` call: the input
/// paths below must give the same.
struct Recorded {
    wire: Vec<u8>,
    t: std::time::Instant,
    big: StreamId,
    tiny: StreamId,
    /// The server's events other than `Readable` (how often a stream
    /// becomes readable depends on the chunking), in order.
    others: Vec<Event>,
    stats: yamux_proto::ConnectionStats,
}

const BIG: usize = 100_000;

fn recorded(seed: u8) -> Recorded {
    let mut p = Pair::new();
    let big = p.open_with(Side::Client, &pattern(BIG, u64::from(seed)), true);
    let tiny = p.open_with(Side::Client, b"tiny", false);
    let mut wire = Vec::new();
    p.conn(Side::Client).write_transmits(&mut wire, usize::MAX);
    let t = p.now;
    let mut reference = server(t);
    reference.handle_input(t, &wire);
    let others = std::iter::from_fn(|| reference.poll_event())
        .filter(|e| !matches!(e, Event::Readable { .. }))
        .collect();
    let stats = reference.stats().clone();
    Recorded { wire, t, big, tiny, others, stats }
}

fn server(t: std::time::Instant) -> yamux_proto::Connection {
    yamux_proto::Connection::new(quiet_config(), yamux_proto::Role::Server, t).unwrap()
}

/// Feeds the recorded input to a fresh server in `chunk`-byte pieces
/// through `feed`, and checks it ends exactly like the reference.
fn check_input_path(
    rec: &Recorded,
    seed: u8,
    chunk: usize,
    mut feed: impl FnMut(&mut yamux_proto::Connection, &[u8]),
) {
    let mut conn = server(rec.t);
    let (mut big, mut tiny, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for piece in rec.wire.chunks(chunk) {
        feed(&mut conn, piece);
        while let Some(e) = conn.poll_event() {
            match e {
                Event::Readable { id } => {
                    assert!(id == rec.big || id == rec.tiny, "chunk {chunk}: data on {id}");
                    let into = if id == rec.big { &mut big } else { &mut tiny };
                    while let Ok(Some(data)) = conn.read(id, usize::MAX) {
                        into.extend_from_slice(&data);
                    }
                }
                e => others.push(e),
            }
        }
    }
    assert_eq!(conn.stats().bytes_received, rec.wire.len() as u64, "chunk {chunk}");
    assert_eq!(conn.stats(), &rec.stats, "chunk {chunk}");
    assert!(big == pattern(BIG, u64::from(seed)), "chunk {chunk}: the large stream's bytes differ");
    assert_eq!(tiny, b"tiny", "chunk {chunk}");
    assert_eq!(others, rec.others, "chunk {chunk}");
}

/// Reading straight into `input_buffer` gives the same events and stats as
/// `handle_input`, whatever the chunking.
#[test]
fn input_buffer_path_matches_handle_input() {
    let rec = recorded(1);
    for chunk in [1, 7, 12, 13, 4096, rec.wire.len()] {
        check_input_path(&rec, 1, chunk, |conn, piece| {
            conn.input_buffer().extend_from_slice(piece);
            conn.process_input(rec.t);
        });
    }
}

/// `handle_input_buf` (the caller's buffer, partial frames left in it) gives
/// the same events and stats as `handle_input`, whatever the chunking and
/// whether the two are mixed at frame boundaries; and large bodies are
/// slices of the caller's buffer, not copies.
#[test]
fn owned_buffer_input_matches_handle_input_without_copying_large_bodies() {
    use bytes::BytesMut;
    let rec = recorded(2);
    for (chunk, mixed) in [(1, false), (7, true), (12, false), (13, true), (4096, true)]
        .into_iter()
        .chain([(rec.wire.len(), false)])
    {
        let mut held = BytesMut::new();
        let mut calls = 0;
        check_input_path(&rec, 2, chunk, |conn, piece| {
            calls += 1;
            // Mixed: every third chunk through `handle_input`, allowed
            // while the caller's buffer holds no partial frame.
            if mixed && held.is_empty() && calls % 3 == 0 {
                conn.handle_input(rec.t, piece);
            } else {
                held.extend_from_slice(piece);
                conn.handle_input_buf(rec.t, &mut held);
            }
        });
        assert!(held.is_empty(), "chunk {chunk}: {} bytes never taken", held.len());
    }

    // Zero copy: with the whole input in one buffer, every large piece
    // `read` returns points into that buffer's memory.
    let mut conn = server(rec.t);
    let mut held = BytesMut::with_capacity(rec.wire.len());
    held.extend_from_slice(&rec.wire);
    let range = held.as_ptr() as usize..held.as_ptr() as usize + rec.wire.len();
    conn.handle_input_buf(rec.t, &mut held);
    let large: Vec<_> = std::iter::from_fn(|| conn.read(rec.big, usize::MAX).ok().flatten())
        .filter(|data| data.len() >= 16 * 1024)
        .collect();
    assert!(!large.is_empty(), "the 100 kB stream has large frames");
    for d in &large {
        assert!(range.contains(&(d.as_ptr() as usize)), "a large body was copied");
    }
}
