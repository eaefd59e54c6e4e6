//! The flight recorder: with `FLASHLOG_RING_MB=N` and a file destination, records go into a ring of N MiB in a
//! memory-mapped file instead of being appended with `write(2)`. Steady state makes no system call and takes no
//! lock: a writer notes its record in one of the process's in-flight slots, reserves its bytes with a
//! compare-exchange on the head word in the file's header (retried while other writers move it), marks the
//! record as being written, copies its text, and publishes it by storing its length and checksum and then its
//! own position (release order). When the ring is
//! full the oldest bytes are overwritten; a record whose bytes would land on an older record still being written
//! (its writer stalled for a whole lap) is dropped and counted instead, so records are never mixed. A process that
//! dies in any way leaves every published record in the kernel's page cache, hence in the file; a record its
//! writer did not finish is recognisably torn, and damaged bytes fail the record's checksum. The layout is in
//! [`format`].
//!
//! One ring per process: a forked child never writes into the mapping it inherited. The sink opens the
//! destination again in the child; a name that expands to another file (`%i`) gets a ring of its own, the
//! parent's name gets one stderr line and no records ([`open`]).

pub mod format;

use crate::os::ringmap::{Mapping, Published};
use format::{
    HEADER_BYTES, OFF_DROPPED, OFF_HEAD, OFF_RECORDS, OFF_SYSINFO, OFF_TOO_LARGE, RECORD_HEADER, SYSINFO_OFFSET, TORN,
};
use std::sync::atomic::{AtomicU64, Ordering};

/// This process's ring mapping and the path of the ring this process (or, in a child, its parent) writes (a
/// child reads its parent's to recognise the same file).
static RING: Published = Published::new();
/// The data area's size of this process's ring.
static DATA_BYTES: AtomicU64 = AtomicU64::new(0);

/// Unfinished records of this process: each slot holds one plus the position its writer is reserving or has
/// reserved, with [`RESERVED`] set; 0 when free. [`IN_FLIGHT_SPAN`] holds the record's span. A writer publishes
/// the position it is about to reserve before the compare-exchange that reserves it (and publishes the new one
/// before each retry), so a writer that reserved later always sees an earlier writer's true position. A writer
/// whose bytes would land on a previous lap's record that is still being written (its writer stalled while the
/// others wrote the whole ring) writes nothing: the record is dropped and counted, and the older record is never
/// mixed with a newer one.
static IN_FLIGHT: [AtomicU64; IN_FLIGHT_SLOTS] = [const { AtomicU64::new(0) }; IN_FLIGHT_SLOTS];
static IN_FLIGHT_SPAN: [AtomicU64; IN_FLIGHT_SLOTS] = [const { AtomicU64::new(0) }; IN_FLIGHT_SLOTS];
const IN_FLIGHT_SLOTS: usize = 16;
/// In an [`IN_FLIGHT`] slot: marks a used slot (the value is never 0 with it set).
const RESERVED: u64 = 1 << 63;

/// Why no ring was opened.
pub enum OpenError {
    /// A forked child whose destination names its parent's ring: the line to print; it logs no records.
    ParentsRing(String),
    /// The ring could not be created: the reason (records go where an unopenable destination's go).
    Failed(String),
}

fn mapping() -> Option<Mapping> {
    RING.get()
}

/// Creates this process's ring at `path` with a data area of `data_bytes`, when the first record is due.
pub fn open(path: &str, data_bytes: u64) -> Result<(), OpenError> {
    if RING.path() == Some(path) {
        return Err(OpenError::ParentsRing(format!(
            "flashlog: this forked process does not write into its parent's ring '{path}' (no %i in its name); \
             it logs no records\n"
        )));
    }
    let pid = crate::os::process::pid() as u64;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let header = format::fixed_header(data_bytes, pid, now);
    let total = HEADER_BYTES + data_bytes;
    let mapping = Mapping::create(path, total, &header).map_err(OpenError::Failed)?;
    DATA_BYTES.store(data_bytes, Ordering::Release);
    RING.set(mapping, path);
    Ok(())
}

/// New-process hook (run before the sink reopens its destination in a forked child): forgets and unmaps the
/// parent's ring, keeping its path to recognise it. Nothing else runs in the child meanwhile.
pub fn forget_in_child() {
    if let Some(m) = RING.forget() {
        m.unmap();
    }
    // The parent's writers do not exist here.
    for slot in &IN_FLIGHT {
        slot.store(0, Ordering::Relaxed);
    }
}

/// Claims a free in-flight slot for a record of `span` bytes that is about to be reserved at `position`; `None`
/// when all are taken (then as many records as there are slots are being written at once, signal handlers
/// included). The span is stored before the caller's reservation, so whoever sees the slot sees its span.
fn claim_slot(position: u64, span: u64) -> Option<usize> {
    // Thread identifiers share their low bits (they are aligned addresses): spread them with a multiplicative hash.
    let start = (crate::os::sys::thread_id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
    let (i, _) = crate::os::slots::claim(&IN_FLIGHT, start as usize, |v| v == 0, (position + 1) | RESERVED)?;
    IN_FLIGHT_SPAN[i].store(span, Ordering::SeqCst);
    Some(i)
}

/// Whether the bytes of positions `[position, position + span)` lie on a previous lap's record that another
/// writer may still be writing. A slot whose writer is still retrying its reservation holds a position it may
/// not get (conservative: at worst this record is dropped for nothing). A record whose writer never finishes (a
/// signal handler that jumped out of the shim in the middle of it) costs the records that would overwrite its
/// bytes, about one per lap of the ring.
fn laps_an_unfinished_record(mine: usize, position: u64, span: u64, data_bytes: u64) -> bool {
    // This record's bytes are those of positions [position - size, position + span - size) of the previous lap.
    let Some(limit) = (position + span).checked_sub(data_bytes) else { return false };
    let lap_start = position.saturating_sub(data_bytes);
    IN_FLIGHT.iter().enumerate().any(|(i, slot)| {
        let v = slot.load(Ordering::SeqCst);
        if i == mine || v == 0 {
            return false;
        }
        let other = (v & !RESERVED) - 1;
        other < limit && other + IN_FLIGHT_SPAN[i].load(Ordering::SeqCst) > lap_start
    })
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
    // The slot holds the position before the compare-exchange that reserves it (all sequentially consistent), so
    // a later writer that reserves bytes on this record's lap always sees where this record is.
    let head = m.word(OFF_HEAD);
    let mut position = head.load(Ordering::SeqCst);
    let Some(slot) = claim_slot(position, span) else {
        m.word(OFF_DROPPED).fetch_add(1, Ordering::Relaxed);
        return true;
    };
    while let Err(now) = head.compare_exchange_weak(position, position + span, Ordering::SeqCst, Ordering::SeqCst) {
        position = now;
        IN_FLIGHT[slot].store((position + 1) | RESERVED, Ordering::SeqCst);
    }
    if laps_an_unfinished_record(slot, position, span, data_bytes) {
        IN_FLIGHT[slot].store(0, Ordering::Release);
        m.word(OFF_DROPPED).fetch_add(1, Ordering::Relaxed);
        return true;
    }
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
    IN_FLIGHT[slot].store(0, Ordering::Release);
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
