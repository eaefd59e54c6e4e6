//! The text of one TVM-FFI value (`docs/log-format.md`, "Values"): one small printer per kind; [`write_value`]
//! only dispatches. Every pointer inside a value is read through the fault-tolerant readers of `abi`.

use super::names::{push_device, push_dtype};
use super::push_indent;
use super::pyrepr::{push_bytes_repr, push_float_repr, push_hex, push_int, push_str_repr, push_tuple};
use super::tensor::{write_tensor_block, StatsSource};
use crate::abi::dlpack::{self, DataType, Device, TensorDesc};
use crate::abi::ffi::{self, type_index as ti, ByteArray, FfiAny, SeqPayload};
use crate::abi::prefetch::Prefetch;
use crate::os::mem;
use std::cell::Cell;

/// Longest string or byte sequence printed; longer ones end with `...` inside the quotes.
pub const MAX_TEXT_BYTES: usize = 1024;
/// Most items of an Array or List printed; the rest are summarised in one line.
pub const MAX_ITEMS: usize = 64;
/// Deepest nesting of containers printed.
pub const MAX_DEPTH: usize = 8;
/// The object type indices every TVM-FFI runtime registers statically (Object 64 to BigInt 78).
const STATIC_TYPES: std::ops::RangeInclusive<i32> = 64..=78;
/// Longest Shape object printed.
const MAX_SHAPE: usize = 64;

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
    match as_block(value, ctx.prefetch) {
        Some(block) => write_block(out, block, indent, ctx, depth),
        None => {
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

/// Where a tensor's `DLTensor` lives.
#[derive(Clone, Copy)]
pub enum TensorSource {
    /// A `DLTensor*` (type index 7).
    DlTensorPtr(usize),
    /// A Tensor object (70): the `DLTensor` follows the object header.
    Object(usize),
}

impl TensorSource {
    /// The address of the `DLTensor` (None for a null Tensor object).
    pub fn descriptor_addr(self) -> Option<usize> {
        match self {
            TensorSource::DlTensorPtr(p) => Some(p),
            TensorSource::Object(0) => None,
            TensorSource::Object(obj) => obj.checked_add(ffi::OBJECT_HEADER_SIZE),
        }
    }

    /// Reads and checks the descriptor, from `prefetch` when it holds it.
    pub fn read(self, prefetch: Option<&Prefetch>) -> Result<TensorDesc, mem::ReadError> {
        let addr = self.descriptor_addr().ok_or("null Tensor object")?;
        match prefetch {
            Some(p) => p.tensor(addr),
            None => dlpack::read_tensor(addr),
        }
    }
}

/// The object an argument refers to, and its type index: objects directly, ObjectRValueRef through one
/// indirection (the type index then comes from the object's header). Shared with the level-10 dumps.
pub fn object_of(value: &FfiAny) -> Option<(usize, i32)> {
    match value.type_index {
        t if t >= ti::STATIC_OBJECT_BEGIN => Some((value.as_addr(), t)),
        ti::OBJECT_RVALUE_REF => {
            let obj: usize = mem::read_pod(value.as_addr()).ok()?;
            let header = ffi::read_object_header(obj).ok()?;
            Some((obj, header.type_index))
        }
        _ => None,
    }
}

/// If `value` is a tensor (7, 70, or a reference to a Tensor object), where its descriptor lives.
pub fn tensor_source(value: &FfiAny) -> Option<TensorSource> {
    if value.type_index == ti::DL_TENSOR_PTR {
        return Some(TensorSource::DlTensorPtr(value.as_addr()));
    }
    match object_of(value) {
        Some((obj, ti::TENSOR)) => Some(TensorSource::Object(obj)),
        _ => None,
    }
}

fn as_block(value: &FfiAny, prefetch: Option<&Prefetch>) -> Option<Block> {
    if let Some(t) = tensor_source(value) {
        return Some(Block::Tensor(t));
    }
    match object_of(value) {
        Some((obj, ti::ARRAY | ti::LIST)) if obj != 0 => {
            let seq = match prefetch.and_then(|p| p.seq(obj)) {
                Some((seq, _)) => seq,
                None => ffi::read_object_payload(obj).ok()?,
            };
            (seq.size > 0).then_some(Block::Seq(obj, seq))
        }
        _ => None,
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
                    Ok(item) => match as_block(&item, ctx.prefetch) {
                        Some(b) => {
                            out.push(b'\n');
                            write_block(out, b, indent + 4, ctx, depth + 1);
                        }
                        None => {
                            out.push(b' ');
                            write_inline(out, &item, ctx);
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
fn write_inline(out: &mut Vec<u8>, value: &FfiAny, ctx: &mut ValueContext) {
    match value.type_index {
        ti::NONE => out.extend_from_slice(b"None"),
        ti::INT => push_int(out, value.as_i64()),
        ti::BOOL => out.extend_from_slice(if value.payload != 0 { b"True" } else { b"False" }),
        ti::FLOAT => push_float_repr(out, value.as_f64()),
        ti::OPAQUE_PTR if value.payload == 0 => out.extend_from_slice(b"None"),
        ti::OPAQUE_PTR => push_hex(out, value.payload),
        ti::DATA_TYPE => {
            let b = value.inline_bytes();
            push_dtype(out, DataType { code: b[0], bits: b[1], lanes: u16::from_le_bytes([b[2], b[3]]) });
        }
        ti::DEVICE => {
            let b = value.inline_bytes();
            push_device(
                out,
                Device {
                    device_type: i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                    device_id: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                },
            );
        }
        ti::RAW_STR => {
            let mut text = [0u8; MAX_TEXT_BYTES];
            match mem::read_c_str_into(value.as_addr(), &mut text) {
                Ok((len, truncated)) => push_str_repr(out, &text[..len], truncated),
                Err(reason) => push_unreadable(out, "str", reason),
            }
        }
        ti::BYTE_ARRAY_PTR => match mem::read_pod::<ByteArray>(value.as_addr()) {
            Ok(bytes) => push_byte_array(out, bytes, true),
            Err(reason) => push_unreadable(out, "bytes", reason),
        },
        ti::SMALL_STR | ti::SMALL_BYTES => {
            let bytes = value.inline_bytes();
            let len = (value.small_len as usize).min(7);
            if value.type_index == ti::SMALL_STR {
                push_str_repr(out, &bytes[..len], false);
            } else {
                push_bytes_repr(out, &bytes[..len], false);
            }
        }
        ti::UNCHANGED => out.extend_from_slice(b"<unchanged>"),
        t if t < ti::STATIC_OBJECT_BEGIN && t != ti::OBJECT_RVALUE_REF => {
            out.extend_from_slice(b"<unknown type_index=");
            push_int(out, t);
            out.push(b'>');
        }
        _ => match object_of(value) {
            Some((obj, t)) => write_object_inline(out, obj, t, ctx),
            None => push_unreadable(out, "object", "unreadable reference"),
        },
    }
}

/// Appends an object that is not a tensor and not a non-empty sequence.
fn write_object_inline(out: &mut Vec<u8>, obj: usize, type_index: i32, ctx: &mut ValueContext) {
    if obj == 0 {
        push_unreadable(out, "object", "null pointer");
        return;
    }
    match type_index {
        ti::STR | ti::BYTES => match ffi::read_object_payload::<ByteArray>(obj) {
            Ok(bytes) => push_byte_array(out, bytes, type_index == ti::BYTES),
            Err(reason) => push_unreadable(out, "object", reason),
        },
        ti::SHAPE => match ffi::read_object_payload::<ByteArray>(obj) {
            Ok(shape) if shape.size <= MAX_SHAPE => {
                let mut dims = [0i64; MAX_SHAPE];
                match mem::read_i64s(shape.data, &mut dims[..shape.size]) {
                    Ok(()) => push_tuple(out, &dims[..shape.size]),
                    Err(reason) => push_unreadable(out, "shape", reason),
                }
            }
            Ok(_) => push_unreadable(out, "shape", "too many dimensions"),
            Err(reason) => push_unreadable(out, "object", reason),
        },
        // Readable non-empty sequences are blocks; what reaches here is empty or unreadable.
        ti::ARRAY | ti::LIST => match ffi::read_object_payload::<SeqPayload>(obj) {
            Ok(_) => out.extend_from_slice(b"[]"),
            Err(reason) => push_unreadable(out, "object", reason),
        },
        ti::MAP | ti::DICT => match ffi::read_object_payload::<[u64; 2]>(obj) {
            Ok([_, size]) if size < (1 << 40) => {
                out.extend_from_slice(b"{dict with ");
                push_int(out, size);
                out.extend_from_slice(if size == 1 { b" key}" } else { b" keys}" });
            }
            _ => out.extend_from_slice(b"{dict}"),
        },
        t => {
            out.extend_from_slice(b"<object ");
            // The runtime is asked only about the static indices, which are always registered: the real
            // `TVMFFIGetTypeInfo` exits the process for an index nobody registered, and a corrupt object can
            // claim any index.
            if !(STATIC_TYPES.contains(&t) && (ctx.type_key)(t, out)) {
                out.extend_from_slice(b"type_index=");
                push_int(out, t);
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
