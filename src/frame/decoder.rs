//! The streaming frame decoder: bytes in any chunking, whole frames out,
//! bodies as zero-copy slices of the buffer they arrived in.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::header::{FrameType, Header, HEADER_LEN};
use crate::error::FrameError;

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
///
/// # Buffers
///
/// Bodies are handed out as slices of the buffer they arrived in, so a
/// buffer lives until every body cut from it is dropped. When input does not
/// fit, the decoder does not grow the buffer (`BytesMut::reserve` may
/// `realloc`, copying bytes already handed out, and keeps a partial frame
/// straddling two buffers, to be copied again). It walks the frame headers
/// instead: the frames that fit in the current buffer stay there, and the
/// rest starts a new buffer at a frame boundary, sized to hold the frame it
/// ends in. So each byte is copied once, from the input into its final
/// place. The exception is a partial frame already in a full buffer (left by
/// input that fitted, or written into the buffer by the connection),
/// which is moved once. A buffer nobody else references any more is reused in
/// place rather than replaced, so a steady stream keeps reading into the
/// same, cache-warm memory.
#[derive(Debug)]
pub struct Decoder {
    /// Whole frames the decoder has moved on from, not yet decoded, oldest
    /// first; decoded before `buf`. The first may begin with the rest of the
    /// body of `header`.
    ready: VecDeque<BytesMut>,
    /// Bytes in `ready`.
    ready_len: usize,
    /// The buffer input is appended to.
    buf: BytesMut,
    max_body: u32,
    header: Option<Header>,
    failed: bool,
    /// Bytes taken out of `buf` as frames, over the decoder's life.
    consumed: u64,
    /// Bytes given and then dropped undecoded, over the decoder's life.
    dropped: u64,
}

/// Smallest allocation the decoder makes when it needs room: amortises the
/// cost of many small inputs and bounds how much a retained body slice can pin.
const MIN_RESERVE: usize = 64 * 1024;

/// Most room the decoder reserves for a frame on the word of its header:
/// the default stream window, so frames from peers with default windows are
/// placed once.
const MAX_BLIND_RESERVE: usize = 256 * 1024;

/// Where the frame stream stands after some bytes: how much of the frame in
/// progress has been seen. Derived afresh from the decoder's state whenever
/// input must be placed, so nothing has to be kept in step with
/// [`Decoder::buffer_mut`] writes.
#[derive(Clone, Copy)]
struct Walk {
    /// Bytes of the frame in progress seen so far, header included; 0 at a
    /// frame boundary.
    have: usize,
    /// Body bytes of that frame still to come, once its header is complete.
    left: usize,
    /// Its header bytes, while incomplete.
    hdr: [u8; HEADER_LEN],
}

impl Walk {
    fn at_boundary() -> Walk {
        Walk { have: 0, left: 0, hdr: [0; HEADER_LEN] }
    }

    /// Goes over `input`; returns the offset of the last frame boundary in
    /// `input` that is at most `limit` (0 if there is none).
    fn advance(&mut self, input: &[u8], limit: usize) -> usize {
        let mut pos = 0;
        let mut fit = 0;
        while pos < input.len() {
            if self.have < HEADER_LEN {
                let k = (HEADER_LEN - self.have).min(input.len() - pos);
                self.hdr[self.have..self.have + k].copy_from_slice(&input[pos..pos + k]);
                self.have += k;
                pos += k;
                if self.have < HEADER_LEN {
                    break;
                }
                // Only Data frames have a body (a bad header fails decoding
                // when it is reached; its length does not matter here).
                self.left = if self.hdr[1] == FrameType::Data.to_u8() {
                    u32::from_be_bytes([self.hdr[8], self.hdr[9], self.hdr[10], self.hdr[11]])
                        as usize
                } else {
                    0
                };
            }
            let k = self.left.min(input.len() - pos);
            self.left -= k;
            self.have += k;
            pos += k;
            if self.left > 0 {
                break;
            }
            self.have = 0;
            if pos <= limit {
                fit = pos;
            }
        }
        fit
    }
}

