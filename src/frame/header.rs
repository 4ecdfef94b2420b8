//! The 12-byte frame header: its fields, their encoding and decoding.

use crate::error::FrameError;
use crate::StreamId;

/// Size of every frame header on the wire.
pub const HEADER_LEN: usize = 12;

/// The only protocol version there is.
pub const VERSION: u8 = 0;

/// The four frame types (spec §"Message Type").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// Carries stream payload; `length` is the body size.
    Data,
    /// Grants the peer more send credit; `length` is the delta.
    WindowUpdate,
    /// Liveness and RTT; `length` is an opaque value echoed in the ACK.
    Ping,
    /// Session termination; `length` is a [`GoAwayCode`](crate::GoAwayCode).
    GoAway,
}

impl FrameType {
    pub(super) fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(FrameType::Data),
            1 => Some(FrameType::WindowUpdate),
            2 => Some(FrameType::Ping),
            3 => Some(FrameType::GoAway),
            _ => None,
        }
    }

    pub(super) fn to_u8(self) -> u8 {
        match self {
            FrameType::Data => 0,
            FrameType::WindowUpdate => 1,
            FrameType::Ping => 2,
            FrameType::GoAway => 3,
        }
    }
}

/// The header flags (spec §"Flags"). A plain bit set; unknown bits are kept
/// as received and ignored by the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u16);

impl Flags {
    /// No flags.
    pub const NONE: Flags = Flags(0);
    /// Opens a stream (or marks a Ping request).
    pub const SYN: Flags = Flags(0x1);
    /// Accepts a stream (or marks a Ping response).
    pub const ACK: Flags = Flags(0x2);
    /// Half-close: the sender will send no more data on this stream.
    pub const FIN: Flags = Flags(0x4);
    /// Abort the stream in both directions.
    pub const RST: Flags = Flags(0x8);

    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    #[must_use]
    pub fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

/// A decoded or to-be-encoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// What kind of frame this is.
    pub frame_type: FrameType,
    /// SYN/ACK/FIN/RST.
    pub flags: Flags,
    /// Stream id; 0 is the session itself (Ping, Go Away).
    pub stream_id: StreamId,
    /// Body size, credit delta, ping opaque or go-away code, by type.
    pub length: u32,
}

impl Header {
    /// A Data header for `len` body bytes.
    pub fn data(stream_id: StreamId, flags: Flags, len: u32) -> Header {
        Header { frame_type: FrameType::Data, flags, stream_id, length: len }
    }

    /// A Window Update header granting `delta` more credit.
    pub fn window_update(stream_id: StreamId, flags: Flags, delta: u32) -> Header {
        Header { frame_type: FrameType::WindowUpdate, flags, stream_id, length: delta }
    }

    /// A Ping request (`SYN`) or response (`ACK`).
    pub fn ping(flags: Flags, opaque: u32) -> Header {
        Header { frame_type: FrameType::Ping, flags, stream_id: StreamId::SESSION, length: opaque }
    }

    /// A Go Away with the given code.
    pub fn go_away(code: u32) -> Header {
        Header {
            frame_type: FrameType::GoAway,
            flags: Flags::NONE,
            stream_id: StreamId::SESSION,
            length: code,
        }
    }

    /// Bytes of body that follow this header on the wire.
    pub fn body_len(&self) -> u32 {
        match self.frame_type {
            FrameType::Data => self.length,
            _ => 0,
        }
    }

    /// The 12 wire bytes of this header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = VERSION;
        out[1] = self.frame_type.to_u8();
        out[2..4].copy_from_slice(&self.flags.0.to_be_bytes());
        out[4..8].copy_from_slice(&self.stream_id.0.to_be_bytes());
        out[8..12].copy_from_slice(&self.length.to_be_bytes());
        out
    }

    /// Parses 12 wire bytes. Fails on a version other than 0 or an unknown type.
    pub fn decode(raw: &[u8; HEADER_LEN]) -> Result<Header, FrameError> {
        if raw[0] != VERSION {
            return Err(FrameError::UnsupportedVersion(raw[0]));
        }
        let frame_type = FrameType::from_u8(raw[1]).ok_or(FrameError::UnknownType(raw[1]))?;
        Ok(Header {
            frame_type,
            flags: Flags(u16::from_be_bytes([raw[2], raw[3]])),
            stream_id: StreamId(u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]])),
            length: u32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let headers = [
            Header::window_update(StreamId(1), Flags::SYN, 0),
            Header::data(StreamId(1), Flags::NONE, 5),
            Header::data(StreamId(2), Flags::FIN.with(Flags::ACK), 0),
            Header::ping(Flags::SYN, 0xdead_beef),
            Header::go_away(2),
            Header::window_update(StreamId(u32::MAX), Flags::RST, u32::MAX),
        ];
        for h in headers {
            assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        }
    }

    #[test]
    fn header_bytes_are_big_endian() {
        let h = Header::data(StreamId(0x0102_0304), Flags(0x0a0b), 0x0506_0708);
        assert_eq!(h.encode(), [0, 0, 0x0a, 0x0b, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
