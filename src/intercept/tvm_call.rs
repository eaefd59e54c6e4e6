//! The wrapper around one TVM-FFI safe call: records before, the real call, records after. The host sees
//! the real function's return code, `result`, arguments and `errno`, whatever happens in the shim.

use super::args_copy::CopiedArgs;
use crate::abi::dlpack::TensorDesc;
use crate::abi::ffi::{FfiAny, SafeCallFn};
use crate::abi::prefetch::Prefetch;
use crate::abi::tvm_runtime;
use crate::config::{LEVEL_DETAILED, LEVEL_DUMP, LEVEL_STATS};
use crate::os::sys;
use crate::record::call::{push_inputs_record, push_level1_record, push_outputs_record, Outcome};
use crate::record::push_indent;
use crate::record::tensor::StatsSource;
use crate::record::value::{start_record, ValueContext};
use crate::{buffers, clock, correlation, dump, graph, log, state, stats, sync};
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU32, Ordering};

/// A wrapped export: its real address and its call name `<module>.<export>`.
pub struct WrappedFunction {
    /// The real function.
    pub real: SafeCallFn,
    /// `<module>.<export>`.
    pub name: &'static str,
    /// Whether `FLASHINFER_DUMP_INCLUDE` / `_EXCLUDE` let this call have level-3 records (decided once).
    pub detailed_allowed: bool,
    /// The module's path (level-10 dumps name it for replay).
    pub library: &'static str,
    /// Calls dumped so far at level 10 (the `call<NNNN>` of folder names).
    pub dump_calls: AtomicU32,
}

impl WrappedFunction {
    /// A wrapper for `real`, named `name`, from the module at `library`.
    pub fn new(real: SafeCallFn, name: &'static str, library: &'static str, detailed_allowed: bool) -> Self {
        WrappedFunction { real, name, detailed_allowed, library, dump_calls: AtomicU32::new(0) }
    }
}

/// The real function with the unwinding ABI: `pthread_cancel` of a thread blocked inside it unwinds (forced
/// unwind) through [`call`] and the trampoline's `dispatch` to the host's cleanup handlers. Those two frames
/// hold nothing to drop while the real function runs (plain-old frames), so the unwind is defined and runs
/// no shim code.
type UnwindingSafeCall = unsafe extern "C-unwind" fn(*mut c_void, *const FfiAny, i32, *mut FfiAny) -> i32;

/// Calls the real function exactly as the host would.
///
/// # Safety
/// As [`call`].
unsafe fn call_real(f: &WrappedFunction, this: *mut c_void, args: *const FfiAny, n: i32, result: *mut FfiAny) -> i32 {
    // SAFETY: the same function, seen with the ABI that allows it to unwind (a forced unwind) into us.
    let real: UnwindingSafeCall = unsafe { std::mem::transmute::<SafeCallFn, UnwindingSafeCall>(f.real) };
    // SAFETY: forwarding the host's own arguments to the function it looked up.
    unsafe { real(this, args, n, result) }
}

