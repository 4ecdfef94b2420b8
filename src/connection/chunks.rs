//! An ordered byte queue for a stream's send or receive buffer: large pieces
//! are kept by reference (zero copy), small ones are copied into a tail
//! buffer so that many of them become one frame or one chunk for `read`.
//!
//! The tail is inline and the list of pieces by reference is boxed, so the
//! common short message (copied in, taken out whole) costs one allocation,
//! the message's own buffer, and an idle queue owns no heap memory.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// A tail this long is sealed instead of grown when the next copy does not
/// fit in it.
const SEAL_AT: usize = 16 * 1024;

/// Bytes in order: every chunk in `chunks`, then `tail`.
#[derive(Debug, Default)]
pub struct ChunkQueue {
    /// Pieces kept by reference; allocated only while some are queued.
    /// Boxed on purpose: an idle stream carries 8 bytes here instead of a
    /// 32-byte `VecDeque`, twice per stream (docs/performance.md, memory).
    #[allow(clippy::box_collection)]
    chunks: Option<Box<VecDeque<Bytes>>>,
    /// Copied bytes, after every piece in `chunks`.
    tail: BytesMut,
}

impl ChunkQueue {
    /// Appends a copy of `data` to the tail.
    pub fn push_copy(&mut self, data: &[u8]) {
        // A full tail that already makes a good frame is sealed as a piece
        // rather than grown: growing reallocates and copies it again (2.7 %
        // of adapter bulk, which pushes 64 KiB writes).
        if self.tail.len() >= SEAL_AT && self.tail.capacity() - self.tail.len() < data.len() {
            let full = std::mem::take(&mut self.tail).freeze();
            self.chunks.get_or_insert_with(Default::default).push_back(full);
        }
        if self.tail.capacity() == 0 {
            // Allocated to size directly: `extend_from_slice` would go
            // through `reserve`'s growth policy first (3 % of churn).
            self.tail = BytesMut::with_capacity(data.len());
        }
        self.tail.extend_from_slice(data);
    }

    /// Appends `data` by reference.
    pub fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let chunks = self.chunks.get_or_insert_with(Default::default);
        if !self.tail.is_empty() {
            chunks.push_back(self.tail.split().freeze());
        }
        chunks.push_back(data);
    }

    /// Removes up to `max` bytes from the front, never spanning two chunks
    /// (so no copy is made). `None` when empty or `max` is 0.
    pub fn take_front(&mut self, max: usize) -> Option<Bytes> {
        if max == 0 {
            return None;
        }
        if let Some(chunks) = self.chunks.as_mut() {
            let piece = match chunks.front_mut()? {
                front if front.len() <= max => chunks.pop_front()?,
                front => front.split_to(max),
            };
            if chunks.is_empty() {
                self.chunks = None;
            }
            return Some(piece);
        }
        if self.tail.is_empty() {
            None
        } else if self.tail.len() <= max {
            // The whole buffer goes: an idle queue keeps no allocation.
            Some(std::mem::take(&mut self.tail).freeze())
        } else {
            Some(self.tail.split_to(max).freeze())
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.chunks = None;
        self.tail = BytesMut::new();
    }

    /// Bytes queued (O(chunks): for invariant checks).
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> usize {
        self.chunks.as_ref().map_or(0, |c| c.iter().map(Bytes::len).sum::<usize>())
            + self.tail.len()
    }

    /// Whether the queue owns no heap memory.
    #[cfg(test)]
    fn is_unallocated(&self) -> bool {
        self.chunks.is_none() && self.tail.capacity() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_kept_across_copies_and_references() {
        let mut q = ChunkQueue::default();
        q.push_copy(b"ab");
        q.push(Bytes::from_static(b"cdef"));
        q.push_copy(b"gh");
        assert_eq!(q.len(), 8);
        let mut out = Vec::new();
        while let Some(piece) = q.take_front(3) {
            assert!(piece.len() <= 3);
            out.extend_from_slice(&piece);
        }
        assert_eq!(out, b"abcdefgh");
        assert!(q.is_unallocated(), "storage freed when empty");
    }

    #[test]
    fn a_full_tail_is_sealed_not_regrown() {
        let mut q = ChunkQueue::default();
        q.push_copy(&[1u8; SEAL_AT]);
        let first = q.tail.as_ptr();
        q.push_copy(&[2u8; 100]);
        assert_eq!(q.len(), SEAL_AT + 100);
        let piece = q.take_front(usize::MAX).unwrap();
        assert_eq!(piece.as_ptr(), first, "the sealed tail kept its buffer");
        assert_eq!(piece.len(), SEAL_AT);
        assert_eq!(q.take_front(usize::MAX).unwrap().as_ref(), &[2u8; 100]);
        assert!(q.is_unallocated());
    }

    #[test]
    fn large_pieces_are_not_copied() {
        let data = Bytes::from(vec![1u8; 1000]);
        let mut q = ChunkQueue::default();
        q.push(data.clone());
        let first = q.take_front(600).unwrap();
        assert_eq!(first.as_ptr(), data.as_ptr());
        assert_eq!(q.take_front(usize::MAX).unwrap().len(), 400);
        assert_eq!(q.take_front(1), None);
    }
}
