//! The calls and findings of one log, record by record: the one reader of FlashInfer-format logs that
//! `flashlog export --trace` and `flashlog report` share, so both see the same calls, outcomes and findings.
//!
//! The reader turns lines into [`Event`]s: a call (with its outcome and the statistics text of its tensors), a
//! graph replay record, a NaN/Inf count above zero, a call that did not return and a CUDA error line, each with
//! its line number so that a place is `FILE:LINE`.
//!
//! Time: a time is microseconds since the earliest second seen. A record whose correlation form carries its time
//! (`[call <name> #N thread T at HH:MM:SS.ffffff]`: several threads, or `FLASHLOG_CORRELATE=1`) has that measured
//! time: a call runs from its inputs record's time to its outputs record's. Other records carry their time to the
//! second only (FlashInfer's header format): they get the microsecond after the record before them in the same
//! second (the first of a second its microsecond 1), so the order of records, and so of calls, is exact, and
//! distances inside a second are not measured ones.

use crate::lines::{Line, Skipped};
use std::io::BufRead;

/// The frame line of a record.
pub const EQ: &str = "================================================================================";
/// Calls left open per file before the oldest is closed as "did not return".
const MAX_OPEN: usize = 4096;

/// One call (or one graph replay of a captured call) of a log.
pub struct Call {
    /// The function's name (`norm.rmsnorm`, `[kernel] NAME` for a kernel launch).
    pub name: String,
    /// Its time (see the module's comment on time).
    pub ts: u64,
    /// The thread of its correlation line (0 without one).
    pub tid: u64,
    /// Its number in the correlation line.
    pub number: Option<u64>,
    /// The line of its header (1-based).
    pub line: u64,
    /// Each tensor's statistics text (`min=... max=... mean=... nan_count=... inf_count=...`) by argument label
    /// (`arg[0]`, `arg[0] (after)`, `result`), in the record's order; `failed` holds a failed call's error.
    pub args: Vec<(String, String)>,
    /// `id=N, replay K` for a graph replay record.
    pub replay: Option<String>,
}

/// How a call ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Its outputs record was read.
    Returned,
    /// Its outputs record says `Call failed:`.
    Failed,
    /// No outputs record before the end of its run.
    DidNotReturn,
    /// A level-1 record (the call's name only).
    Level1,
    /// A kernel launch record.
    Launched,
    /// A graph replay record.
    Replay,
}

impl Outcome {
    /// The words the trace and the report show.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Returned => "returned",
            Outcome::Failed => "failed",
            Outcome::DidNotReturn => "did not return",
            Outcome::Level1 => "level 1",
            Outcome::Launched => "launched",
            Outcome::Replay => "graph replay",
        }
    }
}

/// What the reader found, in the order of the log.
pub enum Kind {
    /// A call that ended (or was closed) at `end`.
    Call { call: Call, end: u64, outcome: Outcome },
    /// A `nan_count` or `inf_count` above zero: `arg` of call `name`, at `line`.
    NonFinite { name: String, arg: String, output: bool, replay: bool, ts: u64, tid: u64, line: u64 },
    /// A call with no outputs record; `line` is its header's.
    DidNotReturn { name: String, ts: u64, tid: u64, line: u64 },
    /// `[CUDA error after this call: ERROR]` after call `name` (`(no call)` outside an outputs record).
    CudaError { error: String, name: String, ts: u64, tid: u64, line: u64 },
}

/// One finding or call, with the process id of the run it belongs to (None before a `Process:` line).
pub struct Event {
    /// The process of the run, from its system information record.
    pub pid: Option<u64>,
    /// What was found.
    pub kind: Kind,
}

/// What the file said about itself.
#[derive(Default)]
pub struct FileInfo {
    /// The process id of its last run.
    pub pid: Option<u64>,
    /// `R of N` from the system information record's `Rank:` line.
    pub rank: Option<String>,
    /// Lines read.
    pub lines: u64,
    /// What the line reader skipped (over-long lines, NUL bytes).
    pub skipped: Skipped,
    /// Whether some record carried its time to the microsecond (then times are measured ones, see the module's
    /// comment on time).
    pub timed: bool,
}