/// Calls `f.real` on behalf of the host, logging at the configured level.
///
/// A call made while this thread is inside the shim's own work (a signal handler that interrupted it) is
/// logged without statistics: each tensor's statistics are the line
/// `[statistics skipped: re-entered from a signal handler]`, and nothing waits for the interrupted work.
///
/// # Safety
/// The arguments are the host's safe-call arguments (`args` valid for `num_args` values, `result` writable).
pub unsafe fn call(
    f: &WrappedFunction,
    this: *mut c_void,
    args: *const FfiAny,
    num_args: i32,
    result: *mut FfiAny,
) -> i32 {
    // errno is saved and restored by hand: no value with a destructor may be alive while the real function
    // runs (see `UnwindingSafeCall`).
    let saved_errno = sys::errno();
    let level = state::level();
    if level == 0 {
        // SAFETY: as documented.
        return unsafe { call_real(f, this, args, num_args, result) };
    }
    let reentered = state::inside_shim();
    let detailed = level >= LEVEL_DETAILED && f.detailed_allowed;
    let mut stats = ManuallyDrop::new((level >= LEVEL_STATS && !reentered).then(CallStats::new));
    let mut skipped = (level >= LEVEL_STATS && reentered).then_some(SkippedStats(REENTERED_LINE));
    let section = state::ShimSection::enter();
    // The argument array is copied with the fault-tolerant read (a C host may claim more than it passes); only
    // records above level 1 read it.
    let copied = ManuallyDrop::new(if detailed { state::guarded(|| CopiedArgs::read(args, num_args)) } else { None });
    let arg_slice: &[FfiAny] = copied.as_ref().map_or(&[], |c| c.as_slice());
    // Every piece of shim logic runs under the panic guard: a panic must never unwind into the host.
    let prefetch = ManuallyDrop::new(if detailed { state::guarded(|| Prefetch::read_args(arg_slice)) } else { None });
    // Level 5: the data of small host tensors, one batch before the inputs record (and one after the call).
    if let (Some(s), Some(p)) = (stats.as_mut(), prefetch.as_ref()) {
        state::guarded(|| s.prefetch_data(p.descs(false)));
    }
    // NaN watch: the inputs record waits for the outputs (a crash inside the call leaves no inputs record).
    let watch = detailed && stats.is_some() && graph::watch::enabled();
    let mut held: ManuallyDrop<Option<buffers::Buffer>> = ManuallyDrop::new(None);
    // The call's number and thread, and whether its records carry the correlation line.
    let mut tag = None;
    // FLASHLOG_SYNC: the call's stream and what its synchronisation before the call found (plain data).
    let mut synced: Option<sync::CallSync> = None;
    let logged_inputs = state::level() > 0
        && state::guarded(|| {
            if state::config().inject_panic.matches(f.name) {
                panic!("injected by FLASHLOG_TEST_PANIC for {}", f.name);
            }
            let mut out = buffers::take();
            let stamp = clock::now();
            let this_call = correlation::begin_call();
            tag = Some(this_call);
            // Never from a signal handler that interrupted the shim (the driver may hold its own lock there).
            if sync::enabled() && !reentered {
                synced = Some(sync::before_call(f.name, &this_call, arg_slice, prefetch.as_ref()));
            }
            if detailed {
                if let Some(s) = stats.as_mut() {
                    s.begin_call(f.name, arg_slice, prefetch.as_ref());
                }
                let source = stats_source(&mut stats, &mut skipped);
                let mut ctx = context(source, prefetch.as_ref(), reentered);
                let line = this_call.correlated.then_some(&this_call);
                push_inputs_record(&mut out, &stamp, f.name, line, arg_slice, &mut ctx);
                if let Some(c) = copied.as_ref() {
                    c.push_shortfall_line(&mut out);
                }
                if let Some(s) = stats.as_mut() {
                    s.end_phase();
                }
            } else {
                push_level1_record(&mut out, &stamp, f.name, this_call.correlated.then_some(&this_call));
            }
            if let Some(code) = synced.as_ref().and_then(|s| s.before) {
                sync::annotate_inputs(&mut out, code);
            }
            if watch {
                *held = Some(out);
            } else {
                log::write_record(&out);
            }
        })
        .is_some();
    // Level 10: the inputs are saved before the call (nothing of it may be dropped while the real function runs:
    // a thread cancelled inside it leaves the folder at `inputs_saved`, as a crash would).
    let dumping = ManuallyDrop::new(if level >= LEVEL_DUMP && detailed && state::level() > 0 {
        state::guarded(|| dump::before_call(&dump_target(f), arg_slice, prefetch.as_ref())).flatten()
    } else {
        None
    });
    drop(section);
    sys::set_errno(saved_errno);
    // Kernel-launch records made during the call name it.
    let interrupted = tag.map(|t| sync::enter_call(f.name, t));
    // SAFETY: as documented.
    let rc = unsafe { call_real(f, this, args, num_args, result) };
    let errno_after = sys::errno();
    if let Some(previous) = interrupted {
        sync::leave_call(previous);
    }
    // FLASHLOG_SYNC: the synchronisation after the call (a call without an outputs record gets its line now).
    let after_error = match (synced.as_ref(), tag.as_ref()) {
        (Some(s), Some(t)) if state::level() > 0 => {
            let _section = state::ShimSection::enter();
            let standalone = !(detailed && logged_inputs) || watch;
            state::guarded(|| sync::after_call(f.name, t, s, standalone)).flatten().filter(|_| !standalone)
        }
        _ => None,
    };
    if let Some(pending) = ManuallyDrop::into_inner(dumping) {
        let _section = state::ShimSection::enter();
        // SAFETY: `result` is the host's result slot, valid for the call; we only read it.
        let value = (rc == 0 && !result.is_null()).then(|| unsafe { *result });
        state::guarded(|| dump::after_call(pending, rc, value.as_ref()));
    }
    // No outputs record without its inputs record (a panic there turned logging off).
    if detailed && logged_inputs && state::level() > 0 {
        let _section = state::ShimSection::enter();
        state::guarded(|| {
            if let Some(s) = stats.as_mut() {
                s.after_call();
                if let Some(p) = prefetch.as_ref() {
                    s.prefetch_data(p.descs(true));
                }
            }
            let mut out = buffers::take();
            let mut kind = Vec::new();
            let mut message = Vec::new();
            // SAFETY: `result` is the host's result slot, which the real function filled when it returned 0; we
            // only read it. On failure it may be anything (a callee rejecting bad arguments writes nothing).
            let result_value = if rc != 0 || result.is_null() { FfiAny::default() } else { unsafe { *result } };
            let outcome = match rc {
                0 => Outcome::Returned(&result_value),
                -1 if tvm_runtime::peek_raised_error(&mut kind, &mut message) => {
                    Outcome::Failed { kind: &kind, message: &message }
                }
                rc => Outcome::FailedWithoutError(rc),
            };
            let source = stats_source(&mut stats, &mut skipped);
            let mut ctx = context(source, prefetch.as_ref(), reentered);
            let line = tag.as_ref().filter(|t| t.outputs_correlated()).map(|t| (f.name, t));
            push_outputs_record(&mut out, line, outcome, arg_slice, &mut ctx);
            if let Some(code) = after_error {
                sync::annotate_outputs(&mut out, line.is_some(), code);
            }
            let Some(s) = stats.as_mut() else {
                log::write_record(&out);
                return;
            };
            s.end_phase();
            match held.take() {
                Some(mut inputs) => {
                    if !s.during_capture() {
                        graph::watch::call_checked(s.saw_nonfinite());
                    }
                    if s.saw_nonfinite() {
                        inputs.extend_from_slice(&out);
                        log::write_record(&inputs);
                    }
                }
                None => log::write_record(&out),
            }
        });
    }
    // Dropped only now, after the real function returned: if a thread is cancelled inside it, these are
    // leaked instead of dropped during the forced unwind.
    let _ = ManuallyDrop::into_inner(held);
    let _ = ManuallyDrop::into_inner(prefetch);
    let _ = ManuallyDrop::into_inner(stats);
    let _ = ManuallyDrop::into_inner(copied);
    sys::set_errno(errno_after);
    rc
}

