//! Python-compatible text of numbers, strings and tuples, so the shim's records read exactly like those of
//! FlashInfer's Python logger (`repr(0.5)`, `repr('HND')`, `repr((4, 128))`).

use std::fmt::Write as _;

/// A fixed-size stack buffer implementing `fmt::Write`, so formatting a number allocates nothing.
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends `repr(x)` of a Python float: shortest round-trip digits, scientific notation when the decimal
/// exponent is below -4 or at least 16 (`1e-06`, `1e+16`), otherwise positional with at least one decimal
/// (`0.5`, `3.14`, `1.0`); `inf`, `-inf`, `nan`.
pub fn push_float_repr(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    if x.is_sign_negative() {
        out.push(b'-');
    }
    let mut text = StackText { buf: [0; 64], len: 0 };
    // `{:e}` gives the shortest round-trip digits as `d.ddde<exp>`.
    let _ = write!(text, "{:e}", x.abs());
    let s = &text.buf[..text.len];
    let e_at = s.iter().position(|&c| c == b'e').unwrap_or(s.len());
    // The mantissa's digits without the point (at most 17 significant digits for an f64).
    let mut digit_buf = [0u8; 32];
    let mut n_digits = 0;
    for &c in s[..e_at].iter().filter(|c| c.is_ascii_digit()) {
        digit_buf[n_digits] = c;
        n_digits += 1;
    }
    let digits = &digit_buf[..n_digits];
    let exp: i32 = std::str::from_utf8(&s[e_at + 1..]).ok().and_then(|e| e.parse().ok()).unwrap_or(0);
    let decpt = exp + 1; // position of the decimal point relative to the first digit
    if !(-3..=16).contains(&decpt) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let mag = exp.unsigned_abs();
        if mag < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(itoa::Buffer::new().format(mag).as_bytes());
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-decpt) as usize));
        out.extend_from_slice(digits);
    } else {
        let point = decpt as usize;
        if digits.len() <= point {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', point - digits.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        }
    }
}

/// Appends a decimal integer.
pub fn push_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends `0x` and lower-case hex digits of `v` (Python's `hex()`).
pub fn push_hex(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(b"0x");
    if v == 0 {
        out.push(b'0');
        return;
    }
    let digits = 16 - (v.leading_zeros() as usize / 4);
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[((v >> (i * 4)) & 0xf) as usize]);
    }
}

/// Appends Python's tuple repr of integers: `(2, 3)`, `(3,)`, `()`.
pub fn push_tuple(out: &mut Vec<u8>, items: &[i64]) {
    out.push(b'(');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        push_int(out, *v);
    }
    if items.len() == 1 {
        out.push(b',');
    }
    out.push(b')');
}

/// The quote Python's repr picks: `'` unless the text contains `'` and no `"`.
fn pick_quote(bytes: &[u8]) -> u8 {
    if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    }
}

/// Appends `repr(s)` of a Python str made from `bytes` (UTF-8). Printable characters stay, `\\`, the quote,
/// `\n`, `\r`, `\t` are escaped, other control characters become `\xNN`, and bytes that are not valid UTF-8
/// become `\xNN` too, so no control byte ever reaches the log raw. `truncated` appends `...` inside the quotes.
pub fn push_str_repr(out: &mut Vec<u8>, bytes: &[u8], truncated: bool) {
    let quote = pick_quote(bytes);
    out.push(quote);
    push_escaped(out, bytes, Some(quote));
    if truncated {
        out.extend_from_slice(b"...");
    }
    out.push(quote);
}

/// Appends UTF-8 text escaped as inside a Python str repr, without quotes: for text that must stay on one
/// line of a record (an error message). `quote`, when given, is escaped too.
pub fn push_escaped(out: &mut Vec<u8>, bytes: &[u8], quote: Option<u8>) {
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '\\' if quote.is_some() => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if quote.is_some_and(|q| c as u32 == q as u32) => {
                    out.push(b'\\');
                    out.push(c as u8);
                }
                c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => push_byte_escape(out, c as u32),
                c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => push_unicode_escape(out, c as u32),
                c => {
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        for &b in chunk.invalid() {
            push_byte_escape(out, b as u32);
        }
    }
}

/// Appends `repr(b)` of Python bytes: `b'...'` with `\xNN` for bytes outside printable ASCII.
pub fn push_bytes_repr(out: &mut Vec<u8>, bytes: &[u8], truncated: bool) {
    let quote = pick_quote(bytes);
    out.push(b'b');
    out.push(quote);
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b == quote => {
                out.push(b'\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(b),
            _ => push_byte_escape(out, b as u32),
        }
    }
    if truncated {
        out.extend_from_slice(b"...");
    }
    out.push(quote);
}

fn push_byte_escape(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(b"\\x");
    out.push(b"0123456789abcdef"[(v >> 4) as usize & 0xf]);
    out.push(b"0123456789abcdef"[v as usize & 0xf]);
}

fn push_unicode_escape(out: &mut Vec<u8>, v: u32) {
    let (prefix, width) = if v > 0xffff { (&b"\\U"[..], 8) } else { (&b"\\u"[..], 4) };
    out.extend_from_slice(prefix);
    for i in (0..width).rev() {
        out.push(b"0123456789abcdef"[((v >> (i * 4)) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(x: f64) -> String {
        let mut v = Vec::new();
        push_float_repr(&mut v, x);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn floats_like_python_repr() {
        let cases: &[(f64, &str)] = &[
            (0.5, "0.5"),
            (1e-6, "1e-06"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (3.25, "3.25"),
            (6.02e23, "6.02e+23"),
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456789.125, "123456789.125"),
            (1.5e20, "1.5e+20"),
            (-2.5e-10, "-2.5e-10"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for &(x, want) in cases {
            assert_eq!(float(x), want, "repr of {x:e}");
        }
    }

    fn s(bytes: &[u8]) -> String {
        let mut v = Vec::new();
        push_str_repr(&mut v, bytes, false);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn strings_like_python_repr() {
        assert_eq!(s(b"HND"), "'HND'");
        assert_eq!(s(b"a\nb"), "'a\\nb'");
        assert_eq!(s(b"it's"), "\"it's\"");
        assert_eq!(s(b"it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(s(b"tab\there\\"), "'tab\\there\\\\'");
        assert_eq!(s(b"\x01\x7f"), "'\\x01\\x7f'");
        assert_eq!(s("héllo €".as_bytes()), "'héllo €'");
        assert_eq!(s(b"\xff\xfeok"), "'\\xff\\xfeok'");
        assert_eq!(s("\u{85}".as_bytes()), "'\\x85'");
        assert_eq!(s("\u{2028}".as_bytes()), "'\\u2028'");
    }

    #[test]
    fn bytes_like_python_repr() {
        let mut v = Vec::new();
        push_bytes_repr(&mut v, b"ab\x00\xff'", false);
        assert_eq!(String::from_utf8(v).unwrap(), "b\"ab\\x00\\xff'\"");
    }

    #[test]
    fn tuples_and_hex() {
        let t = |items: &[i64]| {
            let mut v = Vec::new();
            push_tuple(&mut v, items);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(t(&[2, 3]), "(2, 3)");
        assert_eq!(t(&[3]), "(3,)");
        assert_eq!(t(&[]), "()");
        let mut v = Vec::new();
        push_hex(&mut v, 0x7f3a1c000000);
        push_hex(&mut v, 0);
        assert_eq!(String::from_utf8(v).unwrap(), "0x7f3a1c0000000x0");
    }
}
