//! Timestamps for records (`[%Y-%m-%d %H:%M:%S]`, local time). The formatted text is cached per thread and
//! recomputed only when the second changes, so a record costs one vDSO clock read.

use crate::os::sys;
use std::cell::Cell;

thread_local! {
    static LAST: Cell<(i64, Stamp)> = const { Cell::new((i64::MIN, Stamp([0; 21]))) };
}

/// The current local time as a record stamp.
pub fn now() -> Stamp {
    let secs = sys::now_seconds();
    LAST.with(|last| {
        let (cached_secs, stamp) = last.get();
        if cached_secs == secs {
            return stamp;
        }
        let (y, mo, d, h, mi, s) = sys::local_time(secs);
        let stamp = Stamp::from_parts(y, mo, d, h, mi, s);
        last.set((secs, stamp));
        stamp
    })
}

/// A timestamp already formatted as `[YYYY-MM-DD HH:MM:SS]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp(pub [u8; 21]);

impl Stamp {
    /// Formats a broken-down local time.
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
        Stamp(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_format() {
        assert_eq!(&Stamp::from_parts(2026, 11, 28, 21, 4, 5).0, b"[2026-11-28 21:04:05]");
    }
}
