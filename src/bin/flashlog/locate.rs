//! Where the library of an installed wheel is, seen from the launcher.
//!
//! `pip install flashlog` puts the launcher in the environment's scripts directory (`<prefix>/bin/flashlog`)
//! and the library inside the Python package (`<prefix>/lib/python3.X/site-packages/flashlog/lib/`). The
//! same holds for a virtual environment, a conda environment, `--user` (`~/.local`), `--prefix`, a system
//! install (`dist-packages` on Debian, `lib64` on Fedora) and `pipx` / `uv tool` (their `~/.local/bin` entry is
//! a symbolic link, and the executable's own path is the resolved one); `--target DIR` puts both under `DIR`.
//! So the library is found from the executable's directory alone, without starting Python; only when no
//! such layout holds it is a Python interpreter asked (the one beside the launcher, else `python3`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The library inside the package, relative to a `site-packages` directory.
const IN_PACKAGE: &str = "flashlog/lib/libflashlog.so";

/// The library of the wheel that installed the launcher in `bin_dir`, if there is one. When several Python
/// versions under the prefix hold one, the one whose `flashlog-<version>.dist-info` matches this launcher's
/// version wins (the same wheel), then the first in name order.
pub fn wheel_library(bin_dir: &Path) -> Option<PathBuf> {
    let prefix = bin_dir.parent()?;
    let mut found: Vec<(PathBuf, bool)> = Vec::new();
    let mut push = |packages: PathBuf| {
        if let Ok(lib) = std::fs::canonicalize(packages.join(IN_PACKAGE)) {
            if lib.is_file() && !found.iter().any(|(f, _)| *f == lib) {
                let same_wheel = packages.join(format!("flashlog-{}.dist-info", env!("CARGO_PKG_VERSION"))).is_dir();
                found.push((lib, same_wheel));
            }
        }
    };
    push(prefix.to_path_buf());
    for lib_dir in ["lib", "lib64"] {
        let Ok(entries) = std::fs::read_dir(prefix.join(lib_dir)) else { continue };
        let mut pythons: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path())
            .collect();
        pythons.sort();
        for python in pythons {
            push(python.join("site-packages"));
            push(python.join("dist-packages"));
        }
    }
    let best = found.iter().position(|(_, same)| *same).unwrap_or(0);
    found.into_iter().nth(best).map(|(lib, _)| lib).or_else(|| ask_python(bin_dir))
}

/// The fallback: `flashlog.library_path()` as an interpreter reports it (the one in `bin_dir`, else
/// `python3` from PATH), for layouts that no rule above knows (a package reached through PYTHONPATH, say).
/// Its output is used only if it names an existing file called libflashlog.so.
fn ask_python(bin_dir: &Path) -> Option<PathBuf> {
    let beside = bin_dir.join("python3");
    let python = if beside.is_file() { beside } else { PathBuf::from("python3") };
    let out = Command::new(python)
        // Without the current directory on sys.path: a folder named flashlog there is not the package.
        .args(["-c", "import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; import flashlog; print(flashlog.library_path())"])
        .env_remove("FLASHLOG_LIB")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim_end());
    (out.status.success() && path.file_name()? == "libflashlog.so" && path.is_file()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty directory under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flashlog-locate-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        dir
    }

    /// Creates `<prefix>/<packages>/flashlog/lib/libflashlog.so` (and the dist-info of `version` if given).
    fn install(prefix: &Path, packages: &str, version: Option<&str>) -> PathBuf {
        let dir = prefix.join(packages);
        std::fs::create_dir_all(dir.join("flashlog/lib")).unwrap();
        if let Some(v) = version {
            std::fs::create_dir_all(dir.join(format!("flashlog-{v}.dist-info"))).unwrap();
        }
        let lib = dir.join(IN_PACKAGE);
        std::fs::write(&lib, b"").unwrap();
        std::fs::canonicalize(lib).unwrap()
    }

    #[test]
    fn venv_user_and_system_layouts() {
        for (name, packages) in [
            ("venv", "lib/python3.11/site-packages"),
            ("debian", "lib/python3/dist-packages"),
            ("fedora", "lib64/python3.12/site-packages"),
            ("freethreaded", "lib/python3.13t/site-packages"),
            ("target", "."),
        ] {
            let prefix = scratch(name);
            let lib = install(&prefix, packages, None);
            assert_eq!(wheel_library(&prefix.join("bin")), Some(lib), "{name}");
            std::fs::remove_dir_all(prefix).unwrap();
        }
    }

    #[test]
    fn the_same_wheel_wins_over_another_python() {
        let prefix = scratch("two");
        install(&prefix, "lib/python3.10/site-packages", Some("0.0.1"));
        let ours = install(&prefix, "lib/python3.12/site-packages", Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(wheel_library(&prefix.join("bin")), Some(ours));
        std::fs::remove_dir_all(prefix).unwrap();
    }

    #[test]
    fn an_unknown_layout_asks_the_python_beside_the_launcher() {
        use std::os::unix::fs::PermissionsExt;
        let prefix = scratch("ask");
        let lib = install(&prefix, "elsewhere", None);
        let python = prefix.join("bin/python3");
        std::fs::write(&python, format!("#!/bin/sh\necho '{}'\n", lib.display())).unwrap();
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(wheel_library(&prefix.join("bin")), Some(lib.clone()));
        // What it prints is taken only if it names an existing libflashlog.so.
        std::fs::write(&python, "#!/bin/sh\necho /etc/passwd\n").unwrap();
        assert_eq!(wheel_library(&prefix.join("bin")), None);
        std::fs::remove_dir_all(prefix).unwrap();
    }

    #[test]
    fn nothing_installed_is_none() {
        let prefix = scratch("none");
        std::fs::create_dir_all(prefix.join("lib/python3.11/site-packages/flashlog")).unwrap();
        // No python3 beside the launcher and, in the test's environment, no flashlog package on PATH's python3.
        if Command::new("python3").args(["-c", "import flashlog"]).output().map(|o| !o.status.success()).unwrap_or(true)
        {
            assert_eq!(wheel_library(&prefix.join("bin")), None);
        }
        std::fs::remove_dir_all(prefix).unwrap();
    }
}
