//! Every (state, input) pair of the send half.
//!
//! The table below is the send half's state machine (docs/state-machines.md):
//! never exceed the peer's credit, FIN exactly once. Data goes out only
//! within credit and in bounded pieces; a closing half sends its FIN alone,
//! on an empty piece once the buffer is empty (which needs no credit), and
//! never again; reset drops what is queued and says how much it freed.
//!
//! Each row starts from a half in `state` with `buf` bytes buffered and
//! `credit` bytes of send credit, applies `input`, and gives the resulting
//! state, the half's answer and its counters. After every row the buffer
//! count must match the bytes actually queued (`check_invariant`), and
//! `sent + buffered` must equal what was pushed minus what reset dropped
//! (no byte is created or lost).
//!
//! The half does not check its own state on `push_*`: the connection refuses
//! `send` on a half that is not `Open` (`SendError::WriteClosed` /
//! `SendError::Reset`, exercised in `tests/streams.rs`). The rows for
//! pushes in other states record that such bytes are never transmitted.

use super::*;

const W: u32 = DEFAULT_WINDOW;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    /// `push_slice` of 20 bytes.
    PushSlice,
    /// `push_bytes` of 20 bytes (copied into the tail).
    PushBytesSmall,
    /// `push_bytes` of 1000 bytes (kept by reference).
    PushBytesLarge,
    /// `take_piece(64 KiB)`.
    TakePiece,
    /// `take_piece(40)`: the frame bound is below what is buffered.
    TakePieceMax40,
    /// `add_credit(1000, returned = true)`: a plain Window Update.
    AddCredit,
    /// `add_credit(1000, returned = false)`: the delta on a SYN/ACK.
    AddCreditAnnounced,
    /// `add_credit(u32::MAX, true)`: overflow.
    AddCreditOverflow,
    /// `close_write`: the application half-closes.
    Close,
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Unit,
    /// `take_piece` returned a piece: body length and FIN.
    Piece(usize, bool),
    NoPiece,
    Credit(Result<(), ()>),
    /// `reset` returned the bytes it freed.
    Freed(usize),
    /// `close_write`'s answer.
    Closed(CloseOutcome),
}

/// The half's counters after a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct After {
    buffered: usize,
    credit: u32,
    sent: u64,
    credited: u64,
    sendable: bool,
}

const fn a(buffered: usize, credit: u32, sent: u64, credited: u64, sendable: bool) -> After {
    After { buffered, credit, sent, credited, sendable }
}

struct Row {
    state: SendState,
    buf: usize,
    credit: u32,
    input: Input,
    next: SendState,
    out: Out,
    after: After,
}

const fn row(
    (state, buf, credit): (SendState, usize, u32),
    input: Input,
    next: SendState,
    out: Out,
    after: After,
) -> Row {
    Row { state, buf, credit, input, next, out, after }
}

use Input::*;
use SendState::{Closing, Finished, Open, Reset as Rst};

// Fixtures: (state, bytes buffered, send credit).
const OPEN: (SendState, usize, u32) = (Open, 100, W);
const OPEN_EMPTY: (SendState, usize, u32) = (Open, 0, W);
const OPEN_NO_CREDIT: (SendState, usize, u32) = (Open, 100, 0);
const OPEN_EMPTY_NO_CREDIT: (SendState, usize, u32) = (Open, 0, 0);
const OPEN_LOW_CREDIT: (SendState, usize, u32) = (Open, 100, 30);
const CLOSING: (SendState, usize, u32) = (Closing, 100, W);
const CLOSING_EMPTY: (SendState, usize, u32) = (Closing, 0, W);
const CLOSING_NO_CREDIT: (SendState, usize, u32) = (Closing, 100, 0);
const CLOSING_EMPTY_NO_CREDIT: (SendState, usize, u32) = (Closing, 0, 0);
const CLOSING_LOW_CREDIT: (SendState, usize, u32) = (Closing, 100, 30);
const FINISHED: (SendState, usize, u32) = (Finished, 0, W);
const FINISHED_NO_CREDIT: (SendState, usize, u32) = (Finished, 0, 0);
/// Bytes pushed after the FIN (unreachable through the connection).
const FINISHED_LATE_PUSH: (SendState, usize, u32) = (Finished, 100, W);
const RESET: (SendState, usize, u32) = (Rst, 0, W);
const RESET_NO_CREDIT: (SendState, usize, u32) = (Rst, 0, 0);
const RESET_LATE_PUSH: (SendState, usize, u32) = (Rst, 100, W);

