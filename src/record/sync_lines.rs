//! The lines and records of `FLASHLOG_SYNC=1` (`docs/cuda-errors.md`): a CUDA error before or after a call,
//! put into its records; the call a kernel launch was made in; a driver error of the host's own graph work; and
//! the error record of a failing graph replay with the calls captured into it. Built here, written by
//! `crate::sync`; the error's name comes from the driver through `crate::stats::errors`.

use super::call::push_correlation_line;
use super::pyrepr::{push_hex, push_int};
use super::{DASH_LINE, EQUALS_LINE};
use crate::clock::Stamp;
use crate::correlation::CallTag;

/// A CUDA driver error as the records name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverError {
    /// The driver lacks the function: `function not in the driver`.
    Missing,
    /// A return code, with the driver's name for it (`cuGetErrorName`): `NAME (CODE)`, or `CUDA error (CODE)`
    /// when it has none.
    Code {
        /// The return code.
        code: i32,
        /// The driver's name for it.
        name: Option<&'static str>,
    },
}

/// Appends `NAME (CODE)`: `CUDA_ERROR_ILLEGAL_ADDRESS (700)`.
pub fn push_driver_error(out: &mut Vec<u8>, error: DriverError) {
    match error {
        DriverError::Missing => out.extend_from_slice(b"function not in the driver"),
        DriverError::Code { code, name } => {
            out.extend_from_slice(name.unwrap_or("CUDA error").as_bytes());
            out.extend_from_slice(b" (");
            push_int(out, code);
            out.push(b')');
        }
    }
}

/// Appends `[CUDA error before this call: NAME (CODE), from earlier work]` and a newline.
pub fn push_error_before(out: &mut Vec<u8>, error: DriverError) {
    out.extend_from_slice(b"[CUDA error before this call: ");
    push_driver_error(out, error);
    out.extend_from_slice(b", from earlier work]\n");
}

/// Appends `[CUDA error after this call: NAME (CODE)]` and a newline.
pub fn push_error_after(out: &mut Vec<u8>, error: DriverError) {
    out.extend_from_slice(b"[CUDA error after this call: ");
    push_driver_error(out, error);
    out.extend_from_slice(b"]\n");
}

/// Appends the record of an error after a call that has no outputs record:
/// `[CUDA error after this call: NAME (CODE)] [call <name> #N thread T at <time>]` (`at`: now).
pub fn push_error_after_alone(out: &mut Vec<u8>, error: DriverError, name: &str, tag: &CallTag, at: &Stamp) {
    push_error_after(out, error);
    out.pop();
    out.push(b' ');
    push_correlation_line(out, name, tag, Some(at));
}

/// Puts the "before" line into a built inputs record (`record`): right after its dashes, before the
/// arguments; at level 1 (a call line alone) after the call line.
pub fn annotate_inputs(record: &mut Vec<u8>, error: DriverError) {
    let mut line = Vec::new();
    push_error_before(&mut line, error);
    let at = record.windows(DASH_LINE.len()).position(|w| w == DASH_LINE).map_or(record.len(), |i| i + DASH_LINE.len());
    record.splice(at..at, line);
}

/// Puts the "after" line into a built outputs record: first, or after its correlation line when it has one.
pub fn annotate_outputs(record: &mut Vec<u8>, correlated: bool, error: DriverError) {
    let mut line = Vec::new();
    push_error_after(&mut line, error);
    let at = if correlated { record.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1) } else { 0 };
    record.splice(at..at, line);
}

/// Ends the first line of a built launch record with ` [call <name> #N thread T at <time>]`: the call the kernel
/// was launched in (on the same line, so the record keeps its lines and no reader takes the form for the first
/// line of an outputs record); `at` is the launch record's own stamp (its header's second and microseconds).
pub fn name_call_in_launch(record: &mut Vec<u8>, name: &str, tag: &CallTag, at: &Stamp) {
    let mut form = vec![b' '];
    push_correlation_line(&mut form, name, tag, Some(at));
    form.pop();
    let at = record.iter().position(|&b| b == b'\n').unwrap_or(record.len());
    record.splice(at..at, form);
}

/// Appends `[CUDA error from <function>: NAME (CODE)]` and a newline (a `_ptsz` suffix kept as such).
pub fn push_error_from(out: &mut Vec<u8>, function: &str, error: DriverError) {
    out.extend_from_slice(b"[CUDA error from ");
    out.extend_from_slice(function.trim_end_matches("_ptsz").as_bytes());
    if function.ends_with("_ptsz") {
        out.extend_from_slice(b"_ptsz");
    }
    out.extend_from_slice(b": ");
    push_driver_error(out, error);
    out.extend_from_slice(b"]\n");
}

