//! Benchmarks side by side with the `yamux` crate (issue 5).
//!
//! ```text
//! cargo bench --bench compare --all-features                 # everything
//! cargo bench --bench compare --all-features -- --quick      # scaled down
//! cargo bench --bench compare --all-features -- bulk small   # a subset
//! ```
//!
//! Two levels:
//!
//! * **core**: two of our `Connection`s back to back in one thread. A
//!   "transport" moves bytes from one's `write_transmits` into a buffer and
//!   from the buffer into the other's `handle_input`: two copies per byte, as
//!   a socket makes (into the kernel, out of it). The `yamux` crate gets the
//!   same: two `yamux::Connection`s over `tokio::io::duplex` (also two copies
//!   per byte), driven in one thread by `futures::executor::LocalPool`, the
//!   lightest single-threaded executor there is.
//! * **adapter**: our tokio adapter over `tokio::io::duplex` against the
//!   `yamux` crate over the same duplex, both on a current-thread tokio
//!   runtime (compiled only with the `tokio` feature).
//!
//! Every workload does the same work on both sides and verifies the data on
//! the receiving side (every byte is compared with what was sent). Each
//! measurement is repeated (after a warm-up run), ours and theirs alternating
//! so that noise on the shared machine hits both alike; the median is shown.
//! Memory is measured with a counting global allocator, switched on only
//! around memory measurements.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures::channel::{mpsc, oneshot};
use futures::executor::{LocalPool, LocalSpawner};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use futures::task::LocalSpawnExt;
use futures::StreamExt;
use tokio_util::compat::TokioAsyncReadCompatExt;
use yamux_proto::{Config, Connection, Event, OpenError, Role, StreamId};

// ---------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------

/// Counts live heap bytes while `COUNTING` is on. Off, it costs one relaxed
/// load per call, so it does not tilt the timing workloads.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// `--full-verify`: compare every bulk byte (default: exact length and
/// 8 bytes at every KiB of the stream).
static FULL_VERIFY: AtomicBool = AtomicBool::new(false);
/// `--ours-only`: run only our side (for profiling).
static OURS_ONLY: AtomicBool = AtomicBool::new(false);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Net heap growth while `f` runs (frees of older blocks count as negative).
fn heap_growth<R>(f: impl FnOnce() -> R) -> (R, isize) {
    LIVE.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let r = f();
    COUNTING.store(false, Ordering::SeqCst);
    (r, LIVE.load(Ordering::SeqCst))
}

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// Bulk writes are this big.
const BLOCK: usize = 64 * KIB;
/// Small messages, request/response and per-frame messages are this big.
const MSG: usize = 64;
/// Most bytes the in-memory transport moves per write (for us: per
/// `write_transmits`; for the yamux crate: the duplex buffer size).
const WIRE: usize = 256 * KIB;

/// Workload sizes; `--quick` divides them.
#[derive(Clone, Debug)]
struct Scale {
    bulk_bytes: usize,
    small_msgs: usize,
    rr_trips: usize,
    churn_streams: usize,
    churn_bytes: usize,
    churn_concurrency: usize,
    fanout_streams: usize,
    fanout_rounds: usize,
    fanout_msg: usize,
    idle_streams: usize,
    frame_counts: Vec<usize>,
    /// Largest stream count the yamux crate is measured with for the
    /// per-frame cost (opening is O(n) per stream there: O(n²) in total).
    yamux_frame_max: usize,
    frames: usize,
    reps: usize,
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    adapter_bulk_bytes: usize,
}

impl Scale {
    fn full() -> Scale {
        Scale {
            bulk_bytes: 512 * MIB,
            small_msgs: 1_000_000,
            rr_trips: 100_000,
            churn_streams: 10_000,
            churn_bytes: KIB,
            churn_concurrency: 256,
            fanout_streams: 10_000,
            fanout_rounds: 16,
            fanout_msg: KIB,
            idle_streams: 10_000,
            frame_counts: vec![1, 1_000, 100_000],
            yamux_frame_max: 10_000,
            frames: 200_000,
            reps: 5,
            adapter_bulk_bytes: 512 * MIB,
        }
    }

    fn quick() -> Scale {
        Scale {
            bulk_bytes: 64 * MIB,
            small_msgs: 125_000,
            rr_trips: 10_000,
            churn_streams: 2_000,
            fanout_streams: 2_000,
            fanout_rounds: 4,
            idle_streams: 2_000,
            frame_counts: vec![1, 1_000, 10_000],
            yamux_frame_max: 1_000,
            frames: 50_000,
            reps: 3,
            adapter_bulk_bytes: 64 * MIB,
            ..Scale::full()
        }
    }
}

// ---------------------------------------------------------------------------
// Data and verification
// ---------------------------------------------------------------------------

/// The bulk source: a pseudo-random buffer; write `i` is a 64 KiB slice of
/// it at an offset that depends on `i`, so reordered or repeated blocks are
/// caught by the receiver.
struct Pattern {
    buf: Bytes,
}

impl Pattern {
    const SPAN: usize = MIB;

    fn new() -> Pattern {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let buf: Vec<u8> = (0..Self::SPAN + BLOCK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Pattern { buf: Bytes::from(buf) }
    }

    fn offset(i: usize) -> usize {
        (i * 4099) % Self::SPAN
    }

    /// Write number `i`, by reference.
    fn block(&self, i: usize) -> Bytes {
        let off = Self::offset(i);
        self.buf.slice(off..off + BLOCK)
    }
}

/// Checks a bulk byte stream against the pattern: its exact length, and
/// either every byte (`--full-verify`) or 8 bytes at every KiB of the
/// stream, which catches lost, repeated, reordered or misplaced chunks at a
/// fraction of the cost (the full comparison costs about as much as our
/// whole transfer and would mostly measure itself).
struct BulkVerifier<'a> {
    pat: &'a Pattern,
    pos: usize,
    total: usize,
    full: bool,
}

impl<'a> BulkVerifier<'a> {
    const SAMPLE_EVERY: usize = KIB;
    const SAMPLE: usize = 8;

    fn new(pat: &'a Pattern, total: usize) -> Self {
        BulkVerifier { pat, pos: 0, total, full: FULL_VERIFY.load(Ordering::Relaxed) }
    }

    /// The expected bytes at stream offsets `from..from + len`, within one block.
    fn expected(&self, from: usize, len: usize) -> &[u8] {
        let off = Pattern::offset(from / BLOCK) + from % BLOCK;
        &self.pat.buf[off..off + len]
    }

    fn feed(&mut self, chunk: &[u8]) {
        let end = self.pos + chunk.len();
        assert!(end <= self.total, "bulk: more bytes than sent");
        if self.full {
            let mut p = self.pos;
            while p < end {
                let take = (end - p).min(BLOCK - p % BLOCK);
                let got = &chunk[p - self.pos..p - self.pos + take];
                assert!(got == self.expected(p, take), "bulk: corrupt data");
                p += take;
            }
        } else {
            // Every sample window [q, q + 8) with q a multiple of 1 KiB that
            // overlaps this chunk; its overlap is compared.
            let mut q = self.pos / Self::SAMPLE_EVERY * Self::SAMPLE_EVERY;
            while q < end {
                let (lo, hi) = (q.max(self.pos), (q + Self::SAMPLE).min(end));
                if lo < hi {
                    let got = &chunk[lo - self.pos..hi - self.pos];
                    assert!(got == self.expected(lo, hi - lo), "bulk: corrupt data at {lo}");
                }
                q += Self::SAMPLE_EVERY;
            }
        }
        self.pos = end;
    }

    fn finish(&self) {
        assert_eq!(self.pos, self.total, "bulk: bytes missing");
    }
}

/// A 64-byte message: its tag, little-endian, eight times.
fn message(tag: u64) -> [u8; MSG] {
    let mut m = [0u8; MSG];
    for w in m.chunks_exact_mut(8) {
        w.copy_from_slice(&tag.to_le_bytes());
    }
    m
}

/// Checks a stream of 64-byte messages whose tags are `first`, `first +
/// stride`, `first + 2 * stride`, …, whatever the chunking.
#[derive(Clone)]
struct MsgVerifier {
    carry: [u8; MSG],
    carry_len: usize,
    count: u64,
    first: u64,
    stride: u64,
}

impl MsgVerifier {
    fn new(first: u64, stride: u64) -> Self {
        MsgVerifier { carry: [0; MSG], carry_len: 0, count: 0, first, stride }
    }

