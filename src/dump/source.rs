//! Where a dumped tensor's bytes come from: host memory through the fault-tolerant copy, device memory
//! through the host program's own CUDA driver after synchronising the call's stream (once per phase, as the
//! level-5 statistics do: both open memory through `crate::stats::source`), and never anything while a CUDA
//! graph capture runs.

use super::copy::CopyError;
use crate::abi::cuda_driver;
use crate::abi::dlpack::{device_type, Device, TensorDesc};
use crate::capture;
use crate::stats::gate::{self, Blocked};
use crate::stats::source::{call_stream, host_readable, Closed, DeviceMemory, HostMemory, Memory, PhaseStreams};
use crate::stats::walk::ByteSource;

/// The reason a tensor listed during a capture has no bytes.
pub const CAPTURE_REASON: &str = crate::record::stats_lines::CAPTURE_IN_PROGRESS;

/// The reader of one phase (before or after the call): remembers which streams it synchronised.
#[derive(Default)]
pub struct Reader {
    streams: PhaseStreams,
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
    gate::query(driver, call_stream(d.device_id), !host_readable(d.device_type)).err().map(blocked_reason)
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
        if capture::any_active() {
            return Err(CopyError::Read(CAPTURE_REASON));
        }
        let (memory, _relaxed) = self.streams.open(d.device).map_err(|c| {
            CopyError::Read(match c {
                Closed::Blocked(b) => blocked_reason(b),
                Closed::Error(reason) => reason,
            })
        })?;
        let result = match memory {
            Memory::Host => crate::stats::with_staging(|staging| f(&mut HostMemory, staging)),
            Memory::Device(driver) => crate::stats::with_staging(|staging| f(&mut DeviceMemory(driver), staging)),
        };
        result.map_err(CopyError::Read)?
    }
}
