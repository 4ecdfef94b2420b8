//! The one event checker: a connection's events against the guarantees
//! documented on `Event` (per stream: opened first, no `Readable` after
//! `PeerHalfClosed` or `StreamReset`, each at most once, `StreamClosed`
//! exactly once and last; `ConnectionClosed` once and last of all), and the
//! timer rule every event loop relies on.

use std::collections::BTreeMap;
use std::time::Instant;

use yamux_proto::{CloseReason, Connection, Event, ResetReason, Role, StreamId};

/// What has been seen of one stream's events.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    half_closed: bool,
    reset: Option<ResetReason>,
    closed: bool,
}

/// Checks one connection's event stream against the guarantees documented
/// on [`Event`]. Feed it every event in order, and every id `open` returned.
#[derive(Debug)]
pub struct EventChecker {
    role: Role,
    streams: BTreeMap<StreamId, Seen>,
    connection_closed: Option<CloseReason>,
    go_away_received: bool,
}

impl EventChecker {
    /// A checker for a connection in `role`.
    pub fn new(role: Role) -> EventChecker {
        EventChecker {
            role,
            streams: BTreeMap::new(),
            connection_closed: None,
            go_away_received: false,
        }
    }

    /// `open` returned `id`.
    pub fn opened_locally(&mut self, id: StreamId) -> Result<(), String> {
        if id.opener() != Some(self.role) {
            return Err(format!("open returned {id}, of the wrong parity"));
        }
        if self.streams.insert(id, Seen::default()).is_some() {
            return Err(format!("open returned {id} twice"));
        }
        if self.connection_closed.is_some() {
            return Err(format!("open returned {id} after ConnectionClosed"));
        }
        Ok(())
    }

    /// Whether `id` was opened, by either side.
    pub fn knows(&self, id: StreamId) -> bool {
        self.streams.contains_key(&id)
    }

    /// Whether the stream's `StreamClosed` was seen.
    pub fn is_closed(&self, id: StreamId) -> bool {
        self.streams.get(&id).is_some_and(|s| s.closed)
    }

    /// Whether `PeerHalfClosed` was seen for `id`.
    pub fn saw_fin(&self, id: StreamId) -> bool {
        self.streams.get(&id).is_some_and(|s| s.half_closed)
    }

    /// The reset reason seen for `id`, if any.
    pub fn reset_reason(&self, id: StreamId) -> Option<ResetReason> {
        self.streams.get(&id).and_then(|s| s.reset)
    }

    /// Why the connection closed, once `ConnectionClosed` was seen.
    pub fn connection_closed(&self) -> Option<CloseReason> {
        self.connection_closed
    }

    /// Every stream ever opened, by either side.
    pub fn stream_ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.streams.keys().copied()
    }

    fn live(&mut self, id: StreamId, what: &str) -> Result<&mut Seen, String> {
        match self.streams.get_mut(&id) {
            None => Err(format!("{what} for stream {id}, never opened")),
            Some(s) if s.closed => Err(format!("{what} for stream {id} after StreamClosed")),
            Some(s) => Ok(s),
        }
    }

    /// Checks the next event.
    pub fn on_event(&mut self, event: &Event) -> Result<(), String> {
        if let Some(reason) = self.connection_closed {
            return Err(format!("{event:?} after ConnectionClosed({reason:?})"));
        }
        match event {
            Event::StreamOpened { id } => {
                if id.opener() != Some(opposite(self.role)) {
                    return Err(format!("peer opened {id}, of the wrong parity"));
                }
                match self.streams.insert(*id, Seen::default()) {
                    None => {}
                    Some(s) if s.closed => {
                        return Err(format!("StreamOpened for {id} again after StreamClosed"))
                    }
                    Some(_) => return Err(format!("StreamOpened twice for {id}")),
                }
            }
            Event::Readable { id } => {
                let s = self.live(*id, "Readable")?;
                if s.half_closed {
                    return Err(format!("Readable for {id} after PeerHalfClosed"));
                }
                if let Some(r) = s.reset {
                    return Err(format!("Readable for {id} after StreamReset({r:?})"));
                }
            }
            Event::PeerHalfClosed { id } => {
                let s = self.live(*id, "PeerHalfClosed")?;
                if s.half_closed {
                    return Err(format!("PeerHalfClosed twice for {id}"));
                }
                if let Some(r) = s.reset {
                    return Err(format!("PeerHalfClosed for {id} after StreamReset({r:?})"));
                }
                s.half_closed = true;
            }
            Event::StreamReset { id, reason } => {
                let s = self.live(*id, "StreamReset")?;
                if let Some(r) = s.reset {
                    return Err(format!("StreamReset twice for {id}: {r:?} then {reason:?}"));
                }
                // What the application did itself is not reported back.
                if matches!(reason, ResetReason::Local | ResetReason::StoppedReading) {
                    return Err(format!("StreamReset({reason:?}) reported for {id}"));
                }
                s.reset = Some(*reason);
            }
            Event::CreditsReturned { id, amount } => {
                self.live(*id, "CreditsReturned")?;
                if *amount == 0 {
                    return Err(format!("CreditsReturned of 0 for {id}"));
                }
            }
            Event::Writable { id } => {
                self.live(*id, "Writable")?;
            }
            Event::StreamClosed { id } => {
                self.live(*id, "StreamClosed")?.closed = true;
            }
            Event::OpenUnblocked | Event::Pong { .. } => {}
            Event::GoAwayReceived { .. } => {
                if self.go_away_received {
                    return Err("GoAwayReceived twice".into());
                }
                self.go_away_received = true;
            }
            Event::ConnectionClosed { reason } => {
                if let Some((id, _)) = self.streams.iter().find(|(_, s)| !s.closed) {
                    return Err(format!("ConnectionClosed({reason:?}) before {id} was closed"));
                }
                self.connection_closed = Some(*reason);
            }
            other => return Err(format!("an event the checker does not know: {other:?}")),
        }
        Ok(())
    }

    /// Checks the next event, first learning a stream this end opened from
    /// its first event: for harnesses that do not see every `open` call.
    pub fn observe(&mut self, event: &Event) -> Result<(), String> {
        if let Some(id) = event.stream_id() {
            if id.opener() == Some(self.role) && !self.knows(id) {
                self.opened_locally(id)?;
            }
        }
        self.on_event(event)
    }

    /// At the end: the connection closed, every opened stream closed once.
    pub fn finish(&self) -> Result<(), String> {
        if self.connection_closed.is_none() {
            return Err("no ConnectionClosed".into());
        }
        match self.streams.iter().find(|(_, s)| !s.closed) {
            Some((id, _)) => Err(format!("stream {id} never closed")),
            None => Ok(()),
        }
    }
}

fn opposite(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Checks that a connection's timers are consistent after
/// `handle_timeout(now)`: nothing is still due, or a real event loop would
/// spin.
pub fn check_timers_after(conn: &Connection, now: Instant) -> Result<(), String> {
    match conn.poll_timeout() {
        Some(t) if t <= now => {
            Err(format!("a timer is still due after handle_timeout: {:?} late", now - t))
        }
        _ => Ok(()),
    }
}

/// Checks a whole recorded event list of a connection in `role` (see
/// [`EventChecker::observe`]), panicking on the first violation.
pub fn check_events(role: Role, events: &[Event]) {
    let mut checker = EventChecker::new(role);
    for (i, event) in events.iter().enumerate() {
        if let Err(e) = checker.observe(event) {
            panic!("event {i} of the {role:?}: {e}");
        }
    }
}
