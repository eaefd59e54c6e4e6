//! Kernel-launch records. Launches reach the shim through the driver wrappers in `cuda.rs` and through the
//! runtime's `cudaLaunchKernel*` exported here (programs and modules calling libcudart through the PLT).
//! Kernels are named once per function handle (`cuFuncGetName` / `cudaFuncGetName`, demangled) and only
//! those matching `FLASHLOG_KERNELS` are logged. Logging never synchronises, so launches inside a capture
//! are logged as usual.

// The wrappers carry the exact names of the C entry points they stand for.
#![allow(non_snake_case)]

use crate::abi::cuda_driver;
use crate::abi::{dl, sys::ErrnoGuard};
use crate::record::launch::{push_launch_record, Launch};
use crate::{buffers, clock, config::LEVEL_DETAILED, sink, state};
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// How a launch names its kernel.
#[derive(Clone, Copy)]
pub enum KernelRef {
    /// A driver `CUfunction`.
    Driver(usize),
    /// A runtime host stub (the `func` of `cudaLaunchKernel`).
    Runtime(usize),
}

impl KernelRef {
    fn key(self) -> usize {
        match self {
            KernelRef::Driver(h) | KernelRef::Runtime(h) => h,
        }
    }
}

thread_local! {
    /// Set while a runtime launch wrapper runs, so the driver launch that libcudart makes underneath is not
    /// logged a second time.
    static IN_RUNTIME_LAUNCH: Cell<bool> = const { Cell::new(false) };
}

/// A kernel's display name and whether it is logged.
struct KernelName {
    name: String,
    logged: bool,
}

const CACHE_SLOTS: usize = 4096;
static CACHE_KEYS: [AtomicUsize; CACHE_SLOTS] = [const { AtomicUsize::new(0) }; CACHE_SLOTS];
static CACHE_NAMES: [AtomicPtr<KernelName>; CACHE_SLOTS] = [const { AtomicPtr::new(null_mut()) }; CACHE_SLOTS];

/// Logs a launch of `kernel` when the level and `FLASHLOG_KERNELS` say so. `launch` is only evaluated then.
pub fn log_launch(kernel: KernelRef, launch: impl FnOnce() -> Launch) {
    if matches!(kernel, KernelRef::Driver(_)) && IN_RUNTIME_LAUNCH.with(Cell::get) {
        return;
    }
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
        sink::write_record(&out);
    });
}

/// The cached name of a kernel, resolving it on first sight. Lock-free open addressing; a full table
/// resolves without caching.
fn kernel_name(kernel: KernelRef) -> Option<&'static KernelName> {
    let key = kernel.key();
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

fn resolve(kernel: KernelRef) -> KernelName {
    let mangled = match kernel {
        KernelRef::Driver(f) => cuda_driver::driver().and_then(|d| d.function_name(f)),
        KernelRef::Runtime(f) => runtime_function_name(f),
    };
    let name = match mangled {
        Some(m) => demangle(&m),
        None => format!("<unnamed kernel {:#x}>", kernel.key()),
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

/// The runtime's name of a kernel host stub (`cudaFuncGetName`, CUDA 12.3 and later).
fn runtime_function_name(func: usize) -> Option<String> {
    let f = runtime_symbol(c"cudaFuncGetName")?;
    let mut name: *const c_char = std::ptr::null();
    // SAFETY: `cudaFuncGetName(const char**, const void*)`; the runtime owns the string.
    let rc = unsafe {
        let f: unsafe extern "C" fn(*mut *const c_char, usize) -> i32 = std::mem::transmute(f);
        f(&mut name, func)
    };
    if rc != 0 || name.is_null() {
        return None;
    }
    Some(unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned())
}

/// A symbol of the libcudart loaded in the process (any scope), looked up with the real `dlsym`.
fn runtime_symbol(name: &CStr) -> Option<usize> {
    let handle = dl::loaded_object("libcudart.so")?;
    let addr = dl::real_dlsym(handle, name);
    (addr != 0).then_some(addr)
}

/// `dim3`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Dim3 {
    x: u32,
    y: u32,
    z: u32,
}

/// `cudaLaunchConfig_t` (CUDA 12.x).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RuntimeLaunchConfig {
    grid: Dim3,
    block: Dim3,
    shared_mem: usize,
    stream: usize,
    attrs: *mut c_void,
    num_attrs: u32,
}

/// `cudaErrorSymbolNotFound`: returned when no libcudart is loaded to forward to.
const RUNTIME_NOT_FOUND: i32 = 500;

