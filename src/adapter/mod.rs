//! Async adapters over [`Connection`](crate::Connection), behind features:
//! [`tokio`] (feature `tokio`) and [`futures_io`] (feature `futures-io`, for
//! smol, async-std and other executors). The core stays runtime-free; these
//! modules are the only place the crate touches async I/O.
//!
//! # Shape
//!
//! A session is two things:
//!
//! * a [`Session`] handle (cheap to clone) to open and accept [`Stream`]s,
//!   ping, go away and close; streams implement `AsyncRead` + `AsyncWrite`
//!   and can be split into owned [`ReadHalf`] and [`WriteHalf`];
//! * a **driver**, one future per session, which runs the transport: it
//!   reads into a buffer of its own, which it hands to
//!   [`Connection::handle_input_buf`](crate::Connection::handle_input_buf)
//!   (large bodies stay slices of it),
//!   writes what [`poll_transmit`](crate::Connection::poll_transmit) gives
//!   (vectored, large bodies by reference, when the transport supports it;
//!   coalesced into one buffer otherwise), sleeps until
//!   [`poll_timeout`](crate::Connection::poll_timeout), and routes events to
//!   the handles. [`tokio::spawn`] spawns it; [`tokio::new`] and
//!   [`futures_io::new`] hand it to the caller. The transport must be
//!   `Send + 'static`: it lives behind a lock of its own that handles
//!   waiting for a flush can take (see below).
//!
//! Handles and driver share one `Mutex` around the `Connection` and a little
//! per-stream state (the reader's and the writer's wakers, the reset reason
//! for after the connection forgot the stream, flush marks) plus the accept
//! queue. Received bytes are not copied out: readers take them straight
//! from the connection with [`Connection::read`](crate::Connection::read),
//! which is also what returns their credit.
//! The lock is held only for bookkeeping and calls into the non-blocking
//! `Connection`, never across an `.await`, and nothing under it ever waits
//! for the transport (the lesson of Go's x/net/http2): a stalled transport
//! or a slow stream never blocks another task's `open`, `accept`, read or
//! write. Wakers are collected under the lock and woken after it is
//! released.
//!
//! The transport and the frames taken for it sit behind a second lock,
//! which the driver holds for each pass. A handle waiting for a flush
//! (`flush`, `shutdown`/`close`) takes it only if it is free at once
//! (`try_lock`), and then does what a pass of the driver would: takes the
//! frames the connection has (at most 256 KiB), writes them and flushes,
//! non-blocking, with the *driver's* waker, so a transport that is not
//! ready wakes the driver, which goes on. A flushed stream thus costs no
//! round trip through the driver's task: on an in-memory pipe, 2,000
//! streams each shut down in turn went from 1.5x to 1.8x the `yamux`
//! crate, and stream churn from 2.3x to 2.7x. Plain writes never do I/O
//! themselves: the driver batches them, one transport write per pass.
//!
//! # Wake-ups
//!
//! Every wait registers its waker under the lock in which it observed the
//! condition it waits on, and every change of that condition happens under
//! the same lock and wakes it, so no wake-up is lost:
//!
//! * a reader waits for `Readable`, `PeerHalfClosed`, `StreamReset` or the end
//!   of the connection; a writer for `Writable` (which the connection owes
//!   whenever `send` fell short), a reset, or, when flushing and the
//!   transport is busy, for the driver to have flushed past the stream's
//!   last frame. Reader and writer have
//!   separate wakers, so one task reading and another writing the same
//!   stream never steal each other's wake-up (the `yamux` crate once
//!   deadlocked exactly there); a reset or the end of the connection wakes
//!   both.
//! * `open` waits on [`OpenError::Blocked`](crate::OpenError::Blocked) for
//!   `OpenUnblocked`; `accept` for `StreamOpened`; `ping` for its `Pong`.
//! * The driver is woken by its transport, its one timer, and by commands
//!   (coalesced: one pending wake-up suffices). Nothing polls in a loop; the
//!   driver yields after a bounded number of iterations when the transport
//!   is always ready. One wake-up is normally one pass: read until the
//!   transport has no more, one lock for the input, events and frames, then
//!   write and flush. The clock is read only for input and fired timers: a
//!   due timer runs when the runtime's timer fires (tokio rounds to its
//!   1 ms tick).
//!
//! There is no task and no timer per stream: idle streams cost only their
//! entry in two maps.
//!
//! # Backpressure and memory
//!
//! Received data waits in the connection until the application reads
//! it, and only reading releases credit to the peer, so a stream nobody
//! reads stops its peer's writer after the receive window (256 KiB by
//! default), whatever the peer is. Writing queues at most
//! [`Config::max_send_buffer`](crate::Config::max_send_buffer) bytes per
//! stream in the connection beyond what the peer's credit lets out; then the
//! write waits. The driver takes at most 256 KiB of frames from the
//! connection ahead of the transport. Every other queue (accept queue,
//! pings) is bounded by the connection's limits.
//!
//! # Drop semantics
//!
//! * Dropping a [`Stream`] is like closing a TCP socket, but never destroys
//!   data: its write half is half-closed (what was written is still
//!   delivered, then FIN) and its read half stops reading
//!   ([`Connection::stop_reading`](crate::Connection::stop_reading)): data
//!   still arriving is discarded with its credit returned at once, so the
//!   peer's writer never stalls, and the stream is reset only once nothing we
//!   sent can still be unread at the peer. Dropping a [`WriteHalf`] only
//!   half-closes; dropping a [`ReadHalf`] only stops reading. To abort, call
//!   `reset` explicitly.
//! * Dropping the last [`Session`] clone sends Go Away (normal): no new
//!   streams, existing ones finish, then the driver ends. Streams not yet
//!   accepted are released as if dropped.
//! * Dropping the driver ends the session at once
//!   ([`CloseReason::TransportClosed`](crate::CloseReason::TransportClosed));
//!   every waiting handle is woken with an error.
//!
//! # Errors
//!
//! Errors are `std::io::Error`s whose kind is derived from a typed reason,
//! and whose inner error is that reason ([`StreamError`](crate::StreamError),
//! [`OpenError`](crate::OpenError), [`CloseReason`](crate::CloseReason),
//! [`PingError`](crate::PingError)). The kinds are listed in [`error`];
//! [`reset_reason`], [`close_reason`] and friends extract the reason:
//!
//! ```
//! # use yamux_proto::{ResetReason, StreamError};
//! # let err = std::io::Error::new(
//! #     std::io::ErrorKind::ConnectionReset,
//! #     StreamError::Reset(ResetReason::Remote { code: 0 }),
//! # );
//! // `err` came from reading a stream the peer reset:
//! assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
//! assert_eq!(
//!     yamux_proto::adapter::reset_reason(&err),
//!     Some(ResetReason::Remote { code: 0 })
//! );
//! ```

mod driver;
pub mod error;
#[cfg(feature = "futures-io")]
#[cfg_attr(docsrs, doc(cfg(feature = "futures-io")))]
pub mod futures_io;
mod session;
mod shared;
mod splice;
mod stream;
mod tcp;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use error::{close_reason, open_error, ping_error, reset_reason, stream_error};
pub use session::Session;
pub use stream::{ReadHalf, Stream, WriteHalf};
#[cfg(unix)]
pub use tcp::set_notsent_lowat;
