//! The `dlsym` entry point. A naked function asks [`route`] where to go and tail-jumps there with the
//! caller's registers and return address untouched: every name that is not hooked reaches glibc's `dlsym`
//! exactly as if the shim were absent (so `RTLD_NEXT` and `RTLD_DEFAULT` still resolve relative to the real
//! caller). Only hooked names reach [`dlsym_hooked`], which may wrap what the real `dlsym` found.

use crate::abi::dl;
use crate::state;
use std::ffi::{c_char, c_void, CStr};

/// The exported `dlsym` (the only symbol the shim exports): save the argument registers, ask [`route`] (with
/// the caller's return address as a third argument), restore them, jump to its answer (the instructions are in
/// `crate::arch`, one version per architecture).
///
/// # Safety
/// Called by the host exactly like glibc's `dlsym`.
#[cfg(not(test))]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void {
    // SAFETY: the entry saves and restores the argument registers around an ordinary C-ABI call to `route`
    // and leaves the host's return address (stack on x86-64, x30 on aarch64) untouched for the jump.
    crate::dlsym_entry_asm!(route)
}

/// Decides where a `dlsym` call goes: the real `dlsym` (pass-through: no allocation, no lock, no `Once`), or
/// [`dlsym_hooked`] for a hooked name looked up in an explicit handle. Lookups made by a libcuda (a
/// forwarding driver finding the vendor's functions) or by the shim itself always pass through: wrapping
/// them would put a wrapper behind a wrapper and, with a forwarding driver, form a loop.
#[cfg_attr(test, allow(dead_code))] // reached only through the exported `dlsym`
extern "C" fn route(handle: *mut c_void, name: *const c_char, caller: usize) -> usize {
    let real = dl::real_dlsym_addr();
    if real == 0 {
        return dlsym_unavailable as *const () as usize;
    }
    let handle = handle as usize;
    if name.is_null() || handle == dl::RTLD_DEFAULT || handle == dl::RTLD_NEXT {
        return real;
    }
    // SAFETY: the host passes a NUL-terminated name, which glibc's dlsym would read too.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    if is_hooked_name(name) && !dl::is_own(caller) && !dl::addr_in_libcuda(caller) {
        dlsym_hooked as *const () as usize
    } else {
        real
    }
}

/// Answers every lookup with NULL if glibc's `dlsym` could not be found (never seen: it exists under
/// `GLIBC_2.34` or `GLIBC_2.2.5` on every x86-64 glibc); better than jumping to address 0.
#[cfg_attr(test, allow(dead_code))] // reached only through the exported `dlsym`
extern "C" fn dlsym_unavailable(_handle: *mut c_void, _name: *const c_char) -> *mut c_void {
    std::ptr::null_mut()
}

/// Names whose lookup may be wrapped: FlashInfer exports (`__tvm_ffi_<f>`, `<f>` not starting with `_`) and
/// the CUDA driver entry points the shim tracks.
pub fn is_hooked_name(name: &[u8]) -> bool {
    match name {
        [b'_', b'_', b't', b'v', b'm', b'_', b'f', b'f', b'i', b'_', next, ..] => *next != b'_',
        [b'c', b'u', ..] => super::cuda::is_tracked_driver_name(name),
        _ => false,
    }
}

/// Handles a hooked lookup: the real `dlsym` on the caller's explicit handle, then perhaps a wrapper.
#[cfg_attr(test, allow(dead_code))] // reached only through the exported `dlsym`
extern "C" fn dlsym_hooked(handle: *mut c_void, name: *const c_char) -> *mut c_void {
    let found = dl::real_dlsym(handle as usize, {
        // SAFETY: checked non-null in `route`; NUL-terminated.
        unsafe { CStr::from_ptr(name) }
    });
    if found == 0 {
        return std::ptr::null_mut();
    }
    let _errno = crate::os::sys::ErrnoGuard::save();
    // SAFETY: as above.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    state::guarded(|| wrap_found(handle as usize, name, found)).unwrap_or(found) as *mut c_void
}

/// What the host gets for `name` found at `found` in `handle`: a wrapper, or `found` itself.
#[cfg_attr(test, allow(dead_code))] // reached only through the exported `dlsym`
fn wrap_found(handle: usize, name: &[u8], found: usize) -> usize {
    // Before any wrapper is handed out: the system information record's `Statistics:` line comes from the
    // statistics kernel's loader, a layer above the log.
    crate::log::set_statistics_line(crate::gpu::route_line);
    if let Some(export) = name.strip_prefix(b"__tvm_ffi_") {
        // At level 0 only to print pending warnings (the first FlashInfer lookup is when they are due).
        if (state::level() == 0 && !state::has_pending_warnings()) || dl::is_own(found) {
            return found;
        }
        // Only functions get a trampoline: a data object of that name (or one whose symbol table entry
        // cannot be found) comes back unchanged.
        if !crate::abi::got::is_function_at(found) {
            return found;
        }
        if state::level() > 0 {
            // A module looked up for the first time may be new: its GOT slots are rewritten before it is called.
            super::plt::refresh(&super::cuda::GOT_WRAPPERS);
        }
        return super::trampoline::wrap_module_export(handle, export, found);
    }
    if state::level() == 0 || dl::is_own(found) {
        return found;
    }
    // A driver object loaded since the last scan may be new: its GOT slots are rewritten before it is called.
    super::plt::refresh(&super::cuda::GOT_WRAPPERS);
    super::cuda::wrap_driver_lookup(name, found)
}

#[cfg(test)]
mod tests {
    use super::is_hooked_name;

    #[test]
    fn hooked_names() {
        assert!(is_hooked_name(b"__tvm_ffi_rmsnorm"));
        assert!(!is_hooked_name(b"__tvm_ffi__library_bin"));
        assert!(!is_hooked_name(b"__tvm_ffi__metadata_rmsnorm"));
        assert!(!is_hooked_name(b"__tvm_ffi_"));
        assert!(!is_hooked_name(b"malloc"));
        assert!(is_hooked_name(b"cuGetProcAddress_v2"));
        assert!(is_hooked_name(b"cuStreamBeginCapture_v2_ptsz"));
        assert!(!is_hooked_name(b"cuInit"));
    }
}
