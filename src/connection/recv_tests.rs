//! Every (state, input) pair of the receive half.
//!
//! The table below is the receive half's state machine (docs/flow-control.md
//! and docs/state-machines.md): received data holds credit until it is read,
//! credit goes back in a Window Update once half the window (at most 1 MiB)
//! is pending (at once when stopped, once more after the peer's FIN when
//! everything has been read), reset and stop release unread data, data
//! after FIN is a protocol error. Each row starts from a half in `state`
//! holding some bytes in every credit bucket, applies `input`, and gives the
//! resulting state, the half's answer and the three buckets. After every row
//! the credit-conservation invariant (`window_size == window + unread +
//! pending_return`) must still hold.

use super::*;
use crate::connection::flow_control::MAX_UPDATE_THRESHOLD;

const W: u32 = DEFAULT_WINDOW;

/// The three credit buckets of a half (see the module docs of `recv.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Buckets {
    window: u32,
    unread: u32,
    pending_return: u32,
}

const fn b(window: u32, unread: u32, pending_return: u32) -> Buckets {
    Buckets { window, unread, pending_return }
}

fn buckets(h: &RecvHalf) -> Buckets {
    b(h.window, h.unread, h.pending_return)
}

/// The fixture every row starts from, before it is moved to its state:
/// 300 bytes received, 50 of them read, then 100 more received.
const FIXTURE: Buckets = b(W - 400, 350, 50);
/// The fixture after `stop`: everything not granted back is pending return.
const STOPPED: Buckets = b(W - 400, 0, 400);

/// Bytes of the `within` data input.
const WITHIN: u32 = 1000;

fn fixture() -> RecvHalf {
    let mut h = RecvHalf::new(W);
    assert_eq!(h.on_data(Bytes::from(vec![1u8; 300]).into()), DataOutcome::Buffered);
    assert_eq!(h.read(50).map(|c| c.len()), Some(50));
    assert_eq!(h.on_data(Bytes::from(vec![2u8; 100]).into()), DataOutcome::Buffered);
    assert_eq!(buckets(&h), FIXTURE);
    h
}

/// A half in `state`, reached the way the connection reaches it.
fn half_in(state: RecvState) -> RecvHalf {
    let mut h = fixture();
    match state {
        RecvState::Open => {}
        RecvState::Stopped => assert!(h.stop()),
        RecvState::Finished => assert!(h.on_fin()),
        // A peer reset keeps the received data readable.
        RecvState::Reset => h.on_reset(true),
    }
    assert_eq!(h.state, state);
    assert!(h.check_invariant());
    h
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    /// A Data frame of `WITHIN` bytes (the window has room).
    DataWithin,
    /// A Data frame one byte larger than the credit the peer holds.
    DataBeyond,
    /// A Data frame with an empty body.
    DataEmpty,
    Fin,
    /// Peer RST (`on_reset(true)`: received data stays readable).
    RemoteReset,
    /// Application reset (`on_reset(false)`: unread data dropped).
    LocalReset,
    Stop,
    /// `read(10)`: less than is unread.
    ReadSome,
    /// `read(usize::MAX)` until it returns `None`.
    ReadAll,
    TakeUpdate,
}

/// What the half answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Data(DataOutcome),
    /// `on_fin`: whether the application hears of it; `stop`: whether credit
    /// is pending return.
    Bool(bool),
    /// Bytes `read` returned (0 for `None`).
    Read(usize),
    /// `take_update`: the credit granted.
    Update(u32),
    Unit,
}

struct Row {
    state: RecvState,
    input: Input,
    next: RecvState,
    out: Out,
    after: Buckets,
    /// `wants_update()` afterwards: whether a Window Update should go out.
    wants_update: bool,
}

const fn row(
    state: RecvState,
    input: Input,
    next: RecvState,
    out: Out,
    after: Buckets,
    wants_update: bool,
) -> Row {
    Row { state, input, next, out, after, wants_update }
}

