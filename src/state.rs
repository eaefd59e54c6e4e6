//! Process-wide state of the shim: the configuration (read once, lazily, from the first hooked lookup on),
//! the switch that turns logging off after an internal error, and what must be reset in a forked child.

use crate::abi::sys;
use crate::config::Config;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static CONFIG: OnceLock<Config> = OnceLock::new();
static DISABLED: AtomicBool = AtomicBool::new(false);

/// The configuration. The first call reads the environment, installs the panic hook and fork handler, and
/// prints the configuration's warnings (so only a process that reaches a hooked entry point sees them).
pub fn config() -> &'static Config {
    CONFIG.get_or_init(|| {
        let mut config = Config::from_lookup(|name| {
            let c = std::ffi::CString::new(name).ok()?;
            sys::getenv(&c)
        });
        if sys::is_secure_execution() {
            // A setuid program: never act on environment-named destinations.
            config.level = 0;
        }
        for line in &config.warnings {
            let mut text = line.clone().into_bytes();
            text.push(b'\n');
            sys::write_all(2, &text);
        }
        install_panic_hook();
        sys::at_fork_child(crate::sink::after_fork_in_child);
        config
    })
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
        sys::write_all(2, line.as_bytes());
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
