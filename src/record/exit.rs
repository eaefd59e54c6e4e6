//! The exit line's text (`docs/log-format.md`, "Exit line"): `[flashlog exit: pid P, N records]`, written into a
//! fixed buffer (the exit handler allocates nothing).

#![forbid(unsafe_code)]

/// Writes `[flashlog exit: pid P, N records]\n` into `out` (96 bytes hold the longest); returns its length.
pub fn exit_line(out: &mut [u8; 96], pid: i32, records: u64) -> usize {
    let mut pid_text = itoa::Buffer::new();
    let mut count_text = itoa::Buffer::new();
    let noun: &[u8] = if records == 1 { b" record]\n" } else { b" records]\n" };
    let parts: [&[u8]; 5] =
        [b"[flashlog exit: pid ", pid_text.format(pid).as_bytes(), b", ", count_text.format(records).as_bytes(), noun];
    let mut len = 0;
    for part in parts {
        out[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    len
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_line() {
        let mut out = [0u8; 96];
        let n = super::exit_line(&mut out, 4321, 57);
        assert_eq!(&out[..n], b"[flashlog exit: pid 4321, 57 records]\n");
        let n = super::exit_line(&mut out, i32::MIN, u64::MAX);
        assert_eq!(&out[..n], b"[flashlog exit: pid -2147483648, 18446744073709551615 records]\n");
        let n = super::exit_line(&mut out, 1, 1);
        assert_eq!(&out[..n], b"[flashlog exit: pid 1, 1 record]\n");
    }
}
