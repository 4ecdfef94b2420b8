//! [`Session`]: the handle that opens and accepts streams, pings, goes
//! away and closes.

use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use super::error::{close_io_error, open_io_error, ping_io_error};
use super::shared::{add_waker, lock, set_waker, with, PingWait, Shared, Slot};
use super::stream::Stream;
use crate::{CloseReason, ConnectionStats, GoAwayCode, OpenError, Role};

/// A handle to a yamux session: opens and accepts streams, pings, goes away,
/// closes. Cheap to clone; every clone is the same session.
///
/// The session runs as long as its driver runs. When the last clone is
/// dropped the session sends Go Away (normal): no new streams either way,
/// existing streams finish, and the driver ends once they have (or at
/// [`Config::go_away_timeout`](crate::Config::go_away_timeout)). Streams
/// not yet accepted are released as if dropped.
#[derive(Clone, Debug)]
pub struct Session {
    inner: Arc<SessionInner>,
}

#[derive(Debug)]
struct SessionInner {
    shared: Arc<Mutex<Shared>>,
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        with(&self.shared, |s, w| {
            s.session_gone = true;
            s.conn.go_away(GoAwayCode::Normal);
            while let Some(id) = s.accept_queue.pop_front() {
                s.release_read(id, w);
                s.release_write(id, w);
            }
            s.notify_driver(w);
        });
    }
}

impl Session {
    pub(crate) fn from_shared(shared: Arc<Mutex<Shared>>) -> Session {
        Session { inner: Arc::new(SessionInner { shared }) }
    }

    fn shared(&self) -> &Arc<Mutex<Shared>> {
        &self.inner.shared
    }

    /// Opens a stream, waiting for room as quinn's `open_bi` and h2 do:
    /// while [`Config::max_streams`](crate::Config::max_streams) streams
    /// are open or their windows take the whole
    /// [`Config::connection_receive_window`](crate::Config::connection_receive_window)
    /// (until one ends), and while the peer has not acknowledged
    /// [`Config::max_unacked_outbound`](crate::Config::max_unacked_outbound)
    /// of our streams. Other refusals are errors carrying an [`OpenError`]
    /// (or the [`CloseReason`] once the session ended). Opening is
    /// optimistic: data may be written at once. [`try_open`](Session::try_open)
    /// never waits.
    pub async fn open(&self) -> io::Result<Stream> {
        poll_fn(|cx| self.poll_open(cx)).await
    }

    /// The poll form of [`open`](Session::open).
    pub fn poll_open(&self, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
        self.open_or(Some(cx))
    }

    /// Opens a stream if there is room now. Where [`open`](Session::open)
    /// would wait, fails with [`OpenError::TooManyStreams`] or
    /// [`OpenError::ReceiveBudgetFull`] (`ErrorKind::Other`, the message
    /// names the limit and its setting) or [`OpenError::Blocked`]
    /// (`ErrorKind::WouldBlock`).
    pub fn try_open(&self) -> io::Result<Stream> {
        match self.open_or(None) {
            Poll::Ready(result) => result,
            Poll::Pending => unreachable!("open_or without a context never waits"),
        }
    }

    /// Opens a stream; where there is no room, waits with `cx`, or fails
    /// without one.
    fn open_or(&self, cx: Option<&mut Context<'_>>) -> Poll<io::Result<Stream>> {
        with(self.shared(), |s, w| {
            if let Some(e) = s.closed_error() {
                return Poll::Ready(Err(e));
            }
            s.touch_clock(w);
            match s.conn.open() {
                Ok(id) => {
                    s.streams.insert(id, Slot::new());
                    s.notify_driver(w);
                    Poll::Ready(Ok(Stream::new(self.shared().clone(), id)))
                }
                // Blocked is recorded by the connection, which owes an
                // `OpenUnblocked` event; a full session frees room only when
                // a stream ends, with a `StreamClosed` event. Both are
                // dispatched under this lock, so the waker cannot be missed.
                Err(
                    OpenError::Blocked
                    | OpenError::TooManyStreams { .. }
                    | OpenError::ReceiveBudgetFull { .. },
                ) if cx.is_some() => {
                    if let Some(cx) = cx {
                        add_waker(&mut s.open_wakers, cx.waker());
                    }
                    Poll::Pending
                }
                Err(e) => {
                    s.notify_driver(w);
                    Poll::Ready(Err(s.closed_error().unwrap_or_else(|| open_io_error(e))))
                }
            }
        })
    }

