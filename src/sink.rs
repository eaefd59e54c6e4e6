//! Where records go: stdout (the shim's own copy of the descriptor the process had at its first record),
//! stderr, or a file opened on the first record (its template expanded with the pid and launcher ranks, its
//! folder created when missing); when it cannot be opened, one line on stderr and nothing logged. Each record is
//! written with one `write(2)` so records of concurrent threads never interleave.
//!
//! Nothing here can trap the host: opening never blocks (a FIFO without a reader cannot be opened), writing
//! raises no `SIGPIPE` (a reader that goes away ends logging to it, with one stderr line), a descriptor the
//! host closed or reused is never written to (its identity is checked before every write, and the
//! destination reopened), a new process (any fork) starts with its own file and system information
//! record, and a thread never waits for work that it itself left unfinished (a signal handler re-entering).

use crate::config::{expand_path_template, Dest, LauncherIds, ProcessIds};
use crate::os::process::ProcessStamp;
use crate::os::sys::{self, FileId, OpenError, WriteKind};
use crate::os::thread_claim::{Claimed, ThreadClaim};
use crate::state::{self, config};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, Ordering};

const UNOPENED: u8 = 0;
const OPENING: u8 = 1;
const OPEN: u8 = 2;
/// Logging to the destination ended (its reader went away, or stdout is gone).
const CLOSED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNOPENED);
/// The thread moving STATE through OPENING (opening, or reopening a replaced descriptor); 0 when none.
static OPENER: ThreadClaim = ThreadClaim::new();
static FD: AtomicI32 = AtomicI32::new(-1);
static KIND: AtomicU8 = AtomicU8::new(KIND_PIPE);
/// Whether FD is a descriptor the shim opened or duplicated: then its identity is checked before writes.
static OWNED: AtomicBool = AtomicBool::new(false);
/// The status flags of the shim's own marked log file ([`sys::mark_own_file`]), or -1: check with fstat.
static OWN_FLAGS: AtomicI32 = AtomicI32::new(-1);
static OWN_DEV: AtomicU64 = AtomicU64::new(0);
static OWN_INO: AtomicU64 = AtomicU64::new(0);
/// Identity of descriptor 1 when the shim copied it (to copy it again if the host closes the copy).
static STDOUT_DEV: AtomicU64 = AtomicU64::new(0);
static STDOUT_INO: AtomicU64 = AtomicU64::new(0);
static REPLACED_REPORTED: AtomicBool = AtomicBool::new(false);
/// Records written by this process (reset in a new process at its first record).
static RECORDS: AtomicU64 = AtomicU64::new(0);
/// The process that wrote them: a forked child that logged nothing finds its parent's stamp here.
static RECORDS_OWNER: ProcessStamp = ProcessStamp::new();
static REGISTERED: AtomicBool = AtomicBool::new(false);

const KIND_PLAIN: u8 = 0;
const KIND_PIPE: u8 = 1;
const KIND_SOCKET: u8 = 2;

const SYSINFO_NONE: u8 = 0;
const SYSINFO_DONE: u8 = 2;
static SYSINFO: AtomicU8 = AtomicU8::new(SYSINFO_NONE);
static SYSINFO_WRITER: ThreadClaim = ThreadClaim::new();

/// Writes one whole record. The record `first` builds (the system information) goes first if this process
/// has not written it: the caller passes the builder, so the transport never reaches up to what gathers it.
/// A record that would make this thread wait for its own unfinished work (a signal handler that interrupted
/// the opening of the destination or the system information record) is dropped.
pub fn write_record(record: &[u8], first: fn(&mut Vec<u8>)) {
    let _section = state::ShimSection::enter();
    if !REGISTERED.load(Ordering::Relaxed) && !REGISTERED.swap(true, Ordering::Relaxed) {
        state::on_new_process(reset_in_new_process);
    }
    if !state::enter_process() || destination().is_none() || !ensure_system_info(first) {
        return;
    }
    if !RECORDS_OWNER.is_this_process() {
        RECORDS_OWNER.mark();
    }
    RECORDS.fetch_add(1, Ordering::Relaxed);
    write_whole(record);
}

/// How many records this process wrote; None when it wrote none (a forked child that logged nothing included).
pub fn records_of_this_process() -> Option<u64> {
    RECORDS_OWNER.is_this_process().then(|| RECORDS.load(Ordering::Relaxed))
}

