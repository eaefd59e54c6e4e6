//! The dynamic loader, seen from a preloaded library: the real `dlsym`, and which loaded object a handle or
//! an address belongs to. The shim never calls plain `dlsym` itself: inside a preloaded library that is the shim's own `dlsym`, and `RTLD_NEXT` / `RTLD_DEFAULT` resolve relative to the caller (see `intercept::dlsym`).

use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Signature of `dlsym`.
pub type DlsymFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;

/// `RTLD_DEFAULT`.
pub const RTLD_DEFAULT: usize = 0;
/// `RTLD_NEXT` (`(void*)-1`).
pub const RTLD_NEXT: usize = usize::MAX;

static REAL_DLSYM: AtomicUsize = AtomicUsize::new(0);

/// The address of the next `dlsym` after the shim in the preload order: another interposer's when one is
/// preloaded after the shim, else glibc's. Found without calling `dlsym` through the PLT (which is ours):
/// `dlvsym` gives glibc's, and glibc's asked for `RTLD_NEXT` from here gives the next definition of any
/// version (`dlvsym` alone would skip an interposer's unversioned `dlsym`). Lock-free and allocation-free:
/// it may run before the shim's constructor, from another library's constructor.
pub fn real_dlsym_addr() -> usize {
    let cached = REAL_DLSYM.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let mut glibc = 0usize;
    for version in crate::arch::DLSYM_VERSIONS {
        // SAFETY: dlvsym with constant NUL-terminated strings; RTLD_NEXT from here means "after the shim".
        let p = unsafe { libc::dlvsym(libc::RTLD_NEXT, c"dlsym".as_ptr(), version.as_ptr()) };
        if !p.is_null() {
            glibc = p as usize;
            break;
        }
    }
    let mut found = glibc;
    if glibc != 0 {
        // SAFETY: glibc's dlsym, called from this function: RTLD_NEXT is resolved relative to the shim.
        let next = unsafe {
            let f = std::mem::transmute::<usize, DlsymFn>(glibc);
            f(libc::RTLD_NEXT, c"dlsym".as_ptr()) as usize
        };
        if next != 0 && !is_own(next) {
            found = next;
        }
    }
    REAL_DLSYM.store(found, Ordering::Relaxed);
    found
}

/// Looks `name` up in `handle` with the real `dlsym`. Only for explicit handles (or `RTLD_DEFAULT`, where
/// the caller does not matter): `RTLD_NEXT` from here would mean "after the shim".
pub fn real_dlsym(handle: usize, name: &CStr) -> usize {
    let f = real_dlsym_addr();
    if f == 0 {
        return 0;
    }
    // SAFETY: `f` is glibc's dlsym; `name` is NUL-terminated.
    let real: DlsymFn = unsafe { std::mem::transmute::<usize, DlsymFn>(f) };
    // SAFETY: as above.
    unsafe { real(handle as *mut c_void, name.as_ptr()) as usize }
}

/// The file path of the object behind a `dlopen` handle (`dlinfo(RTLD_DI_LINKMAP)`), copied into `out`.
pub fn handle_path(handle: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut map: *mut libc::c_void = std::ptr::null_mut();
    // SAFETY: dlinfo writes a `struct link_map*` into `map` for a valid handle; it fails (-1) otherwise.
    let rc =
        unsafe { libc::dlinfo(handle as *mut c_void, libc::RTLD_DI_LINKMAP, (&mut map as *mut *mut c_void).cast()) };
    if rc != 0 || map.is_null() {
        return false;
    }
    // SAFETY: glibc's `struct link_map` starts with `l_addr` followed by `char* l_name`.
    let name = unsafe { *(map as *const *const c_char).add(1) };
    if name.is_null() {
        return false;
    }
    // SAFETY: l_name is a NUL-terminated string owned by the loader, valid while the object is loaded.
    out.extend_from_slice(unsafe { CStr::from_ptr(name) }.to_bytes());
    true
}

/// A handle to an already-loaded object whose file name starts with `prefix` (e.g. `libcuda.so`), taken
/// with `RTLD_NOLOAD` so nothing new is ever loaded. The object may be in any namespace scope (a dependency
/// of an `RTLD_LOCAL` module is invisible to `RTLD_DEFAULT`, but not to this). The reference is kept.
pub fn loaded_object(prefix: &str) -> Option<usize> {
    let path = loaded_object_path(prefix)?;
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: RTLD_NOLOAD only returns a handle for an object that is already loaded.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
    (!h.is_null()).then_some(h as usize)
}