/// How a replay error names its graph.
#[derive(Clone, Copy)]
pub enum GraphName {
    /// A capture seen under `FLASHLOG_SYNC`: `graph id=N`.
    Captured(u64),
    /// An executable graph of a capture not seen: `graph exec 0x... (not captured under FLASHLOG_SYNC)`.
    Exec(usize),
}

fn push_graph_name(out: &mut Vec<u8>, graph: GraphName) {
    match graph {
        GraphName::Captured(id) => {
            out.extend_from_slice(b"graph id=");
            push_int(out, id);
        }
        GraphName::Exec(exec) => {
            out.extend_from_slice(b"graph exec ");
            push_hex(out, exec as u64);
            out.extend_from_slice(b" (not captured under FLASHLOG_SYNC)");
        }
    }
}

/// A later failing replay of a graph already reported: one line.
pub fn push_replay_again_line(out: &mut Vec<u8>, graph: GraphName, replay: u64, error: DriverError, launch: bool) {
    out.extend_from_slice(if launch { b"[CUDA error at launch of " } else { b"[CUDA error after replay of " });
    push_graph_name(out, graph);
    out.extend_from_slice(b", replay ");
    push_int(out, replay);
    out.extend_from_slice(b": ");
    push_driver_error(out, error);
    out.extend_from_slice(b", the context had failed already]\n");
}

/// One FlashInfer call captured into a graph, as the replay error record lists it.
#[derive(Clone, Copy)]
pub struct CapturedCallLine<'a> {
    /// 1 for the first call of the capture.
    pub position: u32,
    /// `<module>.<export>`.
    pub name: &'a str,
    /// The call's tag at capture time.
    pub tag: CallTag,
}

/// What the error record of a failing replay says about the graph's captured calls.
pub struct CapturedCalls<'a> {
    /// The calls in capture order.
    pub calls: &'a [CapturedCallLine<'a>],
    /// With progress markers, the position of the last call whose marker ran (0: none).
    pub last_done: Option<u32>,
}

/// The error record of a failing replay (`replay` 0: not counted, left out).
pub fn push_replay_error_record(
    out: &mut Vec<u8>,
    stamp: &[u8],
    (graph, replay): (GraphName, u64),
    error: DriverError,
    launch: bool,
    captured: Option<CapturedCalls>,
) {
    out.extend_from_slice(EQUALS_LINE);
    out.extend_from_slice(stamp);
    out.extend_from_slice(b" FlashInfer Graph Replay Error: ");
    push_graph_name(out, graph);
    if replay > 0 {
        out.extend_from_slice(b", replay ");
        push_int(out, replay);
    }
    out.push(b'\n');
    out.extend_from_slice(DASH_LINE);
    out.extend_from_slice(if launch { b"[CUDA error at graph launch: " } else { b"[CUDA error after this replay: " });
    push_driver_error(out, error);
    out.extend_from_slice(b"]\n");
    if let Some(c) = captured {
        push_calls(out, &c);
    }
    out.extend_from_slice(EQUALS_LINE);
    out.push(b'\n');
}

/// The captured calls in capture order, and with markers the progress.
fn push_calls(out: &mut Vec<u8>, c: &CapturedCalls) {
    if c.calls.is_empty() {
        out.extend_from_slice(b"FlashInfer calls captured into this graph: none\n");
        return;
    }
    out.extend_from_slice(b"FlashInfer calls captured into this graph, in capture order:\n");
    for call in c.calls {
        out.extend_from_slice(b"  ");
        push_int(out, call.position);
        out.extend_from_slice(b". ");
        push_call(out, call);
        out.push(b'\n');
    }
    let Some(done) = c.last_done else {
        return;
    };
    out.extend_from_slice(b"last completed: ");
    match c.calls.iter().find(|call| call.position == done) {
        Some(call) => push_call(out, call),
        None => out.extend_from_slice(b"none"),
    }
    out.extend_from_slice(b"\nfirst not completed: ");
    match c.calls.iter().find(|call| call.position == done + 1) {
        Some(call) => push_call(out, call),
        None => out.extend_from_slice(b"none (every captured call completed)"),
    }
    out.push(b'\n');
}

