//! What each side saw, the summary table, and small helpers.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use yamux_proto::{
    CloseReason, Connection, ConnectionStats, Event, GoAwayCode, ResetReason, StreamId,
};

use super::apps::{ClientApp, ServerApp};
use super::*;

// ---------------------------------------------------------------------------
// What each side saw.
// ---------------------------------------------------------------------------

#[derive(Default, Debug)]
pub(crate) struct StreamLog {
    /// Bytes our `send` accepted.
    pub(crate) sent: u64,
    /// Bytes we read.
    pub(crate) received: u64,
    /// `CreditsReturned` events and their total.
    pub(crate) credit_events: u64,
    pub(crate) credits: u64,
    /// The peer's FIN (`PeerHalfClosed`).
    pub(crate) half_closed: bool,
    /// `StreamReset`, with its reason.
    pub(crate) reset: Option<ResetReason>,
    /// `StreamClosed` events (must be exactly one).
    pub(crate) closed: u32,
    /// An event after `StreamClosed`, or `Data` after `PeerHalfClosed`/`StreamReset`:
    /// a broken guarantee of `Event`.
    pub(crate) out_of_order: bool,
}

#[derive(Default, Debug)]
pub(crate) struct Report {
    pub(crate) streams: BTreeMap<StreamId, StreamLog>,
    /// `StreamOpened` events, in order.
    pub(crate) opened: Vec<StreamId>,
    pub(crate) pongs: Vec<(u32, Duration)>,
    pub(crate) go_away: Option<GoAwayCode>,
    pub(crate) closed: Option<CloseReason>,
    /// Events after `ConnectionClosed` (must be none).
    pub(crate) after_close: u32,
    /// Commands that failed unexpectedly.
    pub(crate) errors: Vec<String>,
    pub(crate) stats: ConnectionStats,
    /// `check_invariants` at the end (`None`: never got there).
    pub(crate) invariants: Option<Result<(), String>>,
    /// When the drive loop ended, and how.
    pub(crate) finished_at: Duration,
    pub(crate) outcome: Option<Result<(), String>>,
}

impl Report {
    /// Reads up to `max` bytes of stream `id` and counts them; `None` when
    /// nothing more is readable now (blocked, end of stream or reset; the
    /// events say which).
    pub(crate) fn read(
        &mut self,
        conn: &mut Connection,
        id: StreamId,
        max: usize,
    ) -> Option<Bytes> {
        let data = conn.read(id, max).ok().flatten()?;
        self.streams.entry(id).or_default().received += data.len() as u64;
        Some(data)
    }

    /// Bookkeeping common to both sides, before the application reacts.
    pub(crate) fn record(&mut self, event: &Event) {
        if self.closed.is_some() {
            self.after_close += 1;
        }
        match *event {
            Event::StreamOpened { id } => {
                self.opened.push(id);
                self.streams.entry(id).or_default();
            }
            Event::Readable { id } => {
                let s = self.streams.entry(id).or_default();
                s.out_of_order |= s.half_closed || s.reset.is_some() || s.closed > 0;
            }
            Event::PeerHalfClosed { id } => {
                let s = self.streams.entry(id).or_default();
                s.out_of_order |= s.half_closed || s.closed > 0;
                s.half_closed = true;
            }
            Event::StreamReset { id, reason } => {
                let s = self.streams.entry(id).or_default();
                s.out_of_order |= s.reset.is_some() || s.closed > 0;
                s.reset = Some(reason);
            }
            Event::CreditsReturned { id, amount } => {
                let s = self.streams.entry(id).or_default();
                s.out_of_order |= s.closed > 0;
                s.credit_events += 1;
                s.credits += u64::from(amount);
            }
            Event::StreamClosed { id } => self.streams.entry(id).or_default().closed += 1,
            Event::Pong { opaque, rtt } => self.pongs.push((opaque, rtt)),
            Event::GoAwayReceived { code } => self.go_away = Some(code),
            Event::ConnectionClosed { reason } => self.closed = Some(reason),
            Event::Writable { .. } | Event::OpenUnblocked => {}
            _ => {}
        }
    }

