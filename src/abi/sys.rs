//! Thin wrappers over the few system calls the shim makes for itself: `errno`, `write(2)`, `open(2)`, the
//! process id and the local time. Each keeps the host's view of the process unchanged.

use std::ffi::CStr;

/// Saves `errno` on creation and restores it on drop, so the host sees `errno` exactly as the real function
/// (or its own code) left it, whatever the shim did in between.
pub struct ErrnoGuard(i32);

impl ErrnoGuard {
    /// Captures the current `errno`.
    pub fn save() -> Self {
        ErrnoGuard(errno())
    }
    /// The value that will be restored.
    pub fn saved(&self) -> i32 {
        self.0
    }
    /// Replaces the value to restore (used after the real function ran: its `errno` is what the host sees).
    pub fn capture_now(&mut self) {
        self.0 = errno();
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

/// The calling thread's `errno`.
pub fn errno() -> i32 {
    // SAFETY: `__errno_location` always returns a valid pointer to the thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno`.
pub fn set_errno(value: i32) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value }
}

/// Writes all of `buf` to `fd` with as few `write(2)` calls as the kernel allows (one for a regular file in
/// append mode, whatever the size), retrying on `EINTR`. Errors are dropped: logging never stops the host.
pub fn write_all(fd: i32, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

/// Opens `path` for appending (`O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC`, mode 0644), returning the file
/// descriptor or the `errno` text.
pub fn open_append(path: &CStr) -> Result<i32, String> {
    // SAFETY: `path` is NUL-terminated.
    let fd =
        unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(errno()).to_string());
    }
    Ok(move_fd_high(fd))
}

/// Moves a descriptor of ours above the numbers a host usually uses (it may close and reuse the low ones).
fn move_fd_high(fd: i32) -> i32 {
    // SAFETY: plain fcntl/close on a descriptor we own.
    unsafe {
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 700);
        if high >= 0 {
            libc::close(fd);
            return high;
        }
    }
    fd
}

/// Closes a descriptor the shim opened.
pub fn close(fd: i32) {
    // SAFETY: closing a descriptor we own.
    unsafe { libc::close(fd) };
}

static PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The process id, cached (glibc's `getpid` is a system call each time); [`forget_pid`] runs in a forked
/// child.
pub fn pid() -> i32 {
    use std::sync::atomic::Ordering;
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    PID.store(pid, Ordering::Relaxed);
    pid
}

/// Drops the cached process id (fork handler, child side).
pub fn forget_pid() {
    PID.store(0, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the process runs with AT_SECURE (setuid/setgid): then environment-named files are never opened.
pub fn is_secure_execution() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Wall-clock seconds since the epoch (coarse clock: the shim prints whole seconds).
pub fn now_seconds() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    ts.tv_sec
}

/// Broken-down local time of `secs`: (year, month 1-12, day, hour, minute, second).
pub fn local_time(secs: i64) -> (i32, u32, u32, u32, u32, u32) {
    // SAFETY: `tm` is a valid out-parameter; localtime_r is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t: libc::time_t = secs;
    unsafe { libc::localtime_r(&t, &mut tm) };
    (
        tm.tm_year + 1900,
        (tm.tm_mon + 1) as u32,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
    )
}

/// The value of environment variable `name`, read with libc's `getenv` (works before Rust's runtime is set
/// up, e.g. when a host library calls `dlsym` from its constructor before ours ran).
pub fn getenv(name: &CStr) -> Option<String> {
    // SAFETY: getenv returns null or a NUL-terminated string owned by the environment.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated, valid for the duration of this copy.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// The process's short command name (`/proc/self/comm`).
pub fn command_name() -> String {
    std::fs::read_to_string("/proc/self/comm").map(|s| s.trim_end().to_string()).unwrap_or_default()
}

/// Registers fork handlers (once per process); `child` runs in the child right after `fork`.
pub fn at_fork_child(child: extern "C" fn()) {
    // SAFETY: registering a handler that only stores to atomics.
    unsafe { libc::pthread_atfork(None, None, Some(child)) };
}

/// The calling thread's kernel thread id (`gettid`), as `ps -L` and debuggers show it.
pub fn thread_id() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}
