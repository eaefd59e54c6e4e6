//! What replay needs to know about a call's arguments: each argument as a JSON entry with its kind and value
//! (`arguments` of `metadata.jsonl`), and the list of tensors to dump with their keys (`arg_<i>`, items of
//! arrays `arg_<i>__<j>`). Every pointer is read through the fault-tolerant readers of `abi`.

use super::json::{push_float, push_int, push_ints, push_key, push_str};
use super::source::capture_blocks;
use super::tensors::{push_tensor_fields, DumpTensor};
use crate::abi::ffi::{self, type_index as ti, ByteArray, FfiAny, SeqPayload};
use crate::abi::prefetch::Prefetch;
use crate::abi::tvm_runtime;
use crate::os::mem;
use crate::record::kind::{classify, read_shape, ObjectKind, TensorSource, Value, STATIC_TYPES};
use crate::record::names::{device_text, dtype_text};

/// Longest string argument kept whole (longer ones are marked not replayable).
const MAX_TEXT: usize = 1 << 16;
/// Most items of an array described.
const MAX_ITEMS: usize = 4096;
/// Deepest nesting of arrays described.
const MAX_DEPTH: usize = 8;

/// Appends the JSON list of `args` to `out` and the tensors among them to `tensors`. A tensor whose key is in
/// `left_out` is listed as not dumped, with the reason given there (found while its file was written).
pub fn describe_args(
    out: &mut Vec<u8>,
    args: &[FfiAny],
    tensors: &mut Vec<DumpTensor>,
    left_out: &[(String, &'static str)],
    prefetch: Option<&Prefetch>,
) {
    out.push(b'[');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        describe(out, a, &format!("arg_{i}"), tensors, 0, left_out, prefetch);
    }
    out.push(b']');
}

/// Appends the JSON entry of one value; tensors get `key`.
pub fn describe(
    out: &mut Vec<u8>,
    v: &FfiAny,
    key: &str,
    tensors: &mut Vec<DumpTensor>,
    depth: usize,
    left_out: &[(String, &'static str)],
    prefetch: Option<&Prefetch>,
) {
    match classify(v) {
        Value::Tensor(source) => {
            let mut t = DumpTensor::read(key, source, matches!(source, TensorSource::Object(_)), prefetch);
            if t.not_dumped.is_none() {
                t.not_dumped = t.desc.as_ref().ok().and_then(|d| capture_blocks(d.device));
            }
            if let Some((_, reason)) = left_out.iter().find(|(k, _)| k == key) {
                t.not_dumped = Some(reason);
            }
            push_tensor_fields(out, &t);
            tensors.push(t);
        }
        Value::None => out.extend_from_slice(b"null"),
        Value::Int(i) => simple(out, "int", |o| push_int(o, i)),
        Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::Float(f) => simple(out, "float", |o| push_float(o, f)),
        Value::OpaquePtr(p) => not_replayable(out, "opaque_ptr", &format!("0x{p:x}")),
        Value::DataType(dt) => {
            out.extend_from_slice(b"{\"kind\": \"dtype\", ");
            push_key(out, "value");
            push_str(out, dtype_text(dt).as_bytes());
            out.extend_from_slice(b", ");
            push_key(out, "dlpack");
            push_ints(out, &[dt.code as i64, dt.bits as i64, dt.lanes as i64]);
            out.push(b'}');
        }
        Value::Device(d) => {
            out.extend_from_slice(b"{\"kind\": \"device\", ");
            push_key(out, "device_type");
            push_int(out, d.device_type);
            out.extend_from_slice(b", ");
            push_key(out, "device_id");
            push_int(out, d.device_id);
            out.extend_from_slice(b", ");
            push_key(out, "value");
            push_str(out, device_text(d).as_bytes());
            out.push(b'}');
        }
        Value::RawStr(addr) => {
            let mut text = Vec::new();
            match mem::read_c_str(addr, MAX_TEXT, &mut text) {
                Ok(false) => text_value(out, "str", &text),
                _ => not_replayable(out, "str", "unreadable or too long"),
            }
        }
        Value::ByteArrayPtr(addr) => match mem::read_pod::<ByteArray>(addr) {
            Ok(b) => byte_array(out, "bytes", b),
            Err(_) => not_replayable(out, "bytes", "unreadable"),
        },
        Value::Small { bytes, len, text } => text_value(out, if text { "str" } else { "bytes" }, &bytes[..len]),
        Value::Unchanged => not_replayable(out, "unknown", &format!("type_index={}", ti::UNCHANGED)),
        Value::Unknown(t) => not_replayable(out, "unknown", &format!("type_index={t}")),
        Value::Object { obj, type_index, kind } if obj != 0 => {
            object(out, (obj, type_index, kind), key, tensors, depth, left_out, prefetch)
        }
        Value::Object { .. } | Value::UnreadableReference => not_replayable(out, "object", "unreadable"),
    }
}

fn simple(out: &mut Vec<u8>, kind: &str, value: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"{\"kind\": ");
    push_str(out, kind.as_bytes());
    out.extend_from_slice(b", \"value\": ");
    value(out);
    out.push(b'}');
}

/// A string (`str`) or byte string (`bytes`, written as a list of byte values).
fn text_value(out: &mut Vec<u8>, kind: &str, text: &[u8]) {
    if kind == "str" && std::str::from_utf8(text).is_ok() {
        simple(out, "str", |o| push_str(o, text));
    } else {
        simple(out, kind, |o| push_ints(o, &text.iter().map(|&b| b as i64).collect::<Vec<_>>()));
    }
}

fn byte_array(out: &mut Vec<u8>, kind: &str, b: ByteArray) {
    if b.size > MAX_TEXT {
        return not_replayable(out, kind, "too long");
    }
    let mut text = vec![0u8; b.size];
    match mem::read_bytes(b.data, &mut text) {
        Ok(()) => text_value(out, kind, &text),
        Err(_) => not_replayable(out, kind, "unreadable"),
    }
}

fn not_replayable(out: &mut Vec<u8>, kind: &str, what: &str) {
    out.extend_from_slice(b"{\"kind\": ");
    push_str(out, kind.as_bytes());
    out.extend_from_slice(b", \"value\": ");
    push_str(out, what.as_bytes());
    out.extend_from_slice(b", \"replayable\": false}");
}

/// Appends the JSON entry of an object other than a tensor: (address, not null; type index; kind).
fn object(
    out: &mut Vec<u8>,
    (obj, t, kind): (usize, i32, ObjectKind),
    key: &str,
    tensors: &mut Vec<DumpTensor>,
    depth: usize,
    left_out: &[(String, &'static str)],
    prefetch: Option<&Prefetch>,
) {
    match kind {
        ObjectKind::Str | ObjectKind::Bytes => match ffi::read_object_payload::<ByteArray>(obj) {
            Ok(b) => byte_array(out, if kind == ObjectKind::Str { "str" } else { "bytes" }, b),
            Err(_) => not_replayable(out, "object", "unreadable"),
        },
        ObjectKind::Shape => match read_shape(obj) {
            Ok((dims, n)) => simple(out, "shape", |o| push_ints(o, &dims[..n])),
            Err(_) => not_replayable(out, "shape", "unreadable"),
        },
        ObjectKind::Seq if depth < MAX_DEPTH => match ffi::read_object_payload::<SeqPayload>(obj) {
            Ok(seq) if seq.size >= 0 && (seq.size as usize) <= MAX_ITEMS => {
                out.extend_from_slice(b"{\"kind\": ");
                push_str(out, if t == ti::ARRAY { b"array" } else { b"list" });
                out.extend_from_slice(b", \"items\": [");
                for j in 0..seq.size as usize {
                    if j > 0 {
                        out.extend_from_slice(b", ");
                    }
                    match ffi::read_any_at(seq.data, j) {
                        Ok(item) => {
                            describe(out, &item, &format!("{key}__{j}"), tensors, depth + 1, left_out, prefetch)
                        }
                        Err(_) => not_replayable(out, "object", "unreadable item"),
                    }
                }
                out.extend_from_slice(b"]}");
            }
            _ => not_replayable(out, "array", "unreadable or too long"),
        },
        _ => {
            let mut type_key = Vec::new();
            // Only the static indices are asked about (the runtime exits on an unregistered index).
            if !(STATIC_TYPES.contains(&t) && tvm_runtime::type_key(t, &mut type_key)) {
                type_key = format!("type_index={t}").into_bytes();
            }
            out.extend_from_slice(b"{\"kind\": \"object\", ");
            push_key(out, "type_key");
            push_str(out, &type_key);
            out.extend_from_slice(b", \"replayable\": false}");
        }
    }
}
