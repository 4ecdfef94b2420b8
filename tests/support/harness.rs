//! The fuzz harnesses, as plain functions: each fuzz target in `fuzz/` is a
//! one-line call to one of them, and `tests/fuzz_corpus.rs` replays every
//! corpus file through the same functions on the stable toolchain.
//!
//! Each takes arbitrary bytes and panics on a violated invariant (a fuzzer
//! reports that as a crash). Input formats:
//!
//! * [`decoder`]: `[max_body selector, chunk seed, wire bytes...]`;
//! * [`connection`]: `[settings, chunk seed, wire bytes...]` (see
//!   [`ConnSettings`]);
//! * [`pair_ops`]: a [`Script`] as [`Script::from_bytes`] decodes it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use yamux_proto::frame::{Decoder, Flags, Frame, FrameType, Header, HEADER_LEN};
use yamux_proto::{CloseWriteError, Connection, Event, FrameError, Role, SendError, StreamId};

use super::events::{check_timers_after, EventChecker};
use super::ops::{Script, Setup, World};
use super::rng::Rng;

/// Feeds transport bytes to a connection through both input APIs, chosen
/// call by call by a seeded generator: `handle_input` (a slice) or
/// `handle_input_buf` (a buffer held here, which keeps a partial frame
/// between calls). It goes back to the slice only while the held buffer is
/// empty, as `handle_input_buf` requires; so the connection sees every mix of
/// the two, including its own decoder holding a partial frame when the
/// buffer path resumes.
#[derive(Debug)]
pub struct InputFeeder {
    held: BytesMut,
    rng: Rng,
}

impl InputFeeder {
    /// A feeder whose choices follow `seed`.
    pub fn new(seed: u64) -> InputFeeder {
        InputFeeder { held: BytesMut::new(), rng: Rng::new(seed) }
    }

    /// Hands `input` to `conn` through one of the two APIs.
    pub fn feed(&mut self, conn: &mut Connection, now: Instant, input: &[u8]) {
        if self.held.is_empty() && self.rng.below(2) == 0 {
            conn.handle_input(now, input);
        } else {
            self.held.extend_from_slice(input);
            conn.handle_input_buf(now, &mut self.held);
        }
    }
}

/// Chunk sizes for feeding input, chosen by a seed byte: the low two bits
/// pick the regime (tiny, medium, whole, mixed), the rest seeds the sizes.
#[derive(Clone, Debug)]
pub struct Chunker {
    mode: u8,
    rng: Rng,
}

impl Chunker {
    /// A chunker for `seed`.
    pub fn new(seed: u8) -> Chunker {
        Chunker { mode: seed & 3, rng: Rng::new(u64::from(seed >> 2)) }
    }

    /// The next chunk size (at least 1).
    pub fn next_size(&mut self) -> usize {
        let n = match self.mode {
            0 => self.rng.below(16) + 1,
            1 => self.rng.below(4096) + 1,
            2 => return usize::MAX,
            _ => match self.rng.below(3) {
                0 => self.rng.below(13) + 1,
                1 => self.rng.below(70_000) + 1,
                _ => 12,
            },
        };
        n as usize
    }

    /// Splits `input` into chunks.
    pub fn split<'a>(&mut self, input: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let n = self.next_size().min(rest.len());
            let (a, b) = rest.split_at(n);
            out.push(a);
            rest = b;
        }
        out
    }
}

/// What a decoder made of some input: frames, then the error if any, and
/// the bytes left waiting for more input.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    frames: Vec<Frame>,
    error: Option<FrameError>,
    buffered: usize,
}

fn decode_chunks(max_body: u32, chunks: &[&[u8]]) -> Decoded {
    let mut d = Decoder::new(max_body);
    let mut frames = Vec::new();
    for chunk in chunks {
        d.extend(chunk);
        loop {
            match d.decode() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    // A failed decoder stays failed.
                    assert_eq!(d.decode(), Err(FrameError::Failed), "decoder recovered after {e}");
                    return Decoded { frames, error: Some(e), buffered: 0 };
                }
            }
        }
        // Whatever is buffered is less than one whole frame.
        assert!(
            d.buffered() < HEADER_LEN + max_body as usize + 1,
            "decoder holds {} bytes with no frame ready",
            d.buffered()
        );
    }
    Decoded { frames, error: None, buffered: d.buffered() }
}

