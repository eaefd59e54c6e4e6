//! The CUDA driver entry points the shim wraps, described once as data ([`ENTRIES`]): graph capture
//! (begin/end, legacy and per-thread `_ptsz`, `_v2`, `ToGraph`), kernel launches, graph instantiation and
//! launches (for `FLASHLOG_SYNC`, `crate::sync::graph`), and `cuGetProcAddress*` itself. Nothing here is exported (an exported `cuLaunchKernel` would bind every reference in the process
//! by name, data objects and other libraries' own definitions included). They are reached by three routes,
//! all served by the same wrapper functions:
//! 1. the PLT: the GOT slots of objects whose references resolve into a libcuda are rewritten
//!    (`intercept::plt`);
//! 2. `dlsym(libcuda_handle, name)` (cudarc, cuda-python): [`wrap_driver_lookup`];
//! 3. `cuGetProcAddress*` (libcudart, hence PyTorch and every runtime launch): the wrappers below replace
//!    the returned pointer.
//!
//! Each entry has [`INSTANCES`] copies of its wrapper, each bound to one real function: a process with a
//! forwarding driver in front of the vendor's sees two real functions per entry, and each keeps its own
//! wrapper, so neither is ever bypassed. Every wrapper calls the real function and returns its result
//! unchanged. No address inside the shim is ever taken as a real function.

// The wrappers carry the exact names of the C entry points they stand for.
#![allow(non_snake_case)]

use super::launch;
use super::plt;
use crate::abi::{dl, sys::ErrnoGuard};
use crate::capture;
use crate::record::launch::Launch;
use crate::state;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `CUDA_ERROR_NOT_FOUND`: returned when the real driver function is not known (never for a wrapper that
/// was handed out: each is bound to its real function before).
const NOT_FOUND: i32 = 500;
/// `CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM`.
const PER_THREAD_FLAG: u64 = 2;
/// Wrapper copies per entry: distinct real functions of one entry point (a driver, a forwarding driver in
/// front of it, an exported and an internal address of the same function). A further one passes unwrapped.
pub const INSTANCES: usize = 4;

/// The wrapped driver entry points; the discriminant indexes [`REAL`] and [`ENTRIES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Entry {
    /// `cuStreamBeginCapture(CUstream)`.
    BeginCapture,
    /// Per-thread-stream variant.
    BeginCapturePtsz,
    /// `cuStreamBeginCapture_v2(CUstream, CUstreamCaptureMode)`.
    BeginCaptureV2,
    /// Per-thread-stream variant.
    BeginCaptureV2Ptsz,
    /// `cuStreamBeginCaptureToGraph(CUstream, CUgraph, deps, edge data, n, mode)`.
    BeginCaptureToGraph,
    /// Per-thread-stream variant.
    BeginCaptureToGraphPtsz,
    /// `cuStreamEndCapture(CUstream, CUgraph*)`.
    EndCapture,
    /// Per-thread-stream variant.
    EndCapturePtsz,
    /// `cuLaunchKernel`.
    LaunchKernel,
    /// Per-thread-stream variant.
    LaunchKernelPtsz,
    /// `cuLaunchKernelEx(const CUlaunchConfig*, CUfunction, void**, void**)`.
    LaunchKernelEx,
    /// Per-thread-stream variant.
    LaunchKernelExPtsz,
    /// `cuGetProcAddress` (4 arguments, CUDA 11.3).
    GetProcAddress,
    /// `cuGetProcAddress_v2` (5 arguments, CUDA 12.0).
    GetProcAddressV2,
    /// `cuGraphLaunch(CUgraphExec, CUstream)`.
    GraphLaunch,
    /// Per-thread-stream variant.
    GraphLaunchPtsz,
    /// `cuGraphInstantiate(CUgraphExec*, CUgraph, CUgraphNode*, char*, size_t)` (CUDA 10.0).
    GraphInstantiate,
    /// `cuGraphInstantiate_v2`, same arguments (CUDA 11.0).
    GraphInstantiateV2,
    /// `cuGraphInstantiateWithFlags(CUgraphExec*, CUgraph, unsigned long long)` (what `cuGraphInstantiate`
    /// means from CUDA 12.0).
    GraphInstantiateWithFlags,
    /// `cuGraphInstantiateWithParams(CUgraphExec*, CUgraph, CUDA_GRAPH_INSTANTIATE_PARAMS*)`.
    GraphInstantiateWithParams,
    /// Per-thread-stream variant.
    GraphInstantiateWithParamsPtsz,
}

