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
    /// `--ring`: the flight recorder's size in MiB (`FLASHLOG_RING_MB`).
    pub ring: Option<String>,
    /// `--with-python-logger`: keep FlashInfer's own Python logger on too.
    pub with_python_logger: bool,
    /// `-h` / `--help` or `-V` / `--version` among the options: print that instead of running anything.
    pub info: Option<Info>,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// What `--help` and `--version` ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Info {
    /// `-h`, `--help`.
    Help,
    /// `-V`, `--version`.
    Version,
}

/// The options that take a value: (short form, long form).
const VALUED: [(Option<&str>, &str); 5] =
    [(Some("-l"), "--level"), (Some("-o"), "--output"), (None, "--modules"), (None, "--kernels"), (None, "--ring")];

/// Splits one argument into (long option name, value given with it): `-l3` and `--level=3` give the value,
/// `-l` and `--level` leave it to the next argument. None when it is not one of [`VALUED`].
fn valued_option(arg: &str) -> Option<(&'static str, Option<&str>)> {
    for (short, long) in VALUED {
        if arg == long || short == Some(arg) {
            return Some((long, None));
        }
        if let Some(v) = arg.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
            return Some((long, Some(v)));
        }
        if let Some(v) = short.and_then(|s| arg.strip_prefix(s)) {
            return Some((long, Some(v)));
        }
    }
    None
}

/// Parses the launcher's options; Err(message) for a bad option (exit status 2).
pub fn parse(args: &[String]) -> Result<Launch, String> {
    let mut launch = Launch::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "--" {
            launch.command = args[i + 1..].to_vec();
            break;
        }
        match arg {
            "-h" | "--help" => launch.info = Some(Info::Help),
            "-V" | "--version" => launch.info = Some(Info::Version),
            _ => {}
        }
        if launch.info.is_some() {
            return Ok(launch);
        }
        if arg == "--with-python-logger" {
            launch.with_python_logger = true;
            i += 1;
            continue;
        }
        if let Some((name, inline)) = valued_option(arg) {
            let value = match inline {
                Some(v) => v.to_string(),
                None => {
                    i += 1;
                    args.get(i).cloned().ok_or_else(|| format!("option {arg} needs a value"))?
                }
            };
            match name {
                "--level" => {
                    let level = value.parse().map_err(|_| format!("level '{value}' is not a non-negative integer"))?;
                    launch.level = Some(level);
                }
                "--output" if value.is_empty() => return Err(format!("option {arg} needs a destination")),
                "--output" => launch.dest = Some(value),
                "--modules" => launch.modules = Some(value),
                "--ring" if crate::ring_format::data_bytes_for_mb(&value).is_none() => {
                    return Err(format!("ring size '{value}' is not a positive number of MiB"))
                }
                "--ring" => launch.ring = Some(value),
                _ => launch.kernels = Some(value),
            }
            i += 1;
            continue;
        }
        if arg.starts_with('-') {
            return Err(format!("unknown option '{arg}'"));
        }
        launch.command = args[i..].to_vec();
        break;
    }
    if launch.command.is_empty() {
        return Err("no command given".into());
    }
    if launch.ring.is_some() && launch.with_python_logger {
        return Err(
            "--ring cannot be used with --with-python-logger (its records would be appended to the ring)".into()
        );
    }
    Ok(launch)
}

/// What the launcher does to the child's environment: variables to set and variables to remove.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EnvChanges {
    /// (name, value) to set.
    pub set: Vec<(&'static str, String)>,
    /// Names to remove.
    pub remove: Vec<&'static str>,
}

