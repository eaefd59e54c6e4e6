//! `flashlog`: the launcher of libflashlog.so and the summary of its logs.
//!
//! - `flashlog [OPTIONS] [--] COMMAND [ARGS...]` runs COMMAND with the library preloaded and the shim's
//!   variables set (see [`launcher`], and [`options`] for the options);
//! - `flashlog summary LOG...` reads logs and prints a table per call name (see [`summary`]);
//! - `flashlog show RING...` prints the records of flight-recorder rings (see [`show`]);
//! - `flashlog export --trace LOG... -o FILE` writes Chrome trace-event JSON (see [`export`]);
//! - `flashlog report LOG... -o FILE` writes a self-contained HTML page with charts (see [`report`]);
//! - `flashlog replay DIR` runs calls dumped at level 10 again (see [`replay`]).

mod export;
mod launcher;
mod lines;
mod locate;
mod log_input;
mod options;
mod preload;
mod records;
mod replay;
mod report;
mod ringread;
mod show;
mod summary;

/// The ring file layout, shared with the library's writer (which uses the parts the reader does not).
#[allow(dead_code)]
#[path = "../../ring/format.rs"]
mod ring_format;

use std::process::ExitCode;

/// `flashlog --help`: the options part comes from [`options::OPTIONS`].
pub fn help() -> String {
    format!(
        "\
flashlog: log FlashInfer calls, CUDA graph captures and kernel launches of any program

Usage:
  flashlog [OPTIONS] [--] COMMAND [ARGS...]
  flashlog summary [--show] LOG...
  flashlog show RING...
  flashlog export --trace LOG... -o trace.json
  flashlog report LOG... -o report.html
  flashlog replay DIR [--device DEV] [--filter GLOB] [--rtol R] [--atol A] [--timeout S] [--library-root DIR]
  flashlog --help | --version

Runs COMMAND with libflashlog.so first in LD_PRELOAD (after the sanitizer runtimes it held, which must come first;
the rest of what it held is kept after it) and execs it, so its exit code and signals are its own. The library is
found in $FLASHLOG_LIB, beside this executable, in ../lib beside it, or in the flashlog Python package that `pip
install` put beside it. The options are checked before COMMAND starts: a level other than 0, 1, 3, 5 or 10, an
option below the level it needs, or a folder that cannot be created is one line on stderr and exit status 2.

Options (each also as --name=VALUE, and -lN, -oFILE for the short ones):
{}

flashlog summary LOG... reads logs of the shim and of FlashInfer's Python logger (both in one file too), one pass
each, and prints per call name the number of calls, the calls with a NaN or Inf in an input and in an output, and
the first record of each; then the first such record overall, the calls that did not return (the process ended
inside them), the runs that ended without their exit line, the calls that raised a Python exception, one line
per file and the lines it could not parse. Places read FILE:LINE. --show prints the records themselves.

Examples:
  flashlog -l 3 -o 'logs/rank_%i.log' -- torchrun --nproc_per_node=8 train.py
  flashlog --level=5 --watch -- python my_script.py
  flashlog -l 10 --dump-dir dumps -- python my_script.py
  flashlog summary --show logs/rank_*.log
  flashlog -l 3 --ring 64 -o 'logs/rank_%r.ring' -- python serve.py; flashlog show logs/rank_0.ring

Exit status: the command's own; 127 if it cannot be found, 126 if it cannot be run, 2 for bad options, 1 when
libflashlog.so cannot be found. flashlog summary: 0 nothing found, 1 a NaN/Inf or a call that did not return,
2 unusable input (a file that cannot be read or is not a log).",
        options::help_options().trim_end()
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {
            eprintln!("flashlog: no command given\n{}", usage_line());
            ExitCode::from(2)
        }
        Some("summary") => summary::main(&args[1..]),
        Some("show") => show::main(&args[1..]),
        Some("export") => export::main(&args[1..]),
        Some("report") => report::main(&args[1..]),
        // Level-10 dumps run again (python/flashlog/replay.py).
        Some("replay") => replay::main(&args[1..]),
        Some(_) => launcher::main(&args),
    }
}

/// `flashlog --version`: the version of `Cargo.toml`.
pub fn version_line() -> String {
    format!("flashlog {}", env!("CARGO_PKG_VERSION"))
}

/// Writes `text` to stdout. A reader that went away (`flashlog --help | head -1`: EPIPE, since Rust ignores
/// SIGPIPE) or any other write error ends the output quietly instead of panicking as `print!` does.
pub fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The one-line usage printed with option errors.
pub fn usage_line() -> &'static str {
    "usage: flashlog [OPTIONS] [--] COMMAND [ARGS...] | flashlog summary [--show] LOG... | flashlog show RING... (flashlog --help)"
}
