//! The page-locked arena of replay statistics: `FLASHLOG_GRAPH_STATS_MB` MiB (default 64) from
//! `cuMemAllocHost_v2`, allocated once, outside any capture, by the first capture-begin wrapper that finds
//! the driver ready; never freed (graphs may be replayed until the process exits). Spans are handed out by
//! [`crate::os::pinned::reserve`]; once the arena is spent, further captured tensors get the skip line.

use crate::abi::cuda_driver;
use crate::os::pinned;
use crate::record::stats_lines::Skipped;
use crate::os::process::ProcessStamp;
use crate::os::thread_claim::ThreadClaim;
use crate::{capture, state};
use std::sync::atomic::{AtomicBool, Ordering};

static READY: AtomicBool = AtomicBool::new(false);
/// The thread allocating the arena.
static PREPARER: ThreadClaim = ThreadClaim::new();
/// [`PREPARER`]'s process: a fork child forgets a parent's thread that was allocating.
static PREPARER_PROCESS: ProcessStamp = ProcessStamp::new();

/// Allocates the arena if it is not there yet and no capture is known to run. A thread that finds another one
/// allocating waits for it, so that its own capture cannot begin while the allocation is in flight (which
/// would invalidate it); a signal handler that interrupted the allocating thread does not wait for itself.
/// When the driver refuses (not initialised yet, out of memory), the next capture-begin tries again.
pub fn prepare() {
    if READY.load(Ordering::Acquire) {
        return;
    }
    PREPARER.forget_if_stale(&PREPARER_PROCESS);
    PREPARER.run_once(
        || READY.load(Ordering::Acquire),
        || {
            if !capture::any_active() && allocate() {
                READY.store(true, Ordering::Release);
            }
        },
    );
}

fn allocate() -> bool {
    let bytes = state::config().graph_stats_mb.saturating_mul(1 << 20);
    if bytes == 0 {
        return pinned::install(0, 0) || pinned::installed();
    }
    let Some(driver) = cuda_driver::driver() else {
        return false;
    };
    match driver.alloc_host(bytes) {
        Ok(base) => pinned::install(base, bytes) || pinned::installed(),
        Err(_) => false,
    }
}

/// Why a tensor is not covered once the arena is spent: `graph statistics pool full (64 MiB)` (the record keeps
/// its wording).
pub fn full() -> Skipped {
    Skipped::PoolFull { mb: state::config().graph_stats_mb }
}
