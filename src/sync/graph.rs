//! CUDA errors inside graph replays (`FLASHLOG_SYNC=1`): which FlashInfer calls each graph holds, and the
//! record written when a replay fails.
//!
//! The capture wrappers tell this module when a capture begins and ends (the graph it made), the instantiate
//! wrappers which graph an executable graph comes from, and a FlashInfer call made on a capturing stream is
//! noted in its capture, in order. Every `cuGraphLaunch` is counted per executable graph (the replay number)
//! and followed by a synchronisation of its stream; when that fails, one record names the graph, the replay
//! and the captured calls, each with its call number (the `#N` of its capture-time record). With
//! `FLASHLOG_GRAPH_MARKERS=1` each captured call is followed by a host function (a progress marker: no copy,
//! no statistics) that notes the call as completed: the record then names the last captured call that
//! completed and the first that did not (after a fault the driver runs no further host function).
//!
//! Lock-free: fixed rings of leaked entries, published with atomics (a capture or an instantiation allocates
//! once; a replay allocates only to write its error record).

use super::{check_stream, Check};
use crate::stats::errors;
use crate::abi::cuda_driver;
use crate::os::leaked::LeakedSlot;
use crate::os::sys::ErrnoGuard;
use crate::correlation::CallTag;
use crate::graph::callbacks::{self, DriverCallback};
use crate::record::sync_lines::{self, CapturedCallLine, CapturedCalls, GraphName};
use crate::{buffers, capture, clock, log, state};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Whether progress markers are on (`FLASHLOG_GRAPH_MARKERS=1`, with `FLASHLOG_SYNC=1`).
pub fn markers_enabled() -> bool {
    super::enabled() && state::config().graph_markers
}

/// One capture: its id (`graph id=N`), stream while it runs, the graph it made and the calls noted in it.
pub struct Capture {
    id: u64,
    /// `stream + 1` while the capture runs, 0 after.
    stream_key: AtomicUsize,
    /// The graph `cuStreamEndCapture` returned (0 until then, or when it made none).
    graph: AtomicUsize,
    /// The calls, newest first.
    calls: LeakedSlot<CapturedCall>,
    /// Calls noted so far (the next call's position is this plus one).
    count: AtomicU32,
    /// Whether a marker was added after every call noted (each add succeeded).
    markers: AtomicBool,
    /// The position of the last call whose marker ran in the replay in progress (0: none yet).
    last_done: AtomicU32,
}

/// One FlashInfer call captured into a graph.
pub struct CapturedCall {
    name: &'static str,
    tag: CallTag,
    /// 1 for the first call of the capture.
    position: u32,
    capture: &'static Capture,
    /// The call noted before this one (empty for the first).
    previous: LeakedSlot<CapturedCall>,
}

/// Captures and executable graphs remembered (the oldest are forgotten first).
const RING: usize = 256;
static CAPTURES: [LeakedSlot<Capture>; RING] = [const { LeakedSlot::empty() }; RING];
static NEXT_CAPTURE: AtomicU64 = AtomicU64::new(0);

/// An executable graph: its handle, its capture and its replays so far.
struct Exec {
    exec: usize,
    capture: Option<&'static Capture>,
    replays: AtomicU64,
    /// Whether a failing replay of it was written in full already (later ones get one line).
    reported: AtomicBool,
}
static EXECS: [LeakedSlot<Exec>; RING] = [const { LeakedSlot::empty() }; RING];
static NEXT_EXEC: AtomicUsize = AtomicUsize::new(0);

/// The live entries of a ring, newest first.
fn newest_first<T>(ring: &'static [LeakedSlot<T>; RING], next: usize) -> impl Iterator<Item = &'static T> {
    (0..RING).filter_map(move |k| ring[(next + RING - 1 - k) % RING].get())
}

fn capture_on(stream: usize) -> Option<&'static Capture> {
    let next = NEXT_CAPTURE.load(Ordering::Acquire) as usize;
    newest_first(&CAPTURES, next).find(|c| c.stream_key.load(Ordering::Acquire) == stream.wrapping_add(1))
}

