//! A small lock-free pool of reusable heap objects (the scratch buffers of batched reads), so steady-state
//! logging allocates nothing, takes no lock and keeps no thread-local state that would need a destructor
//! (the approach of `buffers.rs`, for any `Default` type). A fork child inherits the pool as it was: an object
//! on loan in another thread at the fork is simply missing from it, nothing waits for it.

use std::ops::{Deref, DerefMut};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Up to `N` idle objects of type `T`.
pub struct ScratchPool<T: 'static, const N: usize> {
    slots: [AtomicPtr<T>; N],
}

impl<T: Default + Reset + 'static, const N: usize> ScratchPool<T, N> {
    /// An empty pool (usable in a `static`).
    pub const fn new() -> Self {
        ScratchPool { slots: [const { AtomicPtr::new(null_mut()) }; N] }
    }

    /// Takes an idle object (reset), or makes a new one when every pooled object is on loan.
    pub fn take(&'static self) -> Lease<T, N> {
        for slot in &self.slots {
            let p = slot.swap(null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: every non-null pointer in a slot came from `Box::into_raw` in `Lease::drop`, and the
                // swap gave this thread sole ownership of it.
                let mut b = unsafe { Box::from_raw(p) };
                b.reset();
                return Lease { item: Some(b), pool: self };
            }
        }
        Lease { item: Some(Box::default()), pool: self }
    }
}

impl<T: Default + Reset + 'static, const N: usize> Default for ScratchPool<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// What a pooled object does when it is taken again: forget its contents, and say (from [`Reset::keep`])
/// whether it grew too large to be kept.
pub trait Reset {
    /// Clears the contents, keeping the capacity.
    fn reset(&mut self);
    /// Whether the object is small enough to go back to the pool (a huge one is freed instead).
    fn keep(&self) -> bool {
        true
    }
}

/// An object on loan from a [`ScratchPool`]; it goes back there when dropped.
pub struct Lease<T: Default + Reset + 'static, const N: usize> {
    item: Option<Box<T>>,
    pool: &'static ScratchPool<T, N>,
}

impl<T: Default + Reset + 'static, const N: usize> Deref for Lease<T, N> {
    type Target = T;
    fn deref(&self) -> &T {
        self.item.as_ref().expect("present until drop")
    }
}

impl<T: Default + Reset + 'static, const N: usize> DerefMut for Lease<T, N> {
    fn deref_mut(&mut self) -> &mut T {
        self.item.as_mut().expect("present until drop")
    }
}

impl<T: Default + Reset + 'static, const N: usize> Drop for Lease<T, N> {
    fn drop(&mut self) {
        let Some(b) = self.item.take() else { return };
        if !b.keep() {
            return;
        }
        let p = Box::into_raw(b);
        for slot in &self.pool.slots {
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
    use super::*;

    #[derive(Default)]
    struct V(Vec<u8>);
    impl Reset for V {
        fn reset(&mut self) {
            self.0.clear();
        }
        fn keep(&self) -> bool {
            self.0.capacity() < 1000
        }
    }

    static POOL: ScratchPool<V, 2> = ScratchPool::new();

    #[test]
    fn objects_are_reused_and_reset() {
        let mut a = POOL.take();
        a.0.extend_from_slice(b"abc");
        let ptr = a.0.as_ptr();
        drop(a);
        let b = POOL.take();
        assert!(b.0.is_empty());
        assert_eq!(b.0.as_ptr(), ptr);
        let mut c = POOL.take();
        c.0.reserve(5000);
        drop(c);
        drop(b);
    }
}
