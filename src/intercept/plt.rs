//! The PLT route: calls that programs and modules linked with `-lcuda` make through their GOT. The shim
//! exports no CUDA name, so to see those calls it rewrites GOT slots: for every loaded object that is not a
//! libcuda and not the shim, each jump slot and data slot whose symbol is a tracked driver name (the
//! [`Wrappers`] the caller passes: `cuda::GOT_WRAPPERS`) and whose value resolves into a libcuda, to a function
//! symbol there, gets the wrapper bound to that value. Nothing else is ever written: a slot that resolves
//! anywhere else (a library's own `cuLaunchKernel`, a data object of that name), libcuda's own GOT, and at
//! level 0 nothing at all.
//!
//! When, and which loader functions each place may call (see `docs/how-it-works.md`, "The loader lock"):
//! - [`at_startup`] (the shim's constructor) and [`refresh`] (a hooked `dlsym`, which takes the loader's
//!   load lock itself right after) run a *waiting* scan: it may take the load lock (`dlopen(RTLD_NOLOAD)` to
//!   keep an object loaded, the real `dlsym` for lazy slots, `dladdr1`), so it waits for another thread's
//!   `dlopen` exactly as the host's own `dlsym` does.
//! - [`refresh_from_wrapper`] (the start of every driver wrapper) never takes the load lock: its scan runs
//!   inside the loader's list walk (no listed object can be unmapped meanwhile), rewrites only objects whose
//!   `dlopen` has relocated them (`_dl_find_object` knows them), and binds slots from what the waiting scans
//!   learnt of the drivers (their exported functions, and what the global scope resolves each name to).
//!   A lazy slot it cannot resolve that way leaves the object to the next waiting scan.
//!
//! Objects already processed are remembered by load bias and path (a hash map), with one rewritten slot as
//! their load identity (a reload at the same address with the same path no longer holds the wrapper there):
//! a scan processes only what changed, and an unload costs a walk of the list, not a rewrite of it. A rescan
//! is harmless anyway: a rewritten slot holds a wrapper, which does not resolve into a libcuda.
//!
//! Lazy binding: a jump slot not yet bound still points into its object's own PLT. The shim resolves it
//! the way the loader would (the global scope first, then the object's own dependencies, with the real
//! `dlsym`) and, when that lands on a libcuda function, writes the wrapper bound to it: the first call is
//! then seen too, which matters for a capture that begins with it.

use crate::abi::got::{self, LoadedObject, Maps, SlotKind};
use crate::abi::objects::{self, ObjectView};
use crate::abi::{cuda_driver, dl};
use crate::os::sys;
use crate::{config, state};
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// The load counters (`dlpi_adds`, `dlpi_subs`) of the last completed scan; adds 0 = never scanned.
static SEEN_ADDS: AtomicU64 = AtomicU64::new(0);
static SEEN_SUBS: AtomicU64 = AtomicU64::new(0);
/// Process id of the thread scanning now (0 = none). A scan never waits: another thread's scan, or one
/// interrupted by the signal handler that now runs, makes this one return at once. A value left by a
/// parent process (a fork during a scan) is taken over by the child.
static SCANNER: AtomicI32 = AtomicI32::new(0);

/// Objects a lock-free scan found still being loaded (listed, not yet relocated): (first segment, load
/// bias) of up to [`PENDING_SLOTS`] of them. A wrapper rescans as soon as one of them is relocated.
const PENDING_SLOTS: usize = 4;
static PENDING: [[AtomicUsize; 2]; PENDING_SLOTS] = [const { [const { AtomicUsize::new(0) }; 2] }; PENDING_SLOTS];
static ANY_PENDING: AtomicBool = AtomicBool::new(false);

