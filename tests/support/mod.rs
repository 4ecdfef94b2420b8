//! The one test-support module. The scenario, property, simulator, attack,
//! adapter and corpus tests include it with `mod support;`; the fuzz targets
//! include it with `#[path]`. It depends only on the public API of
//! `yamux_proto`, `bytes`, `arbitrary` and `quickcheck`.
//!
//! * [`rng`]: the one seeded generator;
//! * [`pattern`]: the one checkable payload;
//! * [`frames`]: the wire builder (hand-built frames, output as wire bytes);
//! * [`events`]: the one event checker;
//! * [`network`]: the one virtual network ([`network::Link`]);
//! * [`pair`]: two connections over it with virtual time, for scenarios;
//! * [`ops`]: the operation-sequence driver (properties, fuzzing, corpus);
//! * [`harness`]: the fuzz harnesses as plain functions;
//! * [`sim`]: the seeded simulator with random applications.

#![allow(dead_code)]

use yamux_proto::Role;

pub mod events;
pub mod frames;
pub mod harness;
pub mod network;
pub mod ops;
pub mod pair;
pub mod pattern;
pub mod rng;
pub mod sim;

/// Which end of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Opens odd stream ids.
    Client,
    /// Opens even stream ids.
    Server,
}

impl Side {
    /// Both sides, client first.
    pub const BOTH: [Side; 2] = [Side::Client, Side::Server];

    /// The other end.
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    /// The connection role of this end.
    pub fn role(self) -> Role {
        match self {
            Side::Client => Role::Client,
            Side::Server => Role::Server,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }

    pub fn from_byte(b: u8) -> Side {
        if b & 1 == 0 {
            Side::Client
        } else {
            Side::Server
        }
    }

    pub fn to_byte(self) -> u8 {
        self.index() as u8
    }
}
