//! The file operations of level-10 dumps: folders, files written under a temporary name and renamed, the
//! millisecond local time of folder names, and the `SIGXFSZ` guard. Every failure comes back as the `errno`
//! text; nothing here can stop the host.

use super::sys::{describe_fd, errno, FileId};
use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The `errno` text of the last failed call.
fn last_error() -> String {
    std::io::Error::from_raw_os_error(errno()).to_string()
}

fn c_path(path: &str) -> Result<CString, String> {
    CString::new(path).map_err(|_| "path contains a NUL byte".to_string())
}

/// The working folder when the shim first resolved a path of its own files (see [`anchored`]); set once.
static ANCHOR: AtomicPtr<String> = AtomicPtr::new(std::ptr::null_mut());

/// `path` made absolute against the working folder the process had when the shim first resolved one of its
/// paths (the first record's log file, the first dump), so a later `chdir` by the host changes nothing: dumps
/// keep going to the same folder, a log file reopened after the host closed it is the same file. An absolute
/// `path` comes back unchanged. Err when the working folder cannot be known (it was removed).
pub fn anchored(path: &str) -> Result<String, String> {
    if path.starts_with('/') {
        return Ok(path.to_string());
    }
    let base = anchor()?;
    let rel = path.trim_start_matches("./");
    Ok(match rel {
        "" | "." => base.to_string(),
        _ if base.ends_with('/') => format!("{base}{rel}"),
        _ => format!("{base}/{rel}"),
    })
}

fn anchor() -> Result<&'static str, String> {
    let known = ANCHOR.load(Ordering::Acquire);
    if !known.is_null() {
        // SAFETY: a published anchor is a leaked `String`, never freed or changed.
        return Ok(unsafe { &*known });
    }
    let cwd = std::env::current_dir().map_err(|e| format!("cannot tell the current folder: {e}"))?;
    let cwd = cwd.into_os_string().into_string().map_err(|_| "the current folder is not UTF-8".to_string())?;
    let fresh = Box::into_raw(Box::new(cwd));
    match ANCHOR.compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: `fresh` is published for the rest of the process.
        Ok(_) => Ok(unsafe { &*fresh }),
        Err(first) => {
            // SAFETY: `fresh` was never published; `first` is a published anchor (as above).
            drop(unsafe { Box::from_raw(fresh) });
            // SAFETY: as above: a published anchor is never freed or changed.
            Ok(unsafe { &*first })
        }
    }
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

/// A file of ours being written: closed on drop. It remembers the identity of what it opened and the path:
/// before each write (and before closing) it checks that its descriptor number still names that file, and
/// when the host closed the number (and perhaps reused it for a file of its own, as a host that closes every
/// descriptor and opens its own files does), it opens its file again by path instead of writing to, or
/// closing, the host's descriptor.
pub struct File {
    /// The descriptor; -1 once it was found to be the host's and could not be replaced.
    fd: i32,
    id: Option<FileId>,
    path: String,
}

impl File {
    fn open_as(path: &str, flags: i32) -> Result<File, String> {
        let c = c_path(path)?;
        // SAFETY: NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), flags, 0o644) };
        if fd < 0 {
            return Err(last_error());
        }
        let id = describe_fd(fd).map(|(id, _)| id);
        Ok(File { fd, id, path: path.to_string() })
    }

    /// Creates `path` for writing (`O_EXCL`: a temporary name is never shared).
    pub fn create_new(path: &str) -> Result<File, String> {
        File::open_as(path, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC)
    }

    /// Opens `path` for appending, creating it (`O_APPEND`: each write lands whole at the end).
    pub fn append(path: &str) -> Result<File, String> {
        File::open_as(path, libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC)
    }

    /// Whether the descriptor still names the file this `File` opened (one `fstat`).
    fn still_own(&self) -> bool {
        self.fd >= 0 && self.id.is_some() && describe_fd(self.fd).map(|(id, _)| id) == self.id
    }