/// Per entry, the driver functions a waiting scan found exported by a libcuda (`dlsym` in the driver, checked
/// to be a function): what a lock-free scan accepts as a slot's target, and what names a `cuGetProcAddress`
/// answer without `dladdr`.
static KNOWN: [[AtomicUsize; KNOWN_PER_ENTRY]; MAX_ENTRIES] =
    [const { [const { AtomicUsize::new(0) }; KNOWN_PER_ENTRY] }; MAX_ENTRIES];
/// Per entry, what the global scope resolved the name to at the last waiting scan, when that is a libcuda
/// function (0 otherwise): the lock-free scan's answer for a lazy slot not bound yet.
static GLOBAL_DEF: [AtomicUsize; MAX_ENTRIES] = [const { AtomicUsize::new(0) }; MAX_ENTRIES];

/// Objects scans have processed.
#[derive(Default)]
struct Registry {
    /// (load bias, hash of the path) -> what was done.
    done: HashMap<(usize, u64), Done>,
    /// Scan number, stamped on the entries of the objects a scan still saw listed.
    generation: u64,
}

struct Done {
    generation: u64,
    /// One slot written and the wrapper written there: the load identity of this object.
    probe: Option<(usize, usize)>,
    /// Some slot could not be resolved without the load lock: the next waiting scan redoes the object.
    partial: bool,
}

struct Processed(UnsafeCell<Option<Registry>>);
// SAFETY: every access happens while holding `SCANNER`, so by one thread at a time.
unsafe impl Sync for Processed {}
static PROCESSED: Processed = Processed(UnsafeCell::new(None));

/// How many driver entry points a [`Wrappers`] may track (the tables of what the scans learnt are this long).
pub const MAX_ENTRIES: usize = 32;
/// How many distinct functions a libcuda (or several) may export under one tracked name and still be known.
pub const KNOWN_PER_ENTRY: usize = 4;

/// What the rewrite asks of the driver wrappers, passed in so this module never reaches up to them. An entry
/// is a number below `count`, the same in every function here.
pub struct Wrappers {
    /// How many entry points are tracked (at most [`MAX_ENTRIES`]).
    pub count: usize,
    /// The driver symbol of `entry` (looked up in each libcuda by a waiting scan).
    pub symbol: fn(entry: usize) -> &'static str,
    /// The entry whose driver symbol is `name`; None for a name the shim does not wrap.
    pub entry_of: fn(name: &[u8]) -> Option<usize>,
    /// The wrapper to write in a slot of `entry` that is bound to `real` (None: leave the slot).
    pub wrapper: fn(entry: usize, real: usize) -> Option<usize>,
}

/// The constructor's part: scan the objects present at start-up when logging is on. The level is read
/// without building the configuration (which prints its warnings): a warning belongs to the first FlashInfer
/// lookup, not to every process that inherits `LD_PRELOAD`.
#[cfg_attr(test, allow(dead_code))]
pub fn at_startup(wrappers: &Wrappers) {
    objects::prepare();
    if quiet_level() > 0 {
        let _errno = sys::ErrnoGuard::save();
        let _ = state::guarded(|| scan(wrappers, Mode::Waiting));
    }
}

/// The level as the configuration will read it, without its warnings (an invalid value counts as 0).
fn quiet_level() -> u8 {
    if sys::is_secure_execution() {
        return 0;
    }
    config::level_from_lookup(&sys::env).0
}

/// From a hooked `dlsym` (which waits for the loader's load lock right after anyway): scans what was loaded
/// since the last scan, and redoes objects a lock-free scan left partial. Does nothing at level 0.
pub fn refresh(wrappers: &Wrappers) {
    if state::level() == 0 {
        return;
    }
    if !counters_moved() && !WAITING_SCAN_WANTED.load(Ordering::Acquire) {
        return;
    }
    let _errno = sys::ErrnoGuard::save();
    let _ = state::guarded(|| scan(wrappers, Mode::Waiting));
}

/// Set when a lock-free scan left work that only a waiting scan can do: an object with a slot it could not
/// resolve, or one whose relocation it could not judge (glibc without `_dl_find_object`).
static WAITING_SCAN_WANTED: AtomicBool = AtomicBool::new(false);