use DataOutcome::*;
use Input::*;
use RecvState::{Finished, Open, Reset, Stopped};

const F: Buckets = FIXTURE;
const S: Buckets = STOPPED;

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // ---- Open: data is buffered for reading and holds credit until read.
    row(Open, DataWithin,  Open,     Out::Data(Buffered),       b(F.window - WITHIN, 350 + WITHIN, 50), false),
    row(Open, DataBeyond,  Open,     Out::Data(WindowExceeded), F, false),
    row(Open, DataEmpty,   Open,     Out::Data(Ignored),        F, false),
    row(Open, Fin,         Finished, Out::Bool(true),           F, false),
    row(Open, RemoteReset, Reset,    Out::Unit,                 F, false),
    row(Open, LocalReset,  Reset,    Out::Unit,                 b(F.window, 0, 400), false),
    row(Open, Stop,        Stopped,  Out::Bool(true),           S, true),
    row(Open, ReadSome,    Open,     Out::Read(10),             b(F.window, 340, 60), false),
    row(Open, ReadAll,     Open,     Out::Read(350),            b(F.window, 0, 400), false),
    row(Open, TakeUpdate,  Open,     Out::Update(50),           b(F.window + 50, 350, 0), false),
    // ---- Stopped: data is discarded and its credit is returned at once.
    row(Stopped, DataWithin,  Stopped,  Out::Data(Discarded),      b(S.window - WITHIN, 0, 400 + WITHIN), true),
    row(Stopped, DataBeyond,  Stopped,  Out::Data(WindowExceeded), S, true),
    row(Stopped, DataEmpty,   Stopped,  Out::Data(Ignored),        S, true),
    row(Stopped, Fin,         Finished, Out::Bool(false),          S, true),
    row(Stopped, RemoteReset, Reset,    Out::Unit,                 S, false),
    row(Stopped, LocalReset,  Reset,    Out::Unit,                 S, false),
    row(Stopped, Stop,        Stopped,  Out::Bool(false),          S, true),
    row(Stopped, ReadSome,    Stopped,  Out::Read(0),              S, true),
    row(Stopped, ReadAll,     Stopped,  Out::Read(0),              S, true),
    row(Stopped, TakeUpdate,  Stopped,  Out::Update(400),          b(W, 0, 0), false),
    // ---- Finished: the peer sent FIN; data after it is a protocol error,
    // received data can still be read; its credit goes back once, when
    // everything received has been read (so the writer sees it was read).
    row(Finished, DataWithin,  Finished, Out::Data(AfterFin), F, false),
    row(Finished, DataBeyond,  Finished, Out::Data(AfterFin), F, false),
    row(Finished, DataEmpty,   Finished, Out::Data(Ignored),  F, false),
    row(Finished, Fin,         Finished, Out::Bool(false),    F, false),
    row(Finished, RemoteReset, Reset,    Out::Unit,           F, false),
    row(Finished, LocalReset,  Reset,    Out::Unit,           b(F.window, 0, 400), false),
    row(Finished, Stop,        Finished, Out::Bool(true),     b(F.window, 0, 400), true),
    row(Finished, ReadSome,    Finished, Out::Read(10),       b(F.window, 340, 60), false),
    row(Finished, ReadAll,     Finished, Out::Read(350),      b(F.window, 0, 400), true),
    row(Finished, TakeUpdate,  Finished, Out::Update(50),     b(F.window + 50, 350, 0), false),
    // ---- Reset (by the peer here): nothing more is accepted or granted;
    // what was received stays readable.
    row(Reset, DataWithin,  Reset, Out::Data(Ignored), F, false),
    row(Reset, DataBeyond,  Reset, Out::Data(Ignored), F, false),
    row(Reset, DataEmpty,   Reset, Out::Data(Ignored), F, false),
    row(Reset, Fin,         Reset, Out::Bool(false),   F, false),
    row(Reset, RemoteReset, Reset, Out::Unit,          F, false),
    row(Reset, LocalReset,  Reset, Out::Unit,          b(F.window, 0, 400), false),
    row(Reset, Stop,        Reset, Out::Bool(false),   F, false),
    row(Reset, ReadSome,    Reset, Out::Read(10),      b(F.window, 340, 60), false),
    row(Reset, ReadAll,     Reset, Out::Read(350),     b(F.window, 0, 400), false),
    row(Reset, TakeUpdate,  Reset, Out::Update(0),     F, false),
];

