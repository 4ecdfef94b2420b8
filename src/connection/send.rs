//! The send half of a stream: its state machine, send credit and buffer.
//!
//! ```text
//!         close_write             FIN transmitted
//!   Open ─────────────► Closing ─────────────────► Finished
//!    │                     │                          │
//!    ▼  RST (either side)  ▼                          ▼
//!   Reset ◄────────────────┴──────────────────────────┘
//! ```
//!
//! `Closing` means the FIN waits behind buffered data. It goes out on its own,
//! in a frame with no payload, once the buffer is empty: hashicorp/yamux,
//! go-yamux and js-libp2p apply a frame's flags before they store its
//! payload, so a FIN on a Data frame with payload ends their reader before
//! that payload arrives, and the payload is lost. FIN is sent exactly once
//! (a duplicate FIN is fatal to a hashicorp session).

use bytes::Bytes;

use super::chunks::ChunkQueue;
use crate::config::DEFAULT_WINDOW;

/// `Bytes` given to `send` shorter than this are copied into the tail buffer,
/// so that many small writes become one frame.
const COPY_BELOW: usize = 512;

/// Where the send half is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendState {
    /// Accepting data.
    Open,
    /// Write half closed; FIN not yet transmitted.
    Closing,
    /// FIN transmitted.
    Finished,
    /// The stream was reset (by either side).
    Reset,
}

/// Send half of one stream.
#[derive(Debug)]
pub struct SendHalf {
    pub state: SendState,
    /// Credit the peer granted that we have not used.
    pub credit: u32,
    /// The buffered bytes, oldest first.
    queue: ChunkQueue,
    pub buffered: usize,
    /// Payload bytes transmitted, over the stream's life.
    pub sent: u64,
    /// Credit the peer returned after our initial window, over the stream's life.
    pub credited: u64,
    /// `send` fell short: a `Writable` event is owed.
    pub blocked: bool,
}

/// What [`SendHalf::close_write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// Open → Closing: the FIN is due once the buffer is empty.
    Closing,
    /// Closing or Finished already: nothing changes (a repeated close is a
    /// no-op, and FIN goes out once).
    AlreadyClosed,
    /// The half was reset: there is nothing left to close.
    Reset,
}

/// One frame's worth of data taken from the buffer.
pub struct Piece {
    pub body: Bytes,
    pub fin: bool,
}

impl SendHalf {
    pub fn new() -> SendHalf {
        SendHalf {
            state: SendState::Open,
            credit: DEFAULT_WINDOW,
            queue: ChunkQueue::default(),
            buffered: 0,
            sent: 0,
            credited: 0,
            blocked: false,
        }
    }

    /// Buffers a copy of `data` (the caller checked the state and capacity).
    pub fn push_slice(&mut self, data: &[u8]) {
        self.queue.push_copy(data);
        self.buffered += data.len();
    }

    /// Buffers `data` by reference unless it is small.
    pub fn push_bytes(&mut self, data: Bytes) {
        if data.len() < COPY_BELOW {
            return self.push_slice(&data);
        }
        self.buffered += data.len();
        self.queue.push(data);
    }

    /// The application half-closes: Open → Closing (FIN after the buffered
    /// data); any other state is left as it is.
    pub fn close_write(&mut self) -> CloseOutcome {
        match self.state {
            SendState::Open => {
                self.state = SendState::Closing;
                CloseOutcome::Closing
            }
            SendState::Closing | SendState::Finished => CloseOutcome::AlreadyClosed,
            SendState::Reset => CloseOutcome::Reset,
        }
    }

    /// Whether a frame could go out now: data with credit, or a pending FIN.
    pub fn is_sendable(&self) -> bool {
        match self.state {
            SendState::Open => self.buffered > 0 && self.credit > 0,
            SendState::Closing => self.buffered == 0 || self.credit > 0,
            SendState::Finished | SendState::Reset => false,
        }
    }

    /// Data waits and the peer granted no credit to send it (the send-stall
    /// timer runs while this holds).
    pub fn is_stalled(&self) -> bool {
        self.buffered > 0
            && self.credit == 0
            && matches!(self.state, SendState::Open | SendState::Closing)
    }

    /// Takes up to `max` bytes of data (bounded by credit) for one frame.
    /// A closing half whose buffer is already empty gives an empty piece
    /// with `fin`: FIN never shares a frame with data. `None` if nothing can
    /// be sent.
    pub fn take_piece(&mut self, max: u32) -> Option<Piece> {
        if !self.is_sendable() {
            return None;
        }
        let limit = max.min(self.credit) as usize;
        let body = self.queue.take_front(limit).unwrap_or_default();
        let n = body.len();
        self.buffered -= n;
        self.credit -= n as u32;
        self.sent += n as u64;
        let fin = self.state == SendState::Closing && n == 0;
        if fin {
            self.state = SendState::Finished;
        }
        Some(Piece { body, fin })
    }

    /// The peer returned `delta` bytes of credit. `Err(())` on overflow.
    pub fn add_credit(&mut self, delta: u32, returned: bool) -> Result<(), ()> {
        self.credit = self.credit.checked_add(delta).ok_or(())?;
        if returned {
            self.credited += u64::from(delta);
        }
        Ok(())
    }

    /// The stream was reset: buffered data is dropped. Returns the bytes freed.
    pub fn reset(&mut self) -> usize {
        self.state = SendState::Reset;
        self.queue.clear();
        std::mem::take(&mut self.buffered)
    }

    /// Bytes transmitted that the peer has not yet credited back.
    pub fn uncredited(&self) -> u64 {
        self.sent.saturating_sub(self.credited)
    }

    /// The buffered count matches the bytes actually queued.
    #[cfg(any(test, feature = "testing"))]
    pub fn check_invariant(&self) -> bool {
        self.queue.len() == self.buffered
    }
}

#[cfg(test)]
#[path = "send_tests.rs"]
mod tests;
