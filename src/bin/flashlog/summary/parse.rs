//! The line grammar: one pass over one file, records of the shim and of FlashInfer's Python logger alike.
//!
//! Records are written whole, so a new record's first line ends the one before; an outputs record starts with
//! its correlation line, `Output value:` or `Call failed:` (it has no separator of its own). A run starts at a
//! system information record, except the shim's record that follows FlashInfer's one in the same process (the
//! shim writes its own at its first record, often inside the first Python call).
//!
//! This file holds the grammar of record starts and frame lines; `sysinfo` the system information records and
//! the runs they start, `values` the lines inside records (arguments, NaN/Inf counts, deferred statistics),
//! `ends` the lines that tell how runs and calls ended.

mod ends;
mod sysinfo;
mod values;

use super::runs::{End, Group, Pending, Run};
use super::{NameStats, Place, RunInfo, Summary};
use std::collections::HashMap;

const EQ: &str = "================================================================================";
const DASH: &str = "--------------------------------------------------------------------------------";
/// Deferred GPU statistics remembered per file (FlashInfer's logger inside CUDA graph captures).
const MAX_DEFERRED: usize = 65536;

/// Where the parser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between records.
    Outside,
    /// After an `=` line: the next line says which record this is.
    AfterEq,
    /// The system information record: its header, its body, after its closing `=` line.
    SysHead,
    SysBody,
    SysClosed,
    /// Right after an inputs record's or a level-1 record's call line (its correlation line may come).
    InputsHead,
    /// An inputs record's body.
    Inputs,
    /// After an outputs record's correlation line.
    OutputsHead,
    /// An outputs record's body.
    Outputs,
    /// A graph replay record, before its dashes, then its body.
    ReplayHead,
    Replay,
    /// A kernel launch record's indented lines.
    Launch,
    /// A graph replay error record (`FLASHLOG_SYNC`): read by `cuda_errors`, skipped here.
    ReplayError,
}

/// The call whose value lines are being read: where a NaN found now is reported.
#[derive(Clone, Debug)]
struct Current {
    name: String,
    stamp: String,
    call: String,
    output: bool,
    /// The first line of the call's inputs record (0: none besides the record being read).
    call_record: u64,
    /// Whether a NaN/Inf was counted for this call in an input, in an output.
    counted: [bool; 2],
}

/// An inputs record's (or a level-1 record's) call line, until its correlation line (or its absence) is known.
struct Head {
    name: String,
    line: u64,
    stamp: String,
    call: Option<(u64, u32)>,
    /// An inputs record (its outputs record is to come); false for a level-1 record.
    open: bool,
}

/// What the system information record being read says.
#[derive(Default)]
struct SysInfo {
    shim: bool,
    pid: Option<u32>,
    rank: Option<String>,
}

/// What the current run has shown so far.
#[derive(Default)]
struct RunShape {
    python_sysinfo: bool,
    shim_sysinfo: bool,
    calls: bool,
}

/// Splits `[YYYY-MM-DD HH:MM:SS] rest` into (stamp, rest).
pub fn split_stamp(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    if b.len() < 22 || b[0] != b'[' || b[20] != b']' || b[21] != b' ' {
        return None;
    }
    let stamp = &line[1..20];
    let ok = stamp.bytes().enumerate().all(|(i, c)| match i {
        4 | 7 => c == b'-',
        10 => c == b' ',
        13 | 16 => c == b':',
        _ => c.is_ascii_digit(),
    });
    ok.then(|| (stamp, &line[22..]))
}

/// Parses `[call <name> #<number> thread <tid>]` into (name, number, tid); the record's time that newer logs
/// carry at the end (` at HH:MM:SS.ffffff`) is skipped here (`records` reads it).
pub fn correlation_line(line: &str) -> Option<(&str, u64, u32)> {
    let inner = line.strip_prefix("[call ")?.strip_suffix(']')?;
    let (rest, thread) = inner.rsplit_once(" thread ")?;
    let thread = thread.split_once(" at ").map_or(thread, |(t, _)| t);
    let (name, number) = rest.rsplit_once(" #")?;
    Some((name, number.parse().ok()?, thread.parse().ok()?))
}

/// Whether a call name is one FlashInfer's Python logger gives (a function, or `<Wrapper class>.<method>`)
/// rather than the shim's `<module>.<export>`; used only where the lines do not tell.
fn looks_python(name: &str) -> bool {
    match name.split_once('.') {
        None => true,
        Some((class, _)) => class.contains("Wrapper") || ["MoELayer", "NVFP4KVMaterializer"].contains(&class),
    }
}

fn call_label(call: Option<(u64, u32)>) -> String {
    call.map(|(n, t)| format!("thread {t} call #{n}")).unwrap_or_default()
}

