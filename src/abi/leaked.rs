//! A slot holding a reference to a value leaked for the rest of the process, read and published with atomics:
//! lock-free tables and lists of entries that are never freed (captures, captured calls, executable graphs).

use std::sync::atomic::{AtomicPtr, Ordering};

/// An atomic `Option<&'static T>`.
pub struct LeakedSlot<T: 'static>(AtomicPtr<T>);

impl<T: 'static> LeakedSlot<T> {
    /// An empty slot.
    pub const fn empty() -> Self {
        LeakedSlot(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// The value, if one was published.
    pub fn get(&self) -> Option<&'static T> {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: only `&'static T` are ever stored (see `set` and `replace_if`), and they are never freed.
        unsafe { p.as_ref() }
    }

    /// Publishes `value`.
    pub fn set(&self, value: &'static T) {
        self.0.store(value as *const T as *mut T, Ordering::Release);
    }

    /// Publishes `value` if the slot still holds `current`; else returns what it holds.
    pub fn replace_if(&self, current: Option<&'static T>, value: &'static T) -> Result<(), Option<&'static T>> {
        let cur = current.map_or(std::ptr::null_mut(), |c| c as *const T as *mut T);
        self.0
            .compare_exchange(cur, value as *const T as *mut T, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            // SAFETY: as in `get`.
            .map_err(|seen| unsafe { seen.as_ref() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_once() {
        let slot: LeakedSlot<u32> = LeakedSlot::empty();
        assert!(slot.get().is_none());
        let a: &'static u32 = Box::leak(Box::new(1));
        let b: &'static u32 = Box::leak(Box::new(2));
        assert!(slot.replace_if(None, a).is_ok());
        assert_eq!(slot.replace_if(None, b), Err(Some(a)));
        slot.set(b);
        assert_eq!(slot.get(), Some(b));
    }
}
