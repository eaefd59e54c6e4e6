//! `flashlog report LOG... -o report.html`: one self-contained HTML page of logs (no network when it is viewed):
//! per file (a rank, a process), the calls over time by name; for a chosen call name and argument, its
//! statistics over calls and graph replays (min, max and mean as lines, NaN and Inf counts as marks); the first
//! NaN/Inf, each call that did not return and each CUDA error, marked and linked to its record's text.
//!
//! The logs are read by the reader `flashlog export --trace` uses ([`crate::records`]). What the page holds stays
//! bounded whatever the size of the logs ([`series`]): the timeline is counts per time bucket, a statistics
//! series beyond [`series::MAX_POINTS`] points is decimated keeping each bucket's extremes and the NaN/Inf
//! points, and record texts are embedded for the listed findings only, not for every record.

mod page;
pub mod series;
mod texts;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::ops::ControlFlow;
use std::process::ExitCode;

use crate::lines::Line;
use crate::records::{self, Kind, Outcome};
use series::{Point, Series};

/// Findings listed (and their records embedded) per file; the rest are counted.
pub const MAX_FINDINGS: usize = 100;

/// What a finding is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum FindingKind {
    /// A call that did not return.
    DidNotReturn,
    /// A CUDA error line.
    CudaError,
    /// A NaN or Inf count above zero.
    NonFinite,
}

/// A finding of one file.
pub struct Finding {
    /// What it is.
    pub kind: FindingKind,
    /// Its one-line description (call name, argument, error).
    pub what: String,
    /// Its call's name.
    pub name: String,
    /// Its argument label (NaN/Inf only).
    pub arg: String,
    /// Its time in seconds since the report's zero.
    pub x: f64,
    /// Its line (1-based) in the file.
    pub line: u64,
    /// The text of the record holding that line (filled for listed findings).
    pub text: String,
}

impl Finding {
    /// A finding of `kind` at `line`, with no argument, time or record text yet (the pass fills them in).
    fn at(kind: FindingKind, what: String, name: String, line: u64) -> Finding {
        Finding { kind, what, name, arg: String::new(), x: 0.0, line, text: String::new() }
    }
}

/// Calls of one name in one file.
#[derive(Default, Clone)]
pub struct NameCount {
    /// Calls (and graph replays) of that name.
    pub calls: u64,
    /// Of them, graph replay records.
    pub replays: u64,
    /// Calls that failed or did not return.
    pub failed: u64,
    /// Calls (and replays) with a NaN/Inf in any tensor.
    pub nonfinite: u64,
}

/// One log file: a rank or a process.
pub struct Rank {
    /// `rank R of N: PATH (pid P)` or `PATH (pid P)`.
    pub label: String,
    /// The file's path as given.
    pub path: String,
    /// `rank R of N` or `pid P` (empty when the file says neither).
    pub who: String,
    /// Calls by name.
    pub names: BTreeMap<String, NameCount>,
    /// Call times (seconds) and name index into `names` order, for the timeline.
    pub times: Vec<(f64, u32)>,
    /// Whether the file's records carry their time to the microsecond (then times are measured, not spread).
    pub timed: bool,
    /// Statistics series by (call name, argument label), decimated.
    pub series: BTreeMap<(String, String), Series>,
    /// Listed findings, in the order of the file.
    pub findings: Vec<Finding>,
    /// Findings found but not listed.
    pub unlisted: u64,
    /// The time of every finding, listed or not (the timeline marks them all).
    pub finding_xs: Vec<f64>,
}

