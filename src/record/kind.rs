//! What a TVM-FFI value is: the one switch over its type index, which both printers of values match on, the
//! record's text ([`super::value`]) and the level-10 dump's JSON of arguments (`crate::dump::args`). Pure apart
//! from the fault-tolerant reads that follow an object reference and a Shape object's dimensions.

use crate::abi::dlpack::{self, DataType, Device, TensorDesc};
use crate::abi::ffi::{self, type_index as ti, ByteArray, FfiAny};
use crate::abi::prefetch::Prefetch;
use crate::os::mem;

/// The object type indices every TVM-FFI runtime registers statically (Object 64 to BigInt 78): the only ones
/// the runtime is asked to name (the real `TVMFFIGetTypeInfo` exits the process for an index nobody
/// registered, and a corrupt object can claim any index).
pub const STATIC_TYPES: std::ops::RangeInclusive<i32> = 64..=78;
/// Most dimensions of a Shape object read.
pub const MAX_SHAPE: usize = 64;

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
/// indirection (the type index then comes from the object's header).
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

/// A TVM-FFI value by kind, in the order the printers test them (a tensor first).
pub enum Value {
    /// A tensor (7, 70, or a reference to a Tensor object).
    Tensor(TensorSource),
    /// None, or a null opaque pointer.
    None,
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A float.
    Float(f64),
    /// A non-null opaque pointer.
    OpaquePtr(u64),
    /// A DLPack data type.
    DataType(DataType),
    /// A DLPack device.
    Device(Device),
    /// A `const char*` at this address.
    RawStr(usize),
    /// A `TVMFFIByteArray*` at this address.
    ByteArrayPtr(usize),
    /// A small string (`text`) or byte string held inline: its bytes.
    Small {
        /// The inline bytes (the first `len` count).
        bytes: [u8; 8],
        /// How many of them (at most 7).
        len: usize,
        /// A string, else a byte string.
        text: bool,
    },
    /// The "unchanged" marker (13).
    Unchanged,
    /// A type index below the objects that no printer knows.
    Unknown(i32),
    /// An object other than a tensor: its address (may be null), type index and kind.
    Object {
        /// The object's address.
        obj: usize,
        /// Its type index.
        type_index: i32,
        /// What the printers make of it.
        kind: ObjectKind,
    },
    /// An ObjectRValueRef whose object could not be read.
    UnreadableReference,
}

/// An object by kind.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A String object (65).
    Str,
    /// A Bytes object (66).
    Bytes,
    /// A Shape object (69).
    Shape,
    /// An Array (71) or a List (75).
    Seq,
    /// A Map (72) or a Dict (76).
    Map,
    /// Any other object: named by its type key.
    Other,
}

/// The one switch over a value's type index.
pub fn classify(value: &FfiAny) -> Value {
    if let Some(t) = tensor_source(value) {
        return Value::Tensor(t);
    }
    let b = value.inline_bytes();
    match value.type_index {
        ti::NONE => Value::None,
        ti::INT => Value::Int(value.as_i64()),
        ti::BOOL => Value::Bool(value.payload != 0),
        ti::FLOAT => Value::Float(value.as_f64()),
        ti::OPAQUE_PTR if value.payload == 0 => Value::None,
        ti::OPAQUE_PTR => Value::OpaquePtr(value.payload),
        ti::DATA_TYPE => Value::DataType(DataType { code: b[0], bits: b[1], lanes: u16::from_le_bytes([b[2], b[3]]) }),
        ti::DEVICE => Value::Device(Device {
            device_type: i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            device_id: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }),
        ti::RAW_STR => Value::RawStr(value.as_addr()),
        ti::BYTE_ARRAY_PTR => Value::ByteArrayPtr(value.as_addr()),
        ti::SMALL_STR | ti::SMALL_BYTES => {
            Value::Small { bytes: b, len: (value.small_len as usize).min(7), text: value.type_index == ti::SMALL_STR }
        }
        ti::UNCHANGED => Value::Unchanged,
        t if t < ti::STATIC_OBJECT_BEGIN && t != ti::OBJECT_RVALUE_REF => Value::Unknown(t),
        _ => match object_of(value) {
            Some((obj, type_index)) => Value::Object { obj, type_index, kind: object_kind(type_index) },
            None => Value::UnreadableReference,
        },
    }
}

