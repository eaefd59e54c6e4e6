//! Reusable record buffers. A record is built in a buffer taken from a small lock-free pool and given back
//! afterwards, so steady-state logging allocates nothing, takes no lock, and keeps no thread-local state
//! that would need a destructor. The pool is the generic [`ScratchPool`] (which gives the same guarantees to
//! a fork child and to a signal handler that interrupts a thread holding a buffer); this module only says
//! what a record buffer is: its first capacity and the capacity beyond which it is freed, not kept.

use crate::os::scratch::{Lease, Reset, ScratchPool};
use std::ops::{Deref, DerefMut};

const SLOTS: usize = 32;
/// Capacity of a buffer made fresh (most records fit).
const FIRST_CAPACITY: usize = 4096;
/// Buffers that grew beyond this are freed instead of pooled, so a huge record does not pin memory.
const KEEP_CAPACITY: usize = 1 << 20;

/// The bytes of one record being built.
pub struct RecordBytes(Vec<u8>);

impl Default for RecordBytes {
    fn default() -> Self {
        RecordBytes(Vec::with_capacity(FIRST_CAPACITY))
    }
}

impl Reset for RecordBytes {
    fn reset(&mut self) {
        self.0.clear();
    }
    fn keep(&self) -> bool {
        self.0.capacity() <= KEEP_CAPACITY
    }
}

impl Deref for RecordBytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for RecordBytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

static POOL: ScratchPool<RecordBytes, SLOTS> = ScratchPool::new();

/// A buffer on loan from the pool; it returns there when dropped.
pub type Buffer = Lease<RecordBytes, SLOTS>;

/// Takes an empty buffer from the pool (allocating only when every pooled buffer is in use).
pub fn take() -> Buffer {
    POOL.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test has a pool of its own: the process's pool is shared with every other test running at the same
    // time (anything that writes a record), which may take the very buffer a test expects back.

    #[test]
    fn buffers_are_reused() {
        static OWN: ScratchPool<RecordBytes, SLOTS> = ScratchPool::new();
        let mut a = OWN.take();
        a.extend_from_slice(b"hello");
        let ptr = a.as_ptr();
        drop(a);
        let b = OWN.take();
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), ptr);
    }

    #[test]
    fn a_fresh_buffer_has_room_for_a_record_and_a_huge_one_is_not_kept() {
        static OWN: ScratchPool<RecordBytes, SLOTS> = ScratchPool::new();
        let held: Vec<Buffer> = (0..SLOTS + 1).map(|_| OWN.take()).collect();
        assert!(held.iter().all(|b| b.capacity() >= FIRST_CAPACITY));
        drop(held);
        let mut big = OWN.take();
        big.reserve(KEEP_CAPACITY + 1);
        drop(big);
        let again: Vec<Buffer> = (0..SLOTS).map(|_| OWN.take()).collect();
        assert!(again.iter().all(|b| b.capacity() <= KEEP_CAPACITY));
    }
}
