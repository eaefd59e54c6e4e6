//! The capture gate: before the shim synchronises a stream or copies device memory (level-5 statistics and
//! level-10 dumps of device, page-locked, managed and ROCm host tensors), it asks the host's driver whether
//! that could disturb a CUDA graph capture, including one begun by a route the shim never saw (a lookup
//! through `RTLD_DEFAULT`, a plugin's PLT the GOT scan has not reached yet):
//!
//! 1. `cuStreamIsCapturing` on the call's stream (and, for stream 0, on the per-thread default stream too);
//! 2. before copying device memory, `cuStreamIsCapturing` on the legacy stream: `CUDA_ERROR_STREAM_CAPTURE_IMPLICIT`
//!    (906) means a blocking stream of the context is capturing, and the synchronous copy the shim makes
//!    (legacy-stream work) would join it (host memory is read by the CPU after synchronising the call's stream
//!    alone, which joins nothing);
//! 3. for a capture on another stream (or thread) that nothing can be asked about, the shim's own calls run with
//!    the thread's capture interaction mode exchanged to RELAXED (`cuThreadExchangeStreamCaptureMode`, what
//!    PyTorch does around its allocations during a capture): a GLOBAL-mode capture begun elsewhere then does
//!    not prohibit them, so they neither fail nor invalidate it. The mode is given back when the guard drops.
//!
//! A query that fails means "do not touch": the tensor gets the reason, with the driver's error name.

use crate::abi::cuda_driver::Driver;

/// `CU_STREAM_CAPTURE_STATUS_NONE`.
const STATUS_NONE: i32 = 0;
/// `CUDA_ERROR_STREAM_CAPTURE_IMPLICIT`: asked about the legacy stream while a blocking stream captures.
const CAPTURE_IMPLICIT: i32 = 906;
/// `CU_STREAM_LEGACY`.
const STREAM_LEGACY: usize = 1;
/// `CU_STREAM_CAPTURE_MODE_RELAXED`.
const MODE_RELAXED: i32 = 2;

/// Why the shim may not touch the stream now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// A capture runs on the call's stream, or on a blocking stream the shim's copies would join.
    Capturing,
    /// The driver could not say: the reason, e.g. `capture status unknown (cuStreamIsCapturing:
    /// CUDA_ERROR_INVALID_CONTEXT (201))`.
    Unknown(&'static str),
}

/// While alive, the calling thread's capture interaction mode is RELAXED; the host's mode comes back on drop.
pub struct Relaxed<'a> {
    driver: &'a Driver,
    previous: i32,
}

impl Drop for Relaxed<'_> {
    fn drop(&mut self) {
        let _ = self.driver.exchange_capture_mode(self.previous);
    }
}

/// Whether synchronising `stream` (and, with `legacy_copies`, copying device memory with the synchronous copy, which
/// is legacy-stream work) could disturb a capture the driver can be asked about (steps 1 and 2 of the module
/// comment). Changes nothing.
pub fn query(driver: &Driver, stream: usize, legacy_copies: bool) -> Result<(), Blocked> {
    judge(driver, "cuStreamIsCapturing", driver.query_capture(stream, false))?;
    if stream == 0 {
        // Stream 0 is the legacy stream (asked above) or, for code built for per-thread default streams, the
        // per-thread stream: ask about both. A driver without the `_ptsz` query has no per-thread streams.
        match driver.query_capture(0, true) {
            Err(-1) => {}
            answer => judge(driver, "cuStreamIsCapturing_ptsz", answer)?,
        }
    } else if legacy_copies && stream != STREAM_LEGACY {
        judge(driver, "cuStreamIsCapturing", driver.query_capture(STREAM_LEGACY, false))?;
    }
    Ok(())
}

/// [`query`], then the RELAXED guard under which the shim's own calls may run (step 3).
pub fn enter(driver: &Driver, stream: usize, legacy_copies: bool) -> Result<Relaxed<'_>, Blocked> {
    query(driver, stream, legacy_copies)?;
    match driver.exchange_capture_mode(MODE_RELAXED) {
        Ok(previous) => Ok(Relaxed { driver, previous }),
        Err(rc) => Err(Blocked::Unknown(reason(driver, "cuThreadExchangeStreamCaptureMode", rc))),
    }
}

/// What one capture query's answer means for the shim.
fn judge(driver: &Driver, what: &'static str, answer: Result<i32, i32>) -> Result<(), Blocked> {
    match answer {
        Ok(STATUS_NONE) => Ok(()),
        Ok(_) | Err(CAPTURE_IMPLICIT) => Err(Blocked::Capturing),
        Err(rc) => Err(Blocked::Unknown(reason(driver, what, rc))),
    }
}

fn reason(driver: &Driver, what: &'static str, rc: i32) -> &'static str {
    driver.failure_text(what, rc)
}
