//! The connection's life as one state machine, changed only by
//! [`Life::on`] (docs/state-machines.md, "The connection").
//!
//! ```text
//!            our go_away, or the peer's Go Away
//!   Open ──────────────────────────────────────► Draining
//!    │                                              │
//!    │ close, a failure, the transport's end,       │ the last stream ends after
//!    │ a timeout, the peer's Go Away ≠ Normal       │ our Go Away (Drained), or
//!    ▼                                              ▼ as from Open
//!   Closed(reason) ◄────────────────────────────────┘
//! ```
//!
//! Which Go Aways were exchanged is kept beside the phase, and after the
//! end: `open` tells `GoingAway` from `RemoteGoingAway` by it, `close`
//! sends no second Go Away, and `remote_go_away` still answers once closed.

use crate::{CloseReason, GoAwayCode};

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Streams may be opened both ways.
    Open,
    /// A Go Away was sent or received (or both): no new streams in that
    /// direction; the live ones finish.
    Draining,
    /// Ended, for this reason: nothing more is decoded, only the frames the
    /// end queued are transmitted.
    Closed(CloseReason),
}

/// What happens to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifeInput {
    /// We send Go Away.
    GoAwaySent,
    /// The peer's Go Away arrived, with this code.
    GoAwayReceived(GoAwayCode),
    /// The connection ends, for this reason.
    End(CloseReason),
}

/// The phase and the Go Aways exchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Life {
    pub phase: Phase,
    /// We sent Go Away.
    pub go_away_sent: bool,
    /// The peer's first Go Away.
    pub go_away_received: Option<GoAwayCode>,
}

impl Life {
    pub fn new() -> Life {
        Life { phase: Phase::Open, go_away_sent: false, go_away_received: None }
    }

    /// The one transition function. Returns whether `input` took effect;
    /// it is ignored once closed, and a Go Away is sent, or taken from the
    /// peer, once.
    pub fn on(&mut self, input: LifeInput) -> bool {
        match (self.phase, input) {
            (Phase::Closed(_), _) => false,
            (_, LifeInput::End(reason)) => {
                self.phase = Phase::Closed(reason);
                true
            }
            (_, LifeInput::GoAwaySent) if self.go_away_sent => false,
            (_, LifeInput::GoAwaySent) => {
                self.go_away_sent = true;
                self.phase = Phase::Draining;
                true
            }
            (_, LifeInput::GoAwayReceived(_)) if self.go_away_received.is_some() => false,
            (_, LifeInput::GoAwayReceived(code)) => {
                self.go_away_received = Some(code);
                self.phase = Phase::Draining;
                true
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.phase {
            Phase::Closed(reason) => Some(reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: LifeInput = LifeInput::GoAwaySent;
    const RECEIVED: LifeInput = LifeInput::GoAwayReceived(GoAwayCode::Normal);
    const END: LifeInput = LifeInput::End(CloseReason::LocalClose);

    fn open() -> Life {
        Life::new()
    }

    fn sent() -> Life {
        Life { phase: Phase::Draining, go_away_sent: true, go_away_received: None }
    }

    fn received() -> Life {
        Life {
            phase: Phase::Draining,
            go_away_sent: false,
            go_away_received: Some(GoAwayCode::Normal),
        }
    }

    fn both() -> Life {
        Life {
            phase: Phase::Draining,
            go_away_sent: true,
            go_away_received: Some(GoAwayCode::Normal),
        }
    }

    fn closed() -> Life {
        Life { phase: Phase::Closed(CloseReason::Drained), ..sent() }
    }

    /// Every (state, input) pair: the state it leads to and whether the
    /// input took effect.
    #[test]
    fn every_state_input_pair() {
        let ended = |from: Life| Life { phase: Phase::Closed(CloseReason::LocalClose), ..from };
        #[rustfmt::skip]
        let table: [(Life, LifeInput, Life, bool); 15] = [
            (open(),     SENT,     sent(),           true),
            (open(),     RECEIVED, received(),       true),
            (open(),     END,      ended(open()),    true),
            (sent(),     SENT,     sent(),           false), // sent once
            (sent(),     RECEIVED, both(),           true),
            (sent(),     END,      ended(sent()),    true),
            (received(), SENT,     both(),           true),
            (received(), RECEIVED, received(),       false), // the first code stays
            (received(), END,      ended(received()), true),
            (both(),     SENT,     both(),           false),
            (both(),     RECEIVED, both(),           false),
            (both(),     END,      ended(both()),    true),
            (closed(),   SENT,     closed(),         false), // nothing after the end
            (closed(),   RECEIVED, closed(),         false),
            (closed(),   END,      closed(),         false), // the first reason stays
        ];
        for (n, (from, input, to, effect)) in table.into_iter().enumerate() {
            let mut life = from;
            assert_eq!(life.on(input), effect, "row {n}: {from:?} on {input:?}");
            assert_eq!(life, to, "row {n}: {from:?} on {input:?}");
        }
    }

    #[test]
    fn a_later_go_away_code_does_not_replace_the_first() {
        let mut life = received();
        assert!(!life.on(LifeInput::GoAwayReceived(GoAwayCode::ProtocolError)));
        assert_eq!(life.go_away_received, Some(GoAwayCode::Normal));
    }

    #[test]
    fn the_reason_is_there_once_closed() {
        let mut life = open();
        assert_eq!(life.close_reason(), None);
        life.on(LifeInput::End(CloseReason::TransportClosed));
        assert!(life.is_closed());
        assert_eq!(life.close_reason(), Some(CloseReason::TransportClosed));
    }
}
