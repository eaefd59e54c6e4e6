//! Records of one TVM-FFI call: the level-1 line, the inputs record written before the call and the outputs
//! record written after it.
//!
//! When threads may interleave records, or `FLASHLOG_CORRELATE=1` asks for it (see `crate::correlation`), both
//! records of a call carry a correlation line, `[call <name> #<number> thread <tid> at <HH:MM:SS.ffffff>]`: in
//! the inputs record (and at level 1) right after the `FlashInfer API Call:` line, and as the first line of the
//! outputs record. `at` is the time of the record it is in, to the microsecond (the header keeps FlashInfer's
//! whole seconds). It matches none of the patterns FlashInfer-grammar
//! parsers key on (the timestamped call line, separators, `  arg[i]:`, `shape=` / `dtype=`), so they skip it.

use super::pyrepr::{push_escaped, push_int};
use super::tensor::StatsSource;
use super::kind::tensor_source;
use super::value::{write_value, ValueContext};
use super::{push_indent, DASH_LINE, EQUALS_LINE};
use crate::abi::ffi::FfiAny;
use crate::abi::prefetch::Prefetch;
use crate::clock::Stamp;
use crate::correlation::CallTag;

/// Appends `[ts] FlashInfer API Call: <name>` and a newline.
pub fn push_call_line(out: &mut Vec<u8>, stamp: &Stamp, name: &str) {
    out.extend_from_slice(&stamp.0);
    out.extend_from_slice(b" FlashInfer API Call: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
}

/// Appends `[call <name> #<number> thread <tid> at <HH:MM:SS.ffffff>]` and a newline; without `at` (a form that
/// names a call recorded elsewhere, as a graph replay error's list does) the time is left out.
pub fn push_correlation_line(out: &mut Vec<u8>, name: &str, tag: &CallTag, at: Option<&Stamp>) {
    out.extend_from_slice(b"[call ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" #");
    push_int(out, tag.number);
    out.extend_from_slice(b" thread ");
    push_int(out, tag.thread);
    if let Some(at) = at {
        out.extend_from_slice(b" at ");
        at.push_time_of_day(out);
    }
    out.extend_from_slice(b"]\n");
}

/// Appends the level-1 record: the call line, then the correlation line (with the call line's time) when `tag`
/// is given.
pub fn push_level1_record(out: &mut Vec<u8>, stamp: &Stamp, name: &str, tag: Option<&CallTag>) {
    push_call_line(out, stamp, name);
    if let Some(tag) = tag {
        push_correlation_line(out, name, tag, Some(stamp));
    }
}

/// Appends the inputs record: separator, call line, the correlation line when `tag` is given, dashes, and
/// every positional argument.
pub fn push_inputs_record(
    out: &mut Vec<u8>,
    stamp: &Stamp,
    name: &str,
    tag: Option<&CallTag>,
    args: &[FfiAny],
    ctx: &mut ValueContext,
) {
    out.extend_from_slice(EQUALS_LINE);
    push_call_line(out, stamp, name);
    if let Some(tag) = tag {
        push_correlation_line(out, name, tag, Some(stamp));
    }
    out.extend_from_slice(DASH_LINE);
    if args.is_empty() {
        out.extend_from_slice(b"(No explicit arguments)\n");
        return;
    }
    out.extend_from_slice(b"Positional input arguments:\n");
    for (i, arg) in args.iter().enumerate() {
        out.extend_from_slice(b"  arg[");
        push_int(out, i);
        out.extend_from_slice(b"]:\n");
        write_value(out, arg, 4, ctx);
    }
}

/// How the real function ended.
pub enum Outcome<'a> {
    /// Return code 0: the value left in `result`.
    Returned(&'a FfiAny),
    /// Non-zero return code with the error object's kind and message (read without consuming it).
    Failed {
        /// The error's kind (`ValueError`, ...).
        kind: &'a [u8],
        /// The error's message.
        message: &'a [u8],
    },
    /// Non-zero return code and no error object (modules built with old headers return -2 this way).
    FailedWithoutError(i32),
}

/// Appends the outputs record: the correlation line when `tagged` names the call (its time read now, as the
/// record is built after the call returned), the output value or the
/// failure, at level 5 the statistics of every tensor argument after the call, then the closing separator and
/// a blank line.
pub fn push_outputs_record(
    out: &mut Vec<u8>,
    tagged: Option<(&str, &CallTag)>,
    outcome: Outcome,
    args: &[FfiAny],
    ctx: &mut ValueContext,
) {
    if let Some((name, tag)) = tagged {
        push_correlation_line(out, name, tag, Some(&crate::clock::now()));
    }
    match outcome {
        Outcome::Returned(result) => {
            out.extend_from_slice(b"Output value:\n");
            write_value(out, result, 2, ctx);
        }
        Outcome::Failed { kind, message } => {
            out.extend_from_slice(b"Call failed: ");
            push_one_line(out, kind);
            out.extend_from_slice(b": ");
            push_one_line(out, message);
            out.push(b'\n');
        }
        Outcome::FailedWithoutError(rc) => {
            out.extend_from_slice(b"Call failed: return code ");
            push_int(out, rc);
            out.push(b'\n');
        }
    }
    if let Some(stats) = ctx.stats.as_deref_mut() {
        push_tensors_after(out, args, stats, ctx.prefetch);
    }
    out.extend_from_slice(EQUALS_LINE);
    out.push(b'\n');
}

/// Appends `Tensor arguments after the call:` and the statistics of every top-level tensor argument.
fn push_tensors_after(out: &mut Vec<u8>, args: &[FfiAny], stats: &mut dyn StatsSource, prefetch: Option<&Prefetch>) {
    let mut header_written = false;
    for (i, arg) in args.iter().enumerate() {
        let Some(source) = tensor_source(arg) else {
            continue;
        };
        if !header_written {
            out.extend_from_slice(b"Tensor arguments after the call:\n");
            header_written = true;
        }
        out.extend_from_slice(b"  arg[");
        push_int(out, i);
        out.extend_from_slice(b"] (after):\n");
        match source.read(prefetch) {
            Ok(desc) => stats.write_stats(&desc, out, 4),
            Err(reason) => {
                push_indent(out, 4);
                out.extend_from_slice(b"<invalid tensor: ");
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b">\n");
            }
        }
    }
}

/// Appends text that must stay on one line: newlines and other control bytes are shown escaped, and invalid
/// UTF-8 as `\xNN`, so a multi-line error message cannot break the record grammar.
fn push_one_line(out: &mut Vec<u8>, text: &[u8]) {
    push_escaped(out, text, None);
}

/// Appends the line saying that not every argument a call claimed (`num_args`) is logged, when that is so:
/// `[num_args=N but only M arguments could be read: the others are not logged]`,
/// `[num_args=N: only the first MAX arguments are logged]` or `[num_args=N: no arguments are logged]`; nothing
/// when all `claimed` arguments were `read`.
pub fn push_args_shortfall_line(out: &mut Vec<u8>, claimed: i32, read: usize, max: usize) {
    if claimed >= 0 && read == claimed as usize {
        return;
    }
    out.extend_from_slice(b"[num_args=");
    if claimed < 0 {
        out.push(b'-');
    }
    push_int(out, claimed.unsigned_abs());
    if claimed <= 0 {
        out.extend_from_slice(b": no arguments are logged]\n");
    } else if read == max {
        out.extend_from_slice(b": only the first ");
        push_int(out, max);
        out.extend_from_slice(b" arguments are logged]\n");
    } else {
        out.extend_from_slice(b" but only ");
        push_int(out, read);
        out.extend_from_slice(if read == 1 { b" argument" } else { b" arguments" });
        out.extend_from_slice(b" could be read: the others are not logged]\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::ffi::type_index as ti;

    fn no_types(_: i32, _: &mut Vec<u8>) -> bool {
        false
    }

    fn any(type_index: i32, payload: u64) -> FfiAny {
        FfiAny { type_index, small_len: 0, payload }
    }

    #[test]
    fn inputs_and_outputs_layout() {
        let stamp = Stamp::from_parts(2026, 11, 28, 21, 4, 5);
        let args = [any(ti::FLOAT, 1e-6f64.to_bits()), any(ti::BOOL, 0)];
        let mut ctx = ValueContext { type_key: &no_types, stats: None, prefetch: None };
        let mut out = Vec::new();
        push_inputs_record(&mut out, &stamp, "norm.rmsnorm", None, &args, &mut ctx);
        let none = any(ti::NONE, 0);
        push_outputs_record(&mut out, None, Outcome::Returned(&none), &args, &mut ctx);
        let eq = "=".repeat(80);
        let dash = "-".repeat(80);
        let want = format!(
            "{eq}\n[2026-11-28 21:04:05] FlashInfer API Call: norm.rmsnorm\n{dash}\nPositional input arguments:\n  arg[0]:\n    1e-06\n  arg[1]:\n    False\nOutput value:\n  None\n{eq}\n\n"
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn no_arguments_and_failures() {
        let stamp = Stamp::from_parts(2026, 1, 2, 3, 4, 5);
        let mut ctx = ValueContext { type_key: &no_types, stats: None, prefetch: None };
        let mut out = Vec::new();
        push_inputs_record(&mut out, &stamp, "m.f", None, &[], &mut ctx);
        push_outputs_record(
            &mut out,
            None,
            Outcome::Failed { kind: b"ValueError", message: b"bad\nvalue" },
            &[],
            &mut ctx,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\n(No explicit arguments)\nCall failed: ValueError: bad\\nvalue\n"));
        let mut out = Vec::new();
        push_outputs_record(&mut out, None, Outcome::FailedWithoutError(-2), &[], &mut ctx);
        assert!(String::from_utf8(out).unwrap().starts_with("Call failed: return code -2\n"));
    }

    #[test]
    fn correlation_lines_where_parsers_skip_them() {
        let stamp = Stamp(Stamp::from_parts(2026, 11, 28, 21, 4, 5).0, 123_456);
        let tag = CallTag { number: 1234, thread: 5678, correlated: true };
        let mut ctx = ValueContext { type_key: &no_types, stats: None, prefetch: None };
        let args = [any(ti::FLOAT, 1e-6f64.to_bits())];
        let mut out = Vec::new();
        push_inputs_record(&mut out, &stamp, "norm.rmsnorm", Some(&tag), &args, &mut ctx);
        let none = any(ti::NONE, 0);
        let inputs_end = out.len();
        push_outputs_record(&mut out, Some(("norm.rmsnorm", &tag)), Outcome::Returned(&none), &args, &mut ctx);
        let eq = "=".repeat(80);
        let dash = "-".repeat(80);
        let line = "[call norm.rmsnorm #1234 thread 5678 at 21:04:05.123456]";
        let want = format!(
            "{eq}\n[2026-11-28 21:04:05] FlashInfer API Call: norm.rmsnorm\n{line}\n{dash}\nPositional input arguments:\n  arg[0]:\n    1e-06\n"
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(&text[..inputs_end], want);
        // The outputs record's line has the time it was built at (read from the clock: only its shape is known).
        let outputs = &text[inputs_end..];
        let (first, rest) = outputs.split_once('\n').unwrap();
        let time = first.strip_prefix("[call norm.rmsnorm #1234 thread 5678 at ").unwrap().strip_suffix(']').unwrap();
        assert!(time.len() == 15 && time.as_bytes()[8] == b'.' && time.bytes().filter(u8::is_ascii_digit).count() == 12);
        assert_eq!(rest, format!("Output value:\n  None\n{eq}\n\n"));
        let mut level1 = Vec::new();
        push_level1_record(&mut level1, &stamp, "m.f", Some(&tag));
        assert_eq!(level1, b"[2026-11-28 21:04:05] FlashInfer API Call: m.f\n[call m.f #1234 thread 5678 at 21:04:05.123456]\n");
        let mut named = Vec::new();
        push_correlation_line(&mut named, "m.f", &tag, None);
        assert_eq!(named, b"[call m.f #1234 thread 5678]\n");
        // None of the patterns a FlashInfer-grammar parser keys on.
        assert!(
            !line.starts_with("  arg[")
                && !line.starts_with('=')
                && !line.contains("shape=")
                && !line.contains("dtype=")
        );
        assert!(!line.contains("] FlashInfer API Call: "));
    }
}
