//! The summary's text: the table per call name, then one line per finding, per file, and the unparsed count.
//!
//! A place reads `FILE (rank R of N, run K, pid P):LINE [STAMP] thread T call #N ARG`: the rank when the file's
//! system information record gives it, the run and its process id when the file holds more than one run, the
//! thread and call number when the records carry correlation lines.

use super::{Listed, Place, Summary};

impl Summary {
    /// The file name of a place with its rank, run and process id where they tell something.
    fn file_text(&self, file: usize, run: usize) -> String {
        let f = &self.files[file];
        let base = f.path.rsplit('/').next().unwrap_or("");
        let info = f.runs.get(run);
        let mut notes = Vec::new();
        if let Some(rank) = info.and_then(|i| i.rank.as_deref()) {
            notes.push(format!("rank {rank}"));
        }
        if f.run_count > 1 {
            notes.push(format!("run {}", run + 1));
            if let Some(pid) = info.and_then(|i| i.pid) {
                notes.push(format!("pid {pid}"));
            }
        }
        if notes.is_empty() {
            base.to_string()
        } else {
            format!("{base} ({})", notes.join(", "))
        }
    }

    /// A place as the table and the closing lines show it.
    pub fn place_text(&self, p: &Place) -> String {
        let mut s = format!("{}:{}", self.file_text(p.file, p.run), p.line);
        for (part, bracket) in [(&p.stamp, true), (&p.call, false), (&p.arg, false)] {
            if part.is_empty() {
                continue;
            }
            s.push(' ');
            if bracket {
                s.push('[');
            }
            s.push_str(part);
            if bracket {
                s.push(']');
            }
        }
        s
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

    fn listed(&self, out: &mut String, what: &str, list: &Listed) {
        for (name, p) in &list.listed {
            out.push_str(&format!("{what}: {} {}\n", self.place_text(p), name));
        }
        if list.count > list.listed.len() as u64 {
            out.push_str(&format!("{what} (not listed): {}\n", list.count - list.listed.len() as u64));
        }
    }

    fn file_line(&self, file: usize) -> String {
        let f = &self.files[file];
        let base = f.path.rsplit('/').next().unwrap_or("");
        let mut parts = Vec::new();
        let ranks: Vec<&str> = f.runs.iter().filter_map(|r| r.rank.as_deref()).collect();
        if let Some(first) = ranks.first() {
            if ranks.iter().all(|r| r == first) {
                parts.push(format!("rank {first}"));
            } else {
                parts.push(format!("ranks {}", ranks.join(", ")));
            }
        }
        let pids: Vec<String> = f.runs.iter().filter_map(|r| r.pid).take(8).map(|p| format!("pid {p}")).collect();
        let runs = if f.run_count == 1 { "1 run".to_string() } else { format!("{} runs", f.run_count) };
        let more = if f.runs.iter().filter(|r| r.pid.is_some()).count() > pids.len() { ", ..." } else { "" };
        parts.push(if pids.is_empty() { runs } else { format!("{runs} ({}{more})", pids.join(", ")) });
        parts.push(match f.records {
            0 => "no records".to_string(),
            1 => "1 record".to_string(),
            n => format!("{n} records"),
        });
        format!("file {base}: {}\n", parts.join(", "))
    }

    /// The table and the closing lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let name_width = self.names.keys().map(|n| n.chars().count()).max().unwrap_or(4).clamp(4, 60);
        let place = |p: &Option<Place>| p.as_ref().map_or("-".to_string(), |p| self.place_text(p));
        let col3 = self.names.values().map(|s| place(&s.first_in).chars().count()).max().unwrap_or(1).max(22);
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
        self.listed(&mut out, "did not return", &self.did_not_return);
        self.listed(&mut out, "raised", &self.raised);
        if self.unmatched_outputs > 0 {
            out.push_str(&format!("outputs records without their inputs record: {}\n", self.unmatched_outputs));
        }
        for file in 0..self.files.len() {
            out.push_str(&self.file_line(file));
        }
        out.push_str(&format!("unparsed lines: {}\n", self.unparsed));
        out
    }
}

/// Shortens `name` to `width` characters by replacing its middle with `...`, keeping the export at the end.
pub fn elide_middle(name: &str, width: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= width {
        return name.to_string();
    }
    let head = (width - 3) / 3;
    let tail = width - 3 - head;
    chars[..head].iter().chain(['.', '.', '.'].iter()).chain(chars[chars.len() - tail..].iter()).collect()
}
