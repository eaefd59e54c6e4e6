//! The first CUDA error of each file (`FLASHLOG_SYNC`'s lines, `docs/cuda-errors.md`): where its line is, the
//! call it is blamed on (or the graph, the replay and the progress of its captured calls), and the error's
//! name. Read in the same pass as the rest of the summary, apart from its parser: it only needs the call lines,
//! the correlation lines and its own lines.

use super::parse::{correlation_line, split_stamp};

/// The first CUDA error of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstError {
    /// The file as given on the command line.
    pub path: String,
    /// 1-based line of the error line.
    pub line: u64,
    /// `NAME (CODE)`.
    pub error: String,
    /// What it is blamed on: `after call <name> #N thread T`, `in graph id=N, replay K (...)`, ...
    pub blame: String,
    /// The file's index in the summary.
    pub file: usize,
    /// 1-based first line of the record holding the error line (its call's inputs record for an outputs
    /// record), or the error line itself when it stands outside records: what `--show` prints.
    pub record: u64,
}

/// The scanner of one file.
#[derive(Default)]
pub struct Scan {
    line_no: u64,
    found: Option<(u64, String, String)>,
    /// The latest call line: (name, line).
    last_call: Option<(String, u64)>,
    /// The correlation form of the latest call line's record (its inputs record's second line), if any.
    call_correlation: Option<String>,
    /// The previous line's correlation form, when it was one.
    previous_correlation: Option<String>,
    /// Inside a graph replay error record: (header, line of its error line, error, progress notes).
    graph: Option<GraphRecord>,
    /// The first line of the record the error was found in (set by the caller, see [`Scan::line`]).
    record: Option<u64>,
    /// Whether the previous line was a record's `=` line, and the first line of the latest call's record (its
    /// `=` line when framed).
    previous_eq: bool,
    last_call_record: u64,
}

#[derive(Default)]
struct GraphRecord {
    header: String,
    line: u64,
    error: String,
    notes: Vec<String>,
}

/// `[call <name> #N thread T]` as the summary shows a call: `<name> #N thread T`.
fn call_text(corr: &str) -> Option<String> {
    correlation_line(corr).map(|(name, number, thread)| format!("{name} #{number} thread {thread}"))
}

/// The error part of `<prefix>NAME (CODE)<suffix>`.
fn error_of<'a>(rest: &'a str, suffix: &str) -> &'a str {
    rest.split(suffix).next().unwrap_or(rest)
}

impl Scan {
    /// A line the reader skipped (too long): counted, so later line numbers stay right.
    pub fn skipped_line(&mut self) {
        self.line_no += 1;
        self.previous_correlation = None;
        self.previous_eq = false;
    }

    /// Reads one line of the file; true when the file's first CUDA error was found at it (the caller then
    /// says which record it belongs to with [`Scan::set_record`]).
    pub fn line(&mut self, line: &str) -> bool {
        let before = self.found.is_some();
        self.scan_line(line);
        !before && self.found.is_some()
    }

    /// Where the error just found is: `Some(record)`, the first line of the record holding it; `None`, outside
    /// records; `Err(())`, after a kernel-launch record made inside a call (an uncorrelated log), where the
    /// latest call's record is the one to show.
    pub fn set_record(&mut self, record: Result<Option<u64>, ()>) {
        self.record = match record {
            Ok(r) => r,
            Err(()) => Some(self.last_call_record).filter(|l| *l > 0),
        };
    }

    fn scan_line(&mut self, line: &str) {
        self.line_no += 1;
        let previous_eq = std::mem::replace(&mut self.previous_eq, line == "=".repeat(80));
        let previous = self.previous_correlation.take();
        if line.starts_with("[call ") {
            self.previous_correlation = Some(line.to_string());
            if self.line_no == self.last_call.as_ref().map_or(0, |(_, l)| l + 1) {
                self.call_correlation = Some(line.to_string());
            }
        }
        if let Some(g) = self.graph.as_mut() {
            if line == "=".repeat(80) {
                let g = self.graph.take().unwrap_or_default();
                if self.found.is_none() && !g.error.is_empty() {
                    let notes = if g.notes.is_empty() { String::new() } else { format!(" ({})", g.notes.join(", ")) };
                    self.found = Some((g.line, g.error, format!("in {}{notes}", g.header)));
                }
            } else if let Some(rest) = line.strip_prefix("[CUDA error ").and_then(|r| r.split_once(": ")) {
                g.line = self.line_no;
                g.error = error_of(rest.1, "]").to_string();
            } else if let Some(call) = line.strip_prefix("last completed: ") {
                g.notes.push(format!("last completed: {}", short_call(call)));
            } else if let Some(call) = line.strip_prefix("first not completed: ") {
                g.notes.push(format!("first not completed: {}", short_call(call)));
            }
            return;
        }
        if let Some((_, rest)) = split_stamp(line) {
            if let Some(name) = rest.strip_prefix("FlashInfer API Call: ") {
                self.last_call = Some((name.to_string(), self.line_no));
                self.last_call_record = if previous_eq { self.line_no - 1 } else { self.line_no };
                self.call_correlation = None;
            } else if let Some(header) = rest.strip_prefix("FlashInfer Graph Replay Error: ") {
                self.graph = Some(GraphRecord { header: header.to_string(), ..GraphRecord::default() });
            }
            return;
        }
        if self.found.is_some() || !line.starts_with("[CUDA error ") {
            return;
        }
        let last = || match &self.last_call {
            Some((name, line)) => format!("{name} (call line {line})"),
            None => "no call".to_string(),
        };
        let (error, blame) = if let Some(rest) = line.strip_prefix("[CUDA error after this call: ") {
            // Level 1: `... (CODE)] [call <name> #N thread T]`; in an outputs record the line after its
            // correlation line, or the only call of an uncorrelated log.
            let (error, tail) = rest.split_once("] ").unwrap_or((error_of(rest, "]"), ""));
            let call = call_text(tail).or_else(|| previous.as_deref().and_then(call_text)).unwrap_or_else(last);
            (error.to_string(), format!("after call {call}"))
        } else if let Some(rest) = line.strip_prefix("[CUDA error before this call: ") {
            let call = self.call_correlation.as_deref().and_then(call_text).unwrap_or_else(last);
            (error_of(rest, ", from earlier work").to_string(), format!("before call {call}, from earlier work"))
        } else if let Some((what, rest)) = line.strip_prefix("[CUDA error ").and_then(|r| r.split_once(": ")) {
            (error_of(rest, ",").trim_end_matches(']').to_string(), what.to_string())
        } else {
            return;
        };
        self.found = Some((self.line_no, error, blame));
    }