/// The half that stopped reading and then got the peer's FIN: `Finished`,
/// but released, so every input is answered as a stopped half would answer
/// it, except that data is now after FIN. Its own rows, from `STOPPED`.
#[rustfmt::skip]
const STOPPED_THEN_FINISHED: &[Row] = &[
    row(Finished, DataWithin,  Finished, Out::Data(AfterFin), S, true),
    row(Finished, DataBeyond,  Finished, Out::Data(AfterFin), S, true),
    row(Finished, DataEmpty,   Finished, Out::Data(Ignored),  S, true),
    row(Finished, Fin,         Finished, Out::Bool(false),    S, true),
    row(Finished, RemoteReset, Reset,    Out::Unit,           S, false),
    row(Finished, LocalReset,  Reset,    Out::Unit,           S, false),
    row(Finished, Stop,        Finished, Out::Bool(false),    S, true),
    // Nothing is left to read: released data never comes back.
    row(Finished, ReadSome,    Finished, Out::Read(0),        S, true),
    row(Finished, ReadAll,     Finished, Out::Read(0),        S, true),
    row(Finished, TakeUpdate,  Finished, Out::Update(400),    b(W, 0, 0), false),
];

#[test]
fn stopped_then_finished_covers_every_input_and_stays_released() {
    assert_eq!(STOPPED_THEN_FINISHED.len(), 10);
    for (n, r) in STOPPED_THEN_FINISHED.iter().enumerate() {
        let mut h = half_in(RecvState::Stopped);
        assert!(!h.on_fin(), "a stopped application hears of no FIN");
        assert_eq!((h.state, buckets(&h)), (Finished, S));
        let what = format!("stopped-then-finished row {n}: {:?}", r.input);
        assert!(STOPPED_THEN_FINISHED[..n].iter().all(|o| o.input != r.input), "{what}: twice");
        assert_eq!(apply(&mut h, r.input), r.out, "{what}: output");
        assert_eq!(h.state, r.next, "{what}: next state");
        assert_eq!(buckets(&h), r.after, "{what}: credit buckets");
        assert!(h.check_invariant(), "{what}: credit not conserved: {h:?}");
        assert_eq!(h.wants_update(), r.wants_update, "{what}: wants_update");
    }
}

fn apply(h: &mut RecvHalf, input: Input) -> Out {
    match input {
        DataWithin => Out::Data(h.on_data(Bytes::from(vec![3u8; WITHIN as usize]).into())),
        DataBeyond => Out::Data(h.on_data(Bytes::from(vec![4u8; h.window as usize + 1]).into())),
        DataEmpty => Out::Data(h.on_data(Bytes::new().into())),
        Fin => Out::Bool(h.on_fin()),
        RemoteReset => {
            h.on_reset(true);
            Out::Unit
        }
        LocalReset => {
            h.on_reset(false);
            Out::Unit
        }
        Stop => Out::Bool(h.stop()),
        ReadSome => Out::Read(h.read(10).map_or(0, |c| c.len())),
        ReadAll => {
            let mut n = 0;
            while let Some(c) = h.read(usize::MAX) {
                n += c.len();
            }
            Out::Read(n)
        }
        TakeUpdate => Out::Update(h.take_update(u32::MAX)),
    }
}

