//! The CUDA driver functions the shim itself calls (system information, statistics of device tensors,
//! kernel names), taken from the libcuda instance the host already loaded: found among the loaded objects
//! and looked up in it with the real `dlsym`. The shim never loads a driver and never calls `cuInit`.

use super::cuda_sync::KeptTexts;
use super::dl::{loaded_object, real_dlsym};
use crate::os::pinned::Span;
use cudarc::driver::sys::CUresult;
use std::ffi::{c_char, c_void, CStr};
use std::sync::OnceLock;

/// `CUDA_SUCCESS` as the plain integer the wrappers pass around.
pub const SUCCESS: i32 = CUresult::CUDA_SUCCESS as i32;

type GetVersionFn = unsafe extern "C" fn(*mut i32) -> i32;
type DeviceGetCountFn = unsafe extern "C" fn(*mut i32) -> i32;
type DeviceGetFn = unsafe extern "C" fn(*mut i32, i32) -> i32;
type DeviceGetNameFn = unsafe extern "C" fn(*mut c_char, i32, i32) -> i32;
type DeviceGetAttributeFn = unsafe extern "C" fn(*mut i32, i32, i32) -> i32;
type StreamSynchronizeFn = unsafe extern "C" fn(usize) -> i32;
type StreamIsCapturingFn = unsafe extern "C" fn(usize, *mut i32) -> i32;
type MemcpyDtoHFn = unsafe extern "C" fn(*mut c_void, u64, usize) -> i32;
type FuncGetNameFn = unsafe extern "C" fn(*mut *const c_char, usize) -> i32;
type MemAllocHostFn = unsafe extern "C" fn(*mut *mut c_void, usize) -> i32;
type MemcpyDtoHAsyncFn = unsafe extern "C" fn(*mut c_void, u64, usize, usize) -> i32;
/// `CUhostFn`: a host function the driver calls on its own thread.
pub type HostFn = unsafe extern "C" fn(*mut c_void);
type LaunchHostFuncFn = unsafe extern "C" fn(usize, HostFn, *mut c_void) -> i32;
type ExchangeCaptureModeFn = unsafe extern "C" fn(*mut i32) -> i32;
type GetErrorNameFn = unsafe extern "C" fn(i32, *mut *const c_char) -> i32;

/// The driver functions, all from one libcuda.
pub struct Driver {
    get_version: Option<GetVersionFn>,
    device_get_count: Option<DeviceGetCountFn>,
    device_get: Option<DeviceGetFn>,
    device_get_name: Option<DeviceGetNameFn>,
    device_get_attribute: Option<DeviceGetAttributeFn>,
    stream_synchronize: Option<StreamSynchronizeFn>,
    stream_is_capturing: Option<StreamIsCapturingFn>,
    memcpy_dtoh: Option<MemcpyDtoHFn>,
    func_get_name: Option<FuncGetNameFn>,
    // ---- graph replay statistics (`crate::graph`)
    mem_alloc_host: Option<MemAllocHostFn>,
    memcpy_dtoh_async: Option<MemcpyDtoHAsyncFn>,
    memcpy_dtoh_async_ptsz: Option<MemcpyDtoHAsyncFn>,
    launch_host_func: Option<LaunchHostFuncFn>,
    launch_host_func_ptsz: Option<LaunchHostFuncFn>,
    stream_is_capturing_ptsz: Option<StreamIsCapturingFn>,
    // ---- the capture gate (`crate::stats::gate`)
    exchange_capture_mode: Option<ExchangeCaptureModeFn>,
    get_error_name: Option<GetErrorNameFn>,
}

static DRIVER: OnceLock<Driver> = OnceLock::new();

