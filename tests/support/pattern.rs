//! The one checkable payload of the tests: every byte depends on a key (a
//! stream, a writer, a seed) and its offset, so a byte lost, duplicated or
//! moved anywhere shows up as a mismatch at the receiver.
//!
//! (The interop tests keep their own pattern: it is a contract with the Go
//! and JavaScript peers, which generate and check it too.)

/// Byte `offset` of the pattern with `key`. It depends on the offset through
/// a multiplicative hash, so it does not repeat with a short period.
pub fn pattern_byte(key: u64, offset: u64) -> u8 {
    (offset.wrapping_add(key.wrapping_mul(0x2545_F491)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56)
        as u8
}

/// `len` bytes of the pattern with `key`, from `offset`.
pub fn pattern_at(key: u64, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern_byte(key, offset + i)).collect()
}

/// `len` bytes of the pattern with `key`, from its start.
pub fn pattern(len: usize, key: u64) -> Vec<u8> {
    pattern_at(key, 0, len)
}

/// Compares two byte strings and reports the first difference, instead of
/// printing megabytes.
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i} ({} vs {})", got[i], want[i]);
    }
    assert_eq!(got.len(), want.len(), "{what}: length");
}
