//! The driver functions `FLASHLOG_SYNC` calls (`crate::sync`): error names, the capture mode of the calling
//! thread, capture queries, stream synchronisation and progress-marker host functions. Taken, like
//! `cuda_driver`, from the libcuda the host already loaded, looked up with the real `dlsym`; each returns the
//! driver's own code, which the caller reports by name.

use super::dl::{loaded_object, real_dlsym};
use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

type GetErrorNameFn = unsafe extern "C" fn(i32, *mut *const c_char) -> i32;
type StreamFn = unsafe extern "C" fn(usize) -> i32;
type IsCapturingFn = unsafe extern "C" fn(usize, *mut i32) -> i32;
type ExchangeModeFn = unsafe extern "C" fn(*mut i32) -> i32;

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
        }
    };
    Some(DRIVER.get_or_init(|| d))
}

/// # Safety
/// `addr` must be 0 or the address of a function of type `F`.
unsafe fn cast<F: Copy>(addr: usize) -> Option<F> {
    // SAFETY: `addr` is the address of a function of type `F` (the caller's contract), a function pointer type
    // of the same size as `usize`.
    (addr != 0).then(|| unsafe { std::mem::transmute_copy::<usize, F>(&addr) })
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
}

/// One kept text, for a (call, code) pair.
struct Kept {
    what: &'static str,
    code: i32,
    text: String,
}

/// Texts made once per (call, code) pair and kept for the process, lock-free: a reason line must be a
/// `&'static str`, and its text depends on the driver's answer. At most `N` texts are kept.
pub struct KeptTexts<const N: usize>([AtomicPtr<Kept>; N]);

impl<const N: usize> KeptTexts<N> {
    /// An empty table.
    pub const fn new() -> Self {
        KeptTexts([const { AtomicPtr::new(std::ptr::null_mut()) }; N])
    }

    /// The kept text for (`what`, `code`), made by `make` on first use; `Err` with the text made, kept nowhere,
    /// when `N` other pairs are kept already (the caller decides what such a text becomes).
    pub fn get(&self, what: &'static str, code: i32, make: impl FnOnce() -> String) -> Result<&'static str, String> {
        let mut make = Some(make);
        let mut fresh: *mut Kept = std::ptr::null_mut();
        for slot in &self.0 {
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
            // SAFETY: every published pointer is a leaked `Kept`, never freed or changed.
            let k: &'static Kept = unsafe { &*p };
            if k.code == code && k.what == what {
                if !fresh.is_null() && !std::ptr::eq(fresh, p) {
                    // Another thread kept the same pair first.
                    // SAFETY: `fresh` was never published.
                    drop(unsafe { Box::from_raw(fresh) });
                }
                return Ok(&k.text);
            }
        }
        if fresh.is_null() {
            return Err(make.take().map(|m| m()).unwrap_or_default());
        }
        // SAFETY: `fresh` was never published.
        Err(unsafe { Box::from_raw(fresh) }.text)
    }
}

static TABLE: KeptTexts<64> = KeptTexts::new();

/// The text `make` gives for (`what`, `code`), made once and kept for the process, lock-free: a reason line
/// must be a `&'static str`. When 64 distinct pairs are kept already, the text is made and leaked anyway.
pub fn kept_text(what: &'static str, code: i32, make: impl FnOnce() -> String) -> &'static str {
    TABLE.get(what, code, make).unwrap_or_else(|text| Box::leak(text.into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_texts_keep_one_text_per_pair_and_refuse_past_their_size() {
        static TEXTS: KeptTexts<2> = KeptTexts::new();
        let a = TEXTS.get("cuA", 700, || "a 700".to_string()).unwrap();
        assert_eq!(a, "a 700");
        // The same pair: the kept text, `make` not called.
        let again = TEXTS.get("cuA", 700, || unreachable!()).unwrap();
        assert!(std::ptr::eq(a, again));
        assert_eq!(TEXTS.get("cuA", 719, || "a 719".to_string()), Ok("a 719"));
        // Full: the text is made and handed back, kept nowhere.
        assert_eq!(TEXTS.get("cuB", 700, || "b 700".to_string()), Err("b 700".to_string()));
        assert_eq!(TEXTS.get("cuA", 719, || unreachable!()), Ok("a 719"));
    }
}
