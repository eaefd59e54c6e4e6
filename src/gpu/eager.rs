//! Eager level 5 on the GPU: before a record is written, the phase's device tensors are planned, launched in
//! batches of up to 23 per launch on their call's stream, the stream is synchronised once (the synchronisation
//! the copy path makes anyway), and the block partials are folded into statistics that the record then writes.
//! A tensor the kernel cannot take (no kernel, a capturing stream, a failed launch) is left to the copy path.

use super::plan::{plan, Fold, Plan};
use crate::abi::cuda_driver::{self, Driver};
use crate::abi::dlpack::{device_type, TensorDesc};
use crate::os::scratch::{Lease, Reset, ScratchPool};
use crate::abi::stats_kernel::{self, Batch, KernelApi, Partial, PartialsArena, MAX_TENSORS};
use crate::stats::compute::ElemKind;
use crate::stats::gate;
use crate::stats::walk::extent;

/// Partials of one round: four tensors of the largest split, or thousands of small ones.
const ARENA_SLOTS: usize = 4 * super::plan::MAX_BLOCKS as usize;
/// Views whose visited elements exceed their span by more than this are left to the host path's rule.
const OVERLAP_SLACK_BYTES: u128 = crate::stats::STAGING_BYTES as u128;

pub use crate::stats::GpuResult;

/// The eager kernel route as the statistics layer takes it ([`crate::stats::KernelRoute`]).
pub struct Kernel;

impl crate::stats::KernelRoute for Kernel {
    type Phase = Lease<Phase, 16>;

    fn run_phase(
        descs: impl Iterator<Item = TensorDesc>,
        sync: &mut dyn FnMut(i32, usize) -> bool,
    ) -> Option<Lease<Phase, 16>> {
        run_phase(descs, sync)
    }
}

impl crate::stats::KernelPhase for Lease<Phase, 16> {
    fn get(&mut self, desc: &TensorDesc) -> Option<GpuResult> {
        Phase::get(self, desc)
    }
}

/// Identity of a tensor within a phase (the descriptor's fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    data: usize,
    byte_offset: u64,
    device_id: i32,
    dtype: (u8, u8, u16),
    ndim: usize,
    dims: [i64; 16],
}

impl Key {
    fn of(desc: &TensorDesc) -> Option<Key> {
        if desc.ndim > 8 {
            return None;
        }
        let mut dims = [0i64; 16];
        dims[..desc.ndim].copy_from_slice(desc.shape());
        dims[8..8 + desc.ndim].copy_from_slice(desc.strides());
        Some(Key {
            data: desc.data,
            byte_offset: desc.byte_offset,
            device_id: desc.device.device_id,
            dtype: (desc.dtype.code, desc.dtype.bits, desc.dtype.lanes),
            ndim: desc.ndim,
            dims,
        })
    }
}

struct Pending {
    key: Key,
    plan: Plan,
    first_slot: usize,
    device_id: i32,
    stream: usize,
    launched: bool,
}

/// The GPU statistics of one phase (pooled: steady state allocates nothing).
#[derive(Default)]
pub struct Phase {
    arena: Option<PartialsArena>,
    batch: Box<Batch>,
    batch_stream: usize,
    batch_function: usize,
    batch_blocks: u32,
    next_slot: usize,
    pending: Vec<Pending>,
    results: Vec<(Key, GpuResult)>,
    cursor: usize,
    partials: Vec<Partial>,
}

impl Reset for Phase {
    fn reset(&mut self) {
        self.batch.count = 0;
        self.batch_blocks = 0;
        self.next_slot = 0;
        self.pending.clear();
        self.results.clear();
        self.cursor = 0;
    }
}

static PHASES: ScratchPool<Phase, 16> = ScratchPool::new();

impl Phase {
    /// The GPU result for `desc`, when the phase computed one. Looked up in phase order first.
    pub fn get(&mut self, desc: &TensorDesc) -> Option<GpuResult> {
        let key = Key::of(desc)?;
        let n = self.results.len();
        let start = self.cursor.min(n);
        let hit = (start..n).chain(0..start).find(|&i| self.results[i].0 == key)?;
        self.cursor = hit + 1;
        Some(self.results[hit].1)
    }

    /// Launches the batch being filled, if any.
    fn launch(&mut self, api: &KernelApi) {
        let Some(arena) = self.arena.as_ref().filter(|_| self.batch.count > 0) else {
            return;
        };
        let ok = api
            .launch(self.batch_function, self.batch_stream, false, &self.batch, self.batch_blocks, arena.range())
            .is_ok();
        for p in self.pending.iter_mut().filter(|p| !p.launched) {
            p.launched = ok;
        }
        if !ok {
            self.pending.retain(|p| p.launched);
        }
        self.batch.count = 0;
        self.batch_blocks = 0;
    }

