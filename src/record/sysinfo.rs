//! The system information record, written once per process before its first call record.

use super::pyrepr::push_int;
use super::{Stamp, EQUALS_LINE};
use crate::config::LauncherIds;

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
    /// The ranks the launcher's variables give (all `None` outside a multi-process launcher).
    pub launcher: LauncherIds,
    /// `CUDA_VISIBLE_DEVICES`, when set.
    pub cuda_visible_devices: Option<String>,
    /// `cuDriverGetVersion` when a CUDA driver is loaded in the process.
    pub driver_version: Option<i32>,
    /// The GPUs, when the driver is initialised and no capture is active (asking could otherwise disturb it).
    pub gpus: Option<Vec<Gpu>>,
    /// The `Statistics: ...` line (level 5 and above: how device tensors' statistics are taken), without its
    /// newline.
    pub statistics: Option<Vec<u8>>,
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
    push_rank_line(out, &info.launcher);
    if let Some(devices) = &info.cuda_visible_devices {
        out.extend_from_slice(b"CUDA_VISIBLE_DEVICES: ");
        if devices.is_empty() {
            out.extend_from_slice(b"<empty>");
        }
        // Control bytes never reach the log raw.
        out.extend(devices.bytes().map(|b| if b.is_ascii_control() { b'?' } else { b }));
        out.push(b'\n');
    }
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
    if let Some(line) = &info.statistics {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(EQUALS_LINE);
    out.push(b'\n');
}

/// The rank line, from what is known and nothing more: `Rank: R of N (local L)` with the parts that are
/// unknown left out (`Rank: R`, `Rank: R of N`, `Rank: R (local L)`); without a rank, `Local rank: L` (with
/// ` (world size N)` when known) or `World size: N`; no line when nothing is known.
fn push_rank_line(out: &mut Vec<u8>, ids: &LauncherIds) {
    match (ids.rank, ids.local_rank, ids.world_size) {
        (None, None, None) => return,
        (Some(rank), local, size) => {
            out.extend_from_slice(b"Rank: ");
            push_int(out, rank);
            if let Some(n) = size {
                out.extend_from_slice(b" of ");
                push_int(out, n);
            }
            if let Some(l) = local {
                out.extend_from_slice(b" (local ");
                push_int(out, l);
                out.push(b')');
            }
        }
        (None, Some(local), size) => {
            out.extend_from_slice(b"Local rank: ");
            push_int(out, local);
            if let Some(n) = size {
                out.extend_from_slice(b" (world size ");
                push_int(out, n);
                out.push(b')');
            }
        }
        (None, None, Some(size)) => {
            out.extend_from_slice(b"World size: ");
            push_int(out, size);
        }
    }
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
            launcher: LauncherIds::default(),
            cuda_visible_devices: None,
            driver_version: Some(12080),
            gpus: Some(vec![Gpu { name: "NVIDIA H200".into(), major: 9, minor: 0 }]),
            statistics: None,
        };
        let mut out = Vec::new();
        push_system_info(&mut out, &stamp, &info);
        let eq = "=".repeat(80);
        let want = format!("{eq}\n[2026-11-28 21:04:05] FlashInfer API Logging - System Information\n{eq}\nflashlog version: 0.1.0\nProcess: 12345 (python3)\nCUDA driver version: 12080\nNumber of GPUs: 1\n  GPU 0: NVIDIA H200\n    Compute capability: 9.0 (SM90)\n{eq}\n\n");
        assert_eq!(String::from_utf8(out).unwrap(), want);
        let mut out = Vec::new();
        push_system_info(&mut out, &stamp, &SystemInfo { driver_version: None, gpus: None, ..info.clone() });
        assert!(String::from_utf8(out).unwrap().contains("\nCUDA driver: <not loaded>\n="));
        let ranked = SystemInfo {
            launcher: LauncherIds { rank: Some(1), local_rank: Some(1), world_size: Some(8) },
            cuda_visible_devices: Some("1,3".into()),
            ..info
        };
        let mut out = Vec::new();
        push_system_info(&mut out, &stamp, &ranked);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\nProcess: 12345 (python3)\nRank: 1 of 8 (local 1)\nCUDA_VISIBLE_DEVICES: 1,3\nCUDA driver version: 12080\n"));
    }

    #[test]
    fn rank_lines_say_only_what_is_known() {
        let line = |rank, local_rank, world_size| {
            let mut out = Vec::new();
            push_rank_line(&mut out, &LauncherIds { rank, local_rank, world_size });
            String::from_utf8(out).unwrap()
        };
        assert_eq!(line(Some(1), Some(1), Some(8)), "Rank: 1 of 8 (local 1)\n");
        assert_eq!(line(Some(3), None, Some(4)), "Rank: 3 of 4\n");
        assert_eq!(line(Some(3), Some(0), None), "Rank: 3 (local 0)\n");
        assert_eq!(line(Some(3), None, None), "Rank: 3\n");
        assert_eq!(line(None, Some(2), Some(8)), "Local rank: 2 (world size 8)\n");
        assert_eq!(line(None, Some(2), None), "Local rank: 2\n");
        assert_eq!(line(None, None, Some(8)), "World size: 8\n");
        assert_eq!(line(None, None, None), "");
    }
}
