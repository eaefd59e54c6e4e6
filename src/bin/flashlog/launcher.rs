//! The launcher: find libflashlog.so, put it first in `LD_PRELOAD`, set the shim's variables, exec.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::options::{self, Check, Opt, Takes, OPTIONS};

/// What the command line asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Launch {
    /// The options given, by long name, with their values (a flag's is the value its variable gets); a later
    /// one replaces an earlier one of the same name.
    pub values: Vec<(&'static str, String)>,
    /// `-h` / `--help` or `-V` / `--version` among the options: print that instead of running anything.
    pub info: Option<Info>,
    /// The command and its arguments.
    pub command: Vec<String>,
}

impl Launch {
    /// The value of option `long` (`--level`), when given.
    pub fn get(&self, long: &str) -> Option<&str> {
        self.values.iter().find(|(n, _)| *n == long).map(|(_, v)| v.as_str())
    }

    /// `-l`: the level (already checked to be a number by [`parse`]).
    pub fn level(&self) -> Option<u32> {
        self.get("--level").and_then(|v| v.parse().ok())
    }

    /// `--with-python-logger`: keep FlashInfer's own Python logger on too.
    pub fn with_python_logger(&self) -> bool {
        self.get("--with-python-logger").is_some()
    }
}

/// What `--help` and `--version` ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Info {
    /// `-h`, `--help`.
    Help,
    /// `-V`, `--version`.
    Version,
}

/// Parses the launcher's options ([`options::OPTIONS`]); Err(message) for a bad option (exit status 2).
pub fn parse(args: &[String]) -> Result<Launch, String> {
    let mut launch = Launch::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "--" {
            launch.command = args[i + 1..].to_vec();
            break;
        }
        if let Some((opt, inline)) = options::split(arg) {
            match opt.long {
                "--help" => launch.info = Some(Info::Help),
                "--version" => launch.info = Some(Info::Version),
                _ => {}
            }
            if launch.info.is_some() {
                return Ok(launch);
            }
            let value = match (opt.takes, inline) {
                (Takes::Flag(v), _) => v.to_string(),
                (Takes::Value(_), Some(v)) => v.to_string(),
                (Takes::Value(what), None) => {
                    i += 1;
                    args.get(i).cloned().ok_or_else(|| format!("option {arg} needs a value ({what})"))?
                }
            };
            check_value(opt, arg, &value)?;
            launch.values.retain(|(n, _)| *n != opt.long);
            launch.values.push((opt.long, value));
            i += 1;
            continue;
        }
        if arg.starts_with('-') {
            return Err(format!("unknown option '{arg}' (flashlog --help lists them)"));
        }
        launch.command = args[i..].to_vec();
        break;
    }
    if launch.command.is_empty() {
        return Err(NO_COMMAND.into());
    }
    if launch.get("--ring").is_some() && launch.with_python_logger() {
        return Err(
            "--ring cannot be used with --with-python-logger (its records would be appended to the ring)".into()
        );
    }
    Ok(launch)
}

/// The checks of one value that need nothing but the value (the others: [`check_before_start`]).
fn check_value(opt: &Opt, arg: &str, value: &str) -> Result<(), String> {
    match opt.check {
        Check::Level => match value.parse::<u8>() {
            Ok(l) if options::LEVELS.contains(&l) => Ok(()),
            _ => Err(format!("{} '{value}' is not a level: use 0, 1, 3, 5 or 10", opt.long)),
        },
        Check::Destination | Check::Folder if value.is_empty() => {
            Err(format!("option {arg} needs a {}", if opt.check == Check::Folder { "folder" } else { "destination" }))
        }
        Check::RingMb if crate::ring_format::data_bytes_for_mb(value).is_none() => {
            Err(format!("ring size '{value}' is not a positive number of MiB up to 1048576 (1 TiB)"))
        }
        _ => Ok(()),
    }
}

/// The level the command will run at: `-l`, else the inherited `FLASHLOG_LEVEL` / `FLASHINFER_LOGLEVEL` read
/// as the library reads them (Python's `int()`, clamped to 0..=10), else 1. Err: an inherited value that is
/// not an integer, named by the variable the user set.
pub fn effective_level(launch: &Launch, get: &impl Fn(&str) -> Option<String>) -> Result<u8, String> {
    if let Some(l) = launch.level() {
        return Ok(l.min(10) as u8);
    }
    for var in ["FLASHLOG_LEVEL", "FLASHINFER_LOGLEVEL"] {
        if let Some(v) = get(var) {
            return python_int(&v)
                .map(|n| n.clamp(0, 10) as u8)
                .ok_or_else(|| format!("{var}='{v}' is not a level: set it to 0, 1, 3, 5 or 10, or pass -l"));
        }
    }
    Ok(1)
}

