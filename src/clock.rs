//! Timestamps for records (`[%Y-%m-%d %H:%M:%S]`, local time) and the same reading's time of day with
//! microseconds (`HH:MM:SS.ffffff`, the `at` field of the correlation form). The formatted text is cached per
//! thread and recomputed only when the second changes, so a record costs one vDSO clock read; the header and
//! the field come from that one reading, so they never disagree on the second.

use crate::os::sys;
use std::cell::Cell;

thread_local! {
    static LAST: Cell<(i64, Stamp)> = const { Cell::new((i64::MIN, Stamp([0; 21], 0))) };
}

/// The current local time as a record stamp (with its microseconds).
pub fn now() -> Stamp {
    let (secs, micros) = sys::now_micros();
    LAST.with(|last| {
        let (cached_secs, stamp) = last.get();
        if cached_secs == secs {
            return Stamp(stamp.0, micros);
        }
        let (y, mo, d, h, mi, s) = sys::local_time(secs);
        let stamp = Stamp::from_parts(y, mo, d, h, mi, s);
        last.set((secs, stamp));
        Stamp(stamp.0, micros)
    })
}

/// A timestamp already formatted as `[YYYY-MM-DD HH:MM:SS]`, and the microseconds of the same clock reading
/// within that second (the header shows the second only: FlashInfer's format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp(pub [u8; 21], pub u32);

impl Stamp {
    /// Formats a broken-down local time (microseconds 0).
    pub fn from_parts(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Stamp {
        let mut s = *b"[0000-00-00 00:00:00]";
        let mut put = |at: usize, v: u32, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                s[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(1, year.clamp(0, 9999) as u32, 4);
        put(6, month, 2);
        put(9, day, 2);
        put(12, hour, 2);
        put(15, minute, 2);
        put(18, second, 2);
        Stamp(s, 0)
    }

    /// Appends the time of day with microseconds, `HH:MM:SS.ffffff` (the stamp's second, so the two agree).
    pub fn push_time_of_day(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0[12..20]);
        out.push(b'.');
        let mut digits = [b'0'; 6];
        let mut v = self.1.min(999_999);
        for d in digits.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&digits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_format() {
        assert_eq!(&Stamp::from_parts(2026, 11, 28, 21, 4, 5).0, b"[2026-11-28 21:04:05]");
    }

    #[test]
    fn time_of_day_with_microseconds() {
        let mut out = Vec::new();
        Stamp(Stamp::from_parts(2026, 11, 28, 21, 4, 5).0, 123).push_time_of_day(&mut out);
        assert_eq!(out, b"21:04:05.000123");
    }

    #[test]
    fn a_reading_has_microseconds_within_its_second() {
        let stamp = now();
        assert!(stamp.1 < 1_000_000);
        assert_eq!(stamp.0[0], b'[');
    }
}
