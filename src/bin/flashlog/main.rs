//! `flashlog`: the launcher of libflashlog.so and the summary of its logs.
//!
//! - `flashlog [-l LEVEL] [-o DEST] [--modules GLOBS] [--kernels GLOBS] [--with-python-logger] [--] COMMAND
//!   [ARGS...]` runs COMMAND with the library preloaded and the shim's variables set (see [`launcher`]);
//! - `flashlog summary LOG...` reads logs and prints a table per call name (see [`summary`]);
//! - `flashlog show RING...` prints the records of flight-recorder rings (see [`show`]);
//! - `flashlog replay DIR` runs calls dumped at level 10 again (see [`replay`]).

mod launcher;
mod locate;
mod preload;
mod replay;
mod ringread;
mod show;
mod summary;
mod summary_input;

/// The ring file layout, shared with the library's writer (which uses the parts the reader does not).
#[allow(dead_code)]
#[path = "../../ring/format.rs"]
mod ring_format;

use std::process::ExitCode;

/// `flashlog --help`.
pub const HELP: &str = "\
flashlog: log FlashInfer calls, CUDA graph captures and kernel launches of any program

Usage:
  flashlog [OPTIONS] [--] COMMAND [ARGS...]
  flashlog summary LOG...
  flashlog show RING...
  flashlog replay DIR [--device DEV] [--filter GLOB] [--rtol R] [--atol A] [--library-root DIR]
  flashlog --help | --version

Runs COMMAND with libflashlog.so first in LD_PRELOAD (after the sanitizer runtimes it held, which must come first;
the rest of what it held is kept after it) and execs it, so its exit code and signals are its own. The library is found in $FLASHLOG_LIB, beside this executable, in
../lib beside it, or in the flashlog Python package that `pip install` put beside it.

Options (each also as --name=VALUE, and -lN, -oFILE for the short ones):
  -l, --level LEVEL     0 off, 1 names, 3 inputs and outputs, 5 statistics, 10 dumps (FLASHLOG_LEVEL; default:
                        FLASHLOG_LEVEL, else FLASHINFER_LOGLEVEL, else 1)
  -o, --output DEST     stdout, stderr or a file, appended to; %i becomes the process id, one file per process
                        (FLASHLOG_DEST; default: FLASHINFER_LOGDEST, else stdout)
  --modules GLOBS       which TVM-FFI modules to wrap, globs on the path (FLASHLOG_MODULES; default *flashinfer*)
  --kernels GLOBS       which kernel launches to log, globs on demangled names (FLASHLOG_KERNELS; default
                        *flashinfer*; empty: none)
  --ring MB             the flight recorder: the file destination becomes a ring of the last MB MiB of records,
                        in a memory-mapped file, no system call per record (FLASHLOG_RING_MB; read it with
                        flashlog show)
  --with-python-logger  keep FlashInfer's own Python logger on too: FLASHINFER_LOGLEVEL is kept (set to the shim's
                        level when unset) and -o sends its records to the same destination (FLASHINFER_LOGDEST).
                        Without it, FLASHINFER_LOGLEVEL is removed from the command's environment, so only the
                        shim logs (at that level when no other names one).
  -h, --help            this text
  -V, --version         the version

flashlog summary LOG... reads logs of the shim and of FlashInfer's Python logger (both in one file too), one pass
each, and prints per call name the number of calls and, at level 5, the first record where a NaN or Inf appeared
in an input and in an output; then the first such record overall, the calls that did not return (the process
ended inside them), the calls that raised a Python exception, one line per file (rank, runs, records) and the
lines it could not parse. Records of interleaved threads are paired by their correlation lines, never across
threads.

Examples:
  flashlog -l 3 -o 'logs/rank_%i.log' -- torchrun --nproc_per_node=8 train.py
  flashlog --level=5 -- python my_script.py
  flashlog summary logs/rank_*.log
  flashlog -l 3 --ring 64 -o 'logs/rank_%r.ring' -- python serve.py; flashlog show logs/rank_0.ring

Exit status: the command's own; 127 if it cannot be found, 126 if it cannot be run, 2 for bad options, 1 when
libflashlog.so cannot be found. flashlog summary: 0 nothing found, 1 a NaN/Inf or a call that did not return,
2 unusable input (a file that cannot be read or holds no record).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {
            eprintln!("flashlog: no command given\n{}", usage_line());
            ExitCode::from(2)
        }
        Some("summary") => summary::main(&args[1..]),
        Some("show") => show::main(&args[1..]),
        // Level-10 dumps run again (python/flashlog/replay.py).
        Some("replay") => replay::main(&args[1..]),
        Some(_) => launcher::main(&args),
    }
}

/// `flashlog --version`: the version of `Cargo.toml`.
pub fn version_line() -> String {
    format!("flashlog {}", env!("CARGO_PKG_VERSION"))
}

/// The one-line usage printed with option errors.
pub fn usage_line() -> &'static str {
    "usage: flashlog [-l LEVEL] [-o DEST] [--modules GLOBS] [--kernels GLOBS] [--ring MB] [--with-python-logger] [--] COMMAND [ARGS...] | flashlog summary LOG... | flashlog show RING..."
}
