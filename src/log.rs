//! The log layer: a whole record goes to the sink after this process's system information record, which
//! this layer gathers (the driver's devices, the launcher's ids) and `record::sysinfo` prints. Everything that
//! writes records calls [`write_record`]; the sink below it only transports bytes.

use crate::abi::cuda_driver;
use crate::os::sys;
use crate::record::sysinfo::{push_system_info, Gpu, SystemInfo};
use crate::{capture, clock};

/// Appends this process's system information record. GPUs are listed only when the driver is initialised
/// and no capture is active (device queries are harmless, but the shim stays away from a capture).
fn system_info_record(out: &mut Vec<u8>) {
    let driver = cuda_driver::driver();
    let driver_version = driver.and_then(|d| d.version());
    let gpus = match driver {
        Some(d) if !capture::any_active() => {
            d.devices().map(|list| list.into_iter().map(|(name, major, minor)| Gpu { name, major, minor }).collect())
        }
        _ => None,
    };
    let info = SystemInfo {
        pid: crate::os::process::pid(),
        command: sys::command_name(),
        launcher: crate::config::LauncherIds::from_lookup(sys::env),
        cuda_visible_devices: sys::env("CUDA_VISIBLE_DEVICES"),
        driver_version,
        gpus,
    };
    push_system_info(out, &clock::now(), &info);
}

/// Writes one whole record, the system information record first if this process has not written it yet.
pub fn write_record(record: &[u8]) {
    crate::sink::write_record(record, system_info_record);
}
