//! What a wrapped TVM-FFI call logs, level by level. [`before`] the real call: level 1 the call line, level 3
//! the inputs record (the argument array copied, every tensor descriptor read in one batch), level 5 its
//! statistics (or the skip line of a call re-entered from a signal handler), level 10 the inputs dump, and
//! `FLASHLOG_SYNC`'s first synchronisation. [`after`] it: the second synchronisation, the outputs dump, the
//! outputs record and the NaN watch's verdict. Everything the after-phase needs travels in one [`Pending`].
//!
//! The frame around the real function (`errno`, a thread cancelled inside it) is `intercept::tvm_call`'s: it
//! holds the [`Pending`] in a `ManuallyDrop` while the real function runs, so nothing here is dropped by a
//! forced unwind. Every piece of work here runs under `state::guarded` (a panic turns logging off and the
//! host's call goes on) and inside a `state::ShimSection`.

use super::args_copy::CopiedArgs;
use crate::abi::dlpack::TensorDesc;
use crate::abi::ffi::FfiAny;
use crate::abi::prefetch::Prefetch;
use crate::abi::tvm_runtime;
use crate::config::{LEVEL_DETAILED, LEVEL_DUMP, LEVEL_STATS};
use crate::correlation::CallTag;
use crate::record::call::{push_inputs_record, push_level1_record, push_outputs_record, Outcome};
use crate::record::stats_lines::{push_skipped, Skipped};
use crate::record::tensor::StatsSource;
use crate::record::value::{start_record, ValueContext};
use crate::{buffers, clock, correlation, dump, graph, log, state, stats, sync};
use std::sync::atomic::{AtomicU32, Ordering};

/// What the records and dumps of one wrapped export need to know of it (decided once, when it is wrapped).
pub struct Export {
    /// `<module>.<export>`.
    pub name: &'static str,
    /// Whether `FLASHINFER_DUMP_INCLUDE` / `_EXCLUDE` let this call have level-3 records (decided once).
    pub detailed_allowed: bool,
    /// The module's path (level-10 dumps name it for replay).
    pub library: &'static str,
    /// The real function's address: level-10 dumps name the module file mapped there.
    pub code: usize,
    /// Calls dumped so far at level 10 (the `call<NNNN>` of folder names).
    pub dump_calls: AtomicU32,
}

impl Export {
    /// The export `name` of the module at `library`, whose real function is at `code`.
    pub fn new(name: &'static str, library: &'static str, code: usize, detailed_allowed: bool) -> Self {
        Export { name, detailed_allowed, library, code, dump_calls: AtomicU32::new(0) }
    }
}

/// What one call's logging carries from before the real call to after it. It owns pooled buffers and leases:
/// the frame makes it with [`Pending::new`], keeps it in a `ManuallyDrop` across the real call and drops it in
/// place after [`after`]; [`before`] and [`after`] fill and read it in place (it is a few hundred bytes, and
/// moving it would cost a call more than its level-1 record). The fields that own something are declared in
/// the order they are dropped.
pub struct Pending<'a> {
    /// The inputs record the NaN watch holds.
    held: Option<buffers::Buffer>,
    /// Every tensor descriptor of the arguments, read in one batch (level 3 and above).
    prefetch: Option<Prefetch>,
    /// Level 5: the statistics source of both records.
    stats: Option<CallStats>,
    /// The argument array, copied (level 3 and above).
    copied: Option<CopiedArgs>,
    /// Level 10: the dump whose inputs were saved (consumed by [`after`]).
    dumping: Option<dump::Pending>,
    export: &'a Export,
    /// The level read when the call began (not 0).
    level: u8,
    /// Made by a signal handler that interrupted the shim: no statistics, no waiting, no runtime type names.
    reentered: bool,
    /// Level 3 or above, and this export's records are not filtered out.
    detailed: bool,
    /// Level 5 in a call re-entered from a signal handler: the skip line in place of statistics.
    skipped: Option<SkippedStats>,
    /// NaN watch: the inputs record is held until the outputs show whether the call met a NaN or infinity.
    watch: bool,
    /// Whether the inputs record (or call line) was written or held (a panic there turned logging off).
    logged_inputs: bool,
    /// The call's number and thread, and whether its records carry the correlation line.
    tag: Option<CallTag>,
    /// `FLASHLOG_SYNC`: the call's stream and what its synchronisation before the call found.
    synced: Option<sync::CallSync>,
    /// The FlashInfer call this one interrupted on its thread (restored after the real call).
    interrupted: Option<Option<sync::CurrentCall>>,
}

