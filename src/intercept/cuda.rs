//! The CUDA driver entry points the shim wraps, described once as data ([`ENTRIES`]): graph capture
//! (begin/end, legacy and per-thread `_ptsz`, `_v2`, `ToGraph`), kernel launches, graph instantiation and
//! launches (for `FLASHLOG_SYNC`, `crate::sync::graph`), and `cuGetProcAddress*` itself. Nothing here is
//! exported (an exported `cuLaunchKernel` would bind every reference in the process by name, data objects and
//! other libraries' own definitions included). They are reached by three routes, all served by the same
//! wrapper functions:
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
use crate::abi::cuda_types::LaunchConfig;
use crate::abi::dl;
use crate::capture;
use crate::os::sys::ErrnoGuard;
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

/// One row of the table: the driver's symbol, its base name (what `cuGetProcAddress` is asked for), whether
/// it is the per-thread-default-stream variant, and the first driver API version that maps the base name to
/// it (for `cuGetProcAddress` answers whose symbol cannot be read back from the address).
pub struct EntryInfo {
    /// Exported symbol in libcuda.
    pub symbol: &'static str,
    /// The name `cuGetProcAddress` callers ask for.
    pub base: &'static str,
    /// Per-thread default stream (`_ptsz`).
    pub per_thread: bool,
    /// The driver returns this variant for `base` from this API version on (CUDA 12.x mapping).
    pub since: i32,
    /// Another base name the driver maps to this variant (`cuGraphInstantiate` is `cuGraphInstantiateWithFlags`
    /// from CUDA 12.0), and from which API version; `""` for none.
    pub also: (&'static str, i32),
    /// Which entry.
    pub entry: DriverEntry,
}

/// Generates everything that names a driver entry point from the one table below ([`driver_entries!`]'s
/// invocation): the [`DriverEntry`] enum, the [`ENTRIES`] rows, the [`REAL`] slots, the wrapper functions (by the
/// row's wrapper kind) and [`wrapper_addr`].
macro_rules! driver_entries {
    ($( $(#[$doc:meta])* $entry:ident = $sym:ident, base $base:literal $(or $also:literal from $also_since:literal)?,
        ptsz $pt:literal, since $since:literal, $kind:ident ($($args:tt)*); )*) => {
        /// The wrapped driver entry points; the discriminant indexes [`REAL`] and [`ENTRIES`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub enum DriverEntry {
            $( $(#[$doc])* $entry, )*
        }

        /// Every wrapped driver entry point, in the order of [`DriverEntry`].
        pub const ENTRIES: [EntryInfo; COUNT] = [
            $( EntryInfo {
                symbol: stringify!($sym),
                base: $base,
                per_thread: $pt,
                since: $since,
                also: {
                    let also = [("", 0) $(, ($also, $also_since))?];
                    also[also.len() - 1]
                },
                entry: DriverEntry::$entry,
            }, )*
        ];

        /// How many entry points the table has.
        const COUNT: usize = [$(stringify!($entry)),*].len();

        $( $kind!($sym, $entry, ($($args)*)); )*

        /// The address of copy `k` of the shim's wrapper for `entry`.
        fn wrapper_addr(entry: DriverEntry, k: usize) -> usize {
            let all = match entry {
                $( DriverEntry::$entry => copies!($sym), )*
            };
            all[k]
        }
    };
}

/// The real driver function behind each wrapper copy (0 = copy not bound yet).
static REAL: [[AtomicUsize; INSTANCES]; COUNT] = [const { [const { AtomicUsize::new(0) }; INSTANCES] }; COUNT];

/// Whether `name` is one of the wrapped driver symbols (decides whether `dlsym` hooks the lookup).
pub fn is_tracked_driver_name(name: &[u8]) -> bool {
    ENTRIES.iter().any(|e| e.symbol.as_bytes() == name)
}

/// The entry whose exported driver symbol is `name`.
pub fn entry_by_symbol(name: &[u8]) -> Option<DriverEntry> {
    ENTRIES.iter().find(|e| e.symbol.as_bytes() == name).map(|e| e.entry)
}

/// The driver wrappers as the GOT rewrite of the PLT route sees them.
pub const GOT_WRAPPERS: plt::Wrappers = plt::Wrappers {
    count: COUNT,
    symbol: |entry| ENTRIES.get(entry).map_or("", |e| e.symbol),
    entry_of: |name| entry_by_symbol(name).map(|e| e as usize),
    wrapper: |entry, real| wrapper_for(ENTRIES.get(entry)?.entry, real),
};

// The rewrite's tables hold every entry, and as many known functions per entry as there are wrapper copies.
const _: () = assert!(COUNT <= plt::MAX_ENTRIES && INSTANCES == plt::KNOWN_PER_ENTRY);

/// The real function bound to copy `k` of `entry`, as a typed function pointer.
///
/// # Safety
/// `F` must be the C signature of entry `e`.
unsafe fn real<F: Copy>(e: usize, k: usize) -> Option<F> {
    let addr = REAL[e][k].load(Ordering::Acquire);
    // SAFETY: a bound slot holds the real driver function of entry `e`, whose C signature is `F` (the
    // caller's contract); `F` is a function pointer type of the same size as `usize`.
    (addr != 0).then(|| unsafe { std::mem::transmute_copy::<usize, F>(&addr) })
}

/// The wrapper copy of `entry` bound to `real`: the copy already bound to it, else a free copy bound now.
/// None for an address inside the shim (never called as "real": that would call itself) and when every
/// copy is bound to another function (the caller then hands out `real` itself, unwrapped).
pub fn wrapper_for(entry: DriverEntry, real: usize) -> Option<usize> {
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
        .find(|e| plt::is_known_driver_function(e.entry as usize, found))
        .map(|e| e.entry);
    let Some(entry) = by_address.or_else(|| infer_variant(base, version, flags & PER_THREAD_FLAG != 0)) else {
        return found;
    };
    // The driver's answer is the real function wherever it lies (a forwarding driver may hand out its own
    // functions or the vendor's); only an address of the shim itself is passed back untouched.
    wrapper_for(entry, found).unwrap_or(found)
}

/// The variant the driver returns for `base` at `version`, per-thread or not: of the rows of `base` (of the
/// same per-thread kind, when `base` has per-thread variants), the one with the latest `since` not after
/// `version`. When no per-thread row exists yet at `version` (per-thread launches exist from 7.0), both flags
/// get the legacy function. None for a base the table does not have.
pub fn infer_variant(base: &str, version: i32, per_thread: bool) -> Option<DriverEntry> {
    let has_ptsz = ENTRIES.iter().any(|e| e.base == base && e.per_thread);
    // The version from which the driver maps `base` to row `e`, if it does.
    let since = |e: &EntryInfo| match () {
        _ if e.base == base => Some(e.since),
        _ if e.also.0 == base => Some(e.also.1),
        _ => None,
    };
    let latest = |per_thread: bool| {
        ENTRIES
            .iter()
            .filter(|e| !has_ptsz || e.per_thread == per_thread)
            .filter_map(|e| Some((since(e).filter(|&v| v <= version)?, e.entry)))
            .max_by_key(|&(v, _)| v)
            .map(|(_, entry)| entry)
    };
    latest(per_thread).or_else(|| latest(false))
}

/// Replaces `*pfn` with a wrapper when the lookup succeeded and names a wrapped entry point.
///
/// # Safety
/// `symbol` and `pfn` are the host's arguments to a `cuGetProcAddress*` call that returned `rc`.
unsafe fn after_proc_address(rc: i32, symbol: *const c_char, pfn: *mut usize, version: i32, flags: u64) {
    // SAFETY: the driver wrote `*pfn` for a successful lookup (the caller's contract), and `pfn` is not null.
    if rc != 0 || symbol.is_null() || pfn.is_null() || unsafe { *pfn } == 0 {
        return;
    }
    let _errno = ErrnoGuard::save();
    // SAFETY: the driver just looked `symbol` up: a NUL-terminated string the host passed.
    let name = unsafe { CStr::from_ptr(symbol) }.to_bytes();
    // SAFETY: as above.
    let found = unsafe { *pfn };
    if let Some(w) = state::guarded(|| wrap_proc_address(name, found, version, flags)) {
        // SAFETY: `pfn` is the host's out-parameter, written by the driver a moment ago.
        unsafe { *pfn = w };
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
    plt::refresh_from_wrapper(&GOT_WRAPPERS);
    // SAFETY: the table row of this entry gives this wrapper its C signature, the type `real` is asked for.
    let Some(f) = (unsafe { real::<GetProcAddressFn>(DriverEntry::GetProcAddress as usize, K) }) else {
        return NOT_FOUND;
    };
    // SAFETY: the real driver function, called with the host's own arguments under the driver's contract.
    let rc = unsafe { f(symbol, pfn, version, flags) };
    // SAFETY: the host's own arguments to this lookup, which returned `rc`.
    unsafe { after_proc_address(rc, symbol, pfn, version, flags) };
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
    plt::refresh_from_wrapper(&GOT_WRAPPERS);
    // SAFETY: the table row of this entry gives this wrapper its C signature, the type `real` is asked for.
    let Some(f) = (unsafe { real::<GetProcAddressV2Fn>(DriverEntry::GetProcAddressV2 as usize, K) }) else {
        return NOT_FOUND;
    };
    // SAFETY: the real driver function, called with the host's own arguments under the driver's contract.
    let rc = unsafe { f(symbol, pfn, version, flags, status) };
    // SAFETY: the host's own arguments to this lookup, which returned `rc`.
    unsafe { after_proc_address(rc, symbol, pfn, version, flags) };
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
            plt::refresh_from_wrapper(&GOT_WRAPPERS);
            crate::graph::prepare_before_capture();
            // SAFETY: the table row of this entry gives this wrapper its C signature, the type `real` is asked for.
            let Some(f) = (unsafe { real::<unsafe extern "C" fn(Stream $(, $ty)*) -> i32>(DriverEntry::$entry as usize, K) }) else {
                return NOT_FOUND;
            };
            // SAFETY: the real driver function, called with the host's own arguments under the driver's contract.
            let rc = unsafe { f(stream $(, $arg)*) };
            if rc == 0 {
                capture::began(stream);
            }
            crate::sync::graph::on_capture_begin(stringify!($name), stream, rc);
            rc
        }
    };
}

/// Defines an EndCapture wrapper: call the real function, then record the end of the capture.
macro_rules! end_capture_wrapper {
    ($name:ident, $entry:ident, ()) => {
        /// Wrapper of the driver function of the same name: records the end of the capture.
        ///
        /// # Safety
        /// Called by the host with the driver's contract.
        pub unsafe extern "C" fn $name<const K: usize>(stream: Stream, graph: *mut usize) -> i32 {
            plt::refresh_from_wrapper(&GOT_WRAPPERS);
            type EndCaptureFn = unsafe extern "C" fn(Stream, *mut usize) -> i32;
            // SAFETY: the table row of this entry gives this wrapper its C signature, the type `real` is asked for.
            let Some(f) = (unsafe { real::<EndCaptureFn>(DriverEntry::$entry as usize, K) }) else {
                return NOT_FOUND;
            };
            // SAFETY: the real driver function, called with the host's own arguments under the driver's contract.
            let rc = unsafe { f(stream, graph) };
            if capture::end_result_ends_capture(rc) {
                capture::ended(stream);
            }
            let made = if rc == 0 { crate::os::mem::read_pod::<usize>(graph as usize).unwrap_or(0) } else { 0 };
            crate::sync::graph::on_capture_end(stringify!($name), stream, made, rc);
            rc
        }
    };
}

type LaunchKernelFn =
    unsafe extern "C" fn(usize, u32, u32, u32, u32, u32, u32, u32, Stream, *mut *mut c_void, *mut *mut c_void) -> i32;

/// Defines a `cuLaunchKernel` wrapper: log the launch (never synchronising), then call the real function.
macro_rules! launch_kernel_wrapper {
    ($name:ident, $entry:ident, ()) => {
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
            plt::refresh_from_wrapper(&GOT_WRAPPERS);
            // SAFETY: the table row of this entry gives this wrapper its C signature, the type `real` is asked for.
            let Some(f) = (unsafe { real::<LaunchKernelFn>(DriverEntry::$entry as usize, K) }) else {
                return NOT_FOUND;
            };
            launch::log_launch(function, || Launch {
                grid: [gx, gy, gz],
                block: [bx, by, bz],
                shared_mem: shared_mem as u64,
                stream,
            });
            // SAFETY: the real driver function, called with the host's own arguments under the driver's contract.
            unsafe { f(function, gx, gy, gz, bx, by, bz, shared_mem, stream, params, extra) }
        }
    };
}

type LaunchKernelExFn = unsafe extern "C" fn(*const LaunchConfig, usize, *mut *mut c_void, *mut *mut c_void) -> i32;

/// Defines a `cuLaunchKernelEx` wrapper.
macro_rules! launch_kernel_ex_wrapper {
    ($name:ident, $entry:ident, ()) => {
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
            plt::refresh_from_wrapper(&GOT_WRAPPERS);
            // SAFETY: the table row of this entry gives this wrapper its C signature, the type `real` is asked for.
            let Some(f) = (unsafe { real::<LaunchKernelExFn>(DriverEntry::$entry as usize, K) }) else {
                return NOT_FOUND;
            };
            if let Ok(c) = crate::os::mem::read_pod::<LaunchConfig>(config as usize) {
                launch::log_launch(function, || Launch {
                    grid: c.grid,
                    block: c.block,
                    shared_mem: c.shared_mem as u64,
                    stream: c.stream,
                });
            }
            // SAFETY: the real driver function, called with the host's own arguments under the driver's contract.
            unsafe { f(config, function, params, extra) }
        }
    };
}