/// From a driver wrapper: the same, without ever taking the loader's load lock (never waits for another
/// thread's `dlopen` or its constructors). One list-lock step when nothing changed.
pub fn refresh_from_wrapper(wrappers: &Wrappers) {
    if state::level() == 0 {
        return;
    }
    if !counters_moved() && !pending_relocated() {
        return;
    }
    let _errno = sys::ErrnoGuard::save();
    let _ = state::guarded(|| scan(wrappers, Mode::LockFree));
}

fn counters_moved() -> bool {
    let (adds, subs) = got::load_counters();
    adds != SEEN_ADDS.load(Ordering::Acquire) || subs != SEEN_SUBS.load(Ordering::Acquire)
}

/// Whether an object a lock-free scan found still loading has been relocated since (lock-free).
fn pending_relocated() -> bool {
    ANY_PENDING.load(Ordering::Acquire)
        && PENDING.iter().any(|[addr, base]| {
            let addr = addr.load(Ordering::Acquire);
            addr != 0 && objects::is_relocated(addr, base.load(Ordering::Acquire)) == Some(true)
        })
}

/// Which loader functions a scan may call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Any (may wait for another thread's `dlopen`).
    Waiting,
    /// None that takes the load lock.
    LockFree,
}

/// One scan: every listed object not processed yet (or no longer the object that was processed there).
fn scan(wrappers: &Wrappers, mode: Mode) {
    // SAFETY: getpid has no preconditions (not the cached pid: this must be right in a forked child).
    let me = unsafe { libc::getpid() };
    let held = SCANNER.load(Ordering::Acquire);
    if held == me || SCANNER.compare_exchange(held, me, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return;
    }
    // SAFETY: `SCANNER` is held by this thread.
    let slot = unsafe { &mut *PROCESSED.0.get() };
    if held != 0 {
        // The parent forked in the middle of a scan: its registry may be half-written; start afresh (leaked).
        std::mem::forget(slot.take());
    }
    let registry = slot.get_or_insert_with(Registry::default);
    registry.generation += 1;
    let generation = registry.generation;
    let own = dl::own_range().0;
    let mut drivers: Vec<LoadedObject> = Vec::new();
    let mut fresh: Vec<LoadedObject> = Vec::new();
    let (adds, subs) = objects::walk(|v| {
        if is_driver(v.file_name()) {
            drivers.push(v.to_owned());
            return;
        }
        if v.contains(own) {
            return;
        }
        match registry.done.get_mut(&key(v.base, v.name)) {
            Some(done) if same_load(done, v) && !(mode == Mode::Waiting && done.partial) => {
                done.generation = generation
            }
            _ => fresh.push(v.to_owned()),
        }
    });
    if subs != SEEN_SUBS.load(Ordering::Acquire) {
        // Something was unloaded: forget what is no longer listed (a walk, not a rewrite of everything).
        registry.done.retain(|_, d| d.generation == generation);
    }
    fresh.retain(|o| o.dynamic != 0);
    if !drivers.is_empty() {
        match mode {
            Mode::Waiting => {
                learn_drivers(wrappers, &drivers);
                let mut maps = Maps::default();
                for obj in &fresh {
                    let Some(handle) = dl::hold_loaded(&obj.name, obj.base) else {
                        continue;
                    };
                    let outcome = rewrite_object(obj, Resolve::Loader(handle), &drivers, &mut maps, wrappers);
                    dl::release(handle);
                    record(registry, obj, outcome, generation);
                }
                clear_pending();
                WAITING_SCAN_WANTED.store(registry.done.values().any(|d| d.partial), Ordering::Release);
            }
            Mode::LockFree => rewrite_listed(registry, &fresh, &drivers, generation, wrappers),
        }
    }
    // With no libcuda loaded nothing is marked processed: a driver loaded later makes them all count.
    SEEN_SUBS.store(subs, Ordering::Release);
    SEEN_ADDS.store(adds, Ordering::Release);
    SCANNER.store(0, Ordering::Release);
}

