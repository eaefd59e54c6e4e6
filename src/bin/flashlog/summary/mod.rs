//! `flashlog summary LOG...`: one pass over each log, bounded memory (counters and first occurrences per call
//! name, the open calls of the current run, at most [`LIST_CAP`] listed calls of each kind), then a table.
//!
//! It reads the records of docs/log-format.md, the shim's and FlashInfer's own Python logger's alike (both
//! loggers in one file too). A call is counted at its level-1 line or at the start of its inputs record. A NaN
//! or Inf is a `nan_count=N` or `inf_count=N` line with N > 0: in an inputs record (an input), or in an outputs
//! record (an output: under `Tensor arguments after the call:` for the shim, in the `Output value:` tensors for
//! FlashInfer's logger) or in a graph replay record (before / after), or a `[flashinfer stats] id=N ... nan=K`
//! line that FlashInfer's statistics kernel prints at a replay for a record that deferred its statistics to it
//! inside a capture. Outputs records are paired with their inputs
//! record within one thread only (see [`runs`]); calls left open end as "raised" or "did not return".
//!
//! Exit status: 0 when nothing was found, 1 when a NaN/Inf or a call that did not return was found, 2 on
//! unusable input (a file that cannot be read or holds no record).

mod cuda_errors;
pub mod cut;
mod hints;
mod parse;
mod render;
mod runs;
mod show;
mod term;
#[cfg(test)]
mod tests;

use crate::lines;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::ExitCode;

/// Unparsed lines quoted on stderr.
const QUOTED_UNPARSED: usize = 5;
/// Calls listed per kind (raised, did not return); more are counted.
pub const LIST_CAP: usize = 50;
/// Runs per file whose process id and rank are kept; later runs are still told apart by number.
const MAX_RUNS_KEPT: usize = 4096;
/// The name NaNs of an outputs record without its inputs record are reported under.
const UNPAIRED: &str = "(outputs record without its inputs record)";

/// Where something was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// Index of the file in the command line.
    pub file: usize,
    /// Index of the run in that file (0 for the first).
    pub run: usize,
    /// 1-based line number.
    pub line: u64,
    /// The call's timestamp text, `YYYY-MM-DD HH:MM:SS` (empty when unknown).
    pub stamp: String,
    /// The call's thread and number (`thread 5678 call #1234`), or the replay (`replay 3`), when known.
    pub call: String,
    /// The argument, `arg[2]`, a keyword name, or `result` for a returned value.
    pub arg: String,
    /// The first line of the record that holds it (its `=` line when it has one), for `--show`.
    pub record: u64,
    /// The first line of the inputs record of its call, when that is another record (0: none), for `--show`.
    pub call_record: u64,
}

/// What is known of one call name.
#[derive(Clone, Debug, Default)]
pub struct NameStats {
    /// Calls seen.
    pub calls: u64,
    /// First NaN/Inf in an input.
    pub first_in: Option<Place>,
    /// First NaN/Inf in an output (after the call).
    pub first_out: Option<Place>,
    /// Calls (and graph replays) with a NaN/Inf in an input.
    pub nan_in_calls: u64,
    /// Calls (and graph replays) with a NaN/Inf in an output.
    pub nan_out_calls: u64,
}

/// One run of a process in a file, from its system information record.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// From `Process: PID (name)`.
    pub pid: Option<u32>,
    /// From `Rank: R of N (local L)`: `R of N`.
    pub rank: Option<String>,
    /// Whether the shim wrote a system information record in it (then it ends with an exit line, or died).
    pub shim: bool,
    /// The call started last, and where.
    pub last_call: Option<(String, Place)>,
}

