//! What a [`Connection`](crate::Connection) tells its application.

use std::time::Duration;

use crate::{CloseReason, GoAwayCode, ResetReason, StreamId};

/// Something the application should know, returned by
/// [`Connection::poll_event`](crate::Connection::poll_event).
///
/// Guarantees, per stream: events come in protocol order; no `Readable`
/// after `PeerHalfClosed` or `StreamReset`; `PeerHalfClosed` at most once;
/// `StreamReset` at most once; `StreamClosed` exactly once for every stream
/// that was opened (by either side) and is the last event naming that id.
/// Per connection: `ConnectionClosed` exactly once, last of all.
///
/// Received bytes are not carried in events: they wait in the connection
/// until [`read`](crate::Connection::read), which is also what returns
/// their credit to the peer.
///
/// Events describe the past: by the time the application handles one, later
/// input in the same batch may have moved the stream on (a `PeerHalfClosed`
/// stream may already be reset, for instance). Commands on it then return
/// the current state's error rather than acting on the old one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer opened a stream. It is already accepted (we ACK at once);
    /// reset it to refuse.
    StreamOpened {
        /// The new stream.
        id: StreamId,
    },
    /// Bytes arrived on a stream that had none unread:
    /// [`read`](crate::Connection::read) returns them. Reported once per
    /// transition to readable, so read until `ReadError::Blocked` before
    /// waiting for the next one (it may be spurious if they were read in
    /// the meantime).
    Readable {
        /// The stream.
        id: StreamId,
    },
    /// The peer half-closed (FIN): no more data will arrive on this stream;
    /// `read` returns `Ok(None)` once the bytes before the FIN are read. We
    /// may keep sending.
    PeerHalfClosed {
        /// The stream.
        id: StreamId,
    },
    /// The stream was aborted, in both directions. Not reported for resets the
    /// application requested itself with [`reset`](crate::Connection::reset).
    /// Bytes received before it can still be read; `read` then returns
    /// `ReadError::Reset`.
    StreamReset {
        /// The stream.
        id: StreamId,
        /// By whom and why.
        reason: ResetReason,
    },
    /// The peer granted more send credit (a Window Update): bytes its reader
    /// read, plus any growth of its window. The wire does not separate
    /// the two, so against a peer that auto-tunes its windows (this crate,
    /// the `yamux` crate) the sum over a stream can exceed what it read;
    /// against hashicorp/yamux (fixed windows) it is exactly what was read.
    CreditsReturned {
        /// The stream.
        id: StreamId,
        /// Bytes of credit returned.
        amount: u32,
    },
    /// A stream whose `send` fell short can take more data now (buffer space
    /// or credit became available). Reported once per shortfall.
    Writable {
        /// The stream.
        id: StreamId,
    },
    /// The stream is finished in both directions, everything received was
    /// read, and it is forgotten; its id will not be reported again. (Only
    /// when the connection closed may bytes remain to read after it: `read`
    /// still returns them.)
    StreamClosed {
        /// The stream.
        id: StreamId,
    },
    /// [`open`](crate::Connection::open) returned
    /// [`OpenError::Blocked`](crate::OpenError::Blocked) earlier; it may succeed now.
    OpenUnblocked,
    /// A ping we sent was answered: one from [`ping`](crate::Connection::ping),
    /// a keep-alive ping, or one of the (up to three) start-up RTT probes.
    Pong {
        /// The opaque value of the ping.
        opaque: u32,
        /// Time from the ping being handed out to its answer being received,
        /// by the times the caller passed in.
        rtt: Duration,
    },
    /// The peer sent Go Away. With [`GoAwayCode::Normal`] existing streams go
    /// on and only new outbound streams are refused; other codes are followed
    /// by `ConnectionClosed`.
    GoAwayReceived {
        /// The peer's code.
        code: GoAwayCode,
    },
    /// The connection has ended: no further events. Transmit what
    /// [`poll_transmit`](crate::Connection::poll_transmit) still returns (such
    /// as our Go Away), then close the transport.
    ConnectionClosed {
        /// Why.
        reason: CloseReason,
    },
}

impl Event {
    /// The stream the event is about, `None` for connection-level events
    /// (`OpenUnblocked`, `Pong`, `GoAwayReceived`, `ConnectionClosed`).
    pub fn stream_id(&self) -> Option<StreamId> {
        match self {
            Event::StreamOpened { id }
            | Event::Readable { id }
            | Event::PeerHalfClosed { id }
            | Event::StreamReset { id, .. }
            | Event::CreditsReturned { id, .. }
            | Event::Writable { id }
            | Event::StreamClosed { id } => Some(*id),
            Event::OpenUnblocked
            | Event::Pong { .. }
            | Event::GoAwayReceived { .. }
            | Event::ConnectionClosed { .. } => None,
        }
    }
}
