//! A tensor's statistics (the numbers `stats/` computes) and the text of their lines (`docs/log-format.md`,
//! "Level 5"): C's `%.6f` for floats, with a fast path that gives the same digits. Pure code, allocation-free
//! beyond the output buffer.

#![forbid(unsafe_code)]

use std::io::Write;

/// Finished statistics of a tensor, ready for [`write_stats_lines`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stats {
    /// No elements: no statistics lines are written.
    Empty,
    /// Floating kinds: `min`/`max` are NaN when any value is NaN (as torch does); `mean` is
    /// NaN when any value is NaN or both infinities occur.
    Float {
        /// Smallest value (NaN if any NaN).
        min: f64,
        /// Largest value (NaN if any NaN).
        max: f64,
        /// Mean of all values, accumulated in `f64`.
        mean: f64,
        /// Number of NaN values.
        nan_count: u64,
        /// Number of +-infinite values.
        inf_count: u64,
    },
    /// Integer and bool kinds: exact extremes, mean from the exact (128-bit) sum.
    Int {
        /// Smallest value.
        min: i128,
        /// Largest value.
        max: i128,
        /// Mean of all values.
        mean: f64,
    },
}

impl Stats {
    /// Whether these statistics count a NaN or an infinity (the NaN watch).
    pub fn is_nonfinite(&self) -> bool {
        matches!(self, Stats::Float { nan_count, inf_count, .. } if nan_count + inf_count > 0)
    }
}

/// Write `v` as C's `%.6f` would, except that NaN is `nan` and infinities are `inf` / `-inf`.
pub(crate) fn write_f6(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"nan");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"inf" } else { b"-inf" });
    } else if let Some(micros) = exact_micros(v) {
        // Fast path (the exact formatter below takes microseconds per value): the same digits.
        if v.is_sign_negative() {
            out.push(b'-');
        }
        let mut int = itoa::Buffer::new();
        out.extend_from_slice(int.format(micros / 1_000_000).as_bytes());
        out.push(b'.');
        let frac = micros % 1_000_000;
        let mut digits = [b'0'; 6];
        let mut f = frac;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (f % 10) as u8;
            f /= 10;
        }
        out.extend_from_slice(&digits);
    } else {
        // Rust prints the exact decimal expansion rounded half-to-even, like glibc.
        let _ = write!(out, "{v:.6}");
    }
}

/// `|v| * 10^6` rounded to an integer, when that rounding is certainly the one of the exact decimal
/// expansion: the product carries at most half an ulp of error, so it is safe unless the fraction lies
/// within two ulps of one half (then None, and the exact formatter decides).
fn exact_micros(v: f64) -> Option<u64> {
    let x = v.abs() * 1e6;
    if x.is_nan() || x >= (1u64 << 52) as f64 {
        return None;
    }
    let floor = x.floor();
    let frac = x - floor;
    let ulp = f64::EPSILON * x.max(1.0);
    if (frac - 0.5).abs() <= 2.0 * ulp {
        return None;
    }
    Some(if frac > 0.5 { floor as u64 + 1 } else { floor as u64 })
}

/// Append the statistics lines of `docs/log-format.md` ("Level 5") to `out`, each as `indent` +
/// `name=value` + `\n`: floats get min, max, mean, nan_count, inf_count; integers and bools
/// min, max (as integers) and mean; [`Stats::Empty`] gets no lines.
pub fn write_stats_lines(out: &mut Vec<u8>, indent: &str, stats: &Stats) {
    match *stats {
        Stats::Empty => {}
        Stats::Float { min, max, mean, nan_count, inf_count } => {
            for (name, v) in [("min=", min), ("max=", max), ("mean=", mean)] {
                out.extend_from_slice(indent.as_bytes());
                out.extend_from_slice(name.as_bytes());
                write_f6(out, v);
                out.push(b'\n');
            }
            let _ = writeln!(out, "{indent}nan_count={nan_count}");
            let _ = writeln!(out, "{indent}inf_count={inf_count}");
        }
        Stats::Int { min, max, mean } => {
            let _ = writeln!(out, "{indent}min={min}");
            let _ = writeln!(out, "{indent}max={max}");
            out.extend_from_slice(indent.as_bytes());
            out.extend_from_slice(b"mean=");
            write_f6(out, mean);
            out.push(b'\n');
        }
    }
}

/// Indentation source for [`push_stats_lines`] (no allocation per tensor).
const SPACES: &str = "                ";

/// [`write_stats_lines`] indented by `indent` spaces (at most 16), as the records of a call and of a graph replay
/// print a tensor's statistics.
pub fn push_stats_lines(out: &mut Vec<u8>, indent: usize, stats: &Stats) {
    write_stats_lines(out, &SPACES[..indent.min(SPACES.len())], stats);
}

#[cfg(test)]
mod f6_tests {
    use super::write_f6;

    #[test]
    fn fast_path_matches_the_exact_formatter() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let check = |v: f64| {
            let mut got = Vec::new();
            write_f6(&mut got, v);
            assert_eq!(String::from_utf8(got).unwrap(), format!("{v:.6}"), "{v:e}");
        };
        for v in [0.0, -0.0, 1e-7, -1e-7, 5e-7, -5e-7, 0.5, 6215.5, 1.0000005, 2.5e-7, 123456789.12345679, 4503599.6] {
            check(v);
        }
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                check(v);
                check((x % 10_000_000_000) as f64 / 1e6 - 5000.0);
                check((x % 1_000_000) as f64 / 2e6);
            }
        }
    }
}
