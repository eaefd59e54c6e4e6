//! Mirrors of DLPack's `DLTensor`, `DLDataType` and `DLDevice`, and the safe reader that turns a host
//! `DLTensor*` into a [`TensorDesc`]. The layout is `dlpack/dlpack.h`'s (DLPack 1.x), checked by the tests below.

use crate::os::mem::{read_i64s, read_pod, ReadError};

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

/// Dimensions stored inline in a [`TensorDesc`]; larger tensors (rare) keep theirs on the heap.
const INLINE_NDIM: usize = 8;

/// A tensor descriptor copied out of host memory and checked: shape and strides are owned, strides are
/// filled in (compact row-major) when the host passed none. Small (about 200 bytes) so it moves cheaply.
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
    /// Shape then strides, for `ndim <= 8`.
    inline: [i64; 2 * INLINE_NDIM],
    /// Shape then strides, for `ndim > 8`.
    heap: Option<Box<[i64]>>,
}

impl TensorDesc {
    /// A descriptor with `ndim` zeroed dimensions, to be filled through [`TensorDesc::dims_mut`].
    pub fn new(data: usize, byte_offset: u64, device: Device, dtype: DataType, ndim: usize) -> TensorDesc {
        let heap = (ndim > INLINE_NDIM).then(|| vec![0i64; 2 * ndim].into_boxed_slice());
        TensorDesc { data, byte_offset, device, dtype, ndim, inline: [0; 2 * INLINE_NDIM], heap }
    }
    /// The sizes.
    pub fn shape(&self) -> &[i64] {
        match &self.heap {
            Some(h) => &h[..self.ndim],
            None => &self.inline[..self.ndim],
        }
    }
    /// The strides (in elements).
    pub fn strides(&self) -> &[i64] {
        match &self.heap {
            Some(h) => &h[self.ndim..2 * self.ndim],
            None => &self.inline[INLINE_NDIM..INLINE_NDIM + self.ndim],
        }
    }
    /// Sizes and strides, mutable.
    pub fn dims_mut(&mut self) -> (&mut [i64], &mut [i64]) {
        let n = self.ndim;
        match &mut self.heap {
            Some(h) => h.split_at_mut(n),
            None => {
                let (shape, strides) = self.inline.split_at_mut(INLINE_NDIM);
                (&mut shape[..n], &mut strides[..n])
            }
        }
    }
    /// Address of the first element (`data + byte_offset`).
    pub fn first_element(&self) -> usize {
        self.data.wrapping_add(self.byte_offset as usize)
    }
    /// Number of elements (1 for a 0-d tensor, 0 when any size is 0).
    pub fn numel(&self) -> u128 {
        // Saturating: 64 sizes of up to 2^63 could overflow even u128 (then the count is only compared).
        self.shape().iter().try_fold(1u128, |acc, &s| acc.checked_mul(s.max(0) as u128)).unwrap_or(u128::MAX)
    }
}

/// Why a descriptor whose `data + byte_offset` wraps the address space is invalid.
pub const OFFSET_OVERFLOW: ReadError = "byte_offset overflows the address";
/// Why a descriptor whose elements would reach past either end of the address space is invalid.
pub const SPAN_OVERFLOW: ReadError = "view overflows the address space";

/// Reads and checks the `DLTensor` at `addr`: null pointers, `ndim` outside `0..=64`, negative sizes,
/// unreadable shape or strides arrays, and views whose first element (`data + byte_offset`) or whose span
/// wraps the address space are reported as errors, never dereferenced.
pub fn read_tensor(addr: usize) -> Result<TensorDesc, ReadError> {
    if addr == 0 {
        return Err("null DLTensor pointer");
    }
    let raw: RawDlTensor = read_pod(addr).map_err(|_| "unreadable DLTensor")?;
    desc_from_raw(&raw)
}

/// Checks a raw descriptor and copies its shape and strides out of host memory.
pub fn desc_from_raw(raw: &RawDlTensor) -> Result<TensorDesc, ReadError> {
    desc_with_dims(raw, |shape, strides| {
        read_i64s(raw.shape, shape).map_err(|_| "unreadable shape")?;
        if raw.strides != 0 {
            read_i64s(raw.strides, strides).map_err(|_| "unreadable strides")?;
        }
        Ok(())
    })
}

