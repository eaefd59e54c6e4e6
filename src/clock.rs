//! Timestamps for records (`[%Y-%m-%d %H:%M:%S]`, local time). The formatted text is cached per thread and
//! recomputed only when the second changes, so a record costs one vDSO clock read.

use crate::abi::sys;
use crate::record::Stamp;
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
