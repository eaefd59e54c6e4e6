//! The lines a tensor gets in place of its statistics (`docs/log-format.md`, "Statistics"): why they were
//! skipped ([`Skipped`], `[statistics skipped: ...]`), why they failed (`[statistics error: ...]`), and that a
//! graph replay will take them (`[statistics deferred to graph replay: id=N]`). Written by eager statistics,
//! by a captured call and at graph replay, and built only here.

use super::push_indent;
use super::pyrepr::push_int;

/// The reason of a tensor not read because a CUDA graph capture runs (also a dumped tensor's `not_dumped`).
pub const CAPTURE_IN_PROGRESS: &str = "CUDA graph capture in progress";

/// Why a tensor got no statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Skipped {
    /// A CUDA graph capture runs: [`CAPTURE_IN_PROGRESS`].
    Capture,
    /// The view reaches more elements than its span can hold, too many to walk:
    /// `overlapping view of N elements over 12.0 MiB`.
    Overlapping {
        /// Elements of the view.
        elements: u64,
        /// Bytes it spans.
        span: u128,
    },
    /// The bytes to read exceed `FLASHLOG_STATS_MAX_MB`: `40.0 GiB over FLASHLOG_STATS_MAX_MB=256`.
    OverCap {
        /// Bytes the statistics would read.
        bytes: u128,
        /// The cap in MiB.
        cap_mb: u64,
    },
    /// The bytes the kernel would read exceed `FLASHLOG_GPU_STATS_MAX_GB`.
    GpuOverCap {
        /// Bytes the statistics would read.
        bytes: u128,
        /// The cap in GiB.
        cap_gb: f64,
    },
    /// The page-locked arena of replay statistics is spent: `graph statistics pool full (64 MiB)`.
    PoolFull {
        /// The pool's size in MiB (`FLASHLOG_GRAPH_STATS_MB`).
        mb: usize,
    },
    /// Any other reason, as written (the driver could not say whether a capture runs, a capture the replay
    /// cannot cover, ...).
    Reason(&'static str),
}

/// Reason for a capture the shim did not see begin (a route it does not wrap) before the arena existed.
pub const UNSEEN_NO_ARENA: &str = "graph statistics pool not prepared (capture begun by a route flashlog did not see)";
/// Reason for a capture the shim did not see begin, once the arena exists.
pub const UNSEEN: &str = "CUDA graph capture begun by a route flashlog did not see";
/// Reason for a capture the shim saw, when the arena could not be prepared before it.
pub const NO_ARENA: &str = "graph statistics pool not prepared";
/// Reason when the stream of the call cannot be identified.
pub const NO_STREAM: &str = "capturing stream not identified";
/// Reason for a tensor inside a container argument (replay records cover top-level tensor arguments).
pub const NESTED: &str = "tensor inside a container argument: not covered at graph replay";

/// Appends `<indent>[statistics skipped: <reason>]`.
pub fn push_skipped(out: &mut Vec<u8>, indent: usize, why: Skipped) {
    push_indent(out, indent);
    out.extend_from_slice(b"[statistics skipped: ");
    match why {
        Skipped::Capture => out.extend_from_slice(CAPTURE_IN_PROGRESS.as_bytes()),
        Skipped::Overlapping { elements, span } => {
            out.extend_from_slice(b"overlapping view of ");
            push_int(out, elements);
            out.extend_from_slice(b" elements over ");
            push_size(out, span);
        }
        Skipped::OverCap { bytes, cap_mb } => {
            push_size(out, bytes);
            out.extend_from_slice(b" over FLASHLOG_STATS_MAX_MB=");
            push_int(out, cap_mb);
        }
        Skipped::GpuOverCap { bytes, cap_gb } => {
            push_size(out, bytes);
            out.extend_from_slice(b" over FLASHLOG_GPU_STATS_MAX_GB=");
            let _ = std::io::Write::write_fmt(out, format_args!("{cap_gb}"));
        }
        Skipped::PoolFull { mb } => {
            out.extend_from_slice(b"graph statistics pool full (");
            push_int(out, mb);
            out.extend_from_slice(b" MiB)");
        }
        Skipped::Reason(reason) => out.extend_from_slice(reason.as_bytes()),
    }
    out.extend_from_slice(b"]\n");
}

/// Appends `<indent>[statistics error: <reason>]`.
pub fn push_stats_error(out: &mut Vec<u8>, indent: usize, reason: &str) {
    super::push_line(out, indent, "[statistics error: ", reason);
}

/// Appends `<indent>[statistics deferred to graph replay: id=N]`.
pub fn push_deferred(out: &mut Vec<u8>, indent: usize, id: u64) {
    push_indent(out, indent);
    out.extend_from_slice(b"[statistics deferred to graph replay: id=");
    push_int(out, id);
    out.extend_from_slice(b"]\n");
}

/// A byte count as `512 B`, `12.0 MiB`, `40.0 GiB` (binary units, one decimal).
pub fn push_size(out: &mut Vec<u8>, bytes: u128) {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        push_int(out, bytes as u64);
        out.extend_from_slice(b" B");
        return;
    }
    let mut unit = 0;
    let mut scale = 1024u128;
    while unit + 1 < UNITS.len() && bytes >= scale * 1024 {
        scale *= 1024;
        unit += 1;
    }
    // Tenths, rounded half up, in integers (no float formatting, no allocation).
    let tenths = (bytes * 10 + scale / 2) / scale;
    push_int(out, (tenths / 10) as u64);
    out.push(b'.');
    out.push(b'0' + (tenths % 10) as u8);
    out.push(b' ');
    out.extend_from_slice(UNITS[unit].as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(b: u128) -> String {
        let mut out = Vec::new();
        push_size(&mut out, b);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(12 << 20), "12.0 MiB");
        assert_eq!(size((12 << 20) - 4), "12.0 MiB");
        assert_eq!(size(40 << 30), "40.0 GiB");
        assert_eq!(size(1536 << 20), "1.5 GiB");
        assert_eq!(size(u64::MAX as u128 * 4), "64.0 EiB");
    }

    fn line(why: Skipped) -> String {
        let mut out = Vec::new();
        push_skipped(&mut out, 2, why);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn skip_lines() {
        assert_eq!(line(Skipped::Capture), "  [statistics skipped: CUDA graph capture in progress]\n");
        assert_eq!(
            line(Skipped::Overlapping { elements: 1 << 60, span: 12 << 20 }),
            "  [statistics skipped: overlapping view of 1152921504606846976 elements over 12.0 MiB]\n"
        );
        assert_eq!(
            line(Skipped::OverCap { bytes: 40 << 30, cap_mb: 256 }),
            "  [statistics skipped: 40.0 GiB over FLASHLOG_STATS_MAX_MB=256]\n"
        );
        assert_eq!(
            line(Skipped::GpuOverCap { bytes: 3 << 30, cap_gb: 0.5 }),
            "  [statistics skipped: 3.0 GiB over FLASHLOG_GPU_STATS_MAX_GB=0.5]\n"
        );
        assert_eq!(line(Skipped::PoolFull { mb: 64 }), "  [statistics skipped: graph statistics pool full (64 MiB)]\n");
        assert_eq!(line(Skipped::Reason(NESTED)), format!("  [statistics skipped: {NESTED}]\n"));
        let mut out = Vec::new();
        push_stats_error(&mut out, 4, "unsupported dtype");
        push_deferred(&mut out, 4, 7);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "    [statistics error: unsupported dtype]\n    [statistics deferred to graph replay: id=7]\n"
        );
    }
}