impl Decoder {
    /// A decoder that rejects Data bodies larger than `max_body` bytes.
    pub fn new(max_body: u32) -> Decoder {
        Decoder {
            ready: VecDeque::new(),
            ready_len: 0,
            buf: BytesMut::new(),
            max_body,
            header: None,
            failed: false,
            consumed: 0,
            dropped: 0,
        }
    }

    /// Appends received bytes (one copy, into the decoder's buffer).
    pub fn extend(&mut self, input: &[u8]) {
        if self.failed {
            // Nothing after an error is ever decoded, nor kept.
            self.dropped += input.len() as u64;
            return;
        }
        if input.len() <= self.buf.capacity() - self.buf.len() {
            self.buf.extend_from_slice(input);
        } else {
            self.place(input, 0);
        }
    }

    /// The buffer input is appended to, for callers that read the transport
    /// straight into it (no copy); call [`Decoder::decode`] afterwards. It has
    /// at least 16 KiB of spare capacity.
    ///
    /// After an error (or [`discard`](Decoder::discard)) what was written
    /// here is dropped and counted at the next call, and the same room is
    /// offered again: a caller that keeps reading holds no more than it
    /// reserves itself.
    #[cfg(feature = "testing")]
    pub(crate) fn buffer_mut(&mut self) -> &mut BytesMut {
        if self.failed {
            self.drop_written();
            self.buf.reserve(MIN_RESERVE / 4);
        } else if self.buf.capacity() - self.buf.len() < MIN_RESERVE / 4 {
            self.place(&[], MIN_RESERVE);
        }
        &mut self.buf
    }

    /// Appends `input` (which does not fit in `buf`) and leaves at least
    /// `room` bytes of spare capacity: whole frames that fit stay in `buf`,
    /// which moves to `ready`, and the rest goes into a buffer with room for
    /// the frame it ends in (see the type's docs).
    fn place(&mut self, input: &[u8], room: usize) {
        // Where the stream stands at the end of `buf`: after `ready` (whole
        // frames) the frame in progress is the pending header's, if any.
        let mut walk = Walk::at_boundary();
        if let (Some(h), true) = (self.header, self.ready.is_empty()) {
            walk.have = HEADER_LEN;
            walk.left = h.body_len() as usize;
        }
        walk.advance(&self.buf, 0);
        let before = walk.have;
        let spare = self.buf.capacity() - self.buf.len();
        let fit = walk.advance(input, spare);
        self.buf.extend_from_slice(&input[..fit]);
        let rest = &input[fit..];
        // With no boundary of `input` in `buf`, the frame in progress before
        // `input` is still partial: its bytes in `buf` must move with the rest.
        let partial = if fit == 0 { before.min(self.buf.len()) } else { 0 };
        let whole = self.buf.len() - partial;
        if whole > 0 {
            self.ready_len += whole;
            self.ready.push_back(self.buf.split_to(whole));
        }
        // Room for the rest of the frame `input` ends in, unless its length
        // is one decoding will reject anyway. A header alone is not trusted
        // with more than `MAX_BLIND_RESERVE` (the connection may still find
        // it beyond the stream's credit): beyond that, room grows with what
        // actually arrived, so a large frame is moved O(log n) times.
        let frame_rest = if walk.have >= HEADER_LEN
            && walk.have + walk.left <= HEADER_LEN + self.max_body as usize
        {
            walk.left.min(walk.have.max(MAX_BLIND_RESERVE))
        } else {
            0
        };
        let need = rest.len() + frame_rest.max(room);
        if !self.buf.try_reclaim(need) {
            let mut fresh = BytesMut::with_capacity((partial + need).max(MIN_RESERVE));
            fresh.extend_from_slice(&self.buf);
            self.buf = fresh;
        }
        self.buf.extend_from_slice(rest);
    }

