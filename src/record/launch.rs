//! Kernel-launch records: `[ts] FlashInfer Kernel Launch: <name>` and, at level 3, the launch geometry.

use super::pyrepr::{push_hex, push_int};
use crate::clock::Stamp;

/// A kernel launch as the wrappers see it.
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    /// Grid dimensions.
    pub grid: [u32; 3],
    /// Block dimensions.
    pub block: [u32; 3],
    /// Dynamic shared memory in bytes.
    pub shared_mem: u64,
    /// The stream handle.
    pub stream: usize,
}

/// Appends the launch record; `detailed` adds the geometry lines (level 3 and above).
pub fn push_launch_record(out: &mut Vec<u8>, stamp: &Stamp, name: &str, launch: &Launch, detailed: bool) {
    out.extend_from_slice(&stamp.0);
    out.extend_from_slice(b" FlashInfer Kernel Launch: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    if !detailed {
        return;
    }
    let dims = |out: &mut Vec<u8>, label: &[u8], d: [u32; 3]| {
        out.extend_from_slice(label);
        out.push(b'(');
        push_int(out, d[0]);
        out.extend_from_slice(b", ");
        push_int(out, d[1]);
        out.extend_from_slice(b", ");
        push_int(out, d[2]);
        out.extend_from_slice(b")\n");
    };
    dims(out, b"  grid=", launch.grid);
    dims(out, b"  block=", launch.block);
    out.extend_from_slice(b"  shared_mem=");
    push_int(out, launch.shared_mem);
    out.extend_from_slice(b"\n  stream=");
    push_hex(out, launch.stream as u64);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_layout() {
        let stamp = Stamp::from_parts(2026, 11, 28, 21, 4, 5);
        let l = Launch { grid: [1, 2, 3], block: [128, 1, 1], shared_mem: 16, stream: 0x55 };
        let mut out = Vec::new();
        push_launch_record(&mut out, &stamp, "flashinfer::K<1>", &l, true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[2026-11-28 21:04:05] FlashInfer Kernel Launch: flashinfer::K<1>\n  grid=(1, 2, 3)\n  block=(128, 1, 1)\n  shared_mem=16\n  stream=0x55\n"
        );
    }
}
