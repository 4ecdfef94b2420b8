//! The runtime-independent part of the adapters: the state shared between
//! the driver and the handles, the handles ([`Session`], [`Stream`],
//! [`ReadHalf`], [`WriteHalf`]) and the driver loop. The runtime modules only
//! supply a transport (the [`Transport`] trait) and a timer (the [`Clock`]
//! trait) and implement their runtime's I/O traits on the handles.
//!
//! See the [module docs](super) for the design and its guarantees.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;

use super::error::{close_io_error, open_io_error, ping_io_error, reset_io_error, stream_io_error};
use crate::id_hash::IdHashBuilder;
use crate::{
    CloseReason, Connection, ConnectionStats, Event, GoAwayCode, OpenError, ReadError, RecvState,
    ResetReason, Role, SendState, StreamError, StreamId, StreamInfo, Transmit,
};

/// Wakers collected under the lock and woken after it is released, so a
/// woken task never finds the lock still held by its waker.
type Wakers = SmallVec<[Waker; 4]>;

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
/// transport that is always ready cannot starve other tasks.
const DRIVER_BUDGET: usize = 64;

/// Per stream: what the handles need beyond the connection's own state.
/// Received data is not here: readers take it straight from the
/// connection (`Connection::read`), which holds it within the stream's
/// receive window. What is kept is what outlives the connection's record
/// of the stream, and the handles' own bookkeeping.
#[derive(Debug)]
struct Slot {
    /// The stream was reset; writes fail with this reason, and so do reads
    /// that find no record (after the connection has forgotten the stream)
    /// unless `read_ends_cleanly`.
    reset: Option<ResetReason>,
    /// The reset came after the peer's FIN (the connection reports the read
    /// half `Finished`): once the stream is forgotten, reads end cleanly.
    read_ends_cleanly: bool,
    /// The connection forgot the stream (`StreamClosed`): reads that find
    /// no record end the stream, unless it was reset.
    closed: bool,
    /// The application half-closed (or the write half was dropped).
    write_closed: bool,
    /// A read handle exists (or the stream waits in the accept queue).
    owned_read: bool,
    /// A write handle exists (or the stream waits in the accept queue).
    owned_write: bool,
    /// The task blocked reading. Separate from the writer's, so two tasks
    /// reading and writing one stream never steal each other's wake-up.
    reader: Option<Waker>,
    /// The task blocked writing, flushing or shutting down.
    writer: Option<Waker>,
    /// `Shared::pulled` when the stream's send buffer was seen empty by a
    /// flush: flushing is done once the driver has flushed that far.
    flush_mark: Option<u64>,
    /// Listed in `Shared::flush_waiters`.
    flush_waiting: bool,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            reset: None,
            read_ends_cleanly: false,
            closed: false,
            write_closed: false,
            owned_read: true,
            owned_write: true,
            reader: None,
            writer: None,
            flush_mark: None,
            flush_waiting: false,
        }
    }

    fn wake_both(&mut self, w: &mut Wakers) {
        push(w, self.reader.take());
        push(w, self.writer.take());
    }
}

/// A ping awaiting its pong.
#[derive(Debug)]
struct PingWait {
    rtt: Option<Duration>,
    waker: Option<Waker>,
}

