//! Splicing a yamux stream with another byte stream both ways: what a proxy
//! or a tunnel does with each stream. The runtime modules expose it as
//! `splice` for their own I/O traits.
//!
//! Compared with a generic bidirectional copy through the stream's
//! `AsyncRead`/`AsyncWrite`: what arrives on the stream is handed to the
//! other side as the connection's own `Bytes`
//! ([`ReadHalf::poll_read_chunk`]), with no copy in between; what the other
//! side gives is read into one reusable buffer and copied into the stream,
//! as a generic copy does. And an error on the other side resets the yamux
//! stream instead of half-closing it, so its peer does not take a broken
//! transfer for a complete one.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};

use super::driver::Transport;
use super::stream::{ReadHalf, Stream, WriteHalf};

/// How much the other side's reads get at least.
const READ_ROOM: usize = 64 * 1024;

/// Copies `stream` to `other` and `other` to `stream` until both directions
/// have ended, half-closing each destination when its source ends. Returns
/// the bytes copied each way: (to `other`, to `stream`).
pub(crate) async fn splice<T: Transport>(stream: Stream, mut other: T) -> io::Result<(u64, u64)> {
    let (mut reader, mut writer) = stream.into_split();
    let mut down = Down::default();
    let mut up = Up::default();
    let result = poll_fn(|cx| {
        let down_done = down.poll(cx, &mut reader, &mut other)?;
        let up_done = up.poll(cx, &mut writer, &mut other)?;
        if down_done.is_ready() && up_done.is_ready() {
            Poll::Ready(Ok((down.copied, up.copied)))
        } else {
            Poll::Pending
        }
    })
    .await;
    if result.is_err() && (up.failed_at_other || down.failed_at_other) {
        // The other side broke: what the yamux peer got is incomplete.
        writer.reset();
    }
    result
}

/// The yamux stream to the other side.
#[derive(Default)]
struct Down {
    /// A chunk read from the stream, not yet all written.
    pending: Bytes,
    /// The stream ended (the peer's FIN): the other side is being shut down.
    eof: bool,
    done: bool,
    copied: u64,
    failed_at_other: bool,
}

impl Down {
    fn poll<T: Transport>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut ReadHalf,
        other: &mut T,
    ) -> Poll<io::Result<()>> {
        while !self.done {
            if !self.pending.is_empty() {
                let n = match other.poll_write_vectored(cx, &[IoSlice::new(&self.pending)]) {
                    Poll::Ready(Ok(0)) => return self.fail(io::ErrorKind::WriteZero.into()),
                    Poll::Ready(Ok(n)) => n,
                    Poll::Ready(Err(e)) => return self.fail(e),
                    Poll::Pending => return Poll::Pending,
                };
                self.pending.advance(n);
                self.copied += n as u64;
            } else if self.eof {
                match other.poll_shutdown(cx) {
                    Poll::Ready(Ok(())) => self.done = true,
                    Poll::Ready(Err(e)) => return self.fail(e),
                    Poll::Pending => return Poll::Pending,
                }
            } else {
                match reader.poll_read_chunk(cx)? {
                    Poll::Ready(Some(chunk)) => self.pending = chunk,
                    Poll::Ready(None) => self.eof = true,
                    Poll::Pending => {
                        // Nothing more to read now: what was written must
                        // not sit in the other side's buffer meanwhile.
                        return match other.poll_flush(cx) {
                            Poll::Ready(Err(e)) => self.fail(e),
                            _ => Poll::Pending,
                        };
                    }
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    fn fail(&mut self, e: io::Error) -> Poll<io::Result<()>> {
        self.failed_at_other = true;
        Poll::Ready(Err(e))
    }
}

/// The other side to the yamux stream.
#[derive(Default)]
struct Up {
    /// One reusable buffer that reads from the other side go into;
    /// `buf[written..]` is not yet taken by the stream.
    buf: BytesMut,
    written: usize,
    /// The other side ended: the stream is being half-closed.
    eof: bool,
    done: bool,
    copied: u64,
    failed_at_other: bool,
}

impl Up {
    fn poll<T: Transport>(
        &mut self,
        cx: &mut Context<'_>,
        writer: &mut WriteHalf,
        other: &mut T,
    ) -> Poll<io::Result<()>> {
        while !self.done {
            if self.written < self.buf.len() {
                // Copied into the stream's send buffer. Queuing by reference
                // (`poll_write_bytes`) measured slower: the buffer stays
                // referenced until the frames go out, so every read needed
                // a fresh one.
                let n = match writer.poll_write_buf(cx, &self.buf[self.written..])? {
                    Poll::Ready(n) => n,
                    Poll::Pending => return Poll::Pending,
                };
                self.written += n;
                self.copied += n as u64;
            } else if self.eof {
                match writer.poll_shutdown_stream(cx)? {
                    Poll::Ready(()) => self.done = true,
                    Poll::Pending => return Poll::Pending,
                }
            } else {
                self.buf.clear();
                self.written = 0;
                self.buf.reserve(READ_ROOM);
                match other.poll_read_buf(cx, &mut self.buf) {
                    Poll::Ready(Ok(0)) => self.eof = true,
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => {
                        self.failed_at_other = true;
                        return Poll::Ready(Err(e));
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}
