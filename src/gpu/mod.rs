//! Statistics of device tensors computed by the library's own CUDA kernel (`stats_kernel.cu`, shipped as the
//! checked-in `stats_kernel.ptx`), loaded through the host program's own driver: nothing of a tensor's data
//! crosses to the host, only one 96-byte partial per block (`docs/gpu-stats.md`).
//!
//! Loading never happens while a capture runs: at the first eager level-5 call (or the system information
//! record), by `cuLibraryLoadData` (all contexts), else `cuModuleLoadData` into the current context. When
//! neither works the library says why once (the `Statistics:` line of the system information record) and
//! statistics take the copy path as before. The state is a few atomics: no lock a host thread could meet.

pub mod eager;
pub mod graph;
pub mod plan;

use crate::abi::stats_kernel::{self, KernelApi};
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering};

/// Default of `FLASHLOG_GPU_STATS_MAX_GB`: device tensors spanning more get a skip line (the kernel delays the
/// host's stream: 64 GiB is about 15 ms of HBM3e reading).
pub const DEFAULT_GPU_STATS_MAX_GB: f64 = 64.0;

/// The kernel's PTX (`.version 8.0`, `.target sm_80`), NUL-terminated as the driver wants it.
pub static PTX: &str = concat!(include_str!("stats_kernel.ptx"), "\0");

const UNTRIED: u8 = 0;
const LOADING: u8 = 1;
const LIBRARY: u8 = 2;
const MODULE: u8 = 3;
const FAILED: u8 = 4;

static STATE: AtomicU8 = AtomicU8::new(UNTRIED);
/// The kernel handle (library API) or the function of the one context it was loaded into (module API).
static HANDLE: AtomicUsize = AtomicUsize::new(0);
/// The context a module-API load went to.
static MODULE_CTX: AtomicUsize = AtomicUsize::new(0);
/// Why the load failed: the driver's code of the library load, then of the module load (-1: function missing).
static LIB_RC: AtomicI32 = AtomicI32::new(0);
static MOD_RC: AtomicI32 = AtomicI32::new(0);

/// How the statistics of device tensors are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The kernel, loaded with `cuLibraryLoadData` (`library`) or `cuModuleLoadData`.
    Kernel {
        /// Whether the library API loaded it.
        library: bool,
    },
    /// Copies to the host, for the reason given.
    Copies(&'static str),
}

/// Loads the kernel if no load was tried yet and no capture runs; the route statistics take now. Another
/// thread's load in progress counts as "copies" for this call (nothing waits).
pub fn ensure_loaded() -> Route {
    if !crate::state::config().gpu_stats {
        return Route::Copies("FLASHLOG_GPU_STATS=0");
    }
    match STATE.load(Ordering::Acquire) {
        LIBRARY => return Route::Kernel { library: true },
        MODULE => return Route::Kernel { library: false },
        FAILED => return Route::Copies("the driver did not load the kernel"),
        LOADING => return Route::Copies("the kernel is being loaded"),
        _ => {}
    }
    if crate::capture::any_active() {
        return Route::Copies("a capture runs; the kernel loads at the next eager call");
    }
    let (Some(api), Some(driver)) = (stats_kernel::api(), crate::abi::cuda_driver::driver()) else {
        return Route::Copies("no CUDA driver loaded");
    };
    // The capture gate (`crate::stats::gate`): no load while the driver says a capture could see it, and the
    // load itself in RELAXED capture mode, so a GLOBAL capture begun by a route the shim never saw is not
    // invalidated by it.
    let _relaxed = match crate::stats::gate::enter(driver, 0, false) {
        Ok(guard) => guard,
        Err(crate::stats::gate::Blocked::Capturing) => {
            return Route::Copies("a capture runs; the kernel loads at the next eager call")
        }
        // Before cuInit: `capture status unknown (cuStreamIsCapturing: CUDA_ERROR_NOT_INITIALIZED)`.
        Err(crate::stats::gate::Blocked::Unknown(reason)) => return Route::Copies(reason),
    };
    if STATE.compare_exchange(UNTRIED, LOADING, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return ensure_loaded();
    }
    let (state, handle) = load(api);
    HANDLE.store(handle, Ordering::Release);
    STATE.store(state, Ordering::Release);
    if state == UNTRIED {
        return Route::Copies(NOT_INITIALISED);
    }
    ensure_loaded()
}

/// The reason while the host has not initialised CUDA (the load is tried again at the next call).
const NOT_INITIALISED: &str = "CUDA not initialised yet when this was written";

/// `CUDA_ERROR_NOT_INITIALIZED`, `CUDA_ERROR_INVALID_CONTEXT`: the host is not ready yet, not a refusal.
fn not_ready(rc: i32) -> bool {
    rc == 3 || rc == 201
}

