//! Mirrors of the TVM-FFI C ABI (`tvm/ffi/c_api.h`, stable from 0.1.0 to 0.1.16) and safe readers for the
//! values a safe call receives. The layouts are those of TVM-FFI's `tvm/ffi/c_api.h` (stable from 0.1.0 on), checked by the tests below.

use crate::os::mem::{read_pod, ReadError};
use std::ffi::c_void;

/// A TVM-FFI safe-call function: `int f(void* self, const TVMFFIAny* args, int32_t num_args, TVMFFIAny* result)`.
pub type SafeCallFn = unsafe extern "C" fn(*mut c_void, *const FfiAny, i32, *mut FfiAny) -> i32;

/// `TVMFFIAny`: 16 bytes, a type index, a small-string length and an 8-byte payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FfiAny {
    /// One of the [`type_index`] constants, or an object type index (>= 64).
    pub type_index: i32,
    /// Length of `SmallStr` / `SmallBytes` payloads; zero padding otherwise.
    pub small_len: u32,
    /// The payload, read according to `type_index`.
    pub payload: u64,
}

impl FfiAny {
    /// The payload as an `int64`.
    pub fn as_i64(&self) -> i64 {
        self.payload as i64
    }
    /// The payload as a `double`.
    pub fn as_f64(&self) -> f64 {
        f64::from_bits(self.payload)
    }
    /// The payload as a pointer-sized address.
    pub fn as_addr(&self) -> usize {
        self.payload as usize
    }
    /// The payload's inline bytes (`SmallStr`, `SmallBytes`: at most 7 meaningful bytes).
    pub fn inline_bytes(&self) -> [u8; 8] {
        self.payload.to_le_bytes()
    }
}

/// The type indices of `TVMFFITypeIndex`: the whole enum, as the ABI defines it, though the shim names only
/// some of them.
pub mod type_index {
    #![allow(missing_docs, dead_code)]
    pub const NONE: i32 = 0;
    pub const INT: i32 = 1;
    pub const BOOL: i32 = 2;
    pub const FLOAT: i32 = 3;
    pub const OPAQUE_PTR: i32 = 4;
    pub const DATA_TYPE: i32 = 5;
    pub const DEVICE: i32 = 6;
    pub const DL_TENSOR_PTR: i32 = 7;
    pub const RAW_STR: i32 = 8;
    pub const BYTE_ARRAY_PTR: i32 = 9;
    pub const OBJECT_RVALUE_REF: i32 = 10;
    pub const SMALL_STR: i32 = 11;
    pub const SMALL_BYTES: i32 = 12;
    pub const UNCHANGED: i32 = 13;
    pub const STATIC_OBJECT_BEGIN: i32 = 64;
    pub const OBJECT: i32 = 64;
    pub const STR: i32 = 65;
    pub const BYTES: i32 = 66;
    pub const ERROR: i32 = 67;
    pub const FUNCTION: i32 = 68;
    pub const SHAPE: i32 = 69;
    pub const TENSOR: i32 = 70;
    pub const ARRAY: i32 = 71;
    pub const MAP: i32 = 72;
    pub const MODULE: i32 = 73;
    pub const OPAQUE_PY_OBJECT: i32 = 74;
    pub const LIST: i32 = 75;
    pub const DICT: i32 = 76;
}

/// Size of the `TVMFFIObject` header; every object's payload starts this many bytes after the object.
pub const OBJECT_HEADER_SIZE: usize = 24;

/// `TVMFFIObject`: the header of every reference-counted object.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ObjectHeader {
    /// Strong and weak reference counts.
    pub combined_ref_count: u64,
    /// The object's type index.
    pub type_index: i32,
    /// Padding.
    pub pad: u32,
    /// The deleter.
    pub deleter: usize,
}

/// `TVMFFIByteArray` (and the payload of Str and Bytes objects): `{const char* data; size_t size}`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ByteArray {
    /// Address of the first byte.
    pub data: usize,
    /// Number of bytes.
    pub size: usize,
}

/// The payload of Array and List objects: `{TVMFFIAny* data; int64 size; int64 capacity; deleter}`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SeqPayload {
    /// Address of the first item.
    pub data: usize,
    /// Number of items.
    pub size: i64,
    /// Allocated items.
    pub capacity: i64,
}

/// The start of `TVMFFIErrorCell`, the payload of an Error object.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ErrorCell {
    /// The error kind, e.g. `ValueError`.
    pub kind: ByteArray,
    /// The message.
    pub message: ByteArray,
    /// The backtrace.
    pub backtrace: ByteArray,
}

/// The start of `TVMFFITypeInfo`, as returned by `TVMFFIGetTypeInfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TypeInfoHead {
    /// The type index.
    pub type_index: i32,
    /// Depth in the type hierarchy.
    pub type_depth: i32,
    /// The type key, e.g. `ffi.Function`.
    pub type_key: ByteArray,
}

/// Reads the header of the object at `obj`.
pub fn read_object_header(obj: usize) -> Result<ObjectHeader, ReadError> {
    read_pod(obj)
}

/// Reads the payload of type `T` that follows the header of the object at `obj`.
pub fn read_object_payload<T: Copy>(obj: usize) -> Result<T, ReadError> {
    if obj == 0 {
        return Err("null object");
    }
    read_pod(obj.checked_add(OBJECT_HEADER_SIZE).ok_or("object address overflows")?)
}

/// Reads the `i`-th `TVMFFIAny` of an array starting at `data`.
pub fn read_any_at(data: usize, i: usize) -> Result<FfiAny, ReadError> {
    let at = i.checked_mul(std::mem::size_of::<FfiAny>()).and_then(|off| data.checked_add(off));
    read_pod(at.ok_or("item address overflows")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_the_c_headers() {
        assert_eq!(size_of::<FfiAny>(), 16);
        assert_eq!(offset_of!(FfiAny, payload), 8);
        assert_eq!(size_of::<ObjectHeader>(), OBJECT_HEADER_SIZE);
        assert_eq!(offset_of!(ErrorCell, message), 16);
        assert_eq!(offset_of!(ErrorCell, backtrace), 32);
        assert_eq!(offset_of!(TypeInfoHead, type_key), 8);
    }
}
