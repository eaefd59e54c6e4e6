//! Level-5 statistics of the tensors of a call. [`compute`] is the pure one-pass arithmetic and the strided
//! walker; this module decides whether statistics may be taken at all (never while a CUDA graph capture is
//! known to run), where the bytes come from (a fault-tolerant copy of host memory, or the host program's own
//! CUDA driver after synchronising the call's stream), and hands the numbers to `record::stats_numbers` for
//! their lines.

pub mod compute;
pub mod errors;
pub mod formats;
pub mod gate;
pub mod source;
pub mod walk;

use crate::abi::cuda_driver;
use crate::abi::dlpack::{device_type, TensorDesc};
use crate::abi::prefetch::Prefetch;
use crate::capture;
use crate::os::mem;
use crate::os::sys::StackRoom;
use crate::os::scratch::{Lease, Reset, ScratchPool};
use crate::record::stats_lines::{push_skipped, push_stats_error as push_error, Skipped};
use crate::record::tensor::StatsSource;
use compute::{Accumulator, ElemKind};
use crate::record::stats_numbers::push_stats_lines;
use source::{view_span, Closed, DeviceMemory, Memory, PhaseStreams};
use walk::{extent, walk_tensor, ByteSource};

/// Size of the one staging buffer that every read goes through: the memory the shim adds never grows
/// with tensor size.
pub const STAGING_BYTES: usize = crate::os::process::STAGING_BYTES;

/// What a call made during a CUDA graph capture does in place of statistics (the graph layer's replay
/// statistics implement it); kept as a parameter so this layer never reaches up to the graph layer.
pub trait CaptureDeferral: Default {
    /// Before the inputs record: notes the call's tensor arguments when a capture is known to run.
    fn begin_call(&mut self, name: &'static str, args: &[crate::abi::ffi::FfiAny], prefetch: Option<&Prefetch>);
    /// The real function ran: the next tensors are the after-the-call ones.
    fn after_call(&mut self);
    /// After each record of the call: closes the phase (adds its work to the capture, if any).
    fn end_phase(&mut self);
    /// Writes the deferred line for a tensor seen during a capture; `false` when it cannot be deferred
    /// (the caller then writes the skip line).
    fn defer(&mut self, desc: &TensorDesc, out: &mut Vec<u8>, indent: usize) -> bool;
}

/// The statistics kernel's route for a phase's device tensors (the kernel layer, `crate::gpu`, implements
/// it); a parameter like [`CaptureDeferral`], so this layer never reaches up to the kernel's loader.
pub trait KernelRoute {
    /// What one phase computed, looked up per tensor.
    type Phase: KernelPhase;
    /// Runs the kernel over the phase's device tensors; None when there were none or the route is off.
    /// `sync(device_id, stream)` synchronises a stream once per phase (false on failure).
    fn run_phase(descs: impl Iterator<Item = TensorDesc>, sync: &mut dyn FnMut(i32, usize) -> bool)
        -> Option<Self::Phase>;
}

/// The kernel's results of one phase.
pub trait KernelPhase {
    /// The result for `desc`, when the phase computed one.
    fn get(&mut self, desc: &TensorDesc) -> Option<GpuResult>;
}

/// What the GPU route gives for one tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GpuResult {
    /// Statistics from the kernel.
    Stats(compute::Stats),
    /// Skipped: `bytes` over `FLASHLOG_GPU_STATS_MAX_GB=cap_gb`.
    OverCap {
        /// Bytes the statistics would read.
        bytes: u128,
        /// The cap in GiB.
        cap_gb: f64,
    },
}

/// The statistics source of one call: it synchronises each device stream once before the call's inputs
/// are read and once more after the call, before its outputs are read.
pub struct LiveStats<D: CaptureDeferral, K: KernelRoute> {
    /// The streams synchronised in this phase.
    streams: PhaseStreams,
    /// Whether a tensor of this call held a NaN or an infinity (the NaN watch).
    nonfinite: bool,
    /// Whether statistics were skipped or deferred because of a capture.
    during_capture: bool,
    /// What a captured call adds to the capture when replay statistics are on.
    graph: D,
    /// The data of the phase's small host tensors, read in one batch (see [`LiveStats::prefetch_data`]).
    cache: Option<Lease<DataCache, 16>>,
    /// The statistics of the phase's device tensors computed by the library's kernel (the [`KernelRoute`]).
    gpu: Option<K::Phase>,
}