/// A capture began on `stream` (its begin wrapper, after the driver's success).
fn capture_began(stream: usize) {
    let n = NEXT_CAPTURE.fetch_add(1, Ordering::AcqRel);
    let c = Box::leak(Box::new(Capture {
        id: n + 1,
        stream_key: AtomicUsize::new(stream.wrapping_add(1)),
        graph: AtomicUsize::new(0),
        calls: LeakedSlot::empty(),
        count: AtomicU32::new(0),
        markers: AtomicBool::new(markers_enabled()),
        last_done: AtomicU32::new(0),
    }));
    CAPTURES[n as usize % RING].set(c);
}

/// The capture on `stream` ended with `rc`, having made `graph` (0: none).
fn capture_ended(stream: usize, graph: usize, rc: i32) {
    let Some(c) = capture_on(stream) else {
        return;
    };
    c.stream_key.store(0, Ordering::Release);
    if rc == 0 {
        c.graph.store(graph, Ordering::Release);
    }
}

/// `exec` was instantiated from `graph` (rc 0).
fn instantiated(exec: usize, graph: usize) {
    if exec == 0 {
        return;
    }
    let next = NEXT_CAPTURE.load(Ordering::Acquire) as usize;
    let capture = newest_first(&CAPTURES, next).find(|c| graph != 0 && c.graph.load(Ordering::Acquire) == graph);
    let e = Box::leak(Box::new(Exec { exec, capture, replays: AtomicU64::new(0), reported: AtomicBool::new(false) }));
    let n = NEXT_EXEC.fetch_add(1, Ordering::AcqRel);
    EXECS[n % RING].set(e);
}