/// The path of the first loaded object whose file name starts with `prefix`.
pub fn loaded_object_path(prefix: &str) -> Option<String> {
    struct Search<'a> {
        prefix: &'a str,
        found: Option<String>,
    }
    extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> i32 {
        // SAFETY: `data` is the `Search` passed below; `info` is valid during the callback.
        let search = unsafe { &mut *(data as *mut Search) };
        // SAFETY: as above.
        let name = unsafe { (*info).dlpi_name };
        if name.is_null() {
            return 0;
        }
        // SAFETY: as above.
        let path = unsafe { CStr::from_ptr(name) }.to_string_lossy();
        let file = path.rsplit('/').next().unwrap_or("");
        if file.starts_with(search.prefix) {
            search.found = Some(path.into_owned());
            return 1;
        }
        0
    }
    let mut search = Search { prefix, found: None };
    // SAFETY: the callback only reads loader-owned strings and writes into `search`.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut search as *mut Search).cast()) };
    search.found
}

/// Whether the object containing `addr` has a file name starting with `prefix` (`dladdr`, no allocation).
pub fn addr_in_object_named(addr: usize, prefix: &[u8]) -> bool {
    // SAFETY: `Dl_info` is plain data; all zeroes is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr fills `info` for an address inside a loaded object and returns 0 otherwise.
    if addr == 0 || unsafe { libc::dladdr(addr as *const c_void, &mut info) } == 0 || info.dli_fname.is_null() {
        return false;
    }
    // SAFETY: the loader's NUL-terminated path of the object.
    let path = unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes();
    path.rsplit(|&b| b == b'/').next().unwrap_or(&[]).starts_with(prefix)
}

/// Whether `addr` lies in a libcuda (an object whose file name starts with `libcuda.so`: the driver, a
/// forwarding driver, or the vendor driver behind it).
pub fn addr_in_libcuda(addr: usize) -> bool {
    addr_in_object_named(addr, b"libcuda.so")
}

/// Start and end of the shim's own mapped segments (0, 0 until first asked).
static OWN_RANGE: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// The address range `[start, end)` spanned by the shim's own `PT_LOAD` segments, found once by walking the
/// loaded objects for the one that contains this very function.
pub fn own_range() -> (usize, usize) {
    let start = OWN_RANGE[0].load(Ordering::Acquire);
    if start != 0 {
        return (start, OWN_RANGE[1].load(Ordering::Acquire));
    }
    extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> i32 {
        // SAFETY: `info` and its program headers are valid during the callback; `data` is the range below.
        let (info, range) = unsafe { (&*info, &mut *(data as *mut (usize, usize))) };
        let me = own_range as *const () as usize;
        // SAFETY: the loader's program headers of this object, `dlpi_phnum` of them.
        let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        let (mut lo, mut hi) = (usize::MAX, 0usize);
        for ph in headers.iter().filter(|ph| ph.p_type == libc::PT_LOAD) {
            let s = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
            lo = lo.min(s);
            hi = hi.max(s.wrapping_add(ph.p_memsz as usize));
        }
        if me >= lo && me < hi {
            *range = (lo, hi);
            return 1;
        }
        0
    }
    let mut range = (0usize, 0usize);
    // SAFETY: the callback reads program headers and writes into `range`.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut range as *mut (usize, usize)).cast()) };
    if range.0 != 0 {
        OWN_RANGE[1].store(range.1, Ordering::Release);
        OWN_RANGE[0].store(range.0, Ordering::Release);
    }
    range
}

/// Whether `addr` lies inside the shim itself (one of its entry points, wrappers or trampolines): such an
/// address is never recorded as a "real" function, whatever route brought it.
pub fn is_own(addr: usize) -> bool {
    let (start, end) = own_range();
    addr >= start && addr < end
}

/// A reference to the already-loaded object named `name` as `dl_iterate_phdr` lists it (the main program
/// for an empty name), taken with `RTLD_NOLOAD`, and only if its load bias is `base` (so an object unloaded
/// and replaced meanwhile is not mistaken for it). Release it with [`release`].
pub fn hold_loaded(name: &[u8], base: usize) -> Option<usize> {
    let c = (!name.is_empty()).then(|| std::ffi::CString::new(name).ok()).flatten();
    if !name.is_empty() && c.is_none() {
        return None;
    }
    let ptr = c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: RTLD_NOLOAD never loads anything; NULL names the main program.
    let h = unsafe { libc::dlopen(ptr, libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
    if h.is_null() {
        return None;
    }
    let mut map: *mut c_void = std::ptr::null_mut();
    // SAFETY: dlinfo writes the handle's `struct link_map*`, whose first field is `l_addr`.
    let rc = unsafe { libc::dlinfo(h, libc::RTLD_DI_LINKMAP, (&mut map as *mut *mut c_void).cast()) };
    // SAFETY: a valid link map (checked non-null) starts with `ElfW(Addr) l_addr`.
    if rc == 0 && !map.is_null() && unsafe { *(map as *const usize) } == base {
        return Some(h as usize);
    }
    release(h as usize);
    None
}

/// Drops a reference taken by [`hold_loaded`].
pub fn release(handle: usize) {
    // SAFETY: a handle from dlopen, closed once.
    unsafe { libc::dlclose(handle as *mut c_void) };
}
