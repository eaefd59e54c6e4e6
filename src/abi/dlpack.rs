//! Mirrors of DLPack's `DLTensor`, `DLDataType` and `DLDevice`, and the safe reader that turns a host
//! `DLTensor*` into a [`TensorDesc`]. See `ABI-FACTS.md` section 3.

use super::mem::{read_i64s, read_pod, ReadError};

/// Largest `ndim` the shim accepts; larger descriptors are reported as invalid, never read.
pub const MAX_NDIM: usize = 64;

/// `DLDataType`: type code, bits per lane, lanes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataType {
    /// `DLDataTypeCode`.
    pub code: u8,
    /// Bits per lane.
    pub bits: u8,
    /// Lanes per element.
    pub lanes: u16,
}

/// `DLDevice`: device type and ordinal.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// `DLDeviceType` (CPU 1, CUDA 2, ...).
    pub device_type: i32,
    /// Device ordinal.
    pub device_id: i32,
}

/// DLPack device types the shim treats specially.
pub mod device_type {
    #![allow(missing_docs)]
    pub const CPU: i32 = 1;
    pub const CUDA: i32 = 2;
    pub const CUDA_HOST: i32 = 3;
    pub const ROCM_HOST: i32 = 11;
    pub const CUDA_MANAGED: i32 = 13;
}

/// `DLTensor`, 48 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawDlTensor {
    /// Base data pointer.
    pub data: usize,
    /// Where the data lives.
    pub device: Device,
    /// Number of dimensions.
    pub ndim: i32,
    /// Element type.
    pub dtype: DataType,
    /// `int64_t*` shape.
    pub shape: usize,
    /// `int64_t*` strides in elements, or null for compact row-major.
    pub strides: usize,
    /// Offset in bytes from `data` to the first element.
    pub byte_offset: u64,
}

/// A tensor descriptor copied out of host memory and checked: shape and strides are owned, strides are
/// filled in (compact row-major) when the host passed none.
#[derive(Clone, Debug)]
pub struct TensorDesc {
    /// Base data pointer.
    pub data: usize,
    /// Offset in bytes to the first element.
    pub byte_offset: u64,
    /// Device.
    pub device: Device,
    /// Element type.
    pub dtype: DataType,
    /// Number of dimensions (at most [`MAX_NDIM`]).
    pub ndim: usize,
    /// Sizes; only the first `ndim` are meaningful.
    pub shape: [i64; MAX_NDIM],
    /// Strides in elements; only the first `ndim` are meaningful.
    pub strides: [i64; MAX_NDIM],
}

impl TensorDesc {
    /// The meaningful sizes.
    pub fn shape(&self) -> &[i64] {
        &self.shape[..self.ndim]
    }
    /// The meaningful strides (in elements).
    pub fn strides(&self) -> &[i64] {
        &self.strides[..self.ndim]
    }
    /// Address of the first element (`data + byte_offset`).
    pub fn first_element(&self) -> usize {
        self.data.wrapping_add(self.byte_offset as usize)
    }
    /// Number of elements (1 for a 0-d tensor, 0 when any size is 0).
    pub fn numel(&self) -> u128 {
        self.shape().iter().map(|&s| s.max(0) as u128).product()
    }
}

/// Reads and checks the `DLTensor` at `addr`: null pointers, `ndim` outside `0..=64`, negative sizes and
/// unreadable shape or strides arrays are reported as errors, never dereferenced.
pub fn read_tensor(addr: usize) -> Result<TensorDesc, ReadError> {
    if addr == 0 {
        return Err("null DLTensor pointer");
    }
    let raw: RawDlTensor = read_pod(addr).map_err(|_| "unreadable DLTensor")?;
    desc_from_raw(&raw)
}

/// Checks a raw descriptor and copies its shape and strides out of host memory.
pub fn desc_from_raw(raw: &RawDlTensor) -> Result<TensorDesc, ReadError> {
    if raw.ndim < 0 || raw.ndim as usize > MAX_NDIM {
        return Err("ndim out of range");
    }
    let ndim = raw.ndim as usize;
    let mut desc = TensorDesc {
        data: raw.data,
        byte_offset: raw.byte_offset,
        device: raw.device,
        dtype: raw.dtype,
        ndim,
        shape: [0; MAX_NDIM],
        strides: [0; MAX_NDIM],
    };
    if ndim > 0 {
        if raw.shape == 0 {
            return Err("null shape");
        }
        read_i64s(raw.shape, &mut desc.shape[..ndim]).map_err(|_| "unreadable shape")?;
        if desc.shape().iter().any(|&s| s < 0) {
            return Err("negative size");
        }
        if raw.strides == 0 {
            fill_compact_strides(&desc.shape[..ndim], &mut desc.strides[..ndim]);
        } else {
            read_i64s(raw.strides, &mut desc.strides[..ndim]).map_err(|_| "unreadable strides")?;
        }
    }
    Ok(desc)
}

/// Fills `strides` with the compact row-major strides of `shape` (what a null `strides` pointer means).
pub fn fill_compact_strides(shape: &[i64], strides: &mut [i64]) {
    let mut step = 1i64;
    for (size, stride) in shape.iter().zip(strides.iter_mut()).rev() {
        *stride = step;
        step = step.saturating_mul((*size).max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layout_matches_dlpack_h() {
        assert_eq!(size_of::<RawDlTensor>(), 48);
        assert_eq!(offset_of!(RawDlTensor, device), 8);
        assert_eq!(offset_of!(RawDlTensor, ndim), 16);
        assert_eq!(offset_of!(RawDlTensor, dtype), 20);
        assert_eq!(offset_of!(RawDlTensor, shape), 24);
        assert_eq!(offset_of!(RawDlTensor, strides), 32);
        assert_eq!(offset_of!(RawDlTensor, byte_offset), 40);
    }

    fn raw(ndim: i32, shape: &[i64], strides: Option<&[i64]>) -> RawDlTensor {
        RawDlTensor {
            data: 0x1000,
            device: Device {
                device_type: 1,
                device_id: 0,
            },
            ndim,
            dtype: DataType {
                code: 2,
                bits: 32,
                lanes: 1,
            },
            shape: shape.as_ptr() as usize,
            strides: strides.map_or(0, |s| s.as_ptr() as usize),
            byte_offset: 0,
        }
    }

    #[test]
    fn null_strides_become_row_major() {
        let shape = [2i64, 3, 4];
        let d = desc_from_raw(&raw(3, &shape, None)).unwrap();
        assert_eq!(d.strides(), &[12, 4, 1]);
        assert_eq!(d.numel(), 24);
    }

    #[test]
    fn rejects_bad_descriptors() {
        let shape = [2i64];
        assert_eq!(
            desc_from_raw(&raw(1000, &shape, None)).unwrap_err(),
            "ndim out of range"
        );
        assert_eq!(
            desc_from_raw(&raw(-1, &shape, None)).unwrap_err(),
            "ndim out of range"
        );
        let mut r = raw(2, &shape, None);
        r.shape = 0;
        assert_eq!(desc_from_raw(&r).unwrap_err(), "null shape");
        r.shape = 16;
        assert_eq!(desc_from_raw(&r).unwrap_err(), "unreadable shape");
        assert_eq!(read_tensor(0).unwrap_err(), "null DLTensor pointer");
    }

    #[test]
    fn zero_d_needs_no_shape() {
        let mut r = raw(0, &[], None);
        r.shape = 0;
        let d = desc_from_raw(&r).unwrap();
        assert_eq!(d.numel(), 1);
    }
}
