//! The interception layer: the `dlsym` entry, the trampoline pool and wrapper of TVM-FFI calls, the CUDA
//! driver wrappers and the GOT rewrite that routes PLT calls to them. With `abi`, the only code that deals
//! in raw host pointers.

pub mod args_copy;
pub mod cuda;
pub mod dlsym;
pub mod host_fn;
pub mod launch;
pub mod plt;
pub mod trampoline;
pub mod tvm_call;

use crate::abi::{cuda_driver, sys};
use crate::record::sysinfo::{push_system_info, Gpu, SystemInfo};
use crate::{capture, clock};

/// Appends this process's system information record. GPUs are listed only when the driver is initialised
/// and no capture is active (device queries are harmless, but the shim stays away from a capture).
pub fn system_info_record(out: &mut Vec<u8>) {
    let driver = cuda_driver::driver();
    let driver_version = driver.and_then(|d| d.version());
    let gpus = match driver {
        Some(d) if !capture::any_active() => {
            d.devices().map(|list| list.into_iter().map(|(name, major, minor)| Gpu { name, major, minor }).collect())
        }
        _ => None,
    };
    let getenv = |name: &str| sys::getenv(&std::ffi::CString::new(name).ok()?);
    let info = SystemInfo {
        pid: sys::pid(),
        command: sys::command_name(),
        launcher: crate::config::LauncherIds::from_lookup(getenv),
        cuda_visible_devices: getenv("CUDA_VISIBLE_DEVICES"),
        driver_version,
        gpus,
        statistics: (crate::state::level() >= crate::config::LEVEL_STATS).then(|| {
            let mut line = Vec::new();
            crate::gpu::route_line(&mut line);
            line
        }),
    };
    push_system_info(out, &clock::now(), &info);
}