/// Everything behind the session's one mutex. The lock is only ever held
/// for bookkeeping and calls into the (non-blocking) `Connection`: never
/// across an await, never across transport I/O (the x/net/http2 lesson).
#[derive(Debug)]
pub(crate) struct Shared {
    conn: Connection,
    /// The runtime's clock (tokio's, which tests may pause, or std's).
    now: fn() -> Instant,
    streams: HashMap<StreamId, Slot, IdHashBuilder>,
    /// Inbound streams not yet accepted; bounded by `Config::max_streams`
    /// because the connection refuses streams beyond it.
    accept_queue: VecDeque<StreamId>,
    accept_wakers: Vec<Waker>,
    /// Tasks whose `open` hit `OpenError::Blocked`.
    open_wakers: Vec<Waker>,
    /// Pings sent through `Session::ping`, by opaque value; bounded by
    /// `Config::max_outstanding_pings` (the connection refuses more).
    pings: HashMap<u32, PingWait>,
    /// Streams waiting in `poll_flush`/`poll_shutdown`.
    flush_waiters: Vec<StreamId>,
    /// Transport bytes the driver has taken from the connection.
    pulled: u64,
    /// Transport bytes written and flushed to the transport.
    flushed: u64,
    driver_waker: Option<Waker>,
    /// A wake-up of the driver is pending: further commands need not wake
    /// it again (the driver clears this before it looks at the state).
    driver_notified: bool,
    /// The driver has finished (or was dropped): the transport is done.
    driver_done: bool,
    /// Tasks in `Session::closed`/`close`.
    done_wakers: Vec<Waker>,
    /// Every `Session` handle was dropped: nobody can accept any more.
    session_gone: bool,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere while holding the lock leaves consistent enough
    // state (every critical section is short bookkeeping); keep going.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` under the lock, then wakes what it collected.
fn with<R>(shared: &Mutex<Shared>, f: impl FnOnce(&mut Shared, &mut Wakers) -> R) -> R {
    let mut wakers = Wakers::new();
    let r = {
        let mut guard = lock(shared);
        f(&mut guard, &mut wakers)
    };
    wake_all(wakers);
    r
}

/// Wakes what was collected under the lock. Most calls collect nothing
/// (a send whose driver wake-up is already pending): skip the by-value
/// iterator, which moves the whole inline array.
fn wake_all(wakers: Wakers) {
    if !wakers.is_empty() {
        for w in wakers {
            w.wake();
        }
    }
}

/// Collects `waker`, if any, for waking after the lock is released (cheaper
/// than `SmallVec::extend` from an `Option` on this hot path).
fn push(w: &mut Wakers, waker: Option<Waker>) {
    if let Some(waker) = waker {
        w.push(waker);
    }
}

fn set_waker(slot: &mut Option<Waker>, w: &Waker) {
    match slot {
        Some(old) if old.will_wake(w) => {}
        _ => *slot = Some(w.clone()),
    }
}

fn add_waker(list: &mut Vec<Waker>, w: &Waker) {
    if !list.iter().any(|old| old.will_wake(w)) {
        list.push(w.clone());
    }
}

impl Shared {
    pub(crate) fn new(conn: Connection, now: fn() -> Instant) -> Shared {
        Shared {
            conn,
            now,
            streams: HashMap::with_hasher(IdHashBuilder::new()),
            accept_queue: VecDeque::new(),
            accept_wakers: Vec::new(),
            open_wakers: Vec::new(),
            pings: HashMap::new(),
            flush_waiters: Vec::new(),
            pulled: 0,
            flushed: 0,
            driver_waker: None,
            driver_notified: false,
            driver_done: false,
            done_wakers: Vec::new(),
            session_gone: false,
        }
    }

    /// The connection has work for the driver (frames to send, events to
    /// dispatch). Coalesced: one pending wake-up is enough.
    #[inline]
    fn notify_driver(&mut self, w: &mut Wakers) {
        if !self.driver_notified {
            self.driver_notified = true;
            push(w, self.driver_waker.clone());
        }
    }

    /// Brings the connection's notion of time up to date before a command
    /// whose timing matters (ping RTT, open timeout): commands are stamped
    /// with the latest time the connection saw, which may be the driver's
    /// last wake-up, long ago on an idle session.
    fn touch_clock(&mut self, w: &mut Wakers) {
        let now = (self.now)();
        let due = self.conn.poll_timeout().is_some_and(|d| d <= now);
        self.conn.handle_timeout(now);
        if due {
            self.notify_driver(w);
        }
    }

