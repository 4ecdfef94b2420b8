//! The futures-io adapter (feature `futures-io`): a yamux [`Session`] over
//! any `futures_io::AsyncRead + AsyncWrite` transport, for smol, async-std
//! and other executors; [`Stream`]s implement the same traits.
//!
//! # Timers without a runtime
//!
//! futures-io has no clock, so [`new`] takes a `sleep` function: given a
//! `Duration`, it returns a future that completes after it (its output is
//! ignored). `smol::Timer::after` and `async_io::Timer::after` fit as they
//! are; `async_std::task::sleep` too. The driver keeps one such sleep at a
//! time, for the connection's earliest deadline (keep-alive, ping, open,
//! linger and go-away timeouts), and measures time with
//! `std::time::Instant::now()`. Passing `|_| std::future::pending::<()>()`
//! disables timers: keep-alive pings and every timeout then never fire.
//!
//! This keeps the crate free of any runtime or timer dependency: the driver
//! is a plain future the caller spawns on whatever executor it uses.
//!
//! ```
//! use futures::io::{AsyncReadExt, AsyncWriteExt};
//! use yamux_proto::adapter::futures_io as yf;
//! use yamux_proto::{Config, Role};
//!
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let accepted = smol::spawn(async move { listener.accept().await });
//!     let tcp = smol::net::TcpStream::connect(addr).await?;
//!     let (server_tcp, _) = accepted.await?;
//!
//!     let (client, driver) = yf::new(tcp, Config::default(), Role::Client, smol::Timer::after)
//!         .unwrap();
//!     smol::spawn(driver).detach();
//!     let (server, driver) =
//!         yf::new(server_tcp, Config::default(), Role::Server, smol::Timer::after).unwrap();
//!     smol::spawn(driver).detach();
//!
//!     let mut out = client.open().await?;
//!     out.write_all(b"ping").await?;
//!     out.close().await?; // half-close
//!     let mut inbound = server.accept().await?;
//!     let mut got = Vec::new();
//!     inbound.read_to_end(&mut got).await?;
//!     assert_eq!(got, b"ping");
//!     Ok::<(), std::io::Error>(())
//! })
//! .unwrap();
//! ```

use std::future::Future;
use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_io::{AsyncRead, AsyncWrite};

use super::driver::{self, Clock, IoState, Transport};
pub use super::session::Session;
use super::shared::Shared;
pub use super::stream::{ReadHalf, Stream, WriteHalf};
use crate::{CloseReason, Config, ConfigError, Connection, Role};

/// Starts a session over `io`. Returns the session handle and the
/// [`Driver`], a future the caller must spawn (or otherwise poll) for
/// anything to happen. `sleep` is the timer (see the module docs).
pub fn new<T, S, F>(
    io: T,
    config: Config,
    role: Role,
    sleep: S,
) -> Result<(Session, Driver<T, S, F>), ConfigError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: FnMut(Duration) -> F,
    F: Future,
{
    let conn = Connection::new(config, role, Instant::now())?;
    let io = Io { io, scratch: vec![0; SCRATCH].into_boxed_slice() };
    let io = Arc::new(Mutex::new(IoState::new(io)));
    let shared = Arc::new(Mutex::new(Shared::new(conn, Instant::now, io.clone())));
    let clock = SleepClock { sleep: Box::new(sleep), current: None };
    let driver = driver::Driver::new(shared.clone(), io, clock);
    Ok((Session::from_shared(shared), Driver { inner: driver, transport: PhantomData }))
}

/// Copies `stream` to `other` and `other` to `stream` until both directions
/// have ended, half-closing each side when the other's data ends; returns
/// the bytes copied: (to `other`, to `stream`). What a proxy or a tunnel
/// does with each stream, with one copy less than a generic copy: chunks
/// received on the stream go to `other` as they are.
///
/// If `other` fails (its read or write errors), the yamux stream is
/// **reset**, so its peer sees an abort rather than a clean end of a
/// transfer that did not complete (what was still queued for it is
/// dropped, as with any reset); the error is returned. An error on the
/// yamux side is returned as is; `other` is dropped (closed) on return
/// either way.
pub async fn splice<T>(stream: Stream, other: T) -> io::Result<(u64, u64)>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let other = Io { io: other, scratch: vec![0; SCRATCH].into_boxed_slice() };
    super::splice::splice(stream, other).await
}

/// The future that runs a session: owns the transport, reads and writes it,
/// fires the timers, wakes the handles. Resolves to the reason the session
/// ended, after the transport was flushed and closed. Dropping it ends the
/// session ([`CloseReason::TransportClosed`]): every handle then fails
/// instead of waiting. It is `Send` when `S` and `F` are.
pub struct Driver<T, S, F> {
    inner: driver::Driver<SleepClock<S, F>>,
    transport: PhantomData<fn(T)>,
}

impl<T, S, F> Future for Driver<T, S, F>
where
    S: FnMut(Duration) -> F,
    F: Future,
{
    type Output = CloseReason;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CloseReason> {
        self.get_mut().inner.poll_drive(cx)
    }
}

impl<T, S, F> std::fmt::Debug for Driver<T, S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

/// The transport, with the scratch buffer its reads go through.
struct Io<T> {
    io: T,
    /// futures-io reads only into initialised memory; zeroing the read
    /// buffer's spare capacity before every read would cost as much as the
    /// copy out of this buffer that it would save.
    scratch: Box<[u8]>,
}

/// The scratch buffer's size: the most one read takes.
const SCRATCH: usize = 64 * 1024;

impl<T: AsyncRead + AsyncWrite + Unpin> Transport for Io<T> {
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        let room = (buf.capacity() - buf.len()).clamp(1, SCRATCH);
        let r = Pin::new(&mut self.io).poll_read(cx, &mut self.scratch[..room]);
        if let Poll::Ready(Ok(n)) = r {
            buf.extend_from_slice(&self.scratch[..n]);
        }
        r
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs {
            [one] => Pin::new(&mut self.io).poll_write(cx, one),
            _ => Pin::new(&mut self.io).poll_write_vectored(cx, bufs),
        }
    }

    /// futures-io cannot tell whether a transport writes vectors natively,
    /// so frames are coalesced into one buffer (one copy, few writes).
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// The caller's sleep function, one sleep at a time, made again when the
/// deadline moves. `S` is boxed so the driver is `Unpin` whatever it is.
struct SleepClock<S, F> {
    sleep: Box<S>,
    current: Option<(Instant, Pin<Box<F>>)>,
}

impl<S: FnMut(Duration) -> F, F: Future> Clock for SleepClock<S, F> {
    fn poll_until(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        // A sleep that completes early is made again for the remainder; a
        // bounded number of times, so a broken sleep function cannot spin.
        // The clock is read only to make a sleep and when one completes.
        for _ in 0..3 {
            if !matches!(&self.current, Some((d, _)) if *d == deadline) {
                let now = Instant::now();
                if deadline <= now {
                    self.current = None;
                    return Poll::Ready(());
                }
                self.current = Some((deadline, Box::pin((self.sleep)(deadline - now))));
            }
            let Some((_, fut)) = self.current.as_mut() else { return Poll::Ready(()) };
            if fut.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.current = None;
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
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
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let mut off = 0;
                let max = buf.len();
                self.get_mut().poll_read_with(cx, max, &mut |b| {
                    buf[off..off + b.len()].copy_from_slice(b);
                    off += b.len();
                })
            }
        }
    };
}

impl_read!(Stream);
impl_read!(ReadHalf);

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
            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().poll_shutdown_stream(cx)
            }
        }
    };
}

impl_write!(Stream);
impl_write!(WriteHalf);
