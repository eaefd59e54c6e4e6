//! Reading a flight-recorder ring file (layout: `src/ring/format.rs`), for `flashlog show` and `flashlog summary`.
//! The file is read with `pread(2)`, never mapped (a ring truncated meanwhile cannot hurt the reader), and may be
//! one a live process is still writing: it is read newest bytes first, records overwritten while it was read are
//! dropped, and a ring whose writer is alive is shown up to its first record still being written (or reserved
//! and not marked yet), so what is shown is always a run of consecutive records with no gap. A damaged header is
//! reported and the records are then found by scanning the data area for records that name their own position.

use crate::ring_format::{self as format, HEADER_BYTES, MAGIC, RECORD_ALIGN, RECORD_HEADER, TORN};
use std::io::Read;

/// What a ring holds, in the order its records were reserved.
#[derive(Debug, Default)]
pub struct Contents {
    /// The system information record and then every whole record, oldest first: the text a plain log of
    /// the same calls holds.
    pub text: Vec<u8>,
    /// Whole records (the system information record not counted).
    pub records: u64,
    /// Older records overwritten by newer ones (`None` when the header that counts them is damaged).
    pub overwritten: Option<u64>,
    /// Records whose writer never finished them (the process died while writing them).
    pub torn: u64,
    /// Records whose bytes do not match their checksum (left out).
    pub damaged: u64,
    /// Records still being written by the live process when the ring was read (left out, with what follows).
    pub in_flight: u64,
    /// Records larger than the whole ring, never stored.
    pub too_large: u64,
    /// Records dropped by their writer because their bytes would have landed on an older record still being
    /// written (its writer stalled while the others wrote the whole ring).
    pub dropped: u64,
    /// Lines about the file itself (a damaged header, a wrong size), each without its file name.
    pub problems: Vec<String>,
}

/// Whether the file at `path` begins with the ring's magic bytes.
pub fn is_ring(path: &str) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == MAGIC
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the ring at `path`. Err: the file cannot be read or is not a ring.
pub fn read(path: &str) -> Result<Contents, String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    (&mut file).take(HEADER_BYTES).read_to_end(&mut all).map_err(|e| e.to_string())?;
    if all.len() < 8 || all[..8] != MAGIC {
        return Err("not a flashlog ring".to_string());
    }
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    let head = u64_at(&all, format::OFF_HEAD).unwrap_or(0);
    match format::fixed_fields(&all) {
        Some((size, _)) if file_len == HEADER_BYTES + size && head.is_multiple_of(RECORD_ALIGN) && head < TORN => {
            // Writers faster than this reader (a small ring, the reader descheduled) may overwrite everything
            // it read: it tries again, a few times, from a fresh header.
            for _attempt in 0..8 {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(&mut all[..HEADER_BYTES as usize], 0).map_err(|e| e.to_string())?;
                let head = u64_at(&all, format::OFF_HEAD).unwrap_or(0);
                let valid_from = read_newest_first(&file, &mut all, size, head).map_err(|e| e.to_string())?;
                if valid_from + RECORD_ALIGN < head || head == 0 {
                    return Ok(parse(&all, Some(valid_from + size)));
                }
            }
            Ok(parse(&all, Some(u64_at(&all, format::OFF_HEAD).unwrap_or(0) + size)))
        }
        _ => {
            file.read_to_end(&mut all).map_err(|e| e.to_string())?;
            let mut head_after = [0u8; 8];
            let reread = std::os::unix::fs::FileExt::read_exact_at(&file, &mut head_after, format::OFF_HEAD as u64);
            Ok(parse(&all, reread.ok().map(|()| u64::from_le_bytes(head_after))))
        }
    }
}

