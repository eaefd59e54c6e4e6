//! Which call a record belongs to, when threads interleave records.
//!
//! Every logged call gets a per-process call number (1, 2, ... in the order calls start; a forked child counts
//! from 1 again) and the kernel id of its thread (`gettid`, cached per thread). As long as one thread only has
//! ever logged in the process, records keep exactly the shape FlashInfer's logger gives them. From the moment a
//! second thread logs, both records of every detailed call carry a correlation line
//! (`[call <name> #<number> thread <tid>]`, see `record::call`), so a reader pairs each outputs record with its
//! own inputs record whatever came between. The decision is made per record, before it is built: a check of
//! "did another thread write between my two records" cannot be exact without a lock around the write, so the
//! line is carried whenever interleaving is possible at all. Records written by the first thread before the
//! second one appeared carry no line; they are the only uncorrelated records of the process, so a reader can
//! still pair them (they all come from one thread). `FLASHLOG_CORRELATE=1` turns the line on from the first
//! call, one thread or many, for the microsecond time it carries (`record::call`).
//!
//! Atomics and one thread-local `Cell` without a destructor: no lock, no allocation.

use crate::os::sys;
use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Bits of [`CALLS`] that hold the count; the process id sits above them, so a forked child (another pid)
/// starts its own count without a fork handler.
const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// `pid << COUNT_BITS | calls started so far in that process`.
static CALLS: AtomicU64 = AtomicU64::new(0);
/// `pid << 32 | tid` of the first thread that logged in process `pid` (0: none yet).
static FIRST_THREAD: AtomicU64 = AtomicU64::new(0);
/// The process id in which a second thread has logged (0: none).
static MULTI_THREAD_PID: AtomicI32 = AtomicI32::new(0);

thread_local! {
    /// `pid << 32 | tid` of this thread, 0 until first asked; the pid part tells a stale value after fork.
    static SELF: Cell<u64> = const { Cell::new(0) };
}

/// Who made a call: its per-process number and its thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallTag {
    /// 1 for the first call logged in the process.
    pub number: u64,
    /// The kernel thread id (`gettid`), as `ps -L`, `gdb` and `py-spy` show it.
    pub thread: u32,
    /// Whether the records of this call carry the correlation line.
    pub correlated: bool,
}

impl CallTag {
    /// Whether the outputs record carries the line: when the inputs record did, or when a second thread has
    /// logged since (its records may come between this call's two records).
    pub fn outputs_correlated(&self) -> bool {
        self.correlated || MULTI_THREAD_PID.load(Ordering::Relaxed) == crate::os::process::pid()
    }
}

fn pack(pid: i32, tid: u32) -> u64 {
    ((pid as u32 as u64) << 32) | tid as u64
}

/// This thread's `pid << 32 | tid`, asking the kernel once per thread (and once more after a fork).
fn this_thread(pid: i32) -> u64 {
    SELF.with(|cell| {
        let cached = cell.get();
        if cached != 0 && (cached >> 32) as u32 == pid as u32 {
            return cached;
        }
        let me = pack(pid, sys::kernel_thread_id() as u32);
        cell.set(me);
        me
    })
}

/// The next call number of process `pid` in `calls` (the process-wide [`CALLS`] outside unit tests).
fn next_number(calls: &AtomicU64, pid: i32) -> u64 {
    let tag = (pid as u32 as u64) << COUNT_BITS;
    let mut current = calls.load(Ordering::Relaxed);
    loop {
        let next =
            if current & !COUNT_MASK == tag && current & COUNT_MASK != COUNT_MASK { current + 1 } else { tag | 1 };
        match calls.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next & COUNT_MASK,
            Err(seen) => current = seen,
        }
    }
}

/// Whether more than one thread has logged in this process, counting `me` (which is about to log).
fn several_threads(pid: i32, me: u64) -> bool {
    if MULTI_THREAD_PID.load(Ordering::Relaxed) == pid {
        return true;
    }
    let mut first = FIRST_THREAD.load(Ordering::Acquire);
    loop {
        if first == me {
            return false;
        }
        if (first >> 32) as u32 == pid as u32 {
            // Another thread of this process logged first: from now on every record is correlated. Set before
            // this thread builds its first record, so no second thread ever writes an uncorrelated record.
            MULTI_THREAD_PID.store(pid, Ordering::Relaxed);
            return true;
        }
        // Nobody yet in this process (0, or the parent's thread before a fork): claim it.
        match FIRST_THREAD.compare_exchange(first, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return false,
            Err(seen) => first = seen,
        }
    }
}

/// Starts a logged call: numbers it and says whether its records carry the correlation line (a second thread
/// has logged, `FLASHLOG_CORRELATE=1`, or the destination is shared by the processes of a job; the threads are
/// counted either way).
pub fn begin_call() -> CallTag {
    let pid = crate::os::process::pid();
    let me = this_thread(pid);
    let config = crate::state::config();
    let correlated = several_threads(pid, me) || config.correlate || config.shared_by_ranks;
    CallTag { number: next_number(&CALLS, pid), thread: me as u32, correlated }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_grow_and_threads_turn_correlation_on() {
        let a = begin_call();
        let b = begin_call();
        assert!(b.number > a.number);
        assert_eq!(a.thread, b.thread);
        assert_eq!(a.thread, sys::kernel_thread_id() as u32);
        // Unit tests run on several threads, so whether this one was first is not known here; a new thread is
        // at best the second one, so it always correlates, and so does everyone after it.
        let other = std::thread::spawn(begin_call).join().unwrap();
        assert!(other.correlated && other.thread != a.thread);
        assert!(begin_call().correlated && a.outputs_correlated());
    }

    #[test]
    fn counts_restart_for_another_pid() {
        let calls = AtomicU64::new(0);
        assert_eq!(next_number(&calls, 4321), 1);
        assert_eq!(next_number(&calls, 4321), 2);
        assert_eq!(next_number(&calls, 4322), 1);
        assert_eq!(next_number(&calls, 4322), 2);
    }
}
