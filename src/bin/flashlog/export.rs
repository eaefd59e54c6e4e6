//! `flashlog export --trace LOG... -o trace.json`: the calls of logs as Chrome trace-event JSON (the format
//! Perfetto and `chrome://tracing` open): one track per process (its rank when the system information record
//! gives one) and thread, one complete event (`"ph": "X"`) per call, with the statistics of its tensors in its
//! arguments, and instant events (`"ph": "i"`) for a NaN/Inf, a call that did not return and a CUDA error.
//!
//! Time (`records`, `docs/usage.md`, "Trace"): a call whose records carry their time to the microsecond (the
//! correlation line's `at` field) is a slice from its inputs record's time to its outputs record's; records
//! without it carry their time to the second only, and are laid out one microsecond apart in the order of their
//! records within their second: the order of calls is exact, durations and gaps inside a second are not measured.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use crate::records::{self, Call, Kind, Outcome};

/// The events of all files.
#[derive(Default)]
pub struct Trace {
    events: Vec<String>,
    /// Seconds of the earliest timestamp seen (the trace's zero).
    zero: Option<u64>,
    /// Calls written as complete events.
    pub calls: u64,
}

/// `s` as a JSON string literal.
pub fn json(s: &str) -> String {
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

/// The trace events of one file's calls and findings.
struct FileEvents<'a> {
    events: &'a mut Vec<String>,
    calls: &'a mut u64,
    file: &'a str,
    threads: BTreeMap<u64, ()>,
}

impl FileEvents<'_> {
    fn instant(&mut self, pid: u64, name: &str, ts: u64, tid: u64, args: &[(&str, String)]) {
        self.threads.insert(tid, ());
        let args: Vec<String> = args.iter().map(|(k, v)| format!("{}:{}", json(k), json(v))).collect();
        self.events.push(format!(
            "{{\"name\":{},\"cat\":\"finding\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{ts},\"pid\":{pid},\"tid\":{tid},\"args\":{{{}}}}}",
            json(name),
            args.join(",")
        ));
    }

    fn slice(&mut self, pid: u64, call: Call, end: u64, outcome: &str) {
        self.threads.insert(call.tid, ());
        let mut args = vec![format!("\"place\":{}", json(&format!("{}:{}", self.file, call.line)))];
        args.push(format!("\"outcome\":{}", json(outcome)));
        if let Some(n) = call.number {
            args.push(format!("\"call\":{n}"));
        }
        args.extend(call.args.iter().map(|(k, v)| format!("{}:{}", json(k), json(v))));
        self.events.push(format!(
            "{{\"name\":{},\"cat\":\"call\",\"ph\":\"X\",\"ts\":{},\"dur\":{},\"pid\":{pid},\"tid\":{},\"args\":{{{}}}}}",
            json(&call.name),
            call.ts,
            end.saturating_sub(call.ts).max(1),
            call.tid,
            args.join(",")
        ));
        *self.calls += 1;
    }

    /// One event of the shared record reader. Graph replay records are not in the trace (yet): it has a slice
    /// per call of the program.
    fn event(&mut self, pid: u64, kind: Kind) {
        let place = |line: u64| format!("{}:{line}", self.file);
        match kind {
            Kind::Call { outcome: Outcome::Replay, .. } | Kind::NonFinite { replay: true, .. } => {}
            Kind::Call { call, end, outcome } => self.slice(pid, call, end, outcome.as_str()),
            Kind::NonFinite { name, arg, output, ts, tid, line, .. } => {
                let what = if output { "output" } else { "input" };
                let args = [("kind", what.to_string()), ("place", place(line))];
                self.instant(pid, &format!("NaN/Inf: {name} {arg}"), ts, tid, &args);
            }
            Kind::DidNotReturn { name, ts, tid, line } => {
                self.instant(pid, &format!("did not return: {name}"), ts, tid, &[("place", place(line))]);
            }
            Kind::CudaError { error, name, ts, tid, line } => {
                let args = [("call", name), ("place", place(line))];
                self.instant(pid, &format!("CUDA error: {error}"), ts, tid, &args);
            }
        }
    }
}

impl Trace {
    /// Reads one log; `index` numbers the file (its track when no process id is known).
    pub fn read(&mut self, path: &str, index: usize, reader: impl std::io::BufRead) -> std::io::Result<()> {
        let mut file =
            FileEvents { events: &mut self.events, calls: &mut self.calls, file: path, threads: BTreeMap::new() };
        let info = records::read(&mut self.zero, reader, &mut |e| file.event(e.pid.unwrap_or(index as u64), e.kind))?;
        crate::lines::say("flashlog export", path, &info.skipped);
        let threads: Vec<u64> = file.threads.keys().copied().collect();
        let rank = info.rank.as_ref().map(|r| format!("rank {r}: ")).unwrap_or_default();
        let pid = info.pid.unwrap_or(index as u64);
        let name = json(&format!("{rank}{path} (pid {pid})"));
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
events for a NaN/Inf, a call that did not return and a CUDA error. A call whose records carry their time to the
microsecond (correlation lines with an `at` field: several threads, or FLASHLOG_CORRELATE=1) runs from its inputs
record's time to its outputs record's; other records carry their time to the second: within a second, they are
laid out 1 us apart in the order of their records.";

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
        let result = crate::log_input::open(path, "flashlog export").and_then(|r| trace.read(path, index, r));
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
    fn json_escapes() {
        assert_eq!(json("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
