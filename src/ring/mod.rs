//! The flight recorder: with `FLASHLOG_RING_MB=N` and a file destination, records go into a ring of N MiB in a
//! memory-mapped file instead of being appended with `write(2)`. Steady state makes no system call and takes no
//! lock: a writer notes its record in one of the process's in-flight slots, reserves its bytes with a
//! compare-exchange on the head word in the file's header (retried while other writers move it), marks the
//! record as being written, copies its text, and publishes it by storing its length and checksum and then its
//! own position (release order). When the ring is
//! full the oldest bytes are overwritten; a record whose bytes would land on an older record still being written
//! (its writer stalled for a lap or more) is dropped and counted instead, so records are never mixed. A process that
//! dies in any way leaves every published record in the kernel's page cache, hence in the file; a record its
//! writer did not finish is recognisably torn, and damaged bytes fail the record's checksum. The layout is in
//! [`format`].
//!
//! One ring per process: a forked child never writes into the mapping it inherited. The sink opens the
//! destination again in the child; a name that expands to another file (`%i`) gets a ring of its own, the
//! parent's name gets one stderr line and no records ([`open`]).

pub mod format;

use crate::os::ringmap::{Mapping, Placed, Published};
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
/// whose bytes would land on an earlier lap's record that is still being written (its writer stalled while the
/// others wrote the whole ring, once or many times) writes nothing: the record is dropped and counted, and the
/// older record is never mixed with a newer one.
static IN_FLIGHT: [AtomicU64; IN_FLIGHT_SLOTS] = [const { AtomicU64::new(0) }; IN_FLIGHT_SLOTS];
static IN_FLIGHT_SPAN: [AtomicU64; IN_FLIGHT_SLOTS] = [const { AtomicU64::new(0) }; IN_FLIGHT_SLOTS];
/// Measured with 100 threads calling at level 5 on 2 cores into an 8 MiB ring: 16 slots dropped 6-10 % of the
/// records (writers preempted mid-record held every slot), 64 slots 0.15 %, and 32 threads none. Each record
/// looks at every slot once (about 20 ns for 64). A power of two (the hash below picks a starting slot).
const IN_FLIGHT_SLOTS: usize = 64;
const _: () = assert!(IN_FLIGHT_SLOTS.is_power_of_two());
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
    let writer_of = |header: &[u8]| format::fixed_fields(header).map(|(_, pid)| pid);
    let (mapping, placed) = Mapping::create(path, total, &header, writer_of).map_err(OpenError::Failed)?;
    if let Placed::Beside { path: mine, writer } = placed {
        crate::os::signals::write_all(
            2,
            format!(
                "flashlog: ring '{path}' is written by process {writer}; this process ({pid}) writes its ring to \
                 '{mine}' (%i or %r in the name gives each process its own)\n"
            )
            .as_bytes(),
        );
    }
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
    let start = (crate::os::sys::thread_id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - IN_FLIGHT_SLOTS.trailing_zeros());
    let (i, _) = crate::os::slots::claim(&IN_FLIGHT, start as usize, |v| v == 0, (position + 1) | RESERVED)?;
    IN_FLIGHT_SPAN[i].store(span, Ordering::SeqCst);
    Some(i)
}

/// Whether the bytes of positions `[position, position + span)` lie on the bytes of an earlier record that another
/// writer may still be writing, however many laps ago it was reserved (a writer descheduled on a busy machine can
/// stall while the others write the ring several times over). A slot whose writer is still retrying its
/// reservation holds a position it may not get: such a slot overlapping this record in positions is not a
/// reservation and is skipped, and one that overlaps only on the ring costs at worst a record dropped for
/// nothing. A record whose writer never finishes (a signal handler that jumped out of the shim in the middle of
/// it) costs the records that would overwrite its bytes, about one per lap of the ring.
fn laps_an_unfinished_record(mine: usize, position: u64, span: u64, data_bytes: u64) -> bool {
    IN_FLIGHT.iter().enumerate().any(|(i, slot)| {
        let v = slot.load(Ordering::SeqCst);
        if i == mine || v == 0 {
            return false;
        }
        let other = (v & !RESERVED) - 1;
        let other_span = IN_FLIGHT_SPAN[i].load(Ordering::SeqCst);
        // Only an earlier reservation can be under this record's bytes; a later one checks this record itself.
        other + other_span <= position && share_bytes(other, other_span, position, span, data_bytes)
    })
}

/// Whether two records at positions `a` and `b` (spans `a_span`, `b_span`, each at most `data_bytes`) share a byte
/// of a ring of `data_bytes`: their offsets on the ring, `a % data_bytes` and `b % data_bytes`, overlap going
/// around the circle either way.
fn share_bytes(a: u64, a_span: u64, b: u64, b_span: u64, data_bytes: u64) -> bool {
    let (x, y) = (a % data_bytes, b % data_bytes);
    (y + data_bytes - x) % data_bytes < a_span || (x + data_bytes - y) % data_bytes < b_span
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_share_bytes_on_the_ring_whatever_lap_they_are_on() {
        const SIZE: u64 = 4096;
        // Same lap, one after the other: no byte shared.
        assert!(!share_bytes(0, 64, 64, 64, SIZE));
        // One, two and five laps apart, overlapping offsets.
        for laps in [1, 2, 5] {
            assert!(share_bytes(100 * 16, 64, 100 * 16 + laps * SIZE + 32, 64, SIZE), "{laps} laps");
            assert!(!share_bytes(100 * 16, 64, 100 * 16 + laps * SIZE + 64, 64, SIZE), "{laps} laps, after it");
            assert!(!share_bytes(100 * 16, 64, 100 * 16 + laps * SIZE - 64, 64, SIZE), "{laps} laps, before it");
        }
        // A record that wraps around the end of the area shares bytes with one at its start.
        assert!(share_bytes(SIZE - 32, 64, 3 * SIZE + 16, 16, SIZE));
        assert!(share_bytes(3 * SIZE + 16, 16, SIZE - 32, 64, SIZE));
    }

    #[test]
    fn a_writer_stalled_for_several_laps_still_holds_its_bytes() {
        const SIZE: u64 = 4096;
        // Slot 1: a writer that reserved [160, 224) and has not finished.
        IN_FLIGHT[1].store((160 + 1) | RESERVED, Ordering::SeqCst);
        IN_FLIGHT_SPAN[1].store(64, Ordering::SeqCst);
        for laps in [1, 2, 3, 40] {
            assert!(laps_an_unfinished_record(0, 160 + laps * SIZE + 48, 32, SIZE), "{laps} laps later, on its bytes");
            assert!(!laps_an_unfinished_record(0, 160 + laps * SIZE + 64, 32, SIZE), "{laps} laps later, past them");
        }
        // A slot still retrying its reservation at a stale position below this record's is not under it.
        assert!(!laps_an_unfinished_record(0, 192, 32, SIZE));
        // This record's own slot is never a conflict.
        assert!(!laps_an_unfinished_record(1, 160 + SIZE, 32, SIZE));
        IN_FLIGHT[1].store(0, Ordering::SeqCst);
        assert!(!laps_an_unfinished_record(0, 160 + 2 * SIZE, 32, SIZE), "a finished record is overwritten");
    }
}
