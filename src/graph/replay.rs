//! What runs at every replay: one host function per captured call and phase (inputs, after the call). The
//! inputs one starts the replay's record with the statistics of the tensors as they were before the call;
//! the after one adds the tensors after the call and writes the record, whole, with one write. Runs on the
//! driver's thread: no CUDA call here, ever (the driver refuses them, and the bytes are already copied).

use super::callbacks::DriverCallback;
use super::watch;
use crate::abi::dlpack::TensorDesc;
use crate::os::pinned;
use crate::record::replay_lines::{push_arg_heading, push_phase_heading, push_replay_record};
use crate::record::tensor::is_contiguous;
use crate::record::stats_lines::{push_skipped, push_stats_error, Skipped};
use crate::stats::compute::{Accumulator, ElemKind, Stats};
use crate::record::stats_numbers::push_stats_lines;
use crate::stats::source::HostMemory;
use crate::stats::walk::{walk_tensor, ByteSource};
use crate::stats::STAGING_BYTES;
use crate::{buffers, clock, log, state};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One captured call: its id (`[statistics deferred to graph replay: id=N]`), name and replay state.
pub struct CapturedCall {
    /// The id, counting from 1 per process.
    pub id: u64,
    /// `<module>.<export>`.
    pub name: &'static str,
    /// Set when the after-the-call host function was added to the capture: the inputs one then leaves the
    /// record to it.
    pub has_after: AtomicBool,
    /// Set when the inputs host function was added.
    pub has_before: AtomicBool,
    run: Mutex<Run>,
}

/// The state of the replay in progress.
#[derive(Default)]
struct Run {
    /// Replays of the graph so far (counted by the first host function of the call).
    replay: u64,
    /// Whether this replay takes statistics (`FLASHLOG_GRAPH_STATS_EVERY`).
    taking: bool,
    /// The record body built so far.
    body: Vec<u8>,
    /// Whether a tensor of this replay held a NaN or an infinity.
    nonfinite: bool,
}

impl CapturedCall {
    /// A new captured call.
    pub fn new(id: u64, name: &'static str) -> CapturedCall {
        CapturedCall {
            id,
            name,
            has_after: AtomicBool::new(false),
            has_before: AtomicBool::new(false),
            run: Mutex::new(Run::default()),
        }
    }
}

/// Where a tensor's statistics come from at replay.
pub enum ReplaySource {
    /// A device tensor: the copy of its span in the page-locked arena; `lo` is the device address of the
    /// span's first byte (the view's lowest element).
    Device {
        /// The view, as the call saw it.
        desc: TensorDesc,
        /// Its element kind.
        kind: ElemKind,
        /// Where the copy of its span lands.
        span: pinned::Span,
        /// The device address of the span's first byte.
        lo: u64,
    },
    /// A device tensor reduced by the library's kernel, captured as a node: its block partials land in the
    /// page-locked span (`crate::graph::kernel`).
    Kernel {
        /// What the kernel reduces and how its partials fold.
        plan: crate::gpu::plan::Plan,
        /// Where the partials land.
        span: pinned::Span,
    },
    /// A host tensor, read by the host function itself.
    Host {
        /// The view, as the call saw it.
        desc: TensorDesc,
        /// Its element kind.
        kind: ElemKind,
    },
    /// Not covered: the skip line's reason.
    Skipped(Skipped),
    /// Not covered: the error line's reason.
    Error(&'static str),
}

/// One tensor argument of a phase.
pub struct ReplayTensor {
    /// The argument's position.
    pub arg: usize,
    /// Where its statistics come from.
    pub source: ReplaySource,
}

/// The host function of one call and phase.
pub struct Phase {
    /// The call.
    pub shared: &'static CapturedCall,
    /// The after-the-call phase (else the inputs).
    pub after: bool,
    /// Whether this host function starts a replay (the inputs one, or the after one when there is none).
    pub starts: bool,
    /// The tensors.
    pub entries: Vec<ReplayTensor>,
}

impl DriverCallback for Phase {
    fn run(&'static self) {
        if state::level() == 0 {
            return;
        }
        let shared = self.shared;
        let mut run = shared.run.lock().unwrap_or_else(|p| p.into_inner());
        if self.starts {
            run.replay += 1;
            run.taking = run.replay.is_multiple_of(state::config().graph_stats_every.max(1));
            run.body.clear();
            run.nonfinite = false;
        }
        if !run.taking {
            return;
        }
        let Run { body, nonfinite, replay, .. } = &mut *run;
        push_phase_heading(body, self.after);
        for entry in &self.entries {
            push_arg_heading(body, entry.arg, self.after);
            *nonfinite |= write_entry(body, &entry.source, 4);
        }
        if !self.after && shared.has_after.load(Ordering::Acquire) {
            return;
        }
        let watching = watch::enabled();
        if watching {
            watch::replay_checked(*nonfinite);
            if !*nonfinite {
                return;
            }
        }
        let mut out = buffers::take();
        push_replay_record(&mut out, &clock::now().0, shared.name, shared.id, *replay, body);
        log::write_record(&out);
    }
}

/// Appends the statistics (or reason) lines of one tensor; true when it holds a NaN or an infinity.
fn write_entry(out: &mut Vec<u8>, source: &ReplaySource, indent: usize) -> bool {
    let result = match source {
        ReplaySource::Device { desc, kind, span, lo } => pinned_stats(span.bytes(), *lo, desc, *kind),
        ReplaySource::Kernel { plan, span } => Ok(crate::graph::kernel::fold_span(plan, span.bytes())),
        ReplaySource::Host { desc, kind } => stats_of(&mut HostMemory, desc, *kind),
        ReplaySource::Skipped(why) => {
            push_skipped(out, indent, *why);
            return false;
        }
        ReplaySource::Error(reason) => Err(*reason),
    };
    match result {
        Ok(stats) => {
            push_stats_lines(out, indent, &stats);
            stats.is_nonfinite()
        }
        Err(reason) => {
            push_stats_error(out, indent, reason);
            false
        }
    }
}

/// The staging buffer of the host functions (one driver thread in practice; separate from the eager one so
/// a replay never waits for an eager call's statistics).
static STAGING: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn stats_of(src: &mut dyn ByteSource, desc: &TensorDesc, kind: ElemKind) -> Result<Stats, &'static str> {
    let mut staging = STAGING.lock().unwrap_or_else(|p| p.into_inner());
    if staging.len() < STAGING_BYTES {
        staging.resize(STAGING_BYTES, 0);
    }
    let mut acc = Accumulator::new(kind);
    walk_tensor(src, desc.first_element() as u64, desc.shape(), desc.strides(), kind, &mut staging, &mut acc)?;
    Ok(acc.finish())
}

