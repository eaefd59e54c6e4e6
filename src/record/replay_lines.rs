//! The records of CUDA graph replay statistics and of the NaN watch (`docs/log-format.md`): one replay record
//! per captured call and replay (written by the driver's thread, `crate::graph::replay`) and the watch's line at
//! exit (`crate::graph::watch`).

use super::pyrepr::push_int;
use super::{DASH_LINE, EQUALS_LINE};

/// Appends the heading of a phase of a replay record: `Tensor arguments before the call:` or
/// `Tensor arguments after the call:`.
pub fn push_phase_heading(out: &mut Vec<u8>, after: bool) {
    out.extend_from_slice(if after {
        b"Tensor arguments after the call:\n"
    } else {
        b"Tensor arguments before the call:\n"
    });
}

/// Appends the line that opens one tensor argument of a phase: `  arg[N]:` or `  arg[N] (after):`.
pub fn push_arg_heading(out: &mut Vec<u8>, arg: usize, after: bool) {
    out.extend_from_slice(b"  arg[");
    push_int(out, arg);
    out.extend_from_slice(if after { b"] (after):\n" } else { b"]:\n" });
}

/// Appends a replay record: separators, `[ts] FlashInfer Graph Replay: <name> (id=N, replay K)`, the body.
pub fn push_replay_record(out: &mut Vec<u8>, stamp: &[u8], name: &str, id: u64, replay: u64, body: &[u8]) {
    out.extend_from_slice(EQUALS_LINE);
    out.extend_from_slice(stamp);
    out.extend_from_slice(b" FlashInfer Graph Replay: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" (id=");
    push_int(out, id);
    out.extend_from_slice(b", replay ");
    push_int(out, replay);
    out.extend_from_slice(b")\n");
    out.extend_from_slice(DASH_LINE);
    out.extend_from_slice(body);
    out.extend_from_slice(EQUALS_LINE);
    out.push(b'\n');
}

/// Appends `[ts] flashlog watch: N calls and M graph replays checked, K with NaN or Inf`.
pub fn push_watch_summary(out: &mut Vec<u8>, stamp: &[u8], calls: u64, replays: u64, flagged: u64) {
    out.extend_from_slice(stamp);
    out.extend_from_slice(b" flashlog watch: ");
    push_int(out, calls);
    out.extend_from_slice(b" calls and ");
    push_int(out, replays);
    out.extend_from_slice(b" graph replays checked, ");
    push_int(out, flagged);
    out.extend_from_slice(b" with NaN or Inf\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout() {
        let mut body = Vec::new();
        push_phase_heading(&mut body, false);
        push_arg_heading(&mut body, 2, false);
        push_phase_heading(&mut body, true);
        push_arg_heading(&mut body, 0, true);
        let mut out = Vec::new();
        push_replay_record(&mut out, b"[2026-12-02 01:10:06]", "norm.rmsnorm", 7, 3, &body);
        let eq = "=".repeat(80);
        let dash = "-".repeat(80);
        let want = format!(
            "{eq}\n[2026-12-02 01:10:06] FlashInfer Graph Replay: norm.rmsnorm (id=7, replay 3)\n{dash}\nTensor arguments before the call:\n  arg[2]:\nTensor arguments after the call:\n  arg[0] (after):\n{eq}\n\n"
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn summary_line() {
        let mut out = Vec::new();
        push_watch_summary(&mut out, b"[2026-12-02 01:10:09]", 120000, 5000, 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[2026-12-02 01:10:09] flashlog watch: 120000 calls and 5000 graph replays checked, 2 with NaN or Inf\n"
        );
    }
}