/// Seconds in the log's header lines (its first 64 lines, read with the bounded reader): the first one, to set
/// the report's zero before reading any file.
fn first_second(path: &str) -> std::io::Result<Option<u64>> {
    let input = crate::log_input::open(path, "flashlog report")?;
    let (mut first, mut lines) = (None, 0);
    crate::lines::until(&mut input.take(64 * crate::lines::MAX_LINE as u64), |line| {
        lines += 1;
        if let Line::Text(raw) = line {
            let line = String::from_utf8_lossy(raw);
            first = records::stamped(line.trim_end()).and_then(|(s, _)| records::seconds(s));
        }
        if first.is_some() || lines == 64 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(first)
}

/// Parses `min=... max=... mean=... nan_count=... inf_count=...` (time and line left at 0); None without min,
/// max or mean.
fn stats(text: &str) -> Option<Point> {
    let (mut min, mut max, mut mean, mut nan, mut inf, mut any) = (None, None, None, 0, 0, false);
    for kv in text.split(' ') {
        let Some((k, v)) = kv.split_once('=') else { continue };
        let f = || v.parse::<f64>().ok().filter(|f| f.is_finite());
        match k {
            "min" => (min, any) = (f(), true),
            "max" => (max, any) = (f(), true),
            "mean" => (mean, any) = (f(), true),
            "nan_count" => nan = v.parse().unwrap_or(0),
            "inf_count" => inf = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    any.then_some(Point { x: 0.0, min, max, mean, nan, inf, line: 0, replay: false })
}

/// Reads one file into a [`Rank`]; times are the records' measured ones when they carry them, else spread over
/// their second (see [`series::spread`]).
fn read_rank(path: &str, zero: &mut Option<u64>) -> std::io::Result<Rank> {
    let mut names: BTreeMap<String, NameCount> = BTreeMap::new();
    let mut calls: Vec<(u64, String)> = Vec::new();
    let mut points: HashMap<(String, String), Vec<(u64, Point)>> = HashMap::new();
    let mut found: Vec<(u64, Finding)> = Vec::new();
    let mut last_in_second: HashMap<u64, u64> = HashMap::new();
    let mut tick = |ts: u64| {
        let e = last_in_second.entry(ts / 1_000_000).or_insert(0);
        *e = (*e).max(ts % 1_000_000);
    };
    let input = crate::log_input::open(path, "flashlog report")?;
    let info = records::read(zero, input, &mut |event| match event.kind {
        Kind::Call { call, end, outcome } => {
            tick(call.ts);
            tick(end);
            let count = names.entry(call.name.clone()).or_default();
            count.calls += 1;
            count.replays += u64::from(outcome == Outcome::Replay);
            count.failed += u64::from(matches!(outcome, Outcome::Failed | Outcome::DidNotReturn));
            let mut nonfinite = false;
            for (arg, text) in &call.args {
                if let Some(point) = stats(text) {
                    nonfinite |= point.nan + point.inf > 0;
                    let point = Point { line: call.line, replay: call.replay.is_some(), ..point };
                    points.entry((call.name.clone(), arg.clone())).or_default().push((call.ts, point));
                }
            }
            count.nonfinite += u64::from(nonfinite);
            calls.push((call.ts, call.name));
        }
        Kind::NonFinite { name, arg, output, replay, ts, line, .. } => {
            tick(ts);
            let side = if output { "output" } else { "input" };
            let rep = if replay { " (graph replay)" } else { "" };
            let what = format!("NaN/Inf in {side} {arg} of {name}{rep}");
            found.push((ts, Finding { arg, ..Finding::at(FindingKind::NonFinite, what, name, line) }));
        }
        Kind::DidNotReturn { name, ts, line, .. } => {
            tick(ts);
            let what = format!("did not return: {name}");
            found.push((ts, Finding::at(FindingKind::DidNotReturn, what, name, line)));
        }
        Kind::CudaError { error, name, ts, line, .. } => {
            tick(ts);
            let what = format!("CUDA error after {name}: {error}");
            found.push((ts, Finding::at(FindingKind::CudaError, what, name, line)));
        }
    })?;
    crate::lines::say("flashlog report", path, &info.skipped);
    let x = |ts: u64| if info.timed { ts as f64 / 1e6 } else { series::spread(ts, &last_in_second) };
    let index: HashMap<&str, u32> = names.keys().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
    let times = calls.iter().map(|(ts, name)| (x(*ts), index[name.as_str()])).collect();
    let series = points
        .into_iter()
        .map(|(key, mut pts)| {
            pts.sort_by_key(|(ts, p)| (*ts, p.line));
            let pts = pts.into_iter().map(|(ts, p)| Point { x: x(ts), ..p }).collect();
            (key, series::decimate(pts, series::MAX_POINTS))
        })
        .collect();
    let found: Vec<Finding> = found.into_iter().map(|(ts, f)| Finding { x: x(ts), ..f }).collect();
    let finding_xs = found.iter().map(|f| f.x).collect();
    let (mut findings, unlisted) = pick_findings(found);
    texts::fill(path, &mut findings)?;
    let pid = info.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    let label = match &info.rank {
        Some(r) => format!("rank {r}: {path}{pid}"),
        None => format!("{path}{pid}"),
    };
    let who = match (&info.rank, info.pid) {
        (Some(r), _) => format!("rank {r}"),
        (None, Some(p)) => format!("pid {p}"),
        (None, None) => String::new(),
    };
    let timed = info.timed;
    Ok(Rank { label, path: path.to_string(), who, names, times, timed, series, findings, unlisted, finding_xs })
}

/// The findings listed: every call that did not return and CUDA error, the first NaN/Inf of each call name
/// and argument, then the other NaN/Infs in order, up to [`MAX_FINDINGS`]; returns them and the count left out.
fn pick_findings(all: Vec<Finding>) -> (Vec<Finding>, u64) {
    let mut seen = std::collections::HashSet::new();
    let mut rank: Vec<(usize, usize)> = all
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let tier = match f.kind {
                FindingKind::NonFinite if seen.insert((f.name.clone(), f.arg.clone())) => 1,
                FindingKind::NonFinite => 2,
                _ => 0,
            };
            (tier, i)
        })
        .collect();
    rank.sort();
    let keep: std::collections::HashSet<usize> = rank.iter().take(MAX_FINDINGS).map(|(_, i)| *i).collect();
    let unlisted = all.len().saturating_sub(keep.len()) as u64;
    let listed = all.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, f)| f).collect();
    (listed, unlisted)
}

