//! The one byte source of tensor memory, for level-5 statistics, level-10 dumps and graph replay: which device
//! types the host's own threads can read ([`host_readable`]), the bytes a view spans ([`view_span`], and
//! [`reach`] for a strided block), host memory through the fault-tolerant copy ([`HostMemory`]), device memory
//! through the host program's driver ([`DeviceMemory`]), and a phase's streams, each synchronised once under the
//! capture gate before its tensors are read ([`PhaseStreams::open`]). Fixed-size state: nothing here allocates.

use super::compute::ElemKind;
use super::gate::{self, Blocked, Relaxed};
use super::walk::ByteSource;
use crate::abi::cuda_driver::{self, Driver};
use crate::abi::dlpack::{device_type, Device, TensorDesc};
use crate::abi::tvm_runtime;
use crate::os::mem;

/// Whether this device type's memory is host memory, readable by the host's own threads (plain, page-locked,
/// managed and ROCm host memory): the statistics of a call, its dump and the host functions of graph replay
/// read it with the fault-tolerant copy.
pub fn host_readable(device: i32) -> bool {
    matches!(device, device_type::CPU | device_type::CUDA_HOST | device_type::CUDA_MANAGED | device_type::ROCM_HOST)
}

/// The stream a call runs on for `device_id`: TVM-FFI's current CUDA stream of that device (0 when unset).
pub fn call_stream(device_id: i32) -> usize {
    tvm_runtime::env_stream(device_type::CUDA, device_id).unwrap_or(0)
}

/// Host memory of this process, read with the fault-tolerant copy.
pub struct HostMemory;

impl ByteSource for HostMemory {
    fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
        mem::read_bytes(addr as usize, dst).map_err(|_| "host memory not readable")
    }
}

/// Device memory, copied through the host program's driver.
pub struct DeviceMemory(pub &'static Driver);

impl ByteSource for DeviceMemory {
    fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
        self.0.copy_to_host(addr, dst).map_err(super::errors::copy_failed)
    }
}

/// The element offsets a strided block reaches from its first element, over (size, stride in elements) pairs:
/// (lowest, highest), lowest <= 0 <= highest. Negative strides reach back, size-1 and broadcast (stride-0)
/// dimensions reach nothing.
pub fn reach(dims: impl IntoIterator<Item = (i64, i64)>) -> Result<(i128, i128), &'static str> {
    let (mut lo, mut hi) = (0i128, 0i128);
    for (n, s) in dims {
        if n < 0 {
            return Err("negative dimension size");
        }
        if n <= 1 || s == 0 {
            continue;
        }
        let r = s as i128 * (n as i128 - 1);
        let end = if r < 0 { &mut lo } else { &mut hi };
        *end = end.checked_add(r).ok_or("tensor too large")?;
    }
    Ok((lo, hi))
}

/// The bytes a view covers: (address of its lowest byte, length). The walker reads exactly inside this span
/// (it moves the base to the lowest element for negative strides; broadcast dimensions add nothing), and graph
/// replay copies exactly it.
pub fn view_span(desc: &TensorDesc, kind: ElemKind) -> Result<(u64, usize), &'static str> {
    let eb = kind.elem_bytes() as i128;
    let (lo, hi) = reach(desc.shape().iter().copied().zip(desc.strides().iter().copied()))?;
    let first = desc.first_element() as i128;
    let lo = lo.checked_mul(eb).and_then(|b| first.checked_add(b)).ok_or("tensor too large")?;
    let hi = (hi + 1).checked_mul(eb).and_then(|b| first.checked_add(b)).ok_or("tensor too large")?;
    if lo < 0 || hi > u64::MAX as i128 || hi - lo > isize::MAX as i128 {
        return Err("tensor address range overflows");
    }
    Ok((lo as u64, (hi - lo) as usize))
}

/// Where a phase reads one tensor's bytes from, once [`PhaseStreams::open`] allowed it.
pub enum Memory {
    /// Host memory: [`HostMemory`].
    Host,
    /// Device memory: [`DeviceMemory`].
    Device(&'static Driver),
}

/// Why a tensor's bytes may not be read now.
pub enum Closed {
    /// The capture gate refused (a capture runs, or the driver could not say).
    Blocked(Blocked),
    /// Anything else: the reason.
    Error(&'static str),
}

/// The (device, stream) pairs one phase (before or after a call) synchronised: each stream is synchronised once
/// per phase, before the first of its tensors is read. A call touches few devices; past eight, a stream is
/// synchronised again for each of its tensors.
#[derive(Clone, Copy, Default)]
pub struct PhaseStreams {
    synced: [(i32, usize); 8],
    n: usize,
}

impl PhaseStreams {
    /// A new phase: every stream is synchronised again before it is read.
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// Synchronises `stream` of `device_id` unless this phase did already; the driver's error code on failure
    /// (the stream is then synchronised again next time).
    pub fn sync_once(&mut self, driver: &Driver, device_id: i32, stream: usize) -> Result<(), i32> {
        if self.synced[..self.n].contains(&(device_id, stream)) {
            return Ok(());
        }
        driver.synchronize(stream)?;
        if self.n < self.synced.len() {
            self.synced[self.n] = (device_id, stream);
            self.n += 1;
        }
        Ok(())
    }