/// One row of the table: the driver's symbol, its base name (what `cuGetProcAddress` is asked for), and
/// whether it is the per-thread-default-stream variant.
pub struct EntryInfo {
    /// Exported symbol in libcuda.
    pub symbol: &'static CStr,
    /// The name `cuGetProcAddress` callers ask for.
    pub base: &'static str,
    /// Per-thread default stream (`_ptsz`).
    pub per_thread: bool,
    /// Which entry.
    pub entry: Entry,
}

macro_rules! row {
    ($sym:literal, $base:literal, $pt:literal, $e:ident) => {
        EntryInfo { symbol: $sym, base: $base, per_thread: $pt, entry: Entry::$e }
    };
}

/// Every wrapped driver entry point.
pub const ENTRIES: [EntryInfo; 21] = [
    row!(c"cuStreamBeginCapture", "cuStreamBeginCapture", false, BeginCapture),
    row!(c"cuStreamBeginCapture_ptsz", "cuStreamBeginCapture", true, BeginCapturePtsz),
    row!(c"cuStreamBeginCapture_v2", "cuStreamBeginCapture", false, BeginCaptureV2),
    row!(c"cuStreamBeginCapture_v2_ptsz", "cuStreamBeginCapture", true, BeginCaptureV2Ptsz),
    row!(c"cuStreamBeginCaptureToGraph", "cuStreamBeginCaptureToGraph", false, BeginCaptureToGraph),
    row!(c"cuStreamBeginCaptureToGraph_ptsz", "cuStreamBeginCaptureToGraph", true, BeginCaptureToGraphPtsz),
    row!(c"cuStreamEndCapture", "cuStreamEndCapture", false, EndCapture),
    row!(c"cuStreamEndCapture_ptsz", "cuStreamEndCapture", true, EndCapturePtsz),
    row!(c"cuLaunchKernel", "cuLaunchKernel", false, LaunchKernel),
    row!(c"cuLaunchKernel_ptsz", "cuLaunchKernel", true, LaunchKernelPtsz),
    row!(c"cuLaunchKernelEx", "cuLaunchKernelEx", false, LaunchKernelEx),
    row!(c"cuLaunchKernelEx_ptsz", "cuLaunchKernelEx", true, LaunchKernelExPtsz),
    row!(c"cuGetProcAddress", "cuGetProcAddress", false, GetProcAddress),
    row!(c"cuGetProcAddress_v2", "cuGetProcAddress", false, GetProcAddressV2),
    row!(c"cuGraphLaunch", "cuGraphLaunch", false, GraphLaunch),
    row!(c"cuGraphLaunch_ptsz", "cuGraphLaunch", true, GraphLaunchPtsz),
    row!(c"cuGraphInstantiate", "cuGraphInstantiate", false, GraphInstantiate),
    row!(c"cuGraphInstantiate_v2", "cuGraphInstantiate", false, GraphInstantiateV2),
    row!(c"cuGraphInstantiateWithFlags", "cuGraphInstantiateWithFlags", false, GraphInstantiateWithFlags),
    row!(c"cuGraphInstantiateWithParams", "cuGraphInstantiateWithParams", false, GraphInstantiateWithParams),
    row!(c"cuGraphInstantiateWithParams_ptsz", "cuGraphInstantiateWithParams", true, GraphInstantiateWithParamsPtsz),
];