    fn feed(&mut self, mut chunk: &[u8]) {
        if self.carry_len > 0 {
            let take = chunk.len().min(MSG - self.carry_len);
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&chunk[..take]);
            self.carry_len += take;
            chunk = &chunk[take..];
            if self.carry_len < MSG {
                return;
            }
            let m = self.carry;
            self.check(&m);
            self.carry_len = 0;
        }
        let mut whole = chunk.chunks_exact(MSG);
        for m in &mut whole {
            self.check(m);
        }
        let rest = whole.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
    }

    fn check(&mut self, m: &[u8]) {
        let tag = self.first + self.count * self.stride;
        assert!(m == message(tag), "message {tag}: corrupt or out of order");
        self.count += 1;
    }

    /// Whole messages seen (and no partial one pending).
    fn messages(&self) -> u64 {
        assert_eq!(self.carry_len, 0, "partial message at the end");
        self.count
    }
}

/// The filler tagged payloads are made of (after their 8-byte tag).
fn filler() -> &'static [u8] {
    static FILLER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    FILLER.get_or_init(|| (0..BLOCK).map(|i| (i as u8).wrapping_mul(151).wrapping_add(7)).collect())
}

/// A payload of `len` bytes tagged with `tag` (its first 8 bytes) over a
/// fixed filler, so the receiver can tell streams and rounds apart.
fn tagged(tag: u64, len: usize) -> Vec<u8> {
    let mut v = filler()[..len].to_vec();
    let t = tag.to_le_bytes();
    let n = len.min(8);
    v[..n].copy_from_slice(&t[..n]);
    v
}

/// Checks `chunk`, found at offset `off` of a concatenation of tagged
/// payloads of `len` bytes whose tags are given by `tag_at(payload index)`.
fn check_tagged(off: usize, chunk: &[u8], len: usize, tag_at: impl Fn(usize) -> u64) -> bool {
    let mut pos = off;
    let mut rest = chunk;
    while !rest.is_empty() {
        let (k, within) = (pos / len, pos % len);
        let take = rest.len().min(len - within);
        let part = &rest[..take];
        // The tag bytes this part covers, then the filler.
        let tag = tag_at(k).to_le_bytes();
        let in_tag = 8usize.saturating_sub(within).min(take);
        if part[..in_tag] != tag[within.min(8)..within.min(8) + in_tag]
            || part[in_tag..] != filler()[within + in_tag..within + take]
        {
            return false;
        }
        pos += take;
        rest = &rest[take..];
    }
    true
}

// ---------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------

/// Runs each side once to warm up, then `reps` times alternating, and
/// returns the medians.
fn measure_pair(
    reps: usize,
    mut ours: impl FnMut() -> Duration,
    mut theirs: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    if OURS_ONLY.load(Ordering::Relaxed) {
        // For profiling: ours alone (theirs reported as 1 s).
        let runs: Vec<Duration> = (0..=reps).map(|_| ours()).collect();
        if std::env::var_os("BENCH_TRACE").is_some() {
            eprintln!("runs: {runs:?}");
        }
        return (median(runs[1..].to_vec()), Duration::from_secs(1));
    }
    ours();
    theirs();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        a.push(ours());
        b.push(theirs());
    }
    (median(a), median(b))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One row of the result table.
struct Row {
    level: &'static str,
    workload: String,
    ours: String,
    theirs: String,
    /// How many times better ours is (theirs' cost / ours).
    ratio: f64,
    target: &'static str,
    met: Option<bool>,
}

fn mib_s(bytes: usize, d: Duration) -> String {
    format!("{:.0} MiB/s", bytes as f64 / MIB as f64 / d.as_secs_f64())
}

