//! Fuzz target `connection`: Arbitrary bytes, chunking and timer ticks into one `Connection`, in
//! either role: no panic, invariants and event consistency after every chunk.
//!
//! The harness is a plain function in `tests/support/harness.rs`, shared
//! with `tests/fuzz_corpus.rs`, which replays the corpus on stable.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/mod.rs"]
mod support;

use support::harness;

fuzz_target!(|data: &[u8]| harness::connection(data));
