//! Where dumps go: the session folder (`FLASHLOG_DUMP_DIR` / `FLASHINFER_DUMP_DIR`, `%i` = pid, made once per
//! process, a relative one resolved against the working folder when dumping started), the call folders `<YYYYmmdd_HHMMSS_mmm>_pid<PID>_<name>_call<NNNN>`, the lines of
//! `metadata.jsonl` and `session.jsonl` (each one `write(2)` in append mode), and the one stderr line that
//! stops dumping after a write error.

use super::Callee;
use crate::os::forkgen;
use crate::os::fsio::{self, File};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

struct Session {
    pid: i32,
    dir: String,
    named: String,
    file: Option<File>,
}

/// The session folder: where files go (absolute), and the folder as the user named it (what the metadata's
/// `dump_dir` shows, as FlashInfer's own logger does).
#[derive(Clone)]
pub struct SessionDir {
    /// Absolute path, resolved when dumping started.
    pub dir: String,
    /// The configured folder (`%i` and the ranks expanded), relative when it was given relative.
    pub named: String,
}

impl SessionDir {
    /// `path` (inside [`SessionDir::dir`]) as the metadata shows it: under the folder as named.
    pub fn shown(&self, path: &str) -> String {
        match path.strip_prefix(self.dir.as_str()) {
            Some(rest) => format!("{}{rest}", self.named),
            None => path.to_string(),
        }
    }
}

/// The session state, one slot per fork generation (`crate::os::forkgen`): a forked child never locks the one a
/// thread of its parent may have held at the fork.
static SESSIONS: [Mutex<Option<Session>>; forkgen::SLOTS] = [const { Mutex::new(None) }; forkgen::SLOTS];
static STOPPED: AtomicBool = AtomicBool::new(false);

/// Prints one line on stderr, prefixed `flashlog: `.
pub fn say(line: &str) {
    crate::os::signals::write_all(2, format!("flashlog: {line}\n").as_bytes());
}

/// Stops dumping for the rest of the process, saying why once.
pub fn stop(why: &str) {
    if !STOPPED.swap(true, Ordering::SeqCst) {
        say(&format!("level-10 dumps stopped: {why}; logging goes on"));
    }
}

/// This process's session state.
fn session() -> &'static Mutex<Option<Session>> {
    &SESSIONS[forkgen::slot()]
}

/// This process's dump folder, made on first use; None once dumping stopped.
pub fn session_dir() -> Option<SessionDir> {
    if STOPPED.load(Ordering::Relaxed) {
        return None;
    }
    let pid = crate::os::process::pid();
    let mut s = session().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = s.as_ref().filter(|s| s.pid == pid) {
        return Some(SessionDir { dir: s.dir.clone(), named: s.named.clone() });
    }
    let named = crate::sink::file_path(&crate::state::config().dump_dir);
    let named = if named.is_empty() { ".".to_string() } else { named };
    // Resolved to an absolute path now: a later `chdir` by the host changes nothing.
    let dir = match fsio::anchored(&named) {
        Ok(dir) if dir.len() > 1 => dir.trim_end_matches('/').to_string(),
        Ok(dir) => dir,
        Err(e) => {
            drop(s);
            stop(&format!("cannot resolve dump folder {named}: {e}"));
            return None;
        }
    };
    let named = if named.len() > 1 { named.trim_end_matches('/').to_string() } else { named };
    if let Err(e) = fsio::mkdir_all(&dir) {
        drop(s);
        stop(&format!("cannot create dump folder {dir}: {e}"));
        return None;
    }
    *s = Some(Session { pid, dir: dir.clone(), named: named.clone(), file: None });
    Some(SessionDir { dir, named })
}

/// `YYYYmmdd_HHMMSS_mmm`, local time.
pub fn stamp() -> String {
    let (y, mo, d, h, mi, s, ms) = fsio::local_time_millis();
    format!("{y:04}{mo:02}{d:02}_{h:02}{mi:02}{s:02}_{ms:03}")
}

/// Makes the folder of one call; None (dumping stopped) when it cannot be made.
pub fn make_call_folder(dir: &str, stamp: &str, t: &Callee) -> Option<String> {
    let name: String = t.name.chars().map(|c| if c == '/' || c.is_control() { '_' } else { c }).collect();
    let path = format!("{dir}/{stamp}_pid{}_{name}_call{:04}", crate::os::process::pid(), t.sequence);
    match fsio::mkdir_new(&path) {
        Ok(()) => Some(path),
        Err(e) => {
            stop(&format!("cannot create {path}: {e}"));
            None
        }
    }
}

/// Removes what a call folder holds after a failed dump (so no half-dumped call is left to replay).
pub fn remove_call_folder(path: &str) {
    for f in ["inputs.safetensors", "inputs.safetensors.tmp", "metadata.jsonl"] {
        fsio::unlink(&format!("{path}/{f}"));
    }
    fsio::rmdir(path);
}

/// Appends `line` (one JSON object and its newline) to the call's `metadata.jsonl` (opened on the first line
/// and kept in `meta` for the second) and to `session.jsonl`, one `write(2)` each; false (dumping stopped) on
/// an error.
pub fn write_lines(call_dir: &str, meta: &mut Option<File>, line: &[u8]) -> bool {
    let written = match meta {
        Some(f) => f.append_whole(line),
        None => File::append(&format!("{call_dir}/metadata.jsonl")).and_then(|mut f| {
            f.append_whole(line)?;
            *meta = Some(f);
            Ok(())
        }),
    };
    if let Err(e) = written {
        stop(&format!("cannot write {call_dir}/metadata.jsonl: {e}"));
        return false;
    }
    let pid = crate::os::process::pid();
    let mut s = session().lock().unwrap_or_else(|p| p.into_inner());
    let Some(session) = s.as_mut().filter(|s| s.pid == pid) else {
        return true;
    };
    let path = format!("{}/session.jsonl", session.dir);
    if session.file.is_none() {
        match File::append(&path) {
            Ok(f) => session.file = Some(f),
            Err(e) => {
                drop(s);
                stop(&format!("cannot open {path}: {e}"));
                return false;
            }
        }
    }
    if let Err(e) = session.file.as_mut().map_or(Ok(()), |f| f.append_whole(line)) {
        drop(s);
        stop(&format!("cannot write {path}: {e}"));
        return false;
    }
    true
}
