//! Layouts of the CUDA driver's own types that the driver wrappers read from the host (cuda.h 12.x).

use std::ffi::c_void;

/// `CUlaunchConfig` (cuda.h 12.x): grid, block, shared memory, stream, attributes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LaunchConfig {
    /// Grid dimensions.
    pub grid: [u32; 3],
    /// Block dimensions.
    pub block: [u32; 3],
    /// Dynamic shared memory in bytes.
    pub shared_mem: u32,
    /// `CUstream`.
    pub stream: usize,
    /// `CUlaunchAttribute*`.
    pub attrs: *mut c_void,
    /// Number of attributes.
    pub num_attrs: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn launch_config_layout() {
        assert_eq!(offset_of!(LaunchConfig, shared_mem), 24);
        assert_eq!(offset_of!(LaunchConfig, stream), 32);
        assert_eq!(offset_of!(LaunchConfig, num_attrs), 48);
        assert_eq!(size_of::<LaunchConfig>(), 56);
    }
}