    /// The next stream the peer opened. Fails with the [`CloseReason`] once
    /// the session has ended and every stream opened before was accepted.
    pub async fn accept(&self) -> io::Result<Stream> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// The poll form of [`accept`](Session::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
        with(self.shared(), |s, _| {
            if let Some(id) = s.accept_queue.pop_front() {
                return Poll::Ready(Ok(Stream::new(self.shared().clone(), id)));
            }
            if let Some(e) = s.closed_error() {
                return Poll::Ready(Err(e));
            }
            add_waker(&mut s.accept_wakers, cx.waker());
            Poll::Pending
        })
    }

    /// Sends a ping and waits for its answer: the round-trip time, measured
    /// on the runtime's clock from the ping being queued to the pong being
    /// read. Fails if the session ends first, or with [`PingError::TooMany`]
    /// (inside the error) when too many pings are outstanding.
    ///
    /// [`PingError::TooMany`]: crate::PingError::TooMany
    pub async fn ping(&self) -> io::Result<Duration> {
        let opaque = with(self.shared(), |s, w| {
            s.touch_clock(w);
            let r = s.conn.ping();
            s.notify_driver(w);
            let opaque = r.map_err(|e| s.closed_error().unwrap_or_else(|| ping_io_error(e)))?;
            s.pings.insert(opaque, PingWait { rtt: None, waker: None });
            Ok::<u32, io::Error>(opaque)
        })?;
        // Removes the waiter however this future ends (answered, failed or
        // dropped), so the table stays bounded.
        struct Guard<'a>(&'a Mutex<Shared>, u32);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                lock(self.0).pings.remove(&self.1);
            }
        }
        let guard = Guard(self.shared().as_ref(), opaque);
        poll_fn(|cx| {
            let mut s = lock(guard.0);
            let Some(p) = s.pings.get_mut(&opaque) else {
                return Poll::Ready(Err(close_io_error(CloseReason::TransportClosed)));
            };
            if let Some(rtt) = p.rtt {
                return Poll::Ready(Ok(rtt));
            }
            set_waker(&mut p.waker, cx.waker());
            match s.closed_error() {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Graceful shutdown: sends Go Away with `code`, refuses new streams
    /// both ways, lets existing streams finish. The session then ends with
    /// [`CloseReason::Drained`] (or
    /// [`CloseReason::DrainTimeout`](crate::CloseReason::DrainTimeout));
    /// await [`closed`](Session::closed) for it. Idempotent.
    pub fn go_away(&self, code: GoAwayCode) {
        with(self.shared(), |s, w| {
            s.touch_clock(w);
            s.conn.go_away(code);
            // Opens waiting on Blocked would now fail: let them see it.
            w.extend(s.open_wakers.drain(..));
            s.notify_driver(w);
        });
    }

    /// Closes the session at once: live streams are reset (their handles
    /// fail with [`ResetReason::ConnectionClosed`](crate::ResetReason::ConnectionClosed)`(`[`CloseReason::LocalClose`]`)`),
    /// Go Away is sent, the transport is flushed and shut down. Returns the
    /// reason the session ended (`LocalClose`, or an earlier reason if it had
    /// already ended) once the driver has finished.
    pub async fn close(&self) -> CloseReason {
        with(self.shared(), |s, w| {
            s.conn.close();
            s.notify_driver(w);
        });
        self.closed().await
    }

    /// The poll form of [`close`](Session::close), for poll-based traits
    /// (a libp2p `StreamMuxer`, for one): the first call closes the
    /// session, and every call is ready once the driver has finished.
    pub fn poll_close(&self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        with(self.shared(), |s, w| {
            if !s.conn.is_closed() {
                s.conn.close();
                s.notify_driver(w);
            }
            s.poll_driver_done(cx)
        })
    }

    /// Waits until the session has ended and its driver has finished with
    /// the transport; returns why it ended.
    pub async fn closed(&self) -> CloseReason {
        poll_fn(|cx| with(self.shared(), |s, _| s.poll_driver_done(cx))).await
    }

    /// Why the session ended, once it has (the driver may still be flushing).
    pub fn close_reason(&self) -> Option<CloseReason> {
        lock(self.shared()).conn.close_reason()
    }

    /// The code of the peer's Go Away, if it sent one.
    pub fn remote_go_away(&self) -> Option<GoAwayCode> {
        lock(self.shared()).conn.remote_go_away()
    }

    /// Streams open in either direction.
    pub fn stream_count(&self) -> usize {
        lock(self.shared()).conn.stream_count()
    }

    /// The latest round-trip time measured by any ping.
    pub fn rtt(&self) -> Option<Duration> {
        lock(self.shared()).conn.rtt()
    }

    /// Counters over the session's life.
    pub fn stats(&self) -> ConnectionStats {
        lock(self.shared()).conn.stats().clone()
    }

    /// Our role.
    pub fn role(&self) -> Role {
        lock(self.shared()).conn.role()
    }
}