/// The kind of an object of type index `t`.
pub fn object_kind(t: i32) -> ObjectKind {
    match t {
        ti::STR => ObjectKind::Str,
        ti::BYTES => ObjectKind::Bytes,
        ti::SHAPE => ObjectKind::Shape,
        ti::ARRAY | ti::LIST => ObjectKind::Seq,
        ti::MAP | ti::DICT => ObjectKind::Map,
        _ => ObjectKind::Other,
    }
}

/// Why a Shape object's dimensions were not read.
pub enum ShapeError {
    /// The object's payload could not be read: the reason.
    Object(&'static str),
    /// More than [`MAX_SHAPE`] dimensions.
    TooMany,
    /// The dimensions could not be read: the reason.
    Dims(&'static str),
}

/// The dimensions of the Shape object at `obj` (the first `n` of the array).
pub fn read_shape(obj: usize) -> Result<([i64; MAX_SHAPE], usize), ShapeError> {
    let shape = ffi::read_object_payload::<ByteArray>(obj).map_err(ShapeError::Object)?;
    if shape.size > MAX_SHAPE {
        return Err(ShapeError::TooMany);
    }
    let mut dims = [0i64; MAX_SHAPE];
    mem::read_i64s(shape.data, &mut dims[..shape.size]).map_err(ShapeError::Dims)?;
    Ok((dims, shape.size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(type_index: i32, small_len: u32, payload: u64) -> FfiAny {
        FfiAny { type_index, small_len, payload }
    }

    #[test]
    fn inline_values_by_kind() {
        assert!(matches!(classify(&any(ti::NONE, 0, 0)), Value::None));
        assert!(matches!(classify(&any(ti::OPAQUE_PTR, 0, 0)), Value::None));
        assert!(matches!(classify(&any(ti::OPAQUE_PTR, 0, 0x10)), Value::OpaquePtr(0x10)));
        assert!(matches!(classify(&any(ti::INT, 0, -3i64 as u64)), Value::Int(-3)));
        assert!(matches!(classify(&any(ti::BOOL, 0, 2)), Value::Bool(true)));
        assert!(matches!(classify(&any(ti::FLOAT, 0, 1.5f64.to_bits())), Value::Float(f) if f == 1.5));
        let dt = classify(&any(ti::DATA_TYPE, 0, u64::from_le_bytes([2, 16, 1, 0, 0, 0, 0, 0])));
        assert!(matches!(dt, Value::DataType(DataType { code: 2, bits: 16, lanes: 1 })));
        let dev = classify(&any(ti::DEVICE, 0, u64::from_le_bytes([2, 0, 0, 0, 3, 0, 0, 0])));
        assert!(matches!(dev, Value::Device(Device { device_type: 2, device_id: 3 })));
        let small = classify(&any(ti::SMALL_BYTES, 99, u64::from_le_bytes(*b"abcdefg\0")));
        assert!(matches!(small, Value::Small { len: 7, text: false, .. }));
        assert!(matches!(classify(&any(ti::DL_TENSOR_PTR, 0, 0x40)), Value::Tensor(TensorSource::DlTensorPtr(0x40))));
        assert!(matches!(classify(&any(ti::UNCHANGED, 0, 0)), Value::Unchanged));
        assert!(matches!(classify(&any(12345 % 64, 0, 0)), Value::Unknown(57)));
    }

    #[test]
    fn objects_by_kind() {
        let null_shape = classify(&any(ti::SHAPE, 0, 0));
        assert!(matches!(null_shape, Value::Object { obj: 0, type_index: ti::SHAPE, kind: ObjectKind::Shape }));
        assert!(object_kind(ti::LIST) == ObjectKind::Seq && object_kind(ti::DICT) == ObjectKind::Map);
        assert!(object_kind(ti::FUNCTION) == ObjectKind::Other);
        assert!(matches!(classify(&any(ti::TENSOR, 0, 0)), Value::Tensor(TensorSource::Object(0))));
    }
}
