//! `flashlog summary LOG...`: one pass over each log, bounded memory (counters and first occurrences per call
//! name, and at most [`MAX_PENDING`] unfinished calls per file), then a table.
//!
//! Records are those of `LOG-FORMAT.md`. A call is counted at its level-1 line or at the start of its inputs
//! record. A NaN or Inf is a `nan_count=N` or `inf_count=N` line with N > 0, in the inputs record (an input)
//! or under `Tensor arguments after the call:` (an output). Threads interleave whole records, so an outputs
//! record is paired with the most recent unfinished inputs record of the same file; in a single-threaded log
//! that is exact. Inputs records never closed by an outputs record "did not return". Graph replay records
//! (`FlashInfer Graph Replay: <name> (id=N, replay K)`) are counted per name, and the first NaN/Inf seen in one
//! is reported with its call, id and replay number.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::ExitCode;

/// Unfinished calls remembered per file; more are counted but not listed.
pub const MAX_PENDING: usize = 1024;
/// Unparsed lines quoted on stderr.
const QUOTED_UNPARSED: usize = 5;

const EQ: &str = "================================================================================";
const DASH: &str = "--------------------------------------------------------------------------------";

/// Where something was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// Index of the file in the command line.
    pub file: usize,
    /// 1-based line number.
    pub line: u64,
    /// The record's timestamp text, `YYYY-MM-DD HH:MM:SS`.
    pub stamp: String,
    /// The argument, `arg[2]`.
    pub arg: String,
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
}

/// A call whose inputs record began and whose outputs record has not come yet.
#[derive(Clone, Debug)]
struct Pending {
    name: String,
    line: u64,
    stamp: String,
}

/// Where the parser is inside a file.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Between records.
    Outside,
    /// After an `=` line: the next line says which record this is.
    AfterEq,
    /// Inside the system information record (until its closing `=` line and blank line).
    SysInfo { closing_seen: bool },
    /// Inside an inputs record.
    Inputs,
    /// Inside an outputs record; `after` once `Tensor arguments after the call:` was seen.
    Outputs { after: bool },
    /// Inside a kernel-launch record's indented lines.
    Launch,
    /// Inside a graph replay record; `after` once `Tensor arguments after the call:` was seen.
    Replay { after: bool },
}

/// The first NaN/Inf seen in a graph replay record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayNan {
    /// The captured call's name.
    pub name: String,
    /// `id=N, replay K`.
    pub replay: String,
    /// Where.
    pub place: Place,
    /// `input` (before the call) or `output` (after it).
    pub kind: &'static str,
}

/// Everything the summary accumulates over all files.
#[derive(Debug, Default)]
pub struct Summary {
    /// Files in command-line order.
    pub files: Vec<String>,
    /// Per call name (kernel launches as `[kernel] <name>`).
    pub names: BTreeMap<String, NameStats>,
    /// Calls that did not return: (name, place).
    pub did_not_return: Vec<(String, Place)>,
    /// Unfinished calls beyond [`MAX_PENDING`] (not listed).
    pub pending_overflow: u64,
    /// Lines inside records that do not fit the grammar.
    pub unparsed: u64,
    /// The first few of them, as `file:line: text`.
    pub unparsed_quotes: Vec<String>,
    /// Lines outside any record (program output mixed into stdout logs).
    pub other_lines: u64,
    /// Graph replay records seen.
    pub replays: u64,
    /// The first NaN/Inf in a replay record, in file order.
    pub first_replay_nan: Option<ReplayNan>,
    /// The replay record being read: (name, `id=N, replay K`, stamp).
    current_replay: Option<(String, String, String)>,
}