fn per_op(ops: usize, d: Duration) -> String {
    let ns = d.as_nanos() as f64 / ops as f64;
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn rate(ops: usize, d: Duration) -> String {
    format!("{:.2} M/s", ops as f64 / d.as_secs_f64() / 1e6)
}

fn ratio(ours: Duration, theirs: Duration) -> f64 {
    theirs.as_secs_f64() / ours.as_secs_f64()
}

fn print_row(r: &Row) {
    let met = match r.met {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "",
    };
    let ratio = if r.ratio.is_nan() { "n/a".to_string() } else { format!("{:.2}×", r.ratio) };
    println!(
        "| {} | {} | {} | {} | {} | {} | {} |",
        r.level, r.workload, r.ours, r.theirs, ratio, r.target, met
    );
}

// ---------------------------------------------------------------------------
// Our core, back to back
// ---------------------------------------------------------------------------

/// Two of our connections and the "transport" between them.
struct Core {
    a: Connection,
    b: Connection,
    wire: Wire,
}

/// How frames travel from one connection to the other.
enum Wire {
    /// `poll_transmit` copied into this buffer, which the peer's
    /// `handle_input_buf` takes frames out of: one copy per byte, the
    /// harness's, as the issue describes the core level and as the tokio
    /// adapter drives the core (it reads into a buffer and hands it over).
    OneCopy(BytesMut),
    /// `write_transmits` into this buffer, then the peer's
    /// `handle_input(&[u8])`, which copies bodies of 16 KiB or more into its
    /// own buffer: two copies per byte for large frames (a caller that reads
    /// into a buffer it cannot give away).
    TwoCopy(Vec<u8>),
}

impl Core {
    fn new(config: Config) -> Core {
        let now = Instant::now();
        Core {
            a: Connection::new(config.clone(), Role::Client, now).expect("config"),
            b: Connection::new(config, Role::Server, now).expect("config"),
            wire: Wire::OneCopy(BytesMut::with_capacity(WIRE)),
        }
    }

    /// Moves at most `WIRE` bytes of frames from `from` to `to`; returns
    /// whether any moved.
    fn transfer(from: &mut Connection, to: &mut Connection, wire: &mut Wire, now: Instant) -> bool {
        match wire {
            Wire::OneCopy(buf) => {
                let mut moved = 0;
                while moved < WIRE {
                    let Some(t) = from.poll_transmit() else { break };
                    buf.extend_from_slice(&t.header);
                    buf.extend_from_slice(&t.body);
                    moved += t.len();
                }
                if moved > 0 {
                    to.handle_input_buf(now, buf);
                    // Only whole frames were written.
                    assert!(buf.is_empty(), "bytes left in the wire");
                }
                moved > 0
            }
            Wire::TwoCopy(buf) => {
                buf.clear();
                if from.write_transmits(buf, WIRE) == 0 {
                    return false;
                }
                to.handle_input(now, buf);
                true
            }
        }
    }

    /// One round of the transport: what `a` has goes to `b` (at most `WIRE`
    /// bytes), `b`'s events go to `hb`, then the same the other way.
    /// Returns whether anything moved.
    fn pump(
        &mut self,
        mut hb: impl FnMut(&mut Connection, Event),
        mut ha: impl FnMut(&mut Connection, Event),
    ) -> bool {
        let now = Instant::now();
        let mut moved = Core::transfer(&mut self.a, &mut self.b, &mut self.wire, now);
        while let Some(e) = self.b.poll_event() {
            moved = true;
            hb(&mut self.b, e);
        }
        moved |= Core::transfer(&mut self.b, &mut self.a, &mut self.wire, now);
        while let Some(e) = self.a.poll_event() {
            moved = true;
            ha(&mut self.a, e);
        }
        moved
    }

    /// Pumps until nothing moves; the default application consumes data.
    fn settle(&mut self) {
        while self.pump(consume_all, consume_all) {}
    }

    /// Opens `n` streams from `a` and establishes them (ACKed, accepted).
    /// With `exchange`, one byte goes each way first, as the yamux crate
    /// needs to establish a stream.
    fn establish(&mut self, n: usize, exchange: bool) -> Vec<StreamId> {
        let mut ids = Vec::with_capacity(n);
        let echo = |c: &mut Connection, e: Event| {
            if let Event::Readable { id } = e {
                while let Ok(Some(data)) = c.read(id, usize::MAX) {
                    c.send(id, &data).expect("echo");
                }
            }
        };
        while ids.len() < n {
            match self.a.open() {
                Ok(id) => {
                    if exchange {
                        self.a.send(id, &[1]).expect("send");
                    }
                    ids.push(id);
                }
                Err(OpenError::Blocked) => {
                    self.pump(echo, consume_all);
                }
                Err(e) => panic!("open: {e}"),
            }
        }
        while self.pump(echo, consume_all) {}
        assert_eq!(self.b.stream_count(), n, "streams not all accepted");
        ids
    }
}

/// Consumes data, ignores everything else.
fn consume_all(c: &mut Connection, e: Event) {
    if let Event::Readable { id } = e {
        while let Ok(Some(_data)) = c.read(id, usize::MAX) {}
    }
}

/// Config for `n` streams and more: the stream limit and the connection
/// receive budget raised to match.
fn many_streams_config(n: usize) -> Config {
    let mut c = Config::default();
    c.max_streams = n + 16;
    c.connection_receive_window = (n as u64 + 16) * u64::from(c.initial_stream_window);
    c
}

/// Index of one of our stream ids opened by the client (1, 3, 5, …).
fn client_index(id: StreamId) -> usize {
    (id.0 as usize - 1) / 2
}

fn ours_bulk(pat: &Pattern, total: usize, zero_copy: bool, two_copy: bool) -> Duration {
    let mut core = Core::new(Config::default());
    if two_copy {
        core.wire = Wire::TwoCopy(Vec::with_capacity(WIRE));
    }
    let writes = total / BLOCK;
    let start = Instant::now();
    let id = core.a.open().expect("open");
    let mut next = 0;
    let mut pending: Option<Bytes> = None;
    let mut closed = false;
    let mut verifier = BulkVerifier::new(pat, total);
    let mut done = false;
    while !done {
        // The application writes as long as the stream takes it.
        loop {
            if pending.is_none() {
                if next == writes {
                    if !closed {
                        core.a.close_write(id).expect("close");
                        closed = true;
                    }
                    break;
                }
                pending = Some(pat.block(next));
                next += 1;
            }
            let p = pending.as_mut().expect("pending");
            let n = if zero_copy {
                core.a.send_bytes(id, p.clone()).expect("send")
            } else {
                core.a.send(id, p).expect("send")
            };
            p.advance(n);
            if !p.is_empty() {
                break;
            }
            pending = None;
        }
        let moved = core.pump(
            |b, e| match e {
                Event::Readable { id } => {
                    while let Ok(Some(data)) = b.read(id, usize::MAX) {
                        verifier.feed(&data);
                    }
                }
                Event::PeerHalfClosed { .. } => done = true,
                _ => {}
            },
            |_, _| {},
        );
        assert!(moved || done, "bulk: stalled");
    }
    verifier.finish();
    start.elapsed()
}

fn ours_small(count: usize) -> Duration {
    let mut core = Core::new(Config::default());
    let start = Instant::now();
    let id = core.a.open().expect("open");
    let mut next = 0u64;
    let mut partial: Option<([u8; MSG], usize)> = None;
    let mut closed = false;
    let mut verifier = MsgVerifier::new(0, 1);
    let mut done = false;
    while !done {
        loop {
            let (m, off) = match partial.take() {
                Some(p) => p,
                None if next < count as u64 => {
                    next += 1;
                    (message(next - 1), 0)
                }
                None => {
                    if !closed {
                        core.a.close_write(id).expect("close");
                        closed = true;
                    }
                    break;
                }
            };
            let n = core.a.send(id, &m[off..]).expect("send");
            if off + n < MSG {
                partial = Some((m, off + n));
                break;
            }
        }
        let moved = core.pump(
            |b, e| match e {
                Event::Readable { id } => {
                    while let Ok(Some(data)) = b.read(id, usize::MAX) {
                        verifier.feed(&data);
                    }
                }
                Event::PeerHalfClosed { .. } => done = true,
                _ => {}
            },
            |_, _| {},
        );
        assert!(moved || done, "small: stalled");
    }
    assert_eq!(verifier.messages(), count as u64);
    start.elapsed()
}

fn ours_request_response(trips: usize) -> Duration {
    let mut core = Core::new(Config::default());
    let start = Instant::now();
    let id = core.a.open().expect("open");
    let mut server = MsgVerifier::new(0, 1);
    let mut client = MsgVerifier::new(0, 1);
    for i in 0..trips as u64 {
        assert_eq!(core.a.send(id, &message(i)).expect("send"), MSG);
        // Until the answer is back: the server echoes each whole message.
        while client.count <= i {
            let moved = core.pump(
                |b, e| {
                    if let Event::Readable { id } = e {
                        while let Ok(Some(data)) = b.read(id, usize::MAX) {
                            server.feed(&data);
                            b.send(id, &data).expect("echo");
                        }
                    }
                },
                |a, e| {
                    if let Event::Readable { id } = e {
                        while let Ok(Some(data)) = a.read(id, usize::MAX) {
                            client.feed(&data);
                        }
                    }
                },
            );
            assert!(moved, "request/response: stalled");
        }
    }
    assert_eq!(client.messages(), trips as u64);
    start.elapsed()
}

/// Per-stream progress in the churn workload.
#[derive(Clone, Copy, Default)]
struct ChurnState {
    received: usize,
    fin: bool,
}

fn ours_churn(streams: usize, bytes: usize, concurrency: usize) -> Duration {
    let mut core = Core::new(Config::default());
    let mut server = vec![ChurnState::default(); streams];
    let mut client = vec![ChurnState::default(); streams];
    let (mut opened, mut closed, mut active) = (0, 0, 0);
    let start = Instant::now();
    while closed < streams {
        while active < concurrency && opened < streams {
            match core.a.open() {
                Ok(id) => {
                    let payload = tagged(u64::from(id.0), bytes);
                    assert_eq!(core.a.send(id, &payload).expect("send"), bytes);
                    core.a.close_write(id).expect("close");
                    opened += 1;
                    active += 1;
                }
                Err(OpenError::Blocked) => break,
                Err(e) => panic!("open: {e}"),
            }
        }
        let moved = core.pump(
            |b, e| match e {
                Event::Readable { id } => {
                    while let Ok(Some(data)) = b.read(id, usize::MAX) {
                        let s = &mut server[client_index(id)];
                        assert!(check_tagged(s.received, &data, bytes, |_| u64::from(id.0)));
                        s.received += data.len();
                    }
                }
                Event::PeerHalfClosed { id } => {
                    let s = &mut server[client_index(id)];
                    assert_eq!(s.received, bytes, "churn: request incomplete");
                    s.fin = true;
                    let reply = tagged(u64::from(id.0) | 1 << 40, bytes);
                    assert_eq!(b.send(id, &reply).expect("reply"), bytes);
                    b.close_write(id).expect("close");
                }
                _ => {}
            },
            |a, e| match e {
                Event::Readable { id } => {
                    while let Ok(Some(data)) = a.read(id, usize::MAX) {
                        let s = &mut client[client_index(id)];
                        let tag = u64::from(id.0) | 1 << 40;
                        assert!(check_tagged(s.received, &data, bytes, |_| tag));
                        s.received += data.len();
                    }
                }
                Event::PeerHalfClosed { id } => {
                    let s = &mut client[client_index(id)];
                    assert_eq!(s.received, bytes, "churn: reply incomplete");
                    s.fin = true;
                }
                Event::StreamClosed { id } => {
                    assert!(client[client_index(id)].fin, "churn: closed before its reply");
                    closed += 1;
                    active -= 1;
                }
                _ => {}
            },
        );
        assert!(moved, "churn: stalled");
    }
    assert!(server.iter().all(|s| s.fin));
    start.elapsed()
}

fn ours_fanout(streams: usize, rounds: usize, msg: usize) -> Duration {
    let mut core = Core::new(many_streams_config(streams));
    let ids = core.establish(streams, false);
    let mut received = vec![0usize; streams];
    let mut finished = 0;
    let per_stream = rounds * msg;
    let mut hb = |b: &mut Connection, e: Event| match e {
        Event::Readable { id } => {
            while let Ok(Some(data)) = b.read(id, usize::MAX) {
                let got = &mut received[client_index(id)];
                let base = u64::from(id.0) << 20;
                assert!(check_tagged(*got, &data, msg, |k| base | k as u64));
                *got += data.len();
            }
        }
        Event::PeerHalfClosed { id } => {
            assert_eq!(received[client_index(id)], per_stream, "fan-out: data missing");
            finished += 1;
        }
        _ => {}
    };
    let start = Instant::now();
    // Round-robin: one message to every stream per round; the transport is
    // flushed after each round.
    for r in 0..rounds {
        for &id in &ids {
            let m = tagged((u64::from(id.0) << 20) | r as u64, msg);
            let mut off = 0;
            loop {
                off += core.a.send(id, &m[off..]).expect("send");
                if off == msg {
                    break;
                }
                // The send buffer is full: let the transport drain it.
                core.pump(&mut hb, |_, _| {});
            }
            if r + 1 == rounds {
                core.a.close_write(id).expect("close");
            }
        }
        while core.pump(&mut hb, |_, _| {}) {}
    }
    let elapsed = start.elapsed();
    // `hb` borrows `finished` mutably until its last use above.
    assert_eq!(finished, streams);
    elapsed
}

/// Heap bytes per established idle stream, per endpoint (both connections
/// hold each stream), including what the application keeps per stream.
fn ours_idle_memory(streams: usize, exchange: bool) -> f64 {
    let mut core = Core::new(many_streams_config(streams));
    core.settle();
    let (ids, grown) = heap_growth(|| {
        let ids = core.establish(streams, exchange);
        core.settle();
        ids
    });
    assert_eq!(ids.len(), streams);
    let app = (streams * std::mem::size_of::<StreamId>()) as isize;
    (grown - (ids.capacity() * std::mem::size_of::<StreamId>()) as isize + app) as f64
        / (2 * streams) as f64
}

/// Cost per Data frame with `open` streams established: `frames` messages
/// of 64 bytes, each sent, transmitted, received and delivered as its own
/// frame and its own `Data` event (so the work per frame is the same
/// whatever the spread). `spread` sends them round-robin over every open
/// stream, otherwise all on one.
fn ours_per_frame(open: usize, frames: usize, spread: bool) -> Duration {
    let mut core = Core::new(many_streams_config(open));
    let ids = core.establish(open, false);
    let mut verifiers: Vec<MsgVerifier> =
        (0..open)
            .map(|k| {
                if spread {
                    MsgVerifier::new(k as u64, open as u64)
                } else {
                    MsgVerifier::new(0, 1)
                }
            })
            .collect();
    let mut wire = Vec::with_capacity(WIRE);
    let mut events = 0;
    let start = Instant::now();
    let mut now = start;
    for f in 0..frames {
        if f % 1024 == 0 {
            now = Instant::now();
        }
        let k = if spread { f % open } else { 0 };
        assert_eq!(core.a.send(ids[k], &message(f as u64)).expect("send"), MSG);
        wire.clear();
        core.a.write_transmits(&mut wire, usize::MAX);
        core.b.handle_input(now, &wire);
        while let Some(e) = core.b.poll_event() {
            if let Event::Readable { id } = e {
                while let Ok(Some(data)) = core.b.read(id, usize::MAX) {
                    verifiers[client_index(id)].feed(&data);
                    events += 1;
                }
            }
        }
        wire.clear();
        if core.b.write_transmits(&mut wire, usize::MAX) > 0 {
            core.a.handle_input(now, &wire);
            while core.a.poll_event().is_some() {}
        }
    }
    let elapsed = start.elapsed();
    let total: u64 = verifiers.iter().map(MsgVerifier::messages).sum();
    assert_eq!(total, frames as u64, "per-frame: messages missing");
    assert_eq!(events, frames, "per-frame: frames coalesced");
    elapsed
}

// ---------------------------------------------------------------------------
// The yamux crate, in one thread
// ---------------------------------------------------------------------------

type YStream = yamux::Stream;

#[path = "support/yamux_driver.rs"]
mod yamux_driver;
use yamux_driver::Opener;

/// Two `yamux::Connection`s over a duplex, each driven by its own task.
/// The client's serves open requests; the server's hands inbound streams
/// over a channel.
fn yamux_pair(
    spawn: impl Fn(std::pin::Pin<Box<dyn Future<Output = ()>>>),
    config: yamux::Config,
) -> (Opener, mpsc::UnboundedReceiver<YStream>) {
    let (a, b) = tokio::io::duplex(WIRE);
    let client = yamux::Connection::new(a.compat(), config.clone(), yamux::Mode::Client);
    let server = yamux::Connection::new(b.compat(), config, yamux::Mode::Server);
    let (opener, driver) = yamux_driver::client(client);
    spawn(Box::pin(driver));
    let (in_tx, in_rx) = mpsc::unbounded();
    spawn(Box::pin(yamux_driver::server(server, move |s| {
        let _ = in_tx.unbounded_send(s);
    })));
    (opener, in_rx)
}

fn yamux_config_for(n: usize) -> yamux::Config {
    let mut c = yamux::Config::default();
    let streams = n.max(512);
    c.set_max_connection_receive_window(Some((streams + 16) * 256 * KIB));
    c.set_max_num_streams(streams + 16);
    c
}

/// Runs `body` on a fresh `LocalPool` with a yamux pair; `body` measures
/// its own time (set-up excluded).
fn on_local_pool<F, Fut>(config: yamux::Config, body: F) -> Duration
where
    F: FnOnce(Opener, mpsc::UnboundedReceiver<YStream>, LocalSpawner) -> Fut,
    Fut: Future<Output = Duration>,
{
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let s = spawner.clone();
    let (opener, inbound) = yamux_pair(move |f| s.spawn_local(f).expect("spawn"), config);
    pool.run_until(body(opener, inbound, spawner))
}

/// Reads `r` to its end, handing each chunk to `f`; returns the bytes read.
async fn read_all<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    mut f: impl FnMut(&[u8]),
) -> usize {
    let mut total = 0;
    loop {
        let n = r.read(buf).await.expect("read");
        if n == 0 {
            return total;
        }
        f(&buf[..n]);
        total += n;
    }
}