/// The child's variables, from the options and the launcher's own environment (`get`).
///
/// The shim's level is `-l`, else `FLASHLOG_LEVEL`, else `FLASHINFER_LOGLEVEL` (moved to `FLASHLOG_LEVEL`),
/// else 1. Without `--with-python-logger`, `FLASHINFER_LOGLEVEL` is removed, so FlashInfer's Python logger stays
/// off. With it, `FLASHINFER_LOGLEVEL` stays (set to the shim's level when it was not set), and `-o` sends the
/// Python logger's records to the same destination (`FLASHINFER_LOGDEST`).
pub fn env_changes(launch: &Launch, get: impl Fn(&str) -> Option<String>) -> EnvChanges {
    let mut env = EnvChanges::default();
    let python_level = get("FLASHINFER_LOGLEVEL");
    let level = launch.level.map(|l| l.to_string());
    let shim_level = match (&level, get("FLASHLOG_LEVEL"), &python_level) {
        (Some(l), _, _) => Some(l.clone()),
        (None, Some(_), _) => None, // already set: the shim reads it
        (None, None, Some(p)) => Some(p.clone()),
        (None, None, None) => Some("1".to_string()),
    };
    if let Some(l) = shim_level {
        env.set.push(("FLASHLOG_LEVEL", l));
    }
    if launch.with_python_logger {
        if python_level.is_none() {
            let l = level.or_else(|| get("FLASHLOG_LEVEL")).unwrap_or_else(|| "1".to_string());
            env.set.push(("FLASHINFER_LOGLEVEL", l));
        }
        if let Some(dest) = &launch.dest {
            env.set.push(("FLASHINFER_LOGDEST", dest.clone()));
        }
    } else if python_level.is_some() {
        env.remove.push("FLASHINFER_LOGLEVEL");
    }
    for (var, value) in [
        ("FLASHLOG_DEST", &launch.dest),
        ("FLASHLOG_MODULES", &launch.modules),
        ("FLASHLOG_KERNELS", &launch.kernels),
        ("FLASHLOG_RING_MB", &launch.ring),
    ] {
        if let Some(v) = value {
            env.set.push((var, v.clone()));
        }
    }
    env
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

/// `LD_PRELOAD` with `lib` first, after the sanitizer runtimes it held (which must come first), and the rest of
/// what was there after it (without a second copy of `lib`): see [`crate::preload`].
pub fn preload_value(lib: &Path, existing: Option<&str>) -> OsString {
    crate::preload::value(&lib.as_os_str().to_string_lossy(), existing)
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
    match launch.info {
        Some(Info::Help) => {
            println!("{}", crate::HELP);
            return ExitCode::SUCCESS;
        }
        Some(Info::Version) => {
            println!("{}", crate::version_line());
            return ExitCode::SUCCESS;
        }
        None => {}
    }
    let lib = match find_library().and_then(|lib| crate::preload::loadable_path(&lib)) {
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
    let changes = env_changes(&launch, |name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()));
    for name in &changes.remove {
        cmd.env_remove(name);
    }
    for (name, value) in &changes.set {
        cmd.env(name, value);
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
    fn attached_and_equals_forms() {
        let l = parse(&args(&["-l3", "-ox.log", "--modules=*norm*", "--kernels=", "ls"])).unwrap();
        assert_eq!((l.level, l.dest.as_deref()), (Some(3), Some("x.log")));
        assert_eq!((l.modules.as_deref(), l.kernels.as_deref()), (Some("*norm*"), Some("")));
        let l = parse(&args(&["--level=5", "--output=logs/r_%i.log", "--with-python-logger", "--", "-x"])).unwrap();
        assert_eq!((l.level, l.dest.as_deref(), l.with_python_logger), (Some(5), Some("logs/r_%i.log"), true));
        assert_eq!(l.command, args(&["-x"]));
        assert!(parse(&args(&["--level=", "ls"])).unwrap_err().contains("not a non-negative integer"));
        assert!(parse(&args(&["-l3x", "ls"])).unwrap_err().contains("'3x'"));
        assert!(parse(&args(&["--output=", "ls"])).unwrap_err().contains("needs a destination"));
        assert!(parse(&args(&["--levels=3", "ls"])).unwrap_err().contains("unknown option '--levels=3'"));
        assert_eq!(parse(&args(&["-l3", "--help"])).unwrap().info, Some(Info::Help));
        assert_eq!(parse(&args(&["-V"])).unwrap().info, Some(Info::Version));
        assert_eq!(parse(&args(&["ls", "--help"])).unwrap().info, None);
    }

    fn changes(a: &[&str], env: &[(&str, &str)]) -> EnvChanges {
        let l = parse(&args(a)).unwrap();
        env_changes(&l, |name| env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn python_logger_off_unless_asked() {
        let c = changes(&["-l", "3", "ls"], &[("FLASHINFER_LOGLEVEL", "3")]);
        assert_eq!(c.set, [("FLASHLOG_LEVEL", "3".to_string())]);
        assert_eq!(c.remove, ["FLASHINFER_LOGLEVEL"]);
        // Its level becomes the shim's when nothing else names one.
        let c = changes(&["ls"], &[("FLASHINFER_LOGLEVEL", "5")]);
        assert_eq!((c.set, c.remove), (vec![("FLASHLOG_LEVEL", "5".to_string())], vec!["FLASHINFER_LOGLEVEL"]));
        let c = changes(&["ls"], &[("FLASHLOG_LEVEL", "3")]);
        assert!(c.set.is_empty() && c.remove.is_empty());
        let c = changes(&["-l5", "-o", "b.log", "--with-python-logger", "ls"], &[]);
        let want = [
            ("FLASHLOG_LEVEL", "5"),
            ("FLASHINFER_LOGLEVEL", "5"),
            ("FLASHINFER_LOGDEST", "b.log"),
            ("FLASHLOG_DEST", "b.log"),
        ];
        assert_eq!(c.set, want.map(|(n, v)| (n, v.to_string())));
        let c = changes(&["-l5", "--with-python-logger", "ls"], &[("FLASHINFER_LOGLEVEL", "3")]);
        assert_eq!((c.set, c.remove), (vec![("FLASHLOG_LEVEL", "5".to_string())], vec![]));
    }

    #[test]
    fn ring_option() {
        let l = parse(&args(&["--ring", "64", "-o", "r_%r.ring", "ls"])).unwrap();
        assert_eq!(l.ring.as_deref(), Some("64"));
        assert!(changes(&["--ring=0.5", "ls"], &[]).set.contains(&("FLASHLOG_RING_MB", "0.5".to_string())));
        assert!(parse(&args(&["--ring", "0", "ls"])).unwrap_err().contains("not a positive number"));
        assert!(parse(&args(&["--ring", "4", "--with-python-logger", "ls"])).unwrap_err().contains("--ring cannot"));
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