    /// The file's first CUDA error, if any; `file` is the file's index in the summary.
    pub fn finish(self, path: &str, file: usize) -> Option<FirstError> {
        let record = self.record;
        self.found.map(|(line, error, blame)| FirstError {
            path: path.to_string(),
            line,
            error,
            blame,
            file,
            record: record.unwrap_or(line),
        })
    }
}

/// `<name> [call <name> #N thread T]` as `<name> #N thread T`.
fn short_call(text: &str) -> String {
    match text.split_once(" [call ") {
        Some((_, corr)) => call_text(&format!("[call {corr}")).unwrap_or_else(|| text.to_string()),
        None => text.to_string(),
    }
}

/// The line the summary prints for a file's first CUDA error: FILE:LINE first, as its other places.
pub fn line_of(e: &FirstError) -> String {
    format!("first CUDA error: {}:{} {} {}", e.path, e.line, e.error, e.blame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Option<FirstError> {
        let mut s = Scan::default();
        text.lines().for_each(|l| {
            s.line(l);
        });
        s.finish("x.log", 0)
    }

    #[test]
    fn blames_the_call_of_each_form() {
        let level1 = "[2026-12-07 05:26:22] FlashInfer API Call: m.a\n\
            [CUDA error after this call: CUDA_ERROR_ILLEGAL_ADDRESS (700)] [call m.a #2 thread 9]\n\
            [CUDA error before this call: CUDA_ERROR_ILLEGAL_ADDRESS (700), from earlier work]\n";
        let e = scan(level1).unwrap();
        assert_eq!((e.line, e.error.as_str()), (2, "CUDA_ERROR_ILLEGAL_ADDRESS (700)"));
        assert_eq!(e.blame, "after call m.a #2 thread 9");
        let outputs = "[2026-12-07 05:26:22] FlashInfer API Call: m.b\n[call m.b #7 thread 3]\n\
            [CUDA error after this call: CUDA_ERROR_LAUNCH_FAILED (719)]\n";
        assert_eq!(scan(outputs).unwrap().blame, "after call m.b #7 thread 3");
        let correlated = "[2026-12-07 05:26:22] FlashInfer API Call: m.e\n[call m.e #4 thread 8]\n---\n\
            [CUDA error before this call: CUDA_ERROR_ILLEGAL_ADDRESS (700), from earlier work]\n";
        assert_eq!(scan(correlated).unwrap().blame, "before call m.e #4 thread 8, from earlier work");
        let uncorrelated = "[2026-12-07 05:26:22] FlashInfer API Call: m.c\n---\n\
            [CUDA error before this call: CUDA_ERROR_ILLEGAL_ADDRESS (700), from earlier work]\n";
        let e = scan(uncorrelated).unwrap();
        assert_eq!(e.blame, "before call m.c (call line 1), from earlier work");
        assert_eq!(e.error, "CUDA_ERROR_ILLEGAL_ADDRESS (700)");
        assert_eq!(scan("[2026-12-07 05:26:22] FlashInfer API Call: m.d\n"), None);
    }

    #[test]
    fn a_graph_record_names_graph_replay_and_progress() {
        let eq = "=".repeat(80);
        let text = format!(
            "{eq}\n[2026-12-07 05:26:25] FlashInfer Graph Replay Error: graph id=1, replay 3\n{}\n\
             [CUDA error after this replay: CUDA_ERROR_ILLEGAL_ADDRESS (700)]\n\
             FlashInfer calls captured into this graph, in capture order:\n  1. m.a [call m.a #2 thread 5]\n\
             last completed: m.a [call m.a #2 thread 5]\nfirst not completed: m.f [call m.f #3 thread 5]\n{eq}\n",
            "-".repeat(80)
        );
        let e = scan(&text).unwrap();
        assert_eq!(e.line, 4);
        assert_eq!(e.error, "CUDA_ERROR_ILLEGAL_ADDRESS (700)");
        assert_eq!(
            e.blame,
            "in graph id=1, replay 3 (last completed: m.a #2 thread 5, first not completed: m.f #3 thread 5)"
        );
    }
}
