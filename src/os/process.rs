//! What belongs to one process and must start fresh in a forked child, without fork handlers: a page
//! mapped with `MADV_WIPEONFORK`, which the kernel gives every child zero-filled, whatever made it (`fork`,
//! `_Fork`, `syscall(SYS_fork)`, none of which a shim can hook without exporting names). The page holds the
//! process id (the target of every fault-tolerant read), the set-up word that tells a child to reset the
//! sink, and the staging-buffer lock, whose zero means "unlocked": a child never inherits a lock held by a
//! thread it does not have. Where the kernel refuses `MADV_WIPEONFORK` (before Linux 4.14), a static page
//! is used instead and told apart by comparing the stored pid with `getpid()` (one system call per look),
//! which catches every kind of fork as well; no message is printed.

use super::thread_claim::ThreadClaim;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// The per-process words. All zero in a process that has not used the shim yet, and in every new child.
#[repr(C, align(64))]
pub struct ProcessPage {
    /// Set-up state of this process: [`SETUP_NEW`], [`SETUP_RUNNING`] or [`SETUP_READY`].
    pub setup: AtomicU32,
    /// The thread running the set-up (so that a signal handler on it never waits for itself).
    pub setup_owner: ThreadClaim,
    pid: AtomicI32,
    staging_lock: AtomicU32,
    staging_owner: AtomicUsize,
    /// This process's generation plus one (0: not assigned yet), see [`generation`].
    generation: AtomicUsize,
}

/// [`ProcessPage::setup`]: nothing done yet in this process.
pub const SETUP_NEW: u32 = 0;
/// [`ProcessPage::setup`]: one thread is resetting the per-process state.
pub const SETUP_RUNNING: u32 = 1;
/// [`ProcessPage::setup`]: the per-process state belongs to this process.
pub const SETUP_READY: u32 = 2;

const PAGE_BYTES: usize = 4096;
/// Tag in [`PAGE`]'s low bit: the page is the static one (no `MADV_WIPEONFORK`), checked against getpid.
const TAG_PID_CHECKED: usize = 1;

static PAGE: AtomicPtr<ProcessPage> = AtomicPtr::new(std::ptr::null_mut());
static STATIC_PAGE: ProcessPage = ProcessPage {
    setup: AtomicU32::new(0),
    setup_owner: ThreadClaim::new(),
    pid: AtomicI32::new(0),
    staging_lock: AtomicU32::new(0),
    staging_owner: AtomicUsize::new(0),
    generation: AtomicUsize::new(0),
};

/// This process's page. Allocation-free and lock-free; the first call maps it.
pub fn page() -> &'static ProcessPage {
    let mut tagged = PAGE.load(Ordering::Acquire) as usize;
    if tagged == 0 {
        tagged = create();
    }
    let page_ptr = (tagged & !TAG_PID_CHECKED) as *const ProcessPage;
    // SAFETY: PAGE holds either a page mapped once and never unmapped, or the static page.
    let page = unsafe { &*page_ptr };
    if tagged & TAG_PID_CHECKED != 0 {
        claim_static_page(page);
    }
    page
}

/// Maps the page (once per address space; a child inherits the mapping, zero-filled) and publishes it.
fn create() -> usize {
    // SAFETY: an anonymous private mapping of one page; madvise on it only changes what a child sees.
    let mapped = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            PAGE_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            None
        } else if refuse_wipe_on_fork() || libc::madvise(p, PAGE_BYTES, libc::MADV_WIPEONFORK) != 0 {
            libc::munmap(p, PAGE_BYTES);
            None
        } else {
            Some(p as usize)
        }
    };
    let mine = mapped.unwrap_or(std::ptr::addr_of!(STATIC_PAGE) as usize | TAG_PID_CHECKED);
    match PAGE.compare_exchange(std::ptr::null_mut(), mine as *mut _, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            if mapped.is_some() {
                // Belt and braces for a kernel or emulator that accepts MADV_WIPEONFORK and ignores it
                // (qemu-user does): a child made by fork() also gets the page zeroed by this handler.
                // SAFETY: registering a handler that only stores to atomics of the mapped page.
                unsafe { libc::pthread_atfork(None, None, Some(zero_page_in_child)) };
            }
            mine
        }
        Err(theirs) => {
            if let Some(p) = mapped {
                // SAFETY: our mapping lost the race and was never handed out.
                unsafe { libc::munmap(p as *mut libc::c_void, PAGE_BYTES) };
            }
            theirs as usize
        }
    }
}