impl<'a> Pending<'a> {
    /// A call of `export` at `level` (not 0), nothing logged yet: whether it is re-entered from a signal
    /// handler, whether it has level-3 records, and its statistics source.
    pub fn new(export: &'a Export, level: u8) -> Self {
        let reentered = state::inside_shim();
        Pending {
            held: None,
            prefetch: None,
            stats: (level >= LEVEL_STATS && !reentered).then(CallStats::new),
            copied: None,
            dumping: None,
            export,
            level,
            reentered,
            detailed: level >= LEVEL_DETAILED && export.detailed_allowed,
            skipped: (level >= LEVEL_STATS && reentered).then_some(SkippedStats(REENTERED)),
            watch: false,
            logged_inputs: false,
            tag: None,
            synced: None,
            interrupted: None,
        }
    }
}

/// Logs what is due before the real function runs, for the call `pending` (new) with the host's argument
/// array (`args`, `num_args`; copied with the fault-tolerant read, never read directly). Takes no `errno`
/// care: the frame restores the host's `errno` after this.
pub fn before(pending: &mut Pending<'_>, args: *const FfiAny, num_args: i32) {
    let Pending {
        export: f,
        level,
        reentered,
        detailed,
        watch,
        logged_inputs,
        copied,
        prefetch,
        stats,
        skipped,
        held,
        tag,
        synced,
        dumping,
        interrupted,
    } = pending;
    let f: &Export = f;
    let (level, reentered, detailed) = (*level, *reentered, *detailed);
    let section = state::ShimSection::enter();
    // The argument array is copied with the fault-tolerant read (a C host may claim more than it passes); only
    // records above level 1 read it.
    if detailed {
        *copied = state::guarded(|| CopiedArgs::read(args, num_args));
    }
    let arg_slice: &[FfiAny] = copied.as_ref().map_or(&[], |c| c.as_slice());
    // Every piece of shim logic runs under the panic guard: a panic must never unwind into the host.
    if detailed {
        *prefetch = state::guarded(|| Prefetch::read_args(arg_slice));
    }
    // Level 5: the data of small host tensors, one batch before the inputs record (and one after the call).
    if let (Some(s), Some(p)) = (stats.as_mut(), prefetch.as_ref()) {
        state::guarded(|| s.prefetch_data(p.descs(false)));
    }
    // NaN watch: the inputs record waits for the outputs (a crash inside the call leaves no inputs record).
    *watch = detailed && stats.is_some() && graph::watch::enabled();
    let watch = *watch;
    *logged_inputs = state::level() > 0
        && state::guarded(|| {
            if state::config().inject_panic.matches(f.name) {
                panic!("injected by FLASHLOG_TEST_PANIC for {}", f.name);
            }
            let mut out = buffers::take();
            let stamp = clock::now();
            let this_call = correlation::begin_call();
            *tag = Some(this_call);
            // Never from a signal handler that interrupted the shim (the driver may hold its own lock there).
            if sync::enabled() && !reentered {
                *synced = Some(sync::before_call(f.name, &this_call, arg_slice, prefetch.as_ref()));
            }
            if detailed {
                if let Some(s) = stats.as_mut() {
                    s.begin_call(f.name, arg_slice, prefetch.as_ref());
                }
                let source = stats_source(stats, skipped);
                let mut ctx = context(source, prefetch.as_ref(), reentered);
                let line = this_call.correlated.then_some(&this_call);
                push_inputs_record(&mut out, &stamp, f.name, line, arg_slice, &mut ctx);
                if let Some(c) = copied.as_ref() {
                    c.push_shortfall_line(&mut out);
                }
                if let Some(s) = stats.as_mut() {
                    s.end_phase();
                }
            } else {
                push_level1_record(&mut out, &stamp, f.name, this_call.correlated.then_some(&this_call));
            }
            if let Some(code) = synced.as_ref().and_then(|s| s.before) {
                sync::annotate_inputs(&mut out, code);
            }
            if watch {
                *held = Some(out);
            } else {
                log::write_record(&out);
            }
        })
        .is_some();
    // Level 10: the inputs are saved before the call (a thread cancelled inside it leaves the folder at
    // `inputs_saved`, as a crash would).
    if level >= LEVEL_DUMP && detailed && state::level() > 0 {
        *dumping = state::guarded(|| dump::before_call(&dump_target(f), arg_slice, prefetch.as_ref())).flatten();
    }
    drop(section);
    // Kernel-launch records made during the call name it.
    *interrupted = tag.map(|t| sync::enter_call(f.name, t));
}