    /// Routes every pending event to the handles it concerns.
    fn dispatch(&mut self, w: &mut Wakers) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::StreamOpened { id } => {
                    self.streams.insert(id, Slot::new());
                    if self.session_gone {
                        self.release_read(id, w);
                        self.release_write(id, w);
                    } else {
                        self.accept_queue.push_back(id);
                        w.extend(self.accept_wakers.drain(..));
                    }
                }
                // The data stays in the connection until the reader reads
                // it (a stream nobody reads was stopped, so the connection
                // discards its data and returns the credit).
                Event::Readable { id } | Event::HalfClosed { id } => {
                    if let Some(s) = self.streams.get_mut(&id) {
                        push(w, s.reader.take());
                    }
                }
                Event::StreamReset { id, reason } => {
                    // Asked now: the record goes with the `StreamClosed` next.
                    let finished = self
                        .conn
                        .stream_info(id)
                        .is_some_and(|i| i.recv_state == RecvState::Finished);
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.reset.get_or_insert(reason);
                        s.read_ends_cleanly = finished;
                        s.wake_both(w);
                    }
                }
                Event::Writable { id } => {
                    if let Some(s) = self.streams.get_mut(&id) {
                        push(w, s.writer.take());
                    }
                }
                Event::StreamClosed { id } => {
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.closed = true;
                        s.wake_both(w);
                    }
                }
                Event::CreditsReturned { .. } => {}
                Event::OpenUnblocked => w.extend(self.open_wakers.drain(..)),
                Event::Pong { opaque, rtt } => {
                    // Keep-alive and auto-tuning pings have no waiter.
                    if let Some(p) = self.pings.get_mut(&opaque) {
                        p.rtt = Some(rtt);
                        push(w, p.waker.take());
                    }
                }
                Event::GoAwayReceived { .. } => w.extend(self.open_wakers.drain(..)),
                Event::ConnectionClosed { .. } => {
                    w.extend(self.accept_wakers.drain(..));
                    w.extend(self.open_wakers.drain(..));
                    for p in self.pings.values_mut() {
                        push(w, p.waker.take());
                    }
                }
            }
        }
    }

    /// Wakes the flush waiters whose data has reached the transport.
    fn check_flush_waiters(&mut self, w: &mut Wakers) {
        let mut waiters = std::mem::take(&mut self.flush_waiters);
        waiters.retain(|&id| {
            let pulled = self.pulled;
            let flushed = self.flushed;
            let done = self.driver_done;
            let drained = drained_in_core(&self.conn, id);
            let Some(s) = self.streams.get_mut(&id) else { return false };
            let ready = s.reset.is_some()
                || done
                || (drained && *s.flush_mark.get_or_insert(pulled) <= flushed);
            if ready {
                s.flush_waiting = false;
                push(w, s.writer.take());
            }
            !ready
        });
        self.flush_waiters = waiters;
    }

    /// The read handle is gone: like closing a TCP socket's read side, stop
    /// reading (the peer's writer is never left stalled, see
    /// [`Connection::stop_reading`]), unless the stream already ended.
    fn release_read(&mut self, id: StreamId, w: &mut Wakers) {
        let Some(s) = self.streams.get_mut(&id) else { return };
        s.owned_read = false;
        if self
            .conn
            .stream_info(id)
            .is_some_and(|i| i.recv_state == RecvState::Open || i.recv_unread > 0)
        {
            // Still receiving, or unread bytes left: the connection drops
            // them, returns their credit and may end the stream.
            let _ = self.conn.stop_reading(id);
            self.notify_driver(w);
        }
        self.maybe_forget(id);
    }

    /// The write handle is gone: half-close (FIN after the data already
    /// written, which is still delivered), never reset.
    fn release_write(&mut self, id: StreamId, w: &mut Wakers) {
        let Some(s) = self.streams.get_mut(&id) else { return };
        s.owned_write = false;
        if !s.write_closed && !s.closed && s.reset.is_none() {
            s.write_closed = true;
            let _ = self.conn.close_write(id);
            self.notify_driver(w);
        }
        self.maybe_forget(id);
    }

    fn maybe_forget(&mut self, id: StreamId) {
        if self.streams.get(&id).is_some_and(|s| !s.owned_read && !s.owned_write) {
            self.streams.remove(&id);
        }
    }

    fn closed_error(&self) -> Option<io::Error> {
        self.conn.close_reason().map(close_io_error)
    }
}

/// Whether stream `id` has nothing left in the connection to transmit: its
/// buffer is empty and no FIN is waiting (or it ended, or it was forgotten).
fn drained_in_core(conn: &Connection, id: StreamId) -> bool {
    conn.stream_info(id).is_none_or(|i| i.send_buffered == 0 && i.send_state != SendState::Closing)
}