/// Fork handler (child side): what `MADV_WIPEONFORK` does, for a child made by `fork()` where the advice was
/// accepted but not acted on. Only atomic stores.
extern "C" fn zero_page_in_child() {
    let tagged = PAGE.load(Ordering::Acquire) as usize;
    if tagged == 0 || tagged & TAG_PID_CHECKED != 0 {
        return;
    }
    // SAFETY: the mapped page, never unmapped once published.
    let page = unsafe { &*(tagged as *const ProcessPage) };
    page.pid.store(0, Ordering::Relaxed);
    page.staging_owner.store(0, Ordering::Relaxed);
    page.staging_lock.store(0, Ordering::Relaxed);
    page.setup_owner.forget();
    page.generation.store(0, Ordering::Relaxed);
    page.setup.store(SETUP_NEW, Ordering::Release);
}

/// Generations handed out in this address space; a child inherits the count, so its first
/// [`generation`] differs from its parent's (and from every ancestor's, up to the slots of `forkgen`).
static GENERATIONS: AtomicUsize = AtomicUsize::new(0);

/// This process's generation: the same number for every call in one process, a different one in a child
/// made by any kind of fork (its page reads zero there).
pub fn generation() -> usize {
    let page = page();
    let known = page.generation.load(Ordering::Acquire);
    if known != 0 {
        return known - 1;
    }
    let mine = GENERATIONS.fetch_add(1, Ordering::AcqRel) + 1;
    match page.generation.compare_exchange(0, mine, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => mine - 1,
        Err(theirs) => theirs - 1,
    }
}

/// `FLASHLOG_TEST_NO_WIPEONFORK` (fault injection for the tests): behave as on a kernel that refuses
/// `MADV_WIPEONFORK`, so the fallback is tested too.
fn refuse_wipe_on_fork() -> bool {
    super::sys::getenv(c"FLASHLOG_TEST_NO_WIPEONFORK").is_some_and(|v| v == "1")
}

/// The static page belongs to the process whose pid it holds: a different pid means a fork happened since,
/// and the first thread of the new process to notice resets the page.
fn claim_static_page(page: &ProcessPage) {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let stored = page.pid.load(Ordering::Acquire);
    if stored != me && page.pid.compare_exchange(stored, me, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        page.staging_owner.store(0, Ordering::Relaxed);
        page.staging_lock.store(0, Ordering::Release);
        page.setup_owner.forget();
        page.generation.store(0, Ordering::Relaxed);
        page.setup.store(SETUP_NEW, Ordering::Release);
    }
}

/// The library's one per-process reset: which process a piece of state belongs to, by its [`generation`]
/// (plus one; 0: none yet). A stamp in a process's memory was written by that process or by an ancestor
/// before a fork, and a child's generation is always greater than its ancestors', so a child made by any kind
/// of fork finds a stamp not its own, without fork handlers and without a system call: the generation lives
/// in the page the kernel wipes at a fork. The page's own words (set-up, staging lock) are reset by the page
/// itself, and state kept behind a blocking lock takes a slot per generation (`forkgen`), since a lock held by
/// a thread the child does not have cannot be taken to reset what it guards.
pub struct ProcessStamp(AtomicUsize);

impl ProcessStamp {
    /// A stamp of no process (usable in a `static`).
    pub const fn new() -> Self {
        ProcessStamp(AtomicUsize::new(0))
    }

    /// Claims the stamp for this process: true the first time (the caller resets the per-process values it
    /// guards: counts, a once-per-process message), false when it is this process's already.
    pub fn claim(&self) -> bool {
        let me = generation() + 1;
        self.0.load(Ordering::Acquire) != me && self.0.swap(me, Ordering::AcqRel) != me
    }

    /// Whether this process has claimed or [`ProcessStamp::mark`]ed the stamp.
    pub fn is_this_process(&self) -> bool {
        self.0.load(Ordering::Acquire) == generation() + 1
    }

    /// Marks the stamp this process's, once the caller has reset what it guards (see [`ProcessStamp::claim`]
    /// for when claiming first is right).
    pub fn mark(&self) {
        self.0.store(generation() + 1, Ordering::Release);
    }
}

