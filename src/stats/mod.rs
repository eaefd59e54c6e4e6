//! Level-5 statistics of the tensors of a call. [`compute`] is the pure one-pass arithmetic and the strided
//! walker; this module decides whether statistics may be taken at all (never while a CUDA graph capture is
//! known to run), where the bytes come from (a fault-tolerant copy of host memory, or the host program's own
//! CUDA driver after synchronising the call's stream), and writes the lines.

pub mod compute;
pub mod walk;

use crate::abi::cuda_driver::{self, Driver};
use crate::abi::dlpack::{device_type, TensorDesc};
use crate::abi::{mem, tvm_runtime};
use crate::record::push_indent;
use crate::record::tensor::StatsSource;
use crate::{capture, forkgen};
use compute::{write_stats_lines, Accumulator, ElemKind};
use std::sync::Mutex;
use walk::{walk_tensor, ByteSource};

/// Size of the one staging buffer that every read goes through: the memory the shim adds never grows
/// with tensor size.
pub const STAGING_BYTES: usize = 4 << 20;

/// One staging buffer per fork generation (`crate::forkgen`): a child never locks the one a thread of its
/// parent may have held at the fork. Only the slot in use is ever allocated.
static STAGING: [Mutex<Vec<u8>>; forkgen::SLOTS] = [const { Mutex::new(Vec::new()) }; forkgen::SLOTS];

/// The statistics source of one call: it synchronises each device stream once before the call's inputs
/// are read and once more after the call, before its outputs are read.
pub struct LiveStats {
    /// (device, stream) pairs synchronised in this phase; a call touches few devices.
    synced: [(i32, usize); 8],
    n_synced: usize,
}

impl Default for LiveStats {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveStats {
    /// A source for a new call.
    pub fn new() -> Self {
        LiveStats { synced: [(0, 0); 8], n_synced: 0 }
    }

    /// Marks that the real function ran: device streams must be synchronised again before reading outputs.
    pub fn after_call(&mut self) {
        self.n_synced = 0;
    }

    /// Synchronises the stream the call runs on for `device_id`, once per phase.
    fn sync_once(&mut self, driver: &Driver, device_id: i32, stream: usize) -> Result<(), &'static str> {
        if self.synced[..self.n_synced].contains(&(device_id, stream)) {
            return Ok(());
        }
        driver.synchronize(stream).map_err(|_| "cuStreamSynchronize failed")?;
        if self.n_synced < self.synced.len() {
            self.synced[self.n_synced] = (device_id, stream);
            self.n_synced += 1;
        }
        Ok(())
    }

    fn compute(&mut self, desc: &TensorDesc, kind: ElemKind) -> Result<compute::Stats, &'static str> {
        let dev = desc.device;
        let host_memory = matches!(
            dev.device_type,
            device_type::CPU | device_type::CUDA_HOST | device_type::CUDA_MANAGED | device_type::ROCM_HOST
        );
        let mut acc = Accumulator::new(kind);
        if host_memory {
            if dev.device_type != device_type::CPU {
                // Pinned or managed memory may still be written by a kernel: wait for the call's stream.
                if let Some(driver) = cuda_driver::driver() {
                    let stream = tvm_runtime::env_stream(device_type::CUDA, dev.device_id).unwrap_or(0);
                    let _ = self.sync_once(driver, dev.device_id, stream);
                }
            }
            walk(&mut HostMemory, desc, kind, &mut acc)?;
        } else if dev.device_type == device_type::CUDA {
            let driver = cuda_driver::driver().ok_or("CUDA driver not loaded")?;
            let stream = tvm_runtime::env_stream(device_type::CUDA, dev.device_id).unwrap_or(0);
            if driver.stream_is_capturing(stream) {
                return Err(SKIPPED);
            }
            self.sync_once(driver, dev.device_id, stream)?;
            walk(&mut DeviceMemory(driver), desc, kind, &mut acc)?;
        } else {
            return Err("no reader for this device type");
        }
        Ok(acc.finish())
    }
}

/// Indentation source for statistics lines (no allocation per tensor).
const SPACES: &str = "                ";

/// Sentinel error: the call's stream is capturing.
const SKIPPED: &str = "\0skipped";

/// Runs `f` with the shared staging buffer (level-10 dumps copy through it too, so the memory the shim adds
/// stays [`STAGING_BYTES`] whatever the tensor size).
pub fn with_staging<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut staging = STAGING[forkgen::slot()].lock().unwrap_or_else(|p| p.into_inner());
    if staging.len() < STAGING_BYTES {
        staging.resize(STAGING_BYTES, 0);
    }
    f(&mut staging)
}

fn walk(
    src: &mut dyn ByteSource,
    desc: &TensorDesc,
    kind: ElemKind,
    acc: &mut Accumulator,
) -> Result<(), &'static str> {
    let mut staging = STAGING[forkgen::slot()].lock().unwrap_or_else(|p| p.into_inner());
    if staging.len() < STAGING_BYTES {
        staging.resize(STAGING_BYTES, 0);
    }
    walk_tensor(src, desc.first_element() as u64, desc.shape(), desc.strides(), kind, &mut staging, acc)
}

impl StatsSource for LiveStats {
    fn write_stats(&mut self, desc: &TensorDesc, out: &mut Vec<u8>, indent: usize) {
        if desc.numel() == 0 {
            return;
        }
        if capture::any_active() {
            push_skipped(out, indent);
            return;
        }
        let Some(kind) = ElemKind::from_dlpack(desc.dtype.code, desc.dtype.bits, desc.dtype.lanes) else {
            push_error(out, indent, "unsupported dtype");
            return;
        };
        match self.compute(desc, kind) {
            Ok(stats) => write_stats_lines(out, &SPACES[..indent.min(SPACES.len())], &stats),
            Err(SKIPPED) => push_skipped(out, indent),
            Err(reason) => push_error(out, indent, reason),
        }
    }
}

fn push_skipped(out: &mut Vec<u8>, indent: usize) {
    push_indent(out, indent);
    out.extend_from_slice(b"[statistics skipped: CUDA graph capture in progress]\n");
}

fn push_error(out: &mut Vec<u8>, indent: usize, reason: &str) {
    push_indent(out, indent);
    out.extend_from_slice(b"[statistics error: ");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"]\n");
}

/// Host memory of this process, read with the fault-tolerant copy.
struct HostMemory;

impl ByteSource for HostMemory {
    fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
        mem::read_bytes(addr as usize, dst).map_err(|_| "host memory not readable")
    }
}

/// Device memory, copied through the host program's driver.
struct DeviceMemory(&'static Driver);

impl ByteSource for DeviceMemory {
    fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
        self.0.copy_to_host(addr, dst).map_err(|_| "device memory copy failed (cuMemcpyDtoH_v2)")
    }
}
