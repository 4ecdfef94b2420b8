//! Fuzz target `decoder`: Raw bytes into `frame::Decoder`: frames must not depend on the chunking,
//! must re-encode to the input, and errors must be the right ones.
//!
//! The harness is a plain function in `tests/support/harness.rs`, shared
//! with `tests/fuzz_corpus.rs`, which replays the corpus on stable.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/mod.rs"]
mod support;

use support::harness;

fuzz_target!(|data: &[u8]| harness::decoder(data));
