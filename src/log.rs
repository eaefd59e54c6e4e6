//! The log layer: a whole record goes to the sink after this process's system information record, which
//! this layer gathers (the driver's devices, the launcher's ids) and `record::sysinfo` prints. Everything that
//! writes records calls [`write_record`]; the sink below it only transports bytes.

use crate::abi::cuda_driver;
use crate::os::sys;
use crate::record::sysinfo::{push_system_info, Gpu, SystemInfo};
use crate::{capture, clock};
use std::sync::OnceLock;

/// The writer of the system information record's `Statistics:` line (level 5 and above): it belongs to the
/// statistics kernel's loader (`crate::gpu`, a layer above), which hands it down with
/// [`set_statistics_line`] before any wrapper is handed out.
static STATISTICS_LINE: OnceLock<fn(&mut Vec<u8>)> = OnceLock::new();

/// Registers the writer of the `Statistics:` line (the same function every time: the first one is kept).
pub fn set_statistics_line(writer: fn(&mut Vec<u8>)) {
    if STATISTICS_LINE.get().is_none() {
        let _ = STATISTICS_LINE.set(writer);
    }
}

/// Appends the `Statistics:` line, without its newline (nothing when no writer was registered).
fn statistics_line(out: &mut Vec<u8>) {
    if let Some(writer) = STATISTICS_LINE.get() {
        writer(out);
    }
}

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
        statistics: (crate::state::level() >= crate::config::LEVEL_STATS).then(|| {
            let mut line = Vec::new();
            statistics_line(&mut line);
            line
        }),
    };
    push_system_info(out, &clock::now(), &info);
}

/// Writes one whole record, the system information record first if this process has not written it yet.
pub fn write_record(record: &[u8]) {
    crate::sink::write_record(record, system_info_record);
}