#[test]
fn table_covers_every_state_input_pair() {
    let states = [Open, Stopped, Finished, Reset];
    let inputs = [
        DataWithin,
        DataBeyond,
        DataEmpty,
        Fin,
        RemoteReset,
        LocalReset,
        Stop,
        ReadSome,
        ReadAll,
        TakeUpdate,
    ];
    assert_eq!(TABLE.len(), states.len() * inputs.len());
    for s in states {
        for i in inputs {
            let n = TABLE.iter().filter(|r| r.state == s && r.input == i).count();
            assert_eq!(n, 1, "({s:?}, {i:?}) must have exactly one row");
        }
    }
}

#[test]
fn every_state_input_pair() {
    for (n, r) in TABLE.iter().enumerate() {
        let mut h = half_in(r.state);
        let what = format!("row {n}: ({:?}, {:?})", r.state, r.input);
        let out = apply(&mut h, r.input);
        assert_eq!(out, r.out, "{what}: output");
        assert_eq!(h.state, r.next, "{what}: next state");
        assert_eq!(buckets(&h), r.after, "{what}: credit buckets");
        assert_eq!(h.window_size, W, "{what}: window size never changes here");
        assert!(h.check_invariant(), "{what}: credit not conserved: {h:?}");
        assert_eq!(h.wants_update(), r.wants_update, "{what}: wants_update");
    }
}

/// What is still readable after each row: the unread bytes come out of
/// `read` in order, and reading moves exactly them to `pending_return`.
#[test]
fn unread_bytes_match_the_count_after_every_row() {
    for (n, r) in TABLE.iter().enumerate() {
        let mut h = half_in(r.state);
        apply(&mut h, r.input);
        let unread = h.unread;
        let pending = h.pending_return;
        let mut got = Vec::new();
        while let Some(c) = h.read(usize::MAX) {
            got.extend_from_slice(&c);
        }
        assert_eq!(got.len() as u32, unread, "row {n}");
        assert_eq!(h.pending_return, pending + unread, "row {n}");
        assert!(!h.has_unread(), "row {n}");
        assert!(h.check_invariant(), "row {n}");
        // The fixture's unread bytes (250 of value 1, 100 of value 2) come
        // first, then the row's own data (value 3), never anything else;
        // a partial read took the first 10.
        let fixture = [vec![1u8; 250], vec![2u8; 100]].concat();
        let expect: Vec<u8> = match (r.after.unread, r.input) {
            (0, _) => vec![],
            (350, _) => fixture,
            (340, ReadSome) => fixture[10..].to_vec(),
            (_, DataWithin) => [fixture, vec![3u8; WITHIN as usize]].concat(),
            other => panic!("row {n}: unexpected {other:?}"),
        };
        assert_eq!(got, expect, "row {n}");
    }
}

#[test]
fn credit_goes_back_only_after_half_the_window_is_read() {
    let mut h = RecvHalf::new(W);
    assert_eq!(h.on_data(Bytes::from(vec![0u8; W as usize]).into()), DataOutcome::Buffered);
    assert_eq!(h.window, 0);
    assert_eq!(h.read(W as usize / 2 - 1).map(|c| c.len()), Some(W as usize / 2 - 1));
    assert!(!h.wants_update(), "one byte short of half the window");
    assert_eq!(h.read(1).map(|c| c.len()), Some(1));
    assert!(h.wants_update());
    assert_eq!(h.take_update(u32::MAX), W / 2, "exactly the read credit comes back");
    assert_eq!(h.window, W / 2);
    assert!(!h.wants_update());
    assert!(h.check_invariant());
}