/// Splits `[YYYY-MM-DD HH:MM:SS] rest` into (stamp, rest).
fn split_stamp(line: &str) -> Option<(&str, &str)> {
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

impl Summary {
    /// Reads one log in a single pass.
    pub fn read(&mut self, path: &str, reader: impl BufRead) -> std::io::Result<()> {
        let file = self.files.len();
        self.files.push(path.to_string());
        let mut state = State::Outside;
        let mut pending: Vec<Pending> = Vec::new();
        let mut current_arg = String::new();
        let mut line_no = 0u64;
        let mut raw = Vec::new();
        let mut reader = reader;
        loop {
            raw.clear();
            if reader.read_until(b'\n', &mut raw)? == 0 {
                break;
            }
            line_no += 1;
            let text = String::from_utf8_lossy(&raw);
            let line = text.trim_end_matches(['\n', '\r']);
            state = self.step(file, line_no, line, state, &mut pending, &mut current_arg);
        }
        for p in pending {
            let place = Place { file, line: p.line, stamp: p.stamp, arg: String::new() };
            self.did_not_return.push((p.name, place));
        }
        Ok(())
    }

    fn unparsed_line(&mut self, file: usize, line_no: u64, line: &str) {
        self.unparsed += 1;
        if self.unparsed_quotes.len() < QUOTED_UNPARSED {
            let shown: String = line.chars().take(120).collect();
            self.unparsed_quotes.push(format!("{}:{}: {}", self.files[file], line_no, shown));
        }
    }

    fn step(
        &mut self,
        file: usize,
        line_no: u64,
        line: &str,
        state: State,
        pending: &mut Vec<Pending>,
        current_arg: &mut String,
    ) -> State {
        // Lines that start a record are recognised in any state (threads interleave whole records).
        if let Some((stamp, rest)) = split_stamp(line) {
            if let Some(kernel) = rest.strip_prefix("FlashInfer Kernel Launch: ") {
                self.names.entry(format!("[kernel] {kernel}")).or_default().calls += 1;
                return match state {
                    State::Inputs | State::Outputs { .. } => state,
                    _ => State::Launch,
                };
            }
            if let Some(name) = rest.strip_prefix("FlashInfer API Call: ") {
                self.names.entry(name.to_string()).or_default().calls += 1;
                if state == State::AfterEq {
                    if pending.len() < MAX_PENDING {
                        pending.push(Pending { name: name.to_string(), line: line_no, stamp: stamp.to_string() });
                    } else {
                        self.pending_overflow += 1;
                    }
                    current_arg.clear();
                    return State::Inputs;
                }
                return State::Outside; // a level-1 line: a complete call
            }
            if let Some(replay) = rest.strip_prefix("FlashInfer Graph Replay: ") {
                if state == State::AfterEq {
                    self.begin_replay(stamp, replay);
                    current_arg.clear();
                    return State::Replay { after: false };
                }
            }
            if rest.starts_with("flashlog watch: ") {
                return State::Outside; // the NaN watch's line at exit
            }
            if state == State::AfterEq && rest == "FlashInfer API Logging - System Information" {
                return State::SysInfo { closing_seen: false };
            }
        }
        match state {
            State::SysInfo { closing_seen } => {
                if line == EQ {
                    State::SysInfo { closing_seen: true }
                } else if closing_seen && line.is_empty() {
                    State::Outside
                } else {
                    State::SysInfo { closing_seen }
                }
            }
            State::Replay { after } => self.replay_line(file, line_no, line, after, current_arg),
            _ if line == EQ => match state {
                State::Outputs { .. } => {
                    pending.pop();
                    State::Outside
                }
                _ => State::AfterEq,
            },
            _ if line == "Output value:" || line.starts_with("Call failed: ") => {
                current_arg.clear();
                State::Outputs { after: false }
            }
            State::Inputs => {
                if line == DASH || line == "Positional input arguments:" || line == "(No explicit arguments)" {
                } else if let Some(rest) = line.strip_prefix("  ") {
                    self.note_value_line(file, line_no, rest, current_arg, pending, false);
                } else {
                    self.unparsed_line(file, line_no, line);
                }
                State::Inputs
            }
            State::Outputs { after } => {
                if line == "Tensor arguments after the call:" {
                    return State::Outputs { after: true };
                }
                match line.strip_prefix("  ") {
                    Some(rest) if after => self.note_value_line(file, line_no, rest, current_arg, pending, true),
                    Some(_) => {}
                    None => self.unparsed_line(file, line_no, line),
                }
                State::Outputs { after }
            }
            State::Launch if line.starts_with("  ") => State::Launch,
            State::AfterEq => {
                self.unparsed_line(file, line_no, line);
                State::Outside
            }
            _ => {
                if !line.is_empty() {
                    self.other_lines += 1;
                }
                State::Outside
            }
        }
    }

    /// An indented line of a record: tracks `arg[i]:` and notes NaN/Inf counts.
    fn note_value_line(
        &mut self,
        file: usize,
        line_no: u64,
        rest: &str,
        current_arg: &mut String,
        pending: &[Pending],
        output: bool,
    ) {
        if rest.starts_with("arg[") {
            if let Some(end) = rest.find(']') {
                current_arg.clear();
                current_arg.push_str(&rest[..=end]);
            }
            return;
        }
        let t = rest.trim_start();
        let count = t.strip_prefix("nan_count=").or_else(|| t.strip_prefix("inf_count="));
        let Some(n) = count.and_then(|c| c.parse::<u64>().ok()) else { return };
        let Some(call) = pending.last() else { return };
        if n == 0 {
            return;
        }
        let place = Place { file, line: line_no, stamp: call.stamp.clone(), arg: current_arg.clone() };
        let entry = self.names.entry(call.name.clone()).or_default();
        let slot = if output { &mut entry.first_out } else { &mut entry.first_in };
        if slot.is_none() {
            *slot = Some(place);
        }
    }

    /// A replay record begins: `rest` is `<name> (id=N, replay K)`.
    fn begin_replay(&mut self, stamp: &str, rest: &str) {
        self.replays += 1;
        let (name, replay) = match rest.rsplit_once(" (") {
            Some((name, tail)) => (name, tail.trim_end_matches(')')),
            None => (rest, ""),
        };
        self.current_replay = Some((name.to_string(), replay.to_string(), stamp.to_string()));
    }

    /// One line inside a replay record: its sections, `arg[i]` headers and NaN/Inf counts; `=` closes it.
    fn replay_line(&mut self, file: usize, line_no: u64, line: &str, after: bool, current_arg: &mut String) -> State {
        if line == EQ {
            self.current_replay = None;
            return State::Outside;
        }
        if line == DASH || line == "Tensor arguments before the call:" {
            return State::Replay { after };
        }
        if line == "Tensor arguments after the call:" {
            return State::Replay { after: true };
        }
        let Some(rest) = line.strip_prefix("  ") else {
            self.unparsed_line(file, line_no, line);
            return State::Replay { after };
        };
        if rest.starts_with("arg[") {
            if let Some(end) = rest.find(']') {
                current_arg.clear();
                current_arg.push_str(&rest[..=end]);
            }
            return State::Replay { after };
        }
        let t = rest.trim_start();
        let count = t.strip_prefix("nan_count=").or_else(|| t.strip_prefix("inf_count="));
        if let (Some(n), None, Some((name, replay, stamp))) =
            (count.and_then(|c| c.parse::<u64>().ok()), &self.first_replay_nan, &self.current_replay)
        {
            if n > 0 {
                let place = Place { file, line: line_no, stamp: stamp.clone(), arg: current_arg.clone() };
                let kind = if after { "output" } else { "input" };
                self.first_replay_nan = Some(ReplayNan { name: name.clone(), replay: replay.clone(), place, kind });
            }
        }
        State::Replay { after }
    }

    /// The earliest NaN/Inf overall: by timestamp, then file order, then line.
    pub fn first_overall(&self) -> Option<(&str, &Place, &'static str)> {
        let mut best: Option<(&str, &Place, &'static str)> = None;
        for (name, s) in &self.names {
            for (p, kind) in [(&s.first_in, "input"), (&s.first_out, "output")] {
                if let Some(p) = p {
                    let key = (&p.stamp, p.file, p.line);
                    if best.is_none_or(|(_, b, _)| key < (&b.stamp, b.file, b.line)) {
                        best = Some((name, p, kind));
                    }
                }
            }
        }
        best
    }

    fn place_text(&self, p: &Place) -> String {
        let file = self.files[p.file].rsplit('/').next().unwrap_or("");
        let arg = if p.arg.is_empty() { String::new() } else { format!(" {}", p.arg) };
        format!("{}:{} [{}]{}", file, p.line, p.stamp, arg)
    }

    /// The table and the closing lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let name_width = self.names.keys().map(|n| n.chars().count()).max().unwrap_or(4).clamp(4, 60);
        let place = |p: &Option<Place>| p.as_ref().map_or("-".to_string(), |p| self.place_text(p));
        let col3 = self.names.values().map(|s| place(&s.first_in).len()).max().unwrap_or(1).max(22);
        out.push_str(&format!(
            "{:>8}  {:<name_width$}  {:<col3$}  {}\n",
            "calls", "name", "first NaN/Inf in input", "first NaN/Inf in output"
        ));
        for (name, s) in &self.names {
            let shown = elide_middle(name, name_width);
            out.push_str(&format!(
                "{:>8}  {:<name_width$}  {:<col3$}  {}\n",
                s.calls,
                shown,
                place(&s.first_in),
                place(&s.first_out)
            ));
        }
        match self.first_overall() {
            Some((name, p, kind)) => {
                out.push_str(&format!("first NaN/Inf overall: {} {} {}\n", self.place_text(p), name, kind))
            }
            None => out.push_str("first NaN/Inf overall: none\n"),
        }
        if self.replays > 0 {
            out.push_str(&format!("graph replay records: {}\n", self.replays));
            match &self.first_replay_nan {
                Some(r) => out.push_str(&format!(
                    "first NaN/Inf in a graph replay: {} {} ({}) {}\n",
                    self.place_text(&r.place),
                    r.name,
                    r.replay,
                    r.kind
                )),
                None => out.push_str("first NaN/Inf in a graph replay: none\n"),
            }
        }
        for (name, p) in &self.did_not_return {
            out.push_str(&format!("did not return: {} {}\n", self.place_text(p), name));
        }
        if self.pending_overflow > 0 {
            out.push_str(&format!("did not return (not listed): {}\n", self.pending_overflow));
        }
        out.push_str(&format!("unparsed lines: {}\n", self.unparsed));
        out
    }
}

/// Shortens `name` to `width` characters by replacing its middle with `...`, keeping the export at the end.
fn elide_middle(name: &str, width: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= width {
        return name.to_string();
    }
    let head = (width - 3) / 3;
    let tail = width - 3 - head;
    chars[..head].iter().chain(['.', '.', '.'].iter()).chain(chars[chars.len() - tail..].iter()).collect()
}

/// `flashlog summary LOG...`.
pub fn main(paths: &[String]) -> ExitCode {
    if paths.is_empty() {
        eprintln!("flashlog summary: no log files given\n{}", crate::usage_line());
        return ExitCode::from(2);
    }
    let mut summary = Summary::default();
    let mut failed = false;
    for path in paths {
        let result = File::open(path).and_then(|f| summary.read(path, BufReader::with_capacity(1 << 20, f)));
        if let Err(e) = result {
            eprintln!("flashlog summary: {path}: {e}");
            failed = true;
        }
    }
    print!("{}", summary.render());
    for q in &summary.unparsed_quotes {
        eprintln!("flashlog summary: unparsed: {q}");
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summarise(logs: &[(&str, &str)]) -> Summary {
        let mut s = Summary::default();
        for (name, text) in logs {
            s.read(name, text.as_bytes()).unwrap();
        }
        s
    }

    fn call(stamp: &str, name: &str, in_nan: u64, out_nan: u64) -> String {
        format!(
            "{EQ}\n[{stamp}] FlashInfer API Call: {name}\n{DASH}\nPositional input arguments:\n  arg[0]:\n    Tensor(\n      shape=(2,)\n      nan_count={in_nan}\n      inf_count=0\n    )\n  arg[1]:\n    1e-06\nOutput value:\n  None\nTensor arguments after the call:\n  arg[0] (after):\n    nan_count={out_nan}\n    inf_count=0\n{EQ}\n\n"
        )
    }

    const SYSINFO: &str = "================================================================================\n[2026-11-28 21:04:05] FlashInfer API Logging - System Information\n================================================================================\nflashlog version: 0.1.0\nProcess: 1 (x)\nCUDA driver: <not loaded>\n================================================================================\n\n";

    #[test]
    fn counts_and_first_nan() {
        let a = format!(
            "{SYSINFO}{}{}{}[2026-11-28 21:04:07] FlashInfer API Call: page.append\n",
            call("2026-11-28 21:04:05", "norm.rmsnorm", 0, 0),
            call("2026-11-28 21:04:06", "norm.rmsnorm", 0, 2),
            call("2026-11-28 21:04:06", "norm.rmsnorm", 1, 0)
        );
        let s = summarise(&[("rank0.log", &a)]);
        let rms = &s.names["norm.rmsnorm"];
        assert_eq!(rms.calls, 3);
        // 8 lines of system information, 20 per call record, nan_count on line 17 of the second.
        assert_eq!(rms.first_out.as_ref().unwrap().line, 8 + 20 + 17);
        assert_eq!(rms.first_out.as_ref().unwrap().arg, "arg[0]");
        assert_eq!(rms.first_in.as_ref().unwrap().stamp, "2026-11-28 21:04:06");
        assert_eq!(s.names["page.append"].calls, 1);
        assert_eq!(s.unparsed, 0);
        let (name, p, kind) = s.first_overall().unwrap();
        assert_eq!((name, kind, p.stamp.as_str()), ("norm.rmsnorm", "output", "2026-11-28 21:04:06"));
        assert!(s.did_not_return.is_empty());
    }

    #[test]
    fn crashed_call_and_garbage() {
        let crashed = format!(
            "{SYSINFO}{EQ}\n[2026-11-28 21:04:05] FlashInfer API Call: gemm.bmm_fp8\n{DASH}\nPositional input arguments:\n  arg[0]:\n    3\nthis line is not in the grammar\n"
        );
        let s = summarise(&[("r.log", &crashed)]);
        assert_eq!(s.did_not_return.len(), 1);
        assert_eq!(s.did_not_return[0].0, "gemm.bmm_fp8");
        assert_eq!(s.did_not_return[0].1.line, 10);
        assert_eq!(s.unparsed, 1);
        assert!(s.render().contains("did not return: r.log:10 [2026-11-28 21:04:05] gemm.bmm_fp8\n"));
    }

    #[test]
    fn interleaved_threads_pair_with_latest() {
        let inputs = |name: &str| {
            format!("{EQ}\n[2026-11-28 21:04:05] FlashInfer API Call: {name}\n{DASH}\n(No explicit arguments)\n")
        };
        let outputs = format!("Output value:\n  None\n{EQ}\n\n");
        let text = format!("{}{}{outputs}{outputs}", inputs("a.f"), inputs("b.g"));
        let s = summarise(&[("t.log", &text)]);
        assert!(s.did_not_return.is_empty());
        assert_eq!(s.names["a.f"].calls + s.names["b.g"].calls, 2);
    }

    #[test]
    fn graph_replay_records() {
        let replay = |k: u64, nan: u64| {
            format!(
                "{EQ}\n[2026-12-02 01:10:0{k}] FlashInfer Graph Replay: norm.rmsnorm (id=7, replay {k})\n{DASH}\nTensor arguments before the call:\n  arg[1]:\n    min=0.000000\n    nan_count=0\n    inf_count=0\nTensor arguments after the call:\n  arg[0] (after):\n    nan_count={nan}\n    inf_count=0\n{EQ}\n\n"
            )
        };
        let text = format!(
            "{SYSINFO}{}{}{}[2026-12-02 01:10:09] flashlog watch: 0 calls and 3 graph replays checked, 1 with NaN or Inf\n",
            replay(1, 0),
            replay(2, 3),
            replay(3, 1)
        );
        let s = summarise(&[("g.log", &text)]);
        assert_eq!((s.replays, s.unparsed, s.other_lines), (3, 0, 0));
        let r = s.first_replay_nan.as_ref().unwrap();
        assert_eq!((r.name.as_str(), r.replay.as_str(), r.kind), ("norm.rmsnorm", "id=7, replay 2", "output"));
        assert_eq!((r.place.line, r.place.arg.as_str()), (8 + 14 + 11, "arg[0]"));
        assert!(s.render().contains(
            "graph replay records: 3\nfirst NaN/Inf in a graph replay: g.log:33 [2026-12-02 01:10:02] arg[0] norm.rmsnorm (id=7, replay 2) output\n"
        ));
        assert!(s.did_not_return.is_empty());
    }

    #[test]
    fn long_names_keep_their_export() {
        let long = format!("batch_decode_{}.plan", "x".repeat(100));
        let short = elide_middle(&long, 60);
        assert_eq!(short.chars().count(), 60);
        assert!(short.starts_with("batch_decode_") && short.ends_with("xx.plan") && short.contains("..."));
        assert_eq!(elide_middle("norm.rmsnorm", 60), "norm.rmsnorm");
    }

    #[test]
    fn kernel_launches_and_other_lines() {
        let text = "program output\n[2026-11-28 21:04:05] FlashInfer Kernel Launch: flashinfer::K<1>(int)\n  grid=(1, 1, 1)\n  block=(1, 1, 1)\n  shared_mem=0\n  stream=0x0\nmore output\n";
        let s = summarise(&[("k.log", text)]);
        assert_eq!(s.names["[kernel] flashinfer::K<1>(int)"].calls, 1);
        assert_eq!(s.other_lines, 2);
        assert_eq!(s.unparsed, 0);
    }
}
