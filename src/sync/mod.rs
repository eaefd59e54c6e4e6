//! Naming the call behind a CUDA error (`FLASHLOG_SYNC=1`, `FLASHLOG_GRAPH_MARKERS=1`; `docs/cuda-errors.md`).
//!
//! A kernel's fault (an illegal address, 700) surfaces at some later synchronising call, and the error is sticky.
//! With `FLASHLOG_SYNC=1` the shim synchronises the stream of each FlashInfer call before it (an error there
//! came from earlier work) and after it (an error there came from this call's kernels), never while a capture
//! may run, and writes the error with its name. Graph replays are followed by a synchronisation too
//! ([`graph`]). Independently of the variable, the call in progress on a thread is known to the kernel-launch
//! records ([`enter_call`], [`current_call`]).
//!
//! - error names (`cuGetErrorName`) and reason texts: `crate::stats::errors` (statistics and dumps use them too);
//! - [`graph`]: the calls captured into each graph, progress markers, and the replay error record.

pub mod graph;

use crate::abi::cuda_sync::{self, MODE_RELAXED};
use crate::abi::dlpack::device_type;
use crate::abi::ffi::FfiAny;
use crate::os::mem;
use crate::abi::prefetch::Prefetch;
use crate::capture;
use crate::correlation::CallTag;
use crate::record::sync_lines;
use crate::stats::errors::driver_error;
use crate::record::kind::{tensor_source, TensorSource};
use crate::{buffers, log, state};
use std::cell::Cell;
use std::sync::atomic::{AtomicI32, Ordering};

/// The process in which a FlashInfer call was seen under `FLASHLOG_SYNC` (0: none): driver errors of the
/// host's own graph work are written only then (a process that makes no FlashInfer call gets no output).
static CALLS_SEEN: AtomicI32 = AtomicI32::new(0);

/// Whether this process made a FlashInfer call under `FLASHLOG_SYNC`.
pub fn calls_seen() -> bool {
    CALLS_SEEN.load(Ordering::Relaxed) == crate::os::process::pid()
}

/// Whether `FLASHLOG_SYNC` is on (any level from 1).
pub fn enabled() -> bool {
    state::level() > 0 && state::config().sync
}

/// The outcome of synchronising a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Synchronised: no error.
    Clean,
    /// Not synchronised: a capture may run (the shim knows of one, or the stream itself is capturing).
    Skipped,
    /// A driver call failed with this code (the synchronisation, or a query before it).
    Failed(i32),
}

/// Synchronises `stream` unless a capture may run. The library's own capture state is asked first, then the
/// driver (`cuStreamIsCapturing`: a query that fails is that error, never "capturing"). The calling thread's
/// capture mode is RELAXED for the duration, so that a capture begun where the shim could not see it, on
/// another stream, is not invalidated by the synchronisation.
pub fn check_stream(stream: usize, per_thread: bool) -> Check {
    if capture::any_active() {
        return Check::Skipped;
    }
    let Some(d) = cuda_sync::driver() else {
        return Check::Skipped;
    };
    let mut mode = MODE_RELAXED;
    let exchanged = match d.exchange_capture_mode(&mut mode) {
        0 => true,
        cuda_sync::MISSING => false,
        code => return Check::Failed(code),
    };
    let result = match d.capture_status(stream, per_thread) {
        Ok(0) | Err(cuda_sync::MISSING) => match d.synchronize(stream, per_thread) {
            0 => Check::Clean,
            code => Check::Failed(code),
        },
        Ok(_) => Check::Skipped,
        Err(code) => Check::Failed(code),
    };
    if exchanged {
        d.exchange_capture_mode(&mut mode);
    }
    result
}

/// What `FLASHLOG_SYNC` knows of one call between its two synchronisations (plain data: it lives across the
/// real call).
#[derive(Clone, Copy)]
pub struct CallSync {
    /// The call's stream: TVM-FFI's current stream for the device of its first CUDA tensor argument (device 0
    /// when it has none), as level 5 finds it.
    pub stream: usize,
    /// The error the synchronisation before the call found.
    pub before: Option<i32>,
    /// The call's place in a capture, when its stream was being captured.
    pub captured: Option<&'static graph::CapturedCall>,
}

/// The stream a call runs on (see [`CallSync::stream`]).
pub fn call_stream(args: &[FfiAny], prefetch: Option<&Prefetch>) -> usize {
    // With the arguments prefetched (level 3 and above) no read; else only each descriptor's `device` field
    // (offset 8 of a `DLTensor`), one read per tensor up to the first CUDA one.
    let device_of = |s: TensorSource| match prefetch {
        Some(p) => s.read(Some(p)).ok().map(|d| (d.device.device_type, d.device.device_id)),
        None => {
            s.descriptor_addr().and_then(|a| mem::read_pod::<[i32; 2]>(a.checked_add(8)?).ok()).map(|d| (d[0], d[1]))
        }
    };
    let device = args
        .iter()
        .filter_map(|a| tensor_source(a).and_then(device_of))
        .find(|&(kind, _)| kind == device_type::CUDA)
        .map_or(0, |(_, id)| id);
    crate::stats::source::call_stream(device)
}