/// The real driver function behind each wrapper copy (0 = copy not bound yet).
static REAL: [[AtomicUsize; INSTANCES]; ENTRIES.len()] =
    [const { [const { AtomicUsize::new(0) }; INSTANCES] }; ENTRIES.len()];

/// Whether `name` is one of the wrapped driver symbols (decides whether `dlsym` hooks the lookup).
pub fn is_tracked_driver_name(name: &[u8]) -> bool {
    ENTRIES.iter().any(|e| e.symbol.to_bytes() == name)
}

/// The entry whose exported driver symbol is `name`.
pub fn entry_by_symbol(name: &[u8]) -> Option<Entry> {
    ENTRIES.iter().find(|e| e.symbol.to_bytes() == name).map(|e| e.entry)
}

/// The real function bound to copy `k` of `entry`, as a typed function pointer.
///
/// # Safety
/// `F` must be the C signature of entry `e`.
unsafe fn real<F: Copy>(e: usize, k: usize) -> Option<F> {
    let addr = REAL[e][k].load(Ordering::Acquire);
    (addr != 0).then(|| std::mem::transmute_copy::<usize, F>(&addr))
}

/// The wrapper copy of `entry` bound to `real`: the copy already bound to it, else a free copy bound now.
/// None for an address inside the shim (never called as "real": that would call itself) and when every
/// copy is bound to another function (the caller then hands out `real` itself, unwrapped).
pub fn wrapper_for(entry: Entry, real: usize) -> Option<usize> {
    if real == 0 || dl::is_own(real) {
        return None;
    }
    for (k, slot) in REAL[entry as usize].iter().enumerate() {
        match slot.compare_exchange(0, real, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(wrapper_addr(entry, k)),
            Err(bound) if bound == real => return Some(wrapper_addr(entry, k)),
            Err(_) => continue,
        }
    }
    None
}

// `copies!` spells out the copies one by one.
const _: () = assert!(INSTANCES == 4);

/// The four copies of a generic wrapper, as addresses.
macro_rules! copies {
    ($f:ident) => {
        [
            $f::<0> as *const () as usize,
            $f::<1> as *const () as usize,
            $f::<2> as *const () as usize,
            $f::<3> as *const () as usize,
        ]
    };
}

/// The address of copy `k` of the shim's wrapper for `entry`.
fn wrapper_addr(entry: Entry, k: usize) -> usize {
    let all = match entry {
        Entry::BeginCapture => copies!(cuStreamBeginCapture),
        Entry::BeginCapturePtsz => copies!(cuStreamBeginCapture_ptsz),
        Entry::BeginCaptureV2 => copies!(cuStreamBeginCapture_v2),
        Entry::BeginCaptureV2Ptsz => copies!(cuStreamBeginCapture_v2_ptsz),
        Entry::BeginCaptureToGraph => copies!(cuStreamBeginCaptureToGraph),
        Entry::BeginCaptureToGraphPtsz => copies!(cuStreamBeginCaptureToGraph_ptsz),
        Entry::EndCapture => copies!(cuStreamEndCapture),
        Entry::EndCapturePtsz => copies!(cuStreamEndCapture_ptsz),
        Entry::LaunchKernel => copies!(cuLaunchKernel),
        Entry::LaunchKernelPtsz => copies!(cuLaunchKernel_ptsz),
        Entry::LaunchKernelEx => copies!(cuLaunchKernelEx),
        Entry::LaunchKernelExPtsz => copies!(cuLaunchKernelEx_ptsz),
        Entry::GetProcAddress => copies!(cuGetProcAddress),
        Entry::GetProcAddressV2 => copies!(cuGetProcAddress_v2),
        Entry::GraphLaunch => copies!(cuGraphLaunch),
        Entry::GraphLaunchPtsz => copies!(cuGraphLaunch_ptsz),
        Entry::GraphInstantiate => copies!(cuGraphInstantiate),
        Entry::GraphInstantiateV2 => copies!(cuGraphInstantiate_v2),
        Entry::GraphInstantiateWithFlags => copies!(cuGraphInstantiateWithFlags),
        Entry::GraphInstantiateWithParams => copies!(cuGraphInstantiateWithParams),
        Entry::GraphInstantiateWithParamsPtsz => copies!(cuGraphInstantiateWithParams_ptsz),
    };
    all[k]
}