/// The driver the host loaded, or None while no libcuda is loaded (asked again next time).
pub fn driver() -> Option<&'static Driver> {
    if let Some(d) = DRIVER.get() {
        return Some(d);
    }
    let handle = loaded_object("libcuda.so")?;
    let lookup = |name: &CStr| real_dlsym(handle, name);
    // SAFETY: each symbol is the driver's function of the signature in cuda.h 12.x given by its type alias;
    // a missing one stays None.
    let d = unsafe {
        Driver {
            get_version: cast(lookup(c"cuDriverGetVersion")),
            device_get_count: cast(lookup(c"cuDeviceGetCount")),
            device_get: cast(lookup(c"cuDeviceGet")),
            device_get_name: cast(lookup(c"cuDeviceGetName")),
            device_get_attribute: cast(lookup(c"cuDeviceGetAttribute")),
            stream_synchronize: cast(lookup(c"cuStreamSynchronize")),
            stream_is_capturing: cast(lookup(c"cuStreamIsCapturing")),
            memcpy_dtoh: cast(lookup(c"cuMemcpyDtoH_v2")),
            func_get_name: cast(lookup(c"cuFuncGetName")),
            mem_alloc_host: cast(lookup(c"cuMemAllocHost_v2")),
            memcpy_dtoh_async: cast(lookup(c"cuMemcpyDtoHAsync_v2")),
            memcpy_dtoh_async_ptsz: cast(lookup(c"cuMemcpyDtoHAsync_v2_ptsz")),
            launch_host_func: cast(lookup(c"cuLaunchHostFunc")),
            launch_host_func_ptsz: cast(lookup(c"cuLaunchHostFunc_ptsz")),
            stream_is_capturing_ptsz: cast(lookup(c"cuStreamIsCapturing_ptsz")),
            exchange_capture_mode: cast(lookup(c"cuThreadExchangeStreamCaptureMode")),
            get_error_name: cast(lookup(c"cuGetErrorName")),
        }
    };
    Some(DRIVER.get_or_init(|| d))
}

/// # Safety
/// `addr` must be 0 or the address of a function of type `F`.
unsafe fn cast<F: Copy>(addr: usize) -> Option<F> {
    // SAFETY: `addr` is a function of type `F` (the caller's contract), and `F` is a function pointer type.
    (addr != 0).then(|| unsafe { std::mem::transmute_copy::<usize, F>(&addr) })
}

impl Driver {
    /// `cuDriverGetVersion`.
    pub fn version(&self) -> Option<i32> {
        let f = self.get_version?;
        let mut v = 0;
        // SAFETY: valid out-parameter.
        (unsafe { f(&mut v) } == SUCCESS).then_some(v)
    }

    /// Name and compute capability of every device; None when the driver is not initialised (the shim never
    /// calls `cuInit` itself) or a query fails.
    pub fn devices(&self) -> Option<Vec<(String, i32, i32)>> {
        let (count_fn, get, name_fn, attr) =
            (self.device_get_count?, self.device_get?, self.device_get_name?, self.device_get_attribute?);
        let mut count = 0;
        // SAFETY: valid out-parameters and buffer sizes for each query.
        unsafe {
            if count_fn(&mut count) != SUCCESS {
                return None;
            }
            let mut devices = Vec::new();
            for ordinal in 0..count {
                let mut dev = 0;
                if get(&mut dev, ordinal) != SUCCESS {
                    return None;
                }
                let mut name = [0 as c_char; 256];
                if name_fn(name.as_mut_ptr(), name.len() as i32 - 1, dev) != SUCCESS {
                    return None;
                }
                let (mut major, mut minor) = (0, 0);
                // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76.
                if attr(&mut major, 75, dev) != SUCCESS || attr(&mut minor, 76, dev) != SUCCESS {
                    return None;
                }
                let name = CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
                devices.push((name, major, minor));
            }
            Some(devices)
        }
    }

    /// `cuStreamSynchronize`; Err(code) on failure.
    pub fn synchronize(&self, stream: usize) -> Result<(), i32> {
        let f = self.stream_synchronize.ok_or(-1)?;
        // SAFETY: plain call with a stream handle the host gave us.
        match unsafe { f(stream) } {
            SUCCESS => Ok(()),
            rc => Err(rc),
        }
    }

    /// Copies `dst.len()` bytes of device memory at `src` into `dst` (`cuMemcpyDtoH_v2`).
    pub fn copy_to_host(&self, src: u64, dst: &mut [u8]) -> Result<(), i32> {
        let f = self.memcpy_dtoh.ok_or(-1)?;
        // SAFETY: `dst` is valid for its length; the driver validates `src`.
        match unsafe { f(dst.as_mut_ptr().cast(), src, dst.len()) } {
            SUCCESS => Ok(()),
            rc => Err(rc),
        }
    }

