//! The scratch pool: a small lock-free pool of reusable heap objects (record buffers, the scratch of batched
//! reads and statistics), so steady-state logging allocates nothing, takes no lock and keeps no thread-local
//! state that would need a destructor. Every pool of the library is one of these; what differs is said by the
//! object's [`Reset`]: how it is emptied, and the size beyond which it is freed rather than kept (so one huge
//! record or read does not pin its memory for the life of the process).
//!
//! Slots are taken and given back with [`slots::claim`], so nothing ever waits: a signal handler that
//! interrupts a thread holding an object takes another one (or makes one), and a fork child inherits the pool
//! as it was: an object on loan in another thread at the fork is simply missing from it.

use super::slots;
use std::ops::{Deref, DerefMut};
use std::ptr::null_mut;
use std::sync::atomic::AtomicPtr;

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
        if let Some((_, p)) = slots::claim(&self.slots, 0, |p: *mut T| !p.is_null(), null_mut()) {
            // SAFETY: every non-null pointer in a slot came from `Box::into_raw` in `Lease::drop`, and the
            // claim gave this thread sole ownership of it.
            let mut b = unsafe { Box::from_raw(p) };
            b.reset();
            return Lease { item: Some(b), pool: self };
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
        if slots::claim(&self.pool.slots, 0, |q: *mut T| q.is_null(), p).is_some() {
            return;
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
    }

    static NESTED: ScratchPool<V, 2> = ScratchPool::new();

    #[test]
    fn a_nested_take_gets_its_own_object_and_a_full_pool_frees_the_rest() {
        // As a signal handler would: take again while this thread holds one.
        let mut outer = NESTED.take();
        outer.0.push(1);
        let mut inner = NESTED.take();
        assert!(inner.0.is_empty());
        inner.0.push(2);
        let mut third = NESTED.take();
        third.0.push(3);
        let kept = [outer.0.as_ptr(), inner.0.as_ptr()];
        drop(inner);
        drop(outer);
        drop(third); // two slots: this one is freed
        let again = [NESTED.take(), NESTED.take()];
        assert!(again.iter().all(|l| kept.contains(&l.0.as_ptr())));
    }

    static SMALL: ScratchPool<V, 1> = ScratchPool::new();

    #[test]
    fn an_object_grown_past_its_limit_is_freed_not_kept() {
        let mut big = SMALL.take();
        big.0.reserve(5000);
        drop(big);
        assert!(SMALL.take().0.capacity() < 1000);
    }
}
