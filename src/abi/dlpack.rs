//! Mirrors of DLPack's `DLTensor`, `DLDataType` and `DLDevice`, and the safe reader that turns a host
//! `DLTensor*` into a [`TensorDesc`]. See `ABI-FACTS.md` section 3.

use super::mem::{read_batch, read_i64s, read_pod, ReadError};
use std::mem::size_of;

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
fn desc_with_dims(
    raw: &RawDlTensor,
    fill: impl FnOnce(&mut [i64], &mut [i64]) -> Result<(), ReadError>,
) -> Result<TensorDesc, ReadError> {
    if raw.ndim < 0 || raw.ndim as usize > MAX_NDIM {
        return Err("ndim out of range");
    }
    let ndim = raw.ndim as usize;
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

/// Tensors a [`Prefetch`] holds.
const PREFETCH_TENSORS: usize = 16;
/// Dimensions a [`Prefetch`] reads in its batch; larger tensors are read on their own.
const PREFETCH_NDIM: usize = 8;

/// The descriptors (and shapes and strides) of a call's tensor arguments, read with two batched system
/// calls instead of two or three per tensor. Lives on the stack of the wrapper (about 3 KiB).
pub struct Prefetch {
    len: usize,
    addrs: [usize; PREFETCH_TENSORS],
    raws: [RawDlTensor; PREFETCH_TENSORS],
    raw_ok: [bool; PREFETCH_TENSORS],
    dims: [[i64; 2 * PREFETCH_NDIM]; PREFETCH_TENSORS],
    dims_ok: [bool; PREFETCH_TENSORS],
}

impl Prefetch {
    /// Reads the `DLTensor`s at `addrs` (the first 16), then their shapes and strides when `ndim <= 8`.
    pub fn read(addrs: impl Iterator<Item = usize>) -> Prefetch {
        let zero = RawDlTensor {
            data: 0,
            device: Device::default(),
            ndim: 0,
            dtype: DataType::default(),
            shape: 0,
            strides: 0,
            byte_offset: 0,
        };
        let mut p = Prefetch {
            len: 0,
            addrs: [0; PREFETCH_TENSORS],
            raws: [zero; PREFETCH_TENSORS],
            raw_ok: [false; PREFETCH_TENSORS],
            dims: [[0; 2 * PREFETCH_NDIM]; PREFETCH_TENSORS],
            dims_ok: [false; PREFETCH_TENSORS],
        };
        for a in addrs.take(PREFETCH_TENSORS) {
            p.addrs[p.len] = a;
            p.len += 1;
        }
        {
            let mut ranges: [(usize, &mut [u8]); PREFETCH_TENSORS] = Default::default();
            for (i, raw) in p.raws[..p.len].iter_mut().enumerate() {
                ranges[i] = (p.addrs[i], as_bytes_mut(raw));
            }
            read_batch(&mut ranges[..p.len], &mut p.raw_ok[..p.len]);
        }
        // Shapes and strides of small, sane descriptors: one more batch (two ranges per tensor at most).
        let mut ranges: [(usize, &mut [u8]); 2 * PREFETCH_TENSORS] = Default::default();
        let mut owner = [0usize; 2 * PREFETCH_TENSORS];
        let mut n = 0;
        for (i, dims) in p.dims[..p.len].iter_mut().enumerate() {
            let raw = &p.raws[i];
            if !p.raw_ok[i] || raw.ndim <= 0 || raw.ndim as usize > PREFETCH_NDIM || raw.shape == 0 {
                continue;
            }
            let nd = raw.ndim as usize;
            let (shape, strides) = dims.split_at_mut(PREFETCH_NDIM);
            ranges[n] = (raw.shape, as_i64_bytes_mut(&mut shape[..nd]));
            owner[n] = i;
            n += 1;
            if raw.strides != 0 {
                ranges[n] = (raw.strides, as_i64_bytes_mut(&mut strides[..nd]));
                owner[n] = i;
                n += 1;
            }
        }
        let mut ok = [false; 2 * PREFETCH_TENSORS];
        read_batch(&mut ranges[..n], &mut ok[..n]);
        for i in 0..p.len {
            p.dims_ok[i] = true;
        }
        for k in 0..n {
            if !ok[k] {
                p.dims_ok[owner[k]] = false;
            }
        }
        p
    }

    /// The checked descriptor of the `DLTensor` at `addr`: from the batch when it was prefetched, else read
    /// on its own.
    pub fn tensor(&self, addr: usize) -> Result<TensorDesc, ReadError> {
        let Some(i) = self.addrs[..self.len].iter().position(|&a| a == addr) else {
            return read_tensor(addr);
        };
        if addr == 0 {
            return Err("null DLTensor pointer");
        }
        if !self.raw_ok[i] {
            return Err("unreadable DLTensor");
        }
        let raw = &self.raws[i];
        let nd = raw.ndim;
        if nd <= 0 || nd as usize > PREFETCH_NDIM || raw.shape == 0 || !self.dims_ok[i] {
            // Outside the batched fast path (0-d, large, null or unreadable arrays): the full checks.
            return desc_from_raw(raw);
        }
        let nd = nd as usize;
        let dims = &self.dims[i];
        desc_with_dims(raw, |shape, strides| {
            shape.copy_from_slice(&dims[..nd]);
            strides.copy_from_slice(&dims[PREFETCH_NDIM..PREFETCH_NDIM + nd]);
            Ok(())
        })
    }
}

fn as_bytes_mut(raw: &mut RawDlTensor) -> &mut [u8] {
    // SAFETY: RawDlTensor is plain old data; any byte pattern is a valid value.
    unsafe { std::slice::from_raw_parts_mut((raw as *mut RawDlTensor).cast::<u8>(), size_of::<RawDlTensor>()) }
}

fn as_i64_bytes_mut(v: &mut [i64]) -> &mut [u8] {
    // SAFETY: any byte pattern is a valid i64.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
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
    fn prefetch_matches_single_reads() {
        let shape = [4i64, 128];
        let strides = [1i64, 4];
        let good = raw(2, &shape, Some(&strides));
        let bad_shape = RawDlTensor { shape: 16, ..raw(2, &shape, None) };
        let big = raw(1000, &shape, None);
        let addrs = [&good as *const _ as usize, 8, &bad_shape as *const _ as usize, &big as *const _ as usize, 0];
        let p = Prefetch::read(addrs.iter().copied());
        for &a in &addrs {
            let batched = p.tensor(a).map(|d| (d.shape().to_vec(), d.strides().to_vec()));
            let single = read_tensor(a).map(|d| (d.shape().to_vec(), d.strides().to_vec()));
            assert_eq!(batched, single, "address {a:#x}");
        }
        assert_eq!(p.tensor(addrs[0]).unwrap().strides(), &[1, 4]);
    }

    #[test]
    fn zero_d_needs_no_shape() {
        let mut r = raw(0, &[], None);
        r.shape = 0;
        let d = desc_from_raw(&r).unwrap();
        assert_eq!(d.numel(), 1);
    }
}