// ---------------------------------------------------------------------------
// Session

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

    /// Opens a stream. Waits while the peer has not acknowledged
    /// [`Config::max_unacked_outbound`](crate::Config::max_unacked_outbound)
    /// of our streams ([`OpenError::Blocked`]); other refusals are errors
    /// carrying an [`OpenError`] (or the [`CloseReason`] once the session
    /// ended). Opening is optimistic: data may be written at once.
    pub async fn open(&self) -> io::Result<Stream> {
        poll_fn(|cx| self.poll_open(cx)).await
    }

    /// The poll form of [`open`](Session::open).
    pub fn poll_open(&self, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
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
                Err(OpenError::Blocked) => {
                    // Blocked is recorded by the connection, which owes us
                    // an `OpenUnblocked` event: the waker cannot be missed.
                    add_waker(&mut s.open_wakers, cx.waker());
                    Poll::Pending
                }
                Err(e) => {
                    s.notify_driver(w); // handle_timeout may have queued work
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
    /// fail with [`ResetReason::ConnectionClosed`]`(`[`CloseReason::LocalClose`]`)`),
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

    /// Waits until the session has ended and its driver has finished with
    /// the transport; returns why it ended.
    pub async fn closed(&self) -> CloseReason {
        poll_fn(|cx| {
            with(self.shared(), |s, _| {
                if s.driver_done {
                    return Poll::Ready(
                        s.conn.close_reason().unwrap_or(CloseReason::TransportClosed),
                    );
                }
                add_waker(&mut s.done_wakers, cx.waker());
                Poll::Pending
            })
        })
        .await
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

// ---------------------------------------------------------------------------
// Streams

/// One yamux stream: the tokio and/or futures `AsyncRead` + `AsyncWrite`
/// traits are implemented on it (per enabled feature).
///
/// * **Reading** returns data in order, then `Ok(0)` after the peer's
///   half-close (or after [`stop_reading`](Stream::stop_reading)), or an
///   error carrying the [`ResetReason`] if the stream was reset (data that
///   arrived before a peer's reset is still read first). Reading releases
///   receive credit, so the peer may send more; a stream nobody reads stops
///   its peer's writer after the receive window.
/// * **Writing** queues data in the connection, up to
///   [`Config::max_send_buffer`](crate::Config::max_send_buffer) bytes per
///   stream beyond what the peer's credit lets out at once; then it waits.
///   `flush` waits until everything written was handed to the transport
///   (which needs the peer's credit); `shutdown`/`close` half-closes (FIN
///   after the data) and waits for the FIN to reach the transport. Writing
///   after that fails with `BrokenPipe` ([`StreamError::WriteClosed`]).
/// * **Dropping** is like closing a TCP socket, minus the data loss: the
///   write half is half-closed (data already written is still delivered,
///   then FIN) and the read half stops reading ([`Connection::stop_reading`]:
///   the peer's writer never stalls; the stream is reset only once nothing
///   we sent can be unread at the peer). A drop never resets implicitly;
///   call [`reset`](Stream::reset) to abort.
///
/// For reading and writing from two tasks, [`into_split`](Stream::into_split)
/// gives owned halves; they never wait on each other.
#[derive(Debug)]
pub struct Stream {
    read: ReadHalf,
    write: WriteHalf,
}

/// The reading half of a [`Stream`]. Dropping it stops reading.
#[derive(Debug)]
pub struct ReadHalf {
    shared: Arc<Mutex<Shared>>,
    id: StreamId,
}

/// The writing half of a [`Stream`]. Dropping it half-closes.
#[derive(Debug)]
pub struct WriteHalf {
    shared: Arc<Mutex<Shared>>,
    id: StreamId,
}

impl Stream {
    fn new(shared: Arc<Mutex<Shared>>, id: StreamId) -> Stream {
        Stream { read: ReadHalf { shared: shared.clone(), id }, write: WriteHalf { shared, id } }
    }

    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.read.id
    }

    /// Splits into halves that two tasks can own: reading and writing at the
    /// same time never deadlock (each half has its own waker).
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        (self.read, self.write)
    }

    /// Aborts the stream both ways: RST is sent, data queued for sending is
    /// dropped, reads and writes (on either half) fail with
    /// [`ResetReason::Local`]. A no-op once the stream ended.
    pub fn reset(&self) {
        reset(&self.read.shared, self.read.id);
    }

    /// Stops reading: buffered data is released and data still arriving is
    /// discarded with its credit returned at once, so the peer's writer never
    /// stalls (see [`Connection::stop_reading`] for when the peer's writes
    /// fail). Reads return `Ok(0)` from now on.
    pub fn stop_reading(&self) {
        self.read.stop_reading();
    }

    /// A snapshot of the stream's state in the connection, `None` once the
    /// connection has forgotten it (after it ended both ways).
    pub fn info(&self) -> Option<StreamInfo> {
        self.read.info()
    }

    /// Why the stream was reset, if it was.
    pub fn reset_reason(&self) -> Option<ResetReason> {
        self.read.reset_reason()
    }

    /// The next received chunk without copying (its credit is released at
    /// once); `None` at end of stream.
    pub async fn read_chunk(&mut self) -> io::Result<Option<Bytes>> {
        self.read.read_chunk().await
    }

    /// Writes all of `data`, keeping it by reference (zero copy for large
    /// buffers).
    pub async fn write_all_bytes(&mut self, data: Bytes) -> io::Result<()> {
        self.write.write_all_bytes(data).await
    }

    pub(crate) fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        self.read.poll_read_with(cx, max, sink)
    }

    pub(crate) fn poll_write_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write.poll_write_buf(cx, buf)
    }

    pub(crate) fn poll_flush_stream(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.poll_flush_stream(cx)
    }

    pub(crate) fn poll_shutdown_stream(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.poll_shutdown_stream(cx)
    }
}