/// Opens `n` streams and establishes them with one byte each way (the
/// yamux crate acknowledges a stream only with the first frame its
/// accepting side sends, and allows 256 unacknowledged streams). The server
/// streams go to `handler`, which first echoes the byte.
async fn yamux_establish<H, HF>(
    opener: &Opener,
    inbound: mpsc::UnboundedReceiver<YStream>,
    spawner: &LocalSpawner,
    n: usize,
    handler: H,
) -> Vec<YStream>
where
    H: Fn(YStream) -> HF + 'static,
    HF: Future<Output = ()> + 'static,
{
    let handler = Rc::new(handler);
    spawner
        .spawn_local(inbound.take(n).for_each_concurrent(None, move |mut s| {
            let h = handler.clone();
            async move {
                let mut one = [0u8; 1];
                s.read_exact(&mut one).await.expect("hello");
                s.write_all(&one).await.expect("hello back");
                h(s).await
            }
        }))
        .expect("spawn");
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = opener.open().await;
        s.write_all(&[1]).await.expect("hello");
        streams.push(s);
    }
    for s in &mut streams {
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.expect("hello back");
    }
    streams
}

async fn yamux_fanout(
    opener: Opener,
    inbound: mpsc::UnboundedReceiver<YStream>,
    spawner: LocalSpawner,
    n: usize,
    rounds: usize,
    msg: usize,
) -> Duration {
    let finished = Rc::new(Cell::new(0usize));
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let done_tx = Rc::new(RefCell::new(Some(done_tx)));
    let f = finished.clone();
    let mut streams = yamux_establish(&opener, inbound, &spawner, n, move |mut s| {
        let (f, done_tx) = (f.clone(), done_tx.clone());
        async move {
            let base = u64::from(s.id().val()) << 20;
            let mut buf = vec![0u8; 4 * KIB];
            let mut got = 0;
            read_all(&mut s, &mut buf, |c| {
                assert!(check_tagged(got, c, msg, |k| base | k as u64));
                got += c.len();
            })
            .await;
            assert_eq!(got, rounds * msg, "fan-out: data missing");
            f.set(f.get() + 1);
            if f.get() == n {
                let _ = done_tx.borrow_mut().take().expect("once").send(());
            }
        }
    })
    .await;
    let start = Instant::now();
    for r in 0..rounds {
        for s in &mut streams {
            let m = tagged((u64::from(s.id().val()) << 20) | r as u64, msg);
            s.write_all(&m).await.expect("write");
            if r + 1 == rounds {
                s.close().await.expect("close");
            }
        }
    }
    done_rx.await.expect("all streams finished");
    assert_eq!(finished.get(), n);
    start.elapsed()
}

async fn yamux_per_frame(
    opener: Opener,
    inbound: mpsc::UnboundedReceiver<YStream>,
    spawner: LocalSpawner,
    open: usize,
    frames: usize,
    spread: bool,
) -> Duration {
    let total = Rc::new(Cell::new(0u64));
    let finished = Rc::new(Cell::new(0usize));
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let done_tx = Rc::new(RefCell::new(Some(done_tx)));
    let (t, f) = (total.clone(), finished.clone());
    let mut streams = yamux_establish(&opener, inbound, &spawner, open, move |mut s| {
        let (t, f, done_tx) = (t.clone(), f.clone(), done_tx.clone());
        async move {
            let k = (s.id().val() as u64 - 1) / 2;
            let mut v =
                if spread { MsgVerifier::new(k, open as u64) } else { MsgVerifier::new(0, 1) };
            let mut buf = vec![0u8; 4 * KIB];
            read_all(&mut s, &mut buf, |c| v.feed(c)).await;
            t.set(t.get() + v.messages());
            f.set(f.get() + 1);
            if f.get() == open {
                let _ = done_tx.borrow_mut().take().expect("once").send(());
            }
        }
    })
    .await;
    let start = Instant::now();
    for i in 0..frames {
        let k = if spread { i % open } else { 0 };
        streams[k].write_all(&message(i as u64)).await.expect("write");
    }
    for s in &mut streams {
        s.close().await.expect("close");
    }
    done_rx.await.expect("all streams finished");
    let elapsed = start.elapsed();
    assert_eq!(total.get(), frames as u64, "per-frame: messages missing");
    elapsed
}