const M: u32 = u32::MAX;

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // ---- Open: data waits for credit; pieces are bounded by credit and max.
    row(OPEN, PushSlice,               Open, Out::Unit,            a(120,  W,        0,   0,    true)),
    row(OPEN, PushBytesSmall,          Open, Out::Unit,            a(120,  W,        0,   0,    true)),
    row(OPEN, PushBytesLarge,          Open, Out::Unit,            a(1100, W,        0,   0,    true)),
    row(OPEN_NO_CREDIT, PushSlice,     Open, Out::Unit,            a(120,  0,        0,   0,    false)),
    row(OPEN, TakePiece,               Open, Out::Piece(100, false), a(0,  W - 100,  100, 0,    false)),
    row(OPEN, TakePieceMax40,          Open, Out::Piece(40, false),  a(60, W - 40,   40,  0,    true)),
    row(OPEN_LOW_CREDIT, TakePiece,    Open, Out::Piece(30, false),  a(70, 0,        30,  0,    false)),
    row(OPEN_NO_CREDIT, TakePiece,     Open, Out::NoPiece,         a(100,  0,        0,   0,    false)),
    row(OPEN_EMPTY, TakePiece,         Open, Out::NoPiece,         a(0,    W,        0,   0,    false)),
    row(OPEN_EMPTY_NO_CREDIT, TakePiece, Open, Out::NoPiece,       a(0,    0,        0,   0,    false)),
    row(OPEN, AddCredit,               Open, Out::Credit(Ok(())),  a(100,  W + 1000, 0,   1000, true)),
    row(OPEN_NO_CREDIT, AddCredit,     Open, Out::Credit(Ok(())),  a(100,  1000,     0,   1000, true)),
    row(OPEN, AddCreditAnnounced,      Open, Out::Credit(Ok(())),  a(100,  W + 1000, 0,   0,    true)),
    row(OPEN, AddCreditOverflow,       Open, Out::Credit(Err(())), a(100,  W,        0,   0,    true)),
    row(OPEN_NO_CREDIT, AddCreditOverflow, Open, Out::Credit(Ok(())), a(100, M,      0,   M as u64, true)),
    row(OPEN, Close,                   Closing, Out::Closed(CloseOutcome::Closing), a(100, W, 0, 0, true)),
    row(OPEN_EMPTY, Close,             Closing, Out::Closed(CloseOutcome::Closing), a(0,   W, 0, 0, true)),
    row(OPEN, Reset,                   Rst,  Out::Freed(100),      a(0,    W,        0,   0,    false)),
    // ---- Closing: data goes out without FIN; the FIN is its own empty
    // piece (no credit needed) once nothing is buffered, never on data.
    row(CLOSING, PushSlice,            Closing, Out::Unit,         a(120,  W,        0,   0,    true)),
    row(CLOSING, PushBytesSmall,       Closing, Out::Unit,         a(120,  W,        0,   0,    true)),
    row(CLOSING, PushBytesLarge,       Closing, Out::Unit,         a(1100, W,        0,   0,    true)),
    row(CLOSING, TakePiece,            Closing, Out::Piece(100, false), a(0, W - 100, 100, 0,   true)),
    row(CLOSING, TakePieceMax40,       Closing, Out::Piece(40, false), a(60, W - 40,  40,  0,    true)),
    row(CLOSING_LOW_CREDIT, TakePiece, Closing, Out::Piece(30, false), a(70, 0,       30,  0,    false)),
    row(CLOSING_NO_CREDIT, TakePiece,  Closing, Out::NoPiece,      a(100,  0,        0,   0,    false)),
    row(CLOSING_EMPTY, TakePiece,      Finished, Out::Piece(0, true), a(0,  W,        0,   0,    false)),
    row(CLOSING_EMPTY_NO_CREDIT, TakePiece, Finished, Out::Piece(0, true), a(0, 0,    0,   0,    false)),
    row(CLOSING, AddCredit,            Closing, Out::Credit(Ok(())), a(100, W + 1000, 0,   1000, true)),
    row(CLOSING_NO_CREDIT, AddCredit,  Closing, Out::Credit(Ok(())), a(100, 1000,     0,   1000, true)),
    row(CLOSING, AddCreditAnnounced,   Closing, Out::Credit(Ok(())), a(100, W + 1000, 0,   0,    true)),
    row(CLOSING, AddCreditOverflow,    Closing, Out::Credit(Err(())), a(100, W,       0,   0,    true)),
    row(CLOSING, Close,                Closing, Out::Closed(CloseOutcome::AlreadyClosed), a(100, W, 0, 0, true)),
    row(CLOSING, Reset,                Rst,  Out::Freed(100),      a(0,    W,        0,   0,    false)),
    // ---- Finished: the FIN went out; nothing is ever taken again (FIN
    // exactly once). Credit still comes back for data sent before the FIN.
    row(FINISHED, PushSlice,           Finished, Out::Unit,        a(20,   W,        0,   0,    false)),
    row(FINISHED, PushBytesSmall,      Finished, Out::Unit,        a(20,   W,        0,   0,    false)),
    row(FINISHED, PushBytesLarge,      Finished, Out::Unit,        a(1000, W,        0,   0,    false)),
    row(FINISHED, TakePiece,           Finished, Out::NoPiece,     a(0,    W,        0,   0,    false)),
    row(FINISHED_NO_CREDIT, TakePiece, Finished, Out::NoPiece,     a(0,    0,        0,   0,    false)),
    row(FINISHED_LATE_PUSH, TakePiece, Finished, Out::NoPiece,     a(100,  W,        0,   0,    false)),
    row(FINISHED, TakePieceMax40,      Finished, Out::NoPiece,     a(0,    W,        0,   0,    false)),
    row(FINISHED, AddCredit,           Finished, Out::Credit(Ok(())), a(0,  W + 1000, 0,   1000, false)),
    row(FINISHED, AddCreditAnnounced,  Finished, Out::Credit(Ok(())), a(0,  W + 1000, 0,   0,    false)),
    row(FINISHED, AddCreditOverflow,   Finished, Out::Credit(Err(())), a(0, W,        0,   0,    false)),
    row(FINISHED, Close,               Finished, Out::Closed(CloseOutcome::AlreadyClosed), a(0, W, 0, 0, false)),
    row(FINISHED, Reset,               Rst,  Out::Freed(0),        a(0,    W,        0,   0,    false)),
    // ---- Reset: terminal; nothing is taken, a second reset frees nothing.
    row(RESET, PushSlice,              Rst,  Out::Unit,            a(20,   W,        0,   0,    false)),
    row(RESET, PushBytesSmall,         Rst,  Out::Unit,            a(20,   W,        0,   0,    false)),
    row(RESET, PushBytesLarge,         Rst,  Out::Unit,            a(1000, W,        0,   0,    false)),
    row(RESET, TakePiece,              Rst,  Out::NoPiece,         a(0,    W,        0,   0,    false)),
    row(RESET_NO_CREDIT, TakePiece,    Rst,  Out::NoPiece,         a(0,    0,        0,   0,    false)),
    row(RESET_LATE_PUSH, TakePiece,    Rst,  Out::NoPiece,         a(100,  W,        0,   0,    false)),
    row(RESET, TakePieceMax40,         Rst,  Out::NoPiece,         a(0,    W,        0,   0,    false)),
    row(RESET, AddCredit,              Rst,  Out::Credit(Ok(())),  a(0,    W + 1000, 0,   1000, false)),
    row(RESET, AddCreditAnnounced,     Rst,  Out::Credit(Ok(())),  a(0,    W + 1000, 0,   0,    false)),
    row(RESET, AddCreditOverflow,      Rst,  Out::Credit(Err(())), a(0,    W,        0,   0,    false)),
    row(RESET, Close,                  Rst,  Out::Closed(CloseOutcome::Reset), a(0, W,      0,   0,    false)),
    row(RESET, Reset,                  Rst,  Out::Freed(0),        a(0,    W,        0,   0,    false)),
];

