//! The pipe set: pipes for the cheaper kernel-checked copy of host memory: `writev` from the host's addresses
//! into a pipe of ours (the kernel checks every source byte and answers `EFAULT` for what is not mapped),
//! then `readv` back into our buffers. See `mem.rs` for when this route is taken.
//!
//! Each pipe is ONE descriptor opened read-write (`/proc/self/fd/N` of a fresh pipe reopened `O_RDWR`), so
//! the pipe always has a reader: a write never raises `SIGPIPE`, even if the host closed descriptors behind
//! our back. Where `/proc` is not mounted, the two ends of an ordinary pipe are used (both checked).
//!
//! Hazards and their checks:
//! - the host may close our descriptor and reuse its number for a file of its own: before every use the
//!   descriptor is checked with `fstat` (a FIFO whose inode is the pipe's), so host memory is never written
//!   into a host file; a descriptor that fails the check is abandoned, never closed (it is not ours now);
//! - a forked child shares the parent's pipes: the set remembers the process that made its pipes (a
//!   [`ProcessStamp`]) and another process closes the inherited ones (after the same check) and makes its own;
//! - checkout is lock-free (a state byte per slot); a thread that finds every slot busy uses another route;
//! - the `fstat` is paid once per slot and section of shim work ([`begin_section`] / [`end_section`], the
//!   outermost `state::ShimSection` of a call's phase): a checkout by the thread that verified the slot in the
//!   same section skips it. A section never spans the host's real call, so the descriptor is trusted for at
//!   most the few microseconds of one phase's reads, the same kind of window as the one between any `fstat`
//!   and the `writev` after it (a host thread that closes and reuses our number inside that window could
//!   receive host bytes; outside a section every checkout checks).

use super::process::ProcessStamp;
use super::{slots, sys};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// Pipes in the set: enough for as many threads logging at the same instant.
const SLOTS: usize = 16;
/// Our descriptors are moved at or above this number, out of the range hosts usually use.
const FD_FLOOR: i32 = 800;

const EMPTY: u8 = 0;
const FREE: u8 = 1;
const TAKEN: u8 = 2;

static STATE: [AtomicU8; SLOTS] = [const { AtomicU8::new(EMPTY) }; SLOTS];
/// `(read fd << 32) | write fd` of each slot (the same fd twice for a read-write pipe).
static FDS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// The pipe's inode, for the `fstat` check.
static INO: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// The process whose pipes the set holds.
static OWNER: ProcessStamp = ProcessStamp::new();
/// Set while one thread replaces the pipes inherited from a parent.
static RESETTING: AtomicBool = AtomicBool::new(false);
/// Set when a pipe cannot be made at all (descriptor limit, no pipes): the route is not offered again.
static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// The section token of the last thread that verified each slot's descriptor with `fstat` (0: none).
static VERIFIED: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Source of section tokens: unique for the process's lifetime, never 0 or [`NOT_DRAWN`].
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(2);

/// In [`SECTION`]: inside a section that has not drawn its token yet.
const NOT_DRAWN: u64 = 1;

thread_local! {
    /// This thread's section: 0 outside one, [`NOT_DRAWN`] inside one that has not verified a pipe yet (a token
    /// is drawn only when one is needed, so a section without reads costs no atomic operation), else its token.
    static SECTION: Cell<u64> = const { Cell::new(0) };
}

/// Opens a section of shim work on this thread (called by the outermost `state::ShimSection`): checkouts
/// in it verify each slot's descriptor once.
pub fn begin_section() {
    SECTION.with(|t| t.set(NOT_DRAWN));
}

/// Closes the section: later checkouts verify again.
pub fn end_section() {
    SECTION.with(|t| t.set(0));
}

