//! `flashlog export --trace LOG... -o trace.json`: the calls of logs as Chrome trace-event JSON (the format
//! Perfetto and `chrome://tracing` open): one track per process (its rank when the system information record
//! gives one) and thread, one complete event (`"ph": "X"`) per call, with the statistics of its tensors in its
//! arguments, and instant events (`"ph": "i"`) for a NaN/Inf, a call that did not return and a CUDA error.
//!
//! Time: records carry their time to the second (FlashInfer's header format), so within one second the calls
//! of a file are laid out one microsecond apart in the order of their records: the order of records, and so of
//! calls, is exact; durations and gaps inside a second are not measured ones (`docs/usage.md`, "Trace").

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufRead;
use std::process::ExitCode;

const EQ: &str = "================================================================================";
/// Calls left open per file before the oldest is closed as "did not return".
const MAX_OPEN: usize = 4096;

/// A call whose inputs record was read, waiting for its outputs record.
struct Open {
    name: String,
    ts: u64,
    tid: u64,
    number: Option<u64>,
    line: u64,
    args: Vec<(String, String)>,
}

/// The events of all files.
#[derive(Default)]
pub struct Trace {
    events: Vec<String>,
    /// Seconds of the earliest timestamp seen (the trace's zero).
    zero: Option<u64>,
    /// Calls written as complete events.
    pub calls: u64,
}

/// Seconds since an epoch of `YYYY-MM-DD HH:MM:SS` (only differences matter), or None.
fn seconds(stamp: &str) -> Option<u64> {
    let n = |r: std::ops::Range<usize>| stamp.get(r).and_then(|s| s.parse::<u64>().ok());
    let (y, mo, d, h, mi, s) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from the civil date (any monotonic count would do; this one is exact).
    let (y, mo) = if mo <= 2 { (y - 1, mo + 12) } else { (y, mo) };
    let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * (mo - 3) + 2) / 5 + d;
    Some(((days * 24 + h) * 60 + mi) * 60 + s)
}

/// `s` as a JSON string literal.
fn json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The reader of one file.
struct FileReader<'a> {
    trace: &'a mut Trace,
    file: String,
    pid: u64,
    line: u64,
    /// Seconds of the current record and records seen in that second.
    second: u64,
    in_second: u64,
    open: Vec<Open>,
    /// The record being read: Some(index into `open`) for an inputs record, or the closed call for outputs.
    current: Option<Current>,
    arg: String,
    after_eq: bool,
    after_header: bool,
    threads: BTreeMap<u64, ()>,
    /// `R of N` from the system information record's `Rank:` line.
    rank: Option<String>,
}

/// Where stats lines go.
enum Current {
    /// The inputs record of `open[i]`.
    Inputs(usize),
    /// The outputs record of a call, until it ends.
    Outputs(Open),
}

