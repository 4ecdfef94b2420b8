//! Connection configuration: limits and timers, validated once.

use std::time::Duration;

use thiserror::Error;

/// Credit every stream starts with in each direction (spec §"Flow Control").
pub const DEFAULT_WINDOW: u32 = 256 * 1024;

/// The `yamux` crate rejects frame bodies over 1 MiB, so we never send one.
pub const MAX_FRAME_BODY: u32 = 1024 * 1024;

/// The spec's limit on outbound streams awaiting their ACK.
pub const MAX_UNACKED_OUTBOUND: usize = 256;

/// A [`Config`] field out of range.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `initial_stream_window` below the protocol's 256 KiB.
    #[error("initial_stream_window must be at least 256 KiB")]
    WindowTooSmall,
    /// `max_stream_window` below `initial_stream_window`.
    #[error("max_stream_window must be at least initial_stream_window")]
    MaxWindowBelowInitial,
    /// `max_frame_size` is 0 or above 1 MiB.
    #[error("max_frame_size must be in 1..=1 MiB")]
    FrameSize,
    /// `max_unacked_outbound` is 0 or above 256.
    #[error("max_unacked_outbound must be in 1..=256")]
    UnackedOutbound,
    /// `max_streams`, `max_send_buffer` or a queue bound is 0.
    #[error("limits must be non-zero")]
    ZeroLimit,
    /// The connection receive budget cannot give every stream its initial window.
    #[error("connection_receive_window must cover max_streams initial windows")]
    BudgetTooSmall,
    /// A duration is longer than [`MAX_DURATION`]: deadlines computed from
    /// it could not be represented.
    #[error("a timeout or interval exceeds the maximum of one year")]
    DurationTooLong,
}

