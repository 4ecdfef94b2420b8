//! The driver: owns the transport and runs the connection. The runtime
//! modules supply a transport (the [`Transport`] trait) and a timer (the
//! [`Clock`] trait) and implement their runtime's I/O traits on the handles.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;

use super::shared::{lock, set_waker, wake_all, with, Shared, Wakers};
use crate::{CloseReason, Connection, Transmit};

/// The transport as the driver sees it: the runtime modules wrap tokio's or
/// futures' I/O traits in this.
pub(crate) trait Transport {
    /// Appends what the transport has to `buf`, in its spare capacity (the
    /// caller reserves room); returns the bytes read, `Ok(0)` at end of
    /// stream.
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>>;
    /// Writes from `bufs` (only the first is used when not vectored).
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
    /// Whether `poll_write_vectored` writes more than the first buffer.
    fn is_write_vectored(&self) -> bool;
    /// Flushes buffered writes.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Shuts the write side down (TCP FIN, TLS close_notify).
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// A timer: ready once `deadline` has passed. Implementations keep one
/// sleep and re-arm it when the deadline changes (there is only ever one
/// timer per session: the core keeps all its deadlines in one table).
pub(crate) trait Clock {
    /// Ready when the time has reached `deadline`.
    fn poll_until(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()>;
}

/// The driver pulls frames from the connection until this many bytes wait
/// for the transport; the rest stays in the connection (lazily framed), so
/// the adapter's own buffering is bounded by this.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Bodies at least this long are written by reference (writev) when the
/// transport supports vectored writes; shorter ones are copied so that many
/// small frames become one write.
const ZERO_COPY_MIN: usize = 4096;
/// The least room the read buffer has when a pass starts reading (it then
/// reads until the buffer is full or the transport has no more), and the
/// size of the first read buffer.
const READ_CHUNK: usize = 64 * 1024;
/// The read buffer's size. Frames are cut out of it without a copy (see
/// `Connection::handle_input_buf`), so the frame in progress at its end must
/// move to a new buffer when it fills: the larger the buffer, the rarer
/// that move. A body of 16 KiB or more (smaller ones are copied) keeps its
/// buffer alive until read, so this also bounds what an unread body pins.
const READ_BUF: usize = 256 * 1024;
/// Loop iterations of the driver before it yields to its executor, so a
/// transport that is always ready cannot starve other tasks. Each moves up
/// to `READ_BUF` in and `WRITE_HIGH_WATER` out. On a current-thread runtime
/// the streams' own tasks wait while the driver runs. Over loopback TCP
/// (benches/tcp.rs, docs/performance.md), 64 iterations gave a 64 B
/// ping-pong beside a bulk stream a p99 of 6-11 ms; 4 gave 0.4-1.3 ms; 2
/// gives 0.29-0.41 ms and one bulk stream 3.9-5.5x the `yamux` crate (2.1-2.4x
/// with 4: the writer refills the connection sooner); 1 was as good for one
/// stream but slower for 16 (1.5-1.7x, 1.7-2.0x with 4).
const DRIVER_BUDGET: usize = 2;

/// Frames taken from the connection, waiting for the transport. Headers
/// and small bodies are copied into `tail`; large bodies are kept by
/// reference in `segs` for vectored writes.
#[derive(Debug)]
struct WriteBuf {
    /// Whole segments, in order, all before `tail`.
    segs: VecDeque<Bytes>,
    /// `tail[tail_pos..]` is unwritten. Written bytes are skipped by
    /// position and the buffer is cleared once it is all written, so the
    /// next frames are copied in place (no `advance` and no reserve on
    /// the request/response path).
    tail: BytesMut,
    tail_pos: usize,
    len: usize,
    vectored: bool,
}

impl WriteBuf {
    fn push(&mut self, t: Transmit) {
        self.len += t.len();
        if self.vectored && t.body.len() >= ZERO_COPY_MIN {
            self.tail.extend_from_slice(&t.header);
            let head = self.tail.split().freeze().slice(self.tail_pos..);
            self.tail_pos = 0;
            self.segs.push_back(head);
            self.segs.push_back(t.body);
        } else {
            self.tail.reserve(t.header.len() + t.body.len());
            self.tail.extend_from_slice(&t.header);
            self.tail.extend_from_slice(&t.body);
        }
    }

