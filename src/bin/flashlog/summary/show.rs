//! `flashlog summary --show`: the records themselves, read again from the files (a second pass, over the
//! files that hold something to show): the call (its inputs and outputs records, or a replay record) of the
//! first NaN/Inf, of each call that did not return, of the last call of each run that died, and of the first
//! CUDA error of each file. Lines of other threads' records between a call's two records are left out, and said to be.

use super::parse::FileParser;
use super::{FileInfo, Place, Summary};
use std::collections::BTreeMap;
use std::io::BufRead;

impl Summary {
    /// What `--show` prints, per file: record start line -> the title of what it shows.
    fn show_targets(&self) -> BTreeMap<usize, BTreeMap<u64, String>> {
        let mut targets: BTreeMap<usize, BTreeMap<u64, String>> = BTreeMap::new();
        let mut add = |p: &Place, title: String| {
            let start = if p.call_record > 0 { p.call_record } else { p.record };
            targets.entry(p.file).or_default().entry(start).or_insert(title);
        };
        if let Some((name, p, kind)) = self.first_overall() {
            add(p, format!("first NaN/Inf overall ({kind} of {name}): {}", self.place_text(p)));
        }
        for (name, p) in &self.did_not_return.listed {
            add(p, format!("did not return ({name}): {}", self.place_text(p)));
        }
        for (name, p) in &self.no_exit_line.listed {
            add(p, format!("the last call started before the run died ({name}): {}", self.place_text(p)));
        }
        for e in &self.cuda_errors {
            let title = format!("first CUDA error ({}): {}:{} {}", e.error, e.path, e.line, e.blame);
            targets.entry(e.file).or_default().entry(e.record).or_insert(title);
        }
        targets
    }

    /// The records to show, each after a `==> title <==` line; `open` reads a file again by its index.
    pub fn show<R: BufRead>(&self, mut open: impl FnMut(usize) -> std::io::Result<R>) -> std::io::Result<String> {
        let mut out = String::new();
        for (file, records) in self.show_targets() {
            let mut scratch = Summary::default();
            scratch.files.push(FileInfo { path: self.files[file].path.clone(), ..FileInfo::default() });
            let mut parser = FileParser::new(&mut scratch, 0);
            let mut reader = open(file)?;
            let mut raw = Vec::new();
            let (mut line_no, mut shown_last) = (0u64, None::<(u64, u64)>);
            // Whether the last line shown was a record's `=` line (a record that closed there has no launch after).
            let mut shown_eq = false;
            loop {
                raw.clear();
                if reader.read_until(b'\n', &mut raw)? == 0 {
                    break;
                }
                line_no += 1;
                let text = String::from_utf8_lossy(&raw);
                let line = text.trim_end_matches(['\n', '\r']);
                parser.line(line);
                // A kernel-launch record (and a CUDA error line after it) right after a shown call's line is
                // that call's, in a log of one thread: shown with it.
                let launch_of_shown =
                    shown_last.filter(|(_, l)| !shown_eq && parser.in_launch_record() && l + 1 == line_no);
                let record = parser.record_of_last_line().filter(|r| records.contains_key(r));
                let record = launch_of_shown.map(|(r, _)| r).or(record);
                let Some(record) = record.or_else(|| records.contains_key(&line_no).then_some(line_no)) else {
                    continue;
                };
                match shown_last {
                    Some((r, _)) if r == record => {}
                    _ => out.push_str(&format!("==> {} <==\n", records[&record])),
                }
                if shown_last.is_some_and(|(r, l)| r == record && l + 1 != line_no) {
                    out.push_str("  [... records of other threads ...]\n");
                }
                out.push_str(line);
                out.push('\n');
                shown_last = Some((record, line_no));
                shown_eq = line == "=".repeat(80);
            }
            parser.finish();
        }
        Ok(out)
    }
}