    /// Makes sure the descriptor is still this file's: when the host closed (or took) the number, the file is
    /// opened again by path, appending (every file here is written in order, so its end is where the next
    /// byte goes), and must be the same file; the old number is left alone. Says so once per process.
    fn ensure_own(&mut self) -> Result<(), String> {
        if self.still_own() {
            return Ok(());
        }
        if self.id.is_none() {
            // Never identified (fstat failed at open): nothing to compare with; write as before.
            return if self.fd >= 0 { Ok(()) } else { Err(self.lost("closed by the program")) };
        }
        self.fd = -1;
        let c = c_path(&self.path)?;
        // SAFETY: NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(self.lost(&format!("closed by the program and not reopened: {}", last_error())));
        }
        if describe_fd(fd).map(|(id, _)| id) != self.id {
            // SAFETY: closing the descriptor just opened here.
            unsafe { libc::close(fd) };
            return Err(self.lost("closed by the program and replaced by another file"));
        }
        self.fd = fd;
        static REPORTED: super::process::ProcessStamp = super::process::ProcessStamp::new();
        if REPORTED.claim() {
            let line =
                format!("flashlog: the dump file '{}' was closed or replaced by the program; reopened it\n", self.path);
            super::signals::write_all(2, line.as_bytes());
        }
        Ok(())
    }

    fn lost(&self, why: &str) -> String {
        format!("{} was {why}", self.path)
    }

    /// Writes all of `buf` (one `write(2)` for a regular file unless the disk fills), retrying on `EINTR`.
    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<(), String> {
        self.ensure_own()?;
        let mut reopened = false;
        while !buf.is_empty() {
            // SAFETY: `buf` is valid for its length; the descriptor is ours (checked above).
            let n = unsafe { libc::write(self.fd, buf.as_ptr().cast(), buf.len()) };
            if n < 0 {
                match errno() {
                    libc::EINTR => continue,
                    // Closed by the host between the check and the write: once more, reopened.
                    libc::EBADF if !reopened => {
                        reopened = true;
                        self.ensure_own()?;
                        continue;
                    }
                    _ => {}
                }
                super::signals::note_write_error();
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
        self.ensure_own()?;
        let mut done = 0usize;
        let mut reopened = false;
        while done < buf.len() {
            // SAFETY: the slice is valid for its length; the descriptor is ours (checked above).
            let n = unsafe { libc::write(self.fd, buf[done..].as_ptr().cast(), buf.len() - done) };
            if n > 0 {
                done += n as usize;
                continue;
            }
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            if n < 0 && errno() == libc::EBADF && done == 0 && !reopened {
                reopened = true;
                self.ensure_own()?;
                continue;
            }
            super::signals::note_write_error();
            let error = if n == 0 { "write returned 0".to_string() } else { last_error() };
            if done > 0 {
                // SAFETY: `st` is a valid out-parameter; shrinking our own file by what this call added.
                unsafe {
                    let mut st: libc::stat = std::mem::zeroed();
                    if libc::fstat(self.fd, &mut st) == 0 && st.st_size as u64 >= done as u64 {
                        libc::ftruncate(self.fd, st.st_size - done as libc::off_t);
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
        let mut reopened = false;
        while done < len {
            self.ensure_own().map_err(DirectError::Write)?;
            let chunk = (len - done).min(4 << 20);
            // SAFETY: the kernel only reads [addr + done, + chunk) and checks it (EFAULT when unmapped); the
            // host's memory is never dereferenced in user space. The descriptor is ours (checked above).
            let n = unsafe { libc::write(self.fd, (addr + done) as *const libc::c_void, chunk) };
            if n > 0 {
                done += n as usize;
                continue;
            }
            super::signals::note_write_error();
            match errno() {
                libc::EINTR if n < 0 => continue,
                // Closed by the host between the check and the write: once more, reopened.
                libc::EBADF if n < 0 && !reopened => {
                    reopened = true;
                    continue;
                }
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
        // Only a descriptor that still names this file is closed: a number the host took is the host's.
        if self.still_own() || (self.id.is_none() && self.fd >= 0) {
            // SAFETY: closing the descriptor we opened.
            unsafe { libc::close(self.fd) };
        }
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

/// How a rename with a condition ended ([`rename_noreplace`], [`exchange`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renamed {
    /// Done.
    Done,
    /// The names did not hold what the call needs (nothing was changed): `rename_noreplace`'s target exists,
    /// or one of `exchange`'s files is gone. Another process renamed something there meanwhile.
    Changed,
    /// The kernel or the file system does not offer this kind of rename (nothing was changed).
    Unsupported,
}

/// `renameat2(2)` with `flags`, made as a system call: glibc added its wrapper in 2.28, and the library loads
/// into glibc 2.17.
fn renameat2(from: &str, to: &str, flags: libc::c_uint) -> Result<Renamed, String> {
    let (a, b) = (c_path(from)?, c_path(to)?);
    // SAFETY: NUL-terminated paths; the flags are the kernel's.
    let rc = unsafe { libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), flags) };
    if rc == 0 {
        return Ok(Renamed::Done);
    }
    match errno() {
        libc::EEXIST => Ok(Renamed::Changed),
        libc::ENOENT if flags == libc::RENAME_EXCHANGE => Ok(Renamed::Changed),
        // ENOSYS: a kernel before 3.15; EINVAL: a file system that does not take the flag; EPERM: also a seccomp
        // policy that predates the call (a real permission problem fails the plain rename the caller falls back to
        // just the same).
        libc::ENOSYS | libc::EINVAL | libc::EPERM => Ok(Renamed::Unsupported),
        _ => Err(last_error()),
    }
}

/// Renames `from` to `to` unless `to` exists, in one step (`RENAME_NOREPLACE`): two processes placing a file at
/// the same name cannot both succeed.
pub fn rename_noreplace(from: &str, to: &str) -> Result<Renamed, String> {
    renameat2(from, to, libc::RENAME_NOREPLACE)
}

/// Swaps the files at `a` and `b` in one step (`RENAME_EXCHANGE`; both must exist).
pub fn exchange(a: &str, b: &str) -> Result<Renamed, String> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
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

/// Removes the empty folder `path`, ignoring errors.
pub fn rmdir(path: &str) {
    if let Ok(c) = c_path(path) {
        // SAFETY: NUL-terminated path.
        unsafe { libc::rmdir(c.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("flashlog-fsio-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir.to_str().unwrap().to_string()
    }

    #[test]
    fn a_number_the_host_took_is_neither_written_nor_closed() {
        let (ours, theirs) = (temp("ours"), temp("theirs"));
        let mut f = File::append(&ours).unwrap();
        f.append_whole(b"one\n").unwrap();
        // The host puts its own file under the number (dup2 closes ours and reuses it at once).
        // SAFETY: opening, duplicating and closing descriptors of this test.
        let host_fd = unsafe {
            let c = CString::new(theirs.as_str()).unwrap();
            let fd = libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o644);
            assert!(fd >= 0);
            assert_eq!(libc::dup2(fd, f.fd), f.fd);
            libc::close(fd);
            f.fd
        };
        f.append_whole(b"two\n").unwrap();
        assert_ne!(f.fd, host_fd);
        drop(f);
        // The host's descriptor is still open (not closed by the drop) and its file holds only its own bytes.
        // SAFETY: writing and closing the host's descriptor of this test.
        unsafe {
            assert_eq!(libc::write(host_fd, b"host\n".as_ptr().cast(), 5), 5);
            assert_eq!(libc::close(host_fd), 0);
        }
        assert_eq!(std::fs::read_to_string(&ours).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "host\n");
        let _ = (std::fs::remove_file(&ours), std::fs::remove_file(&theirs));
    }

    #[test]
    fn a_replaced_file_is_not_written() {
        let path = temp("replaced");
        let mut f = File::create_new(&path).unwrap();
        f.write_all(b"abc").unwrap();
        // SAFETY: closing this test's descriptor behind the File's back.
        unsafe { libc::close(f.fd) };
        // Moved away (kept, so its inode number cannot be reused) and another file made under the name.
        std::fs::rename(&path, format!("{path}.old")).unwrap();
        std::fs::write(&path, b"other").unwrap();
        let err = f.write_all(b"def").unwrap_err();
        assert!(err.ends_with("was closed by the program and replaced by another file"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"other");
        assert_eq!(std::fs::read(format!("{path}.old")).unwrap(), b"abc");
        drop(f);
        let _ = (std::fs::remove_file(&path), std::fs::remove_file(format!("{path}.old")));
    }

    #[test]
    fn anchored_paths() {
        assert_eq!(anchored("/abs/dir").unwrap(), "/abs/dir");
        let base = anchored(".").unwrap();
        assert!(base.starts_with('/'));
        assert_eq!(anchored("./x/y").unwrap(), format!("{}/x/y", base.trim_end_matches('/')));
    }
}