    /// The unwritten tail.
    fn tail(&self) -> &[u8] {
        &self.tail[self.tail_pos..]
    }

    fn slices(&self) -> SmallVec<[IoSlice<'_>; 32]> {
        let mut out: SmallVec<[IoSlice<'_>; 32]> =
            self.segs.iter().take(31).map(|b| IoSlice::new(b)).collect();
        if out.len() < 31 && self.tail_pos < self.tail.len() {
            out.push(IoSlice::new(self.tail()));
        }
        out
    }

    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            match self.segs.front_mut() {
                Some(front) if n >= front.len() => {
                    n -= front.len();
                    self.segs.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    n = 0;
                }
                None => {
                    self.tail_pos += n;
                    n = 0;
                }
            }
        }
        if self.tail_pos == self.tail.len() {
            self.tail.clear();
            self.tail_pos = 0;
        }
    }

    fn clear(&mut self) {
        self.segs.clear();
        self.tail.clear();
        self.tail_pos = 0;
        self.len = 0;
    }
}

/// The transport and the frames waiting for it, behind their own lock. The
/// driver reads and writes under it; a handle that waits for a flush
/// (`flush`, `shutdown`) writes what is pending itself when the lock is
/// free ([`IoState::pump`]), instead of waiting a turn of the driver's task
/// (a round trip through the executor per flushed stream).
///
/// Locking: the driver holds this for a whole pass and takes the session's
/// `Shared` inside it; a handle holds `Shared` and only ever `try_lock`s
/// this (and leaves the I/O to the driver when it is taken). Only the
/// driver ever waits for this lock, so the two orders cannot deadlock.
pub(crate) struct IoState {
    transport: Box<dyn Transport + Send>,
    wbuf: WriteBuf,
    /// The transport failed: nothing more is written.
    write_failed: bool,
    /// Bytes written since the last flush of the transport.
    unflushed: bool,
    /// Transport bytes written.
    written: u64,
    /// Transport bytes written and flushed.
    flushed: u64,
}

impl std::fmt::Debug for IoState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoState")
            .field("waiting", &self.wbuf.len)
            .field("write_failed", &self.write_failed)
            .field("written", &self.written)
            .field("flushed", &self.flushed)
            .finish_non_exhaustive()
    }
}

/// What a [`IoState::pump`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pumped {
    /// Everything taken from the connection is written and flushed.
    Flushed,
    /// Frames wait (the transport is busy, or there was more than one
    /// pass's worth): the driver must go on.
    Waiting,
    /// The transport failed just now: the connection must be told.
    Failed,
}

impl IoState {
    /// The state of a fresh transport.
    pub(crate) fn new(transport: impl Transport + Send + 'static) -> IoState {
        let vectored = transport.is_write_vectored();
        IoState {
            transport: Box::new(transport),
            wbuf: WriteBuf {
                segs: VecDeque::new(),
                tail: BytesMut::new(),
                tail_pos: 0,
                len: 0,
                vectored,
            },
            write_failed: false,
            unflushed: false,
            written: 0,
            flushed: 0,
        }
    }

    /// Takes frames from `conn` until `WRITE_HIGH_WATER` bytes wait, adding
    /// their length to `pulled`. Returns whether it stopped at the mark
    /// (frames may be left in the connection).
    #[inline]
    fn fill(&mut self, conn: &mut Connection, pulled: &mut u64) -> bool {
        if self.write_failed {
            return false;
        }
        while self.wbuf.len < WRITE_HIGH_WATER {
            let Some(t) = conn.poll_transmit() else { return false };
            *pulled += t.len() as u64;
            self.wbuf.push(t);
        }
        true
    }