/// Reads the data area behind `all` (the header) newest bytes first, in chunks, reading the head again after
/// each: a live writer overwrites the oldest bytes first, so the reader meets it as late as possible. Returns the
/// lowest position whose bytes were read before any writer could overwrite them.
fn read_newest_first(file: &std::fs::File, all: &mut Vec<u8>, size: u64, head: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    const CHUNK: u64 = 16 << 10;
    all.resize((HEADER_BYTES + size) as usize, 0);
    let oldest = head.saturating_sub(size);
    let mut hi = head;
    while hi > oldest {
        let lo = hi.saturating_sub(CHUNK).max(oldest);
        let mut p = lo;
        while p < hi {
            let at = p % size;
            let n = (hi - p).min(size - at);
            let from = (HEADER_BYTES + at) as usize;
            file.read_exact_at(&mut all[from..from + n as usize], HEADER_BYTES + at)?;
            p += n;
        }
        let mut word = [0u8; 8];
        file.read_exact_at(&mut word, format::OFF_HEAD as u64)?;
        let floor = u64::from_le_bytes(word).saturating_sub(size);
        if floor > lo {
            return Ok(floor.min(hi));
        }
        hi = lo;
    }
    Ok(oldest)
}

/// One slot of the data area, as found at a candidate position.
enum Slot {
    /// A whole record: its text (one or two parts), its span.
    Whole(Vec<u8>, u64),
    /// A record never finished, and its span when its length is believable.
    Torn(Option<u64>),
    /// A record whose checksum fails.
    Damaged,
    /// Not the start of a record of this position.
    Nothing,
}

struct Area<'a> {
    data: &'a [u8],
    size: u64,
}

impl Area<'_> {
    fn word(&self, offset: u64) -> Option<u64> {
        u64_at(self.data, offset as usize)
    }

    /// What starts at position `c` (16-aligned).
    fn slot(&self, c: u64) -> Slot {
        let at = c % self.size;
        let (Some(w0), Some(w1)) = (self.word(at), self.word(at + 8)) else { return Slot::Nothing };
        let len = w1 & 0xffff_ffff;
        let span = format::record_span(len);
        let believable = span <= self.size;
        if w0 == c | TORN {
            return Slot::Torn(believable.then_some(span));
        }
        if w0 != c {
            return Slot::Nothing;
        }
        if !believable {
            return Slot::Damaged;
        }
        let text_at = (at + RECORD_HEADER) % self.size;
        let first = len.min(self.size - text_at);
        let a = self.data.get(text_at as usize..(text_at + first) as usize);
        let b = self.data.get(..(len - first) as usize);
        match (a, b) {
            (Some(a), Some(b)) if format::checksum(c, [a, b]) == (w1 >> 32) as u32 => {
                let mut text = a.to_vec();
                text.extend_from_slice(b);
                Slot::Whole(text, span)
            }
            _ => Slot::Damaged,
        }
    }
}

/// Parses a ring file's bytes; `head_after`: the head word read again after them.
pub fn parse(all: &[u8], head_after: Option<u64>) -> Contents {
    let mut out = Contents::default();
    let fields = format::fixed_fields(all);
    let file_data = all.len() as u64 - HEADER_BYTES.min(all.len() as u64);
    let (size, pid) = match fields {
        Some(f) => f,
        None => {
            out.problems.push(
                "the ring's header is damaged; its records were found by scanning the data area (the count of \
                 overwritten records is unknown)"
                    .to_string(),
            );
            (file_data / RECORD_ALIGN * RECORD_ALIGN, 0)
        }
    };
    if fields.is_some() && file_data != size {
        out.problems.push(format!(
            "the file holds {file_data} bytes of records where its header says {size} (it was truncated or extended \
             after it was made); what is there is read"
        ));
    }
    push_system_info(all, &mut out);
    let data = all.get(HEADER_BYTES as usize..).unwrap_or(&[]);
    if size == 0 {
        return out;
    }
    let area = Area { data, size };
    let head = u64_at(all, format::OFF_HEAD).unwrap_or(0);
    let sane_head = fields.is_some() && head.is_multiple_of(RECORD_ALIGN) && head < TORN;
    let (start, end) = if sane_head {
        let after = head_after.filter(|h| *h >= head && *h < TORN).unwrap_or(head);
        (after.saturating_sub(size).div_ceil(RECORD_ALIGN) * RECORD_ALIGN, head)
    } else {
        if fields.is_some() {
            out.problems.push("the ring's head word is damaged; its records were found by scanning".to_string());
        }
        scan_window(&area)
    };
    if fields.is_some() {
        out.too_large = u64_at(all, format::OFF_TOO_LARGE).unwrap_or(0);
        out.dropped = u64_at(all, format::OFF_DROPPED).unwrap_or(0);
    }
    let live = pid != 0 && alive(pid);
    let cut_published = walk(&area, start, end, live, &mut out);
    out.overwritten = (fields.is_some() && sane_head).then(|| {
        // Published records: torn ones were never counted.
        let published = u64_at(all, format::OFF_RECORDS).unwrap_or(0);
        published.saturating_sub(out.records + out.damaged + cut_published)
    });
    out
}