/// `n` distinct bytes, so a reordering or a lost byte shows.
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

/// A half in `state` with `buf` bytes buffered and `credit` credit, reached
/// the way the connection reaches it (`close_write` moves to `Closing`; the
/// FIN piece moves to `Finished`).
fn half_in(state: SendState, buf: usize, credit: u32) -> SendHalf {
    let mut h = SendHalf::new();
    let data = bytes(buf, 1);
    match state {
        Open => h.push_slice(&data),
        Closing => {
            h.push_slice(&data);
            assert_eq!(h.close_write(), CloseOutcome::Closing);
        }
        Finished => {
            assert_eq!(h.close_write(), CloseOutcome::Closing);
            let fin = h.take_piece(u32::MAX).expect("FIN piece");
            assert!(fin.fin && fin.body.is_empty());
            h.push_slice(&data);
        }
        Rst => {
            assert_eq!(h.reset(), 0);
            h.push_slice(&data);
        }
    }
    h.credit = credit;
    assert_eq!((h.state, h.buffered), (state, buf));
    assert!(h.check_invariant());
    h
}

/// Applies `input`; returns the answer and how many bytes it pushed.
fn apply(h: &mut SendHalf, input: Input) -> (Out, usize) {
    let out = match input {
        PushSlice => {
            h.push_slice(&bytes(20, 2));
            return (Out::Unit, 20);
        }
        PushBytesSmall => {
            h.push_bytes(Bytes::from(bytes(20, 3)));
            return (Out::Unit, 20);
        }
        PushBytesLarge => {
            h.push_bytes(Bytes::from(bytes(1000, 4)));
            return (Out::Unit, 1000);
        }
        TakePiece => h.take_piece(64 * 1024),
        TakePieceMax40 => h.take_piece(40),
        AddCredit => return (Out::Credit(h.add_credit(1000, true)), 0),
        AddCreditAnnounced => return (Out::Credit(h.add_credit(1000, false)), 0),
        AddCreditOverflow => return (Out::Credit(h.add_credit(u32::MAX, true)), 0),
        Close => return (Out::Closed(h.close_write()), 0),
        Reset => return (Out::Freed(h.reset()), 0),
    };
    (out.map_or(Out::NoPiece, |p| Out::Piece(p.body.len(), p.fin)), 0)
}