    /// One write of what waits: `Ready(true)` if bytes went out,
    /// `Ready(false)` if the transport failed (see [`IoState::fail`]).
    #[inline]
    fn write_some(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let r = if self.wbuf.vectored && !self.wbuf.segs.is_empty() {
            self.transport.poll_write_vectored(cx, &self.wbuf.slices())
        } else {
            self.transport.poll_write_vectored(cx, &[IoSlice::new(self.wbuf.tail())])
        };
        match r {
            Poll::Ready(Ok(n)) if n > 0 => {
                self.wbuf.advance(n);
                self.written += n as u64;
                self.unflushed = true;
                Poll::Ready(true)
            }
            Poll::Ready(_) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Flushes the transport once everything is written: `Ready(true)` when
    /// flushed, `Ready(false)` if it failed.
    #[inline]
    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        match self.transport.poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.unflushed = false;
                self.flushed = self.written;
                Poll::Ready(true)
            }
            Poll::Ready(Err(_)) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The transport failed: nothing more is written or flushed.
    fn fail(&mut self) {
        self.write_failed = true;
        self.unflushed = false;
        self.wbuf.clear();
    }

    /// For a handle waiting for a flush, under the session's lock: takes
    /// what the connection has to send (at most `WRITE_HIGH_WATER` beyond
    /// what already waits), writes it and flushes, as one pass of the driver
    /// would. The transport is polled with the driver's waker, so a
    /// transport that is not ready wakes the driver, which goes on from
    /// there; the handle never registers itself with the transport.
    pub(crate) fn pump(
        &mut self,
        conn: &mut Connection,
        pulled: &mut u64,
        driver: &Waker,
    ) -> Pumped {
        if self.write_failed {
            return Pumped::Waiting;
        }
        let mut cx = Context::from_waker(driver);
        let more = self.fill(conn, pulled);
        while self.wbuf.len > 0 {
            match self.write_some(&mut cx) {
                Poll::Ready(true) => {}
                Poll::Ready(false) => {
                    self.fail();
                    return Pumped::Failed;
                }
                Poll::Pending => return Pumped::Waiting,
            }
        }
        if self.unflushed {
            match self.flush(&mut cx) {
                Poll::Ready(true) => {}
                Poll::Ready(false) => {
                    self.fail();
                    return Pumped::Failed;
                }
                Poll::Pending => return Pumped::Waiting,
            }
        }
        if more {
            Pumped::Waiting
        } else {
            Pumped::Flushed
        }
    }

    /// The bytes written and flushed so far.
    pub(crate) fn flushed(&self) -> u64 {
        self.flushed
    }
}

/// The I/O state under its lock. A panic elsewhere while holding it leaves
/// it consistent enough (byte counts and a buffer); keep going.
#[inline]
pub(crate) fn lock_io(io: &Mutex<IoState>) -> MutexGuard<'_, IoState> {
    io.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Owns the transport and runs the connection: reads into `handle_input_buf`,
/// writes what `poll_transmit` gives, sleeps until `poll_timeout`,
/// dispatches events to the handles. One per session: no task or timer per
/// stream.
pub(crate) struct Driver<C> {
    shared: Arc<Mutex<Shared>>,
    io: Arc<Mutex<IoState>>,
    clock: C,
    /// Transport bytes read and not yet taken by the connection: the start
    /// of a frame whose end has not arrived.
    rbuf: BytesMut,
    /// `rbuf` has been allocated once: a new one is `READ_BUF` long.
    rbuf_allocated: bool,
    /// The transport's read side ended (EOF or error).
    read_closed: bool,
    /// The connection had ended at the last look under the lock: nothing
    /// more is read.
    conn_closed: bool,
    /// The timer fired: the next pass under the lock runs `handle_timeout`.
    timer_fired: bool,
    finished: Option<CloseReason>,
}

impl<C: Clock> Driver<C> {
    /// A driver for the session `shared` over the transport in `io` (the
    /// same `Arc` the session's `Shared` holds).
    pub(crate) fn new(shared: Arc<Mutex<Shared>>, io: Arc<Mutex<IoState>>, clock: C) -> Driver<C> {
        Driver {
            shared,
            io,
            clock,
            rbuf: BytesMut::new(),
            rbuf_allocated: false,
            read_closed: false,
            conn_closed: false,
            timer_fired: false,
            finished: None,
        }
    }

