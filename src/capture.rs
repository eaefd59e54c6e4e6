//! Which CUDA graph captures are running, as seen by the capture wrappers. While any capture is known to be
//! active the shim makes no synchronising call, copy, allocation or module load, and takes no statistics:
//! a GLOBAL-mode capture anywhere in the process fails (and invalidates) on such calls from any thread.

use crate::os::slots;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

const TRACKED: usize = 64;
const EMPTY: usize = 0;

/// Streams with an active capture (stored as `stream + 1`, so the value 0 means an empty slot).
static STREAMS: [AtomicUsize; TRACKED] = [const { AtomicUsize::new(EMPTY) }; TRACKED];
/// Number of active captures (including any that did not fit in `STREAMS`).
static ACTIVE: AtomicI64 = AtomicI64::new(0);

/// Records that a capture began on `stream` (after the real BeginCapture succeeded).
pub fn began(stream: usize) {
    ACTIVE.fetch_add(1, Ordering::SeqCst);
    let key = stream.wrapping_add(1);
    // A full table leaves the capture counted in ACTIVE only.
    let _ = slots::claim(&STREAMS, 0, |s| s == EMPTY, key);
}

/// Records that the capture on `stream` ended (EndCapture returned, successfully or with the capture
/// invalidated). A stream the shim never saw begin is ignored.
pub fn ended(stream: usize) {
    let key = stream.wrapping_add(1);
    if slots::claim(&STREAMS, 0, |s| s == key, EMPTY).is_some() {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    // Not in the table: it may be one of the overflow captures counted only in ACTIVE.
    let _ = ACTIVE.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
        let in_table = STREAMS.iter().filter(|s| s.load(Ordering::Relaxed) != EMPTY).count() as i64;
        (n > in_table).then_some(n - 1)
    });
}

/// Whether any capture is known to be active anywhere in the process.
pub fn any_active() -> bool {
    ACTIVE.load(Ordering::SeqCst) > 0
}

/// Whether the shim saw a capture begin on `stream` that has not ended (a capture begun by a route the shim
/// does not wrap is not tracked).
pub fn is_tracked(stream: usize) -> bool {
    let key = stream.wrapping_add(1);
    STREAMS.iter().any(|s| s.load(Ordering::SeqCst) == key)
}

/// Whether EndCapture's return code means the capture is over. Only `CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD`
/// (908) leaves it running; success, invalidation (901) and every other error end it.
pub fn end_result_ends_capture(rc: i32) -> bool {
    rc != 908
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_and_end_pairs() {
        assert!(!any_active());
        began(0x10);
        began(0x20);
        assert!(any_active());
        assert!(is_tracked(0x20) && !is_tracked(0x30));
        ended(0x10);
        assert!(any_active());
        ended(0x99); // never began: ignored
        assert!(any_active());
        ended(0x20);
        assert!(!any_active());
        assert!(end_result_ends_capture(0));
        assert!(end_result_ends_capture(901));
        assert!(!end_result_ends_capture(908));
    }
}
