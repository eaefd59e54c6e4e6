//! JSON text written by hand (no allocation beyond the output buffer): strings escaped as RFC 8259 says,
//! bytes that are not UTF-8 replaced by U+FFFD, numbers as JSON numbers (NaN and infinities, which JSON has
//! no number for, as the strings `"nan"`, `"inf"`, `"-inf"`).

#![forbid(unsafe_code)]

use std::io::Write;

/// Appends `text` as a JSON string (quotes included).
pub fn push_str(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    // Fast path: printable ASCII without quote or backslash is copied as it is.
    if text.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        out.extend_from_slice(text);
        out.push(b'"');
        return;
    }
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out.push(b'"');
}

/// Appends `"key": ` (the key is a plain identifier).
pub fn push_key(out: &mut Vec<u8>, key: &str) {
    push_str(out, key.as_bytes());
    out.extend_from_slice(b": ");
}

/// Appends an integer.
pub fn push_int(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

/// Appends a float so that Python's `json` reads back the same double (`repr`-exact digits).
pub fn push_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"\"nan\"");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"\"inf\"" } else { b"\"-inf\"" });
    } else if v == v.trunc() && v.abs() < 1e16 {
        let _ = write!(out, "{v:.1}");
    } else {
        let _ = write!(out, "{v:e}");
    }
}

/// Appends a list of integers.
pub fn push_ints(out: &mut Vec<u8>, values: &[i64]) {
    out.push(b'[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        push_int(out, v);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &[u8]) -> String {
        let mut out = Vec::new();
        push_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(s(b"plain"), "\"plain\"");
        assert_eq!(s(b"q\"b\\n\nt\t\x01\x7f"), "\"q\\\"b\\\\n\\nt\\t\\u0001\\u007f\"");
        assert_eq!(s(b"bad \xff\xfe end \xc3\xa9"), "\"bad \u{fffd}\u{fffd} end \u{e9}\"");
    }

    #[test]
    fn floats_read_back() {
        let f = |v: f64| {
            let mut out = Vec::new();
            push_float(&mut out, v);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(f(1e-6), "1e-6");
        assert_eq!(f(2.5), "2.5e0");
        assert_eq!(f(3.0), "3.0");
        assert_eq!(f(f64::NAN), "\"nan\"");
        assert_eq!(f(-f64::INFINITY), "\"-inf\"");
        assert_eq!(f(0.1).parse::<f64>().unwrap(), 0.1);
    }
}
