//! One run of one process inside a log: its unfinished calls, per thread, and how they ended.
//!
//! Calls are grouped by thread: the thread id of their correlation lines, or `None` for records without one
//! (single-threaded logs, FlashInfer's own Python logger, and the first thread of a process before a second one
//! logged: all of them are written by one thread at a time, so in that group the latest unfinished call is the
//! right partner of an outputs record, also for the nested records of both loggers). An outputs record is never
//! paired with a call of another group.
//!
//! A call left without its outputs record ends, at the end of its run, in one of two ways:
//! - the shim's records: the shim writes an outputs record for every call that returns (`Call failed` included),
//!   so such a call did not return (the process died in it);
//! - FlashInfer's Python logger writes nothing after a raised exception: a Python call followed by more Python
//!   records of its group raised; the last one of the group did not return (nothing came after it, or only the
//!   shim's records of its compiled call, still open when the process ended).

/// A group of calls: a thread id from correlation lines, or `None` for uncorrelated records.
pub type Group = Option<u32>;

/// Unfinished calls remembered per run; when more are open the oldest is decided at once.
pub const MAX_PENDING: usize = 1024;
/// Groups remembered per run before those without open calls are dropped.
const MAX_GROUPS: usize = 4096;

/// A call whose inputs record was read and whose outputs record has not come yet.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The call name.
    pub name: String,
    /// The line of its `FlashInfer API Call:` line.
    pub line: u64,
    /// Its timestamp text.
    pub stamp: String,
    /// Its group.
    pub group: Group,
    /// Its call number, from its correlation line.
    pub number: Option<u64>,
    /// Whether FlashInfer's Python logger wrote it (as far as its lines tell).
    pub python: bool,
    seq: u64,
    prev_python: u64,
}

impl Pending {
    /// A call read at `line`; its place in the run is set by [`Run::start`].
    pub fn new(name: &str, line: u64, stamp: &str, group: Group, number: Option<u64>, python: bool) -> Pending {
        Pending {
            name: name.to_string(),
            line,
            stamp: stamp.to_string(),
            group,
            number,
            python,
            seq: 0,
            prev_python: 0,
        }
    }
}

/// How an unfinished call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The process ended inside it.
    DidNotReturn,
    /// It raised a Python exception (FlashInfer's logger writes nothing then).
    Raised,
}

#[derive(Clone, Copy, Debug, Default)]
struct GroupState {
    /// Sequence number of the latest call started in the group.
    last_start: u64,
    /// Whether that call is still open.
    last_start_open: bool,
    /// Sequence number of the latest Python-logger call started in the group.
    last_python: u64,
}

/// The open calls of one run.
#[derive(Debug, Default)]
pub struct Run {
    pending: Vec<Pending>,
    groups: Vec<(Group, GroupState)>,
    seq: u64,
}

impl Run {
    fn group_mut(&mut self, group: Group) -> &mut GroupState {
        let at = match self.groups.iter().position(|(g, _)| *g == group) {
            Some(at) => at,
            None => {
                if self.groups.len() >= MAX_GROUPS {
                    let pending = &self.pending;
                    self.groups.retain(|(g, _)| pending.iter().any(|p| p.group == *g));
                }
                self.groups.push((group, GroupState::default()));
                self.groups.len() - 1
            }
        };
        &mut self.groups[at].1
    }

    fn group(&self, group: Group) -> GroupState {
        self.groups.iter().find(|(g, _)| *g == group).map(|(_, s)| *s).unwrap_or_default()
    }

    /// A call starts: `open` when an outputs record may follow (an inputs record), not for a level-1 line.
    /// Returns a call pushed out of a full table, with how it ended.
    pub fn start(&mut self, mut call: Pending, open: bool) -> Option<(Pending, End)> {
        self.seq += 1;
        let seq = self.seq;
        let python = call.python;
        let g = self.group_mut(call.group);
        call.seq = seq;
        call.prev_python = g.last_python;
        g.last_start = seq;
        g.last_start_open = open;
        if python {
            g.last_python = seq;
        }
        if !open {
            return None;
        }
        let evicted = if self.pending.len() >= MAX_PENDING {
            let oldest = self.pending.remove(0);
            let end = self.end_of(&oldest);
            Some((oldest, end))
        } else {
            None
        };
        self.pending.push(call);
        evicted
    }

    /// The lines of the call started last say which logger wrote it.
    pub fn set_python_of_latest(&mut self, python: bool) {
        let Some(call) = self.pending.last_mut() else { return };
        if call.python == python {
            return;
        }
        call.python = python;
        let (seq, prev, group) = (call.seq, call.prev_python, call.group);
        let g = self.group_mut(group);
        if python {
            g.last_python = g.last_python.max(seq);
        } else if g.last_python == seq {
            g.last_python = prev;
        }
    }

    /// Whether the call started last is still open and was judged a Python-logger call.
    #[cfg(test)]
    pub fn latest_is_python(&self) -> Option<bool> {
        self.pending.last().map(|p| p.python)
    }

    fn take(&mut self, at: usize) -> Pending {
        let call = self.pending.remove(at);
        let g = self.group_mut(call.group);
        if g.last_start == call.seq {
            g.last_start_open = false;
        }
        call
    }

