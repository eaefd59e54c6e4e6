//! One tensor of a dump: its descriptor, its safetensors name and size, and whether its bytes were saved;
//! and the JSON fields that describe it (the `arguments` entry and `tensor_details`).

use super::json::{push_int, push_ints, push_key, push_str};
use crate::abi::dlpack::{DataType, TensorDesc};
use crate::abi::prefetch::Prefetch;
use crate::record::names::{device_text, dtype_text};
use crate::record::kind::TensorSource;

/// A tensor argument (or a returned tensor) of a dumped call.
pub struct DumpTensor {
    /// `arg_<i>`, `arg_<i>__<j>`, `result`.
    pub key: String,
    /// The descriptor, or why it could not be read.
    pub desc: Result<TensorDesc, &'static str>,
    /// A Tensor object (type index 70) rather than a `DLTensor*` (7).
    pub is_object: bool,
    /// Why the bytes are not in the file (None: they are, or will be).
    pub not_dumped: Option<&'static str>,
}

impl DumpTensor {
    /// Reads the descriptor at `source`.
    pub fn read(key: &str, source: TensorSource, is_object: bool, prefetch: Option<&Prefetch>) -> DumpTensor {
        let desc = source.read(prefetch);
        let not_dumped = match &desc {
            Err(reason) => Some(*reason),
            Ok(d) if st_dtype(d.dtype).is_none() => Some("unsupported dtype"),
            Ok(_) => None,
        };
        DumpTensor { key: key.to_string(), desc, is_object, not_dumped }
    }

    /// Bytes of the tensor's elements in the file (0 when unreadable).
    pub fn nbytes(&self) -> u64 {
        match &self.desc {
            Ok(d) => st_dtype(d.dtype).map_or(0, |(_, eb)| (d.numel() as u64).saturating_mul(eb)),
            Err(_) => 0,
        }
    }
}

/// The safetensors dtype name of a DLPack dtype and its element size in bytes; dtypes safetensors has no
/// name for are stored as `U8` bytes (one more dimension when an element is several bytes).
pub fn st_dtype(dt: DataType) -> Option<(&'static str, u64)> {
    let name = match (dt.code, dt.bits, dt.lanes) {
        (0, 8, 1) => "I8",
        (0, 16, 1) => "I16",
        (0, 32, 1) => "I32",
        (0, 64, 1) => "I64",
        (1, 8, 1) => "U8",
        (1, 16, 1) => "U16",
        (1, 32, 1) => "U32",
        (1, 64, 1) => "U64",
        (2, 16, 1) => "F16",
        (2, 32, 1) => "F32",
        (2, 64, 1) => "F64",
        (4, 16, 1) => "BF16",
        (6, 8, 1) => "BOOL",
        (10, 8, 1) => "F8_E4M3",
        (12, 8, 1) => "F8_E5M2",
        _ => "U8",
    };
    let bits = dt.bits as u64 * dt.lanes as u64;
    if bits == 0 || !bits.is_multiple_of(8) && bits > 8 {
        return None;
    }
    Some((name, bits.div_ceil(8)))
}

/// The shape stored in the file: the tensor's, plus the byte dimension of a multi-byte `U8` fallback.
pub fn st_shape(d: &TensorDesc) -> Vec<i64> {
    let mut shape = d.shape().to_vec();
    if let Some(("U8", eb)) = st_dtype(d.dtype) {
        if eb > 1 {
            shape.push(eb as i64);
        }
    }
    shape
}

/// Appends the JSON object of one tensor (its `arguments` entry, also its `tensor_details` value).
pub fn push_tensor_fields(out: &mut Vec<u8>, t: &DumpTensor) {
    out.extend_from_slice(b"{\"kind\": \"tensor\", ");
    push_key(out, "key");
    push_str(out, t.key.as_bytes());
    out.extend_from_slice(b", ");
    push_key(out, "ffi_type");
    push_str(out, if t.is_object { b"Tensor" } else { b"DLTensor*" });
    if let Ok(d) = &t.desc {
        out.extend_from_slice(b", \"shape\": ");
        push_ints(out, d.shape());
        out.extend_from_slice(b", \"stride\": ");
        push_ints(out, d.strides());
        out.extend_from_slice(b", \"dtype\": ");
        push_str(out, format!("torch.{}", dtype_text(d.dtype)).as_bytes());
        out.extend_from_slice(b", \"dlpack_dtype\": ");
        push_ints(out, &[d.dtype.code as i64, d.dtype.bits as i64, d.dtype.lanes as i64]);
        if let Some((name, _)) = st_dtype(d.dtype) {
            out.extend_from_slice(b", \"safetensors_dtype\": ");
            push_str(out, name.as_bytes());
        }
        out.extend_from_slice(b", \"device\": ");
        push_str(out, device_text(d.device).as_bytes());
        out.extend_from_slice(b", \"device_type\": ");
        push_int(out, d.device.device_type);
        out.extend_from_slice(b", \"device_id\": ");
        push_int(out, d.device.device_id);
        out.extend_from_slice(b", \"byte_offset\": ");
        push_int(out, d.byte_offset);
        out.extend_from_slice(b", \"size_bytes\": ");
        push_int(out, t.nbytes());
    }
    out.extend_from_slice(b", \"dumped\": ");
    match t.not_dumped {
        None => out.extend_from_slice(b"true"),
        Some(reason) => {
            out.extend_from_slice(b"false, \"reason\": ");
            push_str(out, reason.as_bytes());
        }
    }
    out.push(b'}');
}