/// The lock-free scan's rewrite: a second walk, rewriting each fresh object inside it (so none can be unmapped
/// meanwhile) once `_dl_find_object` says its `dlopen` has relocated it; the others become pending.
fn rewrite_listed(
    registry: &mut Registry,
    fresh: &[LoadedObject],
    drivers: &[LoadedObject],
    generation: u64,
    wrappers: &Wrappers,
) {
    if fresh.is_empty() {
        return;
    }
    let wanted: HashMap<(usize, u64), usize> =
        fresh.iter().enumerate().map(|(i, o)| (key(o.base, &o.name), i)).collect();
    let mut maps = Maps::default();
    let mut pending: Vec<(usize, usize)> = Vec::new();
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    let mut unjudged = false;
    objects::walk(|v| {
        let Some(&i) = wanted.get(&key(v.base, v.name)) else {
            return;
        };
        let first = v.first_segment();
        match objects::is_relocated(first, v.base) {
            Some(true) => {}
            Some(false) => {
                pending.push((first, v.base));
                return;
            }
            None => {
                unjudged = true;
                return;
            }
        }
        outcomes.push((i, rewrite_object(&v.to_owned(), Resolve::Known, drivers, &mut maps, wrappers)));
    });
    for (i, outcome) in outcomes {
        record(registry, &fresh[i], outcome, generation);
    }
    clear_pending();
    for (slot, (addr, base)) in PENDING.iter().zip(&pending) {
        slot[1].store(*base, Ordering::Release);
        slot[0].store(*addr, Ordering::Release);
    }
    ANY_PENDING.store(!pending.is_empty(), Ordering::Release);
    if unjudged || registry.done.values().any(|d| d.partial) {
        WAITING_SCAN_WANTED.store(true, Ordering::Release);
    }
}

fn clear_pending() {
    ANY_PENDING.store(false, Ordering::Release);
    for [addr, _] in &PENDING {
        addr.store(0, Ordering::Release);
    }
}

fn record(registry: &mut Registry, obj: &LoadedObject, outcome: Outcome, generation: u64) {
    let done = Done { generation, probe: outcome.probe, partial: outcome.unresolved };
    registry.done.insert(key(obj.base, &obj.name), done);
}

/// Whether the listed object `v` is still the one `done` describes: its probe slot (when it had one) still
/// holds the wrapper written there. Read inside the walk, where the object cannot be unmapped.
fn same_load(done: &Done, v: &ObjectView) -> bool {
    match done.probe {
        // SAFETY: `slot` lies in a mapped segment of `v` (checked), read during the walk.
        Some((slot, wrapper)) => v.contains(slot) && slot % 8 == 0 && unsafe { got::read_slot(slot) } == wrapper,
        None => true,
    }
}

fn key(base: usize, name: &[u8]) -> (usize, u64) {
    (base, hash(name))
}

/// The waiting scan's part for the drivers: the functions each exports under a tracked name, what the global
/// scope resolves each name to, and the driver functions the shim calls itself (so that no wrapper needs the
/// load lock to find them later).
fn learn_drivers(wrappers: &Wrappers, drivers: &[LoadedObject]) {
    let in_driver = |addr: usize| drivers.iter().any(|d| d.contains(addr));
    let count = wrappers.count.min(MAX_ENTRIES);
    let symbols: Vec<CString> =
        (0..count).map(|e| CString::new((wrappers.symbol)(e)).unwrap_or_default()).collect();
    for driver in drivers {
        let Some(handle) = dl::hold_loaded(&driver.name, driver.base) else {
            continue;
        };
        for (entry, symbol) in symbols.iter().enumerate() {
            let found = dl::real_dlsym(handle, symbol);
            if driver.contains(found) && got::is_function_at(found) {
                remember_known(entry, found);
            }
        }
        dl::release(handle);
    }
    for (entry, symbol) in symbols.iter().enumerate() {
        let found = dl::real_dlsym(dl::RTLD_DEFAULT, symbol);
        let found = if in_driver(found) && got::is_function_at(found) { found } else { 0 };
        GLOBAL_DEF[entry].store(found, Ordering::Release);
    }
    objects::prepare();
    let _ = cuda_driver::driver();
}

