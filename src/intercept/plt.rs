//! The PLT route: calls that programs and modules linked with `-lcuda` make through their GOT. The shim
//! exports no CUDA name, so to see those calls it rewrites GOT slots: for every loaded object that is not a
//! libcuda and not the shim, each jump slot and data slot whose symbol is a tracked driver name
//! (the [`Wrappers`] the caller passes: `cuda::GOT_WRAPPERS`) and whose value resolves into a libcuda, to a function symbol there, gets the wrapper
//! bound to that value. Nothing else is ever written: a slot that resolves anywhere else (a library's own
//! `cuLaunchKernel`, a data object of that name), libcuda's own GOT, and at level 0 nothing at all.
//!
//! When: at the shim's constructor for the objects present at start-up (when the level read quietly from
//! the environment is above 0), and later whenever the loader's load counter moved since the last scan,
//! checked on every hooked `dlsym` (so each FlashInfer module is covered when its first export is looked
//! up) and at the start of every wrapper. Objects already processed are remembered (load bias and name)
//! until an object is unloaded; a rescan is harmless anyway: a rewritten slot holds a wrapper, which does
//! not resolve into a libcuda.
//!
//! Lazy binding: a jump slot not yet bound still points into its object's own PLT. The shim resolves it
//! the way the loader would (the global scope first, then the object's own dependencies, with the real
//! `dlsym`) and, when that lands on a libcuda function, writes the wrapper bound to it: the first call is
//! then seen too, which matters for a capture that begins with it.

use crate::abi::dl;
use crate::abi::got::{self, LoadedObject, Maps, SlotKind};
use crate::os::sys;
use crate::{config, state};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// The load counters (`dlpi_adds`, `dlpi_subs`) of the last completed scan; adds 0 = never scanned.
static SEEN_ADDS: AtomicU64 = AtomicU64::new(0);
static SEEN_SUBS: AtomicU64 = AtomicU64::new(0);
/// Process id of the thread scanning now (0 = none). A scan never waits: another thread's scan, or one
/// interrupted by the signal handler that now runs, makes this one return at once. A value left by a
/// parent process (a fork during a scan) is taken over by the child.
static SCANNER: AtomicI32 = AtomicI32::new(0);

/// Objects already processed: (load bias, hash of the path). Only touched by the thread holding `SCANNER`.
struct Processed(UnsafeCell<Vec<(usize, u64)>>);
// SAFETY: every access happens while holding `SCANNER`, so by one thread at a time.
unsafe impl Sync for Processed {}
static PROCESSED: Processed = Processed(UnsafeCell::new(Vec::new()));

/// What the rewrite asks of the driver wrappers, passed in so this module never reaches up to them.
pub struct Wrappers {
    /// Whether `name` is a driver entry point the shim wraps.
    pub tracks: fn(name: &[u8]) -> bool,
    /// The wrapper to write in a slot of tracked `name` that is bound to `real` (None: leave the slot).
    pub wrapper: fn(name: &[u8], real: usize) -> Option<usize>,
}

/// The constructor's part: scan the objects present at start-up when logging is on. The level is read
/// without building the configuration (which prints its warnings): a warning belongs to the first FlashInfer
/// lookup, not to every process that inherits `LD_PRELOAD`.
#[cfg_attr(test, allow(dead_code))]
pub fn at_startup(wrappers: &Wrappers) {
    if quiet_level() > 0 {
        let _errno = sys::ErrnoGuard::save();
        let _ = state::guarded(|| scan(wrappers));
    }
}

/// The level as the configuration will read it, without its warnings (an invalid value counts as 0).
#[cfg_attr(test, allow(dead_code))]
fn quiet_level() -> u8 {
    if sys::is_secure_execution() {
        return 0;
    }
    config::level_from_lookup(&sys::env).0
}