const REPORT_HELP: &str = "\
usage: flashlog report LOG... -o report.html

Writes one self-contained HTML page (no network needed to view it) of the logs: per file (rank, process), the
calls over time by name; for a chosen call name and argument, its statistics over calls and graph replays (min,
max, mean as lines; NaN and Inf counts as marks); the first NaN/Inf, each call that did not return and each CUDA
error, marked and linked to its record's text. Calls are placed at the microsecond times of their correlation
lines when the records carry them (several threads, or FLASHLOG_CORRELATE=1); otherwise records carry their time
to the second, and within a second calls are spread evenly in the order of their records.";

/// `flashlog report LOG... -o FILE`.
pub fn main(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{REPORT_HELP}");
        return ExitCode::SUCCESS;
    }
    let (mut out, mut logs) = (None, Vec::new());
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-o" | "--output" => {
                i += 1;
                out = args.get(i).cloned();
            }
            a if a.starts_with("--output=") => out = Some(a["--output=".len()..].to_string()),
            a if a.starts_with("-o") && a.len() > 2 => out = Some(a[2..].to_string()),
            a if a.starts_with('-') && a.len() > 1 => {
                eprintln!("flashlog report: unknown option '{a}' (flashlog report --help)");
                return ExitCode::from(2);
            }
            a => logs.push(a.to_string()),
        }
        i += 1;
    }
    let (Some(out), false) = (out.filter(|o| !o.is_empty()), logs.is_empty()) else {
        eprintln!("flashlog report: give the logs and -o FILE: flashlog report LOG... -o report.html");
        return ExitCode::from(2);
    };
    let mut zero = None;
    for path in &logs {
        match first_second(path) {
            Ok(s) => zero = s.into_iter().chain(zero).min(),
            Err(e) => {
                eprintln!("flashlog report: {path}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut ranks = Vec::new();
    for path in &logs {
        match read_rank(path, &mut zero) {
            Ok(rank) => ranks.push(rank),
            Err(e) => {
                eprintln!("flashlog report: {path}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let html = page::html(&ranks);
    if let Err(e) = std::fs::write(&out, &html) {
        eprintln!("flashlog report: {out}: {e}");
        return ExitCode::from(2);
    }
    let calls: usize = ranks.iter().map(|r| r.times.len()).sum();
    let findings: u64 = ranks.iter().map(|r| r.findings.len() as u64 + r.unlisted).sum();
    eprintln!(
        "flashlog report: {calls} calls and {findings} findings from {} logs written to {out} ({} KB)",
        logs.len(),
        html.len() / 1024
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_text_parses_with_non_finite_values_as_none() {
        let p = stats("min=-1.5 max=nan mean=inf nan_count=3 inf_count=1").unwrap();
        assert_eq!((p.min, p.max, p.mean, p.nan, p.inf), (Some(-1.5), None, None, 3, 1));
        assert_eq!(stats("Runtime error"), None);
    }

    #[test]
    fn findings_list_keeps_every_failure_and_each_first_nan() {
        let f = |kind, name: &str| Finding {
            kind,
            what: String::new(),
            name: name.to_string(),
            arg: "arg[0]".to_string(),
            x: 0.0,
            line: 0,
            text: String::new(),
        };
        let mut all: Vec<Finding> = (0..300).map(|_| f(FindingKind::NonFinite, "a")).collect();
        all.push(f(FindingKind::NonFinite, "b"));
        all.push(f(FindingKind::DidNotReturn, "c"));
        let (listed, unlisted) = pick_findings(all);
        assert_eq!((listed.len(), unlisted), (MAX_FINDINGS, 302 - MAX_FINDINGS as u64));
        assert!(listed.iter().any(|f| f.name == "b") && listed.iter().any(|f| f.kind == FindingKind::DidNotReturn));
        assert_eq!(listed[0].name, "a"); // the order of the file is kept
    }
}
