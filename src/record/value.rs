//! The text of one TVM-FFI value (`docs/log-format.md`, "Values"): one small printer per kind of
//! [`super::kind::classify`] (the switch over the type index that the dump's JSON shares); [`write_value`] only
//! dispatches. Every pointer inside a value is read through the fault-tolerant readers of `abi`.

use super::names::{push_device, push_dtype};
use super::push_indent;
use super::pyrepr::{push_bytes_repr, push_float_repr, push_hex, push_int, push_str_repr, push_tuple};
use super::kind::{classify, read_shape, ObjectKind, ShapeError, TensorSource, Value, STATIC_TYPES};
use super::tensor::{write_tensor_block, StatsSource};
use crate::abi::ffi::{self, ByteArray, FfiAny, SeqPayload};
use crate::abi::prefetch::Prefetch;
use crate::os::mem;
use std::cell::Cell;

/// Longest string or byte sequence printed; longer ones end with `...` inside the quotes.
pub const MAX_TEXT_BYTES: usize = 1024;
/// Most items of an Array or List printed; the rest are summarised in one line.
pub const MAX_ITEMS: usize = 64;
/// Deepest nesting of containers printed.
pub const MAX_DEPTH: usize = 8;

/// What the value printer needs from its surroundings. Whoever builds one for a record calls
/// [`start_record`] first (the record's budget of container items is per thread).
pub struct ValueContext<'a> {
    /// Names a registered type index (`TVMFFIGetTypeInfo`), appending its type key; false when unknown.
    pub type_key: &'a dyn Fn(i32, &mut Vec<u8>) -> bool,
    /// Statistics of tensors at level 5; None below.
    pub stats: Option<&'a mut dyn StatsSource>,
    /// Descriptors of the call's tensor arguments, read in one batch.
    pub prefetch: Option<&'a Prefetch>,
}

/// Appends `value` at `indent`: one or more whole lines.
pub fn write_value(out: &mut Vec<u8>, value: &FfiAny, indent: usize, ctx: &mut ValueContext) {
    write_value_at_depth(out, value, indent, ctx, 0);
}

fn write_value_at_depth(out: &mut Vec<u8>, value: &FfiAny, indent: usize, ctx: &mut ValueContext, depth: usize) {
    match as_block(classify(value), ctx.prefetch) {
        Ok(block) => write_block(out, block, indent, ctx, depth),
        Err(value) => {
            push_indent(out, indent);
            write_inline(out, value, ctx);
            out.push(b'\n');
        }
    }
}

/// A value printed over several lines.
enum Block {
    /// A tensor: the descriptor is read from here.
    Tensor(TensorSource),
    /// A non-empty Array or List object (its address and payload).
    Seq(usize, SeqPayload),
}

/// A value printed over several lines (a tensor, a readable non-empty sequence), or else the value back.
fn as_block(value: Value, prefetch: Option<&Prefetch>) -> Result<Block, Value> {
    match value {
        Value::Tensor(t) => Ok(Block::Tensor(t)),
        Value::Object { obj, kind: ObjectKind::Seq, .. } if obj != 0 => {
            let seq = match prefetch.and_then(|p| p.seq(obj)) {
                Some((seq, _)) => Some(seq),
                None => ffi::read_object_payload(obj).ok(),
            };
            match seq {
                Some(seq) if seq.size > 0 => Ok(Block::Seq(obj, seq)),
                _ => Err(value),
            }
        }
        _ => Err(value),
    }
}

/// Container items one record prints in all (nested, shared or cyclic containers included), so a record
/// stays bounded whatever the host passes: an Array that contains itself stops at [`MAX_DEPTH`] and at this
/// budget. The items not printed are counted in one marker line:
/// `... (N more items, limit of 256 items per record reached)`.
pub const RECORD_ITEMS: usize = 256;

thread_local! {
    /// Items the current record may still print on this thread (no destructor: a const-initialised Cell).
    static ITEMS_LEFT: Cell<usize> = const { Cell::new(RECORD_ITEMS) };
}

/// Starts a record: its container items get a fresh budget of [`RECORD_ITEMS`].
pub fn start_record() {
    ITEMS_LEFT.with(|c| c.set(RECORD_ITEMS));
}

/// Takes one item from the record's budget; false when it is spent.
fn take_item() -> bool {
    ITEMS_LEFT.with(|c| {
        let left = c.get();
        c.set(left.saturating_sub(1));
        left > 0
    })
}

fn write_block(out: &mut Vec<u8>, block: Block, indent: usize, ctx: &mut ValueContext, depth: usize) {
    match block {
        Block::Tensor(source) => write_tensor_block(out, source.read(ctx.prefetch), indent, ctx.stats.as_deref_mut()),
        Block::Seq(obj, seq) => {
            push_indent(out, indent);
            if depth >= MAX_DEPTH || ITEMS_LEFT.with(|c| c.get()) == 0 {
                out.extend_from_slice(b"[...]\n");
                return;
            }
            out.extend_from_slice(b"[\n");
            let size = seq.size as u64;
            let shown = size.min(MAX_ITEMS as u64) as usize;
            let prefetched = ctx.prefetch.and_then(|p| p.seq(obj)).map_or(&[][..], |(_, items)| items);
            let mut printed = 0;
            for i in 0..shown {
                if !take_item() {
                    break;
                }
                printed += 1;
                push_indent(out, indent + 2);
                out.push(b'[');
                push_int(out, i);
                out.extend_from_slice(b"]:");
                let item = match prefetched.get(i) {
                    Some(item) => Ok(*item),
                    None => ffi::read_any_at(seq.data, i),
                };
                match item {
                    Err(reason) => {
                        out.extend_from_slice(b" <unreadable item: ");
                        out.extend_from_slice(reason.as_bytes());
                        out.extend_from_slice(b">\n");
                    }
                    Ok(item) => match as_block(classify(&item), ctx.prefetch) {
                        Ok(b) => {
                            out.push(b'\n');
                            write_block(out, b, indent + 4, ctx, depth + 1);
                        }
                        Err(item) => {
                            out.push(b' ');
                            write_inline(out, item, ctx);
                            out.push(b'\n');
                        }
                    },
                }
            }
            if size > printed as u64 {
                push_indent(out, indent + 2);
                out.extend_from_slice(b"... (");
                push_int(out, size - printed as u64);
                if printed < shown {
                    out.extend_from_slice(b" more items, limit of ");
                    push_int(out, RECORD_ITEMS);
                    out.extend_from_slice(b" items per record reached)\n");
                } else {
                    out.extend_from_slice(b" more items)\n");
                }
            }
            push_indent(out, indent);
            out.extend_from_slice(b"]\n");
        }
    }
}

