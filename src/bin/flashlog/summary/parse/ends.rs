//! How runs and calls ended, as the lines outside the record grammar say: the exit line a process that logged
//! writes when it ends normally (`[flashlog exit: pid P, N records]`) and `Call failed:` lines (the CUDA error
//! lines are read by `cuda_errors`); and which record a line belongs to, for `--show`.

use super::{call_label, FileParser, State};

/// The exit line's start.
const EXIT_PREFIX: &str = "[flashlog exit: pid ";
/// Exit lines remembered per file (process ids).
const MAX_EXITS: usize = 1 << 16;

impl FileParser<'_> {
    /// A line outside the grammar of records (an exit line): noted; true when it was one.
    pub(super) fn marker_line(&mut self, line: &str) -> bool {
        if let Some(rest) = line.strip_prefix(EXIT_PREFIX) {
            if let Some(pid) = rest.split(',').next().and_then(|p| p.parse::<u32>().ok()) {
                if self.exits.len() < MAX_EXITS {
                    self.exits.insert(pid);
                }
                if self.state == State::Launch {
                    self.state = State::Outside;
                }
                return true;
            }
        }
        false
    }

    /// A call started (a level-1 line, or an inputs record): the run's latest, for a run that dies.
    pub(super) fn note_call_started(
        &mut self,
        name: &str,
        line: u64,
        stamp: &str,
        call: Option<(u64, u32)>,
        framed: bool,
    ) {
        let mut place = self.place(line, stamp, &call_label(call), "");
        (place.record, place.call_record) = (if framed { line.saturating_sub(1) } else { line }, 0);
        let run = self.run_index();
        if let Some(info) = self.sum.files[self.file].runs.get_mut(run) {
            info.last_call = Some((name.to_string(), place));
        }
    }

    /// A `Call failed:` line of the outputs record being read.
    pub(super) fn note_failed(&mut self, error: &str) {
        let Some(cur) = self.current.as_ref() else { return };
        let (name, stamp, call, record, call_record) =
            (cur.name.clone(), cur.stamp.clone(), cur.call.clone(), self.record_start, cur.call_record);
        let mut place = self.place(self.line_no, &stamp, &call, "");
        (place.record, place.call_record) = (record, call_record);
        self.sum.failed.push(format!("{name}: {error}"), place);
    }

    /// The file ended: each run the shim logged whose process wrote no exit line in this file died; its last
    /// call started is listed.
    pub(super) fn runs_without_exit_line(&mut self) {
        let file = &self.sum.files[self.file];
        let mut died = Vec::new();
        for info in &file.runs {
            let (Some(pid), true, Some(last)) = (info.pid, info.shim, info.last_call.as_ref()) else { continue };
            if !self.exits.contains(&pid) {
                died.push(last.clone());
            }
        }
        for (name, place) in died {
            self.sum.no_exit_line.push(name, place);
        }
    }

    /// Whether the line just read came inside or right after a kernel-launch record.
    pub fn in_launch_record(&self) -> bool {
        self.state == State::Launch
    }

    /// The first line of the call the line just read belongs to (its inputs record's `=` line, also for the
    /// lines of its outputs record; a record's own first line for the other records, their closing `=` line
    /// included); None for a line outside records.
    pub fn record_of_last_line(&self) -> Option<u64> {
        let closed_now = self.closed_at == self.line_no;
        let inside = !matches!(self.state, State::Outside | State::AfterEq) || closed_now;
        if !inside || self.record_start == 0 {
            return None;
        }
        let in_outputs =
            matches!(self.state, State::Outputs | State::OutputsHead) || (closed_now && self.closed_outputs);
        let call = self.current.as_ref().filter(|c| c.output && in_outputs).map_or(0, |c| c.call_record);
        Some(if call > 0 { call } else { self.record_start })
    }
}