/// One file read.
#[derive(Clone, Debug, Default)]
pub struct FileInfo {
    /// As given on the command line.
    pub path: String,
    /// The first [`MAX_RUNS_KEPT`] runs.
    pub runs: Vec<RunInfo>,
    /// Runs seen.
    pub run_count: u64,
    /// Records seen.
    pub records: u64,
    /// Lines read.
    pub lines: u64,
    /// Non-empty lines outside any record, and lines inside records that do not fit the grammar.
    pub other_lines: u64,
    /// Mostly lines outside records (a README, a source file): left out of the summary.
    pub not_a_log: bool,
}

/// Calls of one kind: the first [`LIST_CAP`] listed, all counted.
#[derive(Clone, Debug, Default)]
pub struct Listed {
    /// (name, place of the call line).
    pub listed: Vec<(String, Place)>,
    /// All of them.
    pub count: u64,
}

impl Listed {
    fn push(&mut self, name: String, place: Place) {
        self.count += 1;
        if self.listed.len() < LIST_CAP {
            self.listed.push((name, place));
        }
    }
}

/// Everything the summary accumulates over all files.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Files in command-line order.
    pub files: Vec<FileInfo>,
    /// Per call name (kernel launches as `[kernel] <name>`).
    pub names: BTreeMap<String, NameStats>,
    /// Calls during which the process ended.
    pub did_not_return: Listed,
    /// Calls that raised a Python exception (no outputs record, later records of their process follow).
    pub raised: Listed,
    /// Runs of the shim that ended without their exit line (the process died): their last call started.
    pub no_exit_line: Listed,
    /// Calls that returned an error (`Call failed:`), with the error.
    pub failed: Listed,
    /// Outputs records whose inputs record was not found.
    pub unmatched_outputs: u64,
    /// Lines inside records that do not fit the grammar.
    pub unparsed: u64,
    /// The first few of them, as `file:line: text`.
    pub unparsed_quotes: Vec<String>,
    /// Lines outside any record (program output mixed into stdout logs).
    pub other_lines: u64,
    /// The first CUDA error of each file that has one (`FLASHLOG_SYNC`).
    pub cuda_errors: Vec<cuda_errors::FirstError>,
}

impl Summary {
    /// Reads one log in a single pass, in bounded memory ([`lines`]); says what it skipped.
    pub fn read(&mut self, path: &str, reader: impl BufRead) -> std::io::Result<lines::Skipped> {
        let file = self.files.len();
        self.files.push(FileInfo { path: path.to_string(), ..FileInfo::default() });
        let mut errors = cuda_errors::Scan::default();
        let mut parser = parse::FileParser::new(self, file);
        let mut reader = reader;
        let skipped = lines::for_each(&mut reader, |line| match line {
            lines::Line::Text(raw) => {
                let text = String::from_utf8_lossy(raw);
                let line = text.trim_end_matches(['\n', '\r']);
                let found = errors.line(line);
                parser.line(line);
                if found {
                    let record = if parser.in_launch_record() { Err(()) } else { Ok(parser.record_of_last_line()) };
                    errors.set_record(record);
                }
            }
            lines::Line::Skipped => {
                errors.skipped_line();
                parser.skipped_line();
            }
        })?;
        parser.finish();
        self.cuda_errors.extend(errors.finish(path, file));
        Ok(skipped)
    }

    /// Whether a NaN/Inf, a call that did not return or a CUDA error was found (exit status 1).
    pub fn found_something(&self) -> bool {
        !self.cuda_errors.is_empty()
            || self.did_not_return.count > 0
            || self.no_exit_line.count > 0
            || self.names.values().any(|s| s.first_in.is_some() || s.first_out.is_some())
    }
}

const SUMMARY_HELP: &str = "\
usage: flashlog summary [--show] LOG...