fn remember_known(entry: usize, addr: usize) {
    for slot in &KNOWN[entry] {
        match slot.compare_exchange(0, addr, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(v) if v == addr => return,
            Err(_) => {}
        }
    }
}

/// Whether `addr` is a function a libcuda exports as `entry` (learnt by a waiting scan; lock-free).
pub fn is_known_driver_function(entry: usize, addr: usize) -> bool {
    addr != 0 && KNOWN.get(entry).is_some_and(|known| known.iter().any(|k| k.load(Ordering::Acquire) == addr))
}

/// Whether `name` is a libcuda's (the driver, a forwarding driver, or the vendor's driver behind one).
fn is_driver(file_name: &[u8]) -> bool {
    file_name.starts_with(b"libcuda.so")
}

fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// How a slot's target is found.
#[derive(Clone, Copy)]
enum Resolve {
    /// With the loader (the object held loaded by this handle): the real `dlsym`, `dladdr1`.
    Loader(usize),
    /// From what the waiting scans learnt ([`KNOWN`], [`GLOBAL_DEF`]), without the load lock.
    Known,
}

/// What rewriting one object did.
#[derive(Default)]
struct Outcome {
    /// One slot written and its wrapper.
    probe: Option<(usize, usize)>,
    /// A driver slot that could not be resolved in this mode.
    unresolved: bool,
}

/// Rewrites the slots of `obj` (kept mapped by the caller) that reach a tracked libcuda function.
fn rewrite_object(
    obj: &LoadedObject,
    resolve: Resolve,
    drivers: &[LoadedObject],
    maps: &mut Maps,
    wrappers: &Wrappers,
) -> Outcome {
    let in_driver = |addr: usize| drivers.iter().any(|d| d.contains(addr));
    let mut outcome = Outcome::default();
    // SAFETY: the caller keeps `obj` mapped (a reference taken with dlopen, or the loader's list lock) while
    // its relocations are read and its slots written.
    unsafe {
        got::for_each_slot(obj, b"cu", |name, _, slot, kind| {
            let Some(entry) = (wrappers.entry_of)(name.to_bytes()).filter(|&e| e < MAX_ENTRIES) else {
                return;
            };
            let current = got::read_slot(slot);
            let lazy = kind == SlotKind::Jump && obj.contains(current);
            let target = match resolve {
                _ if in_driver(current) => current,
                Resolve::Loader(handle) if lazy => match dl::real_dlsym(dl::RTLD_DEFAULT, name) {
                    // Lazy binding, not bound yet: what the loader would bind it to.
                    0 => dl::real_dlsym(handle, name),
                    found => found,
                },
                Resolve::Known if lazy => GLOBAL_DEF[entry].load(Ordering::Acquire),
                _ => return,
            };
            if !in_driver(target) || dl::is_own(target) {
                outcome.unresolved |= lazy && target == 0 && matches!(resolve, Resolve::Known);
                return;
            }
            let is_function = match resolve {
                Resolve::Loader(_) => got::is_function_at(target),
                Resolve::Known => is_known_driver_function(entry, target),
            };
            if !is_function {
                outcome.unresolved |= matches!(resolve, Resolve::Known);
                return;
            }
            let Some(wrapper) = (wrappers.wrapper)(entry, target) else {
                return;
            };
            if got::write_slot_as_loaded(obj, slot, wrapper, maps) && outcome.probe.is_none() {
                outcome.probe = Some((slot, wrapper));
            }
        });
    }
    outcome
}
