//! Yamux frames: the 12-byte header, its fields, and a streaming decoder.
//!
//! This module has no state beyond the decoder's partial-frame buffer and
//! knows nothing about streams. Layout (spec §"Framing", all big-endian):
//!
//! ```text
//! +---------+--------+-----------+---------------+----------------+
//! | version | type   | flags     | stream id     | length         |
//! | u8 (=0) | u8     | u16       | u32           | u32            |
//! +---------+--------+-----------+---------------+----------------+
//!   0         1        2..4        4..8            8..12
//! ```
//!
//! `length` is the payload size for Data, the credit delta for Window Update,
//! the opaque value for Ping and the error code for Go Away. Only Data frames
//! carry a body.

use bytes::{Buf, Bytes, BytesMut};

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
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(FrameType::Data),
            1 => Some(FrameType::WindowUpdate),
            2 => Some(FrameType::Ping),
            3 => Some(FrameType::GoAway),
            _ => None,
        }
    }

    fn to_u8(self) -> u8 {
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

/// A whole frame: header plus body (empty unless Data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The header as received.
    pub header: Header,
    /// The Data payload, a zero-copy slice of the decoder's buffer.
    pub body: Bytes,
}

/// Streaming frame decoder: feed it bytes in any chunking, take frames out.
///
/// The same byte sequence yields the same frames however it is split. After an
/// error the decoder stays failed: a yamux byte stream cannot be resynchronised.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_body: u32,
    header: Option<Header>,
    failed: bool,
    /// Bytes taken out of `buf` as frames, over the decoder's life.
    consumed: u64,
}

/// Smallest allocation the decoder makes when it needs room: amortises the
/// cost of many small inputs and bounds how much a retained body slice can pin.
const MIN_RESERVE: usize = 64 * 1024;

impl Decoder {
    /// A decoder that rejects Data bodies larger than `max_body` bytes.
    pub fn new(max_body: u32) -> Decoder {
        Decoder { buf: BytesMut::new(), max_body, header: None, failed: false, consumed: 0 }
    }

    /// Appends received bytes (one copy, into the decoder's buffer).
    pub fn extend(&mut self, input: &[u8]) {
        if self.buf.capacity() - self.buf.len() < input.len() {
            self.buf.reserve(input.len().max(MIN_RESERVE));
        }
        self.buf.extend_from_slice(input);
    }

    /// The buffer input is appended to, for callers that read the transport
    /// straight into it (no copy); call [`Decoder::decode`] afterwards.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < MIN_RESERVE / 4 {
            self.buf.reserve(MIN_RESERVE);
        }
        &mut self.buf
    }

    /// Bytes held that do not yet form a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() + if self.header.is_some() { HEADER_LEN } else { 0 }
    }

    /// The header of a frame whose body is still arriving, so a connection
    /// can reject it before buffering the body.
    pub fn pending_header(&self) -> Option<Header> {
        self.header
    }

    /// Every byte given to the decoder so far, decoded or not.
    pub fn total_input(&self) -> u64 {
        self.consumed + self.buffered() as u64
    }

    /// Whether a frame has been started but not finished.
    pub fn is_mid_frame(&self) -> bool {
        self.header.is_some() || !self.buf.is_empty()
    }

    /// The next complete frame, `Ok(None)` if more input is needed.
    pub fn decode(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.failed {
            return Err(FrameError::Failed);
        }
        let header = match self.header {
            Some(h) => h,
            None => {
                if self.buf.len() < HEADER_LEN {
                    return Ok(None);
                }
                let mut raw = [0u8; HEADER_LEN];
                raw.copy_from_slice(&self.buf[..HEADER_LEN]);
                let header = match Header::decode(&raw) {
                    Ok(h) => h,
                    Err(e) => return Err(self.fail(e)),
                };
                if header.body_len() > self.max_body {
                    return Err(self.fail(FrameError::BodyTooLarge {
                        len: header.body_len(),
                        max: self.max_body,
                    }));
                }
                self.buf.advance(HEADER_LEN);
                header
            }
        };
        let body_len = header.body_len() as usize;
        if self.buf.len() < body_len {
            self.header = Some(header);
            return Ok(None);
        }
        self.header = None;
        self.consumed += (HEADER_LEN + body_len) as u64;
        let body = if body_len == 0 { Bytes::new() } else { self.buf.split_to(body_len).freeze() };
        Ok(Some(Frame { header, body }))
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = true;
        self.buf = BytesMut::new();
        self.header = None;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_frames() -> Vec<(Header, Vec<u8>)> {
        vec![
            (Header::window_update(StreamId(1), Flags::SYN, 0), vec![]),
            (Header::data(StreamId(1), Flags::NONE, 5), b"hello".to_vec()),
            (Header::data(StreamId(2), Flags::FIN.with(Flags::ACK), 0), vec![]),
            (Header::ping(Flags::SYN, 0xdead_beef), vec![]),
            (Header::go_away(2), vec![]),
            (Header::window_update(StreamId(u32::MAX), Flags::RST, u32::MAX), vec![]),
        ]
    }

    fn wire(frames: &[(Header, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (h, body) in frames {
            out.extend_from_slice(&h.encode());
            out.extend_from_slice(body);
        }
        out
    }

    fn decode_all(input: &[u8], chunk: usize) -> Vec<Frame> {
        let mut d = Decoder::new(1 << 20);
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            d.extend(piece);
            while let Some(f) = d.decode().unwrap() {
                out.push(f);
            }
        }
        assert!(!d.is_mid_frame());
        out
    }

    #[test]
    fn header_round_trips() {
        for (h, _) in sample_frames() {
            assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        }
    }

    #[test]
    fn header_bytes_are_big_endian() {
        let h = Header::data(StreamId(0x0102_0304), Flags(0x0a0b), 0x0506_0708);
        assert_eq!(h.encode(), [0, 0, 0x0a, 0x0b, 1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn any_chunking_gives_the_same_frames() {
        let input = wire(&sample_frames());
        let whole = decode_all(&input, input.len());
        assert_eq!(whole.len(), sample_frames().len());
        for chunk in 1..input.len() {
            assert_eq!(decode_all(&input, chunk), whole, "chunk size {chunk}");
        }
        assert_eq!(&whole[1].body[..], b"hello");
    }

    #[test]
    fn rejects_bad_version_type_and_size() {
        let mut d = Decoder::new(1 << 20);
        d.extend(&[1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(d.decode(), Err(FrameError::UnsupportedVersion(1)));
        assert_eq!(d.decode(), Err(FrameError::Failed));

        let mut d = Decoder::new(1 << 20);
        d.extend(&[0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(d.decode(), Err(FrameError::UnknownType(4)));

        let mut d = Decoder::new(16);
        d.extend(&Header::data(StreamId(1), Flags::NONE, 17).encode());
        assert_eq!(d.decode(), Err(FrameError::BodyTooLarge { len: 17, max: 16 }));

        // A large length on a non-Data frame is not a body.
        let mut d = Decoder::new(16);
        d.extend(&Header::window_update(StreamId(1), Flags::NONE, u32::MAX).encode());
        assert!(d.decode().unwrap().is_some());
    }

    #[test]
    fn partial_header_waits() {
        let mut d = Decoder::new(1 << 20);
        d.extend(&[0, 0, 0]);
        assert_eq!(d.decode(), Ok(None));
        assert!(d.is_mid_frame());
    }
}