/// Defines a `cuGraphLaunch` wrapper: the replay is counted, and under `FLASHLOG_SYNC=1` followed by a
/// synchronisation of its stream (`crate::sync::graph`).
macro_rules! graph_launch_wrapper {
    ($name:ident, $entry:ident, ($per_thread:literal)) => {
        /// Wrapper of the driver function of the same name.
        ///
        /// # Safety
        /// Called by the host with the driver's contract.
        pub unsafe extern "C" fn $name<const K: usize>(exec: usize, stream: Stream) -> i32 {
            plt::refresh_from_wrapper(&GOT_WRAPPERS);
            // SAFETY: the table row of this entry gives this wrapper its C signature, the type `real` is asked for.
            let Some(f) = (unsafe { real::<unsafe extern "C" fn(usize, Stream) -> i32>(DriverEntry::$entry as usize, K) })
            else {
                return NOT_FOUND;
            };
            let replay = crate::sync::graph::on_launch_before(exec);
            // SAFETY: the real driver function, called with the host's own arguments under the driver's contract.
            let rc = unsafe { f(exec, stream) };
            crate::sync::graph::on_launch_after(replay, exec, stream, $per_thread, rc);
            rc
        }
    };
}

/// Defines a graph-instantiate wrapper: remembers which graph the executable graph comes from.
macro_rules! instantiate_wrapper {
    ($name:ident, $entry:ident, ($($arg:ident: $ty:ty),*)) => {
        /// Wrapper of the driver function of the same name.
        ///
        /// # Safety
        /// Called by the host with the driver's contract.
        pub unsafe extern "C" fn $name<const K: usize>(exec: *mut usize, graph: usize $(, $arg: $ty)*) -> i32 {
            plt::refresh_from_wrapper(&GOT_WRAPPERS);
            type InstantiateFn = unsafe extern "C" fn(*mut usize, usize $(, $ty)*) -> i32;
            // SAFETY: the table row of this entry gives this wrapper its C signature, the type `real` is asked for.
            let Some(f) = (unsafe { real::<InstantiateFn>(DriverEntry::$entry as usize, K) }) else {
                return NOT_FOUND;
            };
            // SAFETY: the real driver function, called with the host's own arguments under the driver's contract.
            let rc = unsafe { f(exec, graph $(, $arg)*) };
            if rc == 0 {
                let made = crate::os::mem::read_pod::<usize>(exec as usize).unwrap_or(0);
                crate::sync::graph::on_instantiate(made, graph);
            }
            rc
        }
    };
}