    /// Launches what is left, synchronises every stream used, folds every launched tensor.
    fn finish_round(&mut self, api: &KernelApi, sync: &mut dyn FnMut(i32, usize) -> bool) {
        self.launch(api);
        let mut synced_all = true;
        for i in 0..self.pending.len() {
            let (dev, stream) = (self.pending[i].device_id, self.pending[i].stream);
            if !self.pending[..i].iter().any(|p| (p.device_id, p.stream) == (dev, stream)) {
                synced_all &= sync(dev, stream);
            }
        }
        let Some(arena) = self.arena.as_ref() else {
            return;
        };
        if synced_all {
            for p in &self.pending {
                let nb = p.plan.desc.nblocks as usize;
                self.partials.resize(nb, Partial::default());
                arena.read(p.first_slot, &mut self.partials[..nb]);
                let mut fold = Fold::new(&p.plan);
                for part in &self.partials[..nb] {
                    fold.add(part);
                }
                self.results.push((p.key, GpuResult::Stats(fold.finish())));
            }
        }
        self.pending.clear();
        self.next_slot = 0;
    }
}

/// Runs the kernel over the phase's device tensors; None when there were none or the GPU route is off.
/// `sync(device_id, stream)` synchronises a stream once per phase (false on failure).
pub fn run_phase(
    descs: impl Iterator<Item = TensorDesc>,
    sync: &mut dyn FnMut(i32, usize) -> bool,
) -> Option<Lease<Phase, 16>> {
    let config = crate::state::config();
    if !config.gpu_stats || crate::capture::any_active() {
        return None;
    }
    let mut relaxed: Option<gate::Relaxed<'static>> = None;
    let mut phase: Option<Lease<Phase, 16>> = None;
    let mut api: Option<(&'static KernelApi, &'static Driver)> = None;
    for desc in descs {
        if desc.device.device_type != device_type::CUDA || desc.numel() == 0 {
            continue;
        }
        let (Some(key), Some(kind)) =
            (Key::of(&desc), ElemKind::from_dlpack(desc.dtype.code, desc.dtype.bits, desc.dtype.lanes))
        else {
            continue;
        };
        let Ok(Some(e)) = extent(desc.first_element() as u64, desc.shape(), desc.strides(), kind) else {
            continue;
        };
        let walked = e.walked as u128 * kind.elem_bytes() as u128;
        if walked > e.span && walked - e.span > OVERLAP_SLACK_BYTES {
            continue;
        }
        let bytes = walked.min(e.span);
        let stream = crate::stats::source::call_stream(desc.device.device_id);
        // The capture gate, as on the copy route: nothing here (no load, launch or synchronisation) for a stream
        // the driver says is capturing or cannot say about; the shim's own calls run in RELAXED capture mode, so
        // a GLOBAL capture begun elsewhere by a route the shim never saw neither refuses nor invalidates them.
        let driver = cuda_driver::driver()?;
        if gate::query(driver, stream, false).is_err() {
            continue;
        }
        if relaxed.is_none() {
            match gate::enter(driver, stream, false) {
                Ok(guard) => relaxed = Some(guard),
                Err(_) => continue,
            }
        }
        if api.is_none() {
            if !matches!(super::ensure_loaded(), super::Route::Kernel { .. }) {
                return phase;
            }
            api = Some((stats_kernel::api()?, cuda_driver::driver()?));
        }
        let (kapi, driver) = api?;
        let ph = phase.get_or_insert_with(|| PHASES.take());
        let cap = config.gpu_stats_max_gb;
        if cap > 0.0 && bytes as f64 > cap * (1u64 << 30) as f64 {
            ph.results.push((key, GpuResult::OverCap { bytes, cap_gb: cap }));
            continue;
        }
        let Some(function) = super::function_for(kapi, stream) else {
            continue;
        };
        let Ok(Some(plan)) = plan(desc.first_element() as u64, desc.shape(), desc.strides(), kind) else {
            continue;
        };
        if !kapi.within_allocation(plan.desc.base, e.span as u64) {
            continue;
        }
        if ph.arena.is_none() {
            ph.arena = PartialsArena::alloc(driver, ARENA_SLOTS);
            if ph.arena.is_none() {
                return phase;
            }
        }
        let nb = plan.desc.nblocks as usize;
        if ph.next_slot + nb > ARENA_SLOTS {
            ph.finish_round(kapi, sync);
        }
        if ph.batch.count as usize == MAX_TENSORS
            || (ph.batch.count > 0 && (ph.batch_stream, ph.batch_function) != (stream, function))
        {
            ph.launch(kapi);
        }
        let arena = ph.arena.as_ref()?;
        let mut d = plan.desc;
        d.partials = arena.slot_addr(ph.next_slot);
        let i = ph.batch.count as usize;
        ph.batch.d[i] = d;
        ph.batch.count += 1;
        ph.batch_stream = stream;
        ph.batch_function = function;
        ph.batch_blocks = ph.batch_blocks.max(d.nblocks);
        let first_slot = ph.next_slot;
        ph.next_slot += nb;
        ph.pending.push(Pending { key, plan, first_slot, device_id: desc.device.device_id, stream, launched: false });
    }
    if let (Some(ph), Some((kapi, _))) = (phase.as_mut(), api) {
        ph.finish_round(kapi, sync);
    }
    drop(relaxed);
    phase
}
