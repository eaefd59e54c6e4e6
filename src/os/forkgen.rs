//! Per-process slots: state guarded by a lock is kept in one slot per process generation, and a forked child
//! moves to a slot of its own. A thread of the parent may hold a lock at the moment of a fork; that thread does
//! not exist in the child, so locking the parent's slot there would hang the child forever. The child never
//! touches it. A new process is told by the page a fork wipes ([`crate::os::process`]), so every kind of fork
//! (`fork`, `_Fork`, a raw system call) is covered without fork handlers.

use crate::os::process;

/// Slots per piece of state: 16 nested fork generations before a slot comes back.
pub const SLOTS: usize = 16;

/// The slot this process uses.
pub fn slot() -> usize {
    process::generation() % SLOTS
}