Reads logs of any level, of the shim and of FlashInfer's own Python logger (both in one file too), in one pass
each, and prints per call name the number of calls, of calls with a NaN or Inf in an input and in an output, and
the first record where one appeared in an input and in an output; then the first such record overall, the calls
that did not return (the process ended inside them), the runs of the shim that ended without their exit line (the
process died: the last call it started), the first CUDA error of each file (FLASHLOG_SYNC=1: the call or graph
replay it is blamed on), the calls that failed or raised, with the `flashlog replay` command for those a level-10
dump holds, one line per file and the lines it could not parse. Places read FILE:LINE. The output fits the
terminal's width (or COLUMNS) and is coloured on a terminal unless NO_COLOR is set.

  --show   print the records themselves: the first NaN/Inf, each call that did not return, the last call of a
           run that died, the first CUDA error of each file

A file whose lines are mostly outside records (a README, a script) is not a log: named on stderr, left out.
Exit status: 0 nothing found, 1 a NaN/Inf, a call that did not return, a run that died or a CUDA error,
2 unusable input (a file that cannot be read or is not a log).";

/// Whether a file read is a log: at least one record, and at most half of its lines outside records or not
/// fitting the grammar of the records they are in.
fn not_a_log_reason(f: &FileInfo) -> Option<String> {
    if f.records == 0 {
        return Some("no records (not a flashlog or FlashInfer log?)".to_string());
    }
    (f.other_lines * 2 > f.lines).then(|| {
        format!(
            "not a log ({} of its {} lines are not records; give a log written by flashlog or FlashInfer)",
            f.other_lines, f.lines
        )
    })
}

/// `flashlog summary [--show] LOG...`.
pub fn main(args: &[String]) -> ExitCode {
    if args.first().is_some_and(|p| p == "-h" || p == "--help") {
        crate::print_out(&format!("{SUMMARY_HELP}\n"));
        return ExitCode::SUCCESS;
    }
    let show = args.iter().any(|a| a == "--show");
    let paths: Vec<&String> = args.iter().filter(|a| *a != "--show").collect();
    if let Some(bad) = paths.iter().find(|p| p.starts_with('-') && p.len() > 1) {
        eprintln!("flashlog summary: unknown option '{bad}' (flashlog summary --help)");
        return ExitCode::from(2);
    }
    if paths.is_empty() {
        eprintln!("flashlog summary: no log files given\n{}", crate::usage_line());
        return ExitCode::from(2);
    }
    let mut summary = Summary::default();
    let mut unusable = false;
    for path in paths {
        let before = summary.clone();
        let result = crate::log_input::open(path, "flashlog summary").and_then(|r| summary.read(path, r));
        if let Ok(skipped) = &result {
            lines::say("flashlog summary", path, skipped);
        }
        match result {
            Err(e) => {
                eprintln!("flashlog summary: {path}: {e}");
                unusable = true;
            }
            Ok(_) => {
                let file = summary.files.last().expect("read pushes it").clone();
                if let Some(reason) = not_a_log_reason(&file) {
                    eprintln!("flashlog summary: {path}: {reason}");
                    unusable = true;
                    if file.records > 0 {
                        // Its records are quotes (a README's examples): none of them counts.
                        summary = before;
                        summary.files.push(FileInfo { not_a_log: true, ..file });
                    }
                }
            }
        }
    }
    if summary.files.iter().any(|f| f.records > 0 && !f.not_a_log) {
        let (width, colour) = (term::width(), term::colour());
        let mut out = String::new();
        for (line, style) in summary.render_lines(width) {
            out.push_str(&if colour { term::paint(&line, style) } else { line });
            out.push('\n');
        }
        if show {
            let files: Vec<String> = summary.files.iter().map(|f| f.path.clone()).collect();
            match summary.show(|i| crate::log_input::open(&files[i], "flashlog summary")) {
                Ok(text) => out.push_str(&text),
                Err(e) => eprintln!("flashlog summary: --show: {e}"),
            }
        }
        crate::print_out(&out);
    }
    for q in &summary.unparsed_quotes {
        eprintln!("flashlog summary: unparsed: {q}");
    }
    if unusable {
        ExitCode::from(2)
    } else if summary.found_something() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