/// Writes a line outside any record (the exit line) to a destination this process has open; nothing when it
/// has none, when logging to it ended, or when this thread interrupted its own opening of it.
pub fn write_unframed(line: &[u8]) {
    let _section = state::ShimSection::enter();
    if STATE.load(Ordering::Acquire) != OPEN || !state::enter_process() {
        return;
    }
    write_whole(line);
}

/// Writes the system information record once per process, before any other record: a thread that finds
/// another one writing it waits until it is out; the thread writing it (re-entered) gets `false`. The
/// writer's word is the claim itself, so a signal handler can never see the record claimed by its own
/// thread without knowing it.
fn ensure_system_info(build: fn(&mut Vec<u8>)) -> bool {
    SYSINFO_WRITER.run_once(
        || SYSINFO.load(Ordering::Acquire) == SYSINFO_DONE,
        || {
            let mut info = crate::buffers::take();
            // A panic here must not leave other threads waiting forever.
            let built = state::guarded(|| build(&mut info));
            if built.is_some() && !crate::ring::write_system_info(&info) {
                write_whole(&info);
            }
            SYSINFO.store(SYSINFO_DONE, Ordering::Release);
        },
    )
}

/// The descriptor records go to and how to write to it, opening the destination on first use. `None`
/// when logging to it ended, or when this very thread is opening it (re-entered from a signal handler).
fn destination() -> Option<(i32, WriteKind)> {
    loop {
        match STATE.load(Ordering::Acquire) {
            OPEN => return Some(current()),
            CLOSED => return None,
            _ => match claim_opening(UNOPENED) {
                Claimed::Mine => {
                    let state = open_destination();
                    finish_opening(state);
                }
                Claimed::Reentered => return None,
                Claimed::Busy => std::thread::yield_now(),
            },
        }
    }
}

/// Claims the right to (re)open the destination when STATE is `from` ([`Claimed::Mine`]: STATE is now
/// OPENING and the caller must call [`finish_opening`]; [`Claimed::Busy`]: another thread is at it, or STATE
/// moved on: look again). The opener's word is claimed first, so a signal handler on the claiming thread
/// always knows that it interrupted its own thread.
fn claim_opening(from: u8) -> Claimed {
    match OPENER.try_claim() {
        Claimed::Mine => {
            if STATE.compare_exchange(from, OPENING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                Claimed::Mine
            } else {
                OPENER.release();
                Claimed::Busy
            }
        }
        other => other,
    }
}

fn finish_opening(state: u8) {
    STATE.store(state, Ordering::Release);
    OPENER.release();
}

fn current() -> (i32, WriteKind) {
    let kind = match KIND.load(Ordering::Acquire) {
        KIND_PLAIN => WriteKind::Plain,
        KIND_SOCKET => WriteKind::Socket,
        _ => WriteKind::Pipe,
    };
    (FD.load(Ordering::Acquire), kind)
}

/// Publishes `fd` as the destination; `owned`: the shim opened or copied it (its identity is remembered);
/// `flags`: the status flags of a file the shim opened and marked, for the cheaper identity test.
fn publish(fd: i32, owned: bool, flags: Option<i32>) -> u8 {
    OWN_FLAGS.store(flags.unwrap_or(-1), Ordering::Release);
    let described = sys::describe_fd(fd);
    let kind = described.map_or(WriteKind::Pipe, |(_, k)| k);
    KIND.store(
        match kind {
            WriteKind::Plain => KIND_PLAIN,
            WriteKind::Pipe => KIND_PIPE,
            WriteKind::Socket => KIND_SOCKET,
        },
        Ordering::Release,
    );
    if let Some((id, _)) = described {
        OWN_DEV.store(id.dev, Ordering::Release);
        OWN_INO.store(id.ino, Ordering::Release);
    }
    OWNED.store(owned && described.is_some(), Ordering::Release);
    FD.store(fd, Ordering::Release);
    OPEN
}

fn own_id() -> FileId {
    FileId { dev: OWN_DEV.load(Ordering::Acquire), ino: OWN_INO.load(Ordering::Acquire) }
}

