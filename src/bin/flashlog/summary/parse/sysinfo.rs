//! System information records and the runs they start: which logger wrote the record, its process and rank, and
//! whether it starts a new run or joins the current one.

use super::{FileParser, RunShape};
use crate::summary::RunInfo;

impl FileParser<'_> {
    /// A system information record ended: a new run starts, unless it is the shim's record that follows
    /// FlashInfer's one in the same process (or the file's first record).
    pub(super) fn end_sysinfo(&mut self) {
        let sys = std::mem::take(&mut self.sys);
        let empty = !self.shape.python_sysinfo && !self.shape.shim_sysinfo && !self.shape.calls;
        let joins = empty || (sys.shim && self.shape.python_sysinfo && !self.shape.shim_sysinfo);
        if !joins {
            self.new_run();
        }
        if sys.shim {
            self.shape.shim_sysinfo = true;
        } else {
            self.shape.python_sysinfo = true;
        }
        let file = &mut self.sum.files[self.file];
        let run = file.run_count as usize - 1;
        if let Some(info) = file.runs.get_mut(run) {
            info.shim |= sys.shim;
            info.pid = info.pid.or(sys.pid);
            if sys.rank.is_some() {
                info.rank = sys.rank;
            }
        }
    }

    /// A new run starts: the one before ends. Its correlated calls still open are parked: when several processes
    /// append to one file, their outputs records may come after another process's system information record.
    pub(super) fn new_run(&mut self) {
        let run = self.run_index();
        for (call, end) in self.run.finish() {
            if call.group.is_some() && call.number.is_some() {
                if self.parked.len() >= crate::summary::runs::MAX_PENDING {
                    let (oldest, how, its_run) = self.parked.remove(0);
                    self.ended_in(oldest, how, its_run);
                }
                self.parked.push((call, end, run));
            } else {
                self.ended(call, end);
            }
        }
        self.shape = RunShape::default();
        let file = &mut self.sum.files[self.file];
        file.run_count += 1;
        if file.runs.len() < crate::summary::MAX_RUNS_KEPT {
            file.runs.push(RunInfo::default());
        }
    }

    /// The run ends: its calls still open did not return (or raised).
    pub(super) fn finish_run(&mut self) {
        for (call, end) in self.run.finish() {
            self.ended(call, end);
        }
    }

    /// A line of the system information record: which logger wrote it, the process, the rank.
    pub(super) fn sys_line(&mut self, line: &str) {
        if line.starts_with("flashlog version:") {
            self.sys.shim = true;
        } else if let Some(p) = line.strip_prefix("Process: ") {
            self.sys.shim = true;
            self.sys.pid = p.split(' ').next().and_then(|n| n.parse().ok());
        } else if let Some(r) = line.strip_prefix("Rank: ") {
            let r = r.split(" (local").next().unwrap_or(r).trim();
            self.sys.rank = Some(r.to_string());
        }
    }
}
