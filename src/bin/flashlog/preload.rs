//! The `LD_PRELOAD` value the launcher gives the command: sanitizer runtimes first (ASan, TSan, UBSan, HWASan
//! and MSan check that they come first in the initial library list and end the program otherwise), then the
//! library, then the rest of what was there.
//!
//! ld.so splits `LD_PRELOAD` on spaces and colons, so a library whose path holds one (a venv under
//! `ML projects/`) cannot be named there. The launcher then names a symbolic link to it instead, made in a folder
//! of this user's only and reused by later runs: `$XDG_RUNTIME_DIR/flashlog` when that is set, else
//! `<temp dir>/flashlog-<uid>`. The folder is made with mode 0700 and used only when it is a real folder (not a
//! link) owned by this user that nobody else can write, so no other user can plant or swap the link. The link is
//! `libflashlog-<hash of the target path>.so`: each installed library gets its own, a link already pointing at the
//! target is reused as it is, and a new one is made under a temporary name and renamed over the final name, so
//! launchers starting at the same time never see a half-made link.

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file-name prefixes of the sanitizer runtimes (GCC's `libasan.so.8`, LLVM's
/// `libclang_rt.asan-x86_64.so`, ...).
const SANITIZERS: [&str; 10] = [
    "libasan",
    "libtsan",
    "libubsan",
    "libhwasan",
    "libmsan",
    "libclang_rt.asan",
    "libclang_rt.tsan",
    "libclang_rt.ubsan",
    "libclang_rt.hwasan",
    "libclang_rt.msan",
];

/// Whether an `LD_PRELOAD` entry is a sanitizer runtime, by its file name.
pub fn is_sanitizer(entry: &str) -> bool {
    let name = entry.rsplit('/').next().unwrap_or(entry);
    SANITIZERS.iter().any(|p| name.strip_prefix(p).is_some_and(|rest| rest.starts_with(['.', '-', '_'])))
        && name.contains(".so")
}

/// Whether ld.so would split this path (it cannot be put in `LD_PRELOAD` as it is).
pub fn needs_link(path: &str) -> bool {
    path.contains([' ', ':', '\t', '\n'])
}

/// `LD_PRELOAD`: the sanitizer runtimes of `existing` first, in their order, then `lib`, then the other entries
/// (without a second copy of `lib`).
pub fn value(lib: &str, existing: Option<&str>) -> OsString {
    let entries: Vec<&str> = existing.unwrap_or("").split([' ', ':']).filter(|s| !s.is_empty() && *s != lib).collect();
    let (first, rest): (Vec<&str>, Vec<&str>) = entries.into_iter().partition(|e| is_sanitizer(e));
    let mut all = first;
    all.push(lib);
    all.extend(rest);
    all.join(":").into()
}

/// FNV-1a of the target path: a link name that stays the same from run to run for one library.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// This user's folder for links, made when missing: `$XDG_RUNTIME_DIR/flashlog`, else `<temp dir>/flashlog-<uid>`;
/// Err when neither can be made or is safe to use.
fn link_folder() -> Result<PathBuf, String> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|d| d.is_absolute());
    let candidates = runtime.map(|d| d.join("flashlog")).into_iter();
    let mut last = String::new();
    for dir in candidates.chain([std::env::temp_dir().join(format!("flashlog-{uid}"))]) {
        match safe_folder(&dir, uid) {
            Ok(()) => return Ok(dir),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Makes `dir` (mode 0700) when missing; Err unless it is a real folder of `uid`'s that no one else can write,
/// and ld.so can be told a path in it.
fn safe_folder(dir: &Path, uid: u32) -> Result<(), String> {
    if needs_link(&dir.to_string_lossy()) {
        return Err(format!("{} has a space or colon too", dir.display()));
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.file_type().is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o022 != 0 {
        return Err(format!("{} is not a folder of this user's that only it can write", dir.display()));
    }
    Ok(())
}

/// A path without spaces or colons that names `lib`: `lib` itself when it has none, else this user's link to
/// it (made or reused, see the module's comment).
pub fn loadable_path(lib: &Path) -> Result<PathBuf, String> {
    let text = lib.to_string_lossy();
    if !needs_link(&text) {
        return Ok(lib.to_path_buf());
    }
    let why = |e: String| format!("the library's path has a space or colon ({text}), and no link to it: {e}");
    let dir = link_folder().map_err(why)?;
    let link = dir.join(format!("libflashlog-{:016x}.so", fnv1a(text.as_bytes())));
    if std::fs::read_link(&link).is_ok_and(|t| t == lib) {
        return Ok(link);
    }
    let tmp = dir.join(format!(".libflashlog-{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(lib, &tmp).map_err(|e| why(format!("cannot create {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        why(format!("cannot create {}: {e}", link.display()))
    })?;
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizers_by_file_name() {
        for s in [
            "/usr/lib/gcc/x86_64-linux-gnu/12/libasan.so",
            "libasan.so.8",
            "/x/libtsan.so.2",
            "libubsan.so.1",
            "libhwasan.so",
            "/l/libclang_rt.asan-x86_64.so",
            "libclang_rt.msan-x86_64.so",
        ] {
            assert!(is_sanitizer(s), "{s}");
        }
        for s in ["/usr/lib/libasanity.so", "/opt/libasan/libfoo.so", "libasan.a", "libflashlog.so", "libmsan"] {
            assert!(!is_sanitizer(s), "{s}");
        }
    }

    #[test]
    fn sanitizers_first_then_the_library() {
        let lib = "/opt/flashlog/lib/libflashlog.so";
        assert_eq!(value(lib, None), lib);
        assert_eq!(value(lib, Some("/a.so /b.so")), OsString::from(format!("{lib}:/a.so:/b.so")));
        assert_eq!(value(lib, Some(&format!("{lib}:/a.so"))), OsString::from(format!("{lib}:/a.so")));
        assert_eq!(value(lib, Some("libasan.so")), OsString::from(format!("libasan.so:{lib}")));
        assert_eq!(
            value(lib, Some("/a.so:/u/libasan.so.8 /b.so:libubsan.so.1")),
            OsString::from(format!("/u/libasan.so.8:libubsan.so.1:{lib}:/a.so:/b.so"))
        );
    }

    #[test]
    fn paths_ld_so_would_split() {
        assert!(needs_link("/home/u/ML projects/venv/lib/libflashlog.so"));
        assert!(needs_link("/a:b/libflashlog.so"));
        assert!(!needs_link("/opt/flashlog/lib/libflashlog.so"));
        assert_eq!(loadable_path(Path::new("/opt/x.so")).unwrap(), Path::new("/opt/x.so"));
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