/// The records from position `start` to `end`, oldest first. Returns how many published records were left out
/// after the first one still being written (a live ring).
fn walk(area: &Area, start: u64, end: u64, live: bool, out: &mut Contents) -> u64 {
    let mut c = start;
    let mut cut = false;
    let mut cut_published = 0;
    // Where the record after the last one found starts.
    let mut next_record = None;
    while c < end {
        let slot = area.slot(c);
        let step = match &slot {
            Slot::Whole(_, span) | Slot::Torn(Some(span)) => *span,
            _ => RECORD_ALIGN,
        };
        if c + step > end && !matches!(slot, Slot::Nothing) {
            // Reaches past the head that was read: reserved after it.
            break;
        }
        if live && !cut && next_record == Some(c) && matches!(slot, Slot::Nothing) {
            // Reserved right after a record and not marked yet: a record whose writer is still between its
            // reservation and its "being written" mark (or is dropping it). What follows is left out, as after a
            // torn record, so that what is shown has no gap.
            cut = true;
            out.in_flight += 1;
        }
        if !matches!(slot, Slot::Nothing) {
            next_record = Some(c + step);
        }
        match slot {
            Slot::Whole(_, _) if cut => {
                out.in_flight += 1;
                cut_published += 1;
            }
            Slot::Whole(text, _) => {
                out.text.extend_from_slice(&text);
                out.records += 1;
            }
            Slot::Torn(_) if live => {
                cut = true;
                out.in_flight += 1;
            }
            Slot::Torn(_) => out.torn += 1,
            Slot::Damaged if live => {
                cut = true;
                out.in_flight += 1;
                cut_published += 1;
            }
            Slot::Damaged => out.damaged += 1,
            Slot::Nothing => {}
        }
        c += step;
    }
    cut_published
}

/// Without a trustworthy head: the window that the newest record found by scanning ends.
fn scan_window(area: &Area) -> (u64, u64) {
    let mut newest_end = 0u64;
    let mut at = 0;
    while at + 16 <= area.size {
        if let Some(w0) = area.word(at) {
            let p = w0 & !TORN;
            if p % area.size == at && p < TORN / 2 {
                let end = match area.slot(p) {
                    Slot::Whole(_, span) | Slot::Torn(Some(span)) => p + span,
                    _ => 0,
                };
                newest_end = newest_end.max(end);
            }
        }
        at += RECORD_ALIGN;
    }
    (newest_end.saturating_sub(area.size).div_ceil(RECORD_ALIGN) * RECORD_ALIGN, newest_end)
}

/// The system information record of the header, when there is one and it is whole.
fn push_system_info(all: &[u8], out: &mut Contents) {
    let Some(word) = u64_at(all, format::OFF_SYSINFO) else { return };
    let len = word & 0xffff_ffff;
    if word == 0 || len == 0 {
        return;
    }
    let from = format::SYSINFO_OFFSET as usize;
    match all.get(from..from + len as usize) {
        Some(text) if len <= format::SYSINFO_MAX && format::checksum(0, [text, &[]]) == (word >> 32) as u32 => {
            out.text.extend_from_slice(text)
        }
        _ => out.problems.push("the system information record is damaged; left out".to_string()),
    }
}