/// Fuzz target `decoder`: raw bytes into [`Decoder`]. Checks that the
/// frames do not depend on the chunking, that they re-encode to exactly the
/// input they came from, and that errors are the right ones at the right
/// place.
pub fn decoder(data: &[u8]) {
    let [sel, seed, input @ ..] = data else { return };
    let max_body = match sel % 4 {
        0 => 0,
        1 => 16,
        2 => 4096,
        _ => 1 << 20,
    };
    let whole = decode_chunks(max_body, &[input]);
    let chunked = decode_chunks(max_body, &Chunker::new(*seed).split(input));
    assert_eq!(whole, chunked, "chunking changed the decoding");
    let bytewise = decode_chunks(max_body, &input.chunks(1).collect::<Vec<_>>());
    assert_eq!(whole, bytewise, "byte-by-byte input changed the decoding");

    let mut encoded = Vec::new();
    for f in &whole.frames {
        assert_eq!(f.header.body_len() as usize, f.body.len());
        assert!(f.body.len() <= max_body as usize);
        encoded.extend_from_slice(&f.header.encode());
        encoded.extend_from_slice(&f.body);
    }
    assert_eq!(&input[..encoded.len()], &encoded[..], "frames do not re-encode to the input");
    let rest = &input[encoded.len()..];
    match whole.error {
        None => {
            assert_eq!(whole.buffered, rest.len(), "bytes lost or invented");
            if rest.len() >= HEADER_LEN {
                // Only a body can be incomplete.
                let h = Header::decode(rest[..HEADER_LEN].try_into().unwrap()).unwrap();
                assert!(rest.len() < HEADER_LEN + h.body_len() as usize);
            }
        }
        Some(e) => {
            let raw: [u8; HEADER_LEN] =
                rest[..HEADER_LEN].try_into().expect("error without header");
            let expected = match Header::decode(&raw) {
                Err(e) => e,
                Ok(h) => {
                    assert!(h.body_len() > max_body, "rejected a valid header {h:?}");
                    FrameError::BodyTooLarge { len: h.body_len(), max: max_body }
                }
            };
            assert_eq!(e, expected);
        }
    }
}

/// Settings byte of the [`connection`] harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnSettings(pub u8);

impl ConnSettings {
    /// Bit 0: the connection is the server (else the client).
    pub const SERVER: u8 = 1;
    /// Bit 1: short timers (see [`Setup::timers`]); time passes between chunks.
    pub const TIMERS: u8 = 2;
    /// Bit 2: the application reads data as soon as it is readable.
    pub const CONSUME: u8 = 4;
    /// Bit 3: small limits (see [`Setup::small_limits`]).
    pub const SMALL: u8 = 8;
    /// Bit 4: echo application: opens a stream of its own, reads and echoes
    /// data and half-closes when the peer does.
    pub const ECHO: u8 = 16;
    /// Bit 5: our output is never read (the peer stopped reading the
    /// transport): nothing is transmitted until the end.
    pub const NO_TRANSMIT: u8 = 32;
    /// Bit 6: big windows and auto-tuning (see [`Setup::big_window`]).
    pub const BIG: u8 = 64;

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn setup(self) -> Setup {
        Setup {
            timers: self.has(Self::TIMERS),
            big_window: self.has(Self::BIG),
            small_limits: self.has(Self::SMALL),
            auto_read: [self.has(Self::CONSUME); 2],
            frame_size: self.0 >> 7,
        }
    }
}

/// One connection under test and its minimal application.
struct Single {
    conn: Connection,
    checker: EventChecker,
    settings: ConnSettings,
    max_frame: usize,
    now: Instant,
    fin_sent: BTreeSet<StreamId>,
    transmitted: usize,
}

