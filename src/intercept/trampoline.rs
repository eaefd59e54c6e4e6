//! A block of entry points for wrapped TVM-FFI functions. FlashInfer calls each function with `self == NULL`,
//! so a wrapper cannot learn which function it stands for from its arguments: each wrapped function gets its
//! own entry point. The block is 4096 tiny stubs laid out 16 bytes apart in one assembly block; stub `i`
//! loads `i` and jumps to a common path that calls [`dispatch`] with the slot number prepended to the
//! arguments. Slots are never freed: the loader keeps the pointer for the life of the process.

use super::tvm_call::{self, WrappedFunction};
use crate::abi::dl;
use crate::abi::ffi::{FfiAny, SafeCallFn};
use crate::arch::STUB_BYTES;
use crate::state;
use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Number of entry points.
pub const STUB_COUNT: usize = 4096;
// The stubs and their common path, in the assembly of the target (`crate::arch`).
crate::trampoline_block_asm!(dispatch);

extern "C" {
    static flashlog_trampolines: [u8; STUB_COUNT * STUB_BYTES];
}

static SLOTS: [AtomicPtr<WrappedFunction>; STUB_COUNT] = [const { AtomicPtr::new(null_mut()) }; STUB_COUNT];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
static STUBS_SPENT_REPORTED: AtomicBool = AtomicBool::new(false);

fn stub_address(slot: usize) -> usize {
    let base = std::ptr::addr_of!(flashlog_trampolines) as usize;
    base + slot * STUB_BYTES
}

/// Called (through a stub) instead of a wrapped function. `C-unwind`: a thread cancelled inside the real
/// function unwinds through here to the host (see `tvm_call::call`).
extern "C-unwind" fn dispatch(
    slot: u32,
    this: *mut c_void,
    args: *const FfiAny,
    num_args: i32,
    result: *mut FfiAny,
) -> i32 {
    let entry = SLOTS.get(slot as usize).map_or(null_mut(), |s| s.load(Ordering::Acquire));
    // SAFETY: a stub is handed out only after its slot was published, and slots are never freed.
    match unsafe { entry.as_ref() } {
        // SAFETY: the host's own safe-call arguments, passed on unchanged.
        Some(function) => unsafe { tvm_call::call(function, this, args, num_args, result) },
        None => -2,
    }
}

/// The entry point the host gets for export `export` of the module behind `handle`, whose real address is
/// `real`: a stub when the module is wrapped and logging is on (one per distinct function and name), else
/// `real`. Prints the configuration's warnings at the first lookup in a wrapped module, at any level.
pub fn wrap_module_export(handle: usize, export: &[u8], real: usize) -> usize {
    let mut path = Vec::new();
    if !dl::handle_path(handle, &mut path) {
        return real;
    }
    let path = String::from_utf8_lossy(&path);
    if !state::config().modules.matches(&path) {
        return real;
    }
    // The first FlashInfer lookup of the process is when the configuration's warnings are due.
    state::warn_once();
    if state::level() == 0 {
        return real;
    }
    // A slot stands for one function of one module: after `dlclose`, another module may be loaded at the
    // same address, and its functions must get their own names.
    let name = format!("{}.{}", module_name(&path), String::from_utf8_lossy(export));
    let used = NEXT_SLOT.load(Ordering::Acquire).min(STUB_COUNT);
    for (i, slot) in SLOTS[..used].iter().enumerate() {
        // SAFETY: published slots are never freed.
        if let Some(existing) = unsafe { slot.load(Ordering::Acquire).as_ref() } {
            if existing.real as usize == real && existing.name == name {
                return stub_address(i);
            }
        }
    }
    let slot = NEXT_SLOT.fetch_add(1, Ordering::AcqRel);
    if slot >= STUB_COUNT {
        if !STUBS_SPENT_REPORTED.swap(true, Ordering::Relaxed) {
            let line = format!("flashlog: all {STUB_COUNT} wrapper entry points are in use; {name} and later functions are not logged\n");
            crate::os::signals::write_all(2, line.as_bytes());
        }
        return real;
    }
    // SAFETY: `real` is the address of a function with the TVM-FFI safe-call ABI (it is a `__tvm_ffi_*` export).
    let real_fn: SafeCallFn = unsafe { std::mem::transmute::<usize, SafeCallFn>(real) };
    let detailed_allowed = state::config().dump_allows(&name);
    let name: &'static str = Box::leak(name.into_boxed_str());
    let function = Box::leak(Box::new(WrappedFunction::new(real_fn, name, path_static(&path), detailed_allowed)));
    SLOTS[slot].store(function, Ordering::Release);
    stub_address(slot)
}

/// The module's path, kept for the life of the process (level-10 dumps name it for replay).
fn path_static(path: &str) -> &'static str {
    Box::leak(path.to_string().into_boxed_str())
}

/// A module's name: its file name without directory and last extension (Python's `Path(path).stem`).
pub fn module_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    match file.rfind('.') {
        Some(dot) if dot > 0 => &file[..dot],
        _ => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        assert_eq!(module_name("/c/flashinfer/90a/cached_ops/norm/norm.so"), "norm");
        assert_eq!(module_name("batch_decode_head_dim_128.so"), "batch_decode_head_dim_128");
        assert_eq!(module_name("/x/.hidden"), ".hidden");
        assert_eq!(module_name("/x/libfoo.so.1"), "libfoo.so");
    }

    #[test]
    fn stubs_are_16_bytes_apart() {
        assert_eq!(stub_address(1) - stub_address(0), 16);
        // Stub 1 loads slot number 1.
        let prefix = crate::arch::STUB1_PREFIX;
        // SAFETY: reading our own code bytes.
        let bytes = unsafe { std::slice::from_raw_parts(stub_address(1) as *const u8, prefix.len()) };
        assert_eq!(bytes, prefix);
    }
}
