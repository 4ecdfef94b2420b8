//! How the adapters report typed reasons through `std::io::Error`.
//!
//! Every error an adapter returns is an [`io::Error`] whose
//! [`kind`](io::Error::kind) is chosen from the typed reason and whose inner
//! error ([`get_ref`](io::Error::get_ref)) *is* the typed reason: one of
//! [`StreamError`] (the union of the core's per-operation stream errors),
//! [`OpenError`], [`CloseReason`] or [`PingError`]. The
//! helpers below dig it out; [`reset_reason`] and [`close_reason`] also look
//! through the layers (a stream reset because the connection closed carries
//! the connection's [`CloseReason`]).
//!
//! | typed reason | `io::ErrorKind` |
//! |---|---|
//! | [`ResetReason::Remote`] (peer sent RST) | `ConnectionReset` |
//! | [`ResetReason::Refused`] | `ConnectionRefused` |
//! | [`ResetReason::Local`] (this side reset) | `ConnectionAborted` |
//! | [`ResetReason::OpenTimeout`], `LingerTimeout`, `SendStall` | `TimedOut` |
//! | [`ResetReason::StoppedReading`] (reset after stop-reading; our writes had ended) | `BrokenPipe` |
//! | [`ResetReason::ConnectionClosed`]`(r)` | as `r` below |
//! | [`CloseReason::Drained`], [`CloseReason::LocalClose`] | `ConnectionAborted` |
//! | [`CloseReason::RemoteGoAway`], [`CloseReason::TransportClosed`] | `ConnectionReset` |
//! | [`CloseReason::KeepAliveTimeout`], [`CloseReason::DrainTimeout`], [`CloseReason::GoAwayUnanswered`] | `TimedOut` |
//! | [`CloseReason::Protocol`], [`CloseReason::Flood`] | `InvalidData` |
//! | [`StreamError::WriteClosed`] (write after shutdown) | `BrokenPipe` |
//! | [`StreamError::UnknownStream`] | `NotConnected` |
//! | [`OpenError::GoingAway`], [`OpenError::RemoteGoingAway`] | `ConnectionRefused` |
//! | [`OpenError::Blocked`] (from `try_open`) | `WouldBlock` |
//! | [`OpenError::TooManyStreams`], `ReceiveBudgetFull` (from `try_open`), `IdsExhausted`, [`PingError::TooMany`] | `Other` |

use std::io;

use crate::{CloseReason, OpenError, PingError, ResetReason, StreamError};

/// The `io::ErrorKind` for a connection that ended with `reason`.
pub fn close_kind(reason: CloseReason) -> io::ErrorKind {
    match reason {
        CloseReason::Drained | CloseReason::LocalClose => io::ErrorKind::ConnectionAborted,
        CloseReason::RemoteGoAway(_) | CloseReason::TransportClosed => {
            io::ErrorKind::ConnectionReset
        }
        CloseReason::KeepAliveTimeout
        | CloseReason::DrainTimeout
        | CloseReason::GoAwayUnanswered => io::ErrorKind::TimedOut,
        CloseReason::Protocol(_) | CloseReason::Flood(_) => io::ErrorKind::InvalidData,
    }
}

/// The `io::ErrorKind` for a stream reset with `reason`.
pub fn reset_kind(reason: ResetReason) -> io::ErrorKind {
    match reason {
        ResetReason::Local => io::ErrorKind::ConnectionAborted,
        ResetReason::Remote { .. } => io::ErrorKind::ConnectionReset,
        ResetReason::Refused => io::ErrorKind::ConnectionRefused,
        ResetReason::OpenTimeout | ResetReason::LingerTimeout | ResetReason::SendStall => {
            io::ErrorKind::TimedOut
        }
        ResetReason::ConnectionClosed(c) => close_kind(c),
        // Our write half had finished: as for any write after shutdown.
        ResetReason::StoppedReading => io::ErrorKind::BrokenPipe,
    }
}

/// `StreamError` as an `io::Error` (see the module docs for the kinds).
pub(crate) fn stream_io_error(e: impl Into<StreamError>) -> io::Error {
    let e = e.into();
    let kind = match e {
        StreamError::UnknownStream => io::ErrorKind::NotConnected,
        StreamError::WriteClosed => io::ErrorKind::BrokenPipe,
        StreamError::Reset(r) => reset_kind(r),
    };
    io::Error::new(kind, e)
}

/// A stream reset with `reason`, as an `io::Error`.
pub(crate) fn reset_io_error(reason: ResetReason) -> io::Error {
    stream_io_error(StreamError::Reset(reason))
}

/// A connection that ended with `reason`, as an `io::Error`.
pub(crate) fn close_io_error(reason: CloseReason) -> io::Error {
    io::Error::new(close_kind(reason), reason)
}

/// `OpenError` as an `io::Error`.
pub(crate) fn open_io_error(e: OpenError) -> io::Error {
    let kind = match e {
        OpenError::Closed => io::ErrorKind::NotConnected,
        OpenError::GoingAway | OpenError::RemoteGoingAway => io::ErrorKind::ConnectionRefused,
        OpenError::Blocked => io::ErrorKind::WouldBlock,
        OpenError::TooManyStreams { .. }
        | OpenError::ReceiveBudgetFull { .. }
        | OpenError::IdsExhausted => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// `PingError` as an `io::Error`.
pub(crate) fn ping_io_error(e: PingError) -> io::Error {
    let kind = match e {
        PingError::Closed => io::ErrorKind::NotConnected,
        PingError::TooMany => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// The [`StreamError`] inside an error returned by a stream, if any.
pub fn stream_error(e: &io::Error) -> Option<StreamError> {
    e.get_ref()?.downcast_ref::<StreamError>().copied()
}

/// The [`OpenError`] inside an error returned by `open`, if any.
pub fn open_error(e: &io::Error) -> Option<OpenError> {
    e.get_ref()?.downcast_ref::<OpenError>().copied()
}

/// The [`PingError`] inside an error returned by `ping`, if any.
pub fn ping_error(e: &io::Error) -> Option<PingError> {
    e.get_ref()?.downcast_ref::<PingError>().copied()
}

/// Why the stream was reset, if the error says so.
pub fn reset_reason(e: &io::Error) -> Option<ResetReason> {
    match stream_error(e)? {
        StreamError::Reset(r) => Some(r),
        _ => None,
    }
}

/// Why the connection ended, if the error says so: directly (from `accept`,
/// `open`, `ping` on a closed session) or through a stream reset with
/// [`ResetReason::ConnectionClosed`].
pub fn close_reason(e: &io::Error) -> Option<CloseReason> {
    let inner = e.get_ref()?;
    if let Some(r) = inner.downcast_ref::<CloseReason>() {
        return Some(*r);
    }
    match inner.downcast_ref::<StreamError>()? {
        StreamError::Reset(ResetReason::ConnectionClosed(r)) => Some(*r),
        _ => None,
    }
}
