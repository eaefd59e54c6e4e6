//! Process-wide state of the shim: the configuration (read once, lazily, from the first hooked lookup on),
//! its warnings (printed only when there is a FlashInfer lookup to serve), the switch that turns logging off
//! after an internal error, what must start fresh in a new process (after any kind of fork), and the
//! per-thread marker of "inside the shim's own work" that keeps signal handlers and cancellation safe.

use crate::config::Config;
use crate::os::process::{self, SETUP_READY, SETUP_RUNNING};
use crate::os::sys;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static CONFIG: OnceLock<Config> = OnceLock::new();
static DISABLED: AtomicBool = AtomicBool::new(false);
static WARNED: AtomicBool = AtomicBool::new(false);

/// The configuration. The first call reads the environment and installs the panic hook; it prints nothing
/// (other code paths may read the configuration in a process that never logs: see [`warn_once`]).
pub fn config() -> &'static Config {
    CONFIG.get_or_init(|| {
        let mut config = Config::from_lookup(sys::env);
        if sys::is_secure_execution() {
            // A setuid program: never act on environment-named destinations.
            config.level = 0;
        }
        install_panic_hook();
        config
    })
}

/// Whether the configuration has warnings that [`warn_once`] has not printed yet.
pub fn has_pending_warnings() -> bool {
    !WARNED.load(Ordering::Relaxed) && !config().warnings.is_empty()
}

/// Prints the configuration's warnings on stderr, once per process. Called only when the shim has a
/// FlashInfer lookup to serve, so a process that makes none (a compiler, a shell) never sees a line.
pub fn warn_once() {
    if WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    for line in &config().warnings {
        let mut text = line.clone().into_bytes();
        text.push(b'\n');
        crate::os::signals::write_all(2, &text);
    }
}

/// The effective level: 0 when logging was turned off by an internal error.
pub fn level() -> u8 {
    if DISABLED.load(Ordering::Relaxed) {
        0
    } else {
        config().level
    }
}

/// Turns all logging off for the rest of the process (after an internal error); wrappers then only pass
/// calls through.
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// A panic inside the shim prints one line, turns logging off, and unwinds to the wrapper, which then calls
/// the real function as if the shim were not there.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        disable();
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let line = format!("flashlog: internal error at {location}: {message}; logging disabled\n");
        crate::os::signals::write_all(2, line.as_bytes());
    }));
}

/// Runs `f`, turning a panic into `None` (and logging off); for every piece of shim logic that runs inside a
/// host call.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            disable();
            None
        }
    }
}

const MAX_HOOKS: usize = 8;
static HOOKS: [OnceLock<fn()>; MAX_HOOKS] = [const { OnceLock::new() }; MAX_HOOKS];

/// Registers `hook` to run once in every new process (the first one, and each forked child) before the
/// shim does anything there that depends on per-process state. Idempotent; at most a few hooks exist.
///
/// The per-process reset of most state is a [`process::ProcessStamp`], which lets each user reset its own
/// values when it first looks. The hooks are for what every other thread must wait for (the sink's
/// destination reopened before any record is written), so they hang on the fork page's own set-up word and
/// its claim word, which the kernel zeroes in a child: a waiting thread can never wait for a claim made by a
/// thread of the parent.
pub fn on_new_process(hook: fn()) {
    for slot in &HOOKS {
        match slot.get() {
            Some(existing) if *existing as usize == hook as usize => return,
            Some(_) => {}
            None => {
                if slot.set(hook).is_ok() {
                    return;
                }
            }
        }
    }
}

/// Makes sure this process's per-process state is its own: in a new process (the page of
/// [`process`] reads zero), the first thread to arrive runs the hooks of [`on_new_process`] while other
/// threads wait for it. Returns `false` only to a thread that is itself running them (a signal handler
/// that interrupted the set-up): it must not wait for itself, and logs nothing.
pub fn enter_process() -> bool {
    let page = process::page();
    if page.setup.load(Ordering::Acquire) == SETUP_READY {
        return true;
    }
    page.setup_owner.run_once(
        || page.setup.load(Ordering::Acquire) == SETUP_READY,
        || {
            page.setup.store(SETUP_RUNNING, Ordering::Release);
            for hook in HOOKS.iter().filter_map(|slot| slot.get()) {
                guarded(hook);
            }
            page.setup.store(SETUP_READY, Ordering::Release);
        },
    )
}

thread_local! {
    /// How deep the calling thread is inside the shim's own work (not counting the real functions it calls).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// A stretch of the shim's own work on this thread: while it lives, the thread is marked "inside the shim"
/// (a wrapped call arriving meanwhile comes from a signal handler, see [`inside_shim`]) and cannot be
/// cancelled (the shim's `write`/`open` are cancellation points; cancellation is acted on at the host's
/// next cancellation point instead). Must be dropped before the real function is called.
pub struct ShimSection {
    /// The cancellation state to restore; `None` in a nested section (the outermost one restores it).
    cancel_state: Option<i32>,
}

impl ShimSection {
    /// Enters a section (sections nest; only the outermost one touches the cancellation state).
    pub fn enter() -> ShimSection {
        let outermost = DEPTH.with(|d| {
            let depth = d.get();
            d.set(depth + 1);
            depth == 0
        });
        if outermost {
            crate::os::pipe::begin_section();
        }
        ShimSection { cancel_state: outermost.then(sys::disable_cancel) }
    }
}

impl Drop for ShimSection {
    fn drop(&mut self) {
        // The marker first: restoring the state may act on a pending asynchronous cancellation at once.
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        if self.cancel_state.is_some() {
            crate::os::pipe::end_section();
        }
        if let Some(state) = self.cancel_state {
            sys::restore_cancel_state(state);
        }
    }
}

/// Whether the calling thread is inside a [`ShimSection`]: a wrapped call that finds it so was made by a
/// signal handler that interrupted the shim, and must not wait for anything the interrupted work holds.
pub fn inside_shim() -> bool {
    DEPTH.with(|d| d.get() > 0)
}
