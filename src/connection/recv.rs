//! The receive half of a stream: its state machine and its receive window.
//!
//! ```text
//!            FIN                  (data after FIN is a protocol error)
//!   Open ──────────────────────► Finished
//!    │  \ stop_reading               ▲
//!    │   ▼            FIN            │
//!    │  Stopped ─────────────────────┘
//!    │     │
//!    ▼     ▼  RST (either side), from any state
//!   Reset ◄──────────────────────────
//! ```
//!
//! Credit accounting (the conservation invariant, checked by
//! [`RecvHalf::check_invariant`]):
//!
//! ```text
//! window_size == window + unread + pending_return
//! ```
//!
//! * `window`: credit the peer still holds (bytes it may send);
//! * `unread`: received, waiting for [`read`](crate::Connection::read);
//! * `pending_return`: read (or discarded), not yet granted back.
//!
//! Reading is what releases credit: a byte's credit becomes due the moment
//! the application takes it, so there is no separate "consume" step.
//!
//! Bytes only move rightwards through these buckets and back into `window` by
//! a Window Update, so no byte of credit is ever created or lost. When and
//! how much goes back, and how the window grows, are the window rules in
//! `flow_control.rs`.

use bytes::Bytes;

use super::chunks::ChunkQueue;
use crate::config::DEFAULT_WINDOW;

/// Payloads shorter than this are copied into one buffer rather than kept as
/// zero-copy slices of the input buffer (`handle_input` takes them straight
/// from the caller's slice, so they are still copied only once). A slice
/// keeps its whole input allocation (64 KiB or more) alive, so a peer whose
/// small frames sit unread could otherwise pin far more memory than its
/// window; copying below 16 KiB bounds that to about 4x. Small frames also
/// coalesce, so many of them come out of one `read`.
pub const COALESCE_BELOW: usize = 16 * 1024;

/// A Data payload as it arrives: still in the caller's input (a small body
/// decoded in place by `handle_input`) or a zero-copy slice of the decoder's
/// buffer.
#[derive(Debug)]
pub enum Body<'a> {
    /// Borrowed from the input; copied if it is kept.
    Borrowed(&'a [u8]),
    /// Cut from the decoder's buffer; kept by reference if large.
    Shared(Bytes),
}

impl Body<'_> {
    /// The payload's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Body::Borrowed(b) => b,
            Body::Shared(b) => b,
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Body::Borrowed(b) => Bytes::copy_from_slice(b),
            Body::Shared(b) => b,
        }
    }
}

/// For the receive half's unit tables, which feed it `Bytes`.
#[cfg(test)]
impl From<Bytes> for Body<'_> {
    fn from(b: Bytes) -> Self {
        Body::Shared(b)
    }
}

/// Where the receive half is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvState {
    /// Data is accepted and delivered.
    Open,
    /// The application stopped reading: data is discarded and its credit
    /// returned at once.
    Stopped,
    /// The peer sent FIN: no more data will come.
    Finished,
    /// The stream was reset (by either side).
    Reset,
}

/// What the connection must do after a Data frame arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataOutcome {
    /// Queued for delivery.
    Buffered,
    /// Discarded; its credit is pending return.
    Discarded,
    /// Ignored: the half is reset.
    Ignored,
    /// The peer sent more than its credit.
    WindowExceeded,
    /// The peer sent data after its FIN.
    AfterFin,
}

/// Receive half of one stream.
#[derive(Debug)]
pub struct RecvHalf {
    pub state: RecvState,
    /// Credit the peer still holds.
    pub window: u32,
    /// The stream's receive window: what the four buckets add up to.
    pub window_size: u32,
    /// Received bytes not yet read, oldest first.
    queue: ChunkQueue,
    pub unread: u32,
    pub pending_return: u32,
    /// The application stopped reading: what was unread was released then,
    /// and is not released twice (the peer's FIN can still move a stopped
    /// half to `Finished`).
    released: bool,
    /// The peer's FIN had arrived when the stream was reset by the peer or a
    /// connection close: its direction ended cleanly, so reading ends with
    /// the end, not the reset.
    finished_before_reset: bool,
}

impl RecvHalf {
    /// A new half whose window will be `window_size`. The part above the
    /// protocol's 256 KiB is pending return: it goes out with our SYN or ACK.
    pub fn new(window_size: u32) -> RecvHalf {
        RecvHalf {
            state: RecvState::Open,
            window: DEFAULT_WINDOW,
            window_size,
            queue: ChunkQueue::default(),
            unread: 0,
            pending_return: window_size - DEFAULT_WINDOW,
            released: false,
            finished_before_reset: false,
        }
    }

