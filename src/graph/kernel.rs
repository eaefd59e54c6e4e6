//! Replay statistics on the GPU: during a capture, a covered device tensor gets a kernel node (one tensor per
//! launch, on the capturing stream) that writes its block partials into a span of the page-locked arena; at
//! every replay the call's host function folds them (`crate::graph::replay`). Nothing of the tensor's data is
//! copied. Only calls a capture allows are made: `cuStreamGetCtx`, `cuPointerGetAttribute`, device attribute
//! queries and the launch; the kernel was loaded into the context before the capture began.

use crate::gpu::plan::{plan, Fold, Plan};
use crate::abi::dlpack::TensorDesc;
use crate::os::pinned;
use crate::abi::stats_kernel::{self, Batch, Partial};
use crate::graph::replay::ReplaySource as Source;
use crate::stats::compute::{ElemKind, Stats};
use crate::stats::walk::extent;

/// The kernel route for a device tensor of a captured call; None leaves it to the copy route (kernel not
/// loaded in the stream's context, GPU statistics off, a view outside one allocation, a refused launch).
pub fn kernel_source(desc: &TensorDesc, kind: ElemKind, stream: usize, per_thread: bool) -> Option<Source> {
    if !crate::state::config().gpu_stats {
        return None;
    }
    let api = stats_kernel::api()?;
    let function = crate::gpu::capture_function(api, stream, per_thread)?;
    let e = extent(desc.first_element() as u64, desc.shape(), desc.strides(), kind).ok()??;
    let plan = plan(desc.first_element() as u64, desc.shape(), desc.strides(), kind).ok()??;
    if !api.within_allocation(plan.desc.base, e.span as u64) {
        return None;
    }
    let nb = plan.desc.nblocks as usize;
    let Some(span) = pinned::reserve(nb * std::mem::size_of::<Partial>()) else {
        return Some(Source::Skipped(crate::graph::arena::full()));
    };
    let mut batch = Box::<Batch>::default();
    batch.count = 1;
    batch.d[0] = plan.desc;
    batch.d[0].partials = span.addr() as u64;
    let range = (span.addr() as u64, (span.addr() + span.len()) as u64);
    match api.launch(function, stream, per_thread, &batch, plan.desc.nblocks, range) {
        Ok(()) => Some(Source::Kernel { plan, span }),
        Err(_) => Some(Source::Error("the statistics kernel could not be added to the capture")),
    }
}

/// The statistics from the partials a replay's kernel node left in `bytes` (block order).
pub fn fold_span(plan: &Plan, bytes: &[u8]) -> Stats {
    let mut fold = Fold::new(plan);
    for chunk in bytes.chunks_exact(std::mem::size_of::<Partial>()).take(plan.desc.nblocks as usize) {
        fold.add(&crate::gpu::plan::partial_from_bytes(chunk));
    }
    fold.finish()
}