fn load(api: &KernelApi) -> (u8, usize) {
    let image = PTX.as_bytes();
    match api.load_library(image) {
        Ok(kernel) => return (LIBRARY, kernel),
        Err(rc) => LIB_RC.store(rc, Ordering::Relaxed),
    }
    let ctx = api.stream_context(0).unwrap_or(0);
    match api.load_module(image) {
        Ok(function) => {
            MODULE_CTX.store(ctx, Ordering::Relaxed);
            (MODULE, function)
        }
        Err(rc) => {
            MOD_RC.store(rc, Ordering::Relaxed);
            let lib = LIB_RC.load(Ordering::Relaxed);
            if not_ready(rc) && (not_ready(lib) || lib == -1) {
                return (UNTRIED, 0);
            }
            (FAILED, 0)
        }
    }
}

/// The function to launch on `stream`, when the kernel is loaded and usable there: the library's kernel
/// handle (any context), or the module's function when `stream` belongs to the context it was loaded into;
/// None when the stream's device is older than sm_80.
pub fn function_for(api: &KernelApi, stream: usize) -> Option<usize> {
    let handle = HANDLE.load(Ordering::Acquire);
    let usable = match STATE.load(Ordering::Acquire) {
        LIBRARY => true,
        MODULE => api.stream_context(stream).ok() == Some(MODULE_CTX.load(Ordering::Relaxed)),
        _ => false,
    };
    (usable && handle != 0 && api.current_major().is_ok_and(|m| m >= 8)).then_some(handle)
}

/// Contexts and the kernel's function in each (library API: filled by [`prepare_capture`] before captures,
/// so a capture never makes the driver load code). A slot's context is written once, then its function.
static CTX_FUNCS: [(AtomicUsize, AtomicUsize); 8] = [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; 8];

/// Called by the capture-begin wrappers before they call the driver (replay statistics on): loads the kernel
/// if needed and forces it into the current context (the capturing stream's, in practice) with
/// `cuKernelGetFunction`, so captured calls can add the kernel as a node with no load during the capture.
pub fn prepare_capture() {
    if ensure_loaded() != (Route::Kernel { library: true }) {
        return;
    }
    let Some(api) = stats_kernel::api() else {
        return;
    };
    let Ok(ctx) = api.stream_context(0) else {
        return;
    };
    if ctx == 0 || CTX_FUNCS.iter().any(|(c, _)| c.load(Ordering::Acquire) == ctx) {
        return;
    }
    let Ok(function) = api.kernel_function(HANDLE.load(Ordering::Acquire)) else {
        return;
    };
    for (c, f) in &CTX_FUNCS {
        if c.compare_exchange(0, ctx, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            f.store(function, Ordering::Release);
            return;
        }
    }
}

/// The function to add to a capture on `stream`, when the kernel is already loaded in the stream's context;
/// makes no call a capture forbids.
pub fn capture_function(api: &KernelApi, stream: usize, per_thread: bool) -> Option<usize> {
    let ctx = api.stream_context(if per_thread { 0 } else { stream }).ok()?;
    let function = match STATE.load(Ordering::Acquire) {
        LIBRARY => {
            CTX_FUNCS.iter().find(|(c, _)| c.load(Ordering::Acquire) == ctx).map(|(_, f)| f.load(Ordering::Acquire))?
        }
        MODULE if MODULE_CTX.load(Ordering::Relaxed) == ctx => HANDLE.load(Ordering::Acquire),
        _ => return None,
    };
    (function != 0 && api.current_major().is_ok_and(|m| m >= 8)).then_some(function)
}

/// The `Statistics:` line of the system information record (level 5 and above), without its newline.
pub fn route_line(out: &mut Vec<u8>) {
    out.extend_from_slice(b"Statistics: ");
    match ensure_loaded() {
        Route::Kernel { library } => {
            out.extend_from_slice(b"GPU kernel (");
            out.extend_from_slice(if library { b"cuLibraryLoadData" } else { b"cuModuleLoadData" });
            out.extend_from_slice(b", PTX 8.0 sm_80, deterministic)");
        }
        Route::Copies(reason) if STATE.load(Ordering::Acquire) == FAILED => {
            out.extend_from_slice(b"copies to the host (");
            out.extend_from_slice(reason.as_bytes());
            out.extend_from_slice(b": cuLibraryLoadData ");
            push_rc(out, LIB_RC.load(Ordering::Relaxed));
            out.extend_from_slice(b", cuModuleLoadData ");
            push_rc(out, MOD_RC.load(Ordering::Relaxed));
            out.push(b')');
        }
        Route::Copies(reason) => {
            out.extend_from_slice(b"copies to the host (");
            out.extend_from_slice(reason.as_bytes());
            out.push(b')');
        }
    }
}

fn push_rc(out: &mut Vec<u8>, rc: i32) {
    if rc == -1 {
        out.extend_from_slice(b"missing");
    } else {
        crate::record::pyrepr::push_int(out, rc);
    }
}