    /// The open call an outputs record with a correlation line belongs to: that thread's call of that number,
    /// else (its inputs record was written before a second thread logged) the latest uncorrelated shim call of
    /// that name.
    #[cfg(test)]
    pub fn take_correlated(&mut self, thread: u32, number: u64, name: &str) -> Option<Pending> {
        self.take_exact(thread, number).or_else(|| self.take_early(name))
    }

    /// That thread's open call of that number.
    pub fn take_exact(&mut self, thread: u32, number: u64) -> Option<Pending> {
        let at = self.pending.iter().rposition(|p| p.group == Some(thread) && p.number == Some(number))?;
        Some(self.take(at))
    }

    /// The latest uncorrelated open shim call named `name` (its inputs record was written before a second thread
    /// of its process logged).
    pub fn take_early(&mut self, name: &str) -> Option<Pending> {
        let at = self.pending.iter().rposition(|p| p.group.is_none() && !p.python && p.name == name)?;
        Some(self.take(at))
    }

    /// Whether that thread's call of that number is open (its inputs record read, its outputs record not yet).
    pub fn has_open(&self, thread: u32, number: u64) -> bool {
        self.pending.iter().any(|p| p.group == Some(thread) && p.number == Some(number))
    }

    /// The open call an outputs record without a correlation line belongs to: the latest uncorrelated one.
    pub fn take_uncorrelated(&mut self) -> Option<Pending> {
        let at = self.pending.iter().rposition(|p| p.group.is_none())?;
        Some(self.take(at))
    }

    fn end_of(&self, call: &Pending) -> End {
        if !call.python {
            return End::DidNotReturn;
        }
        let g = self.group(call.group);
        let python_after = g.last_python > call.seq;
        if !python_after && (g.last_start == call.seq || g.last_start_open) {
            End::DidNotReturn
        } else {
            End::Raised
        }
    }

    /// The run is over: every call still open, in the order they started, with how it ended.
    pub fn finish(&mut self) -> Vec<(Pending, End)> {
        let ends: Vec<End> = self.pending.iter().map(|p| self.end_of(p)).collect();
        let calls = std::mem::take(&mut self.pending);
        self.groups.clear();
        calls.into_iter().zip(ends).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, group: Group, number: Option<u64>, python: bool) -> Pending {
        Pending::new(name, 1, "2026-01-01 00:00:00", group, number, python)
    }

    fn ends(run: &mut Run) -> Vec<(String, End)> {
        run.finish().into_iter().map(|(p, e)| (p.name, e)).collect()
    }

    #[test]
    fn python_calls_followed_by_more_raised() {
        let mut run = Run::default();
        run.start(call("a", None, None, true), true);
        run.start(call("b", None, None, true), true);
        assert_eq!(run.take_uncorrelated().unwrap().name, "b");
        run.start(call("c", None, None, true), true);
        assert_eq!(ends(&mut run), [("a".into(), End::Raised), ("c".into(), End::DidNotReturn)]);
    }

    #[test]
    fn both_loggers_crash_in_the_compiled_call() {
        let mut run = Run::default();
        run.start(call("rmsnorm", None, None, true), true);
        run.start(call("norm.rmsnorm", None, None, false), true);
        assert_eq!(ends(&mut run), [("rmsnorm".into(), End::DidNotReturn), ("norm.rmsnorm".into(), End::DidNotReturn)]);
        // The compiled call returned, then Python raised: the Python call raised.
        run.start(call("rmsnorm", None, None, true), true);
        run.start(call("norm.rmsnorm", None, None, false), true);
        assert_eq!(run.take_uncorrelated().unwrap().name, "norm.rmsnorm");
        run.start(call("other", None, None, true), true);
        assert_eq!(run.take_uncorrelated().unwrap().name, "other");
        assert_eq!(ends(&mut run), [("rmsnorm".into(), End::Raised)]);
    }

    #[test]
    fn threads_never_pair_across() {
        let mut run = Run::default();
        run.start(call("a.f", Some(1), Some(10), false), true);
        run.start(call("a.f", Some(2), Some(11), false), true);
        assert!(run.take_correlated(3, 10, "a.f").is_none());
        assert_eq!(run.take_correlated(1, 10, "a.f").unwrap().number, Some(10));
        assert!(run.take_uncorrelated().is_none());
        // An early, uncorrelated inputs record of the first thread pairs with its correlated outputs record.
        run.start(call("b.g", None, None, false), true);
        assert_eq!(run.take_correlated(1, 12, "b.g").unwrap().name, "b.g");
        assert_eq!(ends(&mut run), [("a.f".into(), End::DidNotReturn)]);
    }

    #[test]
    fn a_full_table_decides_the_oldest() {
        let mut run = Run::default();
        let mut evicted = 0;
        for i in 0..MAX_PENDING + 3 {
            if let Some((p, end)) = run.start(call(&format!("p{i}"), None, None, true), true) {
                assert_eq!(end, End::Raised, "{}", p.name);
                evicted += 1;
            }
        }
        assert_eq!(evicted, 3);
        let left = run.finish();
        assert_eq!(left.len(), MAX_PENDING);
        assert_eq!(left.iter().filter(|(_, e)| *e == End::DidNotReturn).count(), 1);
    }

    #[test]
    fn refined_logger() {
        let mut run = Run::default();
        run.start(call("x.y", None, None, true), true);
        run.set_python_of_latest(false); // a data_ptr= line: the shim's
        assert_eq!(run.latest_is_python(), Some(false));
        assert_eq!(ends(&mut run), [("x.y".into(), End::DidNotReturn)]);
    }
}