#[test]
fn table_covers_every_state_input_pair() {
    let inputs = [
        PushSlice,
        PushBytesSmall,
        PushBytesLarge,
        TakePiece,
        TakePieceMax40,
        AddCredit,
        AddCreditAnnounced,
        AddCreditOverflow,
        Close,
        Reset,
    ];
    for s in [Open, Closing, Finished, Rst] {
        for i in inputs {
            assert!(
                TABLE.iter().any(|r| r.state == s && r.input == i),
                "({s:?}, {i:?}) has no row"
            );
        }
        // take_piece with and without credit, with and without data.
        for (buf, credit) in [(100, W), (100, 0), (0, W), (0, 0)] {
            // Buffered data after FIN or reset is unreachable through the
            // connection; one such row per state is enough.
            let required = !(matches!(s, Finished | Rst) && buf > 0 && credit == 0);
            let found = TABLE.iter().any(|r| {
                r.state == s
                    && r.input == TakePiece
                    && (r.buf > 0) == (buf > 0)
                    && (r.credit > 0) == (credit > 0)
            });
            assert!(found || !required, "({s:?}, take_piece, buf {buf}, credit {credit})");
        }
    }
}

#[test]
fn every_state_input_pair() {
    for (n, r) in TABLE.iter().enumerate() {
        let what =
            format!("row {n}: ({:?} buf {} credit {}, {:?})", r.state, r.buf, r.credit, r.input);
        let mut h = half_in(r.state, r.buf, r.credit);
        let (out, pushed) = apply(&mut h, r.input);
        assert_eq!(out, r.out, "{what}: output");
        assert_eq!(h.state, r.next, "{what}: next state");
        let after = a(h.buffered, h.credit, h.sent, h.credited, h.is_sendable());
        assert_eq!(after, r.after, "{what}: counters");
        assert!(h.check_invariant(), "{what}: buffered count does not match the queue");
        // Conservation of bytes: what was pushed is either sent, still
        // buffered, or was freed by a reset.
        let freed = if let Out::Freed(f) = out { f } else { 0 };
        assert_eq!(
            h.sent as usize + h.buffered + freed,
            r.buf + pushed,
            "{what}: bytes created or lost"
        );
        assert_eq!(h.uncredited(), h.sent.saturating_sub(h.credited), "{what}");
    }
}

