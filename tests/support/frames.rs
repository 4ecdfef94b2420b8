//! The wire builder: hand-built frames for injecting, and the plumbing that
//! turns a connection's output into wire bytes.

use bytes::Bytes;
use yamux_proto::frame::{Flags, Header};
use yamux_proto::{Config, Connection, Event, StreamId, DEFAULT_WINDOW};

/// A Data frame header for stream `id`, announcing `len` body bytes.
pub fn data(id: u32, flags: Flags, len: u32) -> Header {
    Header::data(StreamId(id), flags, len)
}

/// A Window Update header for stream `id`.
pub fn window_update(id: u32, flags: Flags, delta: u32) -> Header {
    Header::window_update(StreamId(id), flags, delta)
}

/// A Ping header (`flags` SYN to ask, ACK to answer).
pub fn ping(flags: Flags, opaque: u32) -> Header {
    Header::ping(flags, opaque)
}

/// A Go Away header with error `code` (0 normal, 1 protocol error, 2 internal).
pub fn go_away(code: u32) -> Header {
    Header::go_away(code)
}

/// One frame's wire bytes: `header` then `body`.
pub fn frame(header: Header, body: &[u8]) -> Vec<u8> {
    let mut raw = header.encode().to_vec();
    raw.extend_from_slice(body);
    raw
}

/// Everything `conn` has to transmit now, as wire bytes.
pub fn transmit_all(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(t) = conn.poll_transmit() {
        out.extend_from_slice(&t.header);
        out.extend_from_slice(&t.body);
    }
    out
}

/// Everything `conn` has to transmit now, frame by frame, each header
/// decoded and checked against its body's length.
pub fn transmit_frames(conn: &mut Connection) -> Vec<(Header, Bytes)> {
    std::iter::from_fn(|| conn.poll_transmit())
        .map(|t| {
            let h = Header::decode(&t.header).expect("we only encode valid headers");
            assert_eq!(h.body_len() as usize, t.body.len(), "header length matches body");
            (h, t.body)
        })
        .collect()
}

/// Decoded frames back into wire bytes.
pub fn encode(frames: &[(Header, Bytes)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, body) in frames {
        out.extend_from_slice(&h.encode());
        out.extend_from_slice(body);
    }
    out
}

/// Every event `conn` has now.
pub fn drain_events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// A config without timers or the start-up RTT ping, so a test sees only the
/// frames it causes. Tests that exercise timers turn them on.
pub fn quiet_config() -> Config {
    let mut c = Config::default();
    c.keep_alive_interval = None;
    c.max_stream_window = DEFAULT_WINDOW;
    c
}

/// [`quiet_config`] with `f` applied.
pub fn quiet_config_with(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = quiet_config();
    f(&mut c);
    c
}
