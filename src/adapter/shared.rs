//! The state shared between the driver and the handles, behind the
//! session's one mutex: the connection, per-stream slots, wakers, and the
//! bookkeeping that turns the connection's events into wake-ups.
//!
//! See the [module docs](super) for the design and its guarantees.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::driver::{IoState, Pumped};
use super::error::{close_io_error, reset_io_error};
use crate::id_hash::IdHashBuilder;
use crate::{CloseReason, Connection, Event, RecvState, ResetReason, SendState, StreamId};

/// Wakers collected under the lock and woken after it is released, so a
/// woken task never finds the lock still held by its waker.
pub(super) type Wakers = SmallVec<[Waker; 4]>;

/// Per stream: what the handles need beyond the connection's own state.
/// Received data is not here: readers take it straight from the
/// connection (`Connection::read`), which holds it within the stream's
/// receive window. What is kept is what outlives the connection's record
/// of the stream, and the handles' own bookkeeping.
#[derive(Debug)]
pub(super) struct Slot {
    /// The stream was reset; writes fail with this reason, and so do reads
    /// that find no record (after the connection has forgotten the stream)
    /// unless `read_ends_cleanly`.
    pub(super) reset: Option<ResetReason>,
    /// The reset came after the peer's FIN (the connection reports the read
    /// half `Finished`): once the stream is forgotten, reads end cleanly.
    pub(super) read_ends_cleanly: bool,
    /// The connection forgot the stream (`StreamClosed`): reads that find
    /// no record end the stream, unless it was reset.
    pub(super) closed: bool,
    /// The application half-closed (or the write half was dropped).
    pub(super) write_closed: bool,
    /// A read handle exists (or the stream waits in the accept queue).
    pub(super) owned_read: bool,
    /// A write handle exists (or the stream waits in the accept queue).
    pub(super) owned_write: bool,
    /// The task blocked reading. Separate from the writer's, so two tasks
    /// reading and writing one stream never steal each other's wake-up.
    pub(super) reader: Option<Waker>,
    /// The task blocked writing, flushing or shutting down.
    pub(super) writer: Option<Waker>,
    /// `Shared::pulled` when the stream's send buffer was seen empty by a
    /// flush: flushing is done once the driver has flushed that far.
    pub(super) flush_mark: Option<u64>,
    /// Listed in `Shared::flush_waiters`.
    pub(super) flush_waiting: bool,
}

impl Slot {
    pub(super) fn new() -> Slot {
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

    pub(super) fn wake_both(&mut self, w: &mut Wakers) {
        push(w, self.reader.take());
        push(w, self.writer.take());
    }
}

/// A ping awaiting its pong.
#[derive(Debug)]
pub(super) struct PingWait {
    pub(super) rtt: Option<Duration>,
    pub(super) waker: Option<Waker>,
}

/// Everything behind the session's mutex. The lock is only ever held for
/// bookkeeping and calls into the (non-blocking) `Connection`, never across
/// an await. The one transport I/O under it is a handle's non-blocking
/// [`pump`](super::driver::IoState::pump) while it waits for a flush, and
/// only when the transport's own lock is free at once (`try_lock`): nothing
/// ever blocks under it (the x/net/http2 lesson).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(super) conn: Connection,
    /// The transport and the frames waiting for it (the driver's, lent to
    /// handles waiting for a flush; see `pump_output`).
    pub(super) io: Arc<Mutex<IoState>>,
    /// The runtime's clock (tokio's, which tests may pause, or std's).
    pub(super) now: fn() -> Instant,
    pub(super) streams: HashMap<StreamId, Slot, IdHashBuilder>,
    /// Inbound streams not yet accepted; bounded by `Config::max_streams`
    /// because the connection refuses streams beyond it.
    pub(super) accept_queue: VecDeque<StreamId>,
    pub(super) accept_wakers: Vec<Waker>,
    /// Tasks whose `open` waits: on `OpenError::Blocked` (woken by
    /// `OpenUnblocked`), or at `max_streams` or the receive budget (woken
    /// by `StreamClosed`).
    pub(super) open_wakers: Vec<Waker>,
    /// Pings sent through `Session::ping`, by opaque value; bounded by
    /// `Config::max_outstanding_pings` (the connection refuses more).
    pub(super) pings: HashMap<u32, PingWait>,
    /// Streams waiting in `poll_flush`/`poll_shutdown`.
    pub(super) flush_waiters: Vec<StreamId>,
    /// Transport bytes the driver has taken from the connection.
    pub(super) pulled: u64,
    /// Transport bytes written and flushed to the transport.
    pub(super) flushed: u64,
    pub(super) driver_waker: Option<Waker>,
    /// A wake-up of the driver is pending: further commands need not wake
    /// it again (the driver clears this before it looks at the state).
    pub(super) driver_notified: bool,
    /// The driver has finished (or was dropped): the transport is done.
    pub(super) driver_done: bool,
    /// Tasks in `Session::closed`/`close`.
    pub(super) done_wakers: Vec<Waker>,
    /// Every `Session` handle was dropped: nobody can accept any more.
    pub(super) session_gone: bool,
}

pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere while holding the lock leaves consistent enough
    // state (every critical section is short bookkeeping); keep going.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` under the lock, then wakes what it collected.
pub(super) fn with<R>(shared: &Mutex<Shared>, f: impl FnOnce(&mut Shared, &mut Wakers) -> R) -> R {
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
pub(super) fn wake_all(wakers: Wakers) {
    if !wakers.is_empty() {
        for w in wakers {
            w.wake();
        }
    }
}

/// Collects `waker`, if any, for waking after the lock is released (cheaper
/// than `SmallVec::extend` from an `Option` on this hot path).
pub(super) fn push(w: &mut Wakers, waker: Option<Waker>) {
    if let Some(waker) = waker {
        w.push(waker);
    }
}

pub(super) fn set_waker(slot: &mut Option<Waker>, w: &Waker) {
    match slot {
        Some(old) if old.will_wake(w) => {}
        _ => *slot = Some(w.clone()),
    }
}

pub(super) fn add_waker(list: &mut Vec<Waker>, w: &Waker) {
    if !list.iter().any(|old| old.will_wake(w)) {
        list.push(w.clone());
    }
}

impl Shared {
    pub(crate) fn new(conn: Connection, now: fn() -> Instant, io: Arc<Mutex<IoState>>) -> Shared {
        Shared {
            conn,
            now,
            io,
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
    /// Ready with the reason the session ended once the driver has
    /// finished with the transport; otherwise `cx` is woken then.
    pub(super) fn poll_driver_done(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        if self.driver_done {
            return Poll::Ready(self.conn.close_reason().unwrap_or(CloseReason::TransportClosed));
        }
        add_waker(&mut self.done_wakers, cx.waker());
        Poll::Pending
    }

    pub(super) fn notify_driver(&mut self, w: &mut Wakers) {
        if !self.driver_notified {
            self.driver_notified = true;
            push(w, self.driver_waker.clone());
        }
    }

    /// For a handle waiting for a flush: writes what the connection has to
    /// send and flushes, itself, if the driver is not using the transport
    /// at this moment (see [`IoState::pump`]), sparing a round trip through
    /// the driver's task. Whatever is left (the transport was not ready,
    /// more than one pass's worth) stays for the driver, which is woken.
    pub(super) fn pump_output(&mut self, w: &mut Wakers) {
        if self.driver_done {
            return;
        }
        let Some(driver) = self.driver_waker.clone() else { return };
        let pumped = {
            let Ok(mut io) = self.io.try_lock() else { return };
            let pumped = io.pump(&mut self.conn, &mut self.pulled, &driver);
            self.flushed = io.flushed();
            pumped
        };
        match pumped {
            Pumped::Flushed => {}
            Pumped::Waiting => self.notify_driver(w),
            Pumped::Failed => {
                self.conn.handle_transport_closed();
                self.notify_driver(w);
            }
        }
        // Taking frames may have produced events (`Writable`).
        self.dispatch(w);
    }

    /// Brings the connection's notion of time up to date before a command
    /// whose timing matters (ping RTT, open timeout): commands are stamped
    /// with the latest time the connection saw, which may be the driver's
    /// last wake-up, long ago on an idle session.
    pub(super) fn touch_clock(&mut self, w: &mut Wakers) {
        let now = (self.now)();
        let due = self.conn.poll_timeout().is_some_and(|d| d <= now);
        self.conn.handle_timeout(now);
        if due {
            self.notify_driver(w);
        }
    }

    /// Routes every pending event to the handles it concerns.
    pub(super) fn dispatch(&mut self, w: &mut Wakers) {
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
                Event::Readable { id } | Event::PeerHalfClosed { id } => {
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
                    // A stream's end makes room for an `open` waiting on
                    // `max_streams` or the receive budget.
                    w.extend(self.open_wakers.drain(..));
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
    pub(super) fn check_flush_waiters(&mut self, w: &mut Wakers) {
        let mut waiters = std::mem::take(&mut self.flush_waiters);
        waiters.retain(|&id| {
            let ready = self.driver_done || self.flushed_now(id).is_some();
            if let Some(s) = self.streams.get_mut(&id).filter(|_| ready) {
                s.flush_waiting = false;
                push(w, s.writer.take());
            }
            !ready
        });
        self.flush_waiters = waiters;
    }

    /// `Some` once stream `id` is flushed: everything written on it (and
    /// its FIN, if closing) is written to the transport and flushed; or
    /// once it never can be (reset: the error; gone: `Ok`).
    pub(super) fn flushed_now(&mut self, id: StreamId) -> Option<io::Result<()>> {
        let drained = drained_in_core(&self.conn, id);
        let (pulled, flushed) = (self.pulled, self.flushed);
        let slot = match self.streams.get_mut(&id) {
            None => return Some(Ok(())),
            Some(slot) => slot,
        };
        if let Some(reason) = slot.reset {
            return Some(Err(reset_io_error(reason)));
        }
        if drained {
            let mark = *slot.flush_mark.get_or_insert(pulled);
            if mark <= flushed {
                return Some(Ok(()));
            }
        } else {
            slot.flush_mark = None;
        }
        None
    }

    /// The read handle is gone: like closing a TCP socket's read side, stop
    /// reading (the peer's writer is never left stalled, see
    /// [`Connection::stop_reading`]), unless the stream already ended.
    pub(super) fn release_read(&mut self, id: StreamId, w: &mut Wakers) {
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
    pub(super) fn release_write(&mut self, id: StreamId, w: &mut Wakers) {
        let Some(s) = self.streams.get_mut(&id) else { return };
        s.owned_write = false;
        if !s.write_closed && !s.closed && s.reset.is_none() {
            s.write_closed = true;
            let _ = self.conn.close_write(id);
            self.notify_driver(w);
        }
        self.maybe_forget(id);
    }

    pub(super) fn maybe_forget(&mut self, id: StreamId) {
        if self.streams.get(&id).is_some_and(|s| !s.owned_read && !s.owned_write) {
            self.streams.remove(&id);
        }
    }

    pub(super) fn closed_error(&self) -> Option<io::Error> {
        self.conn.close_reason().map(close_io_error)
    }
}

/// Whether stream `id` has nothing left in the connection to transmit: its
/// buffer is empty and no FIN is waiting (or it ended, or it was forgotten).
fn drained_in_core(conn: &Connection, id: StreamId) -> bool {
    conn.stream_info(id).is_none_or(|i| i.send_buffered == 0 && i.send_state != SendState::Closing)
}
