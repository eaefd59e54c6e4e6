//! The wrapper around one TVM-FFI safe call: records before, the real call, records after. The host sees
//! the real function's return code, `result`, arguments and `errno`, whatever happens in the shim.

use crate::abi::dlpack::Prefetch;
use crate::abi::ffi::{FfiAny, SafeCallFn};
use crate::abi::sys::{self, ErrnoGuard};
use crate::abi::tvm_runtime;
use crate::config::{LEVEL_DETAILED, LEVEL_DUMP, LEVEL_STATS};
use crate::record::call::{push_call_line, push_inputs_record, push_outputs_record, Outcome};
use crate::record::tensor::StatsSource;
use crate::record::value::{tensor_source, ValueContext};
use crate::{buffers, clock, dump, sink, state, stats};
use std::ffi::c_void;
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
    let prefetch = if detailed {
        state::guarded(|| {
            Prefetch::read(arg_slice.iter().filter_map(tensor_source).filter_map(|s| s.descriptor_addr()))
        })
    } else {
        None
    };
    let logged_inputs = state::level() > 0
        && state::guarded(|| {
            if state::config().inject_panic.matches(f.name) {
                panic!("injected by FLASHLOG_TEST_PANIC for {}", f.name);
            }
            let mut out = buffers::take();
            let stamp = clock::now();
            if detailed {
                let mut ctx = context(stats.as_mut().map(|s| s as &mut dyn StatsSource), prefetch.as_ref());
                push_inputs_record(&mut out, &stamp, f.name, arg_slice, &mut ctx);
            } else {
                push_call_line(&mut out, &stamp, f.name);
            }
            sink::write_record(&out);
        })
        .is_some();
    let dumping = if level >= LEVEL_DUMP && detailed && state::level() > 0 {
        state::guarded(|| dump::before_call(&dump_target(f), arg_slice, prefetch.as_ref())).flatten()
    } else {
        None
    };
    sys::set_errno(errno.saved());
    // SAFETY: as above.
    let rc = unsafe { (f.real)(this, args, num_args, result) };
    errno.capture_now();
    if let Some(pending) = dumping {
        // SAFETY: `result` is the host's result slot, valid for the call; we only read it.
        let value = (rc == 0 && !result.is_null()).then(|| unsafe { *result });
        state::guarded(|| dump::after_call(pending, rc, value.as_ref()));
    }
    // No outputs record without its inputs record (a panic there turned logging off).
    if detailed && logged_inputs && state::level() > 0 {
        state::guarded(|| {
            if let Some(s) = stats.as_mut() {
                s.after_call();
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
            push_outputs_record(&mut out, outcome, arg_slice, &mut ctx);
            sink::write_record(&out);
        });
    }
    rc
}

fn dump_target(f: &WrappedFunction) -> dump::Target<'_> {
    dump::Target { name: f.name, library: f.library, sequence: f.dump_calls.fetch_add(1, Ordering::Relaxed) + 1 }
}

fn context<'a>(stats: Option<&'a mut dyn StatsSource>, prefetch: Option<&'a Prefetch>) -> ValueContext<'a> {
    ValueContext { type_key: &tvm_runtime::type_key, stats, prefetch }
}