/// The fields of a correlation form's inside (`<name> #N thread T` and, in newer logs, ` at HH:MM:SS.ffffff`):
/// (name, number, thread, microseconds since midnight). Old logs without the time parse with None there.
pub fn correlation(tag: &str) -> (&str, Option<u64>, u64, Option<u64>) {
    let (rest, thread) = tag.rsplit_once(" thread ").unwrap_or((tag, "0"));
    let (thread, at) = match thread.split_once(" at ") {
        Some((t, a)) => (t, time_of_day(a)),
        None => (thread, None),
    };
    let (name, number) = match rest.rsplit_once(" #") {
        Some((name, n)) => (name, n.parse::<u64>().ok()),
        None => (rest, None),
    };
    (name, number, thread.parse::<u64>().unwrap_or(0), at)
}

/// `HH:MM:SS.ffffff` as microseconds since midnight.
fn time_of_day(text: &str) -> Option<u64> {
    let (hms, frac) = text.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok().filter(|_| p.len() == 2));
    let (h, m, sec) = (parts.next()??, parts.next()??, parts.next()??);
    let micros = frac.parse::<u64>().ok().filter(|_| frac.len() == 6)?;
    (parts.next().is_none() && h < 24 && m < 60 && sec < 61).then_some(((h * 60 + m) * 60 + sec) * 1_000_000 + micros)
}

/// Seconds since an epoch of `YYYY-MM-DD HH:MM:SS` (only differences matter), or None.
pub fn seconds(stamp: &str) -> Option<u64> {
    let n = |r: std::ops::Range<usize>| stamp.get(r).and_then(|s| s.parse::<u64>().ok());
    let (y, mo, d, h, mi, s) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from the civil date (any monotonic count would do; this one is exact).
    let (y, mo) = if mo <= 2 { (y - 1, mo + 12) } else { (y, mo) };
    let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * (mo - 3) + 2) / 5 + d;
    Some(((days * 24 + h) * 60 + mi) * 60 + s)
}

/// `[YYYY-MM-DD HH:MM:SS] REST` as (stamp, REST).
pub fn stamped(line: &str) -> Option<(&str, &str)> {
    (line.len() > 22 && line.as_bytes()[0] == b'[' && line.as_bytes()[20] == b']')
        .then(|| line.get(1..20).zip(line.get(22..)))
        .flatten()
        .filter(|(s, _)| seconds(s).is_some())
}

/// Where stats lines go.
enum Current {
    /// The inputs record of `open[i]`.
    Inputs(usize),
    /// The outputs record of a call, until it ends.
    Outputs(Call),
    /// A graph replay record, until it ends.
    Replay(Call),
}

/// The reader of one file.
struct Reader<'a> {
    sink: &'a mut dyn FnMut(Event),
    zero: &'a mut Option<u64>,
    info: FileInfo,
    /// Seconds of the current record, and the latest time given (see the module's comment on time).
    second: u64,
    last: u64,
    /// A level-1 call, until the next line says whether its correlation line follows.
    level1: Option<Call>,
    /// The measured time of the outputs record being read.
    outputs_at: Option<u64>,
    open: Vec<Call>,
    /// Calls with a correlation line still open when another run's system information record came, with the
    /// process of their run: processes appending to one file interleave their records, so their outputs records
    /// may still come. Decided at the end of the file.
    parked: Vec<(Call, Option<u64>)>,
    current: Option<Current>,
    arg: String,
    after_eq: bool,
    after_header: bool,
}