/// Appends a value that fits on one line (no newline).
fn write_inline(out: &mut Vec<u8>, value: Value, ctx: &mut ValueContext) {
    match value {
        // Never reached: a tensor is always a block.
        Value::Tensor(_) => {}
        Value::None => out.extend_from_slice(b"None"),
        Value::Int(i) => push_int(out, i),
        Value::Bool(b) => out.extend_from_slice(if b { b"True" } else { b"False" }),
        Value::Float(f) => push_float_repr(out, f),
        Value::OpaquePtr(p) => push_hex(out, p),
        Value::DataType(dt) => push_dtype(out, dt),
        Value::Device(d) => push_device(out, d),
        Value::RawStr(addr) => {
            let mut text = [0u8; MAX_TEXT_BYTES];
            match mem::read_c_str_into(addr, &mut text) {
                Ok((len, truncated)) => push_str_repr(out, &text[..len], truncated),
                Err(reason) => push_unreadable(out, "str", reason),
            }
        }
        Value::ByteArrayPtr(addr) => match mem::read_pod::<ByteArray>(addr) {
            Ok(bytes) => push_byte_array(out, bytes, true),
            Err(reason) => push_unreadable(out, "bytes", reason),
        },
        Value::Small { bytes, len, text: true } => push_str_repr(out, &bytes[..len], false),
        Value::Small { bytes, len, text: false } => push_bytes_repr(out, &bytes[..len], false),
        Value::Unchanged => out.extend_from_slice(b"<unchanged>"),
        Value::Unknown(t) => {
            out.extend_from_slice(b"<unknown type_index=");
            push_int(out, t);
            out.push(b'>');
        }
        Value::Object { obj, type_index, kind } => write_object_inline(out, obj, type_index, kind, ctx),
        Value::UnreadableReference => push_unreadable(out, "object", "unreadable reference"),
    }
}

/// Appends an object that is not a tensor and not a non-empty sequence.
fn write_object_inline(out: &mut Vec<u8>, obj: usize, type_index: i32, kind: ObjectKind, ctx: &mut ValueContext) {
    if obj == 0 {
        push_unreadable(out, "object", "null pointer");
        return;
    }
    match kind {
        ObjectKind::Str | ObjectKind::Bytes => match ffi::read_object_payload::<ByteArray>(obj) {
            Ok(bytes) => push_byte_array(out, bytes, kind == ObjectKind::Bytes),
            Err(reason) => push_unreadable(out, "object", reason),
        },
        ObjectKind::Shape => match read_shape(obj) {
            Ok((dims, n)) => push_tuple(out, &dims[..n]),
            Err(ShapeError::Object(reason)) => push_unreadable(out, "object", reason),
            Err(ShapeError::TooMany) => push_unreadable(out, "shape", "too many dimensions"),
            Err(ShapeError::Dims(reason)) => push_unreadable(out, "shape", reason),
        },
        // Readable non-empty sequences are blocks; what reaches here is empty or unreadable.
        ObjectKind::Seq => match ffi::read_object_payload::<SeqPayload>(obj) {
            Ok(_) => out.extend_from_slice(b"[]"),
            Err(reason) => push_unreadable(out, "object", reason),
        },
        ObjectKind::Map => match ffi::read_object_payload::<[u64; 2]>(obj) {
            Ok([_, size]) if size < (1 << 40) => {
                out.extend_from_slice(b"{dict with ");
                push_int(out, size);
                out.extend_from_slice(if size == 1 { b" key}" } else { b" keys}" });
            }
            _ => out.extend_from_slice(b"{dict}"),
        },
        ObjectKind::Other => {
            out.extend_from_slice(b"<object ");
            // The runtime is asked only about the static indices (see `STATIC_TYPES`).
            if !(STATIC_TYPES.contains(&type_index) && (ctx.type_key)(type_index, out)) {
                out.extend_from_slice(b"type_index=");
                push_int(out, type_index);
            }
            out.push(b'>');
        }
    }
}

fn push_byte_array(out: &mut Vec<u8>, bytes: ByteArray, as_bytes: bool) {
    let len = bytes.size.min(MAX_TEXT_BYTES);
    let mut buf = [0u8; MAX_TEXT_BYTES];
    let text = &mut buf[..len];
    if let Err(reason) = mem::read_bytes(bytes.data, text) {
        push_unreadable(out, if as_bytes { "bytes" } else { "str" }, reason);
        return;
    }
    if as_bytes {
        push_bytes_repr(out, text, bytes.size > len);
    } else {
        push_str_repr(out, text, bytes.size > len);
    }
}

fn push_unreadable(out: &mut Vec<u8>, what: &str, reason: &str) {
    out.extend_from_slice(b"<invalid ");
    out.extend_from_slice(what.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(reason.as_bytes());
    out.push(b'>');
}