/// A string as Python's `int()` reads it (spaces around, a sign, `_` between digits); None when it is not one.
fn python_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|c| c.is_ascii_digit() || c == b'_');
    if !ok {
        return None;
    }
    let n = digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0i64, |n, c| n.saturating_mul(10).saturating_add(i64::from(c - b'0')));
    Some(if negative { -n } else { n })
}

/// The checks made before the command starts: the inherited level, each option's lowest level, and the
/// destination's and dump folder's folders, created now (a folder in a `%` part of a template is left to the
/// library, which makes it per process). Err: the one line to print (exit status 2).
pub fn check_before_start(launch: &Launch, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
    let level = effective_level(launch, &get)?;
    for (name, value) in &launch.values {
        let opt = options::find(name);
        if level < opt.min_level {
            let want: Vec<String> =
                options::LEVELS.iter().filter(|l| **l >= opt.min_level).map(u8::to_string).collect();
            let want = match want.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => opt.min_level.to_string(),
            };
            return Err(format!("{name} needs level {want} (the level is {level}): add -l {}", opt.min_level));
        }
        match opt.check {
            Check::Destination if value != "stdout" && value != "stderr" => {
                let dir = Path::new(value).parent().unwrap_or(Path::new(""));
                make_folder(dir)
                    .map_err(|e| format!("{name} {value}: {e}; give a file in a folder that can be created"))?;
                if Path::new(value).is_dir() {
                    return Err(format!(
                        "{name} {value}: is a folder; give a file name (e.g. {}/rank_%r.log)",
                        value.trim_end_matches('/')
                    ));
                }
            }
            Check::Folder => make_folder(Path::new(value))
                .map_err(|e| format!("{name} {value}: {e}; give a folder that can be created"))?,
            Check::Needs(other) => {
                let needed = options::find(other);
                let in_env = match (needed.var, needed.takes) {
                    (Some(var), Takes::Flag(on)) => get(var).is_some_and(|v| v.trim() == on),
                    _ => false,
                };
                if launch.get(other).is_none() && !in_env {
                    let var = needed.var.zip(Some(needed.takes)).map(|(var, t)| match t {
                        Takes::Flag(on) => format!(" (or {var}={on})"),
                        Takes::Value(_) => String::new(),
                    });
                    return Err(format!("{name} needs {other}{}: add {other}", var.unwrap_or_default()));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Creates `dir` with its parents, up to its first component with a `%` (a per-process template).
fn make_folder(dir: &Path) -> Result<(), String> {
    let fixed: PathBuf = dir.components().take_while(|c| !c.as_os_str().to_string_lossy().contains('%')).collect();
    if fixed.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(&fixed).map_err(|e| format!("cannot create folder '{}': {e}", fixed.display()))
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
/// Python logger's records to the same destination (`FLASHINFER_LOGDEST`). Every other option sets the variable
/// of its row.
pub fn env_changes(launch: &Launch, get: impl Fn(&str) -> Option<String>) -> EnvChanges {
    let mut env = EnvChanges::default();
    let python_level = get("FLASHINFER_LOGLEVEL");
    let level = launch.level().map(|l| l.to_string());
    let shim_level = match (&level, get("FLASHLOG_LEVEL"), &python_level) {
        (Some(l), _, _) => Some(l.clone()),
        (None, Some(_), _) => None, // already set: the shim reads it
        (None, None, Some(p)) => Some(p.clone()),
        (None, None, None) => Some("1".to_string()),
    };
    if let Some(l) = shim_level {
        env.set.push(("FLASHLOG_LEVEL", l));
    }
    if launch.with_python_logger() {
        if python_level.is_none() {
            let l = level.or_else(|| get("FLASHLOG_LEVEL")).unwrap_or_else(|| "1".to_string());
            env.set.push(("FLASHINFER_LOGLEVEL", l));
        }
        if let Some(dest) = launch.get("--output") {
            env.set.push(("FLASHINFER_LOGDEST", dest.to_string()));
        }
    } else if python_level.is_some() {
        env.remove.push("FLASHINFER_LOGLEVEL");
    }
    for opt in OPTIONS.iter().filter(|o| o.long != "--level") {
        if let (Some(var), Some(value)) = (opt.var, launch.get(opt.long)) {
            env.set.push((var, value.to_string()));
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

/// Whether a parse error is the missing command (shown with the usage line; other errors are one line).
fn launch_has_no_command(msg: &str) -> bool {
    msg == NO_COMMAND
}

const NO_COMMAND: &str = "no command given";

/// Runs the launcher; returns only when the command could not be started.
pub fn main(args: &[String]) -> ExitCode {
    let launch = match parse(args) {
        Ok(l) => l,
        Err(msg) if launch_has_no_command(&msg) => {
            eprintln!("flashlog: {msg}\n{}", crate::usage_line());
            return ExitCode::from(2);
        }
        Err(msg) => {
            eprintln!("flashlog: {msg}");
            return ExitCode::from(2);
        }
    };
    let getenv = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    match launch.info {
        Some(Info::Help) => {
            crate::print_out(&format!("{}\n", crate::help()));
            return ExitCode::SUCCESS;
        }
        Some(Info::Version) => {
            crate::print_out(&format!("{}\n", crate::version_line()));
            return ExitCode::SUCCESS;
        }
        None => {}
    }
    if let Err(msg) = check_before_start(&launch, getenv) {
        eprintln!("flashlog: {msg}");
        return ExitCode::from(2);
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
    let changes = env_changes(&launch, getenv);
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
        assert_eq!(l.level(), Some(3));
        assert_eq!(l.get("--output"), Some("x_%i.log"));
        assert_eq!(l.get("--kernels"), Some("*"));
        assert_eq!(l.command, args(&["python", "-c", "1"]));
        let l = parse(&args(&["ls", "-l"])).unwrap();
        assert_eq!(l.command, args(&["ls", "-l"]));
        assert!(parse(&args(&["-l", "x", "ls"])).unwrap_err().contains("'x' is not a level: use 0, 1, 3, 5 or 10"));
        for bad in ["-1", "4", "11", "2"] {
            assert!(parse(&args(&["-l", bad, "ls"])).unwrap_err().contains("is not a level"), "{bad}");
        }
        assert!(parse(&args(&["--bogus", "ls"])).unwrap_err().contains("unknown option"));
        assert!(parse(&args(&["-l", "3"])).unwrap_err().contains("no command"));
        assert!(parse(&args(&["-o"])).unwrap_err().contains("needs a value"));
        let l = parse(&args(&["--watch", "--graph-stats", "--dump-dir", "d", "-l10", "ls"])).unwrap();
        assert_eq!(
            (l.get("--watch"), l.get("--graph-stats"), l.get("--dump-dir")),
            (Some("nonfinite"), Some("1"), Some("d"))
        );
    }

    #[test]
    fn attached_and_equals_forms() {
        let l = parse(&args(&["-l3", "-ox.log", "--modules=*norm*", "--kernels=", "ls"])).unwrap();
        assert_eq!((l.level(), l.get("--output")), (Some(3), Some("x.log")));
        assert_eq!((l.get("--modules"), l.get("--kernels")), (Some("*norm*"), Some("")));
        let l = parse(&args(&["--level=5", "--output=logs/r_%i.log", "--with-python-logger", "--", "-x"])).unwrap();
        assert_eq!((l.level(), l.get("--output"), l.with_python_logger()), (Some(5), Some("logs/r_%i.log"), true));
        assert_eq!(l.command, args(&["-x"]));
        assert!(parse(&args(&["--level=", "ls"])).unwrap_err().contains("is not a level"));
        assert!(parse(&args(&["-l3x", "ls"])).unwrap_err().contains("'3x'"));
        assert!(parse(&args(&["--output=", "ls"])).unwrap_err().contains("needs a destination"));
        assert!(parse(&args(&["--dump-dir=", "ls"])).unwrap_err().contains("needs a folder"));
        assert!(parse(&args(&["--levels=3", "ls"])).unwrap_err().contains("unknown option '--levels=3'"));
        assert!(parse(&args(&["--watch=yes", "ls"])).unwrap_err().contains("unknown option '--watch=yes'"));
        assert_eq!(parse(&args(&["-l3", "--help"])).unwrap().info, Some(Info::Help));
        assert_eq!(parse(&args(&["-V"])).unwrap().info, Some(Info::Version));
        assert_eq!(parse(&args(&["ls", "--help"])).unwrap().info, None);
    }

    fn checked(a: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
        let l = parse(&args(a)).unwrap();
        check_before_start(&l, |name| env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn checks_before_start() {
        assert_eq!(
            checked(&["--watch", "ls"], &[]).unwrap_err(),
            "--watch needs level 5 or 10 (the level is 1): add -l 5"
        );
        assert!(checked(&["-l3", "--graph-stats", "ls"], &[]).unwrap_err().starts_with("--graph-stats needs level 5"));
        assert_eq!(
            checked(&["-l0", "--sync", "ls"], &[]).unwrap_err(),
            "--sync needs level 1, 3, 5 or 10 (the level is 0): add -l 1"
        );
        assert_eq!(
            checked(&["--graph-markers", "ls"], &[("FLASHLOG_SYNC", "0")]).unwrap_err(),
            "--graph-markers needs --sync (or FLASHLOG_SYNC=1): add --sync"
        );
        assert!(checked(&["--graph-markers", "--sync", "ls"], &[]).is_ok());
        assert!(checked(&["--graph-markers", "ls"], &[("FLASHLOG_SYNC", "1")]).is_ok());
        assert!(checked(&["-l5", "--dump-dir", "/nonexistent/../tmp", "ls"], &[])
            .unwrap_err()
            .contains("needs level 10"));
        assert!(checked(&["--watch", "ls"], &[("FLASHINFER_LOGLEVEL", "5")]).is_ok());
        assert!(checked(&["-l5", "--watch", "--graph-stats", "ls"], &[]).is_ok());
        assert_eq!(
            checked(&["ls"], &[("FLASHINFER_LOGLEVEL", "abc")]).unwrap_err(),
            "FLASHINFER_LOGLEVEL='abc' is not a level: set it to 0, 1, 3, 5 or 10, or pass -l"
        );
        assert!(checked(&["ls"], &[("FLASHLOG_LEVEL", "x"), ("FLASHINFER_LOGLEVEL", "3")])
            .unwrap_err()
            .starts_with("FLASHLOG_LEVEL="));
        assert!(checked(&["-l3", "ls"], &[("FLASHINFER_LOGLEVEL", "abc")]).is_ok(), "-l decides");
        assert!(checked(&["ls"], &[("FLASHINFER_LOGLEVEL", " 1_0 ")]).is_ok());
        assert!(checked(&["-o", "/dev/null/x.log", "ls"], &[])
            .unwrap_err()
            .contains("cannot create folder '/dev/null'"));
        assert!(checked(&["-o", "/dev/null/%r/x.log", "ls"], &[])
            .unwrap_err()
            .contains("cannot create folder '/dev/null'"));
        assert!(checked(&["-o", "stderr", "ls"], &[]).is_ok());
        assert!(checked(&["-o", "/", "ls"], &[]).unwrap_err().contains("is a folder"));
    }

    #[test]
    fn python_int_like_the_library() {
        for (text, want) in [
            ("3", Some(3)),
            (" +5 ", Some(5)),
            ("-2", Some(-2)),
            ("1_0", Some(10)),
            ("_1", None),
            ("1__0", None),
            ("", None),
            ("x", None),
            ("1.5", None),
        ] {
            assert_eq!(python_int(text), want, "{text:?}");
        }
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
        let c = changes(&["-l10", "--watch", "--graph-stats", "--dump-dir=d_%i", "ls"], &[]);
        let want = [
            ("FLASHLOG_LEVEL", "10"),
            ("FLASHLOG_GRAPH_STATS", "1"),
            ("FLASHLOG_WATCH", "nonfinite"),
            ("FLASHLOG_DUMP_DIR", "d_%i"),
        ];
        assert_eq!(c.set, want.map(|(n, v)| (n, v.to_string())));
    }

    #[test]
    fn ring_option() {
        let l = parse(&args(&["--ring", "64", "-o", "r_%r.ring", "ls"])).unwrap();
        assert_eq!(l.get("--ring"), Some("64"));
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