/// The parser of one file.
pub struct FileParser<'a> {
    sum: &'a mut Summary,
    file: usize,
    line_no: u64,
    state: State,
    run: Run,
    shape: RunShape,
    current: Option<Current>,
    arg: String,
    head: Option<Head>,
    sys: SysInfo,
    /// FlashInfer's statistics deferred to a GPU kernel inside a graph capture: id -> where they belong.
    deferred: HashMap<u64, (Current, String)>,
    /// The first line of the record being read, the line of the latest `=` line, the line of the `=` line
    /// that closed the latest record (see [`FileParser::record_of_last_line`]).
    record_start: u64,
    last_eq: u64,
    closed_at: u64,
    /// Whether the record closed at `closed_at` was an outputs record.
    closed_outputs: bool,
    /// Process ids of the exit lines of this file.
    exits: std::collections::HashSet<u32>,
    /// Correlated calls still open when their run was followed by another one's system information record, with
    /// how they would end and their run: several processes appending to one file interleave their records, so
    /// such a call's outputs record may still come. Decided at the end of the file.
    parked: Vec<(Pending, End, usize)>,
}

impl<'a> FileParser<'a> {
    /// A parser of file `file` (already in `sum.files`).
    pub fn new(sum: &'a mut Summary, file: usize) -> FileParser<'a> {
        sum.files[file].runs.push(RunInfo::default());
        sum.files[file].run_count = 1;
        FileParser {
            sum,
            file,
            line_no: 0,
            state: State::Outside,
            run: Run::default(),
            shape: RunShape::default(),
            current: None,
            arg: String::new(),
            head: None,
            sys: SysInfo::default(),
            deferred: HashMap::new(),
            record_start: 0,
            last_eq: 0,
            closed_at: 0,
            closed_outputs: false,
            exits: Default::default(),
            parked: Vec::new(),
        }
    }

    fn run_index(&self) -> usize {
        self.sum.files[self.file].run_count as usize - 1
    }

    fn place(&self, line: u64, stamp: &str, call: &str, arg: &str) -> Place {
        Place {
            file: self.file,
            run: self.run_index(),
            line,
            stamp: stamp.to_string(),
            call: call.to_string(),
            arg: arg.to_string(),
            record: self.record_start,
            call_record: self.current.as_ref().map_or(0, |c| c.call_record),
        }
    }

    /// A record starts at this line (`framed`: with the `=` line just before it, when there is one).
    fn record(&mut self, framed: bool) {
        self.sum.files[self.file].records += 1;
        self.record_start = if framed && self.last_eq + 1 == self.line_no { self.last_eq } else { self.line_no };
    }

    fn names(&mut self, name: &str) -> &mut NameStats {
        if !self.sum.names.contains_key(name) {
            self.sum.names.insert(name.to_string(), NameStats::default());
        }
        self.sum.names.get_mut(name).expect("just inserted")
    }

    fn unparsed(&mut self, line: &str) {
        self.sum.unparsed += 1;
        self.sum.files[self.file].other_lines += 1;
        if self.sum.unparsed_quotes.len() < super::QUOTED_UNPARSED {
            let shown: String = line.chars().take(120).collect();
            let quote = format!("{}:{}: {}", self.sum.files[self.file].path, self.line_no, shown);
            self.sum.unparsed_quotes.push(quote);
        }
    }

    fn ended(&mut self, call: Pending, end: End) {
        let run = self.run_index();
        self.ended_in(call, end, run);
    }

    /// [`FileParser::ended`] for a call of run `run` of the file.
    fn ended_in(&mut self, call: Pending, end: End, run: usize) {
        let call_text = call_label(call.number.zip(call.group));
        let mut place = self.place(call.line, &call.stamp, &call_text, "");
        (place.record, place.call_record, place.run) = (call.line.saturating_sub(1), 0, run);
        let list = match end {
            End::DidNotReturn => &mut self.sum.did_not_return,
            End::Raised => &mut self.sum.raised,
        };
        list.push(call.name, place);
    }

    /// Which logger wrote a call that starts now, before its lines tell.
    fn guess_python(&self, name: &str, correlated: bool) -> bool {
        if correlated {
            return false;
        }
        match (self.shape.python_sysinfo, self.shape.shim_sysinfo) {
            (true, false) => true,
            (false, true) => false,
            _ => looks_python(name),
        }
    }

    fn start_call(&mut self, head: Head, open: bool) {
        self.shape.calls = true;
        let python = self.guess_python(&head.name, head.call.is_some());
        let group: Group = head.call.map(|(_, t)| t);
        let call = Pending::new(&head.name, head.line, &head.stamp, group, head.call.map(|(n, _)| n), python);
        if let Some((old, end)) = self.run.start(call, open) {
            self.ended(old, end);
        }
        self.note_call_started(&head.name, head.line, &head.stamp, head.call, open);
        if open {
            self.current = Some(Current {
                name: head.name,
                stamp: head.stamp,
                call: call_label(head.call),
                output: false,
                call_record: 0,
                counted: [false; 2],
            });
            self.arg.clear();
        }
    }

    /// The record being read ends (a new one starts, or the file ends).
    fn end_record(&mut self) {
        match self.state {
            State::InputsHead => {
                if let Some(head) = self.head.take() {
                    let open = head.open;
                    self.start_call(head, open);
                }
            }
            State::SysHead | State::SysBody | State::SysClosed => self.end_sysinfo(),
            _ => {}
        }
        self.state = State::Outside;
    }

    /// A line the reader skipped (too long): counted, so later line numbers stay right, and otherwise ignored.
    pub fn skipped_line(&mut self) {
        self.line_no += 1;
    }

    /// Reads one line (without its newline).
    pub fn line(&mut self, line: &str) {
        self.line_no += 1;
        self.sum.files[self.file].lines += 1;
        if line == EQ {
            self.last_eq = self.line_no;
        }
        if self.marker_line(line) {
            return;
        }
        if let Some(rest) = line.strip_prefix("[flashinfer stats] id=") {
            // Printed by FlashInfer's statistics kernel at each graph replay, wherever the program's stdout is.
            self.deferred_stats(rest);
            return;
        }
        if let Some((stamp, rest)) = split_stamp(line) {
            if self.stamped_line(stamp, rest) {
                return;
            }
        }
        // A level-1 record is its call line and, when it has one, its correlation line: any other line ends it.
        if self.state == State::InputsHead && self.head.as_ref().is_some_and(|h| !h.open) && !self.own_line(line) {
            self.end_record();
        }
        match self.state {
            State::SysHead => {
                if line == EQ {
                    self.state = State::SysBody;
                } else {
                    self.sys_line(line);
                    self.state = State::SysBody;
                }
                return;
            }
            State::SysBody => {
                if line == EQ {
                    self.state = State::SysClosed;
                } else {
                    self.sys_line(line);
                }
                return;
            }
            State::SysClosed => {
                self.end_record();
                if line.is_empty() {
                    return;
                }
            }
            _ => {}
        }
        if line == EQ {
            let closes = matches!(
                self.state,
                State::Outputs | State::OutputsHead | State::Replay | State::ReplayHead | State::ReplayError
            );
            if closes {
                self.closed_at = self.line_no;
                self.closed_outputs = matches!(self.state, State::Outputs | State::OutputsHead);
            }
            self.end_record();
            self.state = if closes { State::Outside } else { State::AfterEq };
            return;
        }
        // `FLASHLOG_SYNC`'s error lines (read by `cuda_errors`) and the body of its graph replay error records.
        if line.starts_with("[CUDA error ") || self.state == State::ReplayError {
            return;
        }
        if let Some((name, number, thread)) = correlation_line(line) {
            if self.state == State::InputsHead && self.own_line(line) {
                if let Some(head) = self.head.as_mut() {
                    head.call = Some((number, thread));
                }
            } else {
                self.end_record();
                self.outputs_start(Some((name, number, thread)));
                self.state = State::OutputsHead;
            }
            return;
        }
        if line == "Output value:" || line.starts_with("Call failed: ") {
            if self.state != State::OutputsHead {
                self.end_record();
                self.outputs_start(None);
            }
            if let Some(error) = line.strip_prefix("Call failed: ") {
                self.note_failed(error);
            }
            self.state = State::Outputs;
            self.arg.clear();
            self.arg.push_str("result");
            return;
        }
        self.body_line(line);
    }

    /// Whether `line` is the correlation line of the call line just read. A record is written whole, so the line
    /// after a call line is its own, but for a level-1 record without one, which another thread's outputs record
    /// (of an open call) may follow.
    fn own_line(&self, line: &str) -> bool {
        let Some((name, number, thread)) = correlation_line(line) else { return false };
        self.head.as_ref().is_some_and(|h| h.open || (h.name == name && !self.run.has_open(thread, number)))
    }

    /// A line with a timestamp; true when it was a record's first line.
    fn stamped_line(&mut self, stamp: &str, rest: &str) -> bool {
        if let Some(kernel) = rest.strip_prefix("FlashInfer Kernel Launch: ") {
            // A launch made inside a call names it at the end: ` [call <name> #N thread T]`.
            let kernel = match kernel.rsplit_once(" [call ") {
                Some((k, form)) if correlation_line(&format!("[call {form}")).is_some() => k,
                _ => kernel,
            };
            self.end_record();
            self.record(false);
            self.names(&format!("[kernel] {kernel}")).calls += 1;
            self.state = State::Launch;
            return true;
        }
        if let Some(name) = rest.strip_prefix("FlashInfer API Call: ") {
            let after_eq = self.state == State::AfterEq;
            self.end_record();
            self.record(after_eq);
            self.names(name).calls += 1;
            let (line, stamp) = (self.line_no, stamp.to_string());
            self.head = Some(Head { name: name.to_string(), line, stamp, call: None, open: after_eq });
            self.state = State::InputsHead;
            return true;
        }
        if self.state == State::AfterEq && rest == "FlashInfer API Logging - System Information" {
            self.record(true);
            self.sys = SysInfo::default();
            self.state = State::SysHead;
            return true;
        }
        if let Some(what) = rest.strip_prefix("FlashInfer Graph Replay: ").filter(|_| self.state == State::AfterEq) {
            self.record(true);
            // `<name> (id=N, replay K)`: the place names the graph call and the replay, `graph id=N replay K`.
            let (name, replay) = match what.rsplit_once(" (id=") {
                Some((name, tail)) => {
                    let tail = tail.trim_end_matches(')');
                    let (id, replay) = tail.split_once(", ").unwrap_or((tail, ""));
                    (name, format!("graph id={id} {replay}"))
                }
                None => (what, String::new()),
            };
            self.names(name);
            self.current = Some(Current {
                name: name.to_string(),
                stamp: stamp.to_string(),
                call: replay,
                output: false,
                call_record: 0,
                counted: [false; 2],
            });
            self.arg.clear();
            self.state = State::ReplayHead;
            return true;
        }
        if rest.starts_with("FlashInfer Graph Replay Error: ") && self.state == State::AfterEq {
            self.record(true);
            self.state = State::ReplayError;
            return true;
        }
        if rest.starts_with("flashlog watch: ") {
            self.end_record();
            self.record(false);
            return true;
        }
        false
    }

    /// An outputs record starts: pair it with its call, within its thread's group only.
    fn outputs_start(&mut self, correlated: Option<(&str, u64, u32)>) {
        self.record(false);
        let (call, label, name) = match correlated {
            Some((name, number, thread)) => {
                let call = self.run.take_exact(thread, number);
                let call = call.or_else(|| self.take_parked(thread, number)).or_else(|| self.run.take_early(name));
                (call, call_label(Some((number, thread))), name)
            }
            None => (self.run.take_uncorrelated(), String::new(), ""),
        };
        self.current = match call {
            Some(p) => {
                let label = if label.is_empty() { call_label(p.number.zip(p.group)) } else { label };
                let call_record = p.line.saturating_sub(1);
                Some(Current {
                    name: p.name,
                    stamp: p.stamp,
                    call: label,
                    output: true,
                    call_record,
                    counted: [false; 2],
                })
            }
            None => {
                self.sum.unmatched_outputs += 1;
                let name = if name.is_empty() { super::UNPAIRED } else { name };
                let (stamp, counted) = (String::new(), [false; 2]);
                Some(Current { name: name.to_string(), stamp, call: label, output: true, call_record: 0, counted })
            }
        };
        self.arg.clear();
    }

    /// A correlated call of an earlier run of this file still open: that thread's call of that number.
    fn take_parked(&mut self, thread: u32, number: u64) -> Option<Pending> {
        let at = self.parked.iter().rposition(|(p, _, _)| p.group == Some(thread) && p.number == Some(number))?;
        Some(self.parked.remove(at).0)
    }

    /// The file ended.
    pub fn finish(mut self) {
        self.end_record();
        for (call, end, run) in std::mem::take(&mut self.parked) {
            self.ended_in(call, end, run);
        }
        self.finish_run();
        self.runs_without_exit_line();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_lines_parse() {
        assert_eq!(correlation_line("[call norm.rmsnorm #1234 thread 5678]"), Some(("norm.rmsnorm", 1234, 5678)));
        assert_eq!(correlation_line("[call a #b #7 thread 9]"), Some(("a #b", 7, 9)));
        assert_eq!(correlation_line("[call m.f #3 thread 9 at 21:04:05.123456]"), Some(("m.f", 3, 9)));
        assert_eq!(correlation_line("[call x #1 thread y]"), None);
        assert_eq!(correlation_line("[call x]"), None);
    }

    #[test]
    fn names_of_each_logger() {
        assert!(looks_python("rmsnorm"));
        assert!(looks_python("BatchDecodeWithPagedKVCacheWrapper.run"));
        assert!(looks_python("MoELayer.__call__"));
        assert!(!looks_python("norm.rmsnorm"));
        assert!(!looks_python("batch_decode_with_kv_cache_dtype_q_f16.run"));
    }
}
