//! Kernel-launch records. Every launch reaches the shim through the driver wrappers in `cuda.rs`: programs
//! and modules calling the driver (through a rewritten GOT slot, `dlsym` or `cuGetProcAddress`), and the
//! runtime's launches too, since libcudart obtains its driver functions through `cuGetProcAddress*`. So
//! each launch is seen exactly once, at the driver, and the runtime's own entry points are not wrapped.
//! Kernels are named by function handle in a bounded table (see [`kernel_name`]) and only those matching
//! `FLASHLOG_KERNELS` are logged. Logging never synchronises, so launches inside a capture are logged as
//! usual.

use crate::abi::cuda_driver::{self, NameKey};
use crate::os::owned_slot::OwnedSlot;
use crate::os::sys::ErrnoGuard;
use crate::record::launch::{push_launch_record, Launch};
use crate::{buffers, clock, config::LEVEL_DETAILED, log, state};

/// A kernel's display name, whether it is logged, and what it was resolved from.
struct KernelName {
    /// The `CUfunction` handle.
    kernel: usize,
    /// The driver's name string when resolved (address, length, hash of its bytes), None without `cuFuncGetName`.
    key: Option<(usize, usize, u64)>,
    name: String,
    logged: bool,
}

/// Table size: one entry per slot, so at most this many names are kept whatever the number of kernels.
const SLOTS: usize = 4096;
static TABLE: [OwnedSlot<KernelName>; SLOTS] = [const { OwnedSlot::new() }; SLOTS];

/// Logs a launch of the driver function `kernel` (a `CUfunction`) when the level and `FLASHLOG_KERNELS`
/// say so. `launch` is only evaluated then.
pub fn log_launch(kernel: usize, launch: impl FnOnce() -> Launch) {
    let level = state::level();
    // The NaN watch keeps the log to the records that hold a NaN or an infinity: no launch records.
    if level == 0 || state::config().kernels.is_empty() || crate::graph::watch::enabled() {
        return;
    }
    let _errno = ErrnoGuard::save();
    state::guarded(|| {
        if kernel == 0 {
            return;
        }
        let name = kernel_name(kernel);
        if name.logged {
            let mut out = buffers::take();
            let stamp = clock::now();
            push_launch_record(&mut out, &stamp, &name.name, &launch(), level >= LEVEL_DETAILED);
            // Made inside a FlashInfer call on this thread: the call's correlation form names it.
            if let Some(call) = crate::sync::current_call() {
                crate::sync::name_call_in_launch(&mut out, &call, &stamp);
            }
            log::write_record(&out);
        }
        TABLE[slot_of(kernel)].put(name);
    });
}

/// The table slot of a handle (direct-mapped: a handle has one slot, and a kernel that maps to an occupied
/// slot replaces its entry).
fn slot_of(kernel: usize) -> usize {
    ((kernel >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % SLOTS
}

/// The name of `kernel` as the driver names it now, taken out of its table slot (the caller puts it back).
/// The driver is asked for the name's key on every launch (`cuFuncGetName`: no allocation, no copy): an entry
/// is reused only when handle and key match, so a handle that the driver reused after a module unload gets
/// its new kernel's name. A miss (first sight, a reused handle, another kernel in the slot, or the entry on
/// loan to another thread) resolves the name again. Memory: at most [`SLOTS`] entries, plus one per thread
/// launching at that moment; launch cost: one slot, whatever the number of kernels.
///
/// When the context is in a sticky execution error the driver answers that error to every call, the name
/// included; a handle then still names the kernel it named before (nothing can be unloaded in that state), so
/// the kept entry is used: the launches after an illegal address are named, not `<unnamed kernel>`.
fn kernel_name(kernel: usize) -> Box<KernelName> {
    let answer = cuda_driver::driver().map_or(NameKey::Gone, |d| d.function_name_key(kernel));
    let key = match answer {
        NameKey::Known(key) => Some(key),
        NameKey::Unanswered | NameKey::Gone => None,
    };
    match TABLE[slot_of(kernel)].take() {
        Some(entry) if entry.kernel == kernel && (entry.key == key || answer == NameKey::Unanswered) => entry,
        _ => Box::new(resolve(kernel, key)),
    }
}

fn resolve(kernel: usize, key: Option<(usize, usize, u64)>) -> KernelName {
    let mangled = cuda_driver::driver().and_then(|d| d.function_name(kernel));
    let name = match mangled {
        Some(m) => demangle(&m),
        None => format!("<unnamed kernel {kernel:#x}>"),
    };
    let logged = state::config().kernels.matches(&name);
    KernelName { kernel, key, name, logged }
}

/// Demangles an Itanium C++ ABI name; other names are returned unchanged.
pub fn demangle(mangled: &str) -> String {
    cpp_demangle::Symbol::new(mangled)
        .ok()
        .and_then(|s| s.demangle(&cpp_demangle::DemangleOptions::default()).ok())
        .unwrap_or_else(|| mangled.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_flashinfer_names() {
        assert_eq!(
            demangle("_ZN10flashinfer33BatchDecodeWithPagedKVCacheKernelILb0ELi128EEEvPfS1_i"),
            "void flashinfer::BatchDecodeWithPagedKVCacheKernel<false, 128>(float*, float*, int)"
        );
        assert_eq!(demangle("plain_c_kernel"), "plain_c_kernel");
    }
}