/// The current section's token (drawn on first use), or 0 outside a section.
fn section_token() -> u64 {
    SECTION.with(|t| {
        if t.get() == NOT_DRAWN {
            t.set(NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

/// Capacity of a pipe (Linux default, 16 pages): the most one `writev` can leave in it.
pub const CAPACITY: usize = 64 * 1024;

/// A checked-out pipe, verified to still be ours; it goes back to the set when dropped.
#[derive(Debug)]
pub struct Checkout {
    slot: usize,
    /// Descriptor to read from.
    pub r: i32,
    /// Descriptor to write to.
    pub w: i32,
    poisoned: bool,
}

impl Checkout {
    /// Marks the pipe unusable (it holds bytes we could not drain, or failed in an unexpected way): it is
    /// closed instead of going back to the set.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if self.poisoned {
            close_pair(self.r, self.w);
            STATE[self.slot].store(EMPTY, Ordering::Release);
        } else {
            STATE[self.slot].store(FREE, Ordering::Release);
        }
    }
}

/// Whether the pipe route can be offered at all.
pub fn available() -> bool {
    !UNAVAILABLE.load(Ordering::Relaxed)
}

/// Why [`checkout`] found no pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoPipe {
    /// Every pipe is taken by a thread reading right now, or another thread is taking the set over after a fork:
    /// one comes back within microseconds.
    Busy,
    /// No pipe can be made (descriptor limit, no pipes here): asking again at once will not help.
    Failed,
}

/// A verified pipe of this process, or why there is none. `count` is told how many system calls the checkout
/// made.
pub fn checkout(count: &mut dyn FnMut(u64)) -> Result<Checkout, NoPipe> {
    if !available() {
        return Err(NoPipe::Failed);
    }
    if !OWNER.is_this_process() && !adopt(count) {
        return Err(NoPipe::Busy);
    }
    let token = section_token();
    while let Some((slot, _)) = slots::claim(&STATE, 0, |s| s == FREE, TAKEN) {
        let (r, w) = unpack(FDS[slot].load(Ordering::Relaxed));
        if token != 0 && VERIFIED[slot].load(Ordering::Relaxed) == token {
            // Verified by this thread in this section (see the module's comment).
            return Ok(Checkout { slot, r, w, poisoned: false });
        }
        let ino = INO[slot].load(Ordering::Relaxed);
        count(if r == w { 1 } else { 2 });
        if is_our_pipe(w, ino) && (r == w || is_our_pipe(r, ino)) {
            VERIFIED[slot].store(token, Ordering::Relaxed);
            return Ok(Checkout { slot, r, w, poisoned: false });
        }
        // Not ours any more (the host closed it, maybe reused the number): abandon without closing.
        STATE[slot].store(EMPTY, Ordering::Release);
    }
    if let Some((slot, _)) = slots::claim(&STATE, 0, |s| s == EMPTY, TAKEN) {
        return match make_pipe(count) {
            Some((r, w, ino)) => {
                FDS[slot].store(pack(r, w), Ordering::Relaxed);
                INO[slot].store(ino, Ordering::Relaxed);
                VERIFIED[slot].store(token, Ordering::Relaxed);
                Ok(Checkout { slot, r, w, poisoned: false })
            }
            None => {
                STATE[slot].store(EMPTY, Ordering::Release);
                Err(NoPipe::Failed)
            }
        };
    }
    Err(NoPipe::Busy)
}

/// First use in this process (or first after a fork): closes the pipes inherited from a parent, which it
/// shares with that parent, and takes the set over for this process. False while another thread does it.
fn adopt(count: &mut dyn FnMut(u64)) -> bool {
    if RESETTING.swap(true, Ordering::Acquire) {
        return false;
    }
    if !OWNER.is_this_process() {
        for slot in 0..SLOTS {
            if STATE[slot].swap(EMPTY, Ordering::AcqRel) == EMPTY {
                continue;
            }
            let (r, w) = unpack(FDS[slot].load(Ordering::Relaxed));
            let ino = INO[slot].load(Ordering::Relaxed);
            count(if r == w { 1 } else { 2 });
            if is_our_pipe(w, ino) && (r == w || is_our_pipe(r, ino)) {
                close_pair(r, w);
            }
        }
        OWNER.mark();
    }
    RESETTING.store(false, Ordering::Release);
    true
}

fn pack(r: i32, w: i32) -> u64 {
    ((r as u32 as u64) << 32) | w as u32 as u64
}

fn unpack(v: u64) -> (i32, i32) {
    ((v >> 32) as u32 as i32, v as u32 as i32)
}

fn close_pair(r: i32, w: i32) {
    sys::close(w);
    if r != w {
        sys::close(r);
    }
}

/// Whether `fd` is still the FIFO with inode `ino`.
fn is_our_pipe(fd: i32, ino: u64) -> bool {
    sys::describe_fd(fd).is_some_and(|(id, kind)| kind == sys::WriteKind::Pipe && id.ino == ino)
}

/// Makes a non-blocking, close-on-exec pipe above [`FD_FLOOR`]: (read fd, write fd, inode).
fn make_pipe(count: &mut dyn FnMut(u64)) -> Option<(i32, i32, u64)> {
    let mut fds = [0i32; 2];
    count(1);
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        if matches!(sys::errno(), libc::ENOSYS | libc::EPERM) {
            UNAVAILABLE.store(true, Ordering::Relaxed);
        }
        return None;
    }
    let (mut r, mut w) = (sys::move_fd_above(fds[0], FD_FLOOR), sys::move_fd_above(fds[1], FD_FLOOR));
    // One read-write descriptor: the pipe then always has a reader (no SIGPIPE, whatever the host closes).
    let mut path = *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0\0";
    let mut n = w as u32;
    let mut digits = [0u8; 10];
    let mut k = 0;
    loop {
        digits[k] = b'0' + (n % 10) as u8;
        k += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..k].iter().rev().enumerate() {
        path[14 + i] = *d;
    }
    count(1);
    // SAFETY: `path` is NUL-terminated (the buffer has room for 10 digits and a NUL).
    let rw = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if rw >= 0 {
        close_pair(r, w);
        r = sys::move_fd_above(rw, FD_FLOOR);
        w = r;
    }
    count(1);
    let Some((id, _)) = sys::describe_fd(w) else {
        close_pair(r, w);
        return None;
    };
    Some((r, w, id.ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    // These tests close, reuse and re-check the process's pipes, which other tests running at the same time would
    // otherwise take in between (and find closed): they run in a fork child, which starts its own pipe set.
    use crate::os::process::in_fork_child;

    #[test]
    fn closed_pipes_are_noticed() {
        in_fork_child(|| {
            let mut n = 0u64;
            let a = checkout(&mut |k| n += k).expect("pipe");
            assert!(a.w >= FD_FLOOR);
            assert!(is_our_pipe(a.w, INO[a.slot].load(Ordering::Relaxed)));
            // A descriptor closed behind our back fails the check (and is abandoned at the next checkout).
            close_pair(a.r, a.w);
            assert!(!is_our_pipe(a.w, INO[a.slot].load(Ordering::Relaxed)));
            drop(a);
            let b = checkout(&mut |k| n += k).expect("pipe");
            assert!(is_our_pipe(b.w, INO[b.slot].load(Ordering::Relaxed)));
            assert!(n >= 2);
        });
    }

    #[test]
    fn a_section_checks_each_pipe_once_and_the_next_section_checks_again() {
        in_fork_child(|| {
            let checks = |n: &mut u64| {
                let start = *n;
                let c = checkout(&mut |k| *n += k).expect("pipe");
                (c, *n - start)
            };
            let mut n = 0u64;
            begin_section();
            let (a, first) = checks(&mut n);
            let slot = a.slot;
            drop(a);
            let (b, second) = checks(&mut n);
            assert!(first >= 1, "the first checkout of a section checks (or makes) the pipe");
            assert_eq!((b.slot, second), (slot, 0), "a second checkout of the slot in the same section skips the fstat");
            drop(b);
            end_section();
            // Outside a section every checkout checks.
            let (c, outside) = checks(&mut n);
            assert_eq!((c.slot, outside), (slot, 1));
            // A descriptor the host closed and reused between sections is noticed in the next one.
            let (r, w) = (c.r, c.w);
            close_pair(r, w);
            // SAFETY: a file of the "host" at the number we just closed (dup2 onto a fresh descriptor).
            let host = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            // SAFETY: as above.
            assert_eq!(unsafe { libc::dup2(host, w) }, w);
            drop(c);
            begin_section();
            let d = checkout(&mut |k| n += k).expect("pipe");
            assert_ne!(d.w, w, "the descriptor that is not ours any more is abandoned, never used");
            assert!(is_our_pipe(d.w, INO[d.slot].load(Ordering::Relaxed)));
            drop(d);
            end_section();
            sys::close(host);
            sys::close(w);
        });
    }
}