fn reset(shared: &Mutex<Shared>, id: StreamId) {
    with(shared, |s, w| {
        let Some(slot) = s.streams.get_mut(&id) else { return };
        // An abort: reads end with the reset, also of a stream the peer
        // reset after its FIN (the connection drops what is unread).
        slot.read_ends_cleanly = false;
        if slot.closed {
            return;
        }
        slot.reset.get_or_insert(ResetReason::Local);
        slot.wake_both(w);
        let _ = s.conn.reset(id);
        s.notify_driver(w);
    });
}

impl ReadHalf {
    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Aborts the stream both ways (see [`Stream::reset`]).
    pub fn reset(&self) {
        reset(&self.shared, self.id);
    }

    /// Stops reading (see [`Stream::stop_reading`]).
    pub fn stop_reading(&self) {
        with(&self.shared, |s, w| {
            let Some(slot) = s.streams.get_mut(&self.id) else { return };
            push(w, slot.reader.take());
            if !slot.closed && s.conn.stop_reading(self.id).is_ok() {
                s.notify_driver(w);
            }
        });
    }

    /// A snapshot of the stream's state (see [`Stream::info`]).
    pub fn info(&self) -> Option<StreamInfo> {
        lock(&self.shared).conn.stream_info(self.id)
    }

    /// Why the stream was reset, if it was.
    pub fn reset_reason(&self) -> Option<ResetReason> {
        lock(&self.shared).streams.get(&self.id).and_then(|s| s.reset)
    }

    /// The next received chunk without copying (see [`Stream::read_chunk`]).
    pub async fn read_chunk(&mut self) -> io::Result<Option<Bytes>> {
        poll_fn(|cx| self.poll_read_chunk(cx)).await
    }

    /// The poll form of [`read_chunk`](ReadHalf::read_chunk).
    pub fn poll_read_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        let id = self.id;
        with(&self.shared, |s, w| {
            let Some(slot) = s.streams.get_mut(&id) else {
                return Poll::Ready(Ok(None));
            };
            match s.conn.read(id, usize::MAX) {
                Ok(Some(chunk)) => {
                    // Reading may have made a Window Update due.
                    s.notify_driver(w);
                    Poll::Ready(Ok(Some(chunk)))
                }
                end => read_end(slot, end.map(|_| ()), cx).map(|r| r.map(|()| None)),
            }
        })
    }

    /// Copies up to `max` bytes of received data into `sink`, reading them
    /// from the connection (which releases their credit).
    pub(crate) fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        let id = self.id;
        with(&self.shared, |s, w| {
            let Some(slot) = s.streams.get_mut(&id) else { return Poll::Ready(Ok(0)) };
            let mut n = 0;
            let end = loop {
                match s.conn.read(id, max - n) {
                    Ok(Some(chunk)) => {
                        sink(&chunk);
                        n += chunk.len();
                        if n == max {
                            break Ok(());
                        }
                    }
                    end => break end.map(|_| ()),
                }
            };
            if n > 0 {
                // Credit flows back as the application reads.
                s.notify_driver(w);
                return Poll::Ready(Ok(n));
            }
            read_end(slot, end, cx).map(|r| r.map(|()| 0))
        })
    }
}

