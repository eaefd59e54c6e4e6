//! CUDA driver errors by name: every error the shim sees (its own calls, the wrapped calls' return codes) is
//! written as `NAME (CODE)` with the host driver's `cuGetErrorName`, never as a bare "failed". The reasons the
//! statistics and dumps print are `&'static str`; [`failed`] gives one per (call, code), made once and kept.

use crate::abi::cuda_sync::{self, MISSING};
use crate::record::sync_lines::{push_driver_error, DriverError};

/// The error `code` as the records name it: the host driver's `cuGetErrorName`, or [`MISSING`] (the driver
/// lacks the function).
pub fn driver_error(code: i32) -> DriverError {
    if code == MISSING {
        return DriverError::Missing;
    }
    DriverError::Code { code, name: cuda_sync::driver().and_then(|d| d.error_name(code)) }
}

/// Appends `NAME (CODE)`: `CUDA_ERROR_ILLEGAL_ADDRESS (700)`. A code the driver has no name for is written
/// `CUDA error (CODE)`; [`MISSING`] (the driver lacks the function) `function not in the driver`.
pub fn push_error(out: &mut Vec<u8>, code: i32) {
    push_driver_error(out, driver_error(code));
}

/// `NAME (CODE)` as a string.
pub fn error_text(code: i32) -> String {
    let mut out = Vec::new();
    push_error(&mut out, code);
    String::from_utf8_lossy(&out).into_owned()
}

/// `<what> failed: NAME (CODE)` (for example `cuStreamSynchronize failed: CUDA_ERROR_ILLEGAL_ADDRESS (700)`),
/// as a reason line's text. Made on first use and kept for the process (a handful of distinct errors at most:
/// after a sticky error every call fails with the same code); lock-free.
pub fn failed(what: &'static str, code: i32) -> &'static str {
    cuda_sync::kept_text(what, code, || format!("{what} failed: {}", error_text(code)))
}

/// `device memory copy failed (cuMemcpyDtoH_v2): NAME (CODE)`, the reason of a failed read of device memory.
pub fn copy_failed(code: i32) -> &'static str {
    cuda_sync::kept_text("device memory copy", code, || {
        format!("device memory copy failed (cuMemcpyDtoH_v2): {}", error_text(code))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_kept_per_call_and_code() {
        let a = failed("cuStreamSynchronize", 700);
        assert!(a.starts_with("cuStreamSynchronize failed: ") && a.ends_with("(700)"), "{a}");
        assert!(std::ptr::eq(a, failed("cuStreamSynchronize", 700)));
        assert_ne!(a, failed("cuStreamSynchronize", 719));
        assert_ne!(a, failed("cuMemcpyDtoH_v2", 700));
        assert_eq!(error_text(MISSING), "function not in the driver");
    }
}