/// Scans what was loaded since the last scan, if anything was: one `dl_iterate_phdr` step when nothing
/// changed. Does nothing at level 0.
pub fn refresh(wrappers: &Wrappers) {
    if state::level() == 0 {
        return;
    }
    let (adds, subs) = got::load_counters();
    if adds == SEEN_ADDS.load(Ordering::Acquire) && subs == SEEN_SUBS.load(Ordering::Acquire) {
        return;
    }
    let _errno = sys::ErrnoGuard::save();
    let _ = state::guarded(|| scan(wrappers));
}

/// One scan of every loaded object not processed yet.
fn scan(wrappers: &Wrappers) {
    // SAFETY: getpid has no preconditions (not the cached pid: this must be right in a forked child).
    let me = unsafe { libc::getpid() };
    let held = SCANNER.load(Ordering::Acquire);
    if held == me || SCANNER.compare_exchange(held, me, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return;
    }
    let taken_over = held != 0;
    // SAFETY: `SCANNER` is held by this thread.
    let processed = unsafe { &mut *PROCESSED.0.get() };
    if taken_over {
        // The parent forked in the middle of a scan: its list may be half-written; start afresh (leaked).
        std::mem::forget(std::mem::take(processed));
    }
    let (objects, (adds, subs)) = got::loaded_objects();
    if subs != SEEN_SUBS.load(Ordering::Acquire) {
        // Something was unloaded: a new object may sit at an old one's address.
        processed.clear();
    }
    let drivers: Vec<&LoadedObject> = objects.iter().filter(|o| is_driver(o)).collect();
    if !drivers.is_empty() {
        let mut maps = Maps::default();
        let own = dl::own_range().0;
        for obj in &objects {
            if is_driver(obj) || obj.contains(own) || obj.dynamic == 0 {
                continue;
            }
            let key = (obj.base, hash(&obj.name));
            if processed.contains(&key) {
                continue;
            }
            let Some(handle) = dl::hold_loaded(&obj.name, obj.base) else {
                continue;
            };
            rewrite_object(obj, handle, &drivers, &mut maps, wrappers);
            dl::release(handle);
            processed.push(key);
        }
    }
    // With no libcuda loaded nothing is marked processed: a driver loaded later makes them all count.
    SEEN_SUBS.store(subs, Ordering::Release);
    SEEN_ADDS.store(adds, Ordering::Release);
    SCANNER.store(0, Ordering::Release);
}

/// Whether `obj` is a libcuda (the driver, a forwarding driver, or the vendor's driver behind one).
fn is_driver(obj: &LoadedObject) -> bool {
    obj.file_name().starts_with(b"libcuda.so")
}

fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Rewrites the slots of `obj` (held loaded by `handle`) that reach a tracked libcuda function.
fn rewrite_object(obj: &LoadedObject, handle: usize, drivers: &[&LoadedObject], maps: &mut Maps, wrappers: &Wrappers) {
    let in_driver = |addr: usize| drivers.iter().any(|d| d.contains(addr));
    // SAFETY: `handle` keeps `obj` loaded while its relocations are read and its slots written.
    unsafe {
        got::for_each_slot(obj, b"cu", |name, _, slot, kind| {
            if !(wrappers.tracks)(name.to_bytes()) {
                return;
            }
            let current = got::read_slot(slot);
            let target = if in_driver(current) {
                current
            } else if kind == SlotKind::Jump && obj.contains(current) {
                // Lazy binding, not bound yet: what the loader would bind it to.
                match dl::real_dlsym(dl::RTLD_DEFAULT, name) {
                    0 => dl::real_dlsym(handle, name),
                    found => found,
                }
            } else {
                return;
            };
            if !in_driver(target) || dl::is_own(target) || !got::is_function_at(target) {
                return;
            }
            let Some(wrapper) = (wrappers.wrapper)(name.to_bytes(), target) else {
                return;
            };
            got::write_slot(obj, slot, wrapper, maps);
        });
    }
}