/// An invalid configuration as an `io::Error` (`InvalidInput`, the
/// `ConfigError` inside), for callers whose functions return
/// `io::Result`, as the adapters' callers usually do.
impl From<ConfigError> for std::io::Error {
    fn from(e: ConfigError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

/// Longest timeout or interval `Config` accepts: one year. Far beyond any
/// use, and small enough that every deadline the connection computes (a
/// few durations added to an `Instant`) is representable, so none can
/// overflow and panic.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Everything a [`Connection`](crate::Connection) can be tuned with.
///
/// Build one with [`Config::default`], change fields, and hand it to
/// [`Connection::new`](crate::Connection::new), which validates it. Every queue
/// the peer can grow has its bound here.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Receive window each new stream starts with. Above 256 KiB the excess is
    /// announced as a Window Update delta on our SYN/ACK (additive, as
    /// hashicorp does). Default 256 KiB.
    pub initial_stream_window: u32,
    /// Ceiling for a stream's receive window when auto-tuning grows it from the
    /// measured RTT. Equal to `initial_stream_window` disables growth. Also the
    /// largest Data body we accept. Default 16 MiB.
    pub max_stream_window: u32,
    /// Sum of all streams' receive windows: the most received-but-unread
    /// data the connection can hold. Default 1 GiB.
    pub connection_receive_window: u64,
    /// Largest Data frame body we send; data from many streams is interleaved
    /// in frames of at most this size. Default 64 KiB, at most 1 MiB.
    pub max_frame_size: u32,
    /// Most concurrent streams (both directions). Inbound SYNs beyond it are
    /// refused with RST; the connection stays up. Default 512.
    pub max_streams: usize,
    /// Most outbound streams awaiting the peer's ACK; `open` reports
    /// [`OpenError::Blocked`](crate::OpenError::Blocked) beyond. At most 256.
    pub max_unacked_outbound: usize,
    /// Most bytes a stream buffers for sending, whatever the peer's credit.
    /// Default 256 KiB.
    pub max_send_buffer: usize,
    /// Most bytes all streams together buffer for sending. Default 32 MiB.
    pub max_connection_send_buffer: usize,
    /// Most Pong answers queued; a ping flood beyond it drops the oldest
    /// (coalescing). Default 16.
    pub max_pending_pongs: usize,
    /// Most of our own pings awaiting their Pong. Default 16.
    pub max_outstanding_pings: usize,
    /// Most RST answers to refused SYNs waiting to be transmitted before the
    /// connection fails with [`FloodError::RefusedStreams`](crate::FloodError).
    /// Default 1024.
    pub max_pending_refusals: usize,
    /// Stream frames in a row that change nothing (no payload, no new
    /// stream, no change to a live stream's state or credit, whatever their
    /// flag bits: an empty Data frame, a zero Window Update, a repeated FIN,
    /// a payload-less frame for an unknown stream) before the connection
    /// fails with [`FloodError::EmptyFrames`](crate::FloodError::EmptyFrames).
    /// Default 10 000.
    pub max_empty_frames: u32,
    /// Streams the peer may open and reset within `rapid_reset_window` before
    /// the connection fails. Default 1 000.
    pub max_rapid_resets: u32,
    /// The window over which `max_rapid_resets` is counted. Default 1 s.
    pub rapid_reset_window: Duration,
    /// Interval between keep-alive pings; `None` disables them. Default 30 s.
    pub keep_alive_interval: Option<Duration>,
    /// How long a ping may go unanswered before the connection is declared
    /// dead. Default 10 s.
    pub ping_timeout: Duration,
    /// How long an outbound stream may wait for its ACK before it alone is
    /// reset with [`ResetReason::OpenTimeout`](crate::ResetReason). `None`
    /// (the default) waits forever: the `yamux` crate ACKs only with the
    /// first frame its application sends, so a healthy stream to a libp2p
    /// peer can stay un-ACKed indefinitely. Against hashicorp peers (which
    /// ACK on accept) 75 s matches their `StreamOpenTimeout`. Any frame from
    /// the peer on the stream counts as its ACK.
    pub open_timeout: Option<Duration>,
    /// How long a stream we half-closed and stopped reading may wait for the
    /// peer to finish before it is reset. Default 60 s.
    pub linger_timeout: Option<Duration>,
    /// How long queued data may wait on zero send credit before the stream is
    /// reset. `None` (the default) waits forever.
    pub send_stall_timeout: Option<Duration>,
    /// After our go-away, how long streams may take to finish before the
    /// connection closes anyway. `None` waits forever. Default 60 s.
    pub go_away_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_stream_window: DEFAULT_WINDOW,
            max_stream_window: 16 * 1024 * 1024,
            connection_receive_window: 1024 * 1024 * 1024,
            max_frame_size: 64 * 1024,
            max_streams: 512,
            max_unacked_outbound: MAX_UNACKED_OUTBOUND,
            max_send_buffer: 256 * 1024,
            max_connection_send_buffer: 32 * 1024 * 1024,
            max_pending_pongs: 16,
            max_outstanding_pings: 16,
            max_pending_refusals: 1024,
            max_empty_frames: 10_000,
            max_rapid_resets: 1_000,
            rapid_reset_window: Duration::from_secs(1),
            keep_alive_interval: Some(Duration::from_secs(30)),
            ping_timeout: Duration::from_secs(10),
            open_timeout: None,
            linger_timeout: Some(Duration::from_secs(60)),
            send_stall_timeout: None,
            go_away_timeout: Some(Duration::from_secs(60)),
        }
    }
}