/// Route 2: `dlsym(handle, name)` found `found`. When it lies in a libcuda, remember it as the real
/// function and hand out the wrapper; anything else is returned as found.
pub fn wrap_driver_lookup(name: &[u8], found: usize) -> usize {
    let Some(entry) = entry_by_symbol(name) else {
        return found;
    };
    if !dl::addr_in_libcuda(found) {
        return found;
    }
    wrapper_for(entry, found).unwrap_or(found)
}

/// Route 3: `cuGetProcAddress*` answered `found` for `symbol` at `version` with `flags`. Find which exact
/// variant it is (the exported symbol at that address, or else inferred from version and flags as the driver
/// maps them) and hand out the wrapper of the same ABI; other symbols pass unchanged.
fn wrap_proc_address(symbol: &[u8], found: usize, version: i32, flags: u64) -> usize {
    if state::level() == 0 {
        return found;
    }
    let base = std::str::from_utf8(symbol).unwrap_or("");
    let base = base.strip_suffix("_ptsz").unwrap_or(base);
    let base = base.strip_suffix("_v2").unwrap_or(base);
    if !ENTRIES.iter().any(|e| e.base == base) {
        return found;
    }
    // Which exported variant the answer is, from what the scans learnt of the drivers (not `dladdr`, which
    // waits for the loader lock: this runs in the host's `cuGetProcAddress`).
    let by_address = ENTRIES
        .iter()
        .filter(|e| e.base == base)
        .find(|e| plt::is_known_driver_function(e.entry, found))
        .map(|e| e.entry);
    let entry = by_address.unwrap_or_else(|| infer_variant(base, version, flags & PER_THREAD_FLAG != 0));
    // The driver's answer is the real function wherever it lies (a forwarding driver may hand out its own
    // functions or the vendor's); only an address of the shim itself is passed back untouched.
    wrapper_for(entry, found).unwrap_or(found)
}

/// The variant the driver returns for `base` at `version`, per-thread or not (CUDA 12.x mapping).
pub fn infer_variant(base: &str, version: i32, per_thread: bool) -> Entry {
    use Entry::*;
    match (base, per_thread) {
        ("cuStreamBeginCapture", false) if version >= 10010 => BeginCaptureV2,
        ("cuStreamBeginCapture", true) if version >= 10010 => BeginCaptureV2Ptsz,
        ("cuStreamBeginCapture", false) => BeginCapture,
        ("cuStreamBeginCapture", true) => BeginCapturePtsz,
        ("cuStreamBeginCaptureToGraph", false) => BeginCaptureToGraph,
        ("cuStreamBeginCaptureToGraph", true) => BeginCaptureToGraphPtsz,
        ("cuStreamEndCapture", false) => EndCapture,
        ("cuStreamEndCapture", true) => EndCapturePtsz,
        // Per-thread launches exist from 7.0: asked for an older version, both flags get the legacy function.
        ("cuLaunchKernel", true) if version < 7000 => LaunchKernel,
        ("cuLaunchKernel", false) => LaunchKernel,
        ("cuLaunchKernel", true) => LaunchKernelPtsz,
        ("cuLaunchKernelEx", false) => LaunchKernelEx,
        ("cuLaunchKernelEx", true) => LaunchKernelExPtsz,
        ("cuGetProcAddress", _) if version >= 12000 => GetProcAddressV2,
        ("cuGraphLaunch", false) => GraphLaunch,
        ("cuGraphLaunch", true) => GraphLaunchPtsz,
        ("cuGraphInstantiate", _) if version >= 12000 => GraphInstantiateWithFlags,
        ("cuGraphInstantiate", _) if version >= 11000 => GraphInstantiateV2,
        ("cuGraphInstantiate", _) => GraphInstantiate,
        ("cuGraphInstantiateWithFlags", _) => GraphInstantiateWithFlags,
        ("cuGraphInstantiateWithParams", false) => GraphInstantiateWithParams,
        ("cuGraphInstantiateWithParams", true) => GraphInstantiateWithParamsPtsz,
        _ => GetProcAddress,
    }
}