/// The level-5 statistics of a call, with the graph layer's replay statistics for calls made during a capture.
type CallStats = stats::LiveStats<crate::graph::defer::CallState, crate::gpu::eager::Kernel>;

/// The reason line of a call re-entered from a signal handler.
const REENTERED_LINE: &str = "[statistics skipped: re-entered from a signal handler]";

/// The statistics source of a record: live statistics, the skip line, or none (below level 5).
fn stats_source<'a>(
    live: &'a mut Option<CallStats>,
    skipped: &'a mut Option<SkippedStats>,
) -> Option<&'a mut dyn StatsSource> {
    match (live.as_mut(), skipped.as_mut()) {
        (Some(s), _) => Some(s as &mut dyn StatsSource),
        (None, Some(s)) => Some(s as &mut dyn StatsSource),
        (None, None) => None,
    }
}

/// A statistics source that takes none and says why, in place of each tensor's statistics lines.
struct SkippedStats(&'static str);

impl StatsSource for SkippedStats {
    fn write_stats(&mut self, desc: &TensorDesc, out: &mut Vec<u8>, indent: usize) {
        if desc.numel() == 0 {
            return;
        }
        push_indent(out, indent);
        out.extend_from_slice(self.0.as_bytes());
        out.push(b'\n');
    }
}

/// The context one record is built in (each record has its own budget of container items). A call re-entered
/// from a signal handler never asks the host's runtime for type names (the interrupted code may hold the
/// runtime's own lock): its objects print by type index.
fn context<'a>(
    stats: Option<&'a mut dyn StatsSource>,
    prefetch: Option<&'a Prefetch>,
    reentered: bool,
) -> ValueContext<'a> {
    start_record();
    let type_key: &'a dyn Fn(i32, &mut Vec<u8>) -> bool =
        if reentered { &|_, _| false } else { &tvm_runtime::type_key };
    ValueContext { type_key, stats, prefetch }
}

/// What a dump of this call is filed under: its name, library and per-function call number.
fn dump_target(f: &WrappedFunction) -> dump::Callee<'_> {
    let sequence = f.dump_calls.fetch_add(1, Ordering::Relaxed) + 1;
    dump::Callee { name: f.name, library: f.library, sequence, code: f.real as usize }
}