/// Heap bytes per established idle stream, per endpoint, including the
/// `Stream` handles the application holds.
fn yamux_idle_memory(n: usize) -> f64 {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let s = spawner.clone();
    let (opener, inbound) =
        yamux_pair(move |f| s.spawn_local(f).expect("spawn"), yamux_config_for(n));
    pool.run_until_stalled();
    let (streams, grown) = heap_growth(|| {
        let server_streams = Rc::new(RefCell::new(Vec::with_capacity(n)));
        let keep = server_streams.clone();
        let streams = pool.run_until(yamux_establish(&opener, inbound, &spawner, n, move |s| {
            keep.borrow_mut().push(s);
            async {}
        }));
        pool.run_until_stalled();
        assert_eq!(server_streams.borrow().len(), n);
        (streams, server_streams)
    });
    let handle = std::mem::size_of::<YStream>();
    // The two handle vectors are counted by the allocator; replace their
    // capacity by exactly one handle per stream.
    let vecs = (streams.0.capacity() + streams.1.borrow().capacity()) * handle;
    (grown - vecs as isize + (2 * n * handle) as isize) as f64 / (2 * n) as f64
}

// ---------------------------------------------------------------------------
// Adapter level: our tokio adapter and the yamux crate on one tokio runtime
// ---------------------------------------------------------------------------

/// The stream workloads, written once for both libraries. They need only
/// tokio's I/O traits (a dev-dependency), so the core level runs them for
/// the yamux crate too; only our adapter (`Ours`) needs the `tokio` feature.
mod adapter_level {
    use super::*;
    use tokio::io::{
        AsyncRead as TRead, AsyncReadExt as _, AsyncWrite as TWrite, AsyncWriteExt as _,
    };
    use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};
    #[cfg(feature = "tokio")]
    use yamux_proto::adapter::{self, Session};

    /// A multiplexer as the workloads see it: open, accept, a stream's id.
    pub trait Mux {
        type S: TRead + TWrite + Unpin;
        async fn open(&self) -> Self::S;
        async fn accept(&self) -> Self::S;
        fn id(s: &Self::S) -> u32;
    }

    /// Our tokio adapter: two sessions over a duplex.
    #[cfg(feature = "tokio")]
    pub struct Ours {
        client: Session,
        server: Session,
    }

    #[cfg(feature = "tokio")]
    impl Mux for Ours {
        type S = adapter::Stream;

        async fn open(&self) -> adapter::Stream {
            self.client.open().await.expect("open")
        }

        async fn accept(&self) -> adapter::Stream {
            self.server.accept().await.expect("accept")
        }

        fn id(s: &adapter::Stream) -> u32 {
            s.id().0
        }
    }

    /// The yamux crate over the same duplex; its streams speak futures-io,
    /// `Compat` makes them tokio streams (a zero-cost wrapper).
    pub struct Theirs {
        opener: Opener,
        inbound: RefCell<mpsc::UnboundedReceiver<YStream>>,
    }

    impl Theirs {
        pub fn new(opener: Opener, inbound: mpsc::UnboundedReceiver<YStream>) -> Theirs {
            Theirs { opener, inbound: RefCell::new(inbound) }
        }
    }

    impl Mux for Theirs {
        type S = Compat<YStream>;

        async fn open(&self) -> Compat<YStream> {
            self.opener.open().await.compat()
        }

        async fn accept(&self) -> Compat<YStream> {
            futures::future::poll_fn(|cx| self.inbound.borrow_mut().poll_next_unpin(cx))
                .await
                .expect("inbound")
                .compat()
        }

        fn id(s: &Compat<YStream>) -> u32 {
            s.get_ref().id().val()
        }
    }

    /// Runs `body` on a fresh current-thread runtime, in a `LocalSet` where
    /// both libraries' drivers are spawned the same way.
    fn on_runtime<Fut: Future<Output = Duration>>(body: impl FnOnce() -> Fut) -> Duration {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move { body().await })
    }

    #[cfg(feature = "tokio")]
    pub fn ours<Fut: Future<Output = Duration>>(
        config: Config,
        body: impl FnOnce(Ours) -> Fut,
    ) -> Duration {
        on_runtime(|| {
            let (a, b) = tokio::io::duplex(WIRE);
            let (client, driver) =
                adapter::tokio::new(a, config.clone(), Role::Client).expect("config");
            tokio::task::spawn_local(driver);
            let (server, driver) = adapter::tokio::new(b, config, Role::Server).expect("config");
            tokio::task::spawn_local(driver);
            body(Ours { client, server })
        })
    }

    pub fn theirs<Fut: Future<Output = Duration>>(
        config: yamux::Config,
        body: impl FnOnce(Theirs) -> Fut,
    ) -> Duration {
        on_runtime(|| {
            let (opener, inbound) = yamux_pair(
                |f| {
                    tokio::task::spawn_local(f);
                },
                config,
            );
            body(Theirs::new(opener, inbound))
        })
    }

    async fn read_all<R: TRead + Unpin>(
        r: &mut R,
        buf: &mut [u8],
        mut f: impl FnMut(&[u8]),
    ) -> usize {
        let mut total = 0;
        loop {
            let n = r.read(buf).await.expect("read");
            if n == 0 {
                return total;
            }
            f(&buf[..n]);
            total += n;
        }
    }

    /// The ceiling of the bulk workload: the same writes (64 KiB
    /// `write_all`s of the same pattern, then shutdown) and reads (64 KiB at a
    /// time, same verification) straight over the same `duplex(256 KiB)` on
    /// the same runtime flavour, with no multiplexer. No adapter over this
    /// transport can beat it: it is the transport's two copies per byte and
    /// its wake-ups, nothing else.
    pub fn transport_alone(pat: &Pattern, total: usize) -> Duration {
        on_runtime(|| async move {
            let (mut a, mut b) = tokio::io::duplex(WIRE);
            let start = Instant::now();
            let client = async {
                for i in 0..total / BLOCK {
                    a.write_all(&pat.block(i)).await.expect("write");
                }
                a.shutdown().await.expect("shutdown");
            };
            let server = async {
                let mut verifier = BulkVerifier::new(pat, total);
                let mut buf = vec![0u8; BLOCK];
                read_all(&mut b, &mut buf, |c| verifier.feed(c)).await;
                verifier.finish();
            };
            futures::join!(client, server);
            start.elapsed()
        })
    }

    /// Streams accepted one after the other.
    fn accepted<M: Mux>(m: &M) -> impl futures::Stream<Item = M::S> + '_ {
        futures::stream::unfold(m, |m| async move { Some((m.accept().await, m)) })
    }

    pub async fn bulk<M: Mux>(m: M, pat: &Pattern, total: usize) -> Duration {
        let start = Instant::now();
        let client = async {
            let mut s = m.open().await;
            for i in 0..total / BLOCK {
                s.write_all(&pat.block(i)).await.expect("write");
            }
            s.shutdown().await.expect("shutdown");
            s
        };
        let server = async {
            let mut s = m.accept().await;
            let mut verifier = BulkVerifier::new(pat, total);
            let mut buf = vec![0u8; BLOCK];
            read_all(&mut s, &mut buf, |c| verifier.feed(c)).await;
            verifier.finish();
            s
        };
        let _streams = futures::join!(client, server);
        start.elapsed()
    }

    /// Bulk through our adapter's zero-copy stream API, the adapter-level
    /// counterpart of the core's `send_bytes` row: the same 64 KiB blocks
    /// (`Bytes` slices of the pattern) given by reference to
    /// `write_all_bytes`, and received chunks taken with `read_chunk`
    /// instead of copied into a read buffer. Same verification. The yamux
    /// crate has no such API: its row is the `write_all` one.
    #[cfg(feature = "tokio")]
    pub async fn bulk_bytes(m: Ours, pat: &Pattern, total: usize) -> Duration {
        let start = Instant::now();
        let client = async {
            let mut s = m.open().await;
            for i in 0..total / BLOCK {
                s.write_all_bytes(pat.block(i)).await.expect("write");
            }
            s.shutdown().await.expect("shutdown");
            s
        };
        let server = async {
            let mut s = m.accept().await;
            let mut verifier = BulkVerifier::new(pat, total);
            while let Some(chunk) = s.read_chunk().await.expect("read") {
                verifier.feed(&chunk);
            }
            verifier.finish();
            s
        };
        let _streams = futures::join!(client, server);
        start.elapsed()
    }

    /// A proxy: the server splices an accepted stream with a bare duplex to
    /// an "upstream" that echoes; the client writes `total` bytes in 64 KiB
    /// `write_all`s and shuts down while it reads the echo back and
    /// verifies it. Both directions go through the proxy. `copy` is the
    /// proxy's copying: `splice` or `tokio::io::copy_bidirectional`.
    pub async fn proxy<M, F, Fut>(m: M, pat: &Pattern, total: usize, copy: F) -> Duration
    where
        M: Mux,
        F: FnOnce(M::S, tokio::io::DuplexStream) -> Fut,
        Fut: Future<Output = ()>,
    {
        let start = Instant::now();
        let client = async {
            let (mut r, mut w) = tokio::io::split(m.open().await);
            let write = async {
                for i in 0..total / BLOCK {
                    w.write_all(&pat.block(i)).await.expect("write");
                }
                w.shutdown().await.expect("shutdown");
            };
            let read = async {
                let mut verifier = BulkVerifier::new(pat, total);
                let mut buf = vec![0u8; BLOCK];
                read_all(&mut r, &mut buf, |c| verifier.feed(c)).await;
                verifier.finish();
            };
            futures::join!(write, read);
        };
        let (near, far) = tokio::io::duplex(WIRE);
        let proxy = async {
            let s = m.accept().await;
            copy(s, near).await;
        };
        let upstream = async {
            let (mut r, mut w) = tokio::io::split(far);
            tokio::io::copy(&mut r, &mut w).await.expect("echo");
            w.shutdown().await.expect("upstream shutdown");
        };
        futures::join!(client, proxy, upstream);
        start.elapsed()
    }

    /// The proxy's copying with `tokio::io::copy_bidirectional`.
    pub async fn copy_bidirectional<S: TRead + TWrite + Unpin>(
        mut s: S,
        mut up: tokio::io::DuplexStream,
    ) {
        tokio::io::copy_bidirectional(&mut s, &mut up).await.expect("copy_bidirectional");
    }

    /// The proxy's copying with our adapter's `splice`.
    #[cfg(feature = "tokio")]
    pub async fn splice(s: adapter::Stream, up: tokio::io::DuplexStream) {
        adapter::tokio::splice(s, up).await.expect("splice");
    }

    pub async fn small<M: Mux>(m: M, count: usize) -> Duration {
        let start = Instant::now();
        let client = async {
            let mut s = m.open().await;
            for i in 0..count as u64 {
                s.write_all(&message(i)).await.expect("write");
            }
            s.shutdown().await.expect("shutdown");
            s
        };
        let server = async {
            let mut s = m.accept().await;
            let mut verifier = MsgVerifier::new(0, 1);
            let mut buf = vec![0u8; BLOCK];
            read_all(&mut s, &mut buf, |c| verifier.feed(c)).await;
            assert_eq!(verifier.messages(), count as u64);
            s
        };
        let _streams = futures::join!(client, server);
        start.elapsed()
    }

    pub async fn request_response<M: Mux>(m: M, trips: usize) -> Duration {
        let start = Instant::now();
        let client = async {
            let mut s = m.open().await;
            let mut verifier = MsgVerifier::new(0, 1);
            let mut buf = [0u8; MSG];
            for i in 0..trips as u64 {
                s.write_all(&message(i)).await.expect("write");
                s.read_exact(&mut buf).await.expect("read");
                verifier.feed(&buf);
            }
            s.shutdown().await.expect("shutdown");
            assert_eq!(verifier.messages(), trips as u64);
            s
        };
        let server = async {
            let mut s = m.accept().await;
            let mut verifier = MsgVerifier::new(0, 1);
            let mut buf = [0u8; MSG];
            while s.read_exact(&mut buf).await.is_ok() {
                verifier.feed(&buf);
                s.write_all(&buf).await.expect("echo");
            }
            s
        };
        let _streams = futures::join!(client, server);
        start.elapsed()
    }

    pub async fn churn<M: Mux>(m: M, streams: usize, bytes: usize, concurrency: usize) -> Duration {
        let start = Instant::now();
        let m = &m;
        let client =
            futures::stream::iter(0..streams).for_each_concurrent(concurrency, |_| async move {
                let mut s = m.open().await;
                let id = u64::from(M::id(&s));
                s.write_all(&tagged(id, bytes)).await.expect("write");
                s.shutdown().await.expect("shutdown");
                let mut buf = vec![0u8; 2 * KIB];
                let mut got = 0;
                let tag = id | 1 << 40;
                read_all(&mut s, &mut buf, |c| {
                    assert!(check_tagged(got, c, bytes, |_| tag));
                    got += c.len();
                })
                .await;
                assert_eq!(got, bytes, "churn: reply incomplete");
            });
        let server = accepted(m).take(streams).for_each_concurrent(None, |mut s| async move {
            let id = u64::from(M::id(&s));
            let mut buf = vec![0u8; 2 * KIB];
            let mut got = 0;
            read_all(&mut s, &mut buf, |c| {
                assert!(check_tagged(got, c, bytes, |_| id));
                got += c.len();
            })
            .await;
            assert_eq!(got, bytes, "churn: request incomplete");
            s.write_all(&tagged(id | 1 << 40, bytes)).await.expect("reply");
            s.shutdown().await.expect("shutdown");
        });
        futures::join!(client, server);
        start.elapsed()
    }

    pub async fn fanout<M: Mux>(m: M, n: usize, rounds: usize, msg: usize) -> Duration {
        let m = &m;
        let start = Cell::new(None);
        let server = accepted(m).take(n).for_each_concurrent(None, |mut s| async move {
            // Establish: the yamux crate acknowledges a stream only with
            // the first frame its accepting side sends.
            let mut one = [0u8; 1];
            s.read_exact(&mut one).await.expect("hello");
            s.write_all(&one).await.expect("hello back");
            let base = u64::from(M::id(&s)) << 20;
            let mut buf = vec![0u8; 4 * KIB];
            let mut got = 0;
            read_all(&mut s, &mut buf, |c| {
                assert!(check_tagged(got, c, msg, |k| base | k as u64));
                got += c.len();
            })
            .await;
            assert_eq!(got, rounds * msg, "fan-out: data missing");
        });
        let client = async {
            let mut streams = Vec::with_capacity(n);
            for _ in 0..n {
                let mut s = m.open().await;
                s.write_all(&[1]).await.expect("hello");
                streams.push(s);
            }
            for s in &mut streams {
                let mut one = [0u8; 1];
                s.read_exact(&mut one).await.expect("hello back");
            }
            start.set(Some(Instant::now()));
            for r in 0..rounds {
                for s in &mut streams {
                    let tag = (u64::from(M::id(s)) << 20) | r as u64;
                    s.write_all(&tagged(tag, msg)).await.expect("write");
                    if r + 1 == rounds {
                        s.shutdown().await.expect("shutdown");
                    }
                }
            }
            streams
        };
        let _streams = futures::join!(client, server);
        start.get().expect("started").elapsed()
    }
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

