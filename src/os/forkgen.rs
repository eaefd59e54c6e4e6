//! Per-process slots: state guarded by a lock is kept in one slot per process generation, and a forked child
//! moves to a slot of its own. A thread of the parent may hold a lock at the moment of a fork; that thread does
//! not exist in the child, so locking the parent's slot there would hang the child forever. The child never
//! touches it. A new process is told by the page a fork wipes ([`crate::os::process`]), so every kind of fork
//! (`fork`, `_Fork`, a raw system call) is covered without fork handlers.
//!
//! This is the same per-process reset as [`crate::os::process::ProcessStamp`] (both go by the process's
//! generation), in the one shape a stamp cannot take: a stamp lets the first thread of a child reset values
//! in place, but what a lock guards cannot be reset in place when the lock itself may be held by a thread the
//! child does not have; so each generation gets its own lock.

use crate::os::process;

/// Slots per piece of state: 16 nested fork generations before a slot comes back.
pub const SLOTS: usize = 16;

/// The slot this process uses.
pub fn slot() -> usize {
    process::generation() % SLOTS
}
