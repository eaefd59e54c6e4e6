//! Thin wrappers over the few system calls the shim makes for itself: `errno`, `write(2)` without
//! `SIGPIPE`, `open(2)` that never blocks, descriptor identity, cancellation state, the local time. Each
//! keeps the host's view of the process unchanged.

use std::ffi::CStr;

/// Saves `errno` on creation and restores it on drop, so the host sees `errno` exactly as the real function
/// (or its own code) left it, whatever the shim did in between.
pub struct ErrnoGuard(i32);

impl ErrnoGuard {
    /// Captures the current `errno`.
    pub fn save() -> Self {
        ErrnoGuard(errno())
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

/// How records must be written to a descriptor so that the host never gets a signal it did not cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// A regular file, a terminal, a device: plain `write(2)` (no `SIGPIPE` is possible).
    Plain,
    /// A pipe or FIFO: `write(2)` with `SIGPIPE` blocked on the writing thread (see [`write_record_bytes`]).
    Pipe,
    /// A socket: `send(2)` with `MSG_NOSIGNAL`.
    Socket,
}

/// What the shim remembers of a descriptor it owns, to know later that the number still names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// The identity and kind of the object behind `fd`, or `None` when `fd` is not open. The plain `fstat`
/// system call (glibc's `fstat` is `fstatat` with an empty path, measurably slower).
pub fn describe_fd(fd: i32) -> Option<(FileId, WriteKind)> {
    // SAFETY: `st` is a valid out-parameter; fstat fails harmlessly (EBADF) on a closed descriptor.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st as *mut libc::stat) } != 0 {
        return None;
    }
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => WriteKind::Pipe,
        libc::S_IFSOCK => WriteKind::Socket,
        _ => WriteKind::Plain,
    };
    Some((FileId { dev: st.st_dev, ino: st.st_ino }, kind))
}

/// Marks the open file description of a log file the shim opened itself with `O_NOATIME` (no effect on a
/// file only ever written, and invisible to the host, which shares no description with it), and returns
/// the status flags it then has: [`status_flags`] of the same number giving back exactly these flags is a
/// cheap test that the number still names the shim's file (one `fcntl`, about half an `fstat`; a file of
/// the host's would have to be opened write-only, appending, with `O_NOATIME`, to look the same). `None`
/// where the kernel refuses the flag (a file owned by another user): then identity is checked with `fstat`.
pub fn mark_own_file(fd: i32) -> Option<i32> {
    // SAFETY: plain fcntl on a descriptor the shim opened; the description is not shared with the host.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NOATIME) != 0 {
            return None;
        }
        let marked = libc::fcntl(fd, libc::F_GETFL);
        (marked >= 0 && marked & libc::O_NOATIME != 0).then_some(marked)
    }
}

/// The file status flags of the description behind `fd` (`F_GETFL`), or `None` when `fd` is not open.
pub fn status_flags(fd: i32) -> Option<i32> {
    // SAFETY: plain fcntl; fails harmlessly (EBADF) on a closed descriptor.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    (fl >= 0).then_some(fl)
}

/// Why a log destination could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// A folder of the path is missing (the caller may create it and try again); the `errno` text.
    Missing(String),
    /// Anything else, as text for the stderr line.
    Other(String),
}

/// Opens `path` for appending (`O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC`, mode 0644), never blocking:
/// with `O_NONBLOCK`, opening a FIFO that has no reader fails (`ENXIO`) instead of waiting for one. The flag
/// is cleared once the file is open, so writes keep their usual whole-record behaviour. Returns the
/// descriptor, numbered high.
pub fn open_append(path: &CStr) -> Result<i32, OpenError> {
    let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), flags, 0o644) };
    if fd < 0 {
        let e = errno();
        return Err(match e {
            libc::ENOENT => OpenError::Missing(os_error_text(e)),
            libc::ENXIO if is_fifo(path) => OpenError::Other("FIFO has no reader".to_string()),
            _ => OpenError::Other(os_error_text(e)),
        });
    }
    // SAFETY: plain fcntl on the descriptor just opened.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    Ok(move_fd_above(fd, HIGH_FD))
}