/// Replaces `*pfn` with a wrapper when the lookup succeeded and names a wrapped entry point.
///
/// # Safety
/// `symbol` and `pfn` are the host's arguments to a `cuGetProcAddress*` call that returned `rc`.
unsafe fn after_proc_address(rc: i32, symbol: *const c_char, pfn: *mut usize, version: i32, flags: u64) {
    if rc != 0 || symbol.is_null() || pfn.is_null() || *pfn == 0 {
        return;
    }
    let _errno = ErrnoGuard::save();
    let name = CStr::from_ptr(symbol).to_bytes();
    let found = *pfn;
    if let Some(w) = state::guarded(|| wrap_proc_address(name, found, version, flags)) {
        *pfn = w;
    }
}

type Stream = usize;
type GetProcAddressFn = unsafe extern "C" fn(*const c_char, *mut usize, i32, u64) -> i32;
type GetProcAddressV2Fn = unsafe extern "C" fn(*const c_char, *mut usize, i32, u64, *mut i32) -> i32;

/// `cuGetProcAddress` (CUDA 11.3 ABI).
///
/// # Safety
/// Called by the host with the driver's contract.
pub unsafe extern "C" fn cuGetProcAddress<const K: usize>(
    symbol: *const c_char,
    pfn: *mut usize,
    version: i32,
    flags: u64,
) -> i32 {
    plt::refresh_from_wrapper();
    let Some(f) = real::<GetProcAddressFn>(Entry::GetProcAddress as usize, K) else {
        return NOT_FOUND;
    };
    let rc = f(symbol, pfn, version, flags);
    after_proc_address(rc, symbol, pfn, version, flags);
    rc
}

/// `cuGetProcAddress_v2` (CUDA 12.0 ABI, with `symbolStatus`).
///
/// # Safety
/// Called by the host with the driver's contract.
pub unsafe extern "C" fn cuGetProcAddress_v2<const K: usize>(
    symbol: *const c_char,
    pfn: *mut usize,
    version: i32,
    flags: u64,
    status: *mut i32,
) -> i32 {
    plt::refresh_from_wrapper();
    let Some(f) = real::<GetProcAddressV2Fn>(Entry::GetProcAddressV2 as usize, K) else {
        return NOT_FOUND;
    };
    let rc = f(symbol, pfn, version, flags, status);
    after_proc_address(rc, symbol, pfn, version, flags);
    rc
}

/// Defines a BeginCapture-family wrapper: call the real function, then record the capture if it began.
macro_rules! begin_capture_wrapper {
    ($name:ident, $entry:ident, ($($arg:ident: $ty:ty),*)) => {
        /// Wrapper of the driver function of the same name: records the capture when it begins.
        ///
        /// # Safety
        /// Called by the host with the driver's contract.
        pub unsafe extern "C" fn $name<const K: usize>(stream: Stream $(, $arg: $ty)*) -> i32 {
            plt::refresh_from_wrapper();
            crate::graph::prepare_before_capture();
            let Some(f) = real::<unsafe extern "C" fn(Stream $(, $ty)*) -> i32>(Entry::$entry as usize, K) else {
                return NOT_FOUND;
            };
            let rc = f(stream $(, $arg)*);
            if rc == 0 {
                capture::began(stream);
            }
            crate::sync::graph::on_capture_begin(stringify!($name), stream, rc);
            rc
        }
    };
}

