//! `flashlog replay DIR [OPTIONS]`: runs the calls dumped at level 10 again, by exec'ing
//! `python3 -m flashlog replay DIR [OPTIONS]` (`$FLASHLOG_PYTHON` chooses the interpreter) with the package
//! `flashlog` (this repository's `python/`) first on `PYTHONPATH`, and without libflashlog.so preloaded.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Where the Python package is: `$FLASHLOG_PYTHONPATH`, `../lib/flashlog/python` beside this executable (the
/// installed layout), or the source tree's `python/` (`target/release/flashlog` -> `../../python`).
fn package_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FLASHLOG_PYTHONPATH") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.to_path_buf();
    [dir.join("../lib/flashlog/python"), dir.join("../../python"), dir.join("python")]
        .into_iter()
        .find(|d| d.join("flashlog/replay.py").is_file())
}

/// Execs the Python replay; returns only when it cannot be started.
pub fn main(args: &[String]) -> ExitCode {
    let Some(pkg) = package_dir() else {
        eprintln!("flashlog: the Python package flashlog (replay.py) was not found beside this executable");
        return ExitCode::from(1);
    };
    let python = std::env::var_os("FLASHLOG_PYTHON").unwrap_or_else(|| OsString::from("python3"));
    let mut path = pkg.into_os_string();
    if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(old);
    }
    let mut cmd = Command::new(&python);
    cmd.arg("-m").arg("flashlog").arg("replay").args(args).env("PYTHONPATH", path);
    // The replayed calls are not to be logged again (nor dumped into the folder being read).
    if let Ok(preload) = std::env::var("LD_PRELOAD") {
        let kept: Vec<&str> =
            preload.split([' ', ':']).filter(|s| !s.is_empty() && !s.ends_with("libflashlog.so")).collect();
        cmd.env("LD_PRELOAD", kept.join(":"));
    }
    let err = cmd.exec();
    eprintln!("flashlog: cannot run {}: {err}", python.to_string_lossy());
    ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 })
}