    /// `cuMemAllocHost_v2`: `bytes` of page-locked host memory, never freed by the shim. An allocation: never
    /// call it while a capture may be running.
    pub fn alloc_host(&self, bytes: usize) -> Result<usize, i32> {
        let f = self.mem_alloc_host.ok_or(-1)?;
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: valid out-parameter.
        match unsafe { f(&mut p, bytes) } {
            SUCCESS if !p.is_null() => Ok(p as usize),
            SUCCESS => Err(-1),
            rc => Err(rc),
        }
    }

    /// The capture status of `stream` (`cuStreamIsCapturing`, or its `_ptsz` form for the per-thread default
    /// stream); None when the driver cannot tell.
    pub fn capture_status(&self, stream: usize, per_thread: bool) -> Option<i32> {
        let f = if per_thread { self.stream_is_capturing_ptsz } else { self.stream_is_capturing }?;
        let mut status = 0i32;
        // SAFETY: valid out-parameter.
        (unsafe { f(stream, &mut status) } == SUCCESS).then_some(status)
    }

    /// The capture status of `stream` with the driver's own return code: `Ok(status)`, or `Err(rc)` (906,
    /// `CUDA_ERROR_STREAM_CAPTURE_IMPLICIT`, when `stream` is the legacy stream and a blocking stream is
    /// capturing; -1 when the driver lacks the function). Legal during any capture; changes nothing.
    pub fn query_capture(&self, stream: usize, per_thread: bool) -> Result<i32, i32> {
        let f = if per_thread { self.stream_is_capturing_ptsz } else { self.stream_is_capturing }.ok_or(-1)?;
        let mut status = 0i32;
        // SAFETY: valid out-parameter.
        match unsafe { f(stream, &mut status) } {
            SUCCESS => Ok(status),
            rc => Err(rc),
        }
    }

    /// `cuThreadExchangeStreamCaptureMode`: sets the calling thread's capture interaction mode to `mode` and
    /// returns the one it had; Err(rc) (-1 when the driver lacks the function). Thread-local, legal during
    /// any capture.
    pub fn exchange_capture_mode(&self, mode: i32) -> Result<i32, i32> {
        let f = self.exchange_capture_mode.ok_or(-1)?;
        let mut inout = mode;
        // SAFETY: valid in-out parameter.
        match unsafe { f(&mut inout) } {
            SUCCESS => Ok(inout),
            rc => Err(rc),
        }
    }

    /// The driver's name of an error code (`cuGetErrorName`), copied; None for a code it does not know.
    pub fn error_name(&self, rc: i32) -> Option<String> {
        let f = self.get_error_name?;
        let mut name: *const c_char = std::ptr::null();
        // SAFETY: valid out-parameter; the driver returns a pointer to its own static string.
        if unsafe { f(rc, &mut name) } != SUCCESS || name.is_null() {
            return None;
        }
        // SAFETY: a NUL-terminated string owned by the driver, copied at once.
        Some(unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned())
    }