begin_capture_wrapper!(cuStreamBeginCapture, BeginCapture, ());
begin_capture_wrapper!(cuStreamBeginCapture_ptsz, BeginCapturePtsz, ());
begin_capture_wrapper!(cuStreamBeginCapture_v2, BeginCaptureV2, (mode: i32));
begin_capture_wrapper!(cuStreamBeginCapture_v2_ptsz, BeginCaptureV2Ptsz, (mode: i32));
begin_capture_wrapper!(
    cuStreamBeginCaptureToGraph,
    BeginCaptureToGraph,
    (graph: usize, deps: *const c_void, edge_data: *const c_void, num_deps: usize, mode: i32)
);
begin_capture_wrapper!(
    cuStreamBeginCaptureToGraph_ptsz,
    BeginCaptureToGraphPtsz,
    (graph: usize, deps: *const c_void, edge_data: *const c_void, num_deps: usize, mode: i32)
);

/// Defines an EndCapture wrapper: call the real function, then record the end of the capture.
macro_rules! end_capture_wrapper {
    ($name:ident, $entry:ident) => {
        /// Wrapper of the driver function of the same name: records the end of the capture.
        ///
        /// # Safety
        /// Called by the host with the driver's contract.
        pub unsafe extern "C" fn $name<const K: usize>(stream: Stream, graph: *mut usize) -> i32 {
            plt::refresh_from_wrapper();
            let Some(f) = real::<unsafe extern "C" fn(Stream, *mut usize) -> i32>(Entry::$entry as usize, K) else {
                return NOT_FOUND;
            };
            let rc = f(stream, graph);
            if capture::end_result_ends_capture(rc) {
                capture::ended(stream);
            }
            let made = if rc == 0 { crate::abi::mem::read_pod::<usize>(graph as usize).unwrap_or(0) } else { 0 };
            crate::sync::graph::on_capture_end(stringify!($name), stream, made, rc);
            rc
        }
    };
}

end_capture_wrapper!(cuStreamEndCapture, EndCapture);
end_capture_wrapper!(cuStreamEndCapture_ptsz, EndCapturePtsz);

type LaunchKernelFn =
    unsafe extern "C" fn(usize, u32, u32, u32, u32, u32, u32, u32, Stream, *mut *mut c_void, *mut *mut c_void) -> i32;

/// Defines a `cuLaunchKernel` wrapper: log the launch (never synchronising), then call the real function.
macro_rules! launch_kernel_wrapper {
    ($name:ident, $entry:ident) => {
        /// Wrapper of the driver function of the same name: logs matching kernel launches.
        ///
        /// # Safety
        /// Called by the host with the driver's contract.
        #[allow(clippy::too_many_arguments)]
        pub unsafe extern "C" fn $name<const K: usize>(
            function: usize,
            gx: u32,
            gy: u32,
            gz: u32,
            bx: u32,
            by: u32,
            bz: u32,
            shared_mem: u32,
            stream: Stream,
            params: *mut *mut c_void,
            extra: *mut *mut c_void,
        ) -> i32 {
            plt::refresh_from_wrapper();
            let Some(f) = real::<LaunchKernelFn>(Entry::$entry as usize, K) else {
                return NOT_FOUND;
            };
            launch::log_launch(function, || Launch {
                grid: [gx, gy, gz],
                block: [bx, by, bz],
                shared_mem: shared_mem as u64,
                stream,
            });
            f(function, gx, gy, gz, bx, by, bz, shared_mem, stream, params, extra)
        }
    };
}

launch_kernel_wrapper!(cuLaunchKernel, LaunchKernel);
launch_kernel_wrapper!(cuLaunchKernel_ptsz, LaunchKernelPtsz);