/// With nothing read: what the connection's `read` said instead, as the
/// end of stream (FIN, stopped, forgotten), the reset, or a wait for data.
fn read_end(
    slot: &mut Slot,
    end: Result<(), ReadError>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    match end {
        Ok(()) | Err(ReadError::Stopped) => Poll::Ready(Ok(())),
        Err(ReadError::Reset(reason)) => Poll::Ready(Err(reset_io_error(reason))),
        Err(ReadError::UnknownStream) => match slot.reset {
            Some(reason) if !slot.read_ends_cleanly => Poll::Ready(Err(reset_io_error(reason))),
            _ => Poll::Ready(Ok(())),
        },
        Err(ReadError::Blocked) => {
            // Data, FIN, RST and the connection's end all wake `reader`.
            set_waker(&mut slot.reader, cx.waker());
            Poll::Pending
        }
    }
}

impl WriteHalf {
    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Aborts the stream both ways (see [`Stream::reset`]).
    pub fn reset(&self) {
        reset(&self.shared, self.id);
    }

    /// A snapshot of the stream's state (see [`Stream::info`]).
    pub fn info(&self) -> Option<StreamInfo> {
        lock(&self.shared).conn.stream_info(self.id)
    }

    /// Writes all of `data` by reference (see [`Stream::write_all_bytes`]).
    pub async fn write_all_bytes(&mut self, mut data: Bytes) -> io::Result<()> {
        while !data.is_empty() {
            let n = poll_fn(|cx| self.poll_send(cx, Payload::Bytes(&data))).await?;
            data.advance(n);
        }
        Ok(())
    }

    pub(crate) fn poll_write_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, Payload::Slice(buf))
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, data: Payload<'_>) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let id = self.id;
        with(&self.shared, |s, w| {
            let Some(slot) = s.streams.get_mut(&id) else {
                return Poll::Ready(Err(stream_io_error(StreamError::UnknownStream)));
            };
            if let Some(reason) = slot.reset {
                return Poll::Ready(Err(reset_io_error(reason)));
            }
            if slot.write_closed || slot.closed {
                return Poll::Ready(Err(stream_io_error(StreamError::WriteClosed)));
            }
            let r = match data {
                Payload::Slice(b) => s.conn.send(id, b),
                Payload::Bytes(b) => s.conn.send_bytes(id, b.clone()),
            };
            match r {
                Ok(0) => {
                    // The connection recorded the shortfall and owes a
                    // `Writable` event, dispatched under this same lock:
                    // registering now cannot miss it.
                    set_waker(&mut slot.writer, cx.waker());
                    Poll::Pending
                }
                Ok(n) => {
                    slot.flush_mark = None;
                    s.notify_driver(w);
                    Poll::Ready(Ok(n))
                }
                Err(e) => Poll::Ready(Err(stream_io_error(e))),
            }
        })
    }

    pub(crate) fn poll_flush_stream(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        with(&self.shared, |s, w| poll_flushed(s, id, cx, w))
    }

    pub(crate) fn poll_shutdown_stream(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        with(&self.shared, |s, w| {
            let Some(slot) = s.streams.get_mut(&id) else { return Poll::Ready(Ok(())) };
            if !slot.write_closed {
                if let Some(reason) = slot.reset {
                    return Poll::Ready(Err(reset_io_error(reason)));
                }
                slot.write_closed = true;
                slot.flush_mark = None;
                if !slot.closed {
                    match s.conn.close_write(id) {
                        Ok(()) | Err(StreamError::WriteClosed | StreamError::UnknownStream) => {}
                        Err(e) => return Poll::Ready(Err(stream_io_error(e))),
                    }
                    s.notify_driver(w);
                }
            }
            poll_flushed(s, id, cx, w)
        })
    }
}