/// Logs what is due after the real function returned `rc` (the frame then drops `pending`). `result` reads the
/// host's result slot (None when the call failed or passed no slot); it is asked only when a dump or an
/// outputs record needs the value.
pub fn after(pending: &mut Pending<'_>, rc: i32, result: impl Fn() -> Option<FfiAny>) {
    let Pending {
        export: f,
        level: _,
        reentered,
        detailed,
        watch,
        logged_inputs,
        copied,
        prefetch,
        stats,
        skipped,
        held,
        tag,
        synced,
        dumping,
        interrupted,
    } = pending;
    let f: &Export = f;
    let (reentered, detailed, watch, logged_inputs) = (*reentered, *detailed, *watch, *logged_inputs);
    if let Some(previous) = interrupted.take() {
        sync::leave_call(previous);
    }
    let arg_slice: &[FfiAny] = copied.as_ref().map_or(&[], |c| c.as_slice());
    // FLASHLOG_SYNC: the synchronisation after the call (a call without an outputs record gets its line now).
    let after_error = match (synced.as_ref(), tag.as_ref()) {
        (Some(s), Some(t)) if state::level() > 0 => {
            let _section = state::ShimSection::enter();
            let standalone = !(detailed && logged_inputs) || watch;
            state::guarded(|| sync::after_call(f.name, t, s, standalone)).flatten().filter(|_| !standalone)
        }
        _ => None,
    };
    if let Some(dump) = dumping.take() {
        let _section = state::ShimSection::enter();
        let value = result();
        state::guarded(|| dump::after_call(dump, rc, value.as_ref()));
    }
    // No outputs record without its inputs record (a panic there turned logging off).
    if detailed && logged_inputs && state::level() > 0 {
        let _section = state::ShimSection::enter();
        state::guarded(|| {
            if let Some(s) = stats.as_mut() {
                s.after_call();
                if let Some(p) = prefetch.as_ref() {
                    s.prefetch_data(p.descs(true));
                }
            }
            let mut out = buffers::take();
            let mut kind = Vec::new();
            let mut message = Vec::new();
            // On failure the result slot may hold anything (a callee rejecting bad arguments writes nothing).
            let result_value = result().unwrap_or_default();
            let outcome = match rc {
                0 => Outcome::Returned(&result_value),
                -1 if tvm_runtime::peek_raised_error(&mut kind, &mut message) => {
                    Outcome::Failed { kind: &kind, message: &message }
                }
                rc => Outcome::FailedWithoutError(rc),
            };
            let source = stats_source(stats, skipped);
            let mut ctx = context(source, prefetch.as_ref(), reentered);
            let line = tag.as_ref().filter(|t| t.outputs_correlated()).map(|t| (f.name, t));
            push_outputs_record(&mut out, line, outcome, arg_slice, &mut ctx);
            if let Some(code) = after_error {
                sync::annotate_outputs(&mut out, line.is_some(), code);
            }
            let Some(s) = stats.as_mut() else {
                log::write_record(&out);
                return;
            };
            s.end_phase();
            match held.take() {
                Some(mut inputs) => {
                    if !s.during_capture() {
                        graph::watch::call_checked(s.saw_nonfinite());
                    }
                    if s.saw_nonfinite() {
                        inputs.extend_from_slice(&out);
                        log::write_record(&inputs);
                    }
                }
                None => log::write_record(&out),
            }
        });
    }
}

/// The level-5 statistics of a call, with the graph layer's replay statistics for calls made during a capture.
type CallStats = stats::LiveStats<crate::graph::defer::CallState, crate::gpu::eager::Kernel>;

/// Why a call re-entered from a signal handler takes no statistics:
/// `[statistics skipped: re-entered from a signal handler]`.
const REENTERED: Skipped = Skipped::Reason("re-entered from a signal handler");

/// The statistics source of a record: live statistics, the skip line, or none (below level 5).
fn stats_source<'a>(
    live: &'a mut Option<CallStats>,
    skipped: &'a mut Option<SkippedStats>,
) -> Option<&'a mut dyn StatsSource> {
    match (live.as_mut(), skipped.as_mut()) {
        (Some(s), _) => Some(s as &mut dyn StatsSource),
        (None, Some(s)) => Some(s as &mut dyn StatsSource),
        (None, None) => None,
    }
}

/// A statistics source that takes none and says why, in place of each tensor's statistics lines.
struct SkippedStats(Skipped);

impl StatsSource for SkippedStats {
    fn write_stats(&mut self, desc: &TensorDesc, out: &mut Vec<u8>, indent: usize) {
        if desc.numel() == 0 {
            return;
        }
        push_skipped(out, indent, self.0);
    }
}

/// The context one record is built in (each record has its own budget of container items). A call re-entered
/// from a signal handler never asks the host's runtime for type names (the interrupted code may hold the
/// runtime's own lock): its objects print by type index.
fn context<'a>(
    stats: Option<&'a mut dyn StatsSource>,
    prefetch: Option<&'a Prefetch>,
    reentered: bool,
) -> ValueContext<'a> {
    start_record();
    let type_key: &'a dyn Fn(i32, &mut Vec<u8>) -> bool =
        if reentered { &|_, _| false } else { &tvm_runtime::type_key };
    ValueContext { type_key, stats, prefetch }
}

/// What a dump of this call is filed under: its name, library and per-function call number.
fn dump_target(f: &Export) -> dump::Callee<'_> {
    let sequence = f.dump_calls.fetch_add(1, Ordering::Relaxed) + 1;
    dump::Callee { name: f.name, library: f.library, sequence, code: f.code }
}