impl Reader<'_> {
    fn emit(&mut self, kind: Kind) {
        (self.sink)(Event { pid: self.info.pid, kind });
    }

    fn now(&mut self, stamp: Option<&str>) -> u64 {
        if let Some(s) = stamp.and_then(seconds) {
            let zero = *self.zero.get_or_insert(s);
            self.second = s.max(zero);
        }
        let base = (self.second - self.zero.unwrap_or(self.second)) * 1_000_000;
        self.last =
            if (base..base + 1_000_000).contains(&self.last) { (self.last + 1).min(base + 999_999) } else { base + 1 };
        self.last
    }

    /// The time of a correlation form's `at` field (microseconds since midnight), on the day of the current
    /// record (the day before or after when that is nearer: a call across midnight); it becomes the latest time.
    fn measured(&mut self, of_day: u64) -> Option<u64> {
        const DAY: u64 = 86_400;
        let zero = (*self.zero)?;
        let current = self.second * 1_000_000;
        let mut at = (self.second - self.second % DAY) * 1_000_000 + of_day;
        if at + DAY / 2 * 1_000_000 < current {
            at += DAY * 1_000_000;
        } else if at > current + DAY / 2 * 1_000_000 {
            at = at.saturating_sub(DAY * 1_000_000);
        }
        let at = at.max(zero * 1_000_000);
        self.second = at / 1_000_000;
        self.last = at - zero * 1_000_000;
        self.info.timed = true;
        Some(self.last)
    }

    fn close(&mut self, call: Call, end: u64, outcome: Outcome) {
        self.emit(Kind::Call { call, end, outcome });
    }

    fn end_outputs(&mut self) {
        match self.current.take() {
            Some(Current::Outputs(call)) => {
                let end = match self.outputs_at.take() {
                    Some(at) => at,
                    None => self.now(None),
                };
                let failed = call.args.iter().any(|(k, _)| k == "failed");
                self.close(call, end, if failed { Outcome::Failed } else { Outcome::Returned });
            }
            Some(Current::Replay(call)) => {
                let end = call.ts + 1;
                self.close(call, end, Outcome::Replay);
            }
            _ => {}
        }
    }

    /// The end of the file: every call still open, parked ones first, did not return.
    fn did_not_return_all(&mut self) {
        let end = self.end_of_run();
        for (call, pid) in std::mem::take(&mut self.parked) {
            self.did_not_return(call, end, pid);
        }
        let pid = self.info.pid;
        for call in std::mem::take(&mut self.open) {
            self.did_not_return(call, end, pid);
        }
    }

    /// A system information record: the run before it ends. Its calls still open did not return, except those
    /// with a correlation line (thread and number tell them apart across processes), which are parked.
    fn park_open_calls(&mut self) {
        let end = self.end_of_run();
        let pid = self.info.pid;
        for call in std::mem::take(&mut self.open) {
            if call.tid == 0 || call.number.is_none() {
                self.did_not_return(call, end, pid);
                continue;
            }
            if self.parked.len() >= MAX_OPEN {
                let (oldest, its_pid) = self.parked.remove(0);
                self.did_not_return(oldest, end, its_pid);
            }
            self.parked.push((call, pid));
        }
    }

    /// A run ends (another one's system information record, or the end of the file): the records being read
    /// end; returns the time the calls left open end at.
    fn end_of_run(&mut self) -> u64 {
        self.end_level1(None);
        self.end_outputs();
        self.now(None)
    }

    /// `call`, of the run of process `pid`, did not return.
    fn did_not_return(&mut self, call: Call, end: u64, pid: Option<u64>) {
        let current = std::mem::replace(&mut self.info.pid, pid);
        let (name, tid, line) = (call.name.clone(), call.tid, call.line);
        self.emit(Kind::DidNotReturn { name, ts: end, tid, line });
        self.close(call, end, Outcome::DidNotReturn);
        self.info.pid = current;
    }

    fn call(&mut self, name: String, ts: u64) -> Call {
        Call { name, ts, tid: 0, number: None, line: self.info.lines, args: Vec::new(), replay: None }
    }

    /// Closes a level-1 call; `tag` is the inside of its correlation line when one follows it.
    fn end_level1(&mut self, tag: Option<&str>) {
        let Some(mut call) = self.level1.take() else { return };
        if let Some(tag) = tag {
            let (_, number, tid, at) = correlation(tag);
            (call.tid, call.number) = (tid, number);
            if let Some(at) = at.and_then(|at| self.measured(at)) {
                call.ts = at;
            }
        }
        let end = call.ts + 1;
        self.close(call, end, Outcome::Level1);
    }

    fn line(&mut self, line: &str) {
        self.info.lines += 1;
        if let Some(level1) = &self.level1 {
            // Its own correlation line (the record is written whole), not another thread's outputs record of an
            // open call after a level-1 record that has none.
            let tag = line.strip_prefix("[call ").and_then(|t| t.strip_suffix(']')).filter(|tag| {
                let (name, number, tid, _) = correlation(tag);
                name == level1.name && !self.open.iter().any(|c| c.tid == tid && c.number == number)
            });
            self.end_level1(tag);
            if tag.is_some() {
                return;
            }
        }
        let after_header = std::mem::replace(&mut self.after_header, false);
        if line == EQ {
            self.end_outputs();
            self.after_eq = true;
            return;
        }
        let after_eq = std::mem::replace(&mut self.after_eq, false);
        if let Some((stamp, rest)) = stamped(line) {
            if rest == "FlashInfer API Logging - System Information" {
                self.park_open_calls();
                return;
            }
            if let Some(name) = rest.strip_prefix("FlashInfer API Call: ") {
                self.end_outputs();
                let ts = self.now(Some(stamp));
                let call = self.call(name.to_string(), ts);
                if after_eq {
                    if self.open.len() >= MAX_OPEN {
                        let oldest = self.open.remove(0);
                        self.close(oldest, ts, Outcome::DidNotReturn);
                    }
                    self.open.push(call);
                    self.current = Some(Current::Inputs(self.open.len() - 1));
                    self.after_header = true;
                } else {
                    self.level1 = Some(call);
                }
                return;
            }
            if let Some(kernel) = rest.strip_prefix("FlashInfer Kernel Launch: ") {
                self.end_outputs();
                let ts = self.now(Some(stamp));
                // Made inside a call: ` [call <name> #N thread T at <time>]` ends the line (its thread and time).
                let (kernel, form) = match kernel.strip_suffix(']').and_then(|k| k.rsplit_once(" [call ")) {
                    Some((k, form)) => (k, Some(correlation(form))),
                    None => (kernel, None),
                };
                let mut call = self.call(format!("[kernel] {kernel}"), ts);
                if let Some((_, _, tid, at)) = form {
                    call.tid = tid;
                    if let Some(at) = at.and_then(|at| self.measured(at)) {
                        call.ts = at;
                    }
                }
                let end = call.ts + 1;
                self.close(call, end, Outcome::Launched);
                return;
            }
            if let Some(what) = rest.strip_prefix("FlashInfer Graph Replay: ") {
                self.end_outputs();
                let ts = self.now(Some(stamp));
                let (name, replay) = match what.strip_suffix(')').and_then(|w| w.rsplit_once(" (")) {
                    Some((name, replay)) => (name, Some(replay.to_string())),
                    None => (what, None),
                };
                let mut call = self.call(name.to_string(), ts);
                call.replay = replay;
                self.current = Some(Current::Replay(call));
                return;
            }
        }
        if let Some(r) = line.strip_prefix("Rank: ") {
            self.info.rank = Some(r.split(" (local").next().unwrap_or(r).to_string());
            return;
        }
        if let Some(p) = line.strip_prefix("Process: ") {
            if let Some(pid) = p.split(' ').next().and_then(|n| n.parse::<u64>().ok()) {
                self.info.pid = Some(pid);
            }
            return;
        }
        if let Some(tag) = line.strip_prefix("[call ").and_then(|t| t.strip_suffix(']')) {
            let (name, number, tid, of_day) = correlation(tag);
            if after_header {
                if let Some(Current::Inputs(i)) = self.current {
                    (self.open[i].tid, self.open[i].number) = (tid, number);
                    if let Some(at) = of_day.and_then(|t| self.measured(t)) {
                        self.open[i].ts = at;
                    }
                }
                return;
            }
            self.end_outputs();
            // That thread's call of that number (in this run, else parked from an earlier one), else (its inputs
            // record was written before a second thread logged, without the line) the latest uncorrelated call of
            // that name.
            let same = |c: &Call| c.tid == tid && c.number == number;
            let early = |c: &Call| c.tid == 0 && c.number.is_none() && c.name == name;
            let call = if let Some(at) = self.open.iter().rposition(same) {
                Some(self.open.remove(at))
            } else if let Some(at) = self.parked.iter().rposition(|(c, _)| same(c)) {
                Some(self.parked.remove(at).0)
            } else {
                self.open.iter().rposition(early).map(|at| self.open.remove(at))
            };
            if let Some(call) = call {
                self.current = Some(Current::Outputs(call));
                self.outputs_at = of_day.and_then(|t| self.measured(t));
            }
            return;
        }
        if line == "Output value:" || line.starts_with("Call failed: ") {
            if !matches!(self.current, Some(Current::Outputs(_))) {
                self.end_outputs();
                if let Some(at) = self.open.iter().rposition(|c| c.tid == 0) {
                    self.current = Some(Current::Outputs(self.open.remove(at)));
                }
            }
            if let (Some(error), Some(Current::Outputs(call))) =
                (line.strip_prefix("Call failed: "), self.current.as_mut())
            {
                call.args.push(("failed".to_string(), error.to_string()));
            }
            self.arg = "result".to_string();
            return;
        }
        if let Some(error) = line.strip_prefix("[CUDA error after this call: ").and_then(|e| e.strip_suffix(']')) {
            // A call without an outputs record (level 1) gets the line on its own, ending with its correlation form.
            if let Some((error, form)) = error.split_once("] [call ") {
                let (name, _, tid, of_day) = correlation(form);
                let ts = match of_day.and_then(|t| self.measured(t)) {
                    Some(at) => at,
                    None => self.now(None),
                };
                let (error, name, line) = (error.to_string(), name.to_string(), self.info.lines);
                self.emit(Kind::CudaError { error, name, ts, tid, line });
                return;
            }
            let ts = self.now(None);
            let (name, tid) = match &self.current {
                Some(Current::Outputs(c)) => (c.name.clone(), c.tid),
                _ => (String::from("(no call)"), 0),
            };
            let line = self.info.lines;
            self.emit(Kind::CudaError { error: error.to_string(), name, ts, tid, line });
            return;
        }
        self.value_line(line);
    }

    fn value_line(&mut self, line: &str) {
        let t = line.trim_start();
        if line.starts_with("  ") && !line.starts_with("   ") {
            let head = t.trim_end_matches(':');
            if head.starts_with("arg[") {
                self.arg = head.to_string();
            } else if let Some((key, _)) = t.split_once('=') {
                if !key.is_empty() && key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
                    self.arg = key.to_string();
                }
            }
            return;
        }
        let Some((key, value)) = t.split_once('=') else { return };
        if !["min", "max", "mean", "nan_count", "inf_count"].contains(&key) {
            return;
        }
        let (call, output, replay) = match self.current.as_mut() {
            Some(Current::Inputs(i)) => (&mut self.open[*i], false, false),
            Some(Current::Outputs(c)) => (c, true, false),
            Some(Current::Replay(c)) => (c, self.arg.ends_with("(after)"), true),
            None => return,
        };
        let arg = if output && !replay && !self.arg.ends_with("(after)") && self.arg != "result" {
            format!("{} (after)", self.arg)
        } else {
            self.arg.clone()
        };
        match call.args.iter_mut().find(|(k, _)| *k == arg) {
            Some((_, v)) => {
                v.push(' ');
                v.push_str(key);
                v.push('=');
                v.push_str(value);
            }
            None => call.args.push((arg.clone(), format!("{key}={value}"))),
        }
        let count = value.parse::<u64>().unwrap_or(0);
        if key.ends_with("_count") && count > 0 {
            let (name, tid) = (call.name.clone(), call.tid);
            let ts = self.now(None);
            let line = self.info.lines;
            self.emit(Kind::NonFinite { name, arg, output, replay, ts, tid, line });
        }
    }
}