/// Checks `raw` and builds its descriptor, taking shape (and strides, when `raw.strides` is not null) from
/// `fill`; fills compact strides otherwise.
pub(super) fn desc_with_dims(
    raw: &RawDlTensor,
    fill: impl FnOnce(&mut [i64], &mut [i64]) -> Result<(), ReadError>,
) -> Result<TensorDesc, ReadError> {
    if raw.ndim < 0 || raw.ndim as usize > MAX_NDIM {
        return Err("ndim out of range");
    }
    let ndim = raw.ndim as usize;
    let first = (raw.data as u64).checked_add(raw.byte_offset).filter(|&a| a <= usize::MAX as u64);
    let Some(first) = first else {
        return Err(OFFSET_OVERFLOW);
    };
    let mut desc = TensorDesc::new(raw.data, raw.byte_offset, raw.device, raw.dtype, ndim);
    if ndim > 0 {
        if raw.shape == 0 {
            return Err("null shape");
        }
        let (shape, strides) = desc.dims_mut();
        fill(shape, strides)?;
        if shape.iter().any(|&s| s < 0) {
            return Err("negative size");
        }
        if raw.strides == 0 {
            fill_compact_strides(shape, strides);
        }
        if !span_fits(first, elem_bytes(raw.dtype), shape, strides) {
            return Err(SPAN_OVERFLOW);
        }
    }
    Ok(desc)
}

/// Bytes of one element as stored (at least 1; packed sub-byte types round up).
pub fn elem_bytes(dtype: DataType) -> u64 {
    ((dtype.bits as u64 * dtype.lanes as u64).div_ceil(8)).max(1)
}

/// Whether every element of a view with its first element at `first` lies inside the address space (an
/// empty view has no elements and always fits). Exact: offsets are summed in i128, which cannot overflow
/// for 64 dimensions of i64 sizes and strides.
pub fn span_fits(first: u64, elem_bytes: u64, shape: &[i64], strides: &[i64]) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let (mut lo, mut hi) = (0i128, 0i128);
    for (&n, &s) in shape.iter().zip(strides) {
        let reach = (n as i128 - 1) * s as i128;
        if reach < 0 {
            lo += reach;
        } else {
            hi += reach;
        }
    }
    let eb = elem_bytes as i128;
    let start = first as i128 + lo * eb;
    let end = first as i128 + hi * eb + eb;
    start >= 0 && end <= 1i128 << 64
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
pub(crate) mod tests {
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

    /// A float32 CPU descriptor over `shape` (and `strides`, or null), data at 0x1000 (also for the
    /// prefetch tests).
    pub(crate) fn raw(ndim: i32, shape: &[i64], strides: Option<&[i64]>) -> RawDlTensor {
        RawDlTensor {
            data: 0x1000,
            device: Device { device_type: 1, device_id: 0 },
            ndim,
            dtype: DataType { code: 2, bits: 32, lanes: 1 },
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
        assert_eq!(desc_from_raw(&raw(1000, &shape, None)).unwrap_err(), "ndim out of range");
        assert_eq!(desc_from_raw(&raw(-1, &shape, None)).unwrap_err(), "ndim out of range");
        let mut r = raw(2, &shape, None);
        r.shape = 0;
        assert_eq!(desc_from_raw(&r).unwrap_err(), "null shape");
        r.shape = 16;
        assert_eq!(desc_from_raw(&r).unwrap_err(), "unreadable shape");
        assert_eq!(read_tensor(0).unwrap_err(), "null DLTensor pointer");
    }

    #[test]
    fn offsets_and_spans_that_wrap_are_invalid() {
        let shape = [4i64];
        let mut r = raw(1, &shape, None);
        r.byte_offset = u64::MAX - 8;
        assert_eq!(desc_from_raw(&r).unwrap_err(), OFFSET_OVERFLOW);
        r.data = 0;
        r.byte_offset = u64::MAX - 8;
        // data 0 + offset: the first element is at the top of the space, 4 float32 reach past it.
        assert_eq!(desc_from_raw(&r).unwrap_err(), SPAN_OVERFLOW);
        let big = [1i64 << 62];
        let mut r = raw(1, &big, None);
        r.data = 0x1000;
        assert_eq!(desc_from_raw(&r).unwrap_err(), SPAN_OVERFLOW);
        let back = [-1i64];
        let two = [2i64];
        let r = raw(1, &two, Some(&back));
        assert!(desc_from_raw(&r).is_ok());
        let far_back = [-(1i64 << 40)];
        assert_eq!(desc_from_raw(&raw(1, &two, Some(&far_back))).unwrap_err(), SPAN_OVERFLOW);
        // Broadcast of a huge shape fits; an empty one always does.
        let huge = [1i64 << 40, 1 << 20];
        let zeros = [0i64, 1];
        assert!(desc_from_raw(&raw(2, &huge, Some(&zeros))).is_ok());
        let empty = [0i64, i64::MAX];
        assert!(desc_from_raw(&raw(2, &empty, None)).is_ok());
        let many = [i64::MAX; 64];
        let mut d = TensorDesc::new(0, 0, Device::default(), DataType::default(), 64);
        d.dims_mut().0.copy_from_slice(&many);
        assert_eq!(d.numel(), u128::MAX);
    }

    #[test]
    fn zero_d_needs_no_shape() {
        let mut r = raw(0, &[], None);
        r.shape = 0;
        let d = desc_from_raw(&r).unwrap();
        assert_eq!(d.numel(), 1);
    }
}
