//! The record texts of the listed findings, cut by the cutter `flashlog summary --show` uses
//! ([`crate::summary::cut`]): a first pass finds the record that holds each finding's line (for a call, its
//! inputs record with its outputs record and, in a log of one thread, its launches; a line outside records is
//! its own), a second one keeps those records' lines, with `--show`'s mark where other threads' records stood
//! between two of a call's lines.

use std::collections::{HashMap, HashSet};

use super::Finding;
use crate::summary::cut;

/// Lines kept of one record (a level-10 record of a large tensor can be long).
const MAX_LINES: usize = 300;
/// Bytes kept of one record's text (a line may be up to 1 MiB long; the page holds up to 100 texts per file).
const MAX_TEXT: usize = 256 << 10;

/// Sets `text` of each finding from the file at `path`.
pub fn fill(path: &str, findings: &mut [Finding]) -> std::io::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let open = || crate::log_input::open(path, "flashlog report");
    let wanted: HashSet<u64> = findings.iter().map(|f| f.line).collect();
    let texts = records_of(path, &wanted, open)?;
    for f in findings {
        f.text = texts.get(&f.line).cloned().unwrap_or_default();
    }
    Ok(())
}

/// One record's text being cut.
#[derive(Default)]
struct Text {
    text: String,
    lines: usize,
    last: u64,
}

/// The text of the record holding each wanted line; `open` reads the file from its start (twice).
fn records_of<R: std::io::BufRead>(
    path: &str,
    wanted: &HashSet<u64>,
    open: impl Fn() -> std::io::Result<R>,
) -> std::io::Result<HashMap<u64, String>> {
    let mut record_of = HashMap::new();
    cut::cut(
        path,
        &mut open()?,
        |_| true,
        |record, line_no, _| {
            if wanted.contains(&line_no) {
                record_of.insert(line_no, record);
            }
        },
    )?;
    let records: HashSet<u64> = record_of.values().copied().collect();
    let mut texts: HashMap<u64, Text> = HashMap::new();
    cut::cut(
        path,
        &mut open()?,
        |r| records.contains(&r),
        |record, line_no, line| {
            let t = texts.entry(record).or_default();
            let gap = t.lines > 0 && t.last + 1 != line_no;
            let more = line.len() + if gap { cut::OTHER_THREADS.len() + 2 } else { 1 };
            if t.lines >= MAX_LINES || t.text.len() + more > MAX_TEXT {
                return;
            }
            if t.lines > 0 {
                t.text.push('\n');
            }
            if gap {
                t.text.push_str(cut::OTHER_THREADS);
                t.text.push('\n');
            }
            t.text.push_str(line);
            (t.lines, t.last) = (t.lines + 1, line_no);
        },
    )?;
    Ok(record_of.into_iter().filter_map(|(line, r)| Some((line, texts.get(&r)?.text.clone()))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::EQ;

    fn texts(log: &str, wanted: &[u64]) -> HashMap<u64, String> {
        let wanted = wanted.iter().copied().collect();
        records_of("t.log", &wanted, || Ok(log.as_bytes())).unwrap()
    }

    #[test]
    fn a_line_maps_to_its_call_and_a_line_outside_records_to_itself() {
        let d = "-".repeat(80);
        let log = format!(
            "{EQ}\n[2026-12-07 05:22:24] FlashInfer API Call: a\n{d}\n  arg[0]:\n    nan_count=1\n\n\
             {EQ}\n[2026-12-07 05:22:24] FlashInfer API Call: b\n{d}\nPositional input arguments:\n\
             Output value:\n[CUDA error after this call: X (1)]\n  nan_count=2\n{EQ}\n\n\
             [2026-12-07 05:22:25] FlashInfer API Call: c\n\
             [CUDA error after this call: Y (2)] [call c #3 thread 7]\n"
        );
        let texts = texts(&log, &[5, 12, 13, 17]);
        let a = log.lines().take(6).collect::<Vec<_>>().join("\n");
        assert_eq!(texts[&5], a, "a's inputs record, to the next one");
        let b = log.lines().skip(6).take(8).collect::<Vec<_>>().join("\n");
        assert_eq!((&texts[&12], &texts[&13]), (&b, &b), "b's inputs and outputs records, its closing = line included");
        assert_eq!(texts[&17], "[CUDA error after this call: Y (2)] [call c #3 thread 7]");
    }

    #[test]
    fn a_call_of_a_thread_is_cut_around_other_threads_records_and_long_lines() {
        let d = "-".repeat(80);
        let inputs = |name: &str, n: u32, t: u32| {
            format!("{EQ}\n[2026-12-07 05:22:24] FlashInfer API Call: {name}\n[call {name} #{n} thread {t}]\n{d}\n")
        };
        let outputs = |name: &str, n: u32, t: u32| format!("[call {name} #{n} thread {t}]\nOutput value:\n");
        let log = format!(
            "{}  arg[0]:\n{}\n{}{}  nan_count=3\n{EQ}\n{}{EQ}\n",
            inputs("a", 1, 7),
            "x".repeat(crate::lines::MAX_LINE + 1),
            inputs("b", 2, 8),
            outputs("a", 1, 7),
            outputs("b", 2, 8)
        );
        let at = log.lines().position(|l| l == "  nan_count=3").unwrap() as u64 + 1;
        let texts = texts(&log, &[at]);
        let want = format!(
            "{}  arg[0]:\n{}\n{}\n{}  nan_count=3\n{EQ}",
            inputs("a", 1, 7),
            cut::LONG_LINE,
            cut::OTHER_THREADS,
            outputs("a", 1, 7)
        );
        assert_eq!(texts[&at], want);
    }
}
