//! The lines inside records: argument names, NaN/Inf counts (where the first of each call name is), which logger
//! wrote an inputs record, and the statistics FlashInfer's logger defers to a GPU kernel inside a graph capture.

use super::{Current, FileParser, State, DASH, MAX_DEFERRED};

impl FileParser<'_> {
    /// A line inside a record's body (not its first line, not a frame line).
    pub(super) fn body_line(&mut self, line: &str) {
        match self.state {
            State::InputsHead => {
                if line == DASH {
                    if let Some(head) = self.head.take() {
                        self.start_call(head, true);
                    }
                    self.state = State::Inputs;
                    return;
                }
                self.end_record();
                self.state = State::Inputs;
                self.body_line(line);
            }
            State::Inputs => match line {
                "Positional input arguments:" | "(No explicit arguments)" => {}
                "Keyword input arguments:" | "Default parameters (not explicitly provided):" => {
                    self.run.set_python_of_latest(true)
                }
                _ => match line.strip_prefix("  ") {
                    Some(rest) => self.value_line(rest),
                    None => self.unparsed(line),
                },
            },
            State::Outputs | State::OutputsHead => {
                if line == "Tensor arguments after the call:" {
                    self.arg.clear();
                    return;
                }
                match line.strip_prefix("  ") {
                    Some(rest) => self.value_line(rest),
                    None => self.unparsed(line),
                }
            }
            State::ReplayHead | State::Replay => match line {
                DASH => self.state = State::Replay,
                "Tensor arguments before the call:" => self.set_output(false),
                "Tensor arguments after the call:" => self.set_output(true),
                _ => match line.strip_prefix("  ") {
                    Some(rest) => self.value_line(rest),
                    None => self.unparsed(line),
                },
            },
            State::Launch if line.starts_with("  ") => {}
            State::AfterEq => {
                self.unparsed(line);
                self.state = State::Outside;
            }
            _ => {
                self.state = State::Outside;
                if !line.is_empty() {
                    self.sum.other_lines += 1;
                    self.sum.files[self.file].other_lines += 1;
                }
            }
        }
    }

    /// A graph replay record's tensors are now those before (false) or after (true) the call.
    pub(super) fn set_output(&mut self, output: bool) {
        if let Some(c) = self.current.as_mut() {
            c.output = output;
        }
        self.arg.clear();
    }

    /// An indented line of a record (without its first two spaces): names the argument, notes NaN/Inf counts,
    /// and tells which logger wrote an inputs record.
    pub(super) fn value_line(&mut self, rest: &str) {
        if !rest.starts_with(' ') {
            // An argument's own line: `arg[i]:`, `arg[i] (after):`, `name=`, `name= [DEFAULT]`.
            if rest.starts_with("arg[") {
                if let Some(end) = rest.find(']') {
                    self.arg.clear();
                    self.arg.push_str(&rest[..=end]);
                }
            } else if let Some((key, _)) = rest.split_once('=') {
                if !key.is_empty() && key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
                    self.arg.clear();
                    self.arg.push_str(key);
                }
            }
            return;
        }
        let t = rest.trim_start();
        if let Some(id) = t.strip_prefix("[stats deferred to GPU kernel: id=") {
            let id = id.split(';').next().and_then(|n| n.parse::<u64>().ok());
            if let (Some(id), Some(cur)) = (id, self.current.as_ref()) {
                if self.deferred.len() < MAX_DEFERRED {
                    let at = Current { call: "graph replay".into(), ..cur.clone() };
                    self.deferred.insert(id, (at, self.arg.clone()));
                }
            }
            return;
        }
        if self.state == State::Inputs {
            if t.starts_with("requires_grad=") {
                self.run.set_python_of_latest(true);
            } else if t.starts_with("data_ptr=") {
                self.run.set_python_of_latest(false);
            }
        }
        let count = t.strip_prefix("nan_count=").or_else(|| t.strip_prefix("inf_count="));
        let Some(n) = count.and_then(|c| c.parse::<u64>().ok()) else { return };
        if n == 0 {
            return;
        }
        let Some(cur) = self.current.as_ref() else { return };
        let place = self.place(self.line_no, &cur.stamp, &cur.call, &self.arg);
        let output = cur.output;
        let name = cur.name.clone();
        let first_of_call =
            !std::mem::replace(&mut self.current.as_mut().expect("checked").counted[output as usize], true);
        let entry = self.names(&name);
        if first_of_call {
            *(if output { &mut entry.nan_out_calls } else { &mut entry.nan_in_calls }) += 1;
        }
        let slot = if output { &mut entry.first_out } else { &mut entry.first_in };
        if slot.is_none() {
            *slot = Some(place);
        }
    }

    /// `N numel=M min=... nan=K inf=J` (or `(all non-finite) nan=K inf=J`): a NaN/Inf at a graph replay, reported
    /// at this line under the call and argument of the record that deferred it.
    pub(super) fn deferred_stats(&mut self, rest: &str) {
        let Some(id) = rest.split(' ').next().and_then(|n| n.parse::<u64>().ok()) else { return };
        let count = |key: &str| rest.split(' ').find_map(|w| w.strip_prefix(key)).and_then(|n| n.parse::<u64>().ok());
        if count("nan=").unwrap_or(0) + count("inf=").unwrap_or(0) == 0 {
            return;
        }
        let Some((at, arg)) = self.deferred.get(&id).cloned() else { return };
        let mut place = self.place(self.line_no, &at.stamp, &at.call, &arg);
        (place.record, place.call_record) = (self.line_no, at.call_record);
        let entry = self.names(&at.name);
        *(if at.output { &mut entry.nan_out_calls } else { &mut entry.nan_in_calls }) += 1;
        let slot = if at.output { &mut entry.first_out } else { &mut entry.first_in };
        if slot.is_none() {
            *slot = Some(place);
        }
    }
}