    /// Runs until the session has ended and the transport is shut down;
    /// returns why the session ended.
    ///
    /// One pass reads what the transport has, takes the lock once (the
    /// input, a fired timer, events, frames to send), writes and flushes,
    /// and polls the timer. Another pass follows only when there may be
    /// more to do right away (the read filled the buffer, a write was
    /// partial or left frames in the connection, a flush waiter must learn
    /// of the flush, the timer fired); otherwise every source has
    /// registered the waker and the driver returns. The clock is read only
    /// for input and fired timers: a due timer is run when the runtime's
    /// timer fires, not by comparing deadlines on every pass.
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        if let Some(reason) = self.finished {
            return Poll::Ready(reason);
        }
        // The transport's lock is held for a whole pass, the session's taken
        // inside it: handles only `try_lock` the transport's, so they never
        // wait for it (they leave the I/O to this pass instead).
        for _ in 0..DRIVER_BUDGET {
            let mut again = false;
            let mut io = lock_io(&self.io);

            // 1. Read (always, until the transport has no more or the
            // buffer is full: the connection bounds what the peer may send
            // by the receive windows, so reading never buffers without
            // bound). The session's lock is not held.
            let mut n = 0;
            let mut eof = false;
            if !self.read_closed && !self.conn_closed {
                make_read_room(&mut self.rbuf, &mut self.rbuf_allocated);
                while self.rbuf.len() < self.rbuf.capacity() {
                    match io.transport.poll_read_buf(cx, &mut self.rbuf) {
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                            self.read_closed = true;
                            eof = true;
                            break;
                        }
                        Poll::Ready(Ok(k)) => n += k,
                        Poll::Pending => break,
                    }
                }
                // A full buffer: the transport may hold more.
                again |= self.rbuf.len() == self.rbuf.capacity();
            }

            // 2. Under the lock: input, timers, events, frames to send.
            let mut wakers = Wakers::new();
            let (deadline, pending_output, more_output, flush_waiting) = {
                let mut s = lock(&self.shared);
                s.driver_notified = false;
                set_waker(&mut s.driver_waker, cx.waker());
                if n > 0 || self.timer_fired {
                    let now = (s.now)();
                    if n > 0 {
                        s.conn.handle_input_buf(now, &mut self.rbuf);
                    }
                    if std::mem::take(&mut self.timer_fired) {
                        s.conn.handle_timeout(now);
                    }
                }
                if eof {
                    s.conn.handle_transport_closed();
                }
                s.dispatch(&mut wakers);
                let s = &mut *s;
                // Stopped at the high-water mark: frames may be left.
                let more_output = io.fill(&mut s.conn, &mut s.pulled);
                s.flushed = io.flushed;
                // Producing frames may produce events (Writable).
                s.dispatch(&mut wakers);
                if !s.flush_waiters.is_empty() {
                    s.check_flush_waiters(&mut wakers);
                }
                self.conn_closed = s.conn.is_closed();
                // O(queue): only needed to decide the end.
                let pending_output = self.conn_closed && s.conn.has_pending_output();
                (s.conn.poll_timeout(), pending_output, more_output, !s.flush_waiters.is_empty())
            };
            wake_all(wakers);

