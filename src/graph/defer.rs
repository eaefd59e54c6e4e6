//! What a call made during a capture adds to it, when replay statistics are on: for each tensor argument
//! whose statistics the replay will take, a copy of its span into the page-locked arena (device tensors) and
//! the `[statistics deferred to graph replay: id=N]` line; per phase, one host function. Only calls that the
//! capture allows are made here: `cuStreamIsCapturing`, `cuMemcpyDtoHAsync_v2` into page-locked memory and
//! `cuLaunchHostFunc` on the capturing stream itself; no synchronisation, no allocation of device or
//! page-locked memory.

use super::callbacks;
use super::replay::{ReplayTensor, Phase, CapturedCall, ReplaySource};
use super::{arena, enabled};
use crate::abi::cuda_driver;
use crate::abi::dlpack::{device_type, TensorDesc};
use crate::abi::ffi::FfiAny;
use crate::abi::prefetch::Prefetch;
use crate::abi::tvm_runtime;
use crate::capture;
use crate::os::pinned;
use crate::record::kind::tensor_source;
use crate::stats::compute::ElemKind;
use crate::record::stats_lines::{
    push_deferred, push_skipped, push_stats_error, Skipped, NESTED, NO_ARENA, NO_STREAM, UNSEEN, UNSEEN_NO_ARENA,
};
use crate::stats::source::{host_readable, view_span};
use crate::stats::CaptureDeferral;
use std::sync::atomic::{AtomicU64, Ordering};

/// `CU_STREAM_CAPTURE_STATUS_ACTIVE`.
const CAPTURE_ACTIVE: i32 = 1;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The capturing stream the call's copies and host functions go to.
#[derive(Clone, Copy)]
struct CaptureStream {
    stream: usize,
    per_thread: bool,
}

/// Whether the call's stream is the one being captured, and whether the replay can cover it.
#[derive(Clone, Copy)]
enum Verdict {
    /// Not asked yet.
    Unknown,
    /// The call's stream is not capturing (another stream is): the ordinary skip line.
    NotCapturing,
    /// Capturing, but not coverable: this reason.
    Uncovered(&'static str),
    /// Capturing and covered.
    Covered(CaptureStream),
}

/// The capture-time state of one call (part of its level-5 statistics source). Empty and allocation-free
/// unless the call runs during a capture with replay statistics on.
pub struct CallState {
    /// Set by [`CallState::begin_call`] when a capture is known to run.
    active: bool,
    name: &'static str,
    /// The top-level tensor arguments in order (position, descriptor), to label the tensors the record
    /// printer visits.
    expected: Vec<(usize, TensorDesc)>,
    cursor: usize,
    stream: Option<usize>,
    verdict: Verdict,
    after: bool,
    shared: Option<&'static CapturedCall>,
    entries: Vec<ReplayTensor>,
}

impl Default for CallState {
    fn default() -> Self {
        CallState {
            active: false,
            name: "",
            expected: Vec::new(),
            cursor: 0,
            stream: None,
            verdict: Verdict::Unknown,
            after: false,
            shared: None,
            entries: Vec::new(),
        }
    }
}

fn same_view(a: &TensorDesc, b: &TensorDesc) -> bool {
    a.first_element() == b.first_element()
        && a.dtype == b.dtype
        && a.device == b.device
        && a.shape() == b.shape()
        && a.strides() == b.strides()
}

impl CallState {
    fn verdict(&mut self) -> Verdict {
        if let Verdict::Unknown = self.verdict {
            self.verdict = self.judge();
        }
        self.verdict
    }

    fn judge(&self) -> Verdict {
        let Some(stream) = self.stream else {
            return Verdict::Uncovered(NO_STREAM);
        };
        // Stream 0 can only be capturing as the per-thread default stream (the legacy stream cannot be
        // captured), so its `_ptsz` functions are the right ones.
        let per_thread = stream == 0;
        let Some(driver) = cuda_driver::driver() else {
            return Verdict::NotCapturing;
        };
        match driver.capture_status(stream, per_thread) {
            Some(CAPTURE_ACTIVE) => {}
            Some(_) => return Verdict::NotCapturing,
            None => return Verdict::Uncovered(NO_STREAM),
        }
        if !capture::is_tracked(stream) {
            return Verdict::Uncovered(if pinned::installed() { UNSEEN } else { UNSEEN_NO_ARENA });
        }
        if !pinned::installed() {
            return Verdict::Uncovered(NO_ARENA);
        }
        Verdict::Covered(CaptureStream { stream, per_thread })
    }
}

impl CaptureDeferral for CallState {
    /// Before the inputs record of a call: when replay statistics are on and a capture is known to run,
    /// notes the call's top-level tensor arguments and its stream.
    fn begin_call(&mut self, name: &'static str, args: &[FfiAny], prefetch: Option<&Prefetch>) {
        if !enabled() || !capture::any_active() {
            return;
        }
        self.active = true;
        self.name = name;
        for (i, arg) in args.iter().enumerate() {
            if let Some(desc) = tensor_source(arg).and_then(|s| s.read(prefetch).ok()) {
                self.expected.push((i, desc));
            }
        }
        let device = self
            .expected
            .iter()
            .find(|(_, d)| d.device.device_type == device_type::CUDA)
            .map_or(0, |(_, d)| d.device.device_id);
        self.stream = tvm_runtime::env_stream(device_type::CUDA, device);
    }

