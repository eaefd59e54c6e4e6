//! flashlog: an `LD_PRELOAD` library that logs FlashInfer's compiled calls (the `__tvm_ffi_<name>` entry
//! points of its TVM-FFI modules), CUDA graph captures and kernel launches, in the record format of
//! FlashInfer's own Python API logger. See `README.md` for use and `docs/log-format.md` for the records.
//!
//! Module map, in layers: each module uses only modules of the layers below its own, never one above
//! (`docs/architecture.md` explains the rule and how a call flows through them).
//! 1. [`intercept`]: how calls arrive: the one exported symbol (`dlsym`), the trampolines and the frame of a
//!    TVM-FFI call, the driver wrappers generated from one table, and the GOT rewrite of the PLT route;
//! 2. [`calls`]: what a call logs, per level: the records and dumps before and after a TVM-FFI call (one
//!    pending state between them), the argument array they read, kernel launch records, what the driver's
//!    graph calls (capture, instantiation, replay) record;
//! 3. [`sync`]: `FLASHLOG_SYNC`, the call (or graph replay) behind a CUDA error: a call's stream synchronised
//!    around it, the FlashInfer calls each graph holds, the progress markers;
//! 4. [`graph`]: statistics at CUDA graph replay and the NaN watch, with the driver callbacks they need (and
//!    the statistics kernel's nodes in a capture); [`dump`]: level 10, every tensor of a call saved for
//!    `flashlog replay`;
//! 5. [`gpu`]: the library's own statistics kernel: loading it through the host's driver, planning and
//!    launching it for a phase's device tensors, folding its partials;
//! 6. [`stats`]: level-5 tensor statistics (the numbers, the byte sources, the walk, driver errors by name);
//! 7. [`log`]: a record out: this process's system information first, then the record, through the sink;
//!    [`exit_line`]: the line a process that logged writes when it ends normally (through the sink);
//! 8. [`record`]: the text of every record (pure);
//! 9. [`sink`]: where records go and how they are written (transport only);
//! 10. [`state`]: process-wide switches, the panic guard, the hooks run in a new process;
//!     [`config`], [`glob`]: the environment, read once, with every default;
//!     [`capture`]: which CUDA graph captures are running; [`correlation`]: call numbers and threads;
//!     [`clock`]: record time stamps; [`buffers`]: the reusable record buffers;
//! 11. [`ring`]: the flight recorder, the sink's other transport (records in a memory-mapped ring file); below
//!     the configuration, which reads the ring's size with the ring format's parser (shared with the launcher);
//! 12. [`abi`]: foreign layouts and functions only (TVM-FFI, DLPack, CUDA and its statistics kernel's and
//!     error functions, ELF, the dynamic loader's lists);
//! 13. [`os`]: the library's own OS services (system calls and signal guards, files, process and fork state,
//!     fault-tolerant reads, pipes, pools, the pinned arena, owned and leaked slots, the ring's mapping);
//!     [`arch`]: the assembly of each processor.
//!
//! The modules are private: the library exports `dlsym` and nothing else. `make lint` also checks with the
//! modules public (`--cfg flashlog_check_docs`) so that `missing_docs` sees every `pub` item.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(flashlog_check_docs, deny(missing_docs))]

/// Declares the modules: private, or public under `--cfg flashlog_check_docs` (only for the docs check).
macro_rules! modules {
    ($($name:ident),* $(,)?) => {
        $(
            #[cfg(not(flashlog_check_docs))]
            mod $name;
            #[cfg(flashlog_check_docs)]
            pub mod $name;
        )*
    };
}

modules!(
    intercept,
    calls,
    sync,
    graph,
    dump,
    gpu,
    stats,
    log,
    exit_line,
    record,
    sink,
    state,
    config,
    glob,
    capture,
    correlation,
    clock,
    buffers,
    ring,
    abi,
    os,
);

// Not through `modules!`: its `macro_export` assembly macros are used by path, which a module declared by a
// macro does not allow.
#[cfg(not(flashlog_check_docs))]
mod arch;
#[cfg(flashlog_check_docs)]
pub mod arch;

/// Resolves the real `dlsym` as soon as the library is loaded, so the first host lookup pays nothing extra,
/// and, when logging is on, rewrites the GOT slots of the objects already loaded that call the driver (the
/// PLT route, `intercept::plt`), and registers the exit line's handler. Everything else is initialised
/// lazily: hooks may run before this constructor (a library linked by the executable can call `dlsym` from
/// its own constructor first).
#[cfg(not(test))]
#[ctor::ctor]
unsafe fn on_load() {
    abi::dl::real_dlsym_addr();
    abi::dl::own_range();
    log::set_statistics_line(gpu::route_line);
    // Registered here, outside any host call or signal handler; it writes only in a process that logged.
    graph::callbacks::at_exit(exit_line::at_exit);
    intercept::plt::at_startup(&intercept::cuda::GOT_WRAPPERS);
}