static REAL_RUNTIME: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

fn real_runtime(slot: usize, name: &CStr) -> usize {
    let known = REAL_RUNTIME[slot].load(Ordering::Acquire);
    if known != 0 {
        return known;
    }
    let found = runtime_symbol(name).unwrap_or(0);
    REAL_RUNTIME[slot].store(found, Ordering::Release);
    found
}

/// Runs a runtime launch with the driver-level logging of the same launch suppressed.
fn as_runtime_launch<T>(f: impl FnOnce() -> T) -> T {
    let outer = IN_RUNTIME_LAUNCH.with(|c| c.replace(true));
    let r = f();
    IN_RUNTIME_LAUNCH.with(|c| c.set(outer));
    r
}

type CudaLaunchKernelFn = unsafe extern "C" fn(usize, Dim3, Dim3, *mut *mut c_void, usize, usize) -> i32;
type CudaLaunchKernelExCFn = unsafe extern "C" fn(*const RuntimeLaunchConfig, usize, *mut *mut c_void) -> i32;

macro_rules! runtime_launch_wrapper {
    ($name:ident, $slot:literal, $sym:literal) => {
        /// Wrapper of the runtime function of the same name: logs matching kernel launches.
        ///
        /// # Safety
        /// Called by the host with the runtime's contract.
        #[cfg_attr(not(test), no_mangle)]
        pub unsafe extern "C" fn $name(
            func: usize,
            grid: Dim3,
            block: Dim3,
            args: *mut *mut c_void,
            shared_mem: usize,
            stream: usize,
        ) -> i32 {
            let addr = real_runtime($slot, $sym);
            if addr == 0 {
                return RUNTIME_NOT_FOUND;
            }
            let f: CudaLaunchKernelFn = std::mem::transmute(addr);
            log_launch(KernelRef::Runtime(func), || Launch {
                grid: [grid.x, grid.y, grid.z],
                block: [block.x, block.y, block.z],
                shared_mem: shared_mem as u64,
                stream,
            });
            as_runtime_launch(|| f(func, grid, block, args, shared_mem, stream))
        }
    };
}

runtime_launch_wrapper!(cudaLaunchKernel, 0, c"cudaLaunchKernel");
runtime_launch_wrapper!(cudaLaunchKernel_ptsz, 1, c"cudaLaunchKernel_ptsz");

macro_rules! runtime_launch_ex_wrapper {
    ($name:ident, $slot:literal, $sym:literal) => {
        /// Wrapper of the runtime function of the same name: logs matching kernel launches.
        ///
        /// # Safety
        /// Called by the host with the runtime's contract.
        #[cfg_attr(not(test), no_mangle)]
        pub unsafe extern "C" fn $name(config: *const RuntimeLaunchConfig, func: usize, args: *mut *mut c_void) -> i32 {
            let addr = real_runtime($slot, $sym);
            if addr == 0 {
                return RUNTIME_NOT_FOUND;
            }
            let f: CudaLaunchKernelExCFn = std::mem::transmute(addr);
            if let Ok(c) = crate::abi::mem::read_pod::<RuntimeLaunchConfig>(config as usize) {
                log_launch(KernelRef::Runtime(func), || Launch {
                    grid: [c.grid.x, c.grid.y, c.grid.z],
                    block: [c.block.x, c.block.y, c.block.z],
                    shared_mem: c.shared_mem as u64,
                    stream: c.stream,
                });
            }
            as_runtime_launch(|| f(config, func, args))
        }
    };
}

runtime_launch_ex_wrapper!(cudaLaunchKernelExC, 2, c"cudaLaunchKernelExC");
runtime_launch_ex_wrapper!(cudaLaunchKernelExC_ptsz, 3, c"cudaLaunchKernelExC_ptsz");

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn demangles_flashinfer_names() {
        assert_eq!(
            demangle("_ZN10flashinfer33BatchDecodeWithPagedKVCacheKernelILb0ELi128EEEvPfS1_i"),
            "void flashinfer::BatchDecodeWithPagedKVCacheKernel<false, 128>(float*, float*, int)"
        );
        assert_eq!(demangle("plain_c_kernel"), "plain_c_kernel");
    }

    #[test]
    fn runtime_config_layout() {
        assert_eq!(offset_of!(RuntimeLaunchConfig, shared_mem), 24);
        assert_eq!(offset_of!(RuntimeLaunchConfig, stream), 32);
        assert_eq!(size_of::<RuntimeLaunchConfig>(), 56);
    }
}