    /// The real function ran: the next tensors are the after-the-call ones.
    fn after_call(&mut self) {
        self.after = true;
        self.cursor = 0;
    }

    /// In place of the statistics of `desc` while its call's stream is capturing: adds what the replay needs
    /// and writes the deferred line (or the skip line with its reason). Returns false when replay statistics
    /// are off or the call's stream is not the capturing one: the caller then writes the ordinary skip line.
    fn defer(&mut self, desc: &TensorDesc, out: &mut Vec<u8>, indent: usize) -> bool {
        if !enabled() {
            return false;
        }
        if !self.active {
            // No capture known to the shim, yet the stream is capturing: begun behind its back.
            push_skipped(out, indent, Skipped::Reason(if pinned::installed() { UNSEEN } else { UNSEEN_NO_ARENA }));
            return true;
        }
        let target = match self.verdict() {
            Verdict::Unknown | Verdict::NotCapturing => return false,
            Verdict::Uncovered(reason) => {
                push_skipped(out, indent, Skipped::Reason(reason));
                return true;
            }
            Verdict::Covered(t) => t,
        };
        let arg = match self.expected.get(self.cursor) {
            Some((i, d)) if same_view(d, desc) => {
                self.cursor += 1;
                *i
            }
            _ => {
                push_skipped(out, indent, Skipped::Reason(NESTED));
                return true;
            }
        };
        let shared = *self.shared.get_or_insert_with(|| {
            Box::leak(Box::new(CapturedCall::new(NEXT_ID.fetch_add(1, Ordering::Relaxed), self.name)))
        });
        let source = source_for(desc, target);
        match &source {
            ReplaySource::Device { .. } | ReplaySource::Kernel { .. } | ReplaySource::Host { .. } => {
                push_deferred(out, indent, shared.id)
            }
            ReplaySource::Skipped(why) => push_skipped(out, indent, *why),
            ReplaySource::Error(reason) => push_stats_error(out, indent, reason),
        }
        self.entries.push(ReplayTensor { arg, source });
        true
    }

    /// At the end of a phase (the inputs record built, or the outputs record): adds the phase's host function
    /// to the capture.
    fn end_phase(&mut self) {
        let (Some(shared), Verdict::Covered(target)) = (self.shared, self.verdict) else {
            return;
        };
        if self.entries.is_empty() {
            return;
        }
        let Some(driver) = cuda_driver::driver() else {
            return;
        };
        // The system information record must not be written by a host function (it asks the driver about
        // the devices, and no CUDA call is allowed there): make sure it is out before any host function runs.
        crate::log::write_record(&[]);
        let starts = !self.after || !shared.has_before.load(Ordering::Acquire);
        let phase: &'static Phase = Box::leak(Box::new(Phase {
            shared,
            after: self.after,
            starts,
            entries: std::mem::take(&mut self.entries),
        }));
        if callbacks::launch(driver, target.stream, target.per_thread, phase).is_ok() {
            let flag = if self.after { &shared.has_after } else { &shared.has_before };
            flag.store(true, Ordering::Release);
        }
    }
}

/// Decides how the replay covers one tensor, enqueuing the copy of a device tensor's span.
fn source_for(desc: &TensorDesc, target: CaptureStream) -> ReplaySource {
    let Some(kind) = ElemKind::from_dlpack(desc.dtype.code, desc.dtype.bits, desc.dtype.lanes) else {
        return ReplaySource::Error("unsupported dtype");
    };
    let dev = desc.device.device_type;
    if host_readable(dev) {
        return ReplaySource::Host { desc: desc.clone(), kind };
    }
    if dev != device_type::CUDA {
        return ReplaySource::Error("no reader for this device type");
    }
    if let Some(source) = crate::graph::kernel::kernel_source(desc, kind, target.stream, target.per_thread) {
        return source;
    }
    let (lo, len) = match view_span(desc, kind) {
        Ok(s) => s,
        Err(reason) => return ReplaySource::Error(reason),
    };
    let Some(span) = pinned::reserve(len) else {
        return ReplaySource::Skipped(arena::full());
    };
    let Some(driver) = cuda_driver::driver() else {
        return ReplaySource::Error("CUDA driver not loaded");
    };
    match driver.copy_into_span(&span, lo, target.stream, target.per_thread) {
        Ok(()) => ReplaySource::Device { desc: desc.clone(), kind, span, lo },
        Err(_) => ReplaySource::Error("cuMemcpyDtoHAsync_v2 failed during the capture"),
    }
}
