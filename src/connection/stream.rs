//! One stream's record in the connection: its two halves plus the little
//! bookkeeping that ties them to the connection's queues and timers.

use std::time::Instant;

use crate::frame::Flags;
use crate::ResetReason;

use super::recv::{RecvHalf, RecvState};
use super::send::{SendHalf, SendState};

/// Where a stream is in its life, apart from its two halves
/// (docs/state-machines.md, "The stream's life"). Changed only by
/// [`StreamLife::on`].
///
/// ```text
///             peer answers              both halves done
///  Opening ─────────────────► Established ──────────────► Ended ──► (removed when
///     │   (ours only; inbound streams      ▲               │         StreamClosed
///     │    start Established)              │               │         is polled)
///     └──────── both halves done ──────────┘ (Ended,       │ StreamClosed polled with
///               unacknowledged)                            ▼ bytes still unread
///                                                     Forgotten ──► (removed when read)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamLife {
    /// Ours, and the peer has sent nothing on it yet: it counts against
    /// `max_unacked_outbound`, and the open timeout runs.
    Opening,
    /// Inbound, or ours and the peer answered (any frame but RST
    /// establishes it: hashicorp never ACKs a stream whose FIN arrived
    /// before its Accept).
    Established,
    /// Both halves done; `StreamClosed` is queued and the record waits for
    /// it to be polled. `acknowledged` is what `stream_info` still reports.
    Ended { acknowledged: bool },
    /// `StreamClosed` was polled but bytes the connection's end left unread
    /// remain: only `read` still sees the stream, and the record goes when
    /// the last of them is read.
    Forgotten,
}

/// What happens to a stream's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamLifeInput {
    /// A frame from the peer other than RST, on our stream.
    PeerAnswered,
    /// Both halves finished (or were reset) and nothing is left unread,
    /// or the connection ended.
    BothHalvesDone,
    /// Its `StreamClosed` was polled while unread bytes remain.
    ClosedPolledUnread,
}

impl StreamLife {
    /// The one transition function. Returns whether `input` changed the
    /// life; every other pair is a no-op.
    pub fn on(&mut self, input: StreamLifeInput) -> bool {
        use StreamLife::*;
        use StreamLifeInput::*;
        let next = match (*self, input) {
            (Opening, PeerAnswered) => Established,
            (Opening, BothHalvesDone) => Ended { acknowledged: false },
            (Established, BothHalvesDone) => Ended { acknowledged: true },
            (Ended { .. }, ClosedPolledUnread) => Forgotten,
            _ => return false,
        };
        *self = next;
        true
    }

    /// Ended or forgotten: the stream holds none of the connection's
    /// budgets any more and takes no frames.
    pub fn is_ended(self) -> bool {
        matches!(self, StreamLife::Ended { .. } | StreamLife::Forgotten)
    }

    /// Forgotten: unknown to every command but `read`.
    pub fn is_forgotten(self) -> bool {
        self == StreamLife::Forgotten
    }

    /// The peer has answered (always, for inbound streams).
    pub fn is_acknowledged(self) -> bool {
        matches!(
            self,
            StreamLife::Established
                | StreamLife::Ended { acknowledged: true }
                | StreamLife::Forgotten
        )
    }
}

/// A stream as the connection tracks it.
#[derive(Debug)]
pub struct Stream {
    pub send: SendHalf,
    pub recv: RecvHalf,
    /// SYN or ACK we still owe the peer; rides on the stream's next frame.
    pub pending_flags: Flags,
    /// We opened it (odd ids for a client, even for a server).
    pub outbound: bool,
    /// Opening, established, ended, forgotten.
    pub life: StreamLife,
    /// Listed in the control queue (flags or credit to send).
    pub in_control_queue: bool,
    /// Listed in the data round-robin.
    pub in_data_queue: bool,
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
            life: if outbound { StreamLife::Opening } else { StreamLife::Established },
            in_control_queue: false,
            in_data_queue: false,
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
    use super::{StreamLife, StreamLifeInput};

    /// Every (life, input) pair: the life it leads to, and whether it
    /// changed.
    #[test]
    fn every_life_input_pair() {
        use StreamLife::*;
        use StreamLifeInput::*;
        let ended = Ended { acknowledged: true };
        let ended_unacked = Ended { acknowledged: false };
        #[rustfmt::skip]
        let table = [
            (Opening,       PeerAnswered,       Established,   true),
            (Opening,       BothHalvesDone,     ended_unacked, true),
            (Opening,       ClosedPolledUnread, Opening,       false),
            (Established,   PeerAnswered,       Established,   false),
            (Established,   BothHalvesDone,     ended,         true),
            (Established,   ClosedPolledUnread, Established,   false),
            (ended,         PeerAnswered,       ended,         false),
            (ended,         BothHalvesDone,     ended,         false),
            (ended,         ClosedPolledUnread, Forgotten,     true),
            (ended_unacked, PeerAnswered,       ended_unacked, false),
            (ended_unacked, BothHalvesDone,     ended_unacked, false),
            (ended_unacked, ClosedPolledUnread, Forgotten,     true),
            (Forgotten,     PeerAnswered,       Forgotten,     false),
            (Forgotten,     BothHalvesDone,     Forgotten,     false),
            (Forgotten,     ClosedPolledUnread, Forgotten,     false),
        ];
        for (from, input, to, changed) in table {
            let mut life = from;
            assert_eq!(life.on(input), changed, "{from:?} on {input:?}");
            assert_eq!(life, to, "{from:?} on {input:?}");
        }
        for (life, ended, forgotten, acknowledged) in [
            (Opening, false, false, false),
            (Established, false, false, true),
            (ended, true, false, true),
            (ended_unacked, true, false, false),
            (Forgotten, true, true, true),
        ] {
            assert_eq!(
                (life.is_ended(), life.is_forgotten(), life.is_acknowledged()),
                (ended, forgotten, acknowledged),
                "{life:?}"
            );
        }
    }

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
