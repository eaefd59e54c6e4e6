//! Where a dumped tensor's bytes come from: host memory through the fault-tolerant copy, device memory
//! through the host program's own CUDA driver after synchronising the call's stream (once per phase, as the
//! level-5 statistics do), and never anything while a CUDA graph capture runs.

use super::copy::CopyError;
use crate::abi::cuda_driver::{self, Driver};
use crate::abi::dlpack::{device_type, Device, TensorDesc};
use crate::abi::{mem, tvm_runtime};
use crate::capture;
use crate::stats::gate::{self, Blocked};
use crate::stats::walk::ByteSource;

/// The reason a tensor listed during a capture has no bytes.
pub const CAPTURE_REASON: &str = "CUDA graph capture in progress";

/// The reader of one phase (before or after the call): remembers which streams it synchronised.
#[derive(Default)]
pub struct Reader {
    synced: Vec<(i32, usize)>,
}

fn is_host(d: Device) -> bool {
    matches!(
        d.device_type,
        device_type::CPU | device_type::CUDA_HOST | device_type::CUDA_MANAGED | device_type::ROCM_HOST
    )
}

/// Whether reading `d` now could disturb a CUDA graph capture (any capture known to run, or the driver saying
/// that the call's stream, or a blocking stream, is capturing), or the driver could not say: the reason the
/// tensor is not dumped.
pub fn capture_blocks(d: Device) -> Option<&'static str> {
    if capture::any_active() {
        return Some(CAPTURE_REASON);
    }
    if d.device_type == device_type::CPU {
        return None;
    }
    let driver = cuda_driver::driver()?;
    let stream = tvm_runtime::env_stream(device_type::CUDA, d.device_id).unwrap_or(0);
    gate::query(driver, stream, !is_host(d)).err().map(blocked_reason)
}

fn blocked_reason(b: Blocked) -> &'static str {
    match b {
        Blocked::Capturing => CAPTURE_REASON,
        Blocked::Unknown(reason) => reason,
    }
}

impl Reader {
    /// Runs `f` with the byte source for `d` and the staging buffer; synchronises the stream first (under the
    /// capture gate, which holds for the copies too).
    pub fn with_source<R>(
        &mut self,
        d: &TensorDesc,
        f: impl FnOnce(&mut dyn ByteSource, &mut [u8]) -> Result<R, CopyError>,
    ) -> Result<R, CopyError> {
        let dev = d.device;
        if capture::any_active() {
            return Err(CopyError::Read(CAPTURE_REASON));
        }
        if dev.device_type != device_type::CPU {
            if !is_host(dev) && dev.device_type != device_type::CUDA {
                return Err(CopyError::Read("no reader for this device type"));
            }
            let Some(driver) = cuda_driver::driver() else {
                if is_host(dev) {
                    return crate::stats::with_staging(|staging| f(&mut HostMemory, staging))
                        .map_err(CopyError::Read)?;
                }
                return Err(CopyError::Read("CUDA driver not loaded"));
            };
            let stream = tvm_runtime::env_stream(device_type::CUDA, dev.device_id).unwrap_or(0);
            let _relaxed =
                gate::enter(driver, stream, !is_host(dev)).map_err(|b| CopyError::Read(blocked_reason(b)))?;
            if !self.synced.contains(&(dev.device_id, stream)) {
                match driver.synchronize(stream) {
                    Err(rc) if !is_host(dev) => {
                        return Err(CopyError::Read(crate::sync::errors::failed("cuStreamSynchronize", rc)))
                    }
                    _ => {}
                }
                self.synced.push((dev.device_id, stream));
            }
            if !is_host(dev) {
                return crate::stats::with_staging(|staging| f(&mut DeviceMemory(driver), staging))
                    .map_err(CopyError::Read)?;
            }
        }
        crate::stats::with_staging(|staging| f(&mut HostMemory, staging)).map_err(CopyError::Read)?
    }
}

struct HostMemory;

impl ByteSource for HostMemory {
    fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
        mem::read_bytes(addr as usize, dst).map_err(|_| "host memory not readable")
    }
}

struct DeviceMemory(&'static Driver);

impl ByteSource for DeviceMemory {
    fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
        self.0.copy_to_host(addr, dst).map_err(crate::sync::errors::copy_failed)
    }
}
