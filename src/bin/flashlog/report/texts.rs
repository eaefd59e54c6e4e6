//! The record texts of the listed findings: a second pass over the file keeps the record that holds each
//! finding's line (from its opening frame line to its closing one); a line outside any record (a CUDA error line
//! written after its call's record) gets the record before it and the line itself.

use std::collections::HashMap;
use std::io::BufRead;

use super::Finding;
use crate::records::{stamped, EQ};

/// Lines kept of one record (a level-10 record of a large tensor can be long).
const MAX_LINES: usize = 300;

/// Sets `text` of each finding from the file at `path`.
pub fn fill(path: &str, findings: &mut [Finding]) -> std::io::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let wanted: HashMap<u64, ()> = findings.iter().map(|f| (f.line, ())).collect();
    let texts = records_of(std::io::BufReader::new(std::fs::File::open(path)?), &wanted)?;
    for f in findings {
        f.text = texts.get(&f.line).cloned().unwrap_or_default();
    }
    Ok(())
}

/// The text of the record holding each wanted line.
fn records_of(mut input: impl BufRead, wanted: &HashMap<u64, ()>) -> std::io::Result<HashMap<u64, String>> {
    let mut out = HashMap::new();
    let (mut record, mut last): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    let (mut inside, mut hits, mut prev_eq, mut n) = (false, Vec::new(), false, 0u64);
    let mut raw = Vec::new();
    let finish =
        |out: &mut HashMap<u64, String>, record: &mut Vec<String>, hits: &mut Vec<u64>, last: &mut Vec<String>| {
            let text = record.join("\n");
            for h in hits.drain(..) {
                out.insert(h, text.clone());
            }
            *last = std::mem::take(record);
        };
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        n += 1;
        let text = String::from_utf8_lossy(&raw);
        let line = text.trim_end_matches(['\n', '\r']);
        let starts = stamped(line).is_some() || (prev_eq && line.starts_with("[call "));
        if starts {
            if inside {
                finish(&mut out, &mut record, &mut hits, &mut last);
            }
            record.clear();
            if prev_eq {
                record.push(EQ.to_string());
            }
            inside = true;
        }
        prev_eq = line == EQ;
        if inside {
            if record.len() < MAX_LINES {
                record.push(line.to_string());
            }
            if wanted.contains_key(&n) {
                hits.push(n);
            }
            if line.is_empty() || (prev_eq && record.len() > 2) {
                finish(&mut out, &mut record, &mut hits, &mut last);
                inside = false;
            }
        } else if wanted.contains_key(&n) {
            let mut text = last.join("\n");
            text.push('\n');
            text.push_str(line);
            out.insert(n, text);
        }
    }
    finish(&mut out, &mut record, &mut hits, &mut last);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_maps_to_its_record_and_a_line_after_one_to_both() {
        let d = "-".repeat(80);
        let log = format!(
            "{EQ}\n[2026-12-07 05:22:24] FlashInfer API Call: a\n{d}\n  arg[0]:\n    nan_count=1\n{EQ}\n\n\
             {EQ}\n[2026-12-07 05:22:24] FlashInfer API Call: b\n{d}\nOutput value:\n{EQ}\n\
             [CUDA error after this call: X (1)]\n\n[2026-12-07 05:22:25] FlashInfer API Call: c\n\
             [2026-12-07 05:22:25] FlashInfer API Call: d\n"
        );
        let wanted = [5, 9, 13, 15].into_iter().map(|l| (l, ())).collect();
        let texts = records_of(log.as_bytes(), &wanted).unwrap();
        assert!(texts[&5].starts_with(&format!("{EQ}\n[2026-12-07 05:22:24] FlashInfer API Call: a\n")));
        assert!(texts[&5].ends_with(&format!("nan_count=1\n{EQ}")));
        assert!(texts[&9].contains("Call: b") && !texts[&9].contains("Call: a"));
        assert!(texts[&13].contains("Call: b") && texts[&13].ends_with("\n[CUDA error after this call: X (1)]"));
        assert_eq!(texts[&15], "[2026-12-07 05:22:25] FlashInfer API Call: c");
        let texts = records_of(log.as_bytes(), &[(16, ())].into_iter().collect()).unwrap();
        assert_eq!(texts[&16], "[2026-12-07 05:22:25] FlashInfer API Call: d");
    }
}