/// `CUlaunchConfig` (cuda.h 12.x): grid, block, shared memory, stream, attributes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LaunchConfig {
    grid: [u32; 3],
    block: [u32; 3],
    shared_mem: u32,
    stream: Stream,
    attrs: *mut c_void,
    num_attrs: u32,
}

type LaunchKernelExFn = unsafe extern "C" fn(*const LaunchConfig, usize, *mut *mut c_void, *mut *mut c_void) -> i32;

/// Defines a `cuLaunchKernelEx` wrapper.
macro_rules! launch_kernel_ex_wrapper {
    ($name:ident, $entry:ident) => {
        /// Wrapper of the driver function of the same name: logs matching kernel launches.
        ///
        /// # Safety
        /// Called by the host with the driver's contract.
        pub unsafe extern "C" fn $name<const K: usize>(
            config: *const LaunchConfig,
            function: usize,
            params: *mut *mut c_void,
            extra: *mut *mut c_void,
        ) -> i32 {
            plt::refresh_from_wrapper();
            let Some(f) = real::<LaunchKernelExFn>(Entry::$entry as usize, K) else {
                return NOT_FOUND;
            };
            if let Ok(c) = crate::abi::mem::read_pod::<LaunchConfig>(config as usize) {
                launch::log_launch(function, || Launch {
                    grid: c.grid,
                    block: c.block,
                    shared_mem: c.shared_mem as u64,
                    stream: c.stream,
                });
            }
            f(config, function, params, extra)
        }
    };
}

launch_kernel_ex_wrapper!(cuLaunchKernelEx, LaunchKernelEx);
launch_kernel_ex_wrapper!(cuLaunchKernelEx_ptsz, LaunchKernelExPtsz);

/// Defines a `cuGraphLaunch` wrapper: the replay is counted, and under `FLASHLOG_SYNC=1` followed by a
/// synchronisation of its stream (`crate::sync::graph`).
macro_rules! graph_launch_wrapper {
    ($name:ident, $entry:ident, $per_thread:literal) => {
        /// Wrapper of the driver function of the same name.
        ///
        /// # Safety
        /// Called by the host with the driver's contract.
        pub unsafe extern "C" fn $name<const K: usize>(exec: usize, stream: Stream) -> i32 {
            plt::refresh();
            let Some(f) = real::<unsafe extern "C" fn(usize, Stream) -> i32>(Entry::$entry as usize, K) else {
                return NOT_FOUND;
            };
            let replay = crate::sync::graph::on_launch_before(exec);
            let rc = f(exec, stream);
            crate::sync::graph::on_launch_after(replay, exec, stream, $per_thread, rc);
            rc
        }
    };
}

graph_launch_wrapper!(cuGraphLaunch, GraphLaunch, false);
graph_launch_wrapper!(cuGraphLaunch_ptsz, GraphLaunchPtsz, true);

/// Defines a graph-instantiate wrapper: remembers which graph the executable graph comes from.
macro_rules! instantiate_wrapper {
    ($name:ident, $entry:ident, ($($arg:ident: $ty:ty),*)) => {
        /// Wrapper of the driver function of the same name.
        ///
        /// # Safety
        /// Called by the host with the driver's contract.
        pub unsafe extern "C" fn $name<const K: usize>(exec: *mut usize, graph: usize $(, $arg: $ty)*) -> i32 {
            plt::refresh();
            let Some(f) =
                real::<unsafe extern "C" fn(*mut usize, usize $(, $ty)*) -> i32>(Entry::$entry as usize, K) else {
                return NOT_FOUND;
            };
            let rc = f(exec, graph $(, $arg)*);
            if rc == 0 {
                let made = crate::abi::mem::read_pod::<usize>(exec as usize).unwrap_or(0);
                crate::sync::graph::on_instantiate(made, graph);
            }
            rc
        }
    };
}

