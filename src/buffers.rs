//! Reusable record buffers. A record is built in a buffer taken from a small lock-free pool and given back
//! afterwards, so steady-state logging allocates nothing, takes no lock, and keeps no thread-local state
//! that would need a destructor.

use std::ops::{Deref, DerefMut};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

const SLOTS: usize = 32;
/// Buffers that grew beyond this are freed instead of pooled, so a huge record does not pin memory.
const KEEP_CAPACITY: usize = 1 << 20;

static POOL: [AtomicPtr<Vec<u8>>; SLOTS] = [const { AtomicPtr::new(null_mut()) }; SLOTS];

/// A buffer on loan from the pool; it returns there when dropped. The vector is boxed on purpose: the pool
/// holds thin pointers in `AtomicPtr` slots.
#[allow(clippy::box_collection)]
pub struct Buffer(Option<Box<Vec<u8>>>);

/// Takes an empty buffer from the pool (allocating only when every pooled buffer is in use).
pub fn take() -> Buffer {
    for slot in &POOL {
        let p = slot.swap(null_mut(), Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: every non-null pointer in the pool came from `Box::into_raw` in `Drop` below, and the
            // swap gave this thread sole ownership of it.
            let mut b = unsafe { Box::from_raw(p) };
            b.clear();
            return Buffer(Some(b));
        }
    }
    Buffer(Some(Box::new(Vec::with_capacity(4096))))
}

impl Deref for Buffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        self.0.as_ref().expect("buffer present until drop")
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.0.as_mut().expect("buffer present until drop")
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let Some(b) = self.0.take() else { return };
        if b.capacity() > KEEP_CAPACITY {
            return;
        }
        let p = Box::into_raw(b);
        for slot in &POOL {
            if slot.compare_exchange(null_mut(), p, Ordering::Release, Ordering::Relaxed).is_ok() {
                return;
            }
        }
        // SAFETY: the pool is full; `p` is still exclusively ours, so free it.
        drop(unsafe { Box::from_raw(p) });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn buffers_are_reused() {
        let mut a = super::take();
        a.extend_from_slice(b"hello");
        let ptr = a.as_ptr();
        drop(a);
        let b = super::take();
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), ptr);
    }
}
