//! [`Stream`] and its owned halves [`ReadHalf`] and [`WriteHalf`]: reads
//! take bytes straight from the connection, writes queue them in it.

use std::future::poll_fn;
use std::io::{self};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};

use super::error::{close_io_error, reset_io_error, stream_io_error};
use super::shared::{lock, push, set_waker, with, Shared, Slot, Wakers};
use crate::{
    CloseReason, CloseWriteError, ReadError, ResetReason, StreamError, StreamId, StreamInfo,
};

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
///   then FIN) and the read half stops reading ([`Connection::stop_reading`](crate::Connection::stop_reading):
///   the peer's writer never stalls; the stream is reset only once nothing
///   we sent can be unread at the peer). A drop never resets implicitly,
///   so the peer reads a drop as a clean end of data: when what was written
///   is incomplete (a proxy whose upstream failed), call
///   [`reset`](Stream::reset) to abort instead.
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
    pub(super) fn new(shared: Arc<Mutex<Shared>>, id: StreamId) -> Stream {
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
    ///
    /// Call it whenever the stream's data is incomplete and the peer must
    /// not take it for complete: a proxy whose upstream failed, a handler
    /// that gives up half way. Dropping the stream instead half-closes it,
    /// which the peer reads as a clean end of data.
    pub fn reset(&self) {
        reset(&self.read.shared, self.read.id, 0);
    }

    /// [`reset`](Stream::reset) with an error code for the peer, in the RST
    /// frame as go-yamux sends it (see
    /// [`Connection::reset_with_code`](crate::Connection::reset_with_code)).
    pub fn reset_with_code(&self, code: u32) {
        reset(&self.read.shared, self.read.id, code);
    }

    /// Stops reading: buffered data is released and data still arriving is
    /// discarded with its credit returned at once, so the peer's writer never
    /// stalls (see [`Connection::stop_reading`](crate::Connection::stop_reading) for when the peer's writes
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

fn reset(shared: &Mutex<Shared>, id: StreamId, code: u32) {
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
        let _ = s.conn.reset_with_code(id, code);
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
        reset(&self.shared, self.id, 0);
    }

    /// Aborts with an error code for the peer (see [`Stream::reset_with_code`]).
    pub fn reset_with_code(&self, code: u32) {
        reset(&self.shared, self.id, code);
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
        reset(&self.shared, self.id, 0);
    }

    /// Aborts with an error code for the peer (see [`Stream::reset_with_code`]).
    pub fn reset_with_code(&self, code: u32) {
        reset(&self.shared, self.id, code);
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

    /// The poll form of one step of [`write_all_bytes`](WriteHalf::write_all_bytes):
    /// queues as much of `data` as the stream's send buffer takes, by
    /// reference, and returns how much (call again with the rest).
    pub fn poll_write_bytes(
        &mut self,
        cx: &mut Context<'_>,
        data: &Bytes,
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, Payload::Bytes(data))
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
                        Ok(()) | Err(CloseWriteError::UnknownStream) => {}
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
/// has been written to the transport and flushed. When it is not yet, the
/// handle first writes and flushes what is pending itself, if the driver is
/// not using the transport ([`Shared::pump_output`]): a flush then costs no
/// round trip through the driver's task.
fn poll_flushed(
    s: &mut Shared,
    id: StreamId,
    cx: &mut Context<'_>,
    w: &mut Wakers,
) -> Poll<io::Result<()>> {
    if let Some(ready) = s.flushed_now(id) {
        return Poll::Ready(ready);
    }
    s.pump_output(w);
    if let Some(ready) = s.flushed_now(id) {
        return Poll::Ready(ready);
    }
    let done = s.driver_done;
    let Some(slot) = s.streams.get_mut(&id) else { return Poll::Ready(Ok(())) };
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
