//! `flashlog show RING...`: a flight-recorder ring's records, oldest first, in exactly the text a plain log of
//! the same calls holds (on stdout), and per file one line on stderr with what was left out: the older records
//! overwritten, the torn ones (the process died while writing them), the damaged ones (checksum), and the ones
//! a live process was still writing.

use crate::ringread;
use std::io::Write;
use std::process::ExitCode;

const SHOW_HELP: &str = "\
usage: flashlog show RING...

Prints the records of flight-recorder rings (FLASHLOG_RING_MB, flashlog --ring) oldest first, exactly as a plain
log of the same calls holds them, on stdout; on stderr one line per file: how many records it holds, how many
older ones were overwritten, and how many it left out (torn: the process died while writing them; damaged: their
bytes no longer match their checksum; still being written: the process is alive). A ring a live process is writing
is read consistently: a run of consecutive records with no gap. Exit status: 0, or 2 when a file cannot be read or
is not a ring.";

/// The stderr line about one file.
pub fn account(path: &str, c: &ringread::Contents) -> String {
    let overwritten = c.overwritten.map_or("an unknown number of".to_string(), |n| n.to_string());
    let mut line = format!(
        "flashlog show: {path}: {} records, {overwritten} older records overwritten, {} torn records left out",
        c.records, c.torn
    );
    if c.damaged > 0 {
        line.push_str(&format!(", {} damaged records left out (checksum mismatch)", c.damaged));
    }
    if c.in_flight > 0 {
        line.push_str(&format!(", {} records still being written left out (the process is alive)", c.in_flight));
    }
    if c.dropped > 0 {
        line.push_str(&format!(
            ", {} records dropped by their writers (their bytes would have landed on an older record still being \
             written)",
            c.dropped
        ));
    }
    if c.too_large > 0 {
        line.push_str(&format!(", {} records larger than the ring never stored", c.too_large));
    }
    line
}

/// `flashlog show RING...`.
pub fn main(paths: &[String]) -> ExitCode {
    if paths.first().is_some_and(|p| p == "-h" || p == "--help") {
        crate::print_out(&format!("{SHOW_HELP}\n"));
        return ExitCode::SUCCESS;
    }
    if paths.is_empty() {
        eprintln!("flashlog show: no ring files given\nusage: flashlog show RING...");
        return ExitCode::from(2);
    }
    let mut failed = false;
    let stdout = std::io::stdout();
    for path in paths {
        match ringread::read(path) {
            Err(e) => {
                eprintln!("flashlog show: {path}: {e}");
                failed = true;
            }
            Ok(contents) => {
                for problem in &contents.problems {
                    eprintln!("flashlog show: {path}: {problem}");
                }
                let mut out = stdout.lock();
                if out.write_all(&contents.text).and_then(|()| out.flush()).is_err() {
                    return ExitCode::from(2);
                }
                eprintln!("{}", account(path, &contents));
            }
        }
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
