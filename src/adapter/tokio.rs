//! The tokio adapter (feature `tokio`): a yamux [`Session`] over any tokio
//! `AsyncRead + AsyncWrite` transport (TCP, TLS, `tokio::io::duplex`),
//! whose [`Stream`]s implement tokio's `AsyncRead` and `AsyncWrite`.
//!
//! Over TCP, `TCP_NODELAY` is not needed for request/response latency: the
//! driver writes all the frames it has in one write, so no small segment
//! waits behind an unacknowledged one (with Nagle on, a 64 B ping-pong
//! measured 13 µs at p50 where the `yamux` crate's took 88 ms; see
//! docs/performance.md). Setting it does no harm. What does help beside
//! bulk streams is [`set_notsent_lowat`](super::set_notsent_lowat) on the
//! socket, where the network is the bottleneck.
//!
//! Timers (keep-alive pings, ping, open, linger and go-away timeouts) run on
//! tokio's clock, so `tokio::time::pause` applies to them; the runtime needs
//! its time driver (`enable_time`, on by default with `#[tokio::main]`).
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use yamux_proto::adapter::tokio as yt;
//! use yamux_proto::{Config, Role};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let (a, b) = tokio::io::duplex(64 * 1024);
//! let client = yt::spawn(a, Config::default(), Role::Client).unwrap();
//! let server = yt::spawn(b, Config::default(), Role::Server).unwrap();
//!
//! // Server: echo every stream.
//! tokio::spawn(async move {
//!     while let Ok(stream) = server.accept().await {
//!         tokio::spawn(async move {
//!             let (mut r, mut w) = stream.into_split();
//!             tokio::io::copy(&mut r, &mut w).await?;
//!             w.shutdown().await // half-close after the peer's half-close
//!         });
//!     }
//! });
//!
//! let mut stream = client.open().await?;
//! stream.write_all(b"hello").await?;
//! stream.shutdown().await?; // FIN: the echo ends after our data
//! let mut echo = Vec::new();
//! stream.read_to_end(&mut echo).await?;
//! assert_eq!(echo, b"hello");
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::driver::{self, Clock, IoState, Transport};
pub use super::session::Session;
use super::shared::Shared;
pub use super::stream::{ReadHalf, Stream, WriteHalf};
use crate::{CloseReason, Config, ConfigError, Connection, Role};

/// Starts a session over `io` and spawns its driver on the current tokio
/// runtime (panics outside one, like `tokio::spawn`). The driver ends when
/// the session has ended and `io` is shut down.
pub fn spawn<T>(io: T, config: Config, role: Role) -> Result<Session, ConfigError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (session, driver) = new(io, config, role)?;
    tokio::spawn(driver);
    Ok(session)
}

/// Starts a session over `io` and returns its [`Driver`] for the caller to
/// run (spawn it, or poll it beside other work, e.g. on a `LocalSet`).
/// Nothing happens on the session while the driver is not polled.
pub fn new<T>(io: T, config: Config, role: Role) -> Result<(Session, Driver<T>), ConfigError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Connection::new(config, role, now())?;
    let io = Arc::new(Mutex::new(IoState::new(Io(io))));
    let shared = Arc::new(Mutex::new(Shared::new(conn, now, io.clone())));
    let clock = TokioClock { sleep: None, registered: None };
    let driver = driver::Driver::new(shared.clone(), io, clock);
    Ok((Session::from_shared(shared), Driver { inner: driver, transport: PhantomData }))
}

/// The future that runs a session: owns the transport, reads and writes it,
/// fires the timers, wakes the handles. Resolves to the reason the session
/// ended, after the transport was flushed and shut down. Dropping it ends
/// the session ([`CloseReason::TransportClosed`]): every handle then fails
/// instead of waiting.
pub struct Driver<T> {
    inner: driver::Driver<TokioClock>,
    transport: PhantomData<fn(T)>,
}

impl<T> Future for Driver<T> {
    type Output = CloseReason;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CloseReason> {
        self.get_mut().inner.poll_drive(cx)
    }
}

impl<T> std::fmt::Debug for Driver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

/// Copies `stream` to `other` and `other` to `stream` until both directions
/// have ended, half-closing each side when the other's data ends, and
/// returns the bytes copied: (to `other`, to `stream`). What a proxy or a
/// tunnel does with each stream, like `tokio::io::copy_bidirectional`, with
/// one copy less: chunks received on the stream go to `other` as they are.
///
/// If `other` fails (its read or write errors), the yamux stream is
/// **reset**, so its peer sees an abort rather than a clean end of a
/// transfer that did not complete (what was still queued for it is
/// dropped, as with any reset); the error is returned. An error on the
/// yamux side (the peer reset the stream) is returned as is; `other` is
/// dropped (closed) on return either way.
pub async fn splice<T>(stream: Stream, other: T) -> io::Result<(u64, u64)>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    super::splice::splice(stream, Io(other)).await
}

/// Tokio's clock as a std `Instant` (paused time included).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

struct Io<T>(T);

impl<T: AsyncRead + AsyncWrite + Unpin> Transport for Io<T> {
    /// Straight into the buffer's spare capacity: tokio's `read_buf` (the
    /// `io-util` feature) fills uninitialised memory safely, which this
    /// crate could not do without `unsafe`.
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        std::pin::pin!(self.0.read_buf(buf)).poll(cx)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs {
            [one] => Pin::new(&mut self.0).poll_write(cx, one),
            _ => Pin::new(&mut self.0).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// One tokio `Sleep` per session, re-armed when the deadline moves.
struct TokioClock {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The waker the pending `sleep` was last polled with: while the
    /// deadline stays, the sleep has not fired and the driver polls with the
    /// same waker, the sleep need not be polled again (it would only
    /// register the same waker once more).
    registered: Option<Waker>,
}

impl Clock for TokioClock {
    fn poll_until(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let target = tokio::time::Instant::from_std(deadline);
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(target)));
        if sleep.deadline() != target {
            sleep.as_mut().reset(target);
            self.registered = None;
        } else if self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
            && !sleep.is_elapsed()
        {
            return Poll::Pending;
        }
        // Tokio rounds deadlines up to its tick, so a fired sleep means the
        // deadline passed; the re-check only guards against a clock that
        // disagrees, without spinning.
        for _ in 0..2 {
            if sleep.as_mut().poll(cx).is_pending() {
                self.registered = Some(cx.waker().clone());
                return Poll::Pending;
            }
            self.registered = None;
            if tokio::time::Instant::now() >= target {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(target);
        }
        Poll::Ready(())
    }
}

macro_rules! impl_read {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let max = buf.remaining();
                match self.get_mut().poll_read_with(cx, max, &mut |b| buf.put_slice(b)) {
                    Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    };
}

macro_rules! impl_write {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().poll_write_buf(cx, buf)
            }

            /// Waits until everything written was handed to the transport.
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().poll_flush_stream(cx)
            }

            /// Half-close: FIN after the data written, then waits for it to
            /// reach the transport. Reading goes on.
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().poll_shutdown_stream(cx)
            }
        }
    };
}

impl_read!(Stream);
impl_read!(ReadHalf);
impl_write!(Stream);
impl_write!(WriteHalf);