fn is_fifo(path: &CStr) -> bool {
    // SAFETY: `st` is a valid out-parameter and `path` is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::stat(path.as_ptr(), &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO }
}

/// The text of an `errno` value, as Rust's `io::Error` prints it (`No such file or directory (os error 2)`).
pub fn os_error_text(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

/// A close-on-exec copy of `fd`, numbered high: the shim's own reference to the host's stdout, which stays
/// valid when the host closes descriptor 1 and reuses the number.
pub fn dup_high(fd: i32) -> Result<i32, String> {
    // SAFETY: plain fcntl; fails with EBADF when `fd` is closed.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    if high >= 0 {
        return Ok(high);
    }
    // SAFETY: as above (the descriptor limit may be below HIGH_FD).
    let any = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if any >= 0 {
        Ok(any)
    } else {
        Err(os_error_text(errno()))
    }
}

/// The first number the shim gives its own descriptors: above the ones a host usually uses.
const HIGH_FD: i32 = 700;

/// Moves a descriptor of ours to a number at or above `floor`, above the numbers a host usually uses (it may
/// close and reuse the low ones); keeps it where it is if that fails.
pub fn move_fd_above(fd: i32, floor: i32) -> i32 {
    // SAFETY: plain fcntl/close on a descriptor we own.
    unsafe {
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor);
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

/// Calls `write` until all of `buf` is written, retrying on `EINTR`; `Err(errno)` on failure.
pub fn write_loop(mut buf: &[u8], mut write: impl FnMut(&[u8]) -> isize) -> Result<(), i32> {
    while !buf.is_empty() {
        let n = write(buf);
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

thread_local! {
    /// The calling thread's stack as `pthread_getattr_np` reported it: (lowest usable address, highest
    /// address), or one of [`STACK_UNASKED`], [`STACK_ASKING`], [`STACK_UNAVAILABLE`].
    static STACK_BOUNDS: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new(STACK_UNASKED) };
}
/// Not asked yet on this thread.
const STACK_UNASKED: (usize, usize) = (0, 0);
/// Being asked: a signal handler that interrupted the question must not ask (the answer takes a lock).
const STACK_ASKING: (usize, usize) = (1, 0);
/// `pthread_getattr_np` failed (the main thread's answer reads `/proc/self/maps`).
const STACK_UNAVAILABLE: (usize, usize) = (2, 0);

/// How much stack is left below the caller on this thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackRoom {
    /// This many bytes down to the thread's lowest usable address.
    Bytes(usize),
    /// The thread's stack could not be described (no `/proc`): the caller carries on as if it were large.
    NotKnown,
    /// The caller runs on a stack the thread's attributes do not describe (a fiber's, a signal stack), or in
    /// a signal handler that interrupted the first question on this thread.
    Elsewhere,
}

/// Bytes of stack left below the caller on this thread (see [`StackRoom`]). Asks `pthread_getattr_np` once
/// per thread: it allocates, and takes the thread's own lock.
pub fn stack_room() -> StackRoom {
    let marker = 0u8;
    let here = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
    let bounds = STACK_BOUNDS.with(|b| {
        if b.get() == STACK_UNASKED {
            b.set(STACK_ASKING);
            b.set(thread_stack_bounds().unwrap_or(STACK_UNAVAILABLE));
        }
        b.get()
    });
    match bounds {
        STACK_UNAVAILABLE => StackRoom::NotKnown,
        (low, high) if low <= here && here < high => StackRoom::Bytes(here - low),
        _ => StackRoom::Elsewhere,
    }
}

fn thread_stack_bounds() -> Option<(usize, usize)> {
    // SAFETY: `attr` is initialised by pthread_getattr_np before it is read and destroyed once; the out
    // parameters of pthread_attr_getstack are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (rc == 0 && !addr.is_null()).then(|| (addr as usize, addr as usize + size))
    }
}

