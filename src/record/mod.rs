//! The text of every record the shim writes (`docs/log-format.md`). Pure apart from the fault-tolerant reads of
//! values: each function appends to a caller-provided buffer that the sink then writes with one `write(2)`.

pub mod call;
pub mod exit;
pub mod kind;
pub mod launch;
pub mod names;
pub mod pyrepr;
pub mod replay_lines;
pub mod stats_lines;
pub mod stats_numbers;
pub mod sync_lines;
pub mod sysinfo;
pub mod tensor;
pub mod value;

/// 80 `=`: the separator that opens and closes detailed records.
pub const EQUALS_LINE: &[u8] = b"================================================================================\n";
/// 80 `-`: the separator between a record's header and its body.
pub const DASH_LINE: &[u8] = b"--------------------------------------------------------------------------------\n";

/// Appends `<indent>[prefix reason]`.
pub fn push_line(out: &mut Vec<u8>, indent: usize, prefix: &str, reason: &str) {
    push_indent(out, indent);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"]\n");
}

/// Appends `n` spaces.
pub fn push_indent(out: &mut Vec<u8>, n: usize) {
    out.extend(std::iter::repeat_n(b' ', n));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_80_wide() {
        assert_eq!(EQUALS_LINE.len(), 81);
        assert_eq!(DASH_LINE.len(), 81);
    }
}
