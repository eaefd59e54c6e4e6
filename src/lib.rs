//! flashlog: an `LD_PRELOAD` library that logs FlashInfer's compiled calls (the `__tvm_ffi_<name>` entry
//! points of its TVM-FFI modules), CUDA graph captures and kernel launches, in the record format of
//! FlashInfer's own Python API logger. See `README.md` for use and `../shared/design/` for the ABI facts.
//!
//! Module map:
//! - [`abi`]: `#[repr(C)]` mirrors of foreign types and the only raw-pointer readers;
//! - [`intercept`]: the exported symbols (`dlsym`, CUDA driver and runtime entry points) and wrappers;
//! - [`record`]: the text of every record (pure);
//! - [`stats`]: level-5 tensor statistics;
//! - [`dump`]: level-10 dumps of every tensor of a call;
//! - [`config`], [`glob`]: the environment, read once;
//! - [`sink`], [`buffers`], [`clock`]: where and how records are written;
//! - [`capture`]: which CUDA graph captures are running;
//! - [`state`]: process-wide switches;
//! - [`forkgen`]: per-fork-generation slots, so a forked child never waits on a lock its parent held.

pub mod abi;
pub mod buffers;
pub mod capture;
pub mod clock;
pub mod config;
pub mod dump;
pub mod forkgen;
pub mod glob;
pub mod intercept;
pub mod record;
pub mod sink;
pub mod state;
pub mod stats;

/// Resolves the real `dlsym` as soon as the library is loaded, so the first host lookup pays nothing extra.
/// Everything else is initialised lazily: hooks may run before this constructor (a library linked by the
/// executable can call `dlsym` from its own constructor first).
#[cfg(not(test))]
#[ctor::ctor]
unsafe fn on_load() {
    abi::dl::real_dlsym_addr();
}