impl Config {
    /// Checks every field against its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.initial_stream_window < DEFAULT_WINDOW {
            return Err(ConfigError::WindowTooSmall);
        }
        if self.max_stream_window < self.initial_stream_window {
            return Err(ConfigError::MaxWindowBelowInitial);
        }
        if self.max_frame_size == 0 || self.max_frame_size > MAX_FRAME_BODY {
            return Err(ConfigError::FrameSize);
        }
        if self.max_unacked_outbound == 0 || self.max_unacked_outbound > MAX_UNACKED_OUTBOUND {
            return Err(ConfigError::UnackedOutbound);
        }
        if self.max_streams == 0
            || self.max_send_buffer == 0
            || self.max_connection_send_buffer == 0
            || self.max_pending_pongs == 0
            || self.max_outstanding_pings == 0
            || self.max_pending_refusals == 0
            || self.max_empty_frames == 0
            || self.max_rapid_resets == 0
        {
            return Err(ConfigError::ZeroLimit);
        }
        let baseline =
            (self.max_streams as u64).saturating_mul(u64::from(self.initial_stream_window));
        if self.connection_receive_window < baseline {
            return Err(ConfigError::BudgetTooSmall);
        }
        let durations = [
            Some(self.rapid_reset_window),
            self.keep_alive_interval,
            Some(self.ping_timeout),
            self.open_timeout,
            self.linger_timeout,
            self.send_stall_timeout,
            self.go_away_timeout,
        ];
        if durations.into_iter().flatten().any(|d| d > MAX_DURATION) {
            return Err(ConfigError::DurationTooLong);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_error_converts_into_an_invalid_input_io_error() {
        let config = Config { max_streams: 0, ..Config::default() };
        let e: std::io::Error = config.validate().unwrap_err().into();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let inner = e.get_ref().and_then(|inner| inner.downcast_ref::<ConfigError>());
        assert_eq!(inner, Some(&ConfigError::ZeroLimit));
    }

    #[test]
    fn default_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn each_bound_is_checked() {
        let bad = |f: fn(&mut Config), e: ConfigError| {
            let mut c = Config::default();
            f(&mut c);
            assert_eq!(c.validate(), Err(e));
        };
        bad(|c| c.initial_stream_window = DEFAULT_WINDOW - 1, ConfigError::WindowTooSmall);
        bad(|c| c.max_stream_window = DEFAULT_WINDOW - 1, ConfigError::MaxWindowBelowInitial);
        bad(
            |c| {
                c.initial_stream_window = 2 * DEFAULT_WINDOW;
                c.max_stream_window = DEFAULT_WINDOW;
            },
            ConfigError::MaxWindowBelowInitial,
        );
        bad(|c| c.max_frame_size = MAX_FRAME_BODY + 1, ConfigError::FrameSize);
        bad(|c| c.max_frame_size = 0, ConfigError::FrameSize);
        bad(|c| c.max_unacked_outbound = 257, ConfigError::UnackedOutbound);
        bad(|c| c.max_streams = 0, ConfigError::ZeroLimit);
        bad(|c| c.max_pending_pongs = 0, ConfigError::ZeroLimit);
        bad(|c| c.connection_receive_window = 1, ConfigError::BudgetTooSmall);
        const TOO_LONG: Duration = MAX_DURATION.saturating_add(Duration::from_secs(1));
        bad(|c| c.keep_alive_interval = Some(Duration::MAX), ConfigError::DurationTooLong);
        bad(|c| c.ping_timeout = Duration::MAX, ConfigError::DurationTooLong);
        bad(|c| c.linger_timeout = Some(TOO_LONG), ConfigError::DurationTooLong);
        bad(|c| c.open_timeout = Some(TOO_LONG), ConfigError::DurationTooLong);
        bad(|c| c.send_stall_timeout = Some(TOO_LONG), ConfigError::DurationTooLong);
        bad(|c| c.go_away_timeout = Some(TOO_LONG), ConfigError::DurationTooLong);
        bad(|c| c.rapid_reset_window = TOO_LONG, ConfigError::DurationTooLong);
    }

    /// Every duration at the maximum at once: the connection computes its
    /// deadlines and runs them without an overflow panic.
    #[test]
    fn the_longest_durations_never_overflow_a_deadline() {
        use crate::{Connection, Role};
        use std::time::Instant;
        let config = Config {
            rapid_reset_window: MAX_DURATION,
            keep_alive_interval: Some(MAX_DURATION),
            ping_timeout: MAX_DURATION,
            open_timeout: Some(MAX_DURATION),
            linger_timeout: Some(MAX_DURATION),
            send_stall_timeout: Some(MAX_DURATION),
            go_away_timeout: Some(MAX_DURATION),
            max_stream_window: 4 * DEFAULT_WINDOW,
            ..Config::default()
        };
        assert_eq!(config.validate(), Ok(()));
        let now = Instant::now();
        let mut c = Connection::new(config, Role::Client, now).unwrap();
        let id = c.open().unwrap();
        c.send(id, b"x").unwrap();
        c.close_write(id).unwrap();
        c.stop_reading(id).unwrap();
        c.ping().unwrap();
        while c.poll_transmit().is_some() {}
        c.go_away(crate::GoAwayCode::Normal);
        let mut t = now;
        for _ in 0..4 {
            let Some(next) = c.poll_timeout() else { break };
            t = t.max(next);
            c.handle_timeout(t);
        }
        assert!(c.is_closed(), "a timeout ends it, a year later");
        assert!(c.stream_info(id).is_some_and(|i| i.recv_state == crate::RecvState::Reset));
    }
}
