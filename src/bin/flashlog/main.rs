//! `flashlog`: the launcher of libflashlog.so and the summary of its logs.
//!
//! - `flashlog [-l LEVEL] [-o DEST] [--modules GLOBS] [--kernels GLOBS] [--] COMMAND [ARGS...]` runs COMMAND
//!   with the library preloaded and the shim's variables set (see [`launcher`]);
//! - `flashlog summary LOG...` reads logs and prints a table per call name (see [`summary`]);
//! - `flashlog replay DIR` runs calls dumped at level 10 again (see [`replay`]).

mod launcher;
mod replay;
mod summary;

use std::process::ExitCode;

const HELP: &str = "\
flashlog: log FlashInfer calls, CUDA graph captures and kernel launches of any program

Usage:
  flashlog [-l LEVEL] [-o DEST] [--modules GLOBS] [--kernels GLOBS] [--] COMMAND [ARGS...]
  flashlog summary LOG...
  flashlog replay DIR [--device DEV] [--filter GLOB] [--rtol R] [--atol A]
  flashlog --help | --version

Runs COMMAND with libflashlog.so first in LD_PRELOAD (what LD_PRELOAD held is kept after it) and execs it, so
its exit code and signals are its own. The library is found in $FLASHLOG_LIB, beside this executable, or in
../lib beside it.

Options (each sets a FLASHLOG_* variable, read by the shim only, so FlashInfer's own Python logger stays off):
  -l, --level LEVEL    0 off, 1 names, 3 inputs and outputs, 5 statistics, 10 dumps (FLASHLOG_LEVEL; default 1, unless
                       FLASHLOG_LEVEL or FLASHINFER_LOGLEVEL is already set)
  -o, --output DEST    stdout, stderr or a file; %i becomes the process id, one file per process (FLASHLOG_DEST)
  --modules GLOBS      which TVM-FFI modules to wrap, globs on the path (FLASHLOG_MODULES; default *flashinfer*)
  --kernels GLOBS      which kernel launches to log, globs on demangled names (FLASHLOG_KERNELS; default *flashinfer*)

flashlog summary LOG... reads logs of any level (one per rank, say) in one pass each and prints, per call name,
the number of calls and, at level 5, the first record where a NaN or Inf appeared in an input and in an output,
then the first such record overall, the calls that did not return (cut short by a crash) and the lines it could
not parse. When threads interleave records, an outputs record is paired with the most recent unfinished call.

Examples:
  flashlog -l 3 -o 'logs/rank_%i.log' -- torchrun --nproc_per_node=8 train.py
  flashlog -l 5 -- python my_script.py
  flashlog summary logs/rank_*.log

Exit status: the command's own; 127 if it cannot be found, 126 if it cannot be run, 2 for bad options, 1 when
libflashlog.so cannot be found.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {
            eprintln!("flashlog: no command given\n{}", usage_line());
            ExitCode::from(2)
        }
        Some("-h" | "--help") => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("flashlog {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("summary") => summary::main(&args[1..]),
        // Level-10 dumps run again (python/flashlog/replay.py).
        Some("replay") => replay::main(&args[1..]),
        Some(_) => launcher::main(&args),
    }
}

/// The one-line usage printed with option errors.
pub fn usage_line() -> &'static str {
    "usage: flashlog [-l LEVEL] [-o DEST] [--modules GLOBS] [--kernels GLOBS] [--] COMMAND [ARGS...] | flashlog summary LOG..."
}
