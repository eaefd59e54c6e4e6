//! The wrapper around one TVM-FFI safe call: records before, the real call, records after. The host sees
//! the real function's return code, `result`, arguments and `errno`, whatever happens in the shim.

use crate::abi::dlpack::Prefetch;
use crate::abi::ffi::{FfiAny, SafeCallFn};
use crate::abi::sys::{self, ErrnoGuard};
use crate::abi::tvm_runtime;
use crate::config::{LEVEL_DETAILED, LEVEL_STATS};
use crate::record::call::{push_call_line, push_inputs_record, push_outputs_record, Outcome};
use crate::record::tensor::StatsSource;
use crate::record::value::{start_record, ValueContext};
use crate::{buffers, clock, correlation, graph, sink, state, stats};
use std::ffi::c_void;

/// A wrapped export: its real address and its call name `<module>.<export>`.
pub struct WrappedFunction {
    /// The real function.
    pub real: SafeCallFn,
    /// `<module>.<export>`.
    pub name: &'static str,
    /// Whether `FLASHINFER_DUMP_INCLUDE` / `_EXCLUDE` let this call have level-3 records (decided once).
    pub detailed_allowed: bool,
}

/// Calls `f.real` on behalf of the host, logging at the configured level.
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
    let mut errno = ErrnoGuard::save();
    let level = state::level();
    if level == 0 {
        drop(errno);
        // SAFETY: forwarding the host's own arguments to the function it looked up.
        return unsafe { (f.real)(this, args, num_args, result) };
    }
    let detailed = level >= LEVEL_DETAILED && f.detailed_allowed;
    let arg_slice: &[FfiAny] = if args.is_null() || num_args <= 0 {
        &[]
    } else {
        // SAFETY: the host passes `num_args` valid values at `args` (the callee reads them the same way).
        unsafe { std::slice::from_raw_parts(args, num_args as usize) }
    };
    let mut stats = (level >= LEVEL_STATS).then(stats::LiveStats::new);
    // Every piece of shim logic runs under the panic guard: a panic must never unwind into the host.
    let prefetch = if detailed { state::guarded(|| Prefetch::read_args(arg_slice)) } else { None };
    // Level 5: the data of small host tensors, one batch before the inputs record (and one after the call).
    if let (Some(s), Some(p)) = (stats.as_mut(), prefetch.as_ref()) {
        state::guarded(|| s.prefetch_data(p.descs(false)));
    }
    // NaN watch: the inputs record waits for the outputs (a crash inside the call leaves no inputs record).
    let watch = detailed && stats.is_some() && graph::watch::enabled();
    let mut held: Option<buffers::Buffer> = None;
    // The call's number and thread, and whether its records carry the correlation line.
    let mut tag = None;
    let logged_inputs = state::level() > 0
        && state::guarded(|| {
            if state::config().inject_panic.matches(f.name) {
                panic!("injected by FLASHLOG_TEST_PANIC for {}", f.name);
            }
            let mut out = buffers::take();
            let stamp = clock::now();
            let this_call = correlation::begin_call();
            tag = Some(this_call);
            if detailed {
                if let Some(s) = stats.as_mut() {
                    s.begin_call(f.name, arg_slice, prefetch.as_ref());
                }
                let mut ctx = context(stats.as_mut().map(|s| s as &mut dyn StatsSource), prefetch.as_ref());
                let line = this_call.correlated.then_some(&this_call);
                push_inputs_record(&mut out, &stamp, f.name, line, arg_slice, &mut ctx);
                if let Some(s) = stats.as_mut() {
                    s.end_phase();
                }
            } else {
                push_call_line(&mut out, &stamp, f.name);
            }
            if watch {
                held = Some(out);
            } else {
                sink::write_record(&out);
            }
        })
        .is_some();
    sys::set_errno(errno.saved());
    // SAFETY: as above.
    let rc = unsafe { (f.real)(this, args, num_args, result) };
    errno.capture_now();
    // No outputs record without its inputs record (a panic there turned logging off).
    if detailed && logged_inputs && state::level() > 0 {
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
            // SAFETY: `result` is the host's result slot, valid for the call; we only read it.
            let result_value = if result.is_null() { FfiAny::default() } else { unsafe { *result } };
            let outcome = match rc {
                0 => Outcome::Returned(&result_value),
                -1 if tvm_runtime::peek_raised_error(&mut kind, &mut message) => {
                    Outcome::Failed { kind: &kind, message: &message }
                }
                rc => Outcome::FailedWithoutError(rc),
            };
            let mut ctx = context(stats.as_mut().map(|s| s as &mut dyn StatsSource), prefetch.as_ref());
            let line = tag.as_ref().filter(|t| t.outputs_correlated()).map(|t| (f.name, t));
            push_outputs_record(&mut out, line, outcome, arg_slice, &mut ctx);
            let Some(s) = stats.as_mut() else {
                sink::write_record(&out);
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
                        sink::write_record(&inputs);
                    }
                }
                None => sink::write_record(&out),
            }
        });
    }
    rc
}

/// The value printer's context for one record (each record has its own budget of container items).
fn context<'a>(stats: Option<&'a mut dyn StatsSource>, prefetch: Option<&'a Prefetch>) -> ValueContext<'a> {
    start_record();
    ValueContext { type_key: &tvm_runtime::type_key, stats, prefetch }
}