    /// Opens the memory of `dev` for reading now. Plain host memory needs nothing. Page-locked, managed and
    /// ROCm host memory may still be written by a kernel: with a driver loaded, the call's stream is synchronised
    /// first (a failure is ignored: the bytes are readable anyway), when the capture gate allows it. Device memory
    /// needs the driver, the gate (legacy copies included) and a successful synchronisation. The returned guard
    /// keeps the thread's capture mode RELAXED; hold it while reading.
    pub fn open(&mut self, dev: Device) -> Result<(Memory, Option<Relaxed<'static>>), Closed> {
        if dev.device_type == device_type::CPU {
            return Ok((Memory::Host, None));
        }
        let host = host_readable(dev.device_type);
        if !host && dev.device_type != device_type::CUDA {
            return Err(Closed::Error("no reader for this device type"));
        }
        let Some(driver) = cuda_driver::driver() else {
            return if host { Ok((Memory::Host, None)) } else { Err(Closed::Error("CUDA driver not loaded")) };
        };
        let stream = call_stream(dev.device_id);
        let relaxed = gate::enter(driver, stream, !host).map_err(Closed::Blocked)?;
        let synced = self.sync_once(driver, dev.device_id, stream);
        if host {
            return Ok((Memory::Host, Some(relaxed)));
        }
        synced.map_err(|rc| Closed::Error(super::errors::failed("cuStreamSynchronize", rc)))?;
        Ok((Memory::Device(driver), Some(relaxed)))
    }
}

/// A float32 view on CUDA device 0 (first element at `data`), for the tests of the readers of views.
#[cfg(test)]
pub(crate) fn test_view(data: usize, shape: &[i64], strides: &[i64]) -> TensorDesc {
    let mut d = TensorDesc::new(
        data,
        0,
        Device { device_type: 2, device_id: 0 },
        crate::abi::dlpack::DataType { code: 2, bits: 32, lanes: 1 },
        shape.len(),
    );
    let (sh, st) = d.dims_mut();
    sh.copy_from_slice(shape);
    st.copy_from_slice(strides);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(data: usize, shape: &[i64], strides: &[i64]) -> TensorDesc {
        test_view(data, shape, strides)
    }

    #[test]
    fn spans_of_views() {
        assert_eq!(view_span(&desc(0x1000, &[4, 8], &[8, 1]), ElemKind::F32), Ok((0x1000, 128)));
        // Every other column of a 4x8 matrix: last element at 3*8+6.
        assert_eq!(view_span(&desc(0x1000, &[4, 4], &[8, 2]), ElemKind::F32), Ok((0x1000, (3 * 8 + 6 + 1) * 4)));
        // Reversed: the lowest element is 7 back.
        assert_eq!(view_span(&desc(0x1000, &[8], &[-1]), ElemKind::F32), Ok((0x1000 - 28, 32)));
        // Broadcast and size-1 dimensions add nothing.
        assert_eq!(view_span(&desc(0x1000, &[5, 1, 3], &[0, 77, 1]), ElemKind::F32), Ok((0x1000, 12)));
        assert_eq!(view_span(&desc(0x1000, &[], &[]), ElemKind::F32), Ok((0x1000, 4)));
        assert_eq!(view_span(&desc(0x1000, &[-2], &[1]), ElemKind::F32), Err("negative dimension size"));
        assert_eq!(view_span(&desc(0x10, &[8], &[-1]), ElemKind::F32), Err("tensor address range overflows"));
    }

    #[test]
    fn spans_agree_with_the_walker() {
        use super::super::walk::extent;
        for (shape, strides) in [(&[4i64, 8][..], &[8i64, 1][..]), (&[3, 5], &[-7, 2]), (&[2, 3, 4], &[0, -4, 1])] {
            let d = desc(0x10000, shape, strides);
            let e = extent(d.first_element() as u64, shape, strides, ElemKind::F32).unwrap().unwrap();
            assert_eq!(view_span(&d, ElemKind::F32).unwrap().1 as u128, e.span, "{shape:?} {strides:?}");
        }
    }

    #[test]
    fn reach_of_blocks() {
        assert_eq!(reach([(4, 8), (8, 1)]), Ok((0, 31)));
        assert_eq!(reach([(4, -8), (8, 1), (3, 0), (1, 99)]), Ok((-24, 7)));
        assert_eq!(reach([]), Ok((0, 0)));
    }
}
