//! Typed errors: one small enum per operation, and the reasons a stream or a
//! connection ends.

use thiserror::Error;

use crate::{GoAwayCode, StreamId};

/// A byte sequence that is not a valid yamux frame stream.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The version byte was not 0.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The type byte was not one of Data, Window Update, Ping, Go Away.
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    /// A Data frame announced a body larger than this side accepts.
    #[error("frame body of {len} bytes exceeds the maximum of {max}")]
    BodyTooLarge {
        /// Announced body length.
        len: u32,
        /// Largest body accepted.
        max: u32,
    },
    /// The decoder failed earlier; a yamux byte stream cannot resynchronise.
    #[error("decoder already failed")]
    Failed,
}

/// A rule of the protocol the peer broke. The connection answers with
/// Go Away (protocol error) and closes.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The byte stream did not decode.
    #[error("malformed frame: {0}")]
    Frame(#[from] FrameError),
    /// The peer sent more than the credit we granted on a stream.
    #[error("stream {0}: receive window exceeded")]
    WindowExceeded(StreamId),
    /// A Window Update pushed a stream's send credit past `u32::MAX`.
    #[error("stream {0}: send credit overflow")]
    CreditOverflow(StreamId),
    /// Data arrived after the peer's FIN on the same stream.
    #[error("stream {0}: data after FIN")]
    DataAfterFin(StreamId),
    /// SYN for a stream id that is open or was used before (remembered with
    /// a bounded reordering allowance, see `docs/protocol.md`).
    #[error("stream {0}: duplicate or reused stream id")]
    StreamIdReused(StreamId),
    /// SYN with an id of our parity, or id 0. Two ends configured with the
    /// same [`Role`](crate::Role) fail this way on the first stream.
    #[error(
        "stream {0}: the peer opened a stream id of our parity (or 0); if both ends \
         have the same Role, check the roles: one must be Client, the other Server"
    )]
    InvalidStreamId(StreamId),
}

/// An abusive pattern of otherwise valid frames, counted against a limit in
/// [`Config`](crate::Config).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FloodError {
    /// Too many frames in a row that changed nothing: no payload, no new
    /// stream, no change to a live stream's state or credit (repeated or
    /// unknown flags count too).
    #[error("too many empty frames")]
    EmptyFrames,
    /// Too many streams opened and reset by the peer within one window.
    #[error("too many streams reset by the peer")]
    RapidReset,
    /// Too many refused streams waiting for their RST to be transmitted
    /// (the peer opens streams faster than it reads our answers).
    #[error("too many refused streams pending")]
    RefusedStreams,
}

/// Why a connection ended. Carried by [`Event::ConnectionClosed`](crate::Event).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// A graceful go-away completed: every stream finished.
    #[error("drained after go-away")]
    Drained,
    /// The application called [`Connection::close`](crate::Connection::close).
    #[error("closed by the application")]
    LocalClose,
    /// The peer sent Go Away with a code other than normal.
    #[error("peer sent go-away with code {0:?}")]
    RemoteGoAway(GoAwayCode),
    /// The application reported the transport closed
    /// ([`Connection::handle_transport_closed`](crate::Connection::handle_transport_closed)).
    #[error("transport closed")]
    TransportClosed,
    /// A keep-alive ping went unanswered for longer than the ping timeout.
    #[error("keep-alive timeout: the peer did not answer a ping")]
    KeepAliveTimeout,
    /// The go-away drain deadline passed with streams still open.
    #[error("go-away drain deadline passed")]
    DrainTimeout,
    /// After our go-away, the peer answered no ping within the ping timeout:
    /// it has stopped serving the session. go-yamux and js-libp2p end the
    /// session on a Go Away (js-libp2p without RST and with TCP left open),
    /// so their streams will never finish; this ends the drain after
    /// `ping_timeout` instead of `go_away_timeout`.
    #[error("the peer answered no ping after our go-away")]
    GoAwayUnanswered,
    /// The peer broke the protocol; we sent Go Away (protocol error).
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer exceeded a flood limit; we sent Go Away (protocol error).
    #[error("flood limit: {0}")]
    Flood(#[from] FloodError),
}

/// Why a stream was aborted. Carried by [`Event::StreamReset`](crate::Event)
/// and returned by commands on a reset stream.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetReason {
    /// The application called [`Connection::reset`](crate::Connection::reset).
    #[error("reset by the application")]
    Local,
    /// The peer sent RST; `code` is the frame's length field (0 from
    /// hashicorp and the `yamux` crate; go-yamux puts an error code there).
    #[error("reset by the peer (code {code})")]
    Remote {
        /// The RST frame's length field.
        code: u32,
    },
    /// The peer answered our SYN with RST: it refused the stream.
    #[error("refused by the peer")]
    Refused,
    /// Our SYN was not acknowledged within the open timeout.
    #[error("open timeout: no ACK from the peer")]
    OpenTimeout,
    /// The stream lingered, half-closed by us and no longer read, past the
    /// linger timeout.
    #[error("linger timeout")]
    LingerTimeout,
    /// Data sat queued with zero send credit past the send-stall timeout.
    #[error("send stalled on zero credit")]
    SendStall,
    /// The connection ended while the stream was open.
    #[error("connection closed: {0}")]
    ConnectionClosed(CloseReason),
    /// The application stopped reading and our write half had finished,
    /// so the stream was reset to end the peer's writes (see
    /// [`Connection::stop_reading`](crate::Connection::stop_reading)). Never
    /// reported as an event: commands on the stream return it.
    #[error("reset after the application stopped reading")]
    StoppedReading,
}

