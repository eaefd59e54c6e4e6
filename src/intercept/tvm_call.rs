//! The frame of one wrapped TVM-FFI safe call: what `calls::tvm` logs before, the real call, what it logs
//! after. The host sees the real function's return code, `result`, arguments and `errno`, whatever happens in
//! the shim. This file keeps the frame's rules (`errno`, a thread cancelled inside the real function, level 0
//! a plain call); what each level writes is `calls/tvm.rs`.

use crate::abi::ffi::{FfiAny, SafeCallFn};
use crate::calls::tvm::{self, Export};
use crate::os::sys;
use crate::state;
use std::ffi::c_void;
use std::mem::ManuallyDrop;

/// A wrapped export: its real address, and what its records need to know of it.
pub struct WrappedFunction {
    /// The real function.
    pub real: SafeCallFn,
    /// Its name, module path, record filter and dump count.
    pub export: Export,
}

impl WrappedFunction {
    /// A wrapper for `real`, named `name`, from the module at `library`.
    pub fn new(real: SafeCallFn, name: &'static str, library: &'static str, detailed_allowed: bool) -> Self {
        WrappedFunction { real, export: Export::new(name, library, real as usize, detailed_allowed) }
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

/// Calls `f.real` on behalf of the host, logging at the configured level (`calls::tvm::before` and `after`).
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
    // The call's logging state (pooled buffers and leases) is not dropped while the real function runs: if a
    // thread is cancelled inside it, the state is leaked instead of dropped during the forced unwind. Every
    // piece of work inside `before` and `after` runs under the panic guard.
    let mut pending = ManuallyDrop::new(tvm::Pending::new(&f.export, level));
    tvm::before(&mut pending, args, num_args);
    sys::set_errno(saved_errno);
    // SAFETY: as documented.
    let rc = unsafe { call_real(f, this, args, num_args, result) };
    let errno_after = sys::errno();
    let read_result = || {
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: `result` is the host's result slot, valid for the call, which the real function filled when
        // it returned 0; we only read it. On failure it may hold anything, and is not read.
        Some(unsafe { *result })
    };
    tvm::after(&mut pending, rc, read_result);
    // Dropped only now, after the real function returned, and in place (it is a few hundred bytes).
    // SAFETY: `pending` is not used after this.
    unsafe { ManuallyDrop::drop(&mut pending) };
    sys::set_errno(errno_after);
    rc
}
