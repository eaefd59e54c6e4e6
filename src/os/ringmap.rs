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

impl Mapping {
    /// Creates the ring file `path` of `total` bytes whose first bytes are `header`, mapped shared. The file is
    /// made whole under `<path>.<pid>.tmp` first; then an existing ring at `path` is renamed to `<path>.prev`
    /// (the previous run's records are kept once), an empty file is replaced, and anything else is left alone
    /// (an error): a ring is a file that starts with the same 8 bytes as `header` (the format's magic, which
    /// this layer does not know otherwise). Missing folders are created. Err: the reason, for one stderr line.
    pub fn create(path: &str, total: u64, header: &[u8]) -> Result<Mapping, String> {
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
        let placed = make_room(path, header.get(..8).unwrap_or(header)).and_then(|()| super::fsio::rename(&tmp, path));
        if let Err(e) = placed {
            super::fsio::unlink(&tmp);
            mapping.unmap();
            return Err(e);
        }
        Ok(mapping)
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

/// Makes `path` free for the new ring: an earlier ring (a file that starts with `magic`) moves to
/// `<path>.prev`, an empty file or nothing is fine, anything else is not ours to replace.
fn make_room(path: &str, magic: &[u8]) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) => m,
    };
    if meta.is_file() && meta.len() == 0 {
        return Ok(());
    }
    let mut start = vec![0u8; magic.len()];
    let is_ring = meta.is_file()
        && !magic.is_empty()
        && std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut start)).is_ok()
        && start == magic;
    if !is_ring {
        return Err("it exists and is not a flashlog ring (left as it is)".to_string());
    }
    super::fsio::rename(path, &format!("{path}.prev")).map_err(|e| format!("cannot move the earlier ring aside: {e}"))
}
