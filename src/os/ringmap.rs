//! The ring file of the flight recorder as the operating system sees it: created under a temporary name at its
//! full size with `posix_fallocate` (so a full disk or a file size limit is found here, at creation, and never
//! later as a `SIGBUS` on a page the file system cannot back), mapped shared, then renamed into place. Also the
//! only code that touches the mapping's memory: 64-bit words as atomics and copies of record bytes.

use super::sys::errno;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// A shared mapping of a whole ring file, alive until [`Mapping::unmap`] (only a forked child unmaps the
/// mapping it inherited; a process keeps its own to the end).
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every concurrent access to it goes through atomics or through
// byte ranges that one writer reserved for itself.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

/// The mapping this process writes (none at first), published for every writer, and the path of the last ring
/// opened, kept (a forked child recognises its parent's file by it) after a child forgot the mapping.
pub struct Published {
    base: AtomicPtr<u8>,
    len: AtomicUsize,
    /// A leaked `String` (one per ring opened, never freed) or null.
    path: AtomicPtr<String>,
}

impl Published {
    /// Nothing published.
    pub const fn new() -> Published {
        Published {
            base: AtomicPtr::new(std::ptr::null_mut()),
            len: AtomicUsize::new(0),
            path: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Publishes `mapping`, the ring made at `path`: writers use it from now on.
    pub fn set(&self, mapping: Mapping, path: &str) {
        self.len.store(mapping.len, Ordering::Release);
        self.base.store(mapping.base, Ordering::Release);
        self.path.store(Box::into_raw(Box::new(path.to_string())), Ordering::Release);
    }

    /// The published mapping, if any.
    pub fn get(&self) -> Option<Mapping> {
        let base = self.base.load(Ordering::Acquire);
        (!base.is_null()).then(|| Mapping { base, len: self.len.load(Ordering::Acquire) })
    }

    /// Withdraws the published mapping (a forked child's, before it unmaps it); the path stays.
    pub fn forget(&self) -> Option<Mapping> {
        let mapping = self.get()?;
        self.base.store(std::ptr::null_mut(), Ordering::Release);
        self.len.store(0, Ordering::Release);
        Some(mapping)
    }

    /// The path of the last ring published in this process or, in a forked child, its parent.
    pub fn path(&self) -> Option<&'static str> {
        let p = self.path.load(Ordering::Acquire);
        // SAFETY: `path` holds null or a leaked `String` that is never freed.
        (!p.is_null()).then(|| unsafe { &*p }.as_str())
    }
}

impl Default for Published {
    fn default() -> Published {
        Published::new()
    }
}

fn error_text(e: i32) -> String {
    super::sys::os_error_text(e)
}

/// Where [`Mapping::create`] placed a new ring.
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    /// At the path asked for.
    AtPath,
    /// At `path` (the path asked for, `.` and this process's id) because a running process `writer` writes the
    /// ring at the path asked for.
    Beside {
        /// Where this process's ring is.
        path: String,
        /// The process writing the ring at the path asked for.
        writer: u64,
    },
}

/// What a path holds, for placing a new ring there.
#[derive(Debug, PartialEq, Eq)]
enum Occupant {
    Nothing,
    EmptyFile,
    /// A ring whose writer is a running process other than this one.
    LiveRing(u64),
    /// A ring of an earlier run (its writer ended, or it is this process's id from before an `exec`).
    OldRing,
    Other,
}

impl Mapping {
    /// Creates the ring file `path` of `total` bytes whose first bytes are `header`, mapped shared. The file is
    /// made whole under `<path>.<pid>.tmp` first, then placed:
    /// - at `path` when it is free or holds an empty file;
    /// - at `path`, the ring there moved to `<path>.prev`, when that ring is an earlier run's (the previous
    ///   run's records are kept once);
    /// - at `<path>.<pid>` when the ring at `path` is written by another running process (several processes
    ///   given one name, e.g. ranks of one job without `%r`): each keeps its records;
    /// - nowhere (an error) when `path` holds anything else, which is left alone.
    ///
    /// A ring is a file that starts with the same 8 bytes as `header` (the format's magic, which this layer does
    /// not know otherwise); `writer_of` reads a ring's first bytes and returns the process that writes it, if it
    /// can tell. Two processes placing rings at one name at the same moment both end up placed (the placing
    /// renames are atomic and checked). Missing folders are created. Err: the reason, for one stderr line.
    pub fn create(
        path: &str,
        total: u64,
        header: &[u8],
        writer_of: fn(&[u8]) -> Option<u64>,
    ) -> Result<(Mapping, Placed), String> {
        let tmp = format!("{path}.{}.tmp", super::process::pid());
        let fd = open_new(&tmp)?;
        let made = Self::fill_and_map(fd, total, header);
        // SAFETY: closing the descriptor this function opened; the mapping stays valid without it.
        unsafe { libc::close(fd) };
        let mapping = match made {
            Ok(m) => m,
            Err(e) => {
                super::fsio::unlink(&tmp);
                return Err(e);
            }
        };
        let rules = Rules { magic: header.get(..8).unwrap_or(header), writer_of };
        match place(&tmp, path, &rules, true) {
            Ok(placed) => Ok((mapping, placed)),
            Err(e) => {
                super::fsio::unlink(&tmp);
                mapping.unmap();
                Err(e)
            }
        }
    }

