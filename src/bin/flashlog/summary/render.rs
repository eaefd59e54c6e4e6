//! The summary's text: the table per call name, then one line per finding, per file, and the unparsed count.
//!
//! A place reads `FILE:LINE (rank R of N, run K, pid P) [STAMP] thread T call #N ARG`: `FILE:LINE` first, the
//! path as given on the command line (so an editor or a terminal opens it with a click), then the rank when the
//! file's system information record gives it, the run and its process id when the file holds more than one run,
//! the thread and call number when the records carry correlation lines.

use super::{Listed, Place, Summary};

/// How a line is shown on a terminal with colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// As it is.
    Plain,
    /// The table's header.
    Header,
    /// A finding: a NaN/Inf, a call that did not return, a run that died, a CUDA error.
    Finding,
    /// Worth a look, not a finding: a call that raised or failed.
    Note,
    /// A command to run.
    Hint,
}

impl Summary {
    /// What is said of a place's file besides its path: its rank, run and process id where they tell something.
    fn file_notes(&self, file: usize, run: usize, always_pid: bool) -> Vec<String> {
        let f = &self.files[file];
        let info = f.runs.get(run);
        let mut notes = Vec::new();
        if let Some(rank) = info.and_then(|i| i.rank.as_deref()) {
            notes.push(format!("rank {rank}"));
        }
        if f.run_count > 1 {
            notes.push(format!("run {}", run + 1));
        }
        if f.run_count > 1 || always_pid {
            if let Some(pid) = info.and_then(|i| i.pid) {
                notes.push(format!("pid {pid}"));
            }
        }
        notes
    }

    /// A place as the table and the closing lines show it.
    pub fn place_text(&self, p: &Place) -> String {
        let mut s = format!("{}:{}", self.files[p.file].path, p.line);
        let notes = self.file_notes(p.file, p.run, false);
        if !notes.is_empty() {
            s.push_str(&format!(" ({})", notes.join(", ")));
        }
        if !p.stamp.is_empty() {
            s.push_str(&format!(" [{}]", p.stamp));
        }
        for part in [&p.call, &p.arg] {
            if !part.is_empty() {
                s.push(' ');
                s.push_str(part);
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

    fn listed(&self, out: &mut Vec<(String, Style)>, what: &str, list: &Listed, style: Style) {
        for (name, p) in &list.listed {
            out.push((format!("{what}: {} {}", self.place_text(p), name), style));
            if let Some(hint) = self.replay_hint(name, p) {
                out.push((format!("  replay: {hint}"), Style::Hint));
            }
        }
        if list.count > list.listed.len() as u64 {
            out.push((format!("{what} (not listed): {}", list.count - list.listed.len() as u64), style));
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
        if f.not_a_log {
            return format!("file {base}: not a log ({} of {} lines are not records)", f.other_lines, f.lines);
        }
        format!("file {base}: {}", parts.join(", "))
    }

    /// The table and the closing lines, each with its style; with a width, each line fits in it (long names and
    /// places are cut at their end, so a place keeps its `FILE:LINE`).
    pub fn render_lines(&self, width: Option<usize>) -> Vec<(String, Style)> {
        let mut out = Vec::new();
        let place = |p: &Option<Place>| p.as_ref().map_or("-".to_string(), |p| self.place_text(p));
        let mut name_width = self.names.keys().map(|n| n.chars().count()).max().unwrap_or(4).max(4);
        let mut col_in = self.names.values().map(|s| place(&s.first_in).chars().count()).max().unwrap_or(1).max(22);
        let mut col_out = self.names.values().map(|s| place(&s.first_out).chars().count()).max().unwrap_or(1).max(23);
        const FIXED: usize = 8 + 2 + 7 + 2 + 8 + 2 + 2 + 2;
        if let Some(w) = width.filter(|w| FIXED + name_width + col_in + col_out > *w) {
            let room = w.saturating_sub(FIXED).max(48);
            name_width = name_width.min((room / 3).max(16));
            col_in = col_in.min((room - name_width) / 2);
            col_out = room - name_width - col_in;
        }
        out.push((
            format!(
                "{:>8}  {:>7}  {:>8}  {:<name_width$}  {:<col_in$}  {}",
                "calls",
                "NaN in",
                "NaN out",
                "name",
                elide_end("first NaN/Inf in input", col_in),
                elide_end("first NaN/Inf in output", col_out)
            ),
            Style::Header,
        ));
        for (name, s) in &self.names {
            let row = format!(
                "{:>8}  {:>7}  {:>8}  {:<name_width$}  {:<col_in$}  {}",
                s.calls,
                s.nan_in_calls,
                s.nan_out_calls,
                elide_end(name, name_width),
                elide_end(&place(&s.first_in), col_in),
                elide_end(&place(&s.first_out), col_out)
            );
            let style = if s.first_in.is_some() || s.first_out.is_some() { Style::Finding } else { Style::Plain };
            out.push((row.trim_end().to_string(), style));
        }
        self.closing_lines(&mut out);
        if let Some(w) = width {
            for (line, _) in &mut out {
                *line = elide_end(line, w);
            }
        }
        out
    }

    fn closing_lines(&self, out: &mut Vec<(String, Style)>) {
        match self.first_overall() {
            Some((name, p, kind)) => {
                out.push((format!("first NaN/Inf overall: {} {} {}", self.place_text(p), name, kind), Style::Finding))
            }
            None => out.push(("first NaN/Inf overall: none".to_string(), Style::Plain)),
        }
        self.listed(out, "did not return", &self.did_not_return, Style::Finding);
        for (name, p) in &self.no_exit_line.listed {
            let mut at = vec![format!("{}:{}", self.files[p.file].path, p.line)];
            at.extend(self.file_notes(p.file, p.run, true));
            if !p.call.is_empty() {
                at.push(p.call.clone());
            }
            let text =
                format!("the run ended without its exit line: the last call started was {name} ({})", at.join(", "));
            out.push((text, Style::Finding));
        }
        for e in &self.cuda_errors {
            out.push((super::cuda_errors::line_of(e), Style::Finding));
        }
        self.listed(out, "failed", &self.failed, Style::Note);
        self.listed(out, "raised", &self.raised, Style::Note);
        if self.unmatched_outputs > 0 {
            out.push((
                format!("outputs records without their inputs record: {}", self.unmatched_outputs),
                Style::Plain,
            ));
        }
        for file in 0..self.files.len() {
            out.push((self.file_line(file), Style::Plain));
        }
        out.push((format!("unparsed lines: {}", self.unparsed), Style::Plain));
    }

    /// The table and the closing lines, plain and at full width.
    #[cfg(test)]
    pub fn render(&self) -> String {
        self.render_lines(None).into_iter().map(|(line, _)| line + "\n").collect()
    }
}

/// `text` cut to `width` characters, the cut marked by `...` at the end (the start, which names the thing and its
/// place, stays).
pub fn elide_end(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let keep = width.saturating_sub(3);
    text.chars().take(keep).chain("...".chars()).take(width).collect()
}
