//! Fuzz target `pair_ops`: `Arbitrary` operation sequences against a pair of connections, with
//! every invariant of the shared driver checked after every step.
//!
//! The harness is a plain function in `tests/support/harness.rs`, shared
//! with `tests/fuzz_corpus.rs`, which replays the corpus on stable.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/mod.rs"]
mod support;

use support::harness;

fuzz_target!(|data: &[u8]| harness::pair_ops(data));