/// Why [`Connection::open`](crate::Connection::open) could not open a stream.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// The connection has ended.
    #[error("connection closed")]
    Closed,
    /// We sent go-away: no new streams.
    #[error("going away")]
    GoingAway,
    /// The peer sent go-away: it accepts no new streams.
    #[error("peer sent go-away")]
    RemoteGoingAway,
    /// Too many of our streams wait for the peer's ACK; an
    /// [`Event::OpenUnblocked`](crate::Event) follows when one is acknowledged.
    #[error("too many unacknowledged streams")]
    Blocked,
    /// [`Config::max_streams`](crate::Config::max_streams) streams are open
    /// (both directions count); a stream ending (its
    /// [`Event::StreamClosed`](crate::Event::StreamClosed)) makes room.
    #[error("too many streams: {max_streams} are open, the most Config::max_streams allows")]
    TooManyStreams {
        /// The configured limit.
        max_streams: usize,
    },
    /// The receive windows of the open streams take all of
    /// [`Config::connection_receive_window`](crate::Config::connection_receive_window),
    /// so no new stream can get its initial window; a stream ending makes
    /// room.
    #[error("the open streams' receive windows take all of Config::connection_receive_window ({budget} bytes)")]
    ReceiveBudgetFull {
        /// The configured budget, in bytes.
        budget: u64,
    },
    /// Every stream id of our parity has been used.
    #[error("stream ids exhausted")]
    IdsExhausted,
}

/// Why [`Connection::send`](crate::Connection::send) or
/// [`send_bytes`](crate::Connection::send_bytes) took nothing.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No such stream: never opened, or closed and forgotten.
    #[error("unknown stream")]
    UnknownStream,
    /// Our write half is closed (FIN queued or sent).
    #[error("write half closed")]
    WriteClosed,
    /// The stream was reset.
    #[error("stream reset: {0}")]
    Reset(ResetReason),
}

/// Why [`Connection::close_write`](crate::Connection::close_write) failed.
/// (Closing a write half that is already closed is not an error.)
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseWriteError {
    /// No such stream: never opened, or closed and forgotten.
    #[error("unknown stream")]
    UnknownStream,
    /// The stream was reset: no FIN can follow.
    #[error("stream reset: {0}")]
    Reset(ResetReason),
}

/// Why [`Connection::stop_reading`](crate::Connection::stop_reading) failed.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReadingError {
    /// No such stream: never opened, or closed and forgotten.
    #[error("unknown stream")]
    UnknownStream,
    /// The stream was reset (what it left unread is dropped all the same).
    #[error("stream reset: {0}")]
    Reset(ResetReason),
}

/// Why [`Connection::reset`](crate::Connection::reset) failed. Resetting a
/// stream that already ended, or was reset, is not an error.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetError {
    /// No such stream: never opened, or closed and forgotten.
    #[error("unknown stream")]
    UnknownStream,
}

/// Any failure of a command on a stream: what the per-operation errors
/// ([`SendError`], [`CloseWriteError`], [`StopReadingError`],
/// [`ResetError`]) convert into, for callers that handle them alike. The
/// adapters carry it inside their `io::Error`s.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// No such stream: never opened, or closed and forgotten.
    #[error("unknown stream")]
    UnknownStream,
    /// Our write half is closed (FIN queued or sent).
    #[error("write half closed")]
    WriteClosed,
    /// The stream was reset.
    #[error("stream reset: {0}")]
    Reset(ResetReason),
}

impl From<SendError> for StreamError {
    fn from(e: SendError) -> StreamError {
        match e {
            SendError::UnknownStream => StreamError::UnknownStream,
            SendError::WriteClosed => StreamError::WriteClosed,
            SendError::Reset(r) => StreamError::Reset(r),
        }
    }
}

impl From<CloseWriteError> for StreamError {
    fn from(e: CloseWriteError) -> StreamError {
        match e {
            CloseWriteError::UnknownStream => StreamError::UnknownStream,
            CloseWriteError::Reset(r) => StreamError::Reset(r),
        }
    }
}

impl From<StopReadingError> for StreamError {
    fn from(e: StopReadingError) -> StreamError {
        match e {
            StopReadingError::UnknownStream => StreamError::UnknownStream,
            StopReadingError::Reset(r) => StreamError::Reset(r),
        }
    }
}

impl From<ResetError> for StreamError {
    fn from(e: ResetError) -> StreamError {
        match e {
            ResetError::UnknownStream => StreamError::UnknownStream,
        }
    }
}

/// Why [`Connection::read`](crate::Connection::read) returned no bytes.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// Nothing to read yet: an [`Event::Readable`](crate::Event::Readable)
    /// follows when bytes arrive.
    #[error("nothing to read yet")]
    Blocked,
    /// The stream was reset. Bytes received before a reset by the peer (or a
    /// connection close) are returned first; our own reset dropped them.
    #[error("stream reset: {0}")]
    Reset(ResetReason),
    /// The application stopped reading the stream.
    #[error("reading stopped")]
    Stopped,
    /// No such stream: never opened, or closed and forgotten.
    #[error("unknown stream")]
    UnknownStream,
}

/// Why [`Connection::ping`](crate::Connection::ping) could not send a ping.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PingError {
    /// The connection has ended.
    #[error("connection closed")]
    Closed,
    /// `max_outstanding_pings` pings already await their answer.
    #[error("too many outstanding pings")]
    TooMany,
}
