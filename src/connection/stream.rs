//! One stream's record in the connection: its two halves plus the little
//! bookkeeping that ties them to the connection's queues and timers.

use std::time::Instant;

use crate::frame::Flags;
use crate::ResetReason;

use super::recv::{RecvHalf, RecvState};
use super::send::{SendHalf, SendState};

/// A stream as the connection tracks it.
#[derive(Debug)]
pub struct Stream {
    pub send: SendHalf,
    pub recv: RecvHalf,
    /// SYN or ACK we still owe the peer; rides on the stream's next frame.
    pub pending_flags: Flags,
    /// We opened it (odd ids for a client, even for a server).
    pub outbound: bool,
    /// For outbound streams: the peer's ACK arrived.
    pub acked: bool,
    /// Listed in the control queue (flags or credit to send).
    pub in_control_queue: bool,
    /// Listed in the data round-robin.
    pub in_data_queue: bool,
    /// Both halves ended; a `StreamClosed` event is queued. The record stays
    /// until that event is polled, and beyond it while bytes received before
    /// a connection close are still unread.
    pub ended: bool,
    /// `StreamClosed` was polled but unread bytes remain (the connection
    /// closed under them): the record goes when the last of them is read.
    pub forgotten: bool,
    /// Set once the stream was reset, by whom and why.
    pub reset: Option<ResetReason>,
    /// When we last granted credit or sent SYN/ACK (window auto-tuning).
    pub last_update: Option<Instant>,
    /// Which of this stream's timers are in the timer table ([`Stream::OPEN`],
    /// [`Stream::LINGER`], [`Stream::STALL`]), so the common case (none)
    /// never touches the table.
    pub armed: u8,
}

impl Stream {
    /// Bit of [`Stream::armed`]: the open timeout.
    pub const OPEN: u8 = 1;
    /// Bit of [`Stream::armed`]: the linger timeout.
    pub const LINGER: u8 = 2;
    /// Bit of [`Stream::armed`]: the send-stall timeout.
    pub const STALL: u8 = 4;

    pub fn new(outbound: bool, window: u32) -> Stream {
        Stream {
            send: SendHalf::new(),
            recv: RecvHalf::new(window),
            pending_flags: if outbound { Flags::SYN } else { Flags::ACK },
            outbound,
            acked: !outbound,
            in_control_queue: false,
            in_data_queue: false,
            ended: false,
            forgotten: false,
            reset: None,
            last_update: None,
            armed: 0,
        }
    }

    /// Both halves are done and everything received was read (or
    /// discarded): nothing more can be sent, received or read. Bytes read
    /// after a reset keep the stream (and its place under `max_streams`)
    /// until the application has taken them.
    pub fn is_finished(&self) -> bool {
        matches!(self.send.state, SendState::Finished | SendState::Reset)
            && matches!(self.recv.state, RecvState::Finished | RecvState::Reset)
            && !self.recv.has_unread()
    }

    /// Whether the control queue should carry a frame for this stream.
    pub fn wants_control(&self) -> bool {
        self.pending_flags != Flags::NONE || self.recv.wants_update()
    }

    /// Stopped reading and our write half finished: what is left is waiting
    /// for the peer, bounded by the linger timeout.
    pub fn is_lingering(&self) -> bool {
        self.recv.state == RecvState::Stopped && self.send.state == SendState::Finished
    }

    /// The #133 rule: RST is safe once nothing we sent can still be unread
    /// at the peer. It matters for hashicorp, whose `Read` drops buffered
    /// data when RST arrives; hashicorp's windows are fixed, so `uncredited`
    /// is exact there. Peers that grow windows (this crate, the `yamux`
    /// crate) may make it reach 0 early, but both deliver data buffered
    /// before a reset, so nothing is destroyed.
    pub fn may_reset_after_stop(&self) -> bool {
        self.is_lingering() && self.send.uncredited() == 0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn print_sizes() {
        eprintln!(
            "Stream {} SendHalf {} RecvHalf {} ResetReason {}",
            std::mem::size_of::<super::Stream>(),
            std::mem::size_of::<super::SendHalf>(),
            std::mem::size_of::<super::RecvHalf>(),
            std::mem::size_of::<crate::ResetReason>()
        );
    }
}
