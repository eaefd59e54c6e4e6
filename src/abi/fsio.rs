//! The file operations of level-10 dumps: folders, files written under a temporary name and renamed, the
//! millisecond local time of folder names, and the `SIGXFSZ` guard. Every failure comes back as the `errno`
//! text; nothing here can stop the host.

use super::sys::errno;
use std::ffi::CString;

/// The `errno` text of the last failed call.
fn last_error() -> String {
    std::io::Error::from_raw_os_error(errno()).to_string()
}

fn c_path(path: &str) -> Result<CString, String> {
    CString::new(path).map_err(|_| "path contains a NUL byte".to_string())
}

/// Creates `path` and every missing parent (mode 0755); an existing folder is fine.
pub fn mkdir_all(path: &str) -> Result<(), String> {
    let mut end = 0;
    while end < path.len() {
        end = path[end + 1..].find('/').map_or(path.len(), |i| i + end + 1);
        let part = &path[..end];
        if part.is_empty() {
            continue;
        }
        let c = c_path(part)?;
        // SAFETY: NUL-terminated path.
        if unsafe { libc::mkdir(c.as_ptr(), 0o755) } != 0 && errno() != libc::EEXIST {
            return Err(last_error());
        }
    }
    Ok(())
}

/// Creates the folder `path` (its parent exists); Err when it exists already or cannot be made.
pub fn mkdir_new(path: &str) -> Result<(), String> {
    let c = c_path(path)?;
    // SAFETY: NUL-terminated path.
    if unsafe { libc::mkdir(c.as_ptr(), 0o755) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// A file of ours being written: closed on drop.
pub struct File(i32);

impl File {
    /// Creates `path` for writing (`O_EXCL`: a temporary name is never shared).
    pub fn create_new(path: &str) -> Result<File, String> {
        let c = c_path(path)?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
        // SAFETY: NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), flags, 0o644) };
        if fd < 0 {
            return Err(last_error());
        }
        Ok(File(fd))
    }

    /// Opens `path` for appending, creating it (`O_APPEND`: each write lands whole at the end).
    pub fn append(path: &str) -> Result<File, String> {
        let c = c_path(path)?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC;
        // SAFETY: NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), flags, 0o644) };
        if fd < 0 {
            return Err(last_error());
        }
        Ok(File(fd))
    }

    /// Writes all of `buf` (one `write(2)` for a regular file unless the disk fills), retrying on `EINTR`.
    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<(), String> {
        while !buf.is_empty() {
            // SAFETY: `buf` is valid for its length; the descriptor is ours.
            let n = unsafe { libc::write(self.0, buf.as_ptr().cast(), buf.len()) };
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                note_error();
                return Err(last_error());
            }
            if n == 0 {
                return Err("write returned 0".to_string());
            }
            buf = &buf[n as usize..];
        }
        Ok(())
    }
}

impl File {
    /// Appends `buf` whole or not at all: when the write stops part way (full disk, file size limit), the part
    /// written is cut off again, so a JSON-lines file never ends in half a line. No extra system call when the
    /// write succeeds.
    pub fn append_whole(&mut self, buf: &[u8]) -> Result<(), String> {
        let mut done = 0usize;
        while done < buf.len() {
            // SAFETY: the slice is valid for its length; the descriptor is ours.
            let n = unsafe { libc::write(self.0, buf[done..].as_ptr().cast(), buf.len() - done) };
            if n > 0 {
                done += n as usize;
                continue;
            }
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            note_error();
            let error = if n == 0 { "write returned 0".to_string() } else { last_error() };
            if done > 0 {
                // SAFETY: `st` is a valid out-parameter; shrinking our own file by what this call added.
                unsafe {
                    let mut st: libc::stat = std::mem::zeroed();
                    if libc::fstat(self.0, &mut st) == 0 && st.st_size as u64 >= done as u64 {
                        libc::ftruncate(self.0, st.st_size - done as libc::off_t);
                    }
                }
            }
            return Err(error);
        }
        Ok(())
    }
}

/// Why [`File::write_from_host`] stopped.
pub enum DirectError {
    /// Part of the range is not readable memory (`EFAULT`): nothing of the host was touched.
    Unreadable,
    /// The write itself failed (full disk...): the `errno` text.
    Write(String),
}

impl File {
    /// Writes `len` bytes of this process's memory at `addr` straight to the file. The kernel reads the range
    /// and answers `EFAULT` for what is not mapped instead of faulting, so an invalid host pointer cannot
    /// crash the host; no copy goes through user space (a contiguous host tensor is dumped at the speed of a
    /// plain write).
    pub fn write_from_host(&mut self, addr: usize, len: usize) -> Result<(), DirectError> {
        if addr == 0 {
            return Err(DirectError::Unreadable);
        }
        let mut done = 0usize;
        while done < len {
            let chunk = (len - done).min(4 << 20);
            // SAFETY: the kernel only reads [addr + done, + chunk) and checks it (EFAULT when unmapped); the
            // host's memory is never dereferenced in user space.
            let n = unsafe { libc::write(self.0, (addr + done) as *const libc::c_void, chunk) };
            if n > 0 {
                done += n as usize;
                continue;
            }
            note_error();
            match errno() {
                libc::EINTR if n < 0 => continue,
                libc::EFAULT if n < 0 => return Err(DirectError::Unreadable),
                _ if n == 0 => return Err(DirectError::Write("write returned 0".to_string())),
                _ => return Err(DirectError::Write(last_error())),
            }
        }
        Ok(())
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor we opened.
        unsafe { libc::close(self.0) };
    }
}

/// Renames `from` to `to` (atomic within one file system).
pub fn rename(from: &str, to: &str) -> Result<(), String> {
    let (a, b) = (c_path(from)?, c_path(to)?);
    // SAFETY: NUL-terminated paths.
    if unsafe { libc::rename(a.as_ptr(), b.as_ptr()) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

/// Removes the file `path`, ignoring errors (a temporary file left after a failed write).
pub fn unlink(path: &str) {
    if let Ok(c) = c_path(path) {
        // SAFETY: NUL-terminated path.
        unsafe { libc::unlink(c.as_ptr()) };
    }
}

/// Local time now, with milliseconds: (year, month, day, hour, minute, second, millisecond).
pub fn local_time_millis() -> (i32, u32, u32, u32, u32, u32, u32) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    let (y, mo, d, h, mi, s) = super::sys::local_time(ts.tv_sec);
    (y, mo, d, h, mi, s, (ts.tv_nsec / 1_000_000) as u32)
}

thread_local! {
    /// Set when a write of ours failed with `EFBIG` (the kernel then raised `SIGXFSZ` at this thread).
    static SAW_EFBIG: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that a write of the shim's failed (for [`FsizeGuard`]: `EFBIG` means the kernel raised `SIGXFSZ`).
pub fn note_write_error() {
    note_error();
}

fn note_error() {
    if errno() == libc::EFBIG {
        SAW_EFBIG.with(|c| c.set(true));
    }
}

/// While alive, `SIGXFSZ` is blocked in this thread; a `SIGXFSZ` raised by the shim's own writes (a file
/// size limit, `RLIMIT_FSIZE`) is taken back on drop, so the host never dies of a signal it did not cause
/// (its own writes get `EFBIG` as before). When the host already blocks `SIGXFSZ` nothing is taken back.
/// Two system calls when no write failed.
pub struct FsizeGuard {
    old: libc::sigset_t,
}

impl FsizeGuard {
    /// Blocks `SIGXFSZ` in the calling thread.
    pub fn new() -> FsizeGuard {
        SAW_EFBIG.with(|c| c.set(false));
        // SAFETY: plain signal-mask calls on sets we own.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGXFSZ);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            FsizeGuard { old }
        }
    }
}

impl Default for FsizeGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FsizeGuard {
    fn drop(&mut self) {
        let saved = errno();
        // SAFETY: signal calls on sets we own; the zero timeout never waits.
        unsafe {
            if SAW_EFBIG.with(|c| c.get()) && libc::sigismember(&self.old, libc::SIGXFSZ) == 0 {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGXFSZ);
                let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
                while libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) == libc::SIGXFSZ {}
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
        super::sys::set_errno(saved);
    }
}

/// Removes the empty folder `path`, ignoring errors.
pub fn rmdir(path: &str) {
    if let Ok(c) = c_path(path) {
        // SAFETY: NUL-terminated path.
        unsafe { libc::rmdir(c.as_ptr()) };
    }
}
