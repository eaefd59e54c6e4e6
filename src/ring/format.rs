//! The layout of a ring file (the flight recorder, `FLASHLOG_RING_MB`), shared by the writer in the library and
//! the reader of `flashlog show` / `flashlog summary` (the launcher includes this file by path). Pure: no I/O.
//!
//! A ring file is a header of [`HEADER_BYTES`] followed by a data area of `data_bytes` (a multiple of
//! [`DATA_ALIGN`]). All integers are little-endian.
//!
//! Header (offsets in bytes):
//! - 0: [`MAGIC`]; 8: version (u32, [`VERSION`]); 12: header size (u32, [`HEADER_BYTES`]);
//! - 16: data size (u64); 24: process id of the writer (u64); 32: creation time (u64, ns since the epoch);
//! - 40: checksum of bytes 0..40 (u32, [`checksum`] with position 0);
//! - 64: head (u64): bytes ever reserved in the data area, the position the next record starts at;
//! - 72: records (u64): records ever published; 80: records too large for the ring (u64, never stored);
//! - 88: records dropped (u64): their bytes would have landed on an older record still being written;
//! - 96: the system information record: length (low 32 bits) and checksum (high 32 bits) in one u64, written
//!   last, the record's bytes at [`SYSINFO_OFFSET`] (it is never overwritten, so every ring names its process).
//!
//! Data area: records one after another at 16-byte aligned positions; position `p` (monotonic) lives at offset
//! `p % data_bytes`. A record is a 16-byte header and its text (which may wrap around the end of the area):
//! - word 0 (u64): `p | TORN` while it is being written, `p` once it is whole (stored last, with release order);
//! - word 1 (u64): text length (low 32 bits) and the [`checksum`] of position, length and text (high 32 bits).
//!
//! A reader finds records by their own position: at a candidate position `c`, word 0 equal to `c` starts a whole
//! record (its checksum then tells a damaged one), `c | TORN` a record its writer never finished; anything else
//! is older data or the middle of a record, and the reader looks 16 bytes further.

/// First 8 bytes of a ring file.
pub const MAGIC: [u8; 8] = *b"FLRING\x00\x01";
/// The version of this layout.
pub const VERSION: u32 = 1;
/// Bytes before the data area (the header and the system information record).
pub const HEADER_BYTES: u64 = 64 << 10;
/// Where the system information record's bytes start.
pub const SYSINFO_OFFSET: u64 = 4096;
/// The largest system information record the header holds (a larger one goes into the data area).
pub const SYSINFO_MAX: u64 = HEADER_BYTES - SYSINFO_OFFSET;
/// The data area's size is a multiple of this (a page), and at least this.
pub const DATA_ALIGN: u64 = 4096;
/// Records start at multiples of this.
pub const RECORD_ALIGN: u64 = 16;
/// Size of a record's own header.
pub const RECORD_HEADER: u64 = 16;
/// Bit of word 0 that marks a record still being written.
pub const TORN: u64 = 1 << 63;

/// Offset of the data size in the header.
pub const OFF_DATA_BYTES: usize = 16;
/// Offset of the writer's process id.
pub const OFF_PID: usize = 24;
/// Offset of the creation time.
pub const OFF_CREATED: usize = 32;
/// Offset of the checksum of the fixed fields.
pub const OFF_FIXED_SUM: usize = 40;
/// Offset of the head (bytes reserved).
pub const OFF_HEAD: usize = 64;
/// Offset of the count of records reserved.
pub const OFF_RECORDS: usize = 72;
/// Offset of the count of records too large for the ring.
pub const OFF_TOO_LARGE: usize = 80;
/// Offset of the count of records dropped rather than written over an unfinished older one.
pub const OFF_DROPPED: usize = 88;
/// Offset of the system information record's length and checksum.
pub const OFF_SYSINFO: usize = 96;

/// The space a record of `len` text bytes takes in the data area.
pub fn record_span(len: u64) -> u64 {
    (RECORD_HEADER + len).div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// The checksum of a record: CRC-32 of its position, its length and its text (given in up to two parts, as
/// it lies in the ring). A record that another record's bytes were mixed into, or that was damaged on disk,
/// fails it.
pub fn checksum(position: u64, parts: [&[u8]; 2]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&position.to_le_bytes());
    h.update(&((parts[0].len() + parts[1].len()) as u32).to_le_bytes());
    h.update(parts[0]);
    h.update(parts[1]);
    h.finalize()
}

