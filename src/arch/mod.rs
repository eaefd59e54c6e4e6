//! Everything that depends on the processor, one file per architecture: the naked `dlsym` entry that
//! tail-jumps with the caller's registers and return address untouched, the trampoline block of wrapped
//! TVM-FFI functions, and the glibc symbol versions of `dlsym`. The rest of the crate sees the same names on
//! every architecture.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
pub use aarch64::*;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("flashlog supports x86-64 and aarch64 Linux only: the dlsym entry and trampolines are assembly");

/// Bytes between two trampoline stubs (the same on every architecture).
pub const STUB_BYTES: usize = 16;
