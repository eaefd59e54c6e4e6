//! The driver functions `FLASHLOG_SYNC` calls (`crate::sync`): error names, the capture mode of the calling
//! thread, capture queries, stream synchronisation and progress-marker host functions. Taken, like
//! `cuda_driver`, from the libcuda the host already loaded, looked up with the real `dlsym`; each returns the
//! driver's own code, which the caller reports by name.

use super::dl::{loaded_object, real_dlsym};
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

type GetErrorNameFn = unsafe extern "C" fn(i32, *mut *const c_char) -> i32;
type StreamFn = unsafe extern "C" fn(usize) -> i32;
type IsCapturingFn = unsafe extern "C" fn(usize, *mut i32) -> i32;
type ExchangeModeFn = unsafe extern "C" fn(*mut i32) -> i32;
/// `CUhostFn`.
pub type HostFn = unsafe extern "C" fn(*mut c_void);
type LaunchHostFuncFn = unsafe extern "C" fn(usize, HostFn, *mut c_void) -> i32;

/// What the shim returns in place of a driver code when the driver lacks the function (never a CUDA code).
pub const MISSING: i32 = -1;
/// `CU_STREAM_CAPTURE_MODE_RELAXED`: the calling thread may make unsafe calls while others capture.
pub const MODE_RELAXED: i32 = 2;

/// The functions, all from one libcuda.
pub struct SyncDriver {
    get_error_name: Option<GetErrorNameFn>,
    synchronize: Option<StreamFn>,
    synchronize_ptsz: Option<StreamFn>,
    is_capturing: Option<IsCapturingFn>,
    is_capturing_ptsz: Option<IsCapturingFn>,
    exchange_mode: Option<ExchangeModeFn>,
    launch_host_func: Option<LaunchHostFuncFn>,
    launch_host_func_ptsz: Option<LaunchHostFuncFn>,
}

static DRIVER: OnceLock<SyncDriver> = OnceLock::new();

/// The host's driver, or None while no libcuda is loaded (asked again next time).
pub fn driver() -> Option<&'static SyncDriver> {
    if let Some(d) = DRIVER.get() {
        return Some(d);
    }
    let handle = loaded_object("libcuda.so")?;
    let lookup = |name: &CStr| real_dlsym(handle, name);
    // SAFETY: each symbol is the driver function of the signature (cuda.h 12.x) given by its type alias; a
    // missing one stays None.
    let d = unsafe {
        SyncDriver {
            get_error_name: cast(lookup(c"cuGetErrorName")),
            synchronize: cast(lookup(c"cuStreamSynchronize")),
            synchronize_ptsz: cast(lookup(c"cuStreamSynchronize_ptsz")),
            is_capturing: cast(lookup(c"cuStreamIsCapturing")),
            is_capturing_ptsz: cast(lookup(c"cuStreamIsCapturing_ptsz")),
            exchange_mode: cast(lookup(c"cuThreadExchangeStreamCaptureMode")),
            launch_host_func: cast(lookup(c"cuLaunchHostFunc")),
            launch_host_func_ptsz: cast(lookup(c"cuLaunchHostFunc_ptsz")),
        }
    };
    Some(DRIVER.get_or_init(|| d))
}

/// # Safety
/// `addr` must be 0 or the address of a function of type `F`.
unsafe fn cast<F: Copy>(addr: usize) -> Option<F> {
    (addr != 0).then(|| std::mem::transmute_copy::<usize, F>(&addr))
}

impl SyncDriver {
    /// `cuGetErrorName`: the driver's static name of `code` (`CUDA_ERROR_ILLEGAL_ADDRESS`), None when it has none.
    pub fn error_name(&self, code: i32) -> Option<&'static str> {
        let f = self.get_error_name?;
        let mut name: *const c_char = std::ptr::null();
        // SAFETY: valid out-parameter; the driver returns a pointer to a static string or fails.
        if unsafe { f(code, &mut name) } != 0 || name.is_null() {
            return None;
        }
        // SAFETY: a NUL-terminated string the driver owns for the life of the process.
        unsafe { CStr::from_ptr(name) }.to_str().ok()
    }

    /// `cuStreamSynchronize` (or `_ptsz`): the driver's code.
    pub fn synchronize(&self, stream: usize, per_thread: bool) -> i32 {
        let Some(f) = (if per_thread { self.synchronize_ptsz } else { self.synchronize }) else {
            return MISSING;
        };
        // SAFETY: a stream handle the host's own code runs on.
        unsafe { f(stream) }
    }

    /// `cuStreamIsCapturing` (or `_ptsz`): Ok(status) or Err(the driver's code).
    pub fn capture_status(&self, stream: usize, per_thread: bool) -> Result<i32, i32> {
        let f = (if per_thread { self.is_capturing_ptsz } else { self.is_capturing }).ok_or(MISSING)?;
        let mut status = 0i32;
        // SAFETY: valid out-parameter.
        match unsafe { f(stream, &mut status) } {
            0 => Ok(status),
            rc => Err(rc),
        }
    }

    /// `cuThreadExchangeStreamCaptureMode`: sets this thread's mode to `*mode` and leaves the old one there.
    pub fn exchange_capture_mode(&self, mode: &mut i32) -> i32 {
        let Some(f) = self.exchange_mode else {
            return MISSING;
        };
        // SAFETY: valid in-out parameter.
        unsafe { f(mode) }
    }

    /// `cuLaunchHostFunc` (or `_ptsz`): on a capturing stream, a host node run at every replay.
    ///
    /// # Safety
    /// `user` must stay valid for every call of `f` (for a captured node: as long as the graph may be replayed).
    pub unsafe fn launch_host_func(&self, stream: usize, f: HostFn, user: *mut c_void, per_thread: bool) -> i32 {
        let Some(launch) = (if per_thread { self.launch_host_func_ptsz } else { self.launch_host_func }) else {
            return MISSING;
        };
        launch(stream, f, user)
    }
}

/// One kept text, for a (call, code) pair.
struct Kept {
    what: &'static str,
    code: i32,
    text: String,
}

const KEPT: usize = 64;
static TABLE: [AtomicPtr<Kept>; KEPT] = [const { AtomicPtr::new(std::ptr::null_mut()) }; KEPT];

/// The text `make` gives for (`what`, `code`), made once and kept for the process, lock-free: a reason line
/// must be a `&'static str`. When 64 distinct pairs are kept already, the text is made and leaked anyway.
pub fn kept_text(what: &'static str, code: i32, make: impl FnOnce() -> String) -> &'static str {
    let mut make = Some(make);
    let mut fresh: *mut Kept = std::ptr::null_mut();
    for slot in &TABLE {
        let mut p = slot.load(Ordering::Acquire);
        if p.is_null() {
            if fresh.is_null() {
                let text = make.take().map(|m| m()).unwrap_or_default();
                fresh = Box::into_raw(Box::new(Kept { what, code, text }));
            }
            p = match slot.compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => fresh,
                Err(seen) => seen,
            };
        }
        // SAFETY: every published pointer is a leaked `Kept`, never freed.
        let k: &'static Kept = unsafe { &*p };
        if k.code == code && k.what == what {
            return &k.text;
        }
    }
    if fresh.is_null() {
        return Box::leak(make.take().map(|m| m()).unwrap_or_default().into_boxed_str());
    }
    // SAFETY: ours, never published, leaked for the process like the others.
    &unsafe { &*fresh }.text
}
