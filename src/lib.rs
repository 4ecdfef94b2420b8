//! A sans-IO, deterministic implementation of the
//! [yamux](https://github.com/hashicorp/yamux/blob/master/spec.md) stream
//! multiplexer.
//!
//! One reliable byte stream (TCP, TLS, a pipe, a QUIC stream) carries many
//! independent, flow-controlled, bidirectional streams. [`Connection`] is a
//! plain value: it consumes input bytes and timer ticks, and produces output
//! bytes and [`Event`]s. It has no sockets, threads, locks, async or clock, so
//! it can be driven from any event loop, a simulator or a fuzzer, and the same
//! inputs at the same times always give the same outputs.
//!
//! It speaks the wire protocol of hashicorp/yamux (Go), js-libp2p's yamux and
//! the `yamux` crate (Rust); `docs/protocol.md` lists every choice made where
//! the spec is silent.
//!
//! # The drive loop
//!
//! ```
//! use std::time::{Duration, Instant};
//! use yamux_proto::{Config, Connection, Event, Role};
//!
//! let t0 = Instant::now(); // the caller's clock; the crate never reads one
//! let mut client = Connection::new(Config::default(), Role::Client, t0).unwrap();
//! let mut server = Connection::new(Config::default(), Role::Server, t0).unwrap();
//!
//! let id = client.open().unwrap();
//! client.send(id, b"hello").unwrap();
//! client.close_write(id).unwrap();
//!
//! // A "network": move whatever one side emits into the other.
//! let mut wire = Vec::new();
//! let mut got = Vec::new();
//! for _ in 0..4 {
//!     wire.clear();
//!     client.write_transmits(&mut wire, usize::MAX);
//!     server.handle_input(t0, &wire);
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             // Bytes wait in the connection until read; reading returns
//!             // their credit to the peer.
//!             Event::Readable { id } => {
//!                 while let Ok(Some(chunk)) = server.read(id, usize::MAX) {
//!                     got.extend_from_slice(&chunk);
//!                 }
//!             }
//!             Event::PeerHalfClosed { id } => server.close_write(id).unwrap(),
//!             _ => {}
//!         }
//!     }
//!     wire.clear();
//!     server.write_transmits(&mut wire, usize::MAX);
//!     client.handle_input(t0, &wire);
//!     while client.poll_event().is_some() {}
//! }
//! assert_eq!(got, b"hello");
//! assert_eq!(client.stream_count(), 0); // closed both ways and forgotten
//! ```
//!
//! A real loop also calls [`Connection::handle_timeout`] when
//! [`Connection::poll_timeout`] is reached; see [`Connection`] for the full
//! contract.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "tokio", feature = "futures-io"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tokio", feature = "futures-io"))))]
pub mod adapter;

/// The README's code blocks, compiled with the doc tests so they cannot
/// drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDocTests;
mod config;
mod connection;
mod error;
mod event;
pub mod frame;
mod id_hash;

pub use config::{
    Config, ConfigError, DEFAULT_WINDOW, MAX_DURATION, MAX_FRAME_BODY, MAX_UNACKED_OUTBOUND,
};
pub use connection::{Connection, ConnectionStats, RecvState, SendState, StreamInfo, Transmit};
pub use error::{
    CloseReason, CloseWriteError, FloodError, FrameError, OpenError, PingError, ProtocolError,
    ReadError, ResetError, ResetReason, SendError, StopReadingError, StreamError,
};
pub use event::Event;

use std::fmt;

/// A stream's id. Clients open odd ids from 1, servers even ids from 2; id 0
/// is the session itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u32);

impl StreamId {
    /// The session: Ping and Go Away frames carry this id.
    pub const SESSION: StreamId = StreamId(0);

    /// The role whose side opens streams with this id; `None` for the session.
    pub fn opener(self) -> Option<Role> {
        match self.0 {
            0 => None,
            n if n % 2 == 1 => Some(Role::Client),
            _ => Some(Role::Server),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which side of the connection we are; decides the parity of our stream ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Opens odd stream ids.
    Client,
    /// Opens even stream ids.
    Server,
}

/// The code in a Go Away frame (spec §"Go Away").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GoAwayCode {
    /// Normal termination: no new streams, existing ones finish.
    Normal,
    /// The sender saw a protocol error.
    ProtocolError,
    /// The sender had an internal error.
    InternalError,
    /// A code the spec does not define, kept as received.
    Other(u32),
}

impl GoAwayCode {
    /// The code as it is on the wire.
    pub fn to_u32(self) -> u32 {
        match self {
            GoAwayCode::Normal => 0,
            GoAwayCode::ProtocolError => 1,
            GoAwayCode::InternalError => 2,
            GoAwayCode::Other(n) => n,
        }
    }

    /// The code for a wire value.
    pub fn from_u32(n: u32) -> GoAwayCode {
        match n {
            0 => GoAwayCode::Normal,
            1 => GoAwayCode::ProtocolError,
            2 => GoAwayCode::InternalError,
            n => GoAwayCode::Other(n),
        }
    }
}
