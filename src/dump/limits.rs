//! `FLASHINFER_DUMP_MAX_COUNT` and `FLASHINFER_DUMP_MAX_SIZE_GB`, exact: a call is dumped only if, before any
//! byte is copied, the number of dumped calls and the total bytes of this process (inputs and outputs) stay
//! within the limits. The first call refused says so in one stderr line; later calls that fit are dumped.

use crate::os::process::ProcessStamp;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static COUNT: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static REPORTED: AtomicBool = AtomicBool::new(false);
/// The process the counts belong to: a forked child (any kind of fork) finds it not its own and starts afresh.
static OWNER: ProcessStamp = ProcessStamp::new();

/// Makes the counts this process's own, zeroing them in a new process.
fn own_counts() {
    if OWNER.claim() {
        COUNT.store(0, Ordering::SeqCst);
        BYTES.store(0, Ordering::SeqCst);
        REPORTED.store(false, Ordering::Relaxed);
    }
}

/// Takes one call and `bytes` from the limits; false (and the one stderr line) when that does not fit.
pub fn reserve(name: &str, bytes: u64) -> bool {
    own_counts();
    let c = crate::state::config();
    let count_ok = COUNT.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < c.dump_max_count).then_some(n + 1));
    if count_ok.is_err() {
        refused(&format!("{name} is not dumped: FLASHINFER_DUMP_MAX_COUNT={} calls reached", c.dump_max_count));
        return false;
    }
    if !reserve_more(bytes) {
        COUNT.fetch_sub(1, Ordering::SeqCst);
        refused(&format!(
            "{name} is not dumped: its {bytes} bytes would pass FLASHINFER_DUMP_MAX_SIZE_GB ({} bytes in all)",
            c.dump_max_bytes
        ));
        return false;
    }
    true
}

/// Takes `bytes` more (a returned tensor); false when they do not fit.
pub fn reserve_more(bytes: u64) -> bool {
    own_counts();
    let max = crate::state::config().dump_max_bytes;
    BYTES.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_add(bytes).filter(|&t| t <= max)).is_ok()
}

fn refused(line: &str) {
    if !REPORTED.swap(true, Ordering::Relaxed) {
        super::folder::say(&format!("{line} (later calls that fit are still dumped)"));
    }
}
