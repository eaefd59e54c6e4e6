//! The page-locked pool of replay statistics: `FLASHLOG_GRAPH_STATS_MB` MiB (default 64) from
//! `cuMemAllocHost_v2`, allocated once, outside any capture, by the first capture-begin wrapper that finds
//! the driver ready; never freed (graphs may be replayed until the process exits). Spans are handed out by
//! [`crate::os::pinned::reserve`]; once the pool is spent, further captured tensors get the skip line.

use crate::abi::cuda_driver;
use crate::os::pinned;
use crate::record::stats_lines::Skipped;
use crate::{capture, state};
use std::sync::atomic::{AtomicU8, Ordering};

const UNPREPARED: u8 = 0;
const PREPARING: u8 = 1;
const READY: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNPREPARED);

/// Allocates the pool if it is not there yet and no capture is known to run. A thread that finds another one
/// allocating waits for it, so that its own capture cannot begin while the allocation is in flight (which
/// would invalidate it). When the driver refuses (not initialised yet, out of memory), the next capture-begin
/// tries again.
pub fn prepare() {
    loop {
        match STATE.load(Ordering::Acquire) {
            READY => return,
            PREPARING => std::thread::yield_now(),
            _ => {
                if capture::any_active() {
                    return;
                }
                if STATE.compare_exchange(UNPREPARED, PREPARING, Ordering::AcqRel, Ordering::Acquire).is_err() {
                    continue;
                }
                let ready = allocate();
                STATE.store(if ready { READY } else { UNPREPARED }, Ordering::Release);
                return;
            }
        }
    }
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

/// Why a tensor is not covered once the pool is spent: `graph statistics pool full (64 MiB)`.
pub fn full() -> Skipped {
    Skipped::PoolFull { mb: state::config().graph_stats_mb }
}
