//! The NaN watch (`FLASHLOG_WATCH=nonfinite`, level 5 and above): statistics are taken as usual, but a call's
//! records (eager calls: the inputs record is held back until the outputs are known) and replay records are
//! written only when one of their tensors holds a NaN or an infinity. At normal exit, one line in the log:
//! `[ts] flashlog watch: N calls and M graph replays checked, K with NaN or Inf` — only in a process that
//! watched something (a forked child counts from zero; a process that never logged prints nothing).

use super::callbacks;
use crate::config::LEVEL_STATS;
use crate::os::sys;
use crate::record::replay_lines::push_watch_summary;
use crate::{buffers, clock, log, state};
use crate::os::process::ProcessStamp;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);
static REPLAYS: AtomicU64 = AtomicU64::new(0);
static FLAGGED: AtomicU64 = AtomicU64::new(0);
static REGISTERED: AtomicBool = AtomicBool::new(false);
/// The process the counters belong to: a forked child (whatever made it) finds it not its own and starts from zero.
static OWNER: ProcessStamp = ProcessStamp::new();

/// Makes the counters this process's own, zeroing them in a new process.
fn own_counters() {
    if OWNER.claim() {
        CALLS.store(0, Ordering::Relaxed);
        REPLAYS.store(0, Ordering::Relaxed);
        FLAGGED.store(0, Ordering::Relaxed);
    }
}

/// Whether the watch is on.
pub fn enabled() -> bool {
    state::level() >= LEVEL_STATS && state::config().watch_nonfinite
}

/// Counts one eager call checked; `nonfinite`: a tensor held a NaN or an infinity.
pub fn call_checked(nonfinite: bool) {
    register_once();
    own_counters();
    CALLS.fetch_add(1, Ordering::Relaxed);
    if nonfinite {
        FLAGGED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one graph replay of one captured call checked.
pub fn replay_checked(nonfinite: bool) {
    register_once();
    own_counters();
    REPLAYS.fetch_add(1, Ordering::Relaxed);
    if nonfinite {
        FLAGGED.fetch_add(1, Ordering::Relaxed);
    }
}

fn register_once() {
    if REGISTERED.swap(true, Ordering::AcqRel) {
        return;
    }
    callbacks::at_exit(at_exit);
}

/// The exit handler: the summary line, when anything was watched and logging is still on.
extern "C" fn at_exit() {
    let _errno = sys::ErrnoGuard::save();
    state::guarded(|| {
        // A forked child that checked nothing itself still holds its parent's counts: nothing to say.
        if !OWNER.is_this_process() {
            return;
        }
        let (calls, replays) = (CALLS.load(Ordering::Relaxed), REPLAYS.load(Ordering::Relaxed));
        if calls + replays == 0 || state::level() == 0 {
            return;
        }
        let mut out = buffers::take();
        push_watch_summary(&mut out, &clock::now().0, calls, replays, FLAGGED.load(Ordering::Relaxed));
        log::write_record(&out);
    });
}