/// Before the call's inputs record: synchronises its stream (outside captures), or notes the call in the
/// capture its stream belongs to.
pub fn before_call(name: &'static str, tag: &CallTag, args: &[FfiAny], prefetch: Option<&Prefetch>) -> CallSync {
    let pid = crate::os::process::pid();
    if CALLS_SEEN.load(Ordering::Relaxed) != pid {
        CALLS_SEEN.store(pid, Ordering::Relaxed);
    }
    let stream = call_stream(args, prefetch);
    let captured = graph::note_captured_call(name, tag, stream);
    let before = match captured.is_none().then(|| check_stream(stream, false)) {
        Some(Check::Failed(code)) => Some(code),
        _ => None,
    };
    CallSync { stream, before, captured }
}

/// After the real call: a progress marker when the call was captured, else the synchronisation; the error
/// code when it failed. `standalone`: the call has no outputs record, so the line is written now, with the
/// call's correlation form (`[CUDA error after this call: NAME (CODE)] [call <name> #N thread T]`).
pub fn after_call(name: &str, tag: &CallTag, sync: &CallSync, standalone: bool) -> Option<i32> {
    if let Some(call) = sync.captured {
        graph::add_marker(call, sync.stream);
        return None;
    }
    let Check::Failed(code) = check_stream(sync.stream, false) else {
        return None;
    };
    if standalone {
        let mut out = buffers::take();
        sync_lines::push_error_after_alone(&mut out, driver_error(code), name, tag, &crate::clock::now());
        log::write_record(&out);
    }
    Some(code)
}

/// Puts the "before" line, `[CUDA error before this call: NAME (CODE), from earlier work]`, into a built inputs
/// record (`record::sync_lines::annotate_inputs`).
pub fn annotate_inputs(record: &mut Vec<u8>, code: i32) {
    sync_lines::annotate_inputs(record, driver_error(code));
}

/// Puts the "after" line, `[CUDA error after this call: NAME (CODE)]`, into a built outputs record
/// (`record::sync_lines::annotate_outputs`).
pub fn annotate_outputs(record: &mut Vec<u8>, correlated: bool, code: i32) {
    sync_lines::annotate_outputs(record, correlated, driver_error(code));
}

/// Ends the first line of a built launch record with ` [call <name> #N thread T at <time>]`, the call the kernel
/// was launched in; `stamp` is the launch record's own (`record::sync_lines::name_call_in_launch`).
pub fn name_call_in_launch(record: &mut Vec<u8>, call: &CurrentCall, stamp: &crate::clock::Stamp) {
    sync_lines::name_call_in_launch(record, call.name, &call.tag, stamp);
}

/// The FlashInfer call in progress on a thread: its name, number and thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrentCall {
    /// `<module>.<export>`.
    pub name: &'static str,
    /// The call's tag.
    pub tag: CallTag,
}

thread_local! {
    /// The call this thread is inside (a plain `Cell` without a destructor: no allocation, no lock).
    static CURRENT: Cell<Option<CurrentCall>> = const { Cell::new(None) };
}

/// Marks `name` as in progress on this thread until [`leave_call`]; returns the call it interrupted (a
/// FlashInfer call made from inside another).
pub fn enter_call(name: &'static str, tag: CallTag) -> Option<CurrentCall> {
    CURRENT.try_with(|c| c.replace(Some(CurrentCall { name, tag }))).ok().flatten()
}

/// Ends the call begun by [`enter_call`], restoring the one it interrupted.
pub fn leave_call(previous: Option<CurrentCall>) {
    let _ = CURRENT.try_with(|c| c.set(previous));
}

/// The FlashInfer call in progress on this thread, if any.
pub fn current_call() -> Option<CurrentCall> {
    CURRENT.try_with(|c| c.get()).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_nest_per_thread() {
        let tag = CallTag { number: 1, thread: 2, correlated: false };
        assert_eq!(current_call(), None);
        let outer = enter_call("m.outer", tag);
        let inner = enter_call("m.inner", CallTag { number: 2, ..tag });
        assert_eq!(current_call().unwrap().name, "m.inner");
        assert_eq!(std::thread::spawn(current_call).join().unwrap(), None);
        leave_call(inner);
        assert_eq!(current_call().unwrap().name, "m.outer");
        leave_call(outer);
        assert_eq!(current_call(), None);
    }
}
