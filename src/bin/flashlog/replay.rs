//! `flashlog replay DIR [OPTIONS]`: runs the calls dumped at level 10 again, by exec'ing
//! `python3 -m flashlog replay DIR [OPTIONS]` without libflashlog.so preloaded. The interpreter is
//! `$FLASHLOG_PYTHON`, else the `python3` beside this executable (the virtual environment the wheel was
//! installed into), else `python3` on PATH. The package `flashlog` is put first on `PYTHONPATH` when it lies
//! beside this executable (`make install`'s layout, the source tree); an installed wheel's is importable as it
//! is. (`python -m flashlog replay` runs the replay in Python itself, so the two never call each other.)

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

/// The interpreter: `$FLASHLOG_PYTHON`, the `python3` beside this executable, or `python3` on PATH.
fn python() -> OsString {
    if let Some(p) = std::env::var_os("FLASHLOG_PYTHON") {
        return p;
    }
    let beside = std::env::current_exe().ok().and_then(|e| Some(e.parent()?.join("python3")));
    match beside {
        Some(p) if p.is_file() => p.into_os_string(),
        _ => OsString::from("python3"),
    }
}

/// Whether an `LD_PRELOAD` entry is the library: `libflashlog.so`, or the launcher's link to it
/// (`libflashlog-<hash>.so`, made when its path has a space).
fn is_flashlog(entry: &str) -> bool {
    let name = entry.rsplit('/').next().unwrap_or(entry);
    name == "libflashlog.so" || (name.starts_with("libflashlog-") && name.ends_with(".so"))
}

/// Execs the Python replay; returns only when it cannot be started.
pub fn main(args: &[String]) -> ExitCode {
    let python = python();
    let mut cmd = Command::new(&python);
    cmd.arg("-m").arg("flashlog").arg("replay").args(args);
    if let Some(pkg) = package_dir() {
        let mut path = pkg.into_os_string();
        if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
            path.push(":");
            path.push(old);
        }
        cmd.env("PYTHONPATH", path);
    }
    // The replayed calls are not to be logged again (nor dumped into the folder being read).
    if let Ok(preload) = std::env::var("LD_PRELOAD") {
        let kept: Vec<&str> = preload.split([' ', ':']).filter(|s| !s.is_empty() && !is_flashlog(s)).collect();
        cmd.env("LD_PRELOAD", kept.join(":"));
    }
    let err = cmd.exec();
    eprintln!("flashlog: cannot run {}: {err}", python.to_string_lossy());
    ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 })
}
