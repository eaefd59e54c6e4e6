//! The one re-entrant claim of one-at-a-time work: a word that holds 0 or the thread that does the work
//! (opening the log destination, writing the system information, the new-process set-up, preparing the graph
//! statistics arena). The thread's own identity is the claim, so a signal handler that interrupts the holder
//! and wants the same work learns that it interrupted its own thread ([`Claimed::Reentered`]) instead of
//! waiting for itself forever. Other threads wait by yielding: the work is short and happens once per process
//! or per destination, never per call.
//!
//! A claim word must start at 0 in a forked child (a thread of the parent that held it does not exist
//! there): it lives in the page a fork wipes, its owner resets it in a new-process hook, or it is paired with
//! a [`ProcessStamp`] ([`ThreadClaim::forget_if_stale`]).

use super::process::ProcessStamp;

use std::sync::atomic::{AtomicUsize, Ordering};

/// A claim word: 0, or the [`crate::os::sys::thread_id`] of the thread doing the work.
#[repr(transparent)]
pub struct ThreadClaim(AtomicUsize);

/// The answer of [`ThreadClaim::try_claim`].
#[derive(Debug, PartialEq, Eq)]
pub enum Claimed {
    /// This thread holds the claim now and must [`ThreadClaim::release`] it.
    Mine,
    /// This very thread holds it: a signal handler that interrupted the work (it must not wait).
    Reentered,
    /// Another thread holds it.
    Busy,
}

impl ThreadClaim {
    /// An unclaimed word (usable in a `static` and in the zero-filled fork page).
    pub const fn new() -> Self {
        ThreadClaim(AtomicUsize::new(0))
    }

    /// Tries once to claim the word for the calling thread.
    pub fn try_claim(&self) -> Claimed {
        let me = super::sys::thread_id();
        match self.0.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Claimed::Mine,
            Err(holder) if holder == me => Claimed::Reentered,
            Err(_) => Claimed::Busy,
        }
    }

    /// Gives the claim up (by its holder).
    pub fn release(&self) {
        self.0.store(0, Ordering::Release);
    }

    /// Forgets a holder that does not exist in this process (in a new process, before other threads look).
    pub fn forget(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// Forgets a holder inherited from a parent process, the first time this process looks (`stamp` is the
    /// claim's own stamp, used for nothing else). Only a holder seen before the stamp was claimed is cleared,
    /// so a claim made meanwhile by a thread of this process is never lost.
    pub fn forget_if_stale(&self, stamp: &ProcessStamp) {
        if stamp.is_this_process() {
            return;
        }
        let seen = self.0.load(Ordering::Acquire);
        if stamp.claim() && seen != 0 {
            let _ = self.0.compare_exchange(seen, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Runs `work` unless `done` says it is done, in one thread at a time: a thread that finds another one
    /// at it waits until it is out, then looks at `done` again (and, if the work failed, tries it itself).
    /// True once `work` ran or was not needed; false to the thread that holds the claim (re-entered from a
    /// signal handler), which must go on without the work.
    pub fn run_once(&self, done: impl Fn() -> bool, work: impl FnOnce()) -> bool {
        let mut work = Some(work);
        loop {
            if done() {
                return true;
            }
            match self.try_claim() {
                Claimed::Mine => {
                    if !done() {
                        if let Some(work) = work.take() {
                            work();
                        }
                    }
                    self.release();
                    return true;
                }
                Claimed::Reentered => return false,
                Claimed::Busy => std::thread::yield_now(),
            }
        }
    }
}

impl Default for ThreadClaim {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn mine_then_reentered_then_busy_for_another_thread() {
        static WORD: ThreadClaim = ThreadClaim::new();
        assert_eq!(WORD.try_claim(), Claimed::Mine);
        assert_eq!(WORD.try_claim(), Claimed::Reentered, "the holder itself, as its signal handler would");
        assert_eq!(std::thread::spawn(|| WORD.try_claim()).join().unwrap(), Claimed::Busy);
        WORD.release();
        assert_eq!(std::thread::spawn(|| WORD.try_claim()).join().unwrap(), Claimed::Mine);
        WORD.forget();
        assert_eq!(WORD.try_claim(), Claimed::Mine);
        WORD.release();
    }

    #[test]
    fn run_once_runs_the_work_once_and_refuses_the_holder() {
        static WORD: ThreadClaim = ThreadClaim::new();
        static DONE: AtomicBool = AtomicBool::new(false);
        let done = || DONE.load(Ordering::Acquire);
        let mut runs = 0;
        let mut nested = None;
        assert!(WORD.run_once(done, || {
            runs += 1;
            // Re-entered while the work runs: refused at once, not waiting for itself.
            nested = Some(WORD.run_once(done, || unreachable!("a nested run must not work")));
            DONE.store(true, Ordering::Release);
        }));
        assert_eq!((runs, nested), (1, Some(false)));
        assert!(WORD.run_once(done, || unreachable!("done already")));
    }

    #[test]
    fn a_waiting_thread_finds_the_work_done() {
        static WORD: ThreadClaim = ThreadClaim::new();
        static DONE: AtomicBool = AtomicBool::new(false);
        assert_eq!(WORD.try_claim(), Claimed::Mine);
        let waiter = std::thread::spawn(|| WORD.run_once(|| DONE.load(Ordering::Acquire), || unreachable!()));
        DONE.store(true, Ordering::Release);
        WORD.release();
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn failed_work_is_tried_again_by_the_next_thread() {
        static WORD: ThreadClaim = ThreadClaim::new();
        static DONE: AtomicBool = AtomicBool::new(false);
        let done = || DONE.load(Ordering::Acquire);
        assert!(WORD.run_once(done, || {}), "ran, and failed");
        assert!(!done());
        assert!(std::thread::spawn(move || WORD.run_once(done, || DONE.store(true, Ordering::Release)))
            .join()
            .unwrap());
        assert!(done());
    }

    #[test]
    fn a_holder_left_by_the_parent_is_forgotten_in_a_fork_child() {
        static WORD: ThreadClaim = ThreadClaim::new();
        static STAMP: ProcessStamp = ProcessStamp::new();
        WORD.forget_if_stale(&STAMP);
        // Held by another thread, which the child will not have.
        assert_eq!(std::thread::spawn(|| WORD.try_claim()).join().unwrap(), Claimed::Mine);
        WORD.forget_if_stale(&STAMP);
        assert_eq!(WORD.try_claim(), Claimed::Busy, "this process's own holder is kept");
        crate::os::process::in_fork_child(|| {
            let busy_before = WORD.try_claim() == Claimed::Busy;
            WORD.forget_if_stale(&STAMP);
            let ok = busy_before && WORD.try_claim() == Claimed::Mine;
            assert!(ok, "the child claims afresh");
        });
        assert_eq!(WORD.try_claim(), Claimed::Busy, "the parent's holder is untouched");
    }
}
