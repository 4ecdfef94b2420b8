//! The window rules, in one place: when a receive half returns credit and
//! how much a frame may carry, what the delta on a received frame means,
//! and how a stream's window grows. The credit buckets these rules move
//! bytes between, and their conservation invariant, are in `recv.rs`; the
//! sender's side (credit taken by Data frames) in `send.rs`.
//!
//! | rule | where |
//! |---|---|
//! | credit goes back once `min(window / 2, 1 MiB)` is pending (Open), at once when discarding (Stopped), once after the peer's FIN when all is read (Finished) | [`RecvHalf::wants_update`] |
//! | a frame with our SYN or ACK grants only the initial window above 256 KiB | [`update_delta`] |
//! | the delta on the peer's frame that opens or establishes a stream is window, not returned credit | [`delta_is_returned_credit`] |
//! | a window doubles when its threshold comes back faster than a quarter window per RTT, within `max_stream_window` and the connection budget | `Connection::maybe_grow_window` |

use crate::config::DEFAULT_WINDOW;
use crate::frame::Flags;
use crate::RecvState;

use super::recv::RecvHalf;
use super::Connection;
use crate::StreamId;

/// The most credit an Open half holds back before returning it (see
/// [`RecvHalf::update_threshold`]). Windows up to twice this keep the
/// half-window rule, so at the initial window we send what peers send.
pub const MAX_UPDATE_THRESHOLD: u32 = 1024 * 1024;

impl RecvHalf {
    /// Whether a Window Update is worth sending now: credit is returned once
    /// [`update_threshold`](Self::update_threshold) is pending, at once when
    /// discarding, and once more after the peer's FIN when everything it sent
    /// has been read.
    pub fn wants_update(&self) -> bool {
        match self.state {
            RecvState::Open => {
                self.pending_return > 0 && self.pending_return >= self.update_threshold()
            }
            RecvState::Stopped => self.pending_return > 0,
            // The peer sends no more, but a fixed-window writer only learns
            // that everything it sent was read from credit: return it once,
            // when the last byte has been read (drain, stop-reading RST).
            RecvState::Finished => self.pending_return > 0 && self.unread == 0,
            RecvState::Reset => false,
        }
    }

    /// Credit pending before an Open half sends a Window Update: half the
    /// window (hashicorp's and the `yamux` crate's rule), but never more
    /// than [`MAX_UPDATE_THRESHOLD`]. Waiting for half of a large window
    /// leaves the sender only the other half to cover the round trip: a
    /// 16 MiB window would fill two thirds of a 1 Gbit/s, 100 ms path.
    pub fn update_threshold(&self) -> u32 {
        (self.window_size / 2).min(MAX_UPDATE_THRESHOLD)
    }

    /// Grows the window by `extra` bytes (auto-tuning); the growth is granted
    /// with the next update.
    pub fn grow(&mut self, extra: u32) {
        self.window_size += extra;
        self.pending_return += extra;
    }

    /// Takes the credit to grant in a Window Update, at most `max` (possibly
    /// 0, when only flags go out), and adds it to the peer's window.
    pub fn take_update(&mut self, max: u32) -> u32 {
        if self.state == RecvState::Reset {
            return 0;
        }
        let delta = self.pending_return.min(max);
        self.pending_return -= delta;
        self.window += delta;
        delta
    }

    /// The most a frame carrying our SYN or ACK may grant: the initial window
    /// above the protocol's 256 KiB, nothing consumed. The peer reads the
    /// delta on that frame as initial window (so do we), so credit of bytes
    /// consumed before it goes out follows in a Window Update of its own.
    /// Only meaningful before the first update, while `window_size` is still
    /// the initial window (the SYN or ACK is the stream's first frame).
    pub fn initial_announcement(&self) -> u32 {
        self.window_size.saturating_sub(DEFAULT_WINDOW)
    }
}

/// The credit a Window Update for a stream carries: all that is pending,
/// or, on the frame carrying our SYN or ACK, only the initial window above
/// the protocol's 256 KiB (the peer reads that delta as initial window, so
/// credit of bytes already read follows in a Window Update of its own).
pub fn update_delta(recv: &mut RecvHalf, flags: Flags) -> u32 {
    let max = if flags.contains(Flags::SYN) || flags.contains(Flags::ACK) {
        recv.initial_announcement()
    } else {
        u32::MAX
    };
    recv.take_update(max)
}

/// Whether the delta on a Window Update the peer sent returns credit for
/// bytes we sent (counted in `uncredited`, `CreditsReturned`), or only
/// announces window.
///
/// The delta on the frame that opens or establishes a stream (the peer's
/// SYN; its ACK, or whatever first frame stands in for one) announces a
/// larger initial window, never consumed bytes: hashicorp with a larger
/// `MaxStreamWindowSize` sends exactly that extra window, without ACK when
/// our FIN beat its Accept. Counting it as returned would let the
/// stop-reading rule send RST while our data is still unread there, and
/// hashicorp's `Read` drops buffered data on RST. The `yamux` crate, which
/// may ACK lazily on its first credit return, is then under-reported by
/// that one update: the safe direction. Later deltas return credit.
pub fn delta_is_returned_credit(flags: Flags, outbound: bool, was_acked: bool) -> bool {
    !(flags.contains(Flags::SYN) || (outbound && !was_acked))
}

impl Connection {
    /// Window auto-tuning: when a stream returns its update threshold of
    /// credit faster than a quarter of its window per RTT (for the
    /// half-window threshold: less than two RTTs after its previous update),
    /// the window (not the reader) limits the sender, so the window doubles,
    /// up to `max_stream_window` and within the connection's receive budget
    /// (keeping room for a full set of streams at the initial window).
    pub(super) fn maybe_grow_window(&mut self, id: StreamId) {
        let now = self.now;
        let rtt = self.min_rtt.filter(|_| self.rtt_settled);
        let max_window = self.config.max_stream_window;
        let reserve = (self.config.max_streams.saturating_sub(self.streams.live) as u64)
            * u64::from(self.config.initial_stream_window);
        let room = self
            .config
            .connection_receive_window
            .saturating_sub(self.streams.recv_window_total)
            .saturating_sub(reserve);
        let Some(s) = self.streams.table.get_mut(&id) else { return };
        let last = s.last_update.replace(now);
        let (Some(rtt), Some(last)) = (rtt, last) else { return };
        let size = s.recv.window_size;
        // interval < 2 RTT × threshold / (window / 2), in nanoseconds.
        let limit =
            rtt.as_nanos() * 4 * u128::from(s.recv.update_threshold()) / u128::from(size.max(1));
        if s.recv.state != RecvState::Open
            || !s.recv.wants_update()
            || now.saturating_duration_since(last).as_nanos() >= limit
        {
            return;
        }
        let extra = u64::from(size.min(max_window - size)).min(room) as u32;
        if extra > 0 {
            s.recv.grow(extra);
            self.streams.recv_window_total += u64::from(extra);
        }
    }
}