/// Ready once everything written on stream `id` (and its FIN, if closing)
/// has been written to the transport and flushed.
fn poll_flushed(
    s: &mut Shared,
    id: StreamId,
    cx: &mut Context<'_>,
    w: &mut Wakers,
) -> Poll<io::Result<()>> {
    let drained = drained_in_core(&s.conn, id);
    let (pulled, flushed, done) = (s.pulled, s.flushed, s.driver_done);
    let Some(slot) = s.streams.get_mut(&id) else { return Poll::Ready(Ok(())) };
    if let Some(reason) = slot.reset {
        return Poll::Ready(Err(reset_io_error(reason)));
    }
    if drained {
        let mark = *slot.flush_mark.get_or_insert(pulled);
        if mark <= flushed {
            return Poll::Ready(Ok(()));
        }
    } else {
        slot.flush_mark = None;
    }
    if done {
        // The driver is gone with our data unsent.
        let reason = s.conn.close_reason().unwrap_or(CloseReason::TransportClosed);
        return Poll::Ready(Err(close_io_error(reason)));
    }
    set_waker(&mut slot.writer, cx.waker());
    if !slot.flush_waiting {
        slot.flush_waiting = true;
        s.flush_waiters.push(id);
        // The driver publishes `flushed` under the lock only when it knows
        // of a waiter, so it may have flushed past the mark since it last
        // looked: make it look again.
        s.notify_driver(w);
    }
    Poll::Pending
}

enum Payload<'a> {
    Slice(&'a [u8]),
    Bytes(&'a Bytes),
}

impl Payload<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Payload::Slice(b) => b.is_empty(),
            Payload::Bytes(b) => b.is_empty(),
        }
    }
}

impl Drop for ReadHalf {
    fn drop(&mut self) {
        let id = self.id;
        with(&self.shared, |s, w| s.release_read(id, w));
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        let id = self.id;
        with(&self.shared, |s, w| s.release_write(id, w));
    }
}

// ---------------------------------------------------------------------------
// The driver

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

/// Owns the transport and runs the connection: reads into `handle_input_buf`,
/// writes what `poll_transmit` gives, sleeps until `poll_timeout`,
/// dispatches events to the handles. One per session: no task or timer per
/// stream.
pub(crate) struct Driver<T, C> {
    shared: Arc<Mutex<Shared>>,
    io: T,
    clock: C,
    /// Transport bytes read and not yet taken by the connection: the start
    /// of a frame whose end has not arrived.
    rbuf: BytesMut,
    /// `rbuf` has been allocated once: a new one is `READ_BUF` long.
    rbuf_allocated: bool,
    wbuf: WriteBuf,
    /// The transport's read side ended (EOF or error).
    read_closed: bool,
    /// The transport failed: nothing more is written.
    write_failed: bool,
    /// Bytes written since the last flush of the transport.
    unflushed: bool,
    /// The connection had ended at the last look under the lock: nothing
    /// more is read.
    conn_closed: bool,
    /// The timer fired: the next pass under the lock runs `handle_timeout`.
    timer_fired: bool,
    /// Transport bytes written.
    written: u64,
    /// Transport bytes written and flushed.
    flushed: u64,
    finished: Option<CloseReason>,
}

