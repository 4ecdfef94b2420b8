//! Yamux frames: the 12-byte header and its fields (`header.rs`), and a
//! streaming decoder (`decoder.rs`).
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

mod decoder;
mod header;

pub use decoder::{Decoder, Frame};
pub use header::{Flags, FrameType, Header, HEADER_LEN, VERSION};