/// Word 1 of a record: length and checksum.
pub fn length_word(len: u32, sum: u32) -> u64 {
    u64::from(len) | (u64::from(sum) << 32)
}

/// The fixed fields of a ring's header when they are intact (magic, checksum, version, header size and a data size
/// the layout allows): (data bytes, writer's process id). Read by `flashlog show` and by a writer deciding whether
/// the ring already at its path belongs to a process still running.
pub fn fixed_fields(header: &[u8]) -> Option<(u64, u64)> {
    let fixed = header.get(..OFF_FIXED_SUM + 4)?;
    let u32_at = |at: usize| u32::from_le_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]]);
    let u64_at = |at: usize| u64::from(u32_at(at)) | (u64::from(u32_at(at + 4)) << 32);
    let intact = fixed[..8] == MAGIC
        && u32_at(OFF_FIXED_SUM) == checksum(0, [&fixed[..OFF_FIXED_SUM], &[]])
        && u32_at(8) == VERSION
        && u32_at(12) == HEADER_BYTES as u32;
    let data_bytes = u64_at(OFF_DATA_BYTES);
    (intact && data_bytes >= DATA_ALIGN && data_bytes % DATA_ALIGN == 0).then(|| (data_bytes, u64_at(OFF_PID)))
}

/// The fixed header fields (bytes 0..40) of a ring of `data_bytes` written by `pid` at `created_ns`.
pub fn fixed_header(data_bytes: u64, pid: u64, created_ns: u64) -> [u8; 48] {
    let mut h = [0u8; 48];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
    h[OFF_DATA_BYTES..OFF_DATA_BYTES + 8].copy_from_slice(&data_bytes.to_le_bytes());
    h[OFF_PID..OFF_PID + 8].copy_from_slice(&pid.to_le_bytes());
    h[OFF_CREATED..OFF_CREATED + 8].copy_from_slice(&created_ns.to_le_bytes());
    let sum = checksum(0, [&h[..OFF_FIXED_SUM], &[]]);
    h[OFF_FIXED_SUM..OFF_FIXED_SUM + 4].copy_from_slice(&sum.to_le_bytes());
    h
}

/// The size of the data area for `FLASHLOG_RING_MB=mb` (a positive number, fractions allowed): rounded up to
/// [`DATA_ALIGN`]; `None` for a value that is not a positive number or is above 1 TiB.
pub fn data_bytes_for_mb(mb: &str) -> Option<u64> {
    let v: f64 = mb.trim().parse().ok()?;
    if v.is_nan() || v <= 0.0 || v > (1u64 << 20) as f64 {
        return None;
    }
    let bytes = (v * (1u64 << 20) as f64).ceil() as u64;
    Some(bytes.div_ceil(DATA_ALIGN).max(1) * DATA_ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(data_bytes_for_mb("4"), Some(4 << 20));
        assert_eq!(data_bytes_for_mb(" 0.01 "), Some(12288));
        assert_eq!(data_bytes_for_mb("0.000001"), Some(4096));
        for bad in ["0", "-1", "x", "", "nan", "inf", "2000000"] {
            assert_eq!(data_bytes_for_mb(bad), None, "{bad}");
        }
        assert_eq!(record_span(0), 16);
        assert_eq!(record_span(1), 32);
        assert_eq!(record_span(16), 32);
        assert_eq!(record_span(17), 48);
    }

    #[test]
    fn checksum_covers_position_and_split() {
        let whole = checksum(32, [b"hello world", b""]);
        assert_eq!(whole, checksum(32, [b"hello", b" world"]), "a wrapped record sums as a whole one");
        assert_ne!(whole, checksum(48, [b"hello world", b""]), "the position is covered");
        assert_ne!(whole, checksum(32, [b"hello worle", b""]));
        let h = fixed_header(4096, 7, 9);
        assert_eq!(&h[..8], &MAGIC);
        assert_eq!(u32::from_le_bytes(h[40..44].try_into().unwrap()), checksum(0, [&h[..40], &[]]));
    }
}
