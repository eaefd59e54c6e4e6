//! The library's own OS services, below the ABI layer: system calls and signal guards, file operations,
//! process and fork state in one place (with the one per-process reset), fault-tolerant reads of memory, the
//! pipes they use, scratch pools of reusable objects and the one claim loop of lock-free tables, the one
//! re-entrant claim of one-at-a-time work, the page-locked arena of graph statistics, a lock-free slot that
//! owns a boxed value, a lock-free slot of a value leaked for the process, and the memory-mapped file of the
//! flight recorder. Nothing here knows a foreign layout; `abi` builds on these, never the other way.

pub mod forkgen;
pub mod fsio;
pub mod leaked;
pub mod mem;
pub mod owned_slot;
pub mod pinned;
pub mod pipe;
pub mod scratch;
pub mod process;
pub mod ringmap;
pub mod signals;
pub mod slots;
pub mod sys;
pub mod thread_claim;
