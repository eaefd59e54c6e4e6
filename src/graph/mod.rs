//! Statistics at CUDA graph replay (`FLASHLOG_GRAPH_STATS=1`) and the NaN watch (`FLASHLOG_WATCH=nonfinite`),
//! both at level 5 and above (`docs/log-format.md`, "Statistics at graph replay" and "NaN watch").
//!
//! A call made while its stream is being captured cannot have statistics then (its kernels have not run, and
//! synchronising would invalidate the capture). Instead, for each tensor argument, the shim adds to the
//! capture a device-to-host copy of the span the view covers into page-locked memory (a memcpy node) and, per
//! call and phase, one host function (a host node). At every replay the host function computes the
//! statistics of the copied bytes with the level-5 code and writes one replay record.
//!
//! - [`callbacks`]: the C-ABI adapters the driver calls (`cuLaunchHostFunc` host functions) and the exit handler;
//! - [`arena`]: the page-locked arena, allocated by the capture-begin wrappers before a capture starts;
//! - [`defer`]: what a captured call adds to the capture (the copies, the host functions, the lines);
//! - [`replay`]: the host functions and the replay records;
//! - [`watch`]: the NaN watch's counters and its line at exit.

pub mod callbacks;
pub mod defer;
pub mod kernel;
pub mod arena;
pub mod replay;
pub mod watch;

use crate::config::LEVEL_STATS;
use crate::os::sys::ErrnoGuard;
use crate::state;

/// Whether replay statistics are on (level 5 and above with `FLASHLOG_GRAPH_STATS=1`).
pub fn enabled() -> bool {
    state::level() >= LEVEL_STATS && state::config().graph_stats
}

/// Called by every capture-begin wrapper before it calls the driver: prepares the page-locked arena while no
/// capture is known to run (an allocation during a capture would be refused and invalidate it). Cheap and
/// allocation-free when replay statistics are off; keeps `errno`.
pub fn prepare_before_capture() {
    if state::level() < LEVEL_STATS {
        return;
    }
    let _errno = ErrnoGuard::save();
    state::guarded(|| {
        if state::config().graph_stats {
            arena::prepare();
            crate::gpu::prepare_capture();
        }
    });
}