impl<T: Transport, C: Clock> Driver<T, C> {
    pub(crate) fn new(shared: Arc<Mutex<Shared>>, io: T, clock: C) -> Driver<T, C> {
        let vectored = io.is_write_vectored();
        Driver {
            shared,
            io,
            clock,
            rbuf: BytesMut::new(),
            rbuf_allocated: false,
            wbuf: WriteBuf {
                segs: VecDeque::new(),
                tail: BytesMut::new(),
                tail_pos: 0,
                len: 0,
                vectored,
            },
            read_closed: false,
            write_failed: false,
            unflushed: false,
            conn_closed: false,
            timer_fired: false,
            written: 0,
            flushed: 0,
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
        for _ in 0..DRIVER_BUDGET {
            let mut again = false;

            // 1. Read (always, until the transport has no more or the
            // buffer is full: the connection bounds what the peer may send
            // by the receive windows, so reading never buffers without
            // bound). No lock is held.
            let mut n = 0;
            let mut eof = false;
            if !self.read_closed && !self.conn_closed {
                self.make_read_room();
                while self.rbuf.len() < self.rbuf.capacity() {
                    match self.io.poll_read_buf(cx, &mut self.rbuf) {
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
                let mut more_output = false;
                if !self.write_failed {
                    while self.wbuf.len < WRITE_HIGH_WATER {
                        let Some(t) = s.conn.poll_transmit() else { break };
                        s.pulled += t.len() as u64;
                        self.wbuf.push(t);
                    }
                    // Stopped at the high-water mark: frames may be left.
                    more_output = self.wbuf.len >= WRITE_HIGH_WATER;
                }
                // Producing frames may produce events (Writable).
                s.dispatch(&mut wakers);
                s.flushed = self.flushed;
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
            if self.wbuf.len > 0 {
                let r = if self.wbuf.vectored && !self.wbuf.segs.is_empty() {
                    self.io.poll_write_vectored(cx, &self.wbuf.slices())
                } else {
                    self.io.poll_write_vectored(cx, &[IoSlice::new(self.wbuf.tail())])
                };
                match r {
                    Poll::Ready(Ok(0)) => {
                        self.transport_failed();
                        again = true;
                    }
                    Poll::Ready(Ok(n)) => {
                        self.wbuf.advance(n);
                        self.written += n as u64;
                        self.unflushed = true;
                        // A partial write goes on at once; so does taking
                        // the frames left at the high-water mark.
                        again |= self.wbuf.len > 0 || more_output;
                    }
                    Poll::Ready(Err(_)) => {
                        self.transport_failed();
                        again = true;
                    }
                    Poll::Pending => {}
                }
            }
            if self.wbuf.len == 0 && self.unflushed && !self.write_failed {
                match self.io.poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        self.unflushed = false;
                        self.flushed = self.written;
                        // Flush waiters learn of it under the lock.
                        again |= flush_waiting;
                    }
                    Poll::Ready(Err(_)) => {
                        self.transport_failed();
                        again = true;
                    }
                    Poll::Pending => {}
                }
            }

            // 4. Sleep until the connection's next deadline.
            if let (Some(deadline), false) = (deadline, self.conn_closed) {
                if self.clock.poll_until(cx, deadline).is_ready() {
                    self.timer_fired = true;
                    again = true;
                }
            }

            // 5. Ended and flushed: shut the transport down and finish.
            if self.conn_closed
                && !pending_output
                && self.wbuf.len == 0
                && !self.unflushed
                && !again
            {
                if !self.write_failed && self.io.poll_shutdown(cx).is_pending() {
                    return Poll::Pending;
                }
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

    /// Leaves at least `READ_CHUNK` bytes of room in the read buffer: in
    /// place when nothing cut from it is still alive (small frames are
    /// copied out, so this is the usual case), else in a new buffer that
    /// takes the partial frame along. The first buffer is `READ_CHUNK`
    /// long; the later ones, needed only while large bodies are in flight,
    /// `READ_BUF`, or twice the partial frame when that is larger (a frame
    /// may be as large as the credit the peer holds): growing with what has
    /// arrived, not with what a header announced, keeps the moves of one
    /// large frame to O(its size) bytes in all.
    fn make_read_room(&mut self) {
        let len = self.rbuf.len();
        if self.rbuf.capacity() - len >= READ_CHUNK || self.rbuf.try_reclaim(READ_CHUNK) {
            return;
        }
        let size = if self.rbuf_allocated { READ_BUF.max(2 * len) } else { READ_CHUNK };
        self.rbuf_allocated = true;
        let mut fresh = BytesMut::with_capacity(size.max(len + READ_CHUNK));
        fresh.extend_from_slice(&self.rbuf);
        self.rbuf = fresh;
    }

    fn transport_failed(&mut self) {
        self.write_failed = true;
        self.unflushed = false;
        self.wbuf.clear();
        lock(&self.shared).conn.handle_transport_closed();
    }

    /// Marks the driver done and wakes everyone still waiting.
    fn finish(&mut self) -> CloseReason {
        let reason = with(&self.shared, |s, w| {
            if !s.conn.is_closed() {
                s.conn.handle_transport_closed();
            }
            s.dispatch(w);
            s.driver_done = true;
            s.flushed = self.flushed;
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

impl<T, C> Drop for Driver<T, C> {
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