/// Whether process `pid` exists (the ring may still be written).
fn alive(pid: u64) -> bool {
    pid > 0 && pid < 1 << 32 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring of `size` data bytes holding `records` (text, published?) written one after another from position
    /// `start`, as the writer lays them out.
    fn ring(size: u64, start: u64, records: &[(&str, bool)]) -> Vec<u8> {
        let mut all = vec![0u8; (HEADER_BYTES + size) as usize];
        all[..48].copy_from_slice(&format::fixed_header(size, 0, 0));
        let mut p = start;
        let mut published = 0u64;
        for (text, whole) in records {
            let at = (HEADER_BYTES + p % size) as usize;
            let sum = format::checksum(p, [text.as_bytes(), &[]]);
            for (i, b) in text.bytes().enumerate() {
                all[(HEADER_BYTES + (p + RECORD_HEADER + i as u64) % size) as usize] = b;
            }
            let w0 = if *whole { p } else { p | TORN };
            all[at..at + 8].copy_from_slice(&w0.to_le_bytes());
            all[at + 8..at + 16].copy_from_slice(&format::length_word(text.len() as u32, sum).to_le_bytes());
            published += u64::from(*whole);
            p += format::record_span(text.len() as u64);
        }
        all[format::OFF_HEAD..format::OFF_HEAD + 8].copy_from_slice(&p.to_le_bytes());
        all[format::OFF_RECORDS..format::OFF_RECORDS + 8].copy_from_slice(&published.to_le_bytes());
        all
    }

    #[test]
    fn wrapped_torn_and_overwritten() {
        let text: Vec<String> = (0..40).map(|i| format!("record {i:02} {}\n", "x".repeat(i * 7))).collect();
        let mut records: Vec<(&str, bool)> = text.iter().map(|t| (t.as_str(), true)).collect();
        records.last_mut().unwrap().1 = false;
        let all = ring(4096, 0, &records);
        let c = parse(&all, None);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!((c.torn, c.damaged), (1, 0));
        let shown = String::from_utf8(c.text).unwrap();
        assert!(shown.ends_with(&text[38]), "the newest whole record is last");
        let kept = shown.matches("record ").count() as u64;
        assert_eq!(c.records, kept);
        assert_eq!(c.overwritten, Some(39 - kept));
        let first: usize = shown[7..9].parse().unwrap();
        assert_eq!(shown, text[first..39].concat(), "a run with no gap, each record whole (some wrap the end)");
    }

    #[test]
    fn a_live_ring_is_cut_at_a_reserved_record_not_marked_yet() {
        let records = [("alpha\n", true), ("beta\n", true), ("gamma\n", true)];
        let mut all = ring(4096, 0, &records);
        // beta's bytes are older data: its writer reserved them and has not written its mark yet.
        let beta = (HEADER_BYTES + format::record_span(6)) as usize;
        all[beta..beta + 16].fill(0xee);
        let area = Area { data: &all[HEADER_BYTES as usize..], size: 4096 };
        let end = u64_at(&all, format::OFF_HEAD).unwrap();
        let mut live = Contents::default();
        assert_eq!(walk(&area, 0, end, true, &mut live), 1, "gamma, published, is left out with what follows");
        assert_eq!((live.text.as_slice(), live.in_flight), (&b"alpha\n"[..], 2));
        // The same bytes in the ring of a process that died: a dropped record's hole, the others shown.
        let mut dead = Contents::default();
        assert_eq!(walk(&area, 0, end, false, &mut dead), 0);
        assert_eq!(dead.text, b"alpha\ngamma\n");
    }

    #[test]
    fn damaged_bytes_are_left_out_and_a_bad_header_is_scanned() {
        let records = [("alpha\n", true), ("beta\n", true), ("gamma\n", true)];
        let mut all = ring(4096, 8192, &records);
        all[HEADER_BYTES as usize + 16 + 32 + 1] ^= 1;
        let c = parse(&all, None);
        assert_eq!((c.text.as_slice(), c.damaged, c.overwritten), (&b"alpha\ngamma\n"[..], 1, Some(0)));
        all[20] ^= 1;
        let c = parse(&all, None);
        assert_eq!(c.text, b"alpha\ngamma\n");
        assert_eq!((c.overwritten, c.problems.len()), (None, 1));
    }
}
