//! One heap object owned by a lock-free slot: a thread takes it out (and then owns it alone), uses it, and puts
//! it back. Readers never share a pointer, so an object can be replaced and freed at any time without a lock,
//! a hazard pointer or a leak: a thread that finds the slot empty (another thread has the object on loan)
//! works without it. Used for the kernel-name table, whose entries are replaced when a handle is reused.

use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A slot holding at most one `Box<T>`.
pub struct OwnedSlot<T> {
    ptr: AtomicPtr<T>,
}

impl<T> OwnedSlot<T> {
    /// An empty slot (usable in a `static`).
    pub const fn new() -> Self {
        OwnedSlot { ptr: AtomicPtr::new(null_mut()) }
    }

    /// Takes the object out, leaving the slot empty; None when it is empty or on loan to another thread.
    pub fn take(&self) -> Option<Box<T>> {
        let p = self.ptr.swap(null_mut(), Ordering::Acquire);
        // SAFETY: every non-null pointer stored here came from `Box::into_raw` in `put`, and the swap gave this
        // thread sole ownership of it.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
    }

    /// Puts `value` in the slot; whatever another thread put there meanwhile is dropped (an entry of the same
    /// purpose: the table stays bounded at one object per slot).
    pub fn put(&self, value: Box<T>) {
        let old = self.ptr.swap(Box::into_raw(value), Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: as in `take`: the swap gave this thread sole ownership of the previous object.
            drop(unsafe { Box::from_raw(old) });
        }
    }
}

impl<T> Drop for OwnedSlot<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl<T> Default for OwnedSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: the slot only moves a `Box<T>` between threads, one owner at a time.
unsafe impl<T: Send> Sync for OwnedSlot<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for OwnedSlot<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Counted(u32);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn take_put_replace_and_drop_once() {
        let slot = OwnedSlot::new();
        assert!(slot.take().is_none());
        slot.put(Box::new(Counted(1)));
        let one = slot.take().unwrap();
        assert_eq!(one.0, 1);
        assert!(slot.take().is_none(), "on loan: empty");
        slot.put(Box::new(Counted(2)));
        slot.put(one); // replaces 2, which is dropped
        assert_eq!(DROPS.load(Ordering::Relaxed), 1);
        assert_eq!(slot.take().unwrap().0, 1);
        assert_eq!(DROPS.load(Ordering::Relaxed), 2);
    }
}