    fn fill_and_map(fd: i32, total: u64, header: &[u8]) -> Result<Mapping, String> {
        let reserved = {
            // A file size limit makes the kernel raise SIGXFSZ at the reservation: block it and take it back.
            let _guard = super::signals::file_size_limited().then(super::signals::FsizeGuard::new);
            // SAFETY: plain call on our own descriptor; it returns the error number instead of setting errno.
            let rc = unsafe { libc::posix_fallocate(fd, 0, total as libc::off_t) };
            if rc == libc::EFBIG {
                super::sys::set_errno(libc::EFBIG);
                super::signals::note_write_error();
            }
            rc
        };
        if reserved != 0 {
            return Err(format!("cannot reserve {total} bytes for it: {}", error_text(reserved)));
        }
        // SAFETY: a new shared mapping of the whole file, which holds `total` allocated bytes.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!("cannot map it: {}", error_text(errno())));
        }
        let mapping = Mapping { base: base.cast(), len: total as usize };
        mapping.copy_in(0, header);
        Ok(mapping)
    }

    /// The 64-bit word at `offset` (8-aligned, inside the mapping), as an atomic.
    pub fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len, "ring word out of range");
        // SAFETY: in range and aligned (the mapping is page-aligned); the memory lives as long as the mapping,
        // which is never unmapped while this process writes records to it.
        unsafe { &*(self.base.add(offset) as *const AtomicU64) }
    }

    /// Copies `bytes` to `offset`: a range the caller reserved for itself (no other writer touches it).
    pub fn copy_in(&self, offset: usize, bytes: &[u8]) {
        assert!(offset.checked_add(bytes.len()).is_some_and(|end| end <= self.len), "ring copy out of range");
        // SAFETY: in range; the source is a separate buffer of ours.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(offset), bytes.len()) };
    }

    /// Unmaps it: only for a mapping nothing writes to any more (a forked child's inherited one).
    pub fn unmap(self) {
        // SAFETY: the caller guarantees no reference into the mapping is used after this.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// Opens `path` as a new file (`O_EXCL`), creating its missing folders first when the open says one is missing.
fn open_new(path: &str) -> Result<i32, String> {
    let c = std::ffi::CString::new(path).map_err(|_| "path contains a NUL byte".to_string())?;
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    for attempt in 0..2 {
        // SAFETY: NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), flags, 0o644) };
        if fd >= 0 {
            return Ok(fd);
        }
        let e = errno();
        if e == libc::EEXIST && attempt == 0 {
            // A temporary file of an earlier process with the same id: it is ours to replace.
            super::fsio::unlink(path);
            continue;
        }
        if e == libc::ENOENT && attempt == 0 {
            if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Err(err) = std::fs::create_dir_all(dir) {
                    return Err(format!("cannot create folder '{}': {err}", dir.display()));
                }
                continue;
            }
        }
        return Err(error_text(e));
    }
    Err(error_text(libc::EEXIST))
}

/// How to recognise a ring and its writer.
struct Rules<'a> {
    magic: &'a [u8],
    writer_of: fn(&[u8]) -> Option<u64>,
}

/// What `path` holds, judged by `rules`.
fn occupant(path: &str, rules: &Rules) -> Occupant {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Occupant::Nothing };
    if meta.is_file() && meta.len() == 0 {
        return Occupant::EmptyFile;
    }
    let mut start = [0u8; 64];
    // Non-blocking and not through a link: a FIFO put there since the look above must not stall the host.
    let open = || {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(path)
    };
    let read = meta.is_file() && open().and_then(|mut f| std::io::Read::read_exact(&mut f, &mut start)).is_ok();
    if !read || rules.magic.is_empty() || !start.starts_with(rules.magic) {
        return Occupant::Other;
    }
    match (rules.writer_of)(&start) {
        Some(pid) if pid != super::process::pid() as u64 && super::process::is_running(pid) => Occupant::LiveRing(pid),
        _ => Occupant::OldRing,
    }
}