/// glibc's `rep movsb` copies are, on the 2-core AMD EPYC VM this was
/// measured on, 4-8× slower for some source/destination alignments than for
/// others: a run's speed then depends on where malloc happened to put the
/// buffers (the first run of a process, with fresh page-aligned mmap
/// buffers, is fast; later runs reusing heap chunks are not). This tunable
/// makes memcpy use vector loops at every size, for both libraries alike;
/// `--raw-memcpy` keeps glibc's default.
const MEMCPY_TUNABLE: &str = "glibc.cpu.x86_rep_movsb_threshold=1000000000";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if cfg!(target_os = "linux")
        && !args.iter().any(|a| a == "--raw-memcpy")
        && std::env::var_os("GLIBC_TUNABLES").is_none()
    {
        // Tunables are read at process start: run ourselves again with it.
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .args(&args)
            .env("GLIBC_TUNABLES", MEMCPY_TUNABLE)
            .status()
            .expect("re-run with GLIBC_TUNABLES");
        std::process::exit(status.code().unwrap_or(1));
    }
    let quick = args.iter().any(|a| a == "--quick");
    OURS_ONLY.store(args.iter().any(|a| a == "--ours-only"), Ordering::Relaxed);
    FULL_VERIFY.store(args.iter().any(|a| a == "--full-verify"), Ordering::Relaxed);
    let mut scale = if quick { Scale::quick() } else { Scale::full() };
    if let Some(i) = args.iter().position(|a| a == "--reps") {
        scale.reps = args.get(i + 1).and_then(|s| s.parse().ok()).expect("--reps N");
    }
    let words: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--") && a.parse::<usize>().is_err())
        .map(String::as_str)
        .collect();
    let levels: Vec<&str> =
        words.iter().copied().filter(|w| *w == "core" || *w == "adapter").collect();
    let workloads: Vec<&str> =
        words.iter().copied().filter(|w| *w != "core" && *w != "adapter").collect();
    let wanted = |level: &str, names: &[&str]| {
        (levels.is_empty() || levels.contains(&level))
            && (workloads.is_empty() || workloads.iter().any(|w| names.contains(w)))
    };
    let s = &scale;

    println!(
        "# yamux-proto vs the yamux crate 0.14: {} reps after a warm-up, median; \
         memcpy: {}; bulk verification: {}",
        s.reps,
        std::env::var("GLIBC_TUNABLES").unwrap_or_else(|_| "glibc default".into()),
        if FULL_VERIFY.load(Ordering::Relaxed) { "every byte" } else { "length + 8 B per KiB" }
    );
    println!();
    println!("| level | workload | ours | yamux crate | ratio | target | met |");
    println!("|---|---|---|---|---|---|---|");
    let mut rows = 0;
    let mut emit = |r: Row| {
        print_row(&r);
        rows += 1;
    };
    let pat = Pattern::new();
    core_rows(s, &pat, &|names| wanted("core", names), &mut emit);
    #[cfg(feature = "tokio")]
    adapter_rows(s, &pat, &|names| wanted("adapter", names), &mut emit);
    #[cfg(not(feature = "tokio"))]
    if wanted("adapter", &["bulk"]) {
        println!("\n(adapter level skipped: build with `--features tokio` or `--all-features`)");
    }
    println!();
    println!("{rows} rows");
}