impl Default for ProcessStamp {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a process with id `pid` exists (a zombie too): `kill(pid, 0)` succeeds, or is refused for want of
/// permission (another user's process) and `/proc/<pid>` exists, or `/proc` is not there to ask (a seccomp
/// policy that answers `kill` with EPERM would otherwise make every process look alive). Another process may have
/// taken the id of one that ended; callers treat the answer as a hint.
pub fn is_running(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let asked = unsafe { libc::kill(pid, 0) };
    if asked == 0 {
        return true;
    }
    if super::sys::errno() != libc::EPERM {
        return false;
    }
    let proc_there = std::path::Path::new("/proc/self").exists();
    !proc_there || std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Runs `body` in a forked child of the test process, where no other test thread exists, and asserts that it
/// passed (no panic). For unit tests of what a fork child sees, and of state other tests would race for.
#[cfg(test)]
pub fn in_fork_child(body: fn()) {
    // SAFETY: the child runs `body` on its only thread (glibc resets malloc's locks in a fork child) and leaves
    // with _exit, never returning into the parent's test harness.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork");
    if child == 0 {
        let passed = std::panic::catch_unwind(body).is_ok();
        // SAFETY: as above.
        unsafe { libc::_exit(if passed { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child made above; `status` is ours.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child's assertions (above): {status:#x}");
}

/// The process id, without a system call once known (the page forgets it in a child).
pub fn pid() -> i32 {
    let page = page();
    let cached = page.pid.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    page.pid.store(pid, Ordering::Relaxed);
    pid
}

/// Size of the staging buffer that every statistics read goes through: the memory the shim adds never grows
/// with tensor size.
pub const STAGING_BYTES: usize = 4 << 20;

/// The buffer itself, allocated once by the first holder of the lock and never freed or resized (a child
/// inherits a consistent pointer whatever the parent's threads were doing).
static STAGING_BUF: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// The staging buffer, held: one thread at a time reads tensor bytes through it.
pub struct Staging {
    buf: *mut u8,
}

impl Staging {
    /// Takes the staging lock, waiting (futex) while another thread holds it. `None` when the calling
    /// thread holds it already: a signal handler that interrupted this thread's statistics.
    pub fn lock() -> Option<Staging> {
        let page = page();
        let me = crate::os::sys::thread_id();
        if page.staging_owner.load(Ordering::Relaxed) == me {
            return None;
        }
        let word = &page.staging_lock;
        if word.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            while word.swap(2, Ordering::Acquire) != 0 {
                futex(word, libc::FUTEX_WAIT, 2);
            }
        }
        page.staging_owner.store(me, Ordering::Relaxed);
        let mut buf = STAGING_BUF.load(Ordering::Acquire);
        if buf.is_null() {
            buf = Box::leak(vec![0u8; STAGING_BYTES].into_boxed_slice()).as_mut_ptr();
            STAGING_BUF.store(buf, Ordering::Release);
        }
        Some(Staging { buf })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let page = page();
        page.staging_owner.store(0, Ordering::Relaxed);
        if page.staging_lock.swap(0, Ordering::Release) == 2 {
            futex(&page.staging_lock, libc::FUTEX_WAKE, 1);
        }
    }
}

impl Deref for Staging {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `buf` is the leaked STAGING_BYTES-long buffer, used only by the holder of the lock.
        unsafe { std::slice::from_raw_parts(self.buf, STAGING_BYTES) }
    }
}

impl DerefMut for Staging {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above; the lock makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.buf, STAGING_BYTES) }
    }
}

/// A private futex operation on `word` (wait while it equals `value`, or wake `value` waiters).
fn futex(word: &AtomicU32, op: i32, value: u32) {
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; no timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op | libc::FUTEX_PRIVATE_FLAG,
            value,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_is_the_process_id() {
        // SAFETY: getpid has no preconditions.
        assert_eq!(pid(), unsafe { libc::getpid() });
    }

    #[test]
    fn staging_lock_is_exclusive_and_not_reentrant() {
        let held = Staging::lock().expect("free");
        assert_eq!(held.len(), STAGING_BYTES);
        assert!(Staging::lock().is_none(), "same thread must not wait for itself");
        let other = std::thread::spawn(|| Staging::lock().map(|s| s.len()));
        // The other thread marks the lock contended (2) before it waits: wait for that, not for some time.
        while page().staging_lock.load(Ordering::Acquire) != 2 {
            std::thread::yield_now();
        }
        assert!(!other.is_finished(), "another thread waits");
        drop(held);
        assert_eq!(other.join().unwrap(), Some(STAGING_BYTES));
    }

    #[test]
    fn a_stamp_is_claimed_once_per_process_and_again_in_a_fork_child() {
        static STAMP: ProcessStamp = ProcessStamp::new();
        static MARKED: ProcessStamp = ProcessStamp::new();
        assert!(!MARKED.is_this_process());
        MARKED.mark();
        assert!(MARKED.is_this_process());
        assert!(STAMP.claim(), "first claim in this process");
        assert!(!STAMP.claim(), "already this process's");
        in_fork_child(|| {
            let fresh = !MARKED.is_this_process() && STAMP.claim() && !STAMP.claim() && STAMP.is_this_process();
            assert!(fresh, "the child claims afresh");
        });
        assert!(!STAMP.claim(), "the parent's stamp is untouched");
        assert!(MARKED.is_this_process());
    }
}
