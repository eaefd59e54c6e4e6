//! Driver callbacks: entry points the shim hands to others rather than exports: the host functions the CUDA driver calls on
//! its own thread at every graph replay (`cuLaunchHostFunc`), and the process-exit handler of the NaN watch.
//! Both keep `errno` and run under the panic guard; a host function never calls the driver.

use crate::abi::cuda_driver::Driver;
use crate::os::sys::ErrnoGuard;
use crate::state;
use std::ffi::c_void;

/// Work a host function does: `run` is called by the driver's thread, once per enqueue (for a captured node:
/// once per replay). It must make no CUDA call (the driver refuses them there) and write whole records.
pub trait DriverCallback: Sync + 'static {
    /// The work.
    fn run(&'static self);
}

unsafe extern "C" fn trampoline<T: DriverCallback>(user: *mut c_void) {
    let _errno = ErrnoGuard::save();
    // SAFETY: `user` is the `&'static T` that `launch` passed with this very instantiation.
    let callback: &'static T = unsafe { &*(user as *const T) };
    state::guarded(|| callback.run());
}

/// Enqueues `callback` on `stream` (`cuLaunchHostFunc`, or `_ptsz` for the per-thread default stream); on a
/// capturing stream it becomes a host node run at every replay.
pub fn launch<T: DriverCallback>(
    driver: &Driver,
    stream: usize,
    per_thread: bool,
    callback: &'static T,
) -> Result<(), i32> {
    let user = callback as *const T as *mut c_void;
    // SAFETY: `callback` lives for the rest of the process, so every call of the node finds it.
    unsafe { driver.launch_host_func(stream, trampoline::<T>, user, per_thread) }
}

/// Registers `handler` to run at normal process exit (`atexit`); false when it could not be registered.
pub fn at_exit(handler: extern "C" fn()) -> bool {
    // SAFETY: plain libc call with a function that lives as long as the library (never unloaded: preloaded).
    unsafe { libc::atexit(handler) == 0 }
}
