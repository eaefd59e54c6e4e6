//! flashlog: an `LD_PRELOAD` library that logs FlashInfer's compiled calls (the `__tvm_ffi_<name>` entry
//! points of its TVM-FFI modules), CUDA graph captures and kernel launches, in the record format of
//! FlashInfer's own Python API logger. See `README.md` for use and `docs/log-format.md` for the records.
//!
//! Module map:
//! - [`abi`]: `#[repr(C)]` mirrors of foreign types and the only raw-pointer readers;
//! - [`arch`]: the assembly of each processor (the `dlsym` entry, the trampoline pool, relocation types);
//! - [`intercept`]: the one exported symbol (`dlsym`), the wrappers, and the GOT rewrite of the PLT route;
//! - [`record`]: the text of every record (pure);
//! - [`stats`]: level-5 tensor statistics;
//! - [`dump`]: level-10 dumps of every tensor of a call;
//! - [`config`], [`glob`]: the environment, read once;
//! - [`sink`], [`buffers`], [`clock`]: where and how records are written;
//! - [`ring`]: the flight recorder, records in a memory-mapped ring file;
//! - [`correlation`]: call numbers and threads, for records that interleave;
//! - [`capture`]: which CUDA graph captures are running;
//! - [`graph`]: statistics at CUDA graph replay and the NaN watch;
//! - [`dump`]: level 10, every tensor of a call saved for `flashlog replay`;
//! - [`exit_line`]: the line a process that logged writes when it ends normally;
//! - [`forkgen`]: per-process slots, so a forked child never waits on a lock its parent held;
//! - [`state`]: process-wide switches;
//! - [`sync`]: `FLASHLOG_SYNC`, the call (or graph replay) behind a CUDA error.

pub mod abi;
pub mod arch;
pub mod buffers;
pub mod capture;
pub mod clock;
pub mod config;
pub mod correlation;
pub mod dump;
pub mod exit_line;
pub mod forkgen;
pub mod glob;
pub mod gpu;
pub mod graph;
pub mod intercept;
pub mod record;
pub mod ring;
pub mod sink;
pub mod state;
pub mod stats;
pub mod sync;

/// Resolves the real `dlsym` as soon as the library is loaded, so the first host lookup pays nothing extra,
/// and, when logging is on, rewrites the GOT slots of the objects already loaded that call the driver (the
/// PLT route, `intercept::plt`), and registers the exit line's handler. Everything else is initialised lazily: hooks may run before this
/// constructor (a library linked by the executable can call `dlsym` from its own constructor first).
#[cfg(not(test))]
#[ctor::ctor]
unsafe fn on_load() {
    abi::dl::real_dlsym_addr();
    abi::dl::own_range();
    // Registered here, outside any host call or signal handler; it writes only in a process that logged.
    intercept::host_fn::at_exit(exit_line::at_exit);
    intercept::plt::at_startup();
}