instantiate_wrapper!(cuGraphInstantiate, GraphInstantiate, (node: *mut usize, log: *mut c_char, size: usize));
instantiate_wrapper!(cuGraphInstantiate_v2, GraphInstantiateV2, (node: *mut usize, log: *mut c_char, size: usize));
instantiate_wrapper!(cuGraphInstantiateWithFlags, GraphInstantiateWithFlags, (flags: u64));
instantiate_wrapper!(cuGraphInstantiateWithParams, GraphInstantiateWithParams, (params: *mut c_void));
instantiate_wrapper!(cuGraphInstantiateWithParams_ptsz, GraphInstantiateWithParamsPtsz, (params: *mut c_void));

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn table_is_indexed_by_entry() {
        for (i, row) in ENTRIES.iter().enumerate() {
            assert_eq!(row.entry as usize, i, "{:?}", row.symbol);
        }
    }

    #[test]
    fn variants_follow_the_driver_mapping() {
        assert_eq!(infer_variant("cuStreamBeginCapture", 10000, false), Entry::BeginCapture);
        assert_eq!(infer_variant("cuStreamBeginCapture", 10010, false), Entry::BeginCaptureV2);
        assert_eq!(infer_variant("cuStreamBeginCapture", 10010, true), Entry::BeginCaptureV2Ptsz);
        assert_eq!(infer_variant("cuStreamBeginCapture", 10000, true), Entry::BeginCapturePtsz);
        assert_eq!(infer_variant("cuStreamEndCapture", 10000, true), Entry::EndCapturePtsz);
        assert_eq!(infer_variant("cuLaunchKernel", 4000, true), Entry::LaunchKernel);
        assert_eq!(infer_variant("cuLaunchKernel", 7000, true), Entry::LaunchKernelPtsz);
        assert_eq!(infer_variant("cuGetProcAddress", 11030, false), Entry::GetProcAddress);
        assert_eq!(infer_variant("cuGetProcAddress", 12000, false), Entry::GetProcAddressV2);
        assert_eq!(infer_variant("cuGraphLaunch", 10000, true), Entry::GraphLaunchPtsz);
        assert_eq!(infer_variant("cuGraphInstantiate", 10000, false), Entry::GraphInstantiate);
        assert_eq!(infer_variant("cuGraphInstantiate", 11000, false), Entry::GraphInstantiateV2);
        assert_eq!(infer_variant("cuGraphInstantiate", 12000, false), Entry::GraphInstantiateWithFlags);
        assert_eq!(infer_variant("cuGraphInstantiateWithParams", 12000, true), Entry::GraphInstantiateWithParamsPtsz);
    }

    #[test]
    fn each_real_function_gets_its_own_copy_and_the_shim_none() {
        let e = Entry::LaunchKernelExPtsz;
        let (a, b) = (0x1000usize, 0x2000usize);
        let wa = wrapper_for(e, a).unwrap();
        assert_eq!(wrapper_for(e, a), Some(wa));
        let wb = wrapper_for(e, b).unwrap();
        assert_ne!(wa, wb);
        assert_eq!(wrapper_for(e, wa), None, "a wrapper is never bound as real");
        assert_eq!(wrapper_for(e, wrapper_for as *const () as usize), None);
        assert_eq!(wrapper_for(e, 0), None);
        assert!(wrapper_for(e, 0x3000).is_some() && wrapper_for(e, 0x4000).is_some());
        assert_eq!(wrapper_for(e, 0x5000), None, "all copies bound: pass unwrapped");
        assert_eq!(wrapper_for(e, b), Some(wb));
    }

    #[test]
    fn launch_config_layout() {
        assert_eq!(offset_of!(LaunchConfig, shared_mem), 24);
        assert_eq!(offset_of!(LaunchConfig, stream), 32);
        assert_eq!(offset_of!(LaunchConfig, num_attrs), 48);
        assert_eq!(size_of::<LaunchConfig>(), 56);
    }
}