impl Single {
    fn step(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            if let Err(e) = self.checker.on_event(&event) {
                panic!("events: {e}");
            }
            self.react(&event);
        }
        if !self.settings.has(ConnSettings::NO_TRANSMIT) {
            self.transmit();
        }
        if let Err(e) = self.conn.check_invariants() {
            panic!("invariants: {e}");
        }
    }

    fn react(&mut self, event: &Event) {
        let echo = self.settings.has(ConnSettings::ECHO);
        match event {
            Event::Readable { id } if echo || self.settings.has(ConnSettings::CONSUME) => {
                self.read_out(*id, echo);
            }
            Event::PeerHalfClosed { id } if echo => {
                // Events report the past: later input may have reset the
                // stream already, or ended it (our FIN was out).
                match self.conn.close_write(*id) {
                    Ok(()) | Err(CloseWriteError::Reset(_)) => {}
                    Err(e) => panic!("close_write after PeerHalfClosed on {id}: {e:?}"),
                }
            }
            _ => {}
        }
    }

    /// Reads everything readable on `id` (answers that are not data, such
    /// as the end or a reset, are the events' business), echoing it back.
    fn read_out(&mut self, id: StreamId, echo: bool) {
        while let Ok(Some(data)) = self.conn.read(id, usize::MAX) {
            if echo {
                match self.conn.send(id, &data) {
                    Ok(_) | Err(SendError::WriteClosed) | Err(SendError::Reset(_)) => {}
                    Err(e) => panic!("echo on {id}: {e:?}"),
                }
            }
        }
    }

    fn transmit(&mut self) {
        while let Some(t) = self.conn.poll_transmit() {
            let h = Header::decode(&t.header).expect("we transmit valid headers");
            assert_eq!(h.body_len() as usize, t.body.len(), "header and body disagree");
            assert!(t.body.len() <= self.max_frame, "body over max_frame_size");
            if matches!(h.frame_type, FrameType::Data | FrameType::WindowUpdate)
                && h.flags.contains(Flags::FIN)
            {
                assert!(self.fin_sent.insert(h.stream_id), "second FIN on {}", h.stream_id);
            }
            self.transmitted += t.len();
        }
    }

    fn tick(&mut self, d: Duration) {
        self.now += d;
        self.conn.handle_timeout(self.now);
        if let Err(e) = check_timers_after(&self.conn, self.now) {
            panic!("{e}");
        }
        self.step();
    }
}

/// Fuzz target `connection`: arbitrary bytes into one [`Connection`], in
/// either role, with arbitrary chunking and timer ticks. Checks the
/// invariants and event consistency after every chunk, and that the
/// connection ends cleanly when the transport closes.
pub fn connection(data: &[u8]) {
    let [settings, seed, input @ ..] = data else { return };
    let settings = ConnSettings(*settings);
    let config = settings.setup().config();
    let role = if settings.has(ConnSettings::SERVER) { Role::Server } else { Role::Client };
    let now = Instant::now();
    let mut s = Single {
        conn: Connection::new(config.clone(), role, now).expect("valid config"),
        checker: EventChecker::new(role),
        settings,
        max_frame: config.max_frame_size as usize,
        now,
        fin_sent: BTreeSet::new(),
        transmitted: 0,
    };
    if settings.has(ConnSettings::ECHO) {
        let id = s.conn.open().expect("first open");
        s.checker.opened_locally(id).unwrap();
        assert_eq!(s.conn.send(id, &[7; 1000]), Ok(1000));
        s.conn.close_write(id).unwrap();
    }
    s.step();
    let mut chunker = Chunker::new(*seed);
    let mut ticks = Rng::new(u64::from(*seed) << 8 | u64::from(settings.0));
    let mut feeder = InputFeeder::new(u64::from(*seed) << 8 | u64::from(!settings.0));
    for chunk in chunker.split(input) {
        feeder.feed(&mut s.conn, s.now, chunk);
        s.step();
        if settings.has(ConnSettings::TIMERS) && ticks.below(4) == 0 {
            s.tick(Duration::from_millis(ticks.below(100)));
        }
    }
    // Let every armed timer fire a few times, then end the transport.
    for _ in 0..4 {
        if let Some(t) = s.conn.poll_timeout() {
            let d = t.saturating_duration_since(s.now);
            s.tick(d);
        }
    }
    s.transmit();
    s.conn.handle_transport_closed();
    s.step();
    if let Err(e) = s.checker.finish() {
        panic!("after transport closed: {e}");
    }
    assert!(s.conn.is_closed());
    assert!(s.conn.poll_transmit().is_none(), "output after the transport closed");
    assert_eq!(s.conn.stream_count(), 0);
}

/// Fuzz target `pair_ops`: a [`Script`] decoded from the bytes, run against
/// a pair with every invariant checked after every step (see
/// [`World`]).
pub fn pair_ops(data: &[u8]) {
    World::run(&Script::from_bytes(data));
}