/// Host tensors at most this large (bytes spanned) have their data read in the phase's batch.
const BATCH_TENSOR_BYTES: u128 = 64 * 1024;
/// Most bytes one phase's batch reads.
const BATCH_TOTAL_BYTES: usize = 1 << 20;

/// The data of small host tensors, read with one batched copy per phase (pooled).
#[derive(Default)]
struct DataCache {
    bytes: Vec<u8>,
    /// (lowest address, offset in `bytes`, length) of each tensor's span.
    spans: Vec<(u64, usize, usize)>,
    pieces: Vec<mem::Piece>,
    ok: Vec<bool>,
    cursor: std::cell::Cell<usize>,
}

impl Reset for DataCache {
    fn reset(&mut self) {
        self.cursor.set(0);
        self.bytes.clear();
        self.spans.clear();
        self.pieces.clear();
        self.ok.clear();
    }
    fn keep(&self) -> bool {
        self.bytes.capacity() <= BATCH_TOTAL_BYTES
    }
}

static DATA_CACHE: ScratchPool<DataCache, 16> = ScratchPool::new();

impl DataCache {
    /// The cached bytes `[addr, addr + len)`, when one readable span holds them all.
    /// Tensors are looked up in the order they were batched: the search starts after the last hit.
    fn get(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let n = self.spans.len();
        let start = self.cursor.get().min(n);
        let hit = (start..n).chain(0..start).find(|&i| {
            let (lo, _, span) = self.spans[i];
            self.ok[i] && addr >= lo && addr - lo + len as u64 <= span as u64
        })?;
        self.cursor.set(hit);
        let (lo, off, _) = self.spans[hit];
        Some(&self.bytes[off + (addr - lo) as usize..][..len])
    }
}

impl<D: CaptureDeferral, K: KernelRoute> Default for LiveStats<D, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D: CaptureDeferral, K: KernelRoute> LiveStats<D, K> {
    /// A source for a new call.
    pub fn new() -> Self {
        LiveStats {
            streams: PhaseStreams::default(),
            nonfinite: false,
            during_capture: false,
            graph: Default::default(),
            cache: None,
            gpu: None,
        }
    }

    /// Marks that the real function ran: device streams must be synchronised again before reading outputs,
    /// and the data read before the call is stale.
    pub fn after_call(&mut self) {
        self.streams.clear();
        self.cache = None;
        self.gpu = None;
        self.graph.after_call();
    }

    /// Before the inputs record: lets a call made during a capture prepare its replay statistics.
    pub fn begin_call(&mut self, name: &'static str, args: &[crate::abi::ffi::FfiAny], prefetch: Option<&Prefetch>) {
        self.graph.begin_call(name, args, prefetch);
    }

    /// After each record of the call (inputs, outputs): adds the phase's host function to the capture, if any.
    pub fn end_phase(&mut self) {
        self.graph.end_phase();
    }

    /// Whether a tensor of the call held a NaN or an infinity.
    pub fn saw_nonfinite(&self) -> bool {
        self.nonfinite
    }

    /// Whether some statistics were skipped or deferred because a capture was running.
    pub fn during_capture(&self) -> bool {
        self.during_capture
    }

    /// In place of statistics during a capture: the deferred line (replay statistics) or the skip line.
    fn capture_line(&mut self, desc: &TensorDesc, out: &mut Vec<u8>, indent: usize) {
        self.during_capture = true;
        if !self.graph.defer(desc, out, indent) {
            push_skipped(out, indent, Skipped::Capture);
        }
    }