/// Opens the configured destination; returns the new state (OPEN, or CLOSED when it cannot be opened).
fn open_destination() -> u8 {
    match &config().dest {
        Dest::Stdout => match sys::dup_high(1) {
            Ok(fd) => {
                if let Some((id, _)) = sys::describe_fd(1) {
                    STDOUT_DEV.store(id.dev, Ordering::Relaxed);
                    STDOUT_INO.store(id.ino, Ordering::Relaxed);
                }
                publish(fd, true, None)
            }
            Err(reason) => fall_back("stdout", &reason),
        },
        Dest::Stderr => publish(2, false, None),
        Dest::File(template) => {
            let path = file_path(template);
            if let Some(data_bytes) = config().ring_bytes {
                return open_ring(&path, data_bytes);
            }
            match open_file(&anchored(&path)) {
                Ok(fd) => publish(fd, true, sys::mark_own_file(fd)),
                Err(reason) => fall_back(&path, &reason),
            }
        }
    }
}

/// The flight recorder's ring at `path` ([`crate::ring`]): records then bypass the descriptor entirely.
fn open_ring(path: &str, data_bytes: u64) -> u8 {
    match crate::ring::open(&anchored(path), data_bytes) {
        Ok(()) => OPEN,
        Err(crate::ring::OpenError::ParentsRing(line)) => {
            crate::os::signals::write_all(2, line.as_bytes());
            CLOSED
        }
        Err(crate::ring::OpenError::Failed(reason)) => {
            fall_back(path, &format!("cannot create a ring there: {reason}"))
        }
    }
}

/// The path a template names in this process (`%i`, `%r`, `%l`, `%%`; the same on every call unless the host
/// changes its launcher variables meanwhile). Used for the log file and the level-10 dump folder.
pub fn file_path(template: &str) -> String {
    let ids = ProcessIds { pid: crate::os::process::pid(), launcher: LauncherIds::from_lookup(sys::env) };
    expand_path_template(template, &ids)
}

/// `path` against the working folder of the first open (a relative log file reopened after a host's `chdir`
/// is still the same file); unchanged when the working folder cannot be known.
fn anchored(path: &str) -> String {
    crate::os::fsio::anchored(path).unwrap_or_else(|_| path.to_string())
}

/// Opens `path` for appending, creating its missing folders (with their parents, as `mkdir -p` does,
/// honouring the umask) first when the open says a folder is missing.
fn open_file(path: &str) -> Result<i32, String> {
    let c = std::ffi::CString::new(path).map_err(|_| "path contains a NUL byte".to_string())?;
    match sys::open_append(&c) {
        Ok(fd) => Ok(fd),
        Err(OpenError::Other(reason)) => Err(reason),
        Err(OpenError::Missing(reason)) => {
            let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) else {
                return Err(reason);
            };
            if let Err(e) = std::fs::create_dir_all(dir) {
                return Err(format!("cannot create folder '{}': {e}", dir.display()));
            }
            sys::open_append(&c).map_err(|e| match e {
                OpenError::Missing(r) | OpenError::Other(r) => r,
            })
        }
    }
}

/// The destination cannot be opened: one line on stderr, at the first record of the process, and nothing
/// more is logged by it (its records would otherwise flood the program's stderr).
fn fall_back(name: &str, reason: &str) -> u8 {
    let line = format!(
        "flashlog: cannot open log destination '{name}': {reason}; nothing is logged by this process (set -o or \
         FLASHLOG_DEST to a file whose folder can be created, or to stderr)\n"
    );
    crate::os::signals::write_all(2, line.as_bytes());
    CLOSED
}

/// Writes `bytes` to the destination, after making sure its descriptor is still the shim's.
fn write_whole(bytes: &[u8]) {
    if crate::ring::write(bytes) {
        return;
    }
    for attempt in 0..2 {
        let Some((fd, kind)) = checked_destination() else { return };
        match crate::os::signals::write_record_bytes(fd, bytes, kind) {
            Ok(()) => return,
            Err(libc::EPIPE) => return reader_gone(),
            // Closed between the check and the write: check again (and reopen) once.
            Err(libc::EBADF) if attempt == 0 => continue,
            Err(e) => return write_failed(e),
        }
    }
}

/// A record the destination did not take (a full disk, a file size limit, an I/O error): said once per
/// process on stderr; later records are still tried (space may come back), and the host goes on.
fn write_failed(errno: i32) {
    static REPORTED_BY: ProcessStamp = ProcessStamp::new();
    if !REPORTED_BY.claim() {
        return;
    }
    let name = destination_name();
    let reason = std::io::Error::from_raw_os_error(errno);
    let line = format!("flashlog: cannot write to log destination '{name}': {reason}; records are lost until it can\n");
    crate::os::signals::write_all(2, line.as_bytes());
}