/// Moves the finished ring `tmp` to `path` by the rules of [`Mapping::create`]; `beside` allows placing it at
/// `<path>.<pid>` when a running process writes the ring at `path`. Err: nothing was placed (`tmp` is still ours).
fn place(tmp: &str, path: &str, rules: &Rules, beside: bool) -> Result<Placed, String> {
    use super::fsio::{exchange, rename, rename_noreplace, Renamed};
    const NOT_OURS: &str = "it exists and is not a flashlog ring (left as it is)";
    // Each attempt that fails found another process's rename between looking and placing: look again.
    for _attempt in 0..8 {
        match occupant(path, rules) {
            Occupant::Nothing => match rename_noreplace(tmp, path)? {
                Renamed::Done => return Ok(Placed::AtPath),
                Renamed::Changed => continue,
                Renamed::Unsupported => return rename(tmp, path).map(|()| Placed::AtPath),
            },
            Occupant::EmptyFile => return rename(tmp, path).map(|()| Placed::AtPath),
            Occupant::LiveRing(writer) if beside => {
                let mine = format!("{path}.{}", super::process::pid());
                // Without `beside`, a placement is at the path it is given or nowhere.
                place(tmp, &mine, rules, false)?;
                return Ok(Placed::Beside { path: mine, writer });
            }
            Occupant::LiveRing(writer) => {
                return Err(format!("a ring written by running process {writer} is already there"));
            }
            Occupant::OldRing => {
                let prev = format!("{path}.prev");
                match exchange(tmp, path)? {
                    Renamed::Done => {}
                    Renamed::Changed => continue,
                    Renamed::Unsupported => {
                        rename(path, &prev).map_err(|e| format!("cannot move the earlier ring aside: {e}"))?;
                        return rename(tmp, path).map(|()| Placed::AtPath);
                    }
                }
                // Ours is at `path`; `tmp` names what was there, normally the old ring just looked at. Another
                // process may have placed its live ring (or anything else) there in between: give it back.
                match occupant(tmp, rules) {
                    Occupant::OldRing | Occupant::EmptyFile => {
                        // The old ring left under the temporary name if it cannot move: never deleted.
                        let _ = rename(tmp, &prev);
                        return Ok(Placed::AtPath);
                    }
                    _ => {
                        exchange(tmp, path)?;
                        continue;
                    }
                }
            }
            Occupant::Other => return Err(NOT_OURS.to_string()),
        }
    }
    Err("other processes kept replacing the file there".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &[u8] = b"TESTRING";

    /// A "ring" for these tests: the magic, then the writer's pid as 8 little-endian bytes, padded to 64 bytes.
    fn ring_bytes(pid: u64) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&pid.to_le_bytes());
        v.resize(64, 0);
        v
    }

    fn writer_of(start: &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(start.get(8..16)?.try_into().ok()?))
    }

    fn folder(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("flashlog-ringmap-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.to_str().unwrap().to_string()
    }

    fn place_new(dir: &str, path: &str) -> Result<Placed, String> {
        let tmp = format!("{dir}/new.tmp");
        std::fs::write(&tmp, ring_bytes(std::process::id() as u64)).unwrap();
        place(&tmp, path, &Rules { magic: MAGIC, writer_of }, true)
    }

    fn is_ours(path: &str) -> bool {
        std::fs::read(path).unwrap() == ring_bytes(std::process::id() as u64)
    }

    #[test]
    fn a_new_ring_takes_a_free_path_or_an_empty_file() {
        let dir = folder("free");
        let path = format!("{dir}/r.ring");
        assert_eq!(place_new(&dir, &path), Ok(Placed::AtPath));
        assert!(is_ours(&path));
        std::fs::write(&path, b"").unwrap();
        assert_eq!(place_new(&dir, &path), Ok(Placed::AtPath));
        assert!(is_ours(&path) && !std::path::Path::new(&format!("{path}.prev")).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_earlier_runs_ring_moves_to_prev() {
        let dir = folder("prev");
        let path = format!("{dir}/r.ring");
        // No process has id 0x7fff_fff0 (above the kernel's limit of 2^22), so that ring's writer has ended.
        let old = ring_bytes(0x7fff_fff0);
        std::fs::write(&path, &old).unwrap();
        std::fs::write(format!("{path}.prev"), b"older").unwrap();
        assert_eq!(place_new(&dir, &path), Ok(Placed::AtPath));
        assert!(is_ours(&path));
        assert_eq!(std::fs::read(format!("{path}.prev")).unwrap(), old);
        assert!(!std::path::Path::new(&format!("{dir}/new.tmp")).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_running_processs_ring_is_left_alone_and_ours_goes_beside_it() {
        let dir = folder("beside");
        let path = format!("{dir}/r.ring");
        // The parent (the test runner's parent) is running.
        let parent = std::os::unix::process::parent_id() as u64;
        let live = ring_bytes(parent);
        std::fs::write(&path, &live).unwrap();
        let mine = format!("{path}.{}", std::process::id());
        assert_eq!(place_new(&dir, &path), Ok(Placed::Beside { path: mine.clone(), writer: parent }));
        assert_eq!(std::fs::read(&path).unwrap(), live);
        assert!(is_ours(&mine));
        // Again (as after an exec in the same process): the ring beside is this id's own earlier one.
        assert_eq!(place_new(&dir, &path), Ok(Placed::Beside { path: mine.clone(), writer: parent }));
        assert!(is_ours(&mine) && is_ours(&format!("{mine}.prev")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn anything_else_is_left_alone() {
        let dir = folder("other");
        let path = format!("{dir}/notes.txt");
        std::fs::write(&path, b"mine\n").unwrap();
        assert_eq!(place_new(&dir, &path), Err("it exists and is not a flashlog ring (left as it is)".to_string()));
        assert_eq!(std::fs::read(&path).unwrap(), b"mine\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