/// `<name> [call <name> #N thread T]`: the call and the place of its capture-time record (no time: it names a
/// call recorded elsewhere).
fn push_call(out: &mut Vec<u8>, call: &CapturedCallLine) {
    out.extend_from_slice(call.name.as_bytes());
    out.push(b' ');
    push_correlation_line(out, call.name, &call.tag, None);
    out.pop();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp(Stamp::from_parts(2026, 12, 7, 5, 26, 22).0, 42)
    }

    const E700: DriverError = DriverError::Code { code: 700, name: Some("CUDA_ERROR_ILLEGAL_ADDRESS") };

    #[test]
    fn lines_go_where_readers_look() {
        let mut inputs = b"=====\n[ts] FlashInfer API Call: m.f\n".to_vec();
        inputs.extend_from_slice(DASH_LINE);
        inputs.extend_from_slice(b"(No explicit arguments)\n");
        annotate_inputs(&mut inputs, DriverError::Missing);
        let text = String::from_utf8(inputs).unwrap();
        assert!(text.contains("-\n[CUDA error before this call: function not in the driver, from earlier work]\n(No"));
        let mut outputs = b"[call m.f #3 thread 9]\nOutput value:\n".to_vec();
        annotate_outputs(&mut outputs, true, DriverError::Missing);
        assert!(String::from_utf8(outputs)
            .unwrap()
            .starts_with("[call m.f #3 thread 9]\n[CUDA error after this call: function not in the driver]\nOutput"));
    }

    #[test]
    fn a_launch_names_its_call_on_its_first_line() {
        let mut rec = b"[ts] FlashInfer Kernel Launch: k(int)\n  grid=(1, 1, 1)\n".to_vec();
        name_call_in_launch(&mut rec, "m.f", &CallTag { number: 4, thread: 7, correlated: false }, &stamp());
        assert_eq!(
            rec,
            b"[ts] FlashInfer Kernel Launch: k(int) [call m.f #4 thread 7 at 05:26:22.000042]\n  grid=(1, 1, 1)\n"
        );
    }

    #[test]
    fn error_lines() {
        let tag = CallTag { number: 2, thread: 5, correlated: false };
        let mut out = Vec::new();
        push_error_after_alone(&mut out, E700, "m.f", &tag, &stamp());
        push_error_from(&mut out, "cuStreamEndCapture_ptsz", DriverError::Code { code: 901, name: None });
        push_replay_again_line(&mut out, GraphName::Captured(3), 9, E700, false);
        push_replay_again_line(&mut out, GraphName::Exec(0xab), 1, E700, true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[CUDA error after this call: CUDA_ERROR_ILLEGAL_ADDRESS (700)] [call m.f #2 thread 5 at 05:26:22.000042]\n\
             [CUDA error from cuStreamEndCapture_ptsz: CUDA error (901)]\n\
             [CUDA error after replay of graph id=3, replay 9: CUDA_ERROR_ILLEGAL_ADDRESS (700), the context had failed already]\n\
             [CUDA error at launch of graph exec 0xab (not captured under FLASHLOG_SYNC), replay 1: CUDA_ERROR_ILLEGAL_ADDRESS (700), the context had failed already]\n"
        );
    }

    #[test]
    fn replay_error_record() {
        let tag = CallTag { number: 4, thread: 7, correlated: false };
        let calls = [
            CapturedCallLine { position: 1, name: "m.a", tag },
            CapturedCallLine { position: 2, name: "m.b", tag: CallTag { number: 5, ..tag } },
        ];
        let mut out = Vec::new();
        let captured = CapturedCalls { calls: &calls, last_done: Some(1) };
        push_replay_error_record(&mut out, b"[ts]", (GraphName::Captured(2), 6), E700, false, Some(captured));
        let (eq, dash) = ("=".repeat(80), "-".repeat(80));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "{eq}\n[ts] FlashInfer Graph Replay Error: graph id=2, replay 6\n{dash}\n\
                 [CUDA error after this replay: CUDA_ERROR_ILLEGAL_ADDRESS (700)]\n\
                 FlashInfer calls captured into this graph, in capture order:\n\
                 \x20 1. m.a [call m.a #4 thread 7]\n\
                 \x20 2. m.b [call m.b #5 thread 7]\n\
                 last completed: m.a [call m.a #4 thread 7]\n\
                 first not completed: m.b [call m.b #5 thread 7]\n\
                 {eq}\n\n"
            )
        );
    }
}
