//! The TVM-FFI runtime functions the shim calls: reading the raised error without consuming it, naming a
//! type index, and the current stream. FlashInfer modules are not linked to `libtvm_ffi`; like them, the
//! shim finds these functions in the global scope (`RTLD_DEFAULT`), where the host (Python, or a C++
//! program) put the runtime.

use super::dl::{real_dlsym, RTLD_DEFAULT};
use super::ffi::{read_object_header, read_object_payload, type_index, ByteArray, ErrorCell, TypeInfoHead};
use crate::os::mem::{read_bytes, read_pod};
use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A lazily resolved global function address (0 = not found yet; looked up again next time).
struct GlobalFn {
    name: &'static CStr,
    addr: AtomicUsize,
}

impl GlobalFn {
    const fn new(name: &'static CStr) -> Self {
        GlobalFn { name, addr: AtomicUsize::new(0) }
    }
    fn get(&self) -> Option<usize> {
        let a = self.addr.load(Ordering::Relaxed);
        if a != 0 {
            return Some(a);
        }
        let a = real_dlsym(RTLD_DEFAULT, self.name);
        self.addr.store(a, Ordering::Relaxed);
        (a != 0).then_some(a)
    }
}

static MOVE_FROM_RAISED: GlobalFn = GlobalFn::new(c"TVMFFIErrorMoveFromRaised");
static SET_RAISED: GlobalFn = GlobalFn::new(c"TVMFFIErrorSetRaised");
static OBJECT_DEC_REF: GlobalFn = GlobalFn::new(c"TVMFFIObjectDecRef");
static GET_TYPE_INFO: GlobalFn = GlobalFn::new(c"TVMFFIGetTypeInfo");
static ENV_GET_STREAM: GlobalFn = GlobalFn::new(c"TVMFFIEnvGetStream");

/// Largest error kind or message copied into a record.
const MAX_ERROR_TEXT: usize = 4096;

/// Copies the kind and message of the error raised on this thread into `kind` and `message`, leaving the
/// error raised exactly as before: move it out, read it, set it raised again (which adds a reference),
/// then drop our reference. Returns false (touching nothing) when no error is raised or the runtime is absent.
pub fn peek_raised_error(kind: &mut Vec<u8>, message: &mut Vec<u8>) -> bool {
    let (Some(take), Some(set), Some(dec)) = (MOVE_FROM_RAISED.get(), SET_RAISED.get(), OBJECT_DEC_REF.get()) else {
        return false;
    };
    let mut err: *mut c_void = std::ptr::null_mut();
    // SAFETY: the three functions have the documented signatures of c_api.h; `err` is a valid out-parameter.
    unsafe {
        let take: unsafe extern "C" fn(*mut *mut c_void) = std::mem::transmute(take);
        take(&mut err);
    }
    if err.is_null() {
        return false;
    }
    let obj = err as usize;
    let ok = matches!(read_object_header(obj), Ok(h) if h.type_index == type_index::ERROR)
        && match read_object_payload::<ErrorCell>(obj) {
            Ok(cell) => copy_text(cell.kind, kind) && copy_text(cell.message, message),
            Err(_) => false,
        };
    // SAFETY: as above; SetRaised adds its own reference, so we then release the one MoveFromRaised gave us.
    unsafe {
        let set: unsafe extern "C" fn(*mut c_void) = std::mem::transmute(set);
        let dec: unsafe extern "C" fn(*mut c_void) -> i32 = std::mem::transmute(dec);
        set(err);
        dec(err);
    }
    ok
}

fn copy_text(bytes: ByteArray, out: &mut Vec<u8>) -> bool {
    out.clear();
    out.resize(bytes.size.min(MAX_ERROR_TEXT), 0);
    read_bytes(bytes.data, out).is_ok()
}

/// Appends the type key of a registered type index (e.g. `ffi.Function`); false when the runtime is absent
/// or does not know the index.
pub fn type_key(index: i32, out: &mut Vec<u8>) -> bool {
    let Some(f) = GET_TYPE_INFO.get() else {
        return false;
    };
    // SAFETY: `TVMFFIGetTypeInfo(int32_t) -> const TVMFFITypeInfo*` per c_api.h.
    let info = unsafe {
        let f: unsafe extern "C" fn(i32) -> usize = std::mem::transmute(f);
        f(index)
    };
    let Ok(head) = read_pod::<TypeInfoHead>(info) else {
        return false;
    };
    if head.type_key.size == 0 || head.type_key.size > 256 {
        return false;
    }
    let start = out.len();
    out.resize(start + head.type_key.size, 0);
    if read_bytes(head.type_key.data, &mut out[start..]).is_err() {
        out.truncate(start);
        return false;
    }
    true
}

/// The stream TVM-FFI code runs on for a device (`TVMFFIEnvGetStream`), when the runtime is present.
pub fn env_stream(device_type: i32, device_id: i32) -> Option<usize> {
    let f = ENV_GET_STREAM.get()?;
    // SAFETY: `TVMFFIEnvGetStream(int32_t, int32_t) -> void*` per c_env_api.h; a pure thread-local read.
    Some(unsafe {
        let f: unsafe extern "C" fn(i32, i32) -> usize = std::mem::transmute(f);
        f(device_type, device_id)
    })
}