/// Notes a FlashInfer call made on `stream` while the shim's capture on it runs; None when no such capture.
pub fn note_captured_call(name: &'static str, tag: &CallTag, stream: usize) -> Option<&'static CapturedCall> {
    if !capture::any_active() {
        return None;
    }
    let c = capture_on(stream)?;
    let position = c.count.fetch_add(1, Ordering::AcqRel) + 1;
    let call: &'static CapturedCall =
        Box::leak(Box::new(CapturedCall { name, tag: *tag, position, capture: c, previous: LeakedSlot::empty() }));
    let mut head = c.calls.get();
    loop {
        if let Some(h) = head {
            call.previous.set(h);
        }
        match c.calls.replace_if(head, call) {
            Ok(()) => return Some(call),
            Err(seen) => head = seen,
        }
    }
}

impl DriverCallback for CapturedCall {
    fn run(&'static self) {
        self.capture.last_done.fetch_max(self.position, Ordering::AcqRel);
    }
}

/// With markers on: a host function after the captured call (run at every replay when the call's kernels are
/// done). A failure to add one turns the capture's markers off (its record then names no progress).
pub fn add_marker(call: &'static CapturedCall, stream: usize) {
    if !call.capture.markers.load(Ordering::Acquire) {
        return;
    }
    let Some(d) = cuda_driver::driver() else {
        call.capture.markers.store(false, Ordering::Release);
        return;
    };
    // Stream 0 can only be capturing as the per-thread default stream.
    if callbacks::launch(d, stream, stream == 0, call).is_err() {
        call.capture.markers.store(false, Ordering::Release);
    }
}

/// One `cuGraphLaunch` in progress: the executable graph's entry and the replay's number.
pub struct Replay {
    exec: &'static Exec,
    number: u64,
}

/// Runs shim work from a driver wrapper: only under `FLASHLOG_SYNC`, with `errno` kept and panics contained.
fn from_wrapper<T>(f: impl FnOnce() -> Option<T>) -> Option<T> {
    if !super::enabled() {
        return None;
    }
    let _errno = ErrnoGuard::save();
    state::guarded(f).flatten()
}

/// The capture-begin wrappers: the driver's answer `rc` to `function` for `stream`.
pub fn on_capture_begin(function: &'static str, stream: usize, rc: i32) {
    from_wrapper(|| {
        if rc == 0 {
            capture_began(stream);
        } else {
            driver_error_line(function, rc);
        }
        Some(())
    });
}

/// The capture-end wrappers: the driver's answer `rc`, and the graph made (0: none).
pub fn on_capture_end(function: &'static str, stream: usize, graph: usize, rc: i32) {
    from_wrapper(|| {
        if capture::end_result_ends_capture(rc) {
            capture_ended(stream, graph, rc);
        }
        if rc != 0 {
            driver_error_line(function, rc);
        }
        Some(())
    });
}

/// The instantiate wrappers, after success.
pub fn on_instantiate(exec: usize, graph: usize) {
    from_wrapper(|| {
        instantiated(exec, graph);
        Some(())
    });
}

/// The graph-launch wrappers, before the driver's launch.
pub fn on_launch_before(exec: usize) -> Option<Replay> {
    from_wrapper(|| before_launch(exec))
}

/// The graph-launch wrappers, after the driver's launch returned `rc`.
pub fn on_launch_after(replay: Option<Replay>, exec: usize, stream: usize, per_thread: bool, rc: i32) {
    from_wrapper(|| {
        after_launch(replay, exec, stream, per_thread, rc);
        Some(())
    });
}

/// `[CUDA error from <function>: NAME (CODE)]`, once a FlashInfer call was seen (a process that makes none
/// gets no output).
fn driver_error_line(function: &str, code: i32) {
    if !super::calls_seen() {
        return;
    }
    let mut out = buffers::take();
    sync_lines::push_error_from(&mut out, function, errors::driver_error(code));
    log::write_record(&out);
}

/// Before a `cuGraphLaunch` of `exec`: its entry, with the replay counted and the markers reset.
fn before_launch(exec: usize) -> Option<Replay> {
    let next = NEXT_EXEC.load(Ordering::Acquire);
    let e = newest_first(&EXECS, next).find(|e| e.exec == exec)?;
    if let Some(c) = e.capture {
        c.last_done.store(0, Ordering::Release);
    }
    Some(Replay { exec: e, number: e.replays.fetch_add(1, Ordering::AcqRel) + 1 })
}

/// After `cuGraphLaunch(exec, stream)` returned `rc`: synchronises the stream (outside captures) and writes
/// the error record when the launch or the synchronisation failed.
fn after_launch(entry: Option<Replay>, exec: usize, stream: usize, per_thread: bool, rc: i32) {
    if !super::calls_seen() {
        return;
    }
    let code = if rc != 0 {
        rc
    } else {
        match check_stream(stream, per_thread) {
            Check::Failed(code) => code,
            Check::Clean | Check::Skipped => return,
        }
    };
    let mut out = buffers::take();
    let error = errors::driver_error(code);
    match entry {
        Some(Replay { exec: e, number }) if e.reported.swap(true, Ordering::AcqRel) => {
            sync_lines::push_replay_again_line(&mut out, graph_name(e.capture, exec), number, error, rc != 0);
        }
        Some(Replay { exec: e, number }) => {
            let calls = e.capture.map(captured_calls).unwrap_or_default();
            let captured = e.capture.map(|c| CapturedCalls {
                calls: &calls,
                last_done: c.markers.load(Ordering::Acquire).then(|| c.last_done.load(Ordering::Acquire)),
            });
            let graph = (graph_name(e.capture, exec), number);
            sync_lines::push_replay_error_record(&mut out, &clock::now().0, graph, error, rc != 0, captured)
        }
        None => {
            let graph = (GraphName::Exec(exec), 0);
            sync_lines::push_replay_error_record(&mut out, &clock::now().0, graph, error, rc != 0, None)
        }
    }
    log::write_record(&out);
}

/// How the records name the graph of `exec`: by its capture's id when the capture was seen.
fn graph_name(capture: Option<&'static Capture>, exec: usize) -> GraphName {
    capture.map_or(GraphName::Exec(exec), |c| GraphName::Captured(c.id))
}

/// The calls captured into `c`, in capture order.
fn captured_calls(c: &'static Capture) -> Vec<CapturedCallLine<'static>> {
    let mut calls = Vec::new();
    let mut p = c.calls.get();
    while let Some(call) = p {
        calls.push(CapturedCallLine { position: call.position, name: call.name, tag: call.tag });
        p = call.previous.get();
    }
    calls.sort_by_key(|call| call.position);
    calls
}
