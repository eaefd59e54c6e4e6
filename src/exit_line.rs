//! The exit line: when a process that wrote at least one record ends normally (`exit`, a return from `main`),
//! one unframed line `[flashlog exit: pid P, N records]` after its last record (`docs/log-format.md`, "Exit
//! line"), so that `flashlog summary` can tell a run that ended from one that died (after `_exit`, `abort`, a
//! fatal signal or `SIGKILL` no handler runs, and the line is missing).
//!
//! The handler is registered with `atexit` by the library's constructor (never from inside a host call or a
//! signal handler). It writes only in the process that wrote the records (a forked child that logged nothing
//! inherits the parent's count, and is told apart by its pid), through the sink's checked destination (never a
//! descriptor of the host's), and gives up rather than wait when the exiting thread interrupted the shim's own
//! opening of the destination.

use crate::os::sys;
use crate::{sink, state};

/// The exit handler (`atexit`): the line, in the process that logged, when logging is still on.
pub extern "C" fn at_exit() {
    let _errno = sys::ErrnoGuard::save();
    state::guarded(|| {
        let Some(records) = sink::records_of_this_process() else { return };
        if records == 0 || state::level() == 0 {
            return;
        }
        let mut line = [0u8; 96];
        let len = crate::record::exit::exit_line(&mut line, crate::os::process::pid(), records);
        sink::write_unframed(&line[..len]);
    });
}

#[cfg(test)]
mod tests {
    use crate::sink;
    use std::process::{Command, Stdio};

    /// Runs the ignored test `name` in a child of the test binary, with logging at level 1 to a file of its own
    /// (the configuration is read once per process); returns the child's pid and the file's text (None when
    /// it was never created).
    fn in_child(name: &str) -> (u32, Option<String>) {
        let dir = std::env::temp_dir().join(format!("flashlog-exit-line-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("exit.log");
        let exe = std::env::current_exe().unwrap();
        let run = |emulator: Option<&str>| {
            let mut cmd = match emulator {
                Some(e) => {
                    let mut c = Command::new(e);
                    c.arg(&exe);
                    c
                }
                None => Command::new(&exe),
            };
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if key.starts_with("FLASHINFER_") || key.starts_with("FLASHLOG_") {
                    cmd.env_remove(&*key);
                }
            }
            cmd.args(["--exact", &format!("exit_line::tests::{name}"), "--ignored", "--test-threads=1", "-q"]);
            cmd.env("FLASHINFER_LOGLEVEL", "1").env("FLASHINFER_LOGDEST", &log);
            let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            (child.id(), child.wait_with_output().unwrap())
        };
        let (mut pid, mut out) = run(None);
        // Under qemu-user (`make test-aarch64` runs the aarch64 tests with qemu-aarch64-static as cargo's runner)
        // the kernel cannot start the aarch64 binary itself (exit 127, nothing printed): run it the same way.
        if cfg!(target_arch = "aarch64") && out.status.code() == Some(127) && out.stderr.is_empty() {
            (pid, out) = run(Some("qemu-aarch64-static"));
        }
        let output = || format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{:?}: {}", out.status, output());
        let text = std::fs::read_to_string(&log).ok();
        std::fs::remove_dir_all(&dir).unwrap();
        (pid, text)
    }

    #[test]
    fn the_handler_writes_the_line_after_the_records_of_the_process_that_logged() {
        let (pid, text) = in_child("a_process_that_logged");
        assert_eq!(text.unwrap(), format!("[system information]\nrecord one\n[flashlog exit: pid {pid}, 1 record]\n"));
        let (_, text) = in_child("a_process_that_logged_nothing");
        assert_eq!(text, None, "no record, no line (and no file)");
    }

    #[test]
    #[ignore = "run by the_handler_writes_the_line_after_the_records_of_the_process_that_logged, in a process of its own"]
    fn a_process_that_logged() {
        sink::write_record(b"record one\n", |out| out.extend_from_slice(b"[system information]\n"));
        super::at_exit();
    }

    #[test]
    #[ignore = "run by the_handler_writes_the_line_after_the_records_of_the_process_that_logged, in a process of its own"]
    fn a_process_that_logged_nothing() {
        super::at_exit();
    }
}