    /// Whether the decoder stands at a frame boundary holding nothing, so
    /// the caller may decode whole frames from its own input
    /// ([`Decoder::skip_decoded`]) without changing what this decoder yields.
    pub(crate) fn is_idle(&self) -> bool {
        !self.failed && !self.is_mid_frame()
    }

    /// The whole, valid frame at the front of `input`, without buffering
    /// anything: for a caller that handles frames straight from its own
    /// input while the decoder [`is_idle`](Decoder::is_idle). `None` if
    /// `input` ends before the frame does or the header is bad; give such
    /// input to [`extend`](Decoder::extend), which waits or reports the error.
    pub(crate) fn whole_frame<'a>(&self, input: &'a [u8]) -> Option<(Header, &'a [u8])> {
        let header = header_at(input, self.max_body).ok()??;
        let body = input.get(HEADER_LEN..HEADER_LEN + header.body_len() as usize)?;
        Some((header, body))
    }

    /// The header at the front of `input` (`Ok(None)` if `input` is shorter
    /// than a header), checked as [`decode`](Decoder::decode) checks it: for
    /// a caller that decodes from its own buffer while the decoder
    /// [`is_idle`](Decoder::is_idle).
    pub(crate) fn header_at(&self, input: &[u8]) -> Result<Option<Header>, FrameError> {
        header_at(input, self.max_body)
    }

    /// Accounts for `n` bytes of whole frames the caller decoded itself
    /// from input it never gave here (only while [`Decoder::is_idle`]).
    pub(crate) fn skip_decoded(&mut self, n: usize) {
        self.consumed += n as u64;
    }

    /// Frees every buffered byte and stops decoding for good: for a
    /// connection that will decode no more. Bodies already handed out stay
    /// valid; later input is dropped and counted. The bytes move from
    /// [`total_input`](Decoder::total_input) to
    /// [`total_dropped`](Decoder::total_dropped).
    pub(crate) fn discard(&mut self) {
        self.failed = true;
        self.dropped += self.buffered() as u64;
        self.ready.clear();
        self.ready_len = 0;
        self.buf = BytesMut::new();
        self.header = None;
    }

    /// After an error, drops (and counts) whatever was written into
    /// [`buffer_mut`](Decoder::buffer_mut) since its last call, keeping the
    /// room; does nothing while decoding.
    pub(crate) fn drop_written(&mut self) {
        if self.failed {
            self.dropped += self.buf.len() as u64;
            self.buf.clear();
        }
    }

    /// Counts `n` bytes the caller dropped without giving them here, so
    /// [`total_dropped`](Decoder::total_dropped) covers all input.
    pub(crate) fn count_dropped(&mut self, n: usize) {
        self.dropped += n as u64;
    }

    /// Every byte given and then dropped undecoded so far: after an error,
    /// or after [`discard`](Decoder::discard).
    pub(crate) fn total_dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes held that do not yet form a whole frame.
    pub fn buffered(&self) -> usize {
        self.ready_len + self.buf.len() + if self.header.is_some() { HEADER_LEN } else { 0 }
    }

    /// The header of a frame whose body is still arriving, so a connection
    /// can reject it before buffering the body.
    pub(crate) fn pending_header(&self) -> Option<Header> {
        self.header
    }

    /// Every byte given to the decoder so far, decoded or not.
    pub(crate) fn total_input(&self) -> u64 {
        self.consumed + self.buffered() as u64
    }

    /// Whether a frame has been started but not finished.
    pub(crate) fn is_mid_frame(&self) -> bool {
        self.header.is_some() || self.ready_len > 0 || !self.buf.is_empty()
    }

    /// The next complete frame, `Ok(None)` if more input is needed.
    pub fn decode(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.failed {
            self.drop_written();
            return Err(FrameError::Failed);
        }
        // A `ready` buffer holds whole frames, so one look at the first
        // decides: a frame from it, or (never, by construction) a join.
        if let Some(front) = self.ready.front_mut() {
            let len = front.len();
            let r = next_frame(&mut self.header, self.max_body, front);
            self.ready_len -= len - front.len();
            if front.is_empty() {
                self.ready.pop_front();
            }
            match r {
                Ok(Some(frame)) => return Ok(Some(self.count(frame))),
                Ok(None) => {
                    // `ready` holds whole frames by construction; should a
                    // frame ever end beyond a buffer, join the buffers so
                    // it is still decoded, at the cost of one copy.
                    self.join_ready();
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        match next_frame(&mut self.header, self.max_body, &mut self.buf) {
            Ok(Some(frame)) => Ok(Some(self.count(frame))),
            Ok(None) => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn count(&mut self, frame: Frame) -> Frame {
        self.consumed += (HEADER_LEN + frame.body.len()) as u64;
        frame
    }

    /// Moves everything in `ready` in front of `buf`, in one buffer.
    fn join_ready(&mut self) {
        let mut joined = BytesMut::with_capacity(self.ready_len + self.buf.len());
        for seg in self.ready.drain(..) {
            joined.extend_from_slice(&seg);
        }
        joined.extend_from_slice(&self.buf);
        self.buf = joined;
        self.ready_len = 0;
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = true;
        self.discard();
        e
    }
}

/// The header at the front of `input`, with a body `max_body` allows;
/// `Ok(None)` if `input` is shorter than a header.
fn header_at(input: &[u8], max_body: u32) -> Result<Option<Header>, FrameError> {
    let Some(raw) = input.first_chunk::<HEADER_LEN>() else { return Ok(None) };
    let h = Header::decode(raw)?;
    if h.body_len() > max_body {
        return Err(FrameError::BodyTooLarge { len: h.body_len(), max: max_body });
    }
    Ok(Some(h))
}

/// The next whole frame at the front of `src`, given the header already taken
/// from it (`header`, updated); `Ok(None)` if `src` ends before the frame does.
fn next_frame(
    header: &mut Option<Header>,
    max_body: u32,
    src: &mut BytesMut,
) -> Result<Option<Frame>, FrameError> {
    let h = match *header {
        Some(h) => h,
        None => {
            let Some(h) = header_at(src, max_body)? else { return Ok(None) };
            src.advance(HEADER_LEN);
            h
        }
    };
    let body_len = h.body_len() as usize;
    if src.len() < body_len {
        *header = Some(h);
        return Ok(None);
    }
    *header = None;
    let body = if body_len == 0 { Bytes::new() } else { src.split_to(body_len).freeze() };
    Ok(Some(Frame { header: h, body }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Flags;
    use crate::StreamId;

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

    /// Frames of every kind and size around the buffer sizes, so that input
    /// overflows buffers mid-header, mid-body and at boundaries.
    fn mixed_wire() -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let mut n = 0;
        for (i, len) in
            [5u32, 0, 70_000, 12, 65_536, 1, 16_383, 40_000, 0, 65_524, 3].iter().enumerate()
        {
            let body: Vec<u8> = (0..*len as usize).map(|k| (k * 7 + i) as u8).collect();
            out.extend_from_slice(
                &Header::data(StreamId(i as u32 + 1), Flags::NONE, *len).encode(),
            );
            out.extend_from_slice(&body);
            out.extend_from_slice(&Header::window_update(StreamId(1), Flags::NONE, 9).encode());
            n += 2;
        }
        (out, n)
    }

    #[test]
    fn extend_and_buffer_mut_agree_in_any_chunking_and_decode_timing() {
        let (input, count) = mixed_wire();
        let whole = decode_all(&input, input.len());
        assert_eq!(whole.len(), count);
        for chunk in [1, 11, 12, 13, 4096, 16_384, 65_535, 65_536, 65_548, 100_000] {
            // Decoding only after every third chunk makes input pile up
            // across several buffers before any of it is decoded.
            for decode_every in [1, 3] {
                let mut d = Decoder::new(1 << 20);
                let mut out = Vec::new();
                let mut fed = 0;
                for (k, piece) in input.chunks(chunk).enumerate() {
                    if k % 2 == 0 {
                        d.extend(piece);
                    } else {
                        d.buffer_mut().extend_from_slice(piece);
                    }
                    fed += piece.len();
                    assert_eq!(d.total_input(), fed as u64, "chunk {chunk}");
                    if k % decode_every == 0 {
                        while let Some(f) = d.decode().unwrap() {
                            out.push(f);
                        }
                    }
                }
                while let Some(f) = d.decode().unwrap() {
                    out.push(f);
                }
                assert_eq!(out, whole, "chunk {chunk}, decode every {decode_every}");
                assert!(!d.is_mid_frame());
                assert_eq!(d.buffered(), 0);
            }
        }
    }

    #[test]
    fn a_body_is_not_moved_once_placed() {
        // A 64 KiB body arriving in 64 KiB reads straddles every read: its
        // first part must be placed where the whole body will be, not moved
        // to a bigger buffer when the rest arrives.
        let mut input = Vec::new();
        for i in 0..8u8 {
            input.extend_from_slice(&Header::data(StreamId(1), Flags::NONE, 65_536).encode());
            input.extend(std::iter::repeat_n(i, 65_536));
        }
        let mut d = Decoder::new(1 << 20);
        let mut held = Vec::new();
        // Where the body whose header was decoded last starts, in memory.
        let mut started: Option<*const u8> = None;
        for piece in input.chunks(65_536) {
            d.extend(piece);
            while let Some(f) = d.decode().unwrap() {
                if let Some(p) = started.take() {
                    assert_eq!(f.body.as_ptr(), p, "frame {} was moved", held.len());
                }
                held.push(f.body);
            }
            if d.pending_header().is_some() {
                started = Some(d.buf.as_ptr());
            }
        }
        assert_eq!(held.len(), 8);
        for (i, b) in held.iter().enumerate() {
            assert!(b.iter().all(|&x| x == i as u8), "frame {i} corrupt");
        }
    }

    #[test]
    fn a_header_alone_reserves_little_and_room_grows_with_the_body() {
        // 4 MiB announced: the header is not trusted with 4 MiB of room, but
        // a body that really arrives is still assembled, in few moves.
        const LEN: usize = 4 << 20;
        let mut d = Decoder::new(16 << 20);
        d.extend(&Header::data(StreamId(1), Flags::NONE, LEN as u32).encode());
        assert_eq!(d.decode(), Ok(None));
        assert!(d.buf.capacity() <= MAX_BLIND_RESERVE + HEADER_LEN, "{}", d.buf.capacity());
        let mut moves = 0;
        let mut at = d.buf.as_ptr();
        for i in 0..LEN / 65_536 {
            d.extend(&[i as u8; 65_536]);
            if d.buf.as_ptr() != at {
                moves += 1;
                at = d.buf.as_ptr();
            }
        }
        assert!(moves <= 5, "{moves} moves for a 4 MiB body");
        let f = d.decode().unwrap().expect("whole frame");
        assert_eq!(f.body.len(), LEN);
        assert!(f.body.chunks(65_536).enumerate().all(|(i, c)| c.iter().all(|&x| x == i as u8)));
    }

    #[test]
    fn discard_frees_buffered_input() {
        let mut d = Decoder::new(1 << 20);
        d.extend(&Header::data(StreamId(1), Flags::NONE, 100).encode());
        d.extend(&[7; 50]);
        assert!(d.is_mid_frame());
        d.discard();
        assert!(!d.is_mid_frame());
        assert_eq!(d.buf.capacity(), 0);
    }

    #[test]
    fn partial_header_waits() {
        let mut d = Decoder::new(1 << 20);
        d.extend(&[0, 0, 0]);
        assert_eq!(d.decode(), Ok(None));
        assert!(d.is_mid_frame());
    }
}