/// The yamux crate on a current-thread tokio runtime (the adapter-level
/// harness, same workload code), `Duration::MAX` without the `tokio`
/// feature. At the core level the yamux crate gets the better of this and
/// `LocalPool` in every repetition: it is sensitive to the executor (its
/// churn is several times slower on `LocalPool` at 10,000 streams), and the
/// comparison should not depend on our choice of executor for it.
macro_rules! yamux_on_tokio {
    ($config:expr, $body:expr) => {{
        #[cfg(feature = "tokio")]
        {
            adapter_level::theirs($config, $body)
        }
        #[cfg(not(feature = "tokio"))]
        {
            Duration::MAX
        }
    }};
}

use adapter_level::Theirs;

fn core_rows(
    s: &Scale,
    pat: &Pattern,
    wanted: &dyn Fn(&[&str]) -> bool,
    emit: &mut dyn FnMut(Row),
) {
    if wanted(&["bulk"]) {
        let y = || {
            on_local_pool(yamux::Config::default(), |o, i, _| {
                adapter_level::bulk(Theirs::new(o, i), pat, s.bulk_bytes)
            })
            .min(yamux_on_tokio!(yamux::Config::default(), |m| {
                adapter_level::bulk(m, pat, s.bulk_bytes)
            }))
        };
        let (ours, theirs) = measure_pair(s.reps, || ours_bulk(pat, s.bulk_bytes, true, false), y);
        let r = ratio(ours, theirs);
        emit(Row {
            level: "core",
            workload: format!("bulk {} MiB, 64 KiB `send_bytes`", s.bulk_bytes / MIB),
            ours: mib_s(s.bulk_bytes, ours),
            theirs: mib_s(s.bulk_bytes, theirs),
            ratio: r,
            target: "≥ 3×",
            met: Some(r >= 3.0),
        });
        let (ours, theirs) = measure_pair(s.reps, || ours_bulk(pat, s.bulk_bytes, false, false), y);
        emit(Row {
            level: "core",
            workload: format!("bulk {} MiB, 64 KiB `send(&[u8])`", s.bulk_bytes / MIB),
            ours: mib_s(s.bulk_bytes, ours),
            theirs: mib_s(s.bulk_bytes, theirs),
            ratio: ratio(ours, theirs),
            target: "",
            met: None,
        });
        let (ours, theirs) = measure_pair(s.reps, || ours_bulk(pat, s.bulk_bytes, true, true), y);
        emit(Row {
            level: "core",
            workload: format!(
                "bulk {} MiB, 64 KiB `send_bytes`, ours through a 2-copy transport \
                 (`write_transmits` → peer's `handle_input(&[u8])`)",
                s.bulk_bytes / MIB
            ),
            ours: mib_s(s.bulk_bytes, ours),
            theirs: mib_s(s.bulk_bytes, theirs),
            ratio: ratio(ours, theirs),
            target: "",
            met: None,
        });
    }
    if wanted(&["small"]) {
        let (ours, theirs) = measure_pair(
            s.reps,
            || ours_small(s.small_msgs),
            || {
                on_local_pool(yamux::Config::default(), |o, i, _| {
                    adapter_level::small(Theirs::new(o, i), s.small_msgs)
                })
                .min(yamux_on_tokio!(yamux::Config::default(), |m| {
                    adapter_level::small(m, s.small_msgs)
                }))
            },
        );
        let r = ratio(ours, theirs);
        emit(Row {
            level: "core",
            workload: format!("small: {} × 64 B one way", s.small_msgs),
            ours: rate(s.small_msgs, ours),
            theirs: rate(s.small_msgs, theirs),
            ratio: r,
            target: "≥ 10×",
            met: Some(r >= 10.0),
        });
    }
    if wanted(&["rr", "request"]) {
        let (ours, theirs) = measure_pair(
            s.reps,
            || ours_request_response(s.rr_trips),
            || {
                on_local_pool(yamux::Config::default(), |o, i, _| {
                    adapter_level::request_response(Theirs::new(o, i), s.rr_trips)
                })
                .min(yamux_on_tokio!(yamux::Config::default(), |m| {
                    adapter_level::request_response(m, s.rr_trips)
                }))
            },
        );
        emit(Row {
            level: "core",
            workload: format!("request/response: {} × 64 B ping-pong", s.rr_trips),
            ours: per_op(s.rr_trips, ours),
            theirs: per_op(s.rr_trips, theirs),
            ratio: ratio(ours, theirs),
            target: "",
            met: None,
        });
    }
    if wanted(&["churn"]) {
        let (n, b, c) = (s.churn_streams, s.churn_bytes, s.churn_concurrency);
        let (ours, theirs) = measure_pair(
            s.reps,
            || ours_churn(n, b, c),
            || {
                on_local_pool(yamux::Config::default(), |o, i, _| {
                    adapter_level::churn(Theirs::new(o, i), n, b, c)
                })
                .min(yamux_on_tokio!(yamux::Config::default(), |m| {
                    adapter_level::churn(m, n, b, c)
                }))
            },
        );
        let r = ratio(ours, theirs);
        emit(Row {
            level: "core",
            workload: format!("churn: {n} streams, 1 KiB each way, ≤ {c} at once (per stream)"),
            ours: per_op(n, ours),
            theirs: per_op(n, theirs),
            ratio: r,
            target: "≥ 5×",
            met: Some(r >= 5.0),
        });
    }
    if wanted(&["fanout", "fan-out"]) {
        let (n, r, m) = (s.fanout_streams, s.fanout_rounds, s.fanout_msg);
        let (ours, theirs) = measure_pair(
            s.reps,
            || ours_fanout(n, r, m),
            || {
                on_local_pool(yamux_config_for(n), |o, i, sp| yamux_fanout(o, i, sp, n, r, m)).min(
                    yamux_on_tokio!(yamux_config_for(n), |x| adapter_level::fanout(x, n, r, m)),
                )
            },
        );
        emit(Row {
            level: "core",
            workload: format!(
                "fan-out: {n} streams × {r} rounds × 1 KiB, round-robin (per message)"
            ),
            ours: per_op(n * r, ours),
            theirs: per_op(n * r, theirs),
            ratio: ratio(ours, theirs),
            target: "≥ 2.5×",
            met: Some(ratio(ours, theirs) >= 2.5),
        });
    }
    if wanted(&["memory", "idle"]) {
        let n = s.idle_streams;
        let ours_bare = ours_idle_memory(n, false);
        let ours = ours_idle_memory(n, true);
        let theirs = yamux_idle_memory(n);
        emit(Row {
            level: "core",
            workload: format!("memory per idle stream ({n} open, per endpoint, 1 B exchanged)"),
            ours: format!("{ours:.0} B"),
            theirs: format!("{theirs:.0} B"),
            ratio: theirs / ours,
            target: "≤ 256 B",
            met: Some(ours <= 256.0),
        });
        emit(Row {
            level: "core",
            workload: format!("memory per idle stream ({n} open, per endpoint, never used)"),
            ours: format!("{ours_bare:.0} B"),
            theirs: "n/a".into(),
            ratio: f64::NAN,
            target: "≤ 256 B",
            met: Some(ours_bare <= 256.0),
        });
    }
    if wanted(&["frame", "per-frame"]) {
        let counts = &s.frame_counts;
        for spread in [false, true] {
            // Every stream count once per repetition, in turn, so that noise
            // on the shared machine spreads over all of them alike.
            let mut ours = vec![Vec::new(); counts.len()];
            let mut theirs = vec![Vec::new(); counts.len()];
            for rep in 0..=s.reps {
                for (i, &open) in counts.iter().enumerate() {
                    let d = ours_per_frame(open, s.frames, spread);
                    let t = (open <= s.yamux_frame_max && !OURS_ONLY.load(Ordering::Relaxed)).then(
                        || {
                            on_local_pool(yamux_config_for(open), |o, i, sp| {
                                yamux_per_frame(o, i, sp, open, s.frames, spread)
                            })
                        },
                    );
                    if rep > 0 {
                        ours[i].push(d);
                        theirs[i].extend(t);
                    }
                }
            }
            let ours: Vec<Duration> = ours.into_iter().map(median).collect();
            for (i, &open) in counts.iter().enumerate() {
                let growth = ours[i].as_secs_f64() / ours[0].as_secs_f64();
                let theirs = (!theirs[i].is_empty()).then(|| median(theirs[i].clone()));
                emit(Row {
                    level: "core",
                    workload: format!(
                        "per frame, {open} streams open, {} ({growth:.2}× the 1-stream cost)",
                        if spread { "frames round-robin over all" } else { "frames on one" }
                    ),
                    ours: per_op(s.frames, ours[i]),
                    theirs: theirs.map_or("not run".into(), |t| per_op(s.frames, t)),
                    ratio: theirs.map_or(f64::NAN, |t| ratio(ours[i], t)),
                    target: "≤ 1.5× the 1-stream cost",
                    met: Some(growth <= 1.5),
                });
            }
        }
    }
}