impl FileReader<'_> {
    fn now(&mut self, stamp: Option<&str>) -> u64 {
        if let Some(s) = stamp.and_then(seconds) {
            let zero = *self.trace.zero.get_or_insert(s);
            let s = s.max(zero);
            if s != self.second {
                (self.second, self.in_second) = (s, 0);
            }
        }
        self.in_second = (self.in_second + 1).min(999_999);
        (self.second - self.trace.zero.unwrap_or(self.second)) * 1_000_000 + self.in_second
    }

    fn instant(&mut self, name: &str, ts: u64, tid: u64, args: &[(&str, String)]) {
        self.threads.insert(tid, ());
        let args: Vec<String> = args.iter().map(|(k, v)| format!("{}:{}", json(k), json(v))).collect();
        self.trace.events.push(format!(
            "{{\"name\":{},\"cat\":\"finding\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{ts},\"pid\":{},\"tid\":{tid},\"args\":{{{}}}}}",
            json(name),
            self.pid,
            args.join(",")
        ));
    }

    fn slice(&mut self, call: Open, end: u64, outcome: &str) {
        self.threads.insert(call.tid, ());
        let mut args = vec![format!("\"place\":{}", json(&format!("{}:{}", self.file, call.line)))];
        args.push(format!("\"outcome\":{}", json(outcome)));
        if let Some(n) = call.number {
            args.push(format!("\"call\":{n}"));
        }
        args.extend(call.args.iter().map(|(k, v)| format!("{}:{}", json(k), json(v))));
        self.trace.events.push(format!(
            "{{\"name\":{},\"cat\":\"call\",\"ph\":\"X\",\"ts\":{},\"dur\":{},\"pid\":{},\"tid\":{},\"args\":{{{}}}}}",
            json(&call.name),
            call.ts,
            end.saturating_sub(call.ts).max(1),
            self.pid,
            call.tid,
            args.join(",")
        ));
        self.trace.calls += 1;
    }

    fn end_outputs(&mut self) {
        if let Some(Current::Outputs(call)) = self.current.take() {
            let end = self.now(None);
            let outcome = call.args.iter().find(|(k, _)| k == "failed").map_or("returned", |_| "failed");
            self.slice(call, end, outcome);
        }
        self.current = None;
    }

    fn did_not_return_all(&mut self) {
        self.end_outputs();
        let end = self.now(None);
        for call in std::mem::take(&mut self.open) {
            let place = format!("{}:{}", self.file, call.line);
            self.instant(&format!("did not return: {}", call.name), end, call.tid, &[("place", place)]);
            self.slice(call, end, "did not return");
        }
    }

    fn line(&mut self, line: &str) {
        self.line += 1;
        let stamped = (line.len() > 22 && line.as_bytes()[0] == b'[' && line.as_bytes()[20] == b']')
            .then(|| line.get(1..20).zip(line.get(22..)))
            .flatten()
            .filter(|(s, _)| seconds(s).is_some());
        let after_header = std::mem::replace(&mut self.after_header, false);
        if line == EQ {
            self.end_outputs();
            self.after_eq = true;
            return;
        }
        let after_eq = std::mem::replace(&mut self.after_eq, false);
        if let Some((stamp, rest)) = stamped {
            if rest == "FlashInfer API Logging - System Information" {
                self.did_not_return_all();
                return;
            }
            if let Some(name) = rest.strip_prefix("FlashInfer API Call: ") {
                self.end_outputs();
                let ts = self.now(Some(stamp));
                let call = Open { name: name.to_string(), ts, tid: 0, number: None, line: self.line, args: Vec::new() };
                if after_eq {
                    if self.open.len() >= MAX_OPEN {
                        let oldest = self.open.remove(0);
                        self.slice(oldest, ts, "did not return");
                    }
                    self.open.push(call);
                    self.current = Some(Current::Inputs(self.open.len() - 1));
                    self.after_header = true;
                } else {
                    self.slice(call, ts + 1, "level 1");
                }
                return;
            }
            if let Some(kernel) = rest.strip_prefix("FlashInfer Kernel Launch: ") {
                self.end_outputs();
                let ts = self.now(Some(stamp));
                let call = Open {
                    name: format!("[kernel] {kernel}"),
                    ts,
                    tid: 0,
                    number: None,
                    line: self.line,
                    args: vec![],
                };
                self.slice(call, ts + 1, "launched");
                return;
            }
        }
        if let Some(r) = line.strip_prefix("Rank: ") {
            self.rank = Some(r.split(" (local").next().unwrap_or(r).to_string());
            return;
        }
        if let Some(p) = line.strip_prefix("Process: ") {
            if let Some(pid) = p.split(' ').next().and_then(|n| n.parse::<u64>().ok()) {
                self.pid = pid;
            }
            return;
        }
        if let Some(tag) = line.strip_prefix("[call ").and_then(|t| t.strip_suffix(']')) {
            let (rest, thread) = tag.rsplit_once(" thread ").unwrap_or((tag, "0"));
            let number = rest.rsplit_once(" #").and_then(|(_, n)| n.parse::<u64>().ok());
            let tid = thread.parse::<u64>().unwrap_or(0);
            if after_header {
                if let Some(Current::Inputs(i)) = self.current {
                    (self.open[i].tid, self.open[i].number) = (tid, number);
                }
                return;
            }
            self.end_outputs();
            if let Some(at) = self.open.iter().rposition(|c| c.tid == tid && c.number == number) {
                self.current = Some(Current::Outputs(self.open.remove(at)));
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
            let ts = self.now(None);
            let (name, tid) = match &self.current {
                Some(Current::Outputs(c)) => (c.name.clone(), c.tid),
                _ => (String::from("(no call)"), 0),
            };
            self.instant(
                &format!("CUDA error: {error}"),
                ts,
                tid,
                &[("call", name), ("place", format!("{}:{}", self.file, self.line))],
            );
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
        let (call, output) = match self.current.as_mut() {
            Some(Current::Inputs(i)) => (&mut self.open[*i], false),
            Some(Current::Outputs(c)) => (c, true),
            None => return,
        };
        let arg = if output && !self.arg.ends_with("(after)") && self.arg != "result" {
            format!("{} (after)", self.arg)
        } else {
            self.arg.clone()
        };
        match call.args.iter_mut().find(|(k, _)| *k == arg) {
            Some((_, v)) => {
                let _ = write!(v, " {key}={value}");
            }
            None => call.args.push((arg.clone(), format!("{key}={value}"))),
        }
        let count = value.parse::<u64>().unwrap_or(0);
        if key.ends_with("_count") && count > 0 {
            let (name, tid) = (call.name.clone(), call.tid);
            let ts = self.now(None);
            let what = if output { "output" } else { "input" };
            let place = format!("{}:{}", self.file, self.line);
            self.instant(&format!("NaN/Inf: {name} {arg}"), ts, tid, &[("kind", what.to_string()), ("place", place)]);
        }
    }
}

impl Trace {
    /// Reads one log; `index` numbers the file (its track when no process id is known).
    pub fn read(&mut self, path: &str, index: usize, mut reader: impl BufRead) -> std::io::Result<()> {
        let mut file = FileReader {
            trace: self,
            file: path.to_string(),
            pid: index as u64,
            line: 0,
            second: 0,
            in_second: 0,
            open: Vec::new(),
            current: None,
            arg: String::new(),
            after_eq: false,
            after_header: false,
            threads: BTreeMap::new(),
            rank: None,
        };
        let mut raw = Vec::new();
        loop {
            raw.clear();
            if reader.read_until(b'\n', &mut raw)? == 0 {
                break;
            }
            file.line(String::from_utf8_lossy(&raw).trim_end_matches(['\n', '\r']));
        }
        file.did_not_return_all();
        let rank = file.rank.as_ref().map(|r| format!("rank {r}: ")).unwrap_or_default();
        let (pid, name) = (file.pid, json(&format!("{rank}{path} (pid {})", file.pid)));
        let threads: Vec<u64> = file.threads.keys().copied().collect();
        self.events.push(format!(
            "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":{name}}}}}"
        ));
        for tid in threads {
            let label = if tid == 0 { "first thread".to_string() } else { format!("thread {tid}") };
            self.events.push(format!(
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
                json(&label)
            ));
        }
        Ok(())
    }

    /// The whole JSON document.
    pub fn json(&self) -> String {
        format!("{{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n{}\n]}}\n", self.events.join(",\n"))
    }
}