/// The destination as the user named it (a file's path expanded for this process).
fn destination_name() -> String {
    match &config().dest {
        Dest::Stdout => "stdout".to_string(),
        Dest::Stderr => "stderr".to_string(),
        Dest::File(template) => file_path(template),
    }
}

/// The destination, when its descriptor still names what the shim opened (one `fstat`); otherwise the
/// destination is reopened first (the host closed the descriptor, and may have reused its number).
fn checked_destination() -> Option<(i32, WriteKind)> {
    loop {
        let (fd, kind) = destination()?;
        if !OWNED.load(Ordering::Acquire) || still_own(fd) {
            return Some((fd, kind));
        }
        match claim_opening(OPEN) {
            Claimed::Mine => {
                let state = reclaim();
                finish_opening(state);
            }
            Claimed::Reentered => return None,
            Claimed::Busy => std::thread::yield_now(),
        }
    }
}

/// Whether `fd` still names what the shim opened: the marked status flags (one `fcntl`), else the identity
/// (one `fstat`).
fn still_own(fd: i32) -> bool {
    match OWN_FLAGS.load(Ordering::Acquire) {
        -1 => sys::describe_fd(fd).map(|(id, _)| id) == Some(own_id()),
        flags => sys::status_flags(fd) == Some(flags),
    }
}

/// The shim's descriptor was closed or replaced by the host: reopen the file (appending), or copy stdout
/// again when descriptor 1 is still the stdout the shim first copied. Never closes the old number: it is
/// not the shim's any more. Says so once per process.
fn reclaim() -> u8 {
    let first = !REPLACED_REPORTED.swap(true, Ordering::Relaxed);
    match &config().dest {
        Dest::File(template) => {
            let path = file_path(template);
            match open_file(&anchored(&path)) {
                Ok(fd) => {
                    if first {
                        let line = format!(
                            "flashlog: the log file '{path}' was closed or replaced by the program; reopened it\n"
                        );
                        crate::os::signals::write_all(2, line.as_bytes());
                    }
                    publish(fd, true, sys::mark_own_file(fd))
                }
                Err(reason) => fall_back(&path, &reason),
            }
        }
        _ => {
            let stdout = FileId { dev: STDOUT_DEV.load(Ordering::Relaxed), ino: STDOUT_INO.load(Ordering::Relaxed) };
            let same = sys::describe_fd(1).map(|(id, _)| id) == Some(stdout);
            match sys::dup_high(1) {
                Ok(fd) if same => {
                    if first {
                        crate::os::signals::write_all(
                            2,
                            b"flashlog: the shim's copy of stdout was closed or replaced by the program; copied stdout again\n",
                        );
                    }
                    publish(fd, true, None)
                }
                other => {
                    if let Ok(fd) = other {
                        sys::close(fd);
                    }
                    crate::os::signals::write_all(
                        2,
                        b"flashlog: the shim's copy of stdout was closed by the program and stdout is no longer the same; logging stopped\n",
                    );
                    CLOSED
                }
            }
        }
    }
}

/// The reader of a pipe or FIFO destination went away (`EPIPE`, no `SIGPIPE` delivered): logging to it
/// ends, with one line on stderr.
fn reader_gone() {
    if STATE.swap(CLOSED, Ordering::AcqRel) == CLOSED {
        return;
    }
    let name = destination_name();
    let line = format!("flashlog: the reader of log destination '{name}' went away (Broken pipe); logging stopped\n");
    crate::os::signals::write_all(2, line.as_bytes());
}

/// New-process hook (the first process, and every forked child before its first record): the child
/// writes its own system information record and opens its own file; a stdout copy stays (it is the same
/// stdout). Runs while every other thread of the child waits.
fn reset_in_new_process() {
    crate::ring::forget_in_child();
    RECORDS.store(0, Ordering::Relaxed);
    SYSINFO.store(SYSINFO_NONE, Ordering::Relaxed);
    SYSINFO_WRITER.forget();
    OPENER.forget();
    let state = STATE.load(Ordering::Acquire);
    let file = matches!(&config().dest, Dest::File(_));
    if state == OPENING || (file && state != UNOPENED) {
        if file && state != OPENING && OWNED.swap(false, Ordering::AcqRel) {
            sys::close(FD.load(Ordering::Acquire));
        }
        STATE.store(UNOPENED, Ordering::Release);
    }
}