/// An identifier of the calling thread, without a system call (`pthread_self`), for "is it me?" tests.
pub fn thread_id() -> usize {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as usize }
}

extern "C-unwind" {
    // C-unwind: re-enabling cancellation acts at once on a pending asynchronous cancellation (a host that set
    // PTHREAD_CANCEL_ASYNCHRONOUS), which unwinds out of this call.
    fn pthread_setcancelstate(state: i32, old: *mut i32) -> i32;
}
const PTHREAD_CANCEL_DISABLE: i32 = 1;

/// Disables cancellation of the calling thread and returns the previous state for
/// [`restore_cancel_state`]: the shim's own `write` and `open` are cancellation points, and a thread must
/// never be cancelled in the middle of the shim's work (a record half-done, a state word left claimed, an
/// unwind through frames that cannot be unwound). Not a cancellation point itself; no system call.
pub fn disable_cancel() -> i32 {
    let mut old = 0;
    // SAFETY: valid out-parameter; glibc's pthread_setcancelstate only updates the thread's own state.
    unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
    old
}

/// Restores the cancellation state saved by [`disable_cancel`] (a cancellation requested meanwhile is acted
/// on at the host's next cancellation point, as without the shim).
pub fn restore_cancel_state(old: i32) {
    let mut ignored = 0;
    // SAFETY: as above.
    unsafe { pthread_setcancelstate(old, &mut ignored) };
}

/// Whether the process runs with AT_SECURE (setuid/setgid): then environment-named files are never opened.
pub fn is_secure_execution() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Wall-clock time since the epoch as (seconds, microseconds within the second), from one `CLOCK_REALTIME`
/// reading (vDSO, no system call on the usual clock sources). Not the coarse clock: records order calls within
/// a millisecond by the microseconds, and the coarse clock only moves once per scheduler tick.
pub fn now_micros() -> (i64, u32) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, (ts.tv_nsec / 1000).clamp(0, 999_999) as u32)
}

/// Broken-down local time of `secs`: (year, month 1-12, day, hour, minute, second).
pub fn local_time(secs: i64) -> (i32, u32, u32, u32, u32, u32) {
    // SAFETY: `tm` is a valid out-parameter; localtime_r is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t: libc::time_t = secs;
    // SAFETY: as above.
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

/// [`getenv`] by a Rust string name: the one lookup the configuration, the sink and the system information
/// use (None for an unset variable, or a name with a NUL).
pub fn env(name: &str) -> Option<String> {
    getenv(&std::ffi::CString::new(name).ok()?)
}

/// The process's short command name (`/proc/self/comm`).
pub fn command_name() -> String {
    std::fs::read_to_string("/proc/self/comm").map(|s| s.trim_end().to_string()).unwrap_or_default()
}

/// The calling thread's kernel thread id (`gettid`), as `ps -L` and debuggers show it. By system call, not
/// glibc's `gettid()` (2.30): the wheel's binaries may import nothing newer than glibc 2.17.
pub fn kernel_thread_id() -> i32 {
    // SAFETY: the gettid system call takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_room_is_measured_on_a_thread_and_not_on_another_stack() {
        let room = std::thread::Builder::new().stack_size(256 << 10).spawn(stack_room).unwrap().join().unwrap();
        match room {
            StackRoom::Bytes(n) => assert!(n > 128 << 10 && n <= 260 << 10, "{n}"),
            other => panic!("{other:?}"),
        }
        // A pretend fiber: bounds that do not hold the caller.
        let elsewhere = std::thread::spawn(|| {
            STACK_BOUNDS.with(|b| b.set((4096, 8192)));
            stack_room()
        });
        assert_eq!(elsewhere.join().unwrap(), StackRoom::Elsewhere);
        let unavailable = std::thread::spawn(|| {
            STACK_BOUNDS.with(|b| b.set(STACK_UNAVAILABLE));
            stack_room()
        });
        assert_eq!(unavailable.join().unwrap(), StackRoom::NotKnown);
    }
}
