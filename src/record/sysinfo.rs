//! The system information record, written once per process before its first call record.

use super::pyrepr::push_int;
use super::{Stamp, EQUALS_LINE};

/// One GPU as the driver describes it.
#[derive(Clone, Debug)]
pub struct Gpu {
    /// `cuDeviceGetName`.
    pub name: String,
    /// Compute capability major.
    pub major: i32,
    /// Compute capability minor.
    pub minor: i32,
}

/// What the record shows.
#[derive(Clone, Debug)]
pub struct SystemInfo {
    /// Process id.
    pub pid: i32,
    /// Short command name.
    pub command: String,
    /// `cuDriverGetVersion` when a CUDA driver is loaded in the process.
    pub driver_version: Option<i32>,
    /// The GPUs, when the driver is initialised and no capture is active (asking could otherwise disturb it).
    pub gpus: Option<Vec<Gpu>>,
}

/// Appends the system information record.
pub fn push_system_info(out: &mut Vec<u8>, stamp: &Stamp, info: &SystemInfo) {
    out.extend_from_slice(EQUALS_LINE);
    out.extend_from_slice(&stamp.0);
    out.extend_from_slice(b" FlashInfer API Logging - System Information\n");
    out.extend_from_slice(EQUALS_LINE);
    out.extend_from_slice(b"flashlog version: ");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"\nProcess: ");
    push_int(out, info.pid);
    out.extend_from_slice(b" (");
    out.extend_from_slice(info.command.as_bytes());
    out.extend_from_slice(b")\n");
    match info.driver_version {
        Some(v) => {
            out.extend_from_slice(b"CUDA driver version: ");
            push_int(out, v);
            out.push(b'\n');
        }
        None => out.extend_from_slice(b"CUDA driver: <not loaded>\n"),
    }
    if let (Some(_), Some(gpus)) = (info.driver_version, &info.gpus) {
        out.extend_from_slice(b"Number of GPUs: ");
        push_int(out, gpus.len());
        out.push(b'\n');
        for (i, gpu) in gpus.iter().enumerate() {
            out.extend_from_slice(b"  GPU ");
            push_int(out, i);
            out.extend_from_slice(b": ");
            out.extend_from_slice(gpu.name.as_bytes());
            out.extend_from_slice(b"\n    Compute capability: ");
            push_int(out, gpu.major);
            out.push(b'.');
            push_int(out, gpu.minor);
            out.extend_from_slice(b" (SM");
            push_int(out, gpu.major);
            push_int(out, gpu.minor);
            out.extend_from_slice(b")\n");
        }
    }
    out.extend_from_slice(EQUALS_LINE);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout() {
        let stamp = Stamp::from_parts(2026, 11, 28, 21, 4, 5);
        let info = SystemInfo {
            pid: 12345,
            command: "python3".into(),
            driver_version: Some(12080),
            gpus: Some(vec![Gpu { name: "NVIDIA H200".into(), major: 9, minor: 0 }]),
        };
        let mut out = Vec::new();
        push_system_info(&mut out, &stamp, &info);
        let eq = "=".repeat(80);
        let want = format!("{eq}\n[2026-11-28 21:04:05] FlashInfer API Logging - System Information\n{eq}\nflashlog version: 0.1.0\nProcess: 12345 (python3)\nCUDA driver version: 12080\nNumber of GPUs: 1\n  GPU 0: NVIDIA H200\n    Compute capability: 9.0 (SM90)\n{eq}\n\n");
        assert_eq!(String::from_utf8(out).unwrap(), want);
        let mut out = Vec::new();
        push_system_info(&mut out, &stamp, &SystemInfo { driver_version: None, gpus: None, ..info });
        assert!(String::from_utf8(out).unwrap().contains("\nCUDA driver: <not loaded>\n="));
    }
}
