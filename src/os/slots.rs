//! The one claim loop of the library's lock-free tables: look along an array of atomic slots for one whose
//! value fits, and claim it with a compare-exchange; when every slot is busy, say so, and the caller falls
//! back (allocates, takes another route, counts an overflow). Nothing waits, so the loop is safe to re-enter:
//! a signal handler that interrupts a thread between its claim and its release finds that slot busy and
//! claims another one, and a fork child inherits each slot as it was (one claimed by a thread that does not
//! exist there is simply busy). Used by the scratch pools, the pipe set, the capture table and the ring's
//! in-flight table.

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// An atomic word that can be claimed (implemented for the atomics the tables use).
pub trait Slot {
    /// The word's value.
    type Value: Copy;
    /// Reads the value (no ordering: the compare-exchange decides).
    fn peek(&self) -> Self::Value;
    /// Replaces `current` by `new` if the slot still holds `current` (sequentially consistent on success).
    fn replace(&self, current: Self::Value, new: Self::Value) -> bool;
}

macro_rules! slot_for {
    ($($atomic:ty => $value:ty),* $(,)?) => {
        $(
            impl Slot for $atomic {
                type Value = $value;
                fn peek(&self) -> $value {
                    self.load(Ordering::Relaxed)
                }
                fn replace(&self, current: $value, new: $value) -> bool {
                    self.compare_exchange(current, new, Ordering::SeqCst, Ordering::Relaxed).is_ok()
                }
            }
        )*
    };
}

slot_for!(AtomicU8 => u8, AtomicU64 => u64, AtomicUsize => usize);

impl<T> Slot for AtomicPtr<T> {
    type Value = *mut T;
    fn peek(&self) -> *mut T {
        self.load(Ordering::Relaxed)
    }
    fn replace(&self, current: *mut T, new: *mut T) -> bool {
        self.compare_exchange(current, new, Ordering::SeqCst, Ordering::Relaxed).is_ok()
    }
}

/// Claims one slot of `slots`, looking from index `start` on (round the end): the first whose value
/// `fits` is replaced by `new`. Returns its index and the value it held, or None when no slot fits (all busy).
pub fn claim<S: Slot>(
    slots: &[S],
    start: usize,
    fits: impl Fn(S::Value) -> bool,
    new: S::Value,
) -> Option<(usize, S::Value)> {
    let n = slots.len();
    (0..n).map(|k| (start + k) % n).find_map(|i| {
        let seen = slots[i].peek();
        (fits(seen) && slots[i].replace(seen, new)).then_some((i, seen))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_each_free_slot_once_then_reports_all_busy() {
        let slots = [const { AtomicU8::new(0) }; 3];
        let got: Vec<usize> = (0..3).filter_map(|_| claim(&slots, 1, |v| v == 0, 7)).map(|(i, _)| i).collect();
        assert_eq!(got, [1, 2, 0], "from `start`, round the end");
        assert!(claim(&slots, 0, |v| v == 0, 7).is_none(), "all busy: the caller falls back");
        slots[2].store(0, Ordering::SeqCst);
        assert_eq!(claim(&slots, 0, |v| v == 0, 9), Some((2, 0)));
        assert_eq!(slots[2].load(Ordering::SeqCst), 9);
    }

    #[test]
    fn takes_any_fitting_value_and_returns_it() {
        let mut a = 5u32;
        let mut b = 6u32;
        let slots = [AtomicPtr::new(std::ptr::null_mut()), AtomicPtr::new(&mut a), AtomicPtr::new(&mut b)];
        let (i, p) = claim(&slots, 0, |p: *mut u32| !p.is_null(), std::ptr::null_mut()).unwrap();
        assert_eq!((i, p), (1, &mut a as *mut u32));
        assert!(slots[1].load(Ordering::SeqCst).is_null());
    }

    #[test]
    fn a_nested_claim_gets_another_slot() {
        // A signal handler that interrupts a holder claims in the same table: it gets another slot, or None.
        let slots = [const { AtomicUsize::new(0) }; 2];
        let (outer, _) = claim(&slots, 0, |v| v == 0, 1).unwrap();
        let (inner, _) = claim(&slots, 0, |v| v == 0, 2).unwrap();
        assert_ne!(outer, inner);
        assert!(claim(&slots, 0, |v| v == 0, 3).is_none());
    }

    #[test]
    fn concurrent_claims_never_share_a_slot() {
        static SLOTS: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
        let won: Vec<Vec<usize>> = (1..=4u64)
            .map(|t| std::thread::spawn(move || (0..16).filter_map(|_| claim(&SLOTS, 0, |v| v == 0, t)).map(|c| c.0).collect()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let mut all: Vec<usize> = won.concat();
        assert_eq!(all.len(), 64);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 64, "every slot won by exactly one thread");
    }
}
