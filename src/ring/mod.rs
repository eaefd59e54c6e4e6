//! The flight recorder: with `FLASHLOG_RING_MB=N` and a file destination, records go into a ring of N MiB in a
//! memory-mapped file instead of being appended with `write(2)`. Steady state makes no system call and takes no
//! lock: a writer reserves its bytes with one atomic `fetch_add` on the head word in the file's header, marks the
//! record as being written, copies its text, and publishes it by storing its length and checksum and then its own
//! position (release order). When the ring is full the oldest bytes are overwritten. A process that dies in any
//! way leaves every published record in the kernel's page cache, hence in the file; a record its writer did not
//! finish is recognisably torn, and one mixed with another (a writer overtaken by a whole lap of the ring while
//! it copied) fails its checksum. The layout is in [`format`].
//!
//! One ring per process: a forked child never writes into the mapping it inherited. The sink opens the
//! destination again in the child; a name that expands to another file (`%i`) gets a ring of its own, the
//! parent's name gets one stderr line and no records ([`open`]).

pub mod format;

use crate::abi::ringmap::Mapping;
use format::{HEADER_BYTES, OFF_HEAD, OFF_RECORDS, OFF_SYSINFO, OFF_TOO_LARGE, RECORD_HEADER, SYSINFO_OFFSET, TORN};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// This process's ring mapping (null: none), its length, and its data area's size.
static BASE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static LEN: AtomicUsize = AtomicUsize::new(0);
static DATA_BYTES: AtomicU64 = AtomicU64::new(0);
/// The path of the ring this process (or, in a child, its parent) writes: leaked once per ring opened, never
/// freed (a child reads its parent's to recognise the same file).
static PATH: AtomicPtr<String> = AtomicPtr::new(std::ptr::null_mut());

/// Why no ring was opened.
pub enum OpenError {
    /// A forked child whose destination names its parent's ring: the line to print; it logs no records.
    ParentsRing(String),
    /// The ring could not be created: the reason (records go where an unopenable destination's go).
    Failed(String),
}

fn mapping() -> Option<Mapping> {
    let base = BASE.load(Ordering::Acquire);
    if base.is_null() {
        return None;
    }
    // SAFETY: BASE and LEN describe this process's live mapping (published after it was made, cleared before a
    // child unmaps the inherited one).
    Some(unsafe { Mapping::from_raw(base, LEN.load(Ordering::Acquire)) })
}

/// Creates this process's ring at `path` with a data area of `data_bytes`, when the first record is due.
pub fn open(path: &str, data_bytes: u64) -> Result<(), OpenError> {
    let inherited = PATH.load(Ordering::Acquire);
    // SAFETY: PATH holds a leaked String or null.
    if !inherited.is_null() && unsafe { &*inherited } == path {
        return Err(OpenError::ParentsRing(format!(
            "flashlog: this forked process does not write into its parent's ring '{path}' (no %i in its name); \
             it logs no records\n"
        )));
    }
    let pid = crate::abi::sys::pid() as u64;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let header = format::fixed_header(data_bytes, pid, now);
    let total = HEADER_BYTES + data_bytes;
    let mapping = Mapping::create(path, total, &header).map_err(OpenError::Failed)?;
    let (base, len) = mapping.raw();
    DATA_BYTES.store(data_bytes, Ordering::Release);
    LEN.store(len, Ordering::Release);
    BASE.store(base, Ordering::Release);
    PATH.store(Box::into_raw(Box::new(path.to_string())), Ordering::Release);
    Ok(())
}

/// New-process hook (run before the sink reopens its destination in a forked child): forgets and unmaps the
/// parent's ring, keeping its path to recognise it. Nothing else runs in the child meanwhile.
pub fn forget_in_child() {
    if let Some(m) = mapping() {
        BASE.store(std::ptr::null_mut(), Ordering::Release);
        LEN.store(0, Ordering::Release);
        m.unmap();
    }
}

/// Writes one record into the ring; `false` when this process has no ring (the caller writes it as usual).
pub fn write(record: &[u8]) -> bool {
    let Some(m) = mapping() else { return false };
    let data_bytes = DATA_BYTES.load(Ordering::Relaxed);
    let len = record.len() as u64;
    let span = format::record_span(len);
    if span > data_bytes || len > u64::from(u32::MAX) {
        m.word(OFF_TOO_LARGE).fetch_add(1, Ordering::Relaxed);
        return true;
    }
    let position = m.word(OFF_HEAD).fetch_add(span, Ordering::Relaxed);
    let at = (position % data_bytes) as usize;
    let data = HEADER_BYTES as usize;
    // The record's header never wraps: positions and the area's size are multiples of 16.
    let head = data + at;
    m.word(head + 8).store(len, Ordering::Relaxed);
    m.word(head).store(position | TORN, Ordering::Release);
    let text_at = (at as u64 + RECORD_HEADER) % data_bytes;
    let first = (len as usize).min((data_bytes - text_at) as usize);
    let (a, b) = record.split_at(first);
    m.copy_in(data + text_at as usize, a);
    m.copy_in(data, b);
    let sum = format::checksum(position, [a, b]);
    m.word(head + 8).store(format::length_word(len as u32, sum), Ordering::Relaxed);
    m.word(head).store(position, Ordering::Release);
    // Counted once published: a record whose writer died before this is either shown (a count one short, only
    // in the instant between these two stores) or torn, never counted as overwritten.
    m.word(OFF_RECORDS).fetch_add(1, Ordering::Relaxed);
    true
}

/// Writes the system information record into the header, where no record overwrites it; `false` when there is
/// no ring or it does not fit there (the caller then writes it as a record).
pub fn write_system_info(record: &[u8]) -> bool {
    let Some(m) = mapping() else { return false };
    if record.len() as u64 > format::SYSINFO_MAX {
        return false;
    }
    m.copy_in(SYSINFO_OFFSET as usize, record);
    let sum = format::checksum(0, [record, &[]]);
    m.word(OFF_SYSINFO).store(format::length_word(record.len() as u32, sum), Ordering::Release);
    true
}