            // 3. Write, then flush once the buffer is empty.
            let (failed, idle) = {
                let mut failed = false;
                if io.wbuf.len > 0 {
                    match io.write_some(cx) {
                        // A partial write goes on at once; so does taking
                        // the frames left at the high-water mark.
                        Poll::Ready(true) => again |= io.wbuf.len > 0 || more_output,
                        Poll::Ready(false) => failed = true,
                        Poll::Pending => {}
                    }
                }
                if !failed && io.wbuf.len == 0 && io.unflushed && !io.write_failed {
                    match io.flush(cx) {
                        // Flush waiters learn of it under the lock.
                        Poll::Ready(true) => again |= flush_waiting,
                        Poll::Ready(false) => failed = true,
                        Poll::Pending => {}
                    }
                }
                if failed {
                    io.fail();
                }
                (failed, io.wbuf.len == 0 && !io.unflushed)
            };
            if failed {
                lock(&self.shared).conn.handle_transport_closed();
                again = true;
            }
            drop(io);

            // 4. Sleep until the connection's next deadline.
            if let (Some(deadline), false) = (deadline, self.conn_closed) {
                if self.clock.poll_until(cx, deadline).is_ready() {
                    self.timer_fired = true;
                    again = true;
                }
            }

            // 5. Ended and flushed: shut the transport down and finish.
            if self.conn_closed && !pending_output && idle && !again {
                let mut io = lock_io(&self.io);
                if !io.write_failed && io.transport.poll_shutdown(cx).is_pending() {
                    return Poll::Pending;
                }
                drop(io);
                return Poll::Ready(self.finish());
            }
            if !again {
                return Poll::Pending;
            }
        }
        // Out of budget with work left: yield, and come back at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Marks the driver done and wakes everyone still waiting.
    fn finish(&mut self) -> CloseReason {
        let flushed = lock_io(&self.io).flushed;
        let reason = with(&self.shared, |s, w| {
            if !s.conn.is_closed() {
                s.conn.handle_transport_closed();
            }
            s.dispatch(w);
            s.driver_done = true;
            s.flushed = flushed;
            s.check_flush_waiters(w);
            w.extend(s.done_wakers.drain(..));
            w.extend(s.accept_wakers.drain(..));
            w.extend(s.open_wakers.drain(..));
            for slot in s.streams.values_mut() {
                slot.wake_both(w);
            }
            s.conn.close_reason().unwrap_or(CloseReason::TransportClosed)
        });
        self.finished = Some(reason);
        reason
    }
}

impl<C> Drop for Driver<C> {
    fn drop(&mut self) {
        if self.finished.is_some() {
            return;
        }
        // Dropped before the end (task cancelled, runtime shut down): the
        // transport goes with it, so the session ends here and nobody is
        // left waiting.
        with(&self.shared, |s, w| {
            if !s.conn.is_closed() {
                s.conn.handle_transport_closed();
            }
            s.dispatch(w);
            s.driver_done = true;
            s.check_flush_waiters(w);
            w.extend(s.done_wakers.drain(..));
            w.extend(s.accept_wakers.drain(..));
            w.extend(s.open_wakers.drain(..));
            for slot in s.streams.values_mut() {
                slot.wake_both(w);
            }
        });
    }
}

/// Leaves at least `READ_CHUNK` bytes of room in the read buffer: in
/// place when nothing cut from it is still alive (small frames are
/// copied out, so this is the usual case), else in a new buffer that
/// takes the partial frame along. The first buffer is `READ_CHUNK`
/// long; the later ones, needed only while large bodies are in flight,
/// `READ_BUF`, or twice the partial frame when that is larger (a frame
/// may be as large as the credit the peer holds): growing with what has
/// arrived, not with what a header announced, keeps the moves of one
/// large frame to O(its size) bytes in all.
#[inline]
fn make_read_room(rbuf: &mut BytesMut, allocated: &mut bool) {
    let len = rbuf.len();
    if rbuf.capacity() - len >= READ_CHUNK || rbuf.try_reclaim(READ_CHUNK) {
        return;
    }
    let size = if *allocated { READ_BUF.max(2 * len) } else { READ_CHUNK };
    *allocated = true;
    let mut fresh = BytesMut::with_capacity(size.max(len + READ_CHUNK));
    fresh.extend_from_slice(rbuf);
    *rbuf = fresh;
}
