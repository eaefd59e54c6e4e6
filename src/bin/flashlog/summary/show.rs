//! `flashlog summary --show`: the records themselves, read again from the files (a second pass, over the
//! files that hold something to show): the call (its inputs and outputs records, or a replay record) of the
//! first NaN/Inf, of each call that did not return, of the last call of each run that died, and of the first
//! CUDA error of each file. Lines of other threads' records between a call's two records are left out, and said
//! to be; so is a line too long to read.

use super::{cut, Place, Summary};
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

    /// The records to show, each after a `==> title <==` line; `open` reads a file again by its index. The
    /// records are cut by [`cut`], the cutter `flashlog report` uses too.
    pub fn show<R: BufRead>(&self, mut open: impl FnMut(usize) -> std::io::Result<R>) -> std::io::Result<String> {
        let mut out = String::new();
        for (file, records) in self.show_targets() {
            let mut shown_last = None::<(u64, u64)>;
            let mut reader = open(file)?;
            cut::cut(
                &self.files[file].path,
                &mut reader,
                |r| records.contains_key(&r),
                |record, line_no, line| {
                    match shown_last {
                        Some((r, _)) if r == record => {}
                        _ => out.push_str(&format!("==> {} <==\n", records[&record])),
                    }
                    if shown_last.is_some_and(|(r, l)| r == record && l + 1 != line_no) {
                        out.push_str(cut::OTHER_THREADS);
                        out.push('\n');
                    }
                    out.push_str(line);
                    out.push('\n');
                    shown_last = Some((record, line_no));
                },
            )?;
        }
        Ok(out)
    }
}