const EXPORT_HELP: &str = "\
usage: flashlog export --trace LOG... -o trace.json

Writes the calls of the logs as Chrome trace-event JSON, which Perfetto (ui.perfetto.dev) and chrome://tracing
open: one track per process and thread, one slice per call (its tensors' statistics in its arguments), instant
events for a NaN/Inf, a call that did not return and a CUDA error. Records carry their time to the second: within
a second, calls are laid out 1 us apart in the order of their records.";

/// `flashlog export --trace LOG... -o FILE`.
pub fn main(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        crate::print_out(&format!("{EXPORT_HELP}\n"));
        return ExitCode::SUCCESS;
    }
    let (mut trace_flag, mut out, mut logs) = (false, None, Vec::new());
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--trace" => trace_flag = true,
            "-o" | "--output" => {
                i += 1;
                out = args.get(i).cloned();
            }
            a if a.starts_with("--output=") => out = Some(a["--output=".len()..].to_string()),
            a if a.starts_with('-') && a.len() > 1 => {
                eprintln!("flashlog export: unknown option '{a}' (flashlog export --help)");
                return ExitCode::from(2);
            }
            a => logs.push(a.to_string()),
        }
        i += 1;
    }
    let (true, Some(out), false) = (trace_flag, out.filter(|o| !o.is_empty()), logs.is_empty()) else {
        eprintln!("flashlog export: give --trace, the logs and -o FILE: flashlog export --trace LOG... -o trace.json");
        return ExitCode::from(2);
    };
    let mut trace = Trace::default();
    for (index, path) in logs.iter().enumerate() {
        let result = std::fs::File::open(path)
            .and_then(|f| trace.read(path, index, std::io::BufReader::with_capacity(1 << 20, f)));
        if let Err(e) = result {
            eprintln!("flashlog export: {path}: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = std::fs::write(&out, trace.json()) {
        eprintln!("flashlog export: {out}: {e}");
        return ExitCode::from(2);
    }
    eprintln!("flashlog export: {} calls from {} logs written to {out}", trace.calls, logs.len());
    ExitCode::SUCCESS
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
        assert_eq!(json("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