#[test]
fn a_large_window_returns_credit_every_max_update_threshold() {
    // A 16 MiB window waits for 1 MiB, not 8 MiB: the sender keeps 15 MiB
    // in flight instead of 8.
    let size = 64 * W;
    let mut h = RecvHalf::new(W);
    h.grow(size - W);
    h.take_update(u32::MAX);
    assert_eq!((h.window, h.update_threshold()), (size, MAX_UPDATE_THRESHOLD));
    h.on_data(Bytes::from(vec![0u8; 2 * MAX_UPDATE_THRESHOLD as usize]).into());
    h.read(MAX_UPDATE_THRESHOLD as usize - 1).unwrap();
    assert!(!h.wants_update());
    h.read(1).unwrap();
    assert!(h.wants_update());
    assert_eq!(h.take_update(u32::MAX), MAX_UPDATE_THRESHOLD);
    // Up to twice the cap the half-window rule stands.
    assert_eq!(RecvHalf::new(2 * MAX_UPDATE_THRESHOLD).update_threshold(), MAX_UPDATE_THRESHOLD);
    assert_eq!(RecvHalf::new(W).update_threshold(), W / 2);
    assert!(h.check_invariant());
}

#[test]
fn larger_initial_window_is_pending_for_the_syn_or_ack() {
    let h = RecvHalf::new(4 * W);
    assert_eq!(h.window, W, "the peer starts with the protocol's 256 KiB");
    assert_eq!(h.pending_return, 3 * W, "the rest rides on our SYN/ACK");
    assert!(h.wants_update());
    assert!(h.check_invariant());
}

#[test]
fn grow_adds_pending_credit() {
    let mut h = RecvHalf::new(W);
    h.grow(W);
    assert_eq!((h.window_size, h.pending_return), (2 * W, W));
    assert!(h.check_invariant());
    assert_eq!(h.take_update(u32::MAX), W);
    assert_eq!(h.window, 2 * W);
}

#[test]
fn small_payloads_coalesce_and_keep_order_with_large_ones() {
    let mut h = RecvHalf::new(W);
    let large = Bytes::from(vec![9u8; COALESCE_BELOW]);
    h.on_data(Bytes::from_static(b"ab").into());
    h.on_data(Bytes::from_static(b"cd").into());
    h.on_data(large.clone().into());
    h.on_data(Bytes::from_static(b"ef").into());
    let first = h.read(usize::MAX).unwrap();
    assert_eq!(&first[..], b"abcd", "small payloads before a large one are one chunk");
    let second = h.read(usize::MAX).unwrap();
    assert_eq!(second.as_ptr(), large.as_ptr(), "large payloads are not copied");
    assert_eq!(&h.read(usize::MAX).unwrap()[..], b"ef");
    assert!(h.read(usize::MAX).is_none());
    assert!(h.check_invariant());
}

#[test]
fn exactly_the_window_is_accepted_one_more_byte_is_not() {
    let mut h = RecvHalf::new(W);
    assert_eq!(h.on_data(Bytes::from(vec![0u8; W as usize]).into()), DataOutcome::Buffered);
    assert_eq!(h.on_data(Bytes::from_static(b"x").into()), DataOutcome::WindowExceeded);
    assert!(h.check_invariant());
}

/// A reset by the peer (or a connection close) after its FIN leaves the
/// direction complete: reading ends with the end, not the reset. A reset
/// before the FIN, our own reset, or dropping the leftovers ends it with
/// the reset.
#[test]
fn a_reset_after_the_fin_still_ends_reading_cleanly() {
    let mut h = half_in(RecvState::Finished);
    h.on_reset(true);
    assert!(h.ends_cleanly());
    assert_eq!(h.read(usize::MAX).map(|c| c.len()), Some(350), "the unread bytes first");
    h.discard();
    assert!(!h.ends_cleanly(), "dropping what is unread is an abort");

    let mut h = half_in(RecvState::Finished);
    h.on_reset(false);
    assert!(!h.ends_cleanly(), "our own reset aborts");
    let mut h = half_in(RecvState::Open);
    h.on_reset(true);
    assert!(!h.ends_cleanly(), "no FIN before the reset");
    h.on_fin();
    assert!(!h.ends_cleanly(), "a FIN after the reset is ignored");
}
