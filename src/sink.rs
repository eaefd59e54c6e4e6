//! Where records go: stdout, stderr or a file opened on the first record (every `%i` replaced by the
//! process id), reopened by a forked child, with stderr as the fallback when it cannot be opened. Each
//! record is written with one `write(2)` so records of concurrent threads never interleave.

use crate::abi::sys;
use crate::config::{expand_pid, Dest};
use crate::state::config;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};

const UNOPENED: u8 = 0;
const OPENING: u8 = 1;
const OPEN: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNOPENED);
static FD: AtomicI32 = AtomicI32::new(-1);
static OPENED_BY_US: AtomicBool = AtomicBool::new(false);
const SYSINFO_NONE: u8 = 0;
const SYSINFO_WRITING: u8 = 1;
const SYSINFO_DONE: u8 = 2;
static SYSINFO: AtomicU8 = AtomicU8::new(SYSINFO_NONE);

/// Writes one whole record. The system information record goes first if this process has not written it.
pub fn write_record(record: &[u8]) {
    let fd = descriptor();
    ensure_system_info(fd);
    sys::write_all(fd, record);
}

/// Writes the system information record once per process, before any other record: a thread that finds
/// another one writing it waits until it is out.
fn ensure_system_info(fd: i32) {
    loop {
        match SYSINFO.load(Ordering::Acquire) {
            SYSINFO_DONE => return,
            SYSINFO_NONE => {
                if SYSINFO.compare_exchange(SYSINFO_NONE, SYSINFO_WRITING, Ordering::AcqRel, Ordering::Acquire).is_ok()
                {
                    let mut info = crate::buffers::take();
                    // A panic here must not leave other threads waiting forever.
                    let built = crate::state::guarded(|| crate::intercept::system_info_record(&mut info));
                    if built.is_some() {
                        sys::write_all(fd, &info);
                    }
                    SYSINFO.store(SYSINFO_DONE, Ordering::Release);
                    return;
                }
            }
            _ => std::thread::yield_now(),
        }
    }
}

/// The descriptor records go to, opening the destination file on first use.
fn descriptor() -> i32 {
    loop {
        match STATE.load(Ordering::Acquire) {
            OPEN => return FD.load(Ordering::Acquire),
            UNOPENED => {
                if STATE.compare_exchange(UNOPENED, OPENING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    let fd = open_destination();
                    FD.store(fd, Ordering::Release);
                    STATE.store(OPEN, Ordering::Release);
                    return fd;
                }
            }
            _ => std::hint::spin_loop(),
        }
    }
}

fn open_destination() -> i32 {
    match &config().dest {
        Dest::Stdout => 1,
        Dest::Stderr => 2,
        Dest::File(template) => {
            let path = expand_pid(template, sys::pid());
            let opened = std::ffi::CString::new(path.clone())
                .map_err(|_| "path contains a NUL byte".to_string())
                .and_then(|c| sys::open_append(&c));
            match opened {
                Ok(fd) => {
                    OPENED_BY_US.store(true, Ordering::Relaxed);
                    fd
                }
                Err(reason) => {
                    let line = format!("flashlog: cannot open log destination '{path}': {reason}; writing to stderr\n");
                    sys::write_all(2, line.as_bytes());
                    2
                }
            }
        }
    }
}

/// Fork handler (child side): the child writes its own system information record and, when the destination
/// names the process id, opens its own file on its next record. Only atomics are touched here.
pub extern "C" fn after_fork_in_child() {
    sys::forget_pid();
    SYSINFO.store(SYSINFO_NONE, Ordering::Relaxed);
    let per_process = matches!(&config().dest, Dest::File(t) if t.contains("%i"));
    if per_process || STATE.load(Ordering::Relaxed) == OPENING {
        if OPENED_BY_US.swap(false, Ordering::Relaxed) {
            sys::close(FD.load(Ordering::Relaxed));
        }
        STATE.store(UNOPENED, Ordering::Relaxed);
    }
}