/// A wrapper written out by hand above (the `cuGetProcAddress*` pair): the table generates nothing for it.
macro_rules! by_hand {
    ($name:ident, $entry:ident, ()) => {};
}

// The one table of the wrapped driver entry points: the variant, the driver's symbol (the wrapper's name), the
// base name `cuGetProcAddress` is asked for (and, after `or`, another base the driver maps to this variant from
// an API version on), per-thread stream or not, the first API version the driver maps the base name to this
// variant, and the wrapper kind with its extra arguments.
driver_entries! {
    /// `cuStreamBeginCapture(CUstream)`.
    BeginCapture = cuStreamBeginCapture, base "cuStreamBeginCapture", ptsz false, since 0,
        begin_capture_wrapper ();
    /// Per-thread-stream variant.
    BeginCapturePtsz = cuStreamBeginCapture_ptsz, base "cuStreamBeginCapture", ptsz true, since 0,
        begin_capture_wrapper ();
    /// `cuStreamBeginCapture_v2(CUstream, CUstreamCaptureMode)`.
    BeginCaptureV2 = cuStreamBeginCapture_v2, base "cuStreamBeginCapture", ptsz false, since 10010,
        begin_capture_wrapper (mode: i32);
    /// Per-thread-stream variant.
    BeginCaptureV2Ptsz = cuStreamBeginCapture_v2_ptsz, base "cuStreamBeginCapture", ptsz true, since 10010,
        begin_capture_wrapper (mode: i32);
    /// `cuStreamBeginCaptureToGraph(CUstream, CUgraph, deps, edge data, n, mode)`.
    BeginCaptureToGraph = cuStreamBeginCaptureToGraph, base "cuStreamBeginCaptureToGraph", ptsz false, since 0,
        begin_capture_wrapper
        (graph: usize, deps: *const c_void, edge_data: *const c_void, num_deps: usize, mode: i32);
    /// Per-thread-stream variant.
    BeginCaptureToGraphPtsz = cuStreamBeginCaptureToGraph_ptsz, base "cuStreamBeginCaptureToGraph", ptsz true,
        since 0, begin_capture_wrapper
        (graph: usize, deps: *const c_void, edge_data: *const c_void, num_deps: usize, mode: i32);
    /// `cuStreamEndCapture(CUstream, CUgraph*)`.
    EndCapture = cuStreamEndCapture, base "cuStreamEndCapture", ptsz false, since 0, end_capture_wrapper ();
    /// Per-thread-stream variant.
    EndCapturePtsz = cuStreamEndCapture_ptsz, base "cuStreamEndCapture", ptsz true, since 0,
        end_capture_wrapper ();
    /// `cuLaunchKernel`.
    LaunchKernel = cuLaunchKernel, base "cuLaunchKernel", ptsz false, since 0, launch_kernel_wrapper ();
    /// Per-thread-stream variant.
    LaunchKernelPtsz = cuLaunchKernel_ptsz, base "cuLaunchKernel", ptsz true, since 7000, launch_kernel_wrapper ();
    /// `cuLaunchKernelEx(const CUlaunchConfig*, CUfunction, void**, void**)`.
    LaunchKernelEx = cuLaunchKernelEx, base "cuLaunchKernelEx", ptsz false, since 0, launch_kernel_ex_wrapper ();
    /// Per-thread-stream variant.
    LaunchKernelExPtsz = cuLaunchKernelEx_ptsz, base "cuLaunchKernelEx", ptsz true, since 0,
        launch_kernel_ex_wrapper ();
    /// `cuGetProcAddress` (4 arguments, CUDA 11.3).
    GetProcAddress = cuGetProcAddress, base "cuGetProcAddress", ptsz false, since 0, by_hand ();
    /// `cuGetProcAddress_v2` (5 arguments, CUDA 12.0).
    GetProcAddressV2 = cuGetProcAddress_v2, base "cuGetProcAddress", ptsz false, since 12000, by_hand ();
    /// `cuGraphLaunch(CUgraphExec, CUstream)`.
    GraphLaunch = cuGraphLaunch, base "cuGraphLaunch", ptsz false, since 0, graph_launch_wrapper (false);
    /// Per-thread-stream variant.
    GraphLaunchPtsz = cuGraphLaunch_ptsz, base "cuGraphLaunch", ptsz true, since 0, graph_launch_wrapper (true);
    /// `cuGraphInstantiate(CUgraphExec*, CUgraph, CUgraphNode*, char*, size_t)` (CUDA 10.0).
    GraphInstantiate = cuGraphInstantiate, base "cuGraphInstantiate", ptsz false, since 0,
        instantiate_wrapper (node: *mut usize, log: *mut c_char, size: usize);
    /// `cuGraphInstantiate_v2`, same arguments (CUDA 11.0).
    GraphInstantiateV2 = cuGraphInstantiate_v2, base "cuGraphInstantiate", ptsz false, since 11000,
        instantiate_wrapper (node: *mut usize, log: *mut c_char, size: usize);
    /// `cuGraphInstantiateWithFlags(CUgraphExec*, CUgraph, unsigned long long)` (what `cuGraphInstantiate`
    /// means from CUDA 12.0).
    GraphInstantiateWithFlags = cuGraphInstantiateWithFlags,
        base "cuGraphInstantiateWithFlags" or "cuGraphInstantiate" from 12000, ptsz false, since 0,
        instantiate_wrapper (flags: u64);
    /// `cuGraphInstantiateWithParams(CUgraphExec*, CUgraph, CUDA_GRAPH_INSTANTIATE_PARAMS*)`.
    GraphInstantiateWithParams = cuGraphInstantiateWithParams, base "cuGraphInstantiateWithParams", ptsz false,
        since 0, instantiate_wrapper (params: *mut c_void);
    /// Per-thread-stream variant.
    GraphInstantiateWithParamsPtsz = cuGraphInstantiateWithParams_ptsz, base "cuGraphInstantiateWithParams",
        ptsz true, since 0, instantiate_wrapper (params: *mut c_void);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_entry() {
        for (i, row) in ENTRIES.iter().enumerate() {
            assert_eq!(row.entry as usize, i, "{:?}", row.symbol);
        }
    }

    #[test]
    fn variants_follow_the_driver_mapping() {
        assert_eq!(infer_variant("cuGetProcAddress", 12000, true), Some(DriverEntry::GetProcAddressV2));
        assert_eq!(infer_variant("cuLaunchKernel", 12000, true), Some(DriverEntry::LaunchKernelPtsz));
        assert_eq!(infer_variant("cuMemAlloc", 12000, false), None);
        assert_eq!(infer_variant("cuStreamBeginCapture", 10000, false), Some(DriverEntry::BeginCapture));
        assert_eq!(infer_variant("cuStreamBeginCapture", 10010, false), Some(DriverEntry::BeginCaptureV2));
        assert_eq!(infer_variant("cuStreamBeginCapture", 10010, true), Some(DriverEntry::BeginCaptureV2Ptsz));
        assert_eq!(infer_variant("cuStreamBeginCapture", 10000, true), Some(DriverEntry::BeginCapturePtsz));
        assert_eq!(infer_variant("cuStreamEndCapture", 10000, true), Some(DriverEntry::EndCapturePtsz));
        assert_eq!(infer_variant("cuGetProcAddress", 11030, false), Some(DriverEntry::GetProcAddress));
        assert_eq!(infer_variant("cuGetProcAddress", 12000, false), Some(DriverEntry::GetProcAddressV2));
        assert_eq!(infer_variant("cuLaunchKernel", 4000, true), Some(DriverEntry::LaunchKernel));
        assert_eq!(infer_variant("cuLaunchKernel", 7000, true), Some(DriverEntry::LaunchKernelPtsz));
        assert_eq!(infer_variant("cuGraphLaunch", 10000, true), Some(DriverEntry::GraphLaunchPtsz));
        assert_eq!(infer_variant("cuGraphLaunch", 10000, false), Some(DriverEntry::GraphLaunch));
        assert_eq!(infer_variant("cuGraphInstantiate", 10000, false), Some(DriverEntry::GraphInstantiate));
        assert_eq!(infer_variant("cuGraphInstantiate", 11000, false), Some(DriverEntry::GraphInstantiateV2));
        assert_eq!(infer_variant("cuGraphInstantiate", 12000, false), Some(DriverEntry::GraphInstantiateWithFlags));
        assert_eq!(infer_variant("cuGraphInstantiate", 12000, true), Some(DriverEntry::GraphInstantiateWithFlags));
        assert_eq!(infer_variant("cuGraphInstantiateWithFlags", 11040, false), Some(DriverEntry::GraphInstantiateWithFlags));
        assert_eq!(
            infer_variant("cuGraphInstantiateWithParams", 12000, true),
            Some(DriverEntry::GraphInstantiateWithParamsPtsz)
        );
        assert_eq!(
            infer_variant("cuGraphInstantiateWithParams", 12000, false),
            Some(DriverEntry::GraphInstantiateWithParams)
        );
    }

    #[test]
    fn each_real_function_gets_its_own_copy_and_the_shim_none() {
        let e = DriverEntry::LaunchKernelExPtsz;
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
}