    /// A Data frame with `body` arrived.
    pub fn on_data(&mut self, body: Body<'_>) -> DataOutcome {
        let Ok(n) = u32::try_from(body.as_slice().len()) else {
            return DataOutcome::WindowExceeded;
        };
        if self.state == RecvState::Reset {
            return DataOutcome::Ignored;
        }
        if n == 0 {
            return DataOutcome::Ignored;
        }
        if self.state == RecvState::Finished {
            return DataOutcome::AfterFin;
        }
        let Some(window) = self.window.checked_sub(n) else {
            return DataOutcome::WindowExceeded;
        };
        self.window = window;
        match self.state {
            RecvState::Open => {
                self.unread += n;
                if body.as_slice().len() < COALESCE_BELOW {
                    self.queue.push_copy(body.as_slice());
                } else {
                    self.queue.push(body.into_bytes());
                }
                DataOutcome::Buffered
            }
            _ => {
                self.pending_return += n;
                DataOutcome::Discarded
            }
        }
    }

    /// The peer sent FIN. Returns whether the application should hear of it.
    pub fn on_fin(&mut self) -> bool {
        match self.state {
            RecvState::Open => {
                self.state = RecvState::Finished;
                true
            }
            RecvState::Stopped => {
                self.state = RecvState::Finished;
                false
            }
            RecvState::Finished | RecvState::Reset => false,
        }
    }

    /// The stream was reset. With `keep_unread` (reset by the peer or a
    /// connection close), data already received can still be read (`read`
    /// returns it before the reset), and a half whose FIN had arrived ends
    /// as it would have without the reset; otherwise (the application
    /// aborted) unread data is dropped and its credit released.
    pub fn on_reset(&mut self, keep_unread: bool) {
        if keep_unread {
            self.finished_before_reset |= self.state == RecvState::Finished;
        } else {
            self.finished_before_reset = false;
            self.discard_unread();
        }
        self.state = RecvState::Reset;
    }

    /// Whether the application stopped reading (what was unread then was
    /// released; a later FIN does not undo that).
    pub fn was_stopped(&self) -> bool {
        self.released
    }

    /// Whether reading ends with the peer's FIN although the stream was
    /// reset: the FIN had arrived first and the application did not abort.
    pub fn ends_cleanly(&self) -> bool {
        self.finished_before_reset
    }

    /// The application stopped reading. Unread data is released, once.
    /// Returns whether that made credit pending return.
    pub fn stop(&mut self) -> bool {
        match self.state {
            RecvState::Open => {
                self.state = RecvState::Stopped;
                self.release();
                self.pending_return > 0
            }
            RecvState::Finished if !self.released => {
                self.release();
                self.pending_return > 0
            }
            RecvState::Finished | RecvState::Stopped | RecvState::Reset => false,
        }
    }

    /// Drops what is unread: the application will read no more.
    fn release(&mut self) {
        self.released = true;
        self.discard_unread();
    }

    /// Takes up to `max` unread bytes, oldest first, never spanning two
    /// queued pieces (no copy); their credit becomes due. `None` when
    /// nothing is unread or `max` is 0.
    pub fn read(&mut self, max: usize) -> Option<Bytes> {
        let chunk = self.queue.take_front(max)?;
        let n = chunk.len() as u32;
        self.unread -= n;
        self.pending_return += n;
        Some(chunk)
    }

    /// Whether bytes wait to be read.
    pub fn has_unread(&self) -> bool {
        self.unread > 0
    }

    /// Drops unread bytes after a reset the application no longer cares
    /// about (its own `reset` on a stream the peer reset first).
    pub fn discard(&mut self) {
        self.finished_before_reset = false;
        self.discard_unread();
    }

    /// The credit-conservation invariant (see the module docs) holds, and the
    /// unread count matches the bytes actually queued.
    #[cfg(any(test, feature = "testing"))]
    pub fn check_invariant(&self) -> bool {
        let total =
            u64::from(self.window) + u64::from(self.unread) + u64::from(self.pending_return);
        let queued = self.queue.len();
        total == u64::from(self.window_size) && queued == self.unread as usize
    }

    fn discard_unread(&mut self) {
        self.queue.clear();
        self.pending_return += self.unread;
        self.unread = 0;
    }
}

#[cfg(test)]
#[path = "recv_tests.rs"]
mod tests;