    /// Reads the data of the phase's small CPU tensors (spans up to 64 KiB, 1 MiB in all) with one batched
    /// copy, so a call with many small tensors makes one or two read system calls per phase instead of one
    /// per tensor. Other tensors (larger, pinned or device memory, skipped ones) are read when their
    /// statistics are taken, as before.
    pub fn prefetch_data(&mut self, descs: impl Iterator<Item = TensorDesc> + Clone) {
        if capture::any_active() {
            return;
        }
        // Device tensors: the library's kernel, one synchronisation per stream (also the one later reads use).
        // Only when the phase has one: a host-only process never looks for a driver here (the search walks the
        // loaded objects).
        let has_device = descs.clone().any(|d| d.device.device_type == device_type::CUDA);
        if let Some(driver) = has_device.then(cuda_driver::driver).flatten() {
            let streams = &mut self.streams;
            let mut sync = |device_id: i32, stream: usize| streams.sync_once(driver, device_id, stream).is_ok();
            self.gpu = K::run_phase(descs.clone(), &mut sync);
        }
        let mut cache = DATA_CACHE.take();
        let c = &mut *cache;
        let mut total = 0usize;
        for desc in descs {
            if desc.device.device_type != device_type::CPU || desc.numel() == 0 {
                continue;
            }
            let Some(kind) = ElemKind::from_dlpack(desc.dtype.code, desc.dtype.bits, desc.dtype.lanes) else {
                continue;
            };
            let Ok((lo, span)) = view_span(&desc, kind) else {
                continue;
            };
            if span as u128 > BATCH_TENSOR_BYTES || total + span > BATCH_TOTAL_BYTES {
                continue;
            }
            c.spans.push((lo, total, span));
            c.pieces.push(mem::Piece { addr: lo as usize, off: total, len: span });
            total += span;
        }
        if c.pieces.is_empty() {
            return;
        }
        c.bytes.resize(total, 0);
        c.ok.resize(c.pieces.len(), false);
        mem::read_scatter(&mut c.bytes, &c.pieces, &mut c.ok);
        self.cache = Some(cache);
    }

    /// Whether the view is too costly to walk: statistics are bounded by the bytes a view spans (with stride-0
    /// broadcast dimensions counted once, as the walker does), and by the per-tensor cap.
    fn skip(desc: &TensorDesc, kind: ElemKind) -> Result<Option<Skipped>, &'static str> {
        let Some(e) = extent(desc.first_element() as u64, desc.shape(), desc.strides(), kind)? else {
            return Ok(None);
        };
        let eb = kind.elem_bytes() as u128;
        let walked_bytes = e.walked as u128 * eb;
        if walked_bytes > e.span && walked_bytes - e.span > OVERLAP_SLACK_BYTES {
            return Ok(Some(Skipped::Overlapping { elements: e.elements, span: e.span }));
        }
        let cap_mb = crate::state::config().stats_max_mb;
        let bytes = walked_bytes.min(e.span);
        if cap_mb != 0 && bytes > (cap_mb as u128) << 20 {
            return Ok(Some(Skipped::OverCap { bytes, cap_mb }));
        }
        Ok(None)
    }

    fn compute(&mut self, desc: &TensorDesc, kind: ElemKind) -> Result<compute::Stats, Failure> {
        let mut acc = Accumulator::new(kind);
        let (memory, _relaxed) = self.streams.open(desc.device)?;
        match memory {
            Memory::Host => {
                let cache = if desc.device.device_type == device_type::CPU { self.cache.as_deref() } else { None };
                walk(&mut CachedHost(cache), desc, kind, &mut acc)?;
            }
            Memory::Device(driver) => walk(&mut DeviceMemory(driver), desc, kind, &mut acc)?,
        }
        Ok(acc.finish())
    }
}

/// Why a tensor of a call got no statistics.
enum Failure {
    /// The capture gate refused (a capture runs, or the driver could not say).
    Blocked(gate::Blocked),
    /// Anything else: the `[statistics error: ...]` reason.
    Error(&'static str),
}

impl From<&'static str> for Failure {
    fn from(reason: &'static str) -> Self {
        Failure::Error(reason)
    }
}

impl From<Closed> for Failure {
    fn from(c: Closed) -> Self {
        match c {
            Closed::Blocked(b) => Failure::Blocked(b),
            Closed::Error(reason) => Failure::Error(reason),
        }
    }
}

/// Stack a host tensor's statistics may need below the record's frame (the walk and its accumulators use about
/// 12 KiB, single-byte kinds 8 KiB more; the rest is room for a signal handler's frame). A thread with less
/// left (a host thread made with a 16 KiB stack) gets [`STACK_LOW`] instead of a crash.
const STATS_STACK_BYTES: usize = 32 << 10;
/// The skip reason of a thread with less than [`STATS_STACK_BYTES`] of stack left.
const STACK_LOW: &str = "too little stack left on this thread";
/// The skip reason of a call made on a stack the thread's attributes do not describe (a fiber, a signal stack).
const STACK_UNKNOWN: &str = "running on a stack of unknown size (a fiber's or a signal stack)";

