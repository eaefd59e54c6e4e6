//! The text of every record the shim writes (`docs/log-format.md`). Pure apart from the fault-tolerant reads of
//! values: each function appends to a caller-provided buffer that the sink then writes with one `write(2)`.

pub mod call;
pub mod launch;
pub mod names;
pub mod pyrepr;
pub mod sysinfo;
pub mod tensor;
pub mod value;

/// 80 `=`: the separator that opens and closes detailed records.
pub const EQUALS_LINE: &[u8] = b"================================================================================\n";
/// 80 `-`: the separator between a record's header and its body.
pub const DASH_LINE: &[u8] = b"--------------------------------------------------------------------------------\n";

/// Appends `n` spaces.
pub fn push_indent(out: &mut Vec<u8>, n: usize) {
    out.extend(std::iter::repeat_n(b' ', n));
}

/// A timestamp already formatted as `[YYYY-MM-DD HH:MM:SS]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp(pub [u8; 21]);

impl Stamp {
    /// Formats a broken-down local time.
    pub fn from_parts(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Stamp {
        let mut s = *b"[0000-00-00 00:00:00]";
        let mut put = |at: usize, v: u32, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                s[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(1, year.clamp(0, 9999) as u32, 4);
        put(6, month, 2);
        put(9, day, 2);
        put(12, hour, 2);
        put(15, minute, 2);
        put(18, second, 2);
        Stamp(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_80_wide() {
        assert_eq!(EQUALS_LINE.len(), 81);
        assert_eq!(DASH_LINE.len(), 81);
    }

    #[test]
    fn stamp_format() {
        assert_eq!(&Stamp::from_parts(2026, 11, 28, 21, 4, 5).0, b"[2026-11-28 21:04:05]");
    }
}
