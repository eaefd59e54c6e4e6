//! What the driver's CUDA graph calls (capture, instantiation, replay) do for the log, around the real call
//! that `intercept/cuda.rs`'s wrappers make: a capture's begin and end kept in `capture` (so that nothing
//! synchronises during one) and told to `sync::graph` (which FlashInfer calls each graph holds), the
//! page-locked pool readied before a capture can begin (`graph`), graph instantiations, and graph replays
//! (`FLASHLOG_SYNC`'s replay numbers and the synchronisation after each).

use crate::sync::graph::Replay;
use crate::{capture, graph, sync};

/// Before a capture-begin call: readies the page-locked pool while no capture is known to run (an
/// allocation during a capture would be refused and invalidate it).
pub fn before_capture_begin() {
    graph::prepare_before_capture();
}

/// After the capture-begin call `function` on `stream` returned `rc`.
pub fn after_capture_begin(function: &'static str, stream: usize, rc: i32) {
    if rc == 0 {
        capture::began(stream);
    }
    sync::graph::on_capture_begin(function, stream, rc);
}

/// After the capture-end call `function` on `stream` returned `rc`; `made` reads the graph it made (0: none),
/// once the capture is no longer counted as running.
pub fn after_capture_end(function: &'static str, stream: usize, rc: i32, made: impl FnOnce() -> usize) {
    if capture::end_result_ends_capture(rc) {
        capture::ended(stream);
    }
    sync::graph::on_capture_end(function, stream, made(), rc);
}

/// After an instantiation made the executable graph `exec` from `graph` (only when it succeeded).
pub fn after_instantiate(exec: usize, graph: usize) {
    sync::graph::on_instantiate(exec, graph);
}

/// Before a replay of the executable graph `exec`: its replay number, when `FLASHLOG_SYNC` follows replays.
pub fn before_replay(exec: usize) -> Option<Replay> {
    sync::graph::on_launch_before(exec)
}

/// After the replay of `exec` on `stream` (`per_thread`: the `_ptsz` entry point) returned `rc`.
pub fn after_replay(replay: Option<Replay>, exec: usize, stream: usize, per_thread: bool, rc: i32) {
    sync::graph::on_launch_after(replay, exec, stream, per_thread, rc);
}