/// Reads one log, giving each call and finding to `sink` in the order of the log. `zero` is the earliest
/// second seen (shared by the files of one trace or report, so that their times compare).
pub fn read(zero: &mut Option<u64>, mut input: impl BufRead, sink: &mut dyn FnMut(Event)) -> std::io::Result<FileInfo> {
    let mut reader = Reader {
        sink,
        zero,
        info: FileInfo::default(),
        second: 0,
        last: 0,
        level1: None,
        outputs_at: None,
        open: Vec::new(),
        parked: Vec::new(),
        current: None,
        arg: String::new(),
        after_eq: false,
        after_header: false,
    };
    let skipped = crate::lines::for_each(&mut input, |line| match line {
        Line::Text(raw) => reader.line(String::from_utf8_lossy(raw).trim_end_matches('\r')),
        // A line too long to read counts, so that later places keep their line numbers, and means nothing.
        Line::Skipped => reader.line(""),
    })?;
    reader.did_not_return_all();
    Ok(FileInfo { skipped, ..reader.info })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_monotonic_across_days_and_months() {
        let a = seconds("2026-02-28 23:59:59").unwrap();
        assert_eq!(seconds("2026-03-01 00:00:00").unwrap(), a + 1);
        assert_eq!(seconds("2026-12-31 23:59:59").unwrap() + 1, seconds("2027-01-01 00:00:00").unwrap());
        assert!(seconds("2026-1x-01 00:00:00").is_none());
    }

    #[test]
    fn graph_replay_records_are_calls_with_their_statistics() {
        let log = format!(
            "{EQ}\n[2026-12-07 05:22:24] FlashInfer Graph Replay: cudaops.scale2 (id=1, replay 2)\n{}\n\
             Tensor arguments before the call:\n  arg[1]:\n    min=nan\n    max=nan\n    mean=nan\n    nan_count=1\n\
             \x20   inf_count=0\nTensor arguments after the call:\n  arg[0] (after):\n    min=1.0\n    nan_count=0\n{EQ}\n",
            "-".repeat(80)
        );
        let (mut zero, mut events) = (None, Vec::new());
        read(&mut zero, log.as_bytes(), &mut |e| events.push(e.kind)).unwrap();
        let [Kind::NonFinite { name, arg, output: false, replay: true, line: 9, .. }, Kind::Call { call, outcome: Outcome::Replay, .. }] =
            &events[..]
        else {
            panic!("{} events", events.len())
        };
        assert_eq!((name.as_str(), arg.as_str(), call.name.as_str()), ("cudaops.scale2", "arg[1]", "cudaops.scale2"));
        assert_eq!(call.replay.as_deref(), Some("id=1, replay 2"));
        assert_eq!(call.args[1], ("arg[0] (after)".to_string(), "min=1.0 nan_count=0".to_string()));
    }

    /// (name, thread, start, end, outcome) of each call of a log.
    type Calls = Vec<(String, u64, u64, u64, Outcome)>;

    fn calls_of(log: &str) -> (Calls, FileInfo) {
        let (mut zero, mut calls) = (None, Vec::new());
        let info = read(&mut zero, log.as_bytes(), &mut |e| {
            if let Kind::Call { call, end, outcome } = e.kind {
                calls.push((call.name, call.tid, call.ts, end, outcome));
            }
        })
        .unwrap();
        (calls, info)
    }

    #[test]
    fn measured_times_come_from_correlation_forms() {
        let dash = "-".repeat(80);
        let log = format!(
            "[2026-12-07 23:59:59] FlashInfer API Call: m.a\n[call m.a #1 thread 7 at 23:59:59.000100]\n\
             {EQ}\n[2026-12-07 23:59:59] FlashInfer API Call: m.b\n[call m.b #2 thread 7 at 23:59:59.999000]\n{dash}\n\
             (No explicit arguments)\n\
             [2026-12-07 23:59:59] FlashInfer Kernel Launch: k(int) [call m.b #2 thread 7 at 23:59:59.999500]\n\
             [call m.b #2 thread 7 at 00:00:00.000250]\nOutput value:\n  None\n{EQ}\n\n"
        );
        let (calls, info) = calls_of(&log);
        assert!(info.timed);
        let names: Vec<(&str, u64, u64, u64)> = calls.iter().map(|(n, t, s, e, _)| (n.as_str(), *t, *s, *e)).collect();
        // The outputs record is after midnight: the next day, 1250 us after its inputs record.
        assert_eq!(
            names,
            [("m.a", 7, 100, 101), ("[kernel] k(int)", 7, 999_500, 999_501), ("m.b", 7, 999_000, 1_000_250)]
        );
        assert_eq!(calls[0].4, Outcome::Level1);
    }

    #[test]
    fn records_without_times_keep_their_order_within_the_second() {
        let log = "[2026-12-07 10:00:00] FlashInfer API Call: m.a\n[2026-12-07 10:00:00] FlashInfer API Call: m.b\n\
                   [call m.b #2 thread 3]\n[2026-12-07 10:00:01] FlashInfer API Call: m.c\n";
        let (calls, info) = calls_of(log);
        assert!(!info.timed);
        let got: Vec<(&str, u64, u64)> = calls.iter().map(|(n, t, s, _, _)| (n.as_str(), *t, *s)).collect();
        assert_eq!(got, [("m.a", 0, 1), ("m.b", 3, 2), ("m.c", 0, 1_000_001)]);
        assert_eq!(correlation("m.f #3 thread 9 at 25:00:00.000000"), ("m.f", Some(3), 9, None));
        assert_eq!(correlation("m.f #3 thread 9 at 01:02:03.000004"), ("m.f", Some(3), 9, Some(3_723_000_004)));
    }

    #[test]
    fn outputs_pair_after_level1_records_and_with_early_inputs() {
        let dash = "-".repeat(80);
        // An uncorrelated inputs record (written before a second thread logged), a level-1 record without a line,
        // then another thread's call, whose outputs record follows the level-1 record, then the early one's.
        let log = format!(
            "{EQ}\n[2026-12-07 10:00:00] FlashInfer API Call: m.a\n{dash}\n(No explicit arguments)\n\
             {EQ}\n[2026-12-07 10:00:00] FlashInfer API Call: m.b\n[call m.b #3 thread 8 at 10:00:00.000300]\n{dash}\n\
             (No explicit arguments)\n[2026-12-07 10:00:00] FlashInfer API Call: m.b\n\
             [call m.b #3 thread 8 at 10:00:00.000500]\nOutput value:\n  None\n{EQ}\n\n\
             [call m.a #1 thread 7 at 10:00:00.000600]\nOutput value:\n  None\n{EQ}\n\n"
        );
        let (calls, _) = calls_of(&log);
        let got: Vec<(&str, u64, u64, Outcome)> =
            calls.iter().map(|(n, t, _, e, o)| (n.as_str(), *t, *e, *o)).collect();
        assert_eq!(
            got,
            [("m.b", 0, 302, Outcome::Level1), ("m.b", 8, 500, Outcome::Returned), ("m.a", 0, 600, Outcome::Returned)]
        );
    }

    #[test]
    fn processes_appending_to_one_file_pair_across_their_runs() {
        let dash = "-".repeat(80);
        let sysinfo = |pid: u32| {
            format!("{EQ}\n[2026-12-07 10:00:00] FlashInfer API Logging - System Information\n{EQ}\nProcess: {pid} (x)\n{EQ}\n\n")
        };
        let inputs = |name: &str, n: u32, t: u32| {
            format!("{EQ}\n[2026-12-07 10:00:00] FlashInfer API Call: {name}\n[call {name} #{n} thread {t}]\n{dash}\n(No explicit arguments)\n")
        };
        let outputs =
            |name: &str, n: u32, t: u32| format!("[call {name} #{n} thread {t}]\nOutput value:\n  None\n{EQ}\n\n");
        // Process 1's call m.a is running when process 2 writes its system information record; its outputs record
        // comes later. Process 1's m.c never returns.
        let log = format!(
            "{}{}{}{}{}{}{}",
            sysinfo(1),
            inputs("m.a", 5, 11),
            inputs("m.c", 6, 12),
            sysinfo(2),
            inputs("m.b", 1, 21),
            outputs("m.a", 5, 11),
            outputs("m.b", 1, 21),
        );
        let (mut zero, mut seen) = (None, Vec::new());
        read(&mut zero, log.as_bytes(), &mut |e| match e.kind {
            Kind::Call { call, outcome, .. } => seen.push((call.name, outcome, None)),
            Kind::DidNotReturn { name, .. } => seen.push((name, Outcome::DidNotReturn, e.pid)),
            _ => {}
        })
        .unwrap();
        let m = |n: &str| n.to_string();
        assert_eq!(
            seen,
            [
                (m("m.a"), Outcome::Returned, None),
                (m("m.b"), Outcome::Returned, None),
                (m("m.c"), Outcome::DidNotReturn, Some(1)),
                (m("m.c"), Outcome::DidNotReturn, None),
            ]
        );
    }
}