    /// Keeps the value of a command that succeeded; records one that did not.
    pub(crate) fn check<T, E: fmt::Display>(&mut self, what: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(format!("{what}: {e}"));
                None
            }
        }
    }

    pub(crate) fn finish(&mut self, result: io::Result<()>, t0: Instant) {
        self.finished_at = t0.elapsed();
        self.outcome = Some(result.map_err(|e| e.to_string()));
    }

    pub(crate) fn stream(&self, id: StreamId) -> &StreamLog {
        static EMPTY: StreamLog = StreamLog {
            sent: 0,
            received: 0,
            credit_events: 0,
            credits: 0,
            half_closed: false,
            reset: None,
            closed: 0,
            out_of_order: false,
        };
        self.streams.get(&id).unwrap_or(&EMPTY)
    }
}

/// Every stream an application writes to goes through an `Outbox`; this
/// mirrors its count into the report.
pub(crate) fn note_sent(report: &mut Report, id: StreamId, n: usize) {
    report.streams.entry(id).or_default().sent += n as u64;
}

pub(crate) fn print_summary(c: &ClientApp, s: &ServerApp, elapsed: Duration) {
    let (cr, sr) = (&c.report, &s.report);
    println!("\nsummary");
    println!(
        "  {:<13} {:>3}  {:>11} {:>11}  {:>11} {:>11}  how it ended",
        "stream", "id", "c→s sent", "delivered", "s→c sent", "delivered"
    );
    for id in [BULK, ECHO, RESET, STOP] {
        let (cs, ss) = (cr.stream(id), sr.stream(id));
        let how = match id {
            BULK => {
                format!(
                    "FIN both ways; {} credit returns, {} (incl. window growth)",
                    cs.credit_events,
                    size(cs.credits)
                )
            }
            ECHO => "FIN both ways (client first)".to_string(),
            RESET => format!("client reset; server saw {}", reason(ss.reset)),
            _ => format!(
                "server stopped after {STOP_MSGS_READ} msgs; client saw {}",
                reason(cs.reset)
            ),
        };
        println!(
            "  {:<13} {:>3}  {:>11} {:>11}  {:>11} {:>11}  {how}",
            name(id),
            id.0,
            size(cs.sent),
            size(ss.received),
            size(ss.sent),
            size(cs.received)
        );
    }
    println!("\n  {:<22} {:>12} {:>12}", "connection", "client", "server");
    let row = |what: &str, f: fn(&ConnectionStats) -> u64| {
        println!("  {:<22} {:>12} {:>12}", what, f(&cr.stats), f(&sr.stats));
    };
    row("frames sent", |s| s.frames_sent);
    row("frames received", |s| s.frames_received);
    row("bytes sent", |s| s.bytes_sent);
    row("payload bytes sent", |s| s.data_sent);
    row("window updates sent", |s| s.window_updates_sent);
    row("resets sent", |s| s.resets_sent);
    row("resets received", |s| s.resets_received);
    row("pings sent", |s| s.pings_sent);
    row("streams opened", |s| s.streams_opened);
    row("streams accepted", |s| s.streams_accepted);
    println!(
        "  {:<22} {:>12} {:>12}",
        "finished at (ms)",
        format!("{:.1}", ms(cr.finished_at)),
        format!("{:.1}", ms(sr.finished_at))
    );
    println!("  elapsed: {:.1} ms", ms(elapsed));
}

pub(crate) fn reason(r: Option<ResetReason>) -> String {
    match r {
        Some(ResetReason::Remote { code }) => format!("StreamReset(Remote {{ code: {code} }})"),
        Some(other) => format!("StreamReset({other:?})"),
        None => "no reset".into(),
    }
}

pub(crate) fn name(id: StreamId) -> &'static str {
    match id {
        BULK => "bulk",
        ECHO => "echo",
        RESET => "reset",
        STOP => "stop-reading",
        _ => "?",
    }
}

// ---------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------

/// Timestamped log lines, one per thing that happened.
#[derive(Clone, Copy)]
pub(crate) struct Log {
    pub(crate) side: &'static str,
    pub(crate) t0: Instant,
}

impl Log {
    pub(crate) fn say(&self, what: fmt::Arguments<'_>) {
        println!("{:>9.3} ms  {:<6}  {what}", ms(self.t0.elapsed()), self.side);
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / (1 << 10) as f64),
        n => format!("{n} B"),
    }
}

/// A checkable byte pattern, different per seed.
pub(crate) fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed).wrapping_add((i >> 8) as u8))
        .collect()
}

/// FNV-1a 64, fed incrementally.
pub(crate) struct Fnv(pub(crate) u64);

impl Fnv {
    pub(crate) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

pub(crate) fn fnv(data: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.update(data);
    h.0
}
