//! Fork generations: state guarded by a lock is kept in one slot per generation, and a forked child moves to the
//! next slot. A thread of the parent may hold a lock at the moment of `fork`; that thread does not exist in the
//! child, so locking the parent's slot there would hang the child forever. The child never touches it.

use crate::abi::sys;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// Slots per piece of state: 16 nested fork generations before a slot comes back.
pub const SLOTS: usize = 16;

static GENERATION: AtomicUsize = AtomicUsize::new(0);
static HANDLER: Once = Once::new();

extern "C" fn in_child() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// The slot this process uses (the fork handler is registered on first use, before any lock is taken).
pub fn slot() -> usize {
    HANDLER.call_once(|| sys::at_fork_child(in_child));
    GENERATION.load(Ordering::SeqCst) % SLOTS
}