#[cfg(feature = "tokio")]
fn adapter_rows(
    s: &Scale,
    pat: &Pattern,
    wanted: &dyn Fn(&[&str]) -> bool,
    emit: &mut dyn FnMut(Row),
) {
    use adapter_level as al;
    if wanted(&["bulk"]) {
        let total = s.adapter_bulk_bytes;
        // The transport alone runs in the same alternation as both
        // libraries, so the ceiling sees the same noise as the figures it
        // bounds (skipped with `--ours-only`).
        let mut ceiling = Vec::new();
        // The zero-copy API runs in the same alternation as `write_all`, and
        // is compared with the same yamux crate figure.
        let mut zero_copy = Vec::new();
        let (ours, theirs) = measure_pair(
            s.reps,
            || {
                zero_copy.push(al::ours(Config::default(), |m| al::bulk_bytes(m, pat, total)));
                al::ours(Config::default(), |m| al::bulk(m, pat, total))
            },
            || {
                ceiling.push(al::transport_alone(pat, total));
                al::theirs(yamux::Config::default(), |m| al::bulk(m, pat, total))
            },
        );
        if !ceiling.is_empty() {
            // The first run was the warm-up, as for the other two.
            let c = median(ceiling[1..].to_vec());
            emit(Row {
                level: "adapter",
                workload: format!(
                    "transport alone (the ceiling, not a target): bare `duplex(256 KiB)`, \
                     {} MiB in 64 KiB `write_all`, 64 KiB reads; ratio = the most any adapter \
                     could reach",
                    total / MIB
                ),
                ours: mib_s(total, c),
                theirs: mib_s(total, theirs),
                ratio: ratio(c, theirs),
                target: "",
                met: None,
            });
        }
        // The first run was the warm-up.
        let zc = median(zero_copy[1..].to_vec());
        let r = ratio(zc, theirs);
        emit(Row {
            level: "adapter",
            workload: format!(
                "bulk {} MiB, 64 KiB `write_all_bytes`, `read_chunk` (theirs: `write_all`, `read`)",
                total / MIB
            ),
            ours: mib_s(total, zc),
            theirs: mib_s(total, theirs),
            ratio: r,
            target: "≥ 1.5×",
            met: Some(r >= 1.5),
        });
        let r = ratio(ours, theirs);
        emit(Row {
            level: "adapter",
            workload: format!("bulk {} MiB, 64 KiB `write_all`", total / MIB),
            ours: mib_s(total, ours),
            theirs: mib_s(total, theirs),
            ratio: r,
            target: "≥ 2×",
            met: Some(r >= 2.0),
        });
    }
    if wanted(&["proxy"]) {
        let total = s.adapter_bulk_bytes / 2;
        // `splice` runs in the same alternation as our `copy_bidirectional`
        // and is compared with the same yamux crate figure.
        let mut spliced = Vec::new();
        let (ours, theirs) = measure_pair(
            s.reps,
            || {
                spliced.push(al::ours(Config::default(), |m| al::proxy(m, pat, total, al::splice)));
                al::ours(Config::default(), |m| al::proxy(m, pat, total, al::copy_bidirectional))
            },
            || {
                al::theirs(yamux::Config::default(), |m| {
                    al::proxy(m, pat, total, al::copy_bidirectional)
                })
            },
        );
        let sp = median(spliced[1..].to_vec());
        emit(Row {
            level: "adapter",
            workload: format!(
                "proxy, {} MiB each way: stream spliced to a duplex echo with `splice` \
                 (theirs: `tokio::io::copy_bidirectional`)",
                total / MIB
            ),
            ours: mib_s(total, sp),
            theirs: mib_s(total, theirs),
            ratio: ratio(sp, theirs),
            target: "",
            met: None,
        });
        emit(Row {
            level: "adapter",
            workload: format!(
                "proxy, {} MiB each way: `tokio::io::copy_bidirectional` (both)",
                total / MIB
            ),
            ours: mib_s(total, ours),
            theirs: mib_s(total, theirs),
            ratio: ratio(ours, theirs),
            target: "≥ 1.8×",
            met: Some(ratio(ours, theirs) >= 1.8),
        });
    }
    if wanted(&["small"]) {
        let n = s.small_msgs;
        let (ours, theirs) = measure_pair(
            s.reps,
            || al::ours(Config::default(), |m| al::small(m, n)),
            || al::theirs(yamux::Config::default(), |m| al::small(m, n)),
        );
        emit(Row {
            level: "adapter",
            workload: format!("small: {n} × 64 B one way"),
            ours: rate(n, ours),
            theirs: rate(n, theirs),
            ratio: ratio(ours, theirs),
            target: "",
            met: None,
        });
    }
    if wanted(&["rr", "request"]) {
        let n = s.rr_trips;
        let (ours, theirs) = measure_pair(
            s.reps,
            || al::ours(Config::default(), |m| al::request_response(m, n)),
            || al::theirs(yamux::Config::default(), |m| al::request_response(m, n)),
        );
        emit(Row {
            level: "adapter",
            workload: format!("request/response: {n} × 64 B ping-pong"),
            ours: per_op(n, ours),
            theirs: per_op(n, theirs),
            ratio: ratio(ours, theirs),
            target: "≥ 1.5×",
            met: Some(ratio(ours, theirs) >= 1.5),
        });
    }
    if wanted(&["churn"]) {
        let (n, b, c) = (s.churn_streams, s.churn_bytes, s.churn_concurrency);
        let (ours, theirs) = measure_pair(
            s.reps,
            || al::ours(Config::default(), |m| al::churn(m, n, b, c)),
            || al::theirs(yamux::Config::default(), |m| al::churn(m, n, b, c)),
        );
        emit(Row {
            level: "adapter",
            workload: format!("churn: {n} streams, 1 KiB each way, ≤ {c} at once (per stream)"),
            ours: per_op(n, ours),
            theirs: per_op(n, theirs),
            ratio: ratio(ours, theirs),
            target: "",
            met: None,
        });
    }
    if wanted(&["fanout", "fan-out"]) {
        let (n, r, m) = (s.fanout_streams, s.fanout_rounds, s.fanout_msg);
        let (ours, theirs) = measure_pair(
            s.reps,
            || al::ours(many_streams_config(n), |x| al::fanout(x, n, r, m)),
            || al::theirs(yamux_config_for(n), |x| al::fanout(x, n, r, m)),
        );
        emit(Row {
            level: "adapter",
            workload: format!(
                "fan-out: {n} streams × {r} rounds × 1 KiB, round-robin (per message)"
            ),
            ours: per_op(n * r, ours),
            theirs: per_op(n * r, theirs),
            ratio: ratio(ours, theirs),
            target: "",
            met: None,
        });
    }
}