    /// `capture status unknown (<function>: <error name> (<code>))` for a driver query `what` that failed with
    /// `rc`, kept for the rest of the process (dump records hold `&'static str` reasons): at most [`KEPT`]
    /// distinct texts are made, later ones share a generic text. `CUDA error (<code>)` when the driver has no
    /// name for it.
    pub fn failure_text(&self, what: &'static str, rc: i32) -> &'static str {
        REASONS
            .get(what, rc, || {
                // The driver's name and the code (`CUDA_ERROR_INVALID_HANDLE (400)`), as every driver error is
                // written.
                let name = match rc {
                    -1 => "not in this driver".to_string(),
                    rc => format!("{} ({rc})", self.error_name(rc).unwrap_or_else(|| "CUDA error".to_string())),
                };
                format!("capture status unknown ({what}: {name})")
            })
            .unwrap_or("capture status unknown (a driver query failed)")
    }

    /// Enqueues on `stream` the copy of `span.len()` bytes of device memory at `src` into the page-locked
    /// `span` (`cuMemcpyDtoHAsync_v2` or `_ptsz`): on a capturing stream, a memcpy node of the graph.
    pub fn copy_into_span(&self, span: &Span, src: u64, stream: usize, per_thread: bool) -> Result<(), i32> {
        let f = if per_thread { self.memcpy_dtoh_async_ptsz } else { self.memcpy_dtoh_async }.ok_or(-1)?;
        // SAFETY: the span is page-locked memory valid for `span.len()` bytes for the rest of the process
        // (the pinned block is never freed), so the copy, or the graph's node, may run at any later time.
        match unsafe { f(span.addr() as *mut c_void, src, span.len(), stream) } {
            SUCCESS => Ok(()),
            rc => Err(rc),
        }
    }

    /// `cuLaunchHostFunc` (or `_ptsz`): `f(user)` on the driver's thread after the stream's earlier work; on a
    /// capturing stream, a host node run at every replay.
    ///
    /// # Safety
    /// `user` must stay valid for every call of `f` (for a captured node: as long as the graph may be replayed).
    pub unsafe fn launch_host_func(
        &self,
        stream: usize,
        f: HostFn,
        user: *mut c_void,
        per_thread: bool,
    ) -> Result<(), i32> {
        let launch = if per_thread { self.launch_host_func_ptsz } else { self.launch_host_func }.ok_or(-1)?;
        // SAFETY: the real `cuLaunchHostFunc`; `user` outlives every call of `f` (the caller's contract).
        match unsafe { launch(stream, f, user) } {
            SUCCESS => Ok(()),
            rc => Err(rc),
        }
    }

    /// The mangled name of a kernel (`cuFuncGetName`), when the driver has it.
    pub fn function_name(&self, function: usize) -> Option<String> {
        let f = self.func_get_name?;
        let mut name: *const c_char = std::ptr::null();
        // SAFETY: valid out-parameter; the driver owns the returned string.
        if unsafe { f(&mut name, function) } != SUCCESS || name.is_null() {
            return None;
        }
        // SAFETY: as above.
        Some(unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned())
    }

    /// What identifies a kernel's current name without copying it: the address and length of the driver's
    /// string and a hash of its bytes (`cuFuncGetName`, no allocation). A handle the driver reused for another
    /// module's kernel gives another key even when its string landed at the same address.
    pub fn function_name_key(&self, function: usize) -> NameKey {
        let Some(f) = self.func_get_name else {
            return NameKey::Gone;
        };
        let mut name: *const c_char = std::ptr::null();
        // SAFETY: valid out-parameter; the driver owns the returned string.
        let rc = unsafe { f(&mut name, function) };
        if rc != SUCCESS || name.is_null() {
            return if is_sticky_execution_error(rc) { NameKey::Unanswered } else { NameKey::Gone };
        }
        // SAFETY: the driver's NUL-terminated name, valid while the function exists (during this launch).
        let bytes = unsafe { CStr::from_ptr(name) }.to_bytes();
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        NameKey::Known((name as usize, bytes.len(), hash))
    }
}

/// What the driver says about a kernel handle's name now (see [`Driver::function_name_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKey {
    /// The name's key: the driver string's address, its length and a hash of its bytes.
    Known((usize, usize, u64)),
    /// The context is in a sticky execution error (an illegal address, a device-side assert, ...), so the
    /// driver answers that error to every call. No module can be unloaded in that state either, so a handle
    /// still names the kernel it named before the error.
    Unanswered,
    /// No name: no `cuFuncGetName`, or the handle is not (or no longer) a function.
    Gone,
}

/// The driver's sticky kernel-execution errors: once one happened, every call on the context returns it.
fn is_sticky_execution_error(rc: i32) -> bool {
    // 700 illegal address, 702 launch timeout, 710 assert, 714 hardware stack error, 715 illegal instruction,
    // 716 misaligned address, 717 invalid address space, 718 invalid PC, 719 launch failed.
    matches!(rc, 700 | 702 | 710 | 714..=719)
}

/// Most distinct reason texts kept (see [`Driver::failure_text`]).
const KEPT: usize = 16;
static REASONS: KeptTexts<KEPT> = KeptTexts::new();
