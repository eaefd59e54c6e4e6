//! Writes and signal guards: the shim's own writes never raise a signal in the host. A record write blocks
//! `SIGPIPE` (pipes) or uses `MSG_NOSIGNAL` (sockets) and, under a file size limit, `SIGXFSZ`, taking back
//! only the signal it caused itself.

use super::process;
use super::sys::{errno, set_errno, write_loop, WriteKind};

/// Writes all of `buf` to `fd` (a stderr line of the shim's own), never raising `SIGPIPE` (see
/// [`write_record_bytes`]). Errors are dropped: logging never stops the host.
pub fn write_all(fd: i32, buf: &[u8]) -> bool {
    write_record_bytes(fd, buf, WriteKind::Pipe).is_ok()
}

/// Writes one whole record to `fd` the way `kind` requires; `Err(errno)` on failure (`EPIPE`: the reader
/// went away). For a pipe, `SIGPIPE` is blocked on this thread around the write, and the `SIGPIPE` the
/// kernel raised for a failed write is consumed before the mask is restored, unless one was pending before
/// (then it is the host's, and it stays). For a socket, `send(MSG_NOSIGNAL)` raises none.
pub fn write_record_bytes(fd: i32, buf: &[u8], kind: WriteKind) -> Result<(), i32> {
    match kind {
        WriteKind::Plain => {
            // A file size limit (RLIMIT_FSIZE) makes the kernel raise SIGXFSZ at a write past it: the shim's
            // writes then run with that signal blocked and take back the one they caused.
            let _guard = file_size_limited().then(FsizeGuard::new);
            write_loop(buf, |b| {
                // SAFETY: `b` is a valid slice for its length.
                unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) }
            })
            .inspect_err(|_| note_write_error())
        }
        WriteKind::Socket => write_loop(buf, |b| {
            // SAFETY: as above; MSG_NOSIGNAL only changes how a broken connection is reported.
            unsafe { libc::send(fd, b.as_ptr().cast(), b.len(), libc::MSG_NOSIGNAL) }
        }),
        // SAFETY: sigset operations on local sets; pthread_sigmask changes only this thread's mask, and the
        // old mask is restored before returning.
        WriteKind::Pipe => unsafe {
            let mut pipe_set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pipe_set);
            libc::sigaddset(&mut pipe_set, libc::SIGPIPE);
            libc::pthread_sigmask(libc::SIG_BLOCK, &pipe_set, &mut old);
            // Only when the host itself blocks SIGPIPE can one be pending already (it would have been
            // delivered otherwise); then look, so as never to consume the host's.
            let mut pending_before = false;
            if libc::sigismember(&old, libc::SIGPIPE) == 1 {
                let mut pending: libc::sigset_t = std::mem::zeroed();
                libc::sigpending(&mut pending);
                pending_before = libc::sigismember(&pending, libc::SIGPIPE) == 1;
            }
            let result = write_loop(buf, |b| libc::write(fd, b.as_ptr().cast(), b.len()));
            if result == Err(libc::EPIPE) && !pending_before {
                let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
                libc::sigtimedwait(&pipe_set, std::ptr::null_mut(), &zero);
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            result
        },
    }
}

/// Whether this process has a finite `RLIMIT_FSIZE` (asked once per process; unlimited almost always, and
/// then records are written with no signal-mask calls around them).
pub fn file_size_limited() -> bool {
    use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
    static ASKED_BY: AtomicI32 = AtomicI32::new(0);
    static LIMITED: AtomicU8 = AtomicU8::new(0);
    let me = process::pid();
    if ASKED_BY.load(Ordering::Acquire) != me {
        // Asked before the owner is stored, so another thread never reads a stale answer.
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: valid out-parameter.
        let finite =
            unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) } == 0 && lim.rlim_cur != libc::RLIM_INFINITY;
        LIMITED.store(finite as u8, Ordering::Relaxed);
        ASKED_BY.store(me, Ordering::Release);
    }
    LIMITED.load(Ordering::Relaxed) == 1
}

thread_local! {
    /// Set when a write of ours failed with `EFBIG` (the kernel then raised `SIGXFSZ` at this thread).
    static SAW_EFBIG: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that a write of the shim's failed (for [`FsizeGuard`]: `EFBIG` means the kernel raised `SIGXFSZ`).
pub fn note_write_error() {
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
        set_errno(saved);
    }
}