/// Statistics of a device tensor from the copy of its span (`bytes[0]` is device address `lo`). A compact
/// row-major view is exactly its span: the accumulator reads the page-locked copy in place; any other view is
/// walked with its strides through the staging buffer, as at level 5.
fn pinned_stats(bytes: &'static [u8], lo: u64, desc: &TensorDesc, kind: ElemKind) -> Result<Stats, &'static str> {
    let numel = desc.numel();
    let eb = kind.elem_bytes();
    let compact = is_contiguous(desc.shape(), desc.strides()) && !desc.strides().contains(&0);
    if compact && desc.first_element() as u64 == lo && numel.checked_mul(eb as u128) == Some(bytes.len() as u128) {
        let mut acc = Accumulator::new(kind);
        acc.feed(bytes, numel as usize, eb);
        return Ok(acc.finish());
    }
    stats_of(&mut PinnedSource { lo, bytes }, desc, kind)
}

/// The copy of a view's span: device address `lo` is `bytes[0]`.
struct PinnedSource {
    lo: u64,
    bytes: &'static [u8],
}

impl ByteSource for PinnedSource {
    fn read(&mut self, addr: u64, dst: &mut [u8]) -> Result<(), &'static str> {
        let start = addr.checked_sub(self.lo).ok_or("outside the copied span")? as usize;
        let end = start.checked_add(dst.len()).filter(|&e| e <= self.bytes.len()).ok_or("outside the copied span")?;
        dst.copy_from_slice(&self.bytes[start..end]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::source::test_view as desc;

    #[test]
    fn compact_views_read_in_place_like_the_walk() {
        static DATA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let data = DATA.get_or_init(|| {
            let mut v = Vec::new();
            for i in 0..4096u32 {
                let x = if i == 77 { f32::NAN } else { (i as f32 * 0.37).sin() * 100.0 };
                v.extend_from_slice(&x.to_le_bytes());
            }
            v
        });
        let d = desc(0x10000, &[64, 64], &[64, 1]);
        let fast = pinned_stats(data, 0x10000, &d, ElemKind::F32).unwrap();
        let walked = stats_of(&mut PinnedSource { lo: 0x10000, bytes: data }, &d, ElemKind::F32).unwrap();
        assert_eq!(format!("{fast:?}"), format!("{walked:?}"));
        assert!(fast.is_nonfinite());
        // A transposed view of the same span goes through the walker and agrees too.
        let t = desc(0x10000, &[64, 64], &[1, 64]);
        assert_eq!(format!("{:?}", pinned_stats(data, 0x10000, &t, ElemKind::F32).unwrap()), format!("{walked:?}"));
    }

    #[test]
    fn pinned_source_reads_inside_the_span_only() {
        static BYTES: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut src = PinnedSource { lo: 0x100, bytes: &BYTES };
        let mut dst = [0u8; 3];
        assert!(src.read(0x105, &mut dst).is_ok());
        assert_eq!(dst, [6, 7, 8]);
        assert!(src.read(0x106, &mut dst).is_err());
        assert!(src.read(0xff, &mut dst).is_err());
    }
}