/// Taking pieces until none is left returns every buffered byte in order,
/// then exactly one FIN, and never a piece larger than credit or the bound.
#[test]
fn pieces_preserve_order_and_fin_is_taken_once() {
    let a = bytes(30, 5);
    let large = Bytes::from(bytes(2000, 6));
    let c = bytes(10, 7);
    let mut h = SendHalf::new();
    h.push_slice(&a);
    h.push_bytes(large.clone());
    h.push_bytes(Bytes::from(c.clone()));
    h.close_write();
    h.credit = 1500;
    let mut got = Vec::new();
    let mut fins = 0;
    let mut large_ptr_seen = false;
    for _ in 0..100 {
        let Some(p) = h.take_piece(700) else {
            if h.credit == 0 {
                h.add_credit(1000, true).unwrap();
                continue;
            }
            break;
        };
        assert!(p.body.len() <= 700);
        large_ptr_seen |= p.body.as_ptr() == large.as_ptr();
        got.extend_from_slice(&p.body);
        fins += usize::from(p.fin);
        assert!(!p.fin || p.body.is_empty(), "FIN never shares a piece with data");
        assert!(h.check_invariant());
    }
    assert_eq!(got, [a, large.to_vec(), c].concat());
    assert_eq!(fins, 1, "FIN exactly once");
    assert_eq!(h.state, Finished);
    assert!(large_ptr_seen, "large Bytes are framed by reference, not copied");
    assert!(h.take_piece(700).is_none());
}

#[test]
fn uncredited_counts_sent_bytes_not_yet_credited_back() {
    let mut h = SendHalf::new();
    h.push_slice(&bytes(5000, 8));
    let p = h.take_piece(64 * 1024).unwrap();
    assert_eq!(p.body.len(), 5000);
    assert_eq!(h.uncredited(), 5000);
    // A SYN/ACK delta is not the peer consuming our data.
    h.add_credit(1000, false).unwrap();
    assert_eq!(h.uncredited(), 5000);
    h.add_credit(3000, true).unwrap();
    assert_eq!(h.uncredited(), 2000);
    h.add_credit(2000, true).unwrap();
    assert_eq!(h.uncredited(), 0);
    assert_eq!(h.credit, W - 5000 + 6000);
}
