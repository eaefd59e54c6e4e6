//! Kernel-launch records. Every launch reaches the shim through the driver wrappers in `cuda.rs`: programs
//! and modules calling the driver (through a rewritten GOT slot, `dlsym` or `cuGetProcAddress`), and the
//! runtime's launches too, since libcudart obtains its driver functions through `cuGetProcAddress*`. So
//! each launch is seen exactly once, at the driver, and the runtime's own entry points are not wrapped.
//! Kernels are named once per function handle (`cuFuncGetName`, demangled) and only those matching
//! `FLASHLOG_KERNELS` are logged. Logging never synchronises, so launches inside a capture are logged as
//! usual.

use crate::abi::cuda_driver;
use crate::os::sys::ErrnoGuard;
use crate::record::launch::{push_launch_record, Launch};
use crate::{buffers, clock, config::LEVEL_DETAILED, log, state};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// A kernel's display name and whether it is logged.
struct KernelName {
    name: String,
    logged: bool,
}

const CACHE_SLOTS: usize = 4096;
static CACHE_KEYS: [AtomicUsize; CACHE_SLOTS] = [const { AtomicUsize::new(0) }; CACHE_SLOTS];
static CACHE_NAMES: [AtomicPtr<KernelName>; CACHE_SLOTS] = [const { AtomicPtr::new(null_mut()) }; CACHE_SLOTS];

/// Logs a launch of the driver function `kernel` (a `CUfunction`) when the level and `FLASHLOG_KERNELS`
/// say so. `launch` is only evaluated then.
pub fn log_launch(kernel: usize, launch: impl FnOnce() -> Launch) {
    let level = state::level();
    // The NaN watch keeps the log to the records that hold a NaN or an infinity: no launch records.
    if level == 0 || state::config().kernels.is_empty() || crate::graph::watch::enabled() {
        return;
    }
    let _errno = ErrnoGuard::save();
    state::guarded(|| {
        let Some(name) = kernel_name(kernel) else {
            return;
        };
        if !name.logged {
            return;
        }
        let mut out = buffers::take();
        push_launch_record(&mut out, &clock::now(), &name.name, &launch(), level >= LEVEL_DETAILED);
        log::write_record(&out);
    });
}

/// The cached name of a kernel, resolving it on first sight. Lock-free open addressing; a full table
/// resolves without caching.
fn kernel_name(kernel: usize) -> Option<&'static KernelName> {
    let key = kernel;
    if key == 0 {
        return None;
    }
    let start = (key >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) % CACHE_SLOTS;
    for probe in 0..CACHE_SLOTS {
        let i = (start + probe) % CACHE_SLOTS;
        let k = CACHE_KEYS[i].load(Ordering::Acquire);
        if k == key {
            let p = CACHE_NAMES[i].load(Ordering::Acquire);
            // SAFETY: published names are leaked and never freed.
            if let Some(n) = unsafe { p.as_ref() } {
                return Some(n);
            }
            // Another thread is resolving this key: resolve without caching.
            return Some(Box::leak(Box::new(resolve(kernel))));
        }
        if k == 0 && CACHE_KEYS[i].compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            let n: &'static KernelName = Box::leak(Box::new(resolve(kernel)));
            CACHE_NAMES[i].store(n as *const KernelName as *mut KernelName, Ordering::Release);
            return Some(n);
        }
    }
    Some(Box::leak(Box::new(resolve(kernel))))
}

fn resolve(kernel: usize) -> KernelName {
    let mangled = cuda_driver::driver().and_then(|d| d.function_name(kernel));
    let name = match mangled {
        Some(m) => demangle(&m),
        None => format!("<unnamed kernel {kernel:#x}>"),
    };
    let logged = state::config().kernels.matches(&name);
    KernelName { name, logged }
}

/// Demangles an Itanium C++ ABI name; other names are returned unchanged.
pub fn demangle(mangled: &str) -> String {
    cpp_demangle::Symbol::new(mangled)
        .ok()
        .and_then(|s| s.demangle(&cpp_demangle::DemangleOptions::default()).ok())
        .unwrap_or_else(|| mangled.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_flashinfer_names() {
        assert_eq!(
            demangle("_ZN10flashinfer33BatchDecodeWithPagedKVCacheKernelILb0ELi128EEEvPfS1_i"),
            "void flashinfer::BatchDecodeWithPagedKVCacheKernel<false, 128>(float*, float*, int)"
        );
        assert_eq!(demangle("plain_c_kernel"), "plain_c_kernel");
    }
}
