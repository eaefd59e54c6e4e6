//! The launcher: find libflashlog.so, put it first in `LD_PRELOAD`, set the shim's variables, exec.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// What the command line asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Launch {
    /// `-l`: the level.
    pub level: Option<u32>,
    /// `-o`: the destination.
    pub dest: Option<String>,
    /// `--modules`.
    pub modules: Option<String>,
    /// `--kernels`.
    pub kernels: Option<String>,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// Parses the launcher's options; Err(message) for a bad option (exit status 2).
pub fn parse(args: &[String]) -> Result<Launch, String> {
    let mut launch = Launch::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let mut value = |name: &str| -> Result<String, String> {
            i += 1;
            args.get(i).cloned().ok_or_else(|| format!("option {name} needs a value"))
        };
        match arg.as_str() {
            "--" => {
                launch.command = args[i + 1..].to_vec();
                break;
            }
            "-l" | "--level" => {
                let v = value(arg)?;
                launch.level = Some(v.parse().map_err(|_| format!("level '{v}' is not a non-negative integer"))?);
            }
            "-o" | "--output" => launch.dest = Some(value(arg)?),
            "--modules" => launch.modules = Some(value(arg)?),
            "--kernels" => launch.kernels = Some(value(arg)?),
            s if s.starts_with('-') => return Err(format!("unknown option '{s}'")),
            _ => {
                launch.command = args[i..].to_vec();
                break;
            }
        }
        i += 1;
    }
    if launch.command.is_empty() {
        return Err("no command given".into());
    }
    Ok(launch)
}

/// Where the library is: `$FLASHLOG_LIB`, beside this executable, in `../lib` beside it, or in the wheel's
/// Python package installed with it ([`crate::locate`]).
pub fn find_library() -> Result<PathBuf, String> {
    if let Some(lib) = std::env::var_os("FLASHLOG_LIB") {
        let path = PathBuf::from(lib);
        return if path.is_file() {
            Ok(std::fs::canonicalize(&path).unwrap_or(path))
        } else {
            Err(format!("FLASHLOG_LIB={} is not a file", path.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [dir.join("libflashlog.so"), dir.join("../lib/libflashlog.so")];
    for c in &candidates {
        if c.is_file() {
            return Ok(std::fs::canonicalize(c).unwrap_or_else(|_| c.clone()));
        }
    }
    if let Some(lib) = crate::locate::wheel_library(dir) {
        return Ok(lib);
    }
    Err(format!(
        "cannot find libflashlog.so (looked in {} and {}); set FLASHLOG_LIB",
        candidates[0].display(),
        candidates[1].display()
    ))
}

/// `LD_PRELOAD` with `lib` first and what was there after it (without a second copy of `lib`).
pub fn preload_value(lib: &Path, existing: Option<&str>) -> OsString {
    let lib = lib.as_os_str().to_string_lossy().into_owned();
    let rest: Vec<&str> =
        existing.unwrap_or("").split([' ', ':']).filter(|s| !s.is_empty() && *s != lib.as_str()).collect();
    let mut value = lib;
    for r in rest {
        value.push(':');
        value.push_str(r);
    }
    value.into()
}

/// Runs the launcher; returns only when the command could not be started.
pub fn main(args: &[String]) -> ExitCode {
    let launch = match parse(args) {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("flashlog: {msg}\n{}", crate::usage_line());
            return ExitCode::from(2);
        }
    };
    let lib = match find_library() {
        Ok(lib) => lib,
        Err(msg) => {
            eprintln!("flashlog: {msg}");
            return ExitCode::from(1);
        }
    };
    let mut cmd = Command::new(&launch.command[0]);
    cmd.args(&launch.command[1..]);
    let existing = std::env::var("LD_PRELOAD").ok();
    cmd.env("LD_PRELOAD", preload_value(&lib, existing.as_deref()));
    let level_already_set =
        std::env::var_os("FLASHLOG_LEVEL").is_some() || std::env::var_os("FLASHINFER_LOGLEVEL").is_some();
    match launch.level {
        Some(level) => {
            cmd.env("FLASHLOG_LEVEL", level.to_string());
        }
        None if !level_already_set => {
            cmd.env("FLASHLOG_LEVEL", "1");
        }
        None => {}
    }
    for (var, value) in
        [("FLASHLOG_DEST", &launch.dest), ("FLASHLOG_MODULES", &launch.modules), ("FLASHLOG_KERNELS", &launch.kernels)]
    {
        if let Some(v) = value {
            cmd.env(var, v);
        }
    }
    let err = cmd.exec();
    let name = &launch.command[0];
    match err.kind() {
        std::io::ErrorKind::NotFound => {
            eprintln!("flashlog: {name}: command not found");
            ExitCode::from(127)
        }
        std::io::ErrorKind::PermissionDenied => {
            eprintln!("flashlog: {name}: permission denied");
            ExitCode::from(126)
        }
        _ => {
            eprintln!("flashlog: {name}: {err}");
            ExitCode::from(126)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn options_and_command() {
        let l = parse(&args(&["-l", "3", "-o", "x_%i.log", "--kernels", "*", "--", "python", "-c", "1"])).unwrap();
        assert_eq!(l.level, Some(3));
        assert_eq!(l.dest.as_deref(), Some("x_%i.log"));
        assert_eq!(l.kernels.as_deref(), Some("*"));
        assert_eq!(l.command, args(&["python", "-c", "1"]));
        let l = parse(&args(&["ls", "-l"])).unwrap();
        assert_eq!(l.command, args(&["ls", "-l"]));
        assert!(parse(&args(&["-l", "x", "ls"])).unwrap_err().contains("not a non-negative integer"));
        assert!(parse(&args(&["-l", "-1", "ls"])).is_err());
        assert!(parse(&args(&["--bogus", "ls"])).unwrap_err().contains("unknown option"));
        assert!(parse(&args(&["-l", "3"])).unwrap_err().contains("no command"));
        assert!(parse(&args(&["-o"])).unwrap_err().contains("needs a value"));
    }

    #[test]
    fn preload_keeps_what_was_there() {
        let lib = Path::new("/opt/flashlog/lib/libflashlog.so");
        assert_eq!(preload_value(lib, None), "/opt/flashlog/lib/libflashlog.so");
        assert_eq!(preload_value(lib, Some("/a.so /b.so")), "/opt/flashlog/lib/libflashlog.so:/a.so:/b.so");
        assert_eq!(
            preload_value(lib, Some("/opt/flashlog/lib/libflashlog.so:/a.so")),
            "/opt/flashlog/lib/libflashlog.so:/a.so"
        );
    }
}