/// Views whose visited elements exceed the bytes they span by more than this are not walked (see
/// `Skipped::Overlapping`): small overlapping views keep exact statistics. The view reaches more elements than
/// its span can hold (strides that do not separate its elements, as `as_strided` makes), and walking them
/// would cost more than this beyond the span: the work would grow with the element count (2^60 elements over
/// 12 MiB), not the memory.
const OVERLAP_SLACK_BYTES: u128 = STAGING_BYTES as u128;

/// Runs `f` with the shared staging buffer (level-10 dumps copy through it too, so the memory the shim adds
/// stays [`STAGING_BYTES`] whatever the tensor size).
/// Err when this thread already holds it (a signal handler that interrupted the shim's own reads).
pub fn with_staging<R>(f: impl FnOnce(&mut [u8]) -> R) -> Result<R, &'static str> {
    let mut staging = crate::os::process::Staging::lock().ok_or("re-entered from a signal handler")?;
    Ok(f(&mut staging))
}

fn walk(
    src: &mut dyn ByteSource,
    desc: &TensorDesc,
    kind: ElemKind,
    acc: &mut Accumulator,
) -> Result<(), &'static str> {
    // The lock's word lives in the page a fork wipes (a child never inherits it held); the thread holding
    // it already is a signal handler that interrupted this thread's statistics, and must not wait.
    let Some(mut staging) = crate::os::process::Staging::lock() else {
        return Err("re-entered from a signal handler");
    };
    walk_tensor(src, desc.first_element() as u64, desc.shape(), desc.strides(), kind, &mut staging, acc)
}

impl<D: CaptureDeferral, K: KernelRoute> StatsSource for LiveStats<D, K> {
    fn write_stats(&mut self, desc: &TensorDesc, out: &mut Vec<u8>, indent: usize) {
        if desc.numel() == 0 {
            return;
        }
        if capture::any_active() {
            self.capture_line(desc, out, indent);
            return;
        }
        let Some(kind) = ElemKind::from_dlpack(desc.dtype.code, desc.dtype.bits, desc.dtype.lanes) else {
            push_error(out, indent, "unsupported dtype");
            return;
        };
        if let Some(result) = self.gpu.as_mut().and_then(|g| g.get(desc)) {
            return self.write_gpu_result(result, out, indent);
        }
        match Self::skip(desc, kind) {
            Err(reason) => return push_error(out, indent, reason),
            Ok(Some(skip)) => return push_skipped(out, indent, skip),
            Ok(None) => {}
        }
        // The walk runs on the host thread's stack: one whose room is unknown or too small gets a skip line.
        match crate::os::sys::stack_room() {
            StackRoom::Elsewhere => return push_skipped(out, indent, Skipped::Reason(STACK_UNKNOWN)),
            StackRoom::Bytes(room) if room < STATS_STACK_BYTES => {
                return push_skipped(out, indent, Skipped::Reason(STACK_LOW))
            }
            StackRoom::Bytes(_) | StackRoom::NotKnown => {}
        }
        match self.compute(desc, kind) {
            Ok(stats) => {
                self.nonfinite |= stats.is_nonfinite();
                push_stats_lines(out, indent, &stats)
            }
            Err(Failure::Blocked(gate::Blocked::Capturing)) => self.capture_line(desc, out, indent),
            Err(Failure::Blocked(gate::Blocked::Unknown(reason))) => {
                self.during_capture = true;
                push_skipped(out, indent, Skipped::Reason(reason));
            }
            Err(Failure::Error(reason)) => push_error(out, indent, reason),
        }
    }
}

impl<D: CaptureDeferral, K: KernelRoute> LiveStats<D, K> {
    /// The lines of a device tensor whose statistics the kernel computed (or its cap skip line).
    fn write_gpu_result(&mut self, result: GpuResult, out: &mut Vec<u8>, indent: usize) {
        match result {
            GpuResult::Stats(stats) => {
                self.nonfinite |= stats.is_nonfinite();
                push_stats_lines(out, indent, &stats)
            }
            GpuResult::OverCap { bytes, cap_gb } => push_skipped(out, indent, Skipped::GpuOverCap { bytes, cap_gb }),
        }
    }
}

/// Host memory of this process, read with the fault-tolerant copy (from the phase's batch when it holds the
/// range).
struct CachedHost<'a>(Option<&'a DataCache>);

impl ByteSource for CachedHost<'_> {
    fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
        if let Some(bytes) = self.0.and_then(|c| c.get(addr, dst.len())) {
            dst.copy_from_slice(bytes);
            return Ok(());
        }
        source::HostMemory.read(addr, dst)
    }
}
