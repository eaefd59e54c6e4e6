//! The one line reader of the log readers (`summary`, its `--show`, `export --trace`, `report`), in bounded
//! memory whatever the input (a log may be a damaged file, a ring's text or something hostile): a line longer
//! than [`MAX_LINE`] bytes is skipped (and counted), NUL bytes are skipped (a process that crashed before its
//! writes reached the disk leaves zero-filled blocks, often hundreds of MiB), and a file that goes on with
//! [`MAX_NUL_RUN`] NUL bytes in a row (`/dev/zero`) is read no further.

use std::io::{BufRead, ErrorKind};
use std::ops::ControlFlow;

/// The longest line read (a record's lines are far shorter).
pub const MAX_LINE: usize = 1 << 20;
/// NUL bytes in a row after which a file is read no further.
pub const MAX_NUL_RUN: u64 = 1 << 30;

/// What the reader skipped in one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Lines longer than [`MAX_LINE`].
    pub long_lines: u64,
    /// NUL bytes.
    pub nul_bytes: u64,
    /// Whether reading stopped after [`MAX_NUL_RUN`] NUL bytes in a row.
    pub stopped: bool,
}

/// What one call of the callback gets.
pub enum Line<'a> {
    /// A line without its `\n` (and without NUL bytes).
    Text(&'a [u8]),
    /// A line too long to read (it still counts as a line).
    Skipped,
}

/// Calls `f` for each line of `reader`, holding at most [`MAX_LINE`] bytes of a line besides the reader's buffer.
pub fn for_each(reader: &mut impl BufRead, mut f: impl FnMut(Line)) -> std::io::Result<Skipped> {
    until(reader, |line| {
        f(line);
        ControlFlow::Continue(())
    })
}

/// [`for_each`] that stops after the line for which `f` says [`ControlFlow::Break`] (the rest of the reader's
/// buffer is consumed).
pub fn until(reader: &mut impl BufRead, mut f: impl FnMut(Line) -> ControlFlow<()>) -> std::io::Result<Skipped> {
    let mut s = Skipped::default();
    let mut line = Vec::new();
    let mut too_long = false;
    let mut nul_run = 0u64;
    'read: loop {
        let buf = match reader.fill_buf() {
            Ok([]) => break,
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let n = buf.len();
        let mut i = 0;
        while i < n {
            if buf[i] == 0 {
                let run = buf[i..].iter().take_while(|&&c| c == 0).count();
                (s.nul_bytes, nul_run, i) = (s.nul_bytes + run as u64, nul_run + run as u64, i + run);
                if nul_run >= MAX_NUL_RUN {
                    s.stopped = true;
                    reader.consume(n);
                    break 'read;
                }
                continue;
            }
            nul_run = 0;
            let end = buf[i..].iter().position(|&c| c == b'\n' || c == 0).map_or(n, |p| i + p);
            if !too_long && line.len() + (end - i) > MAX_LINE {
                too_long = true;
                line = Vec::new();
            }
            if !too_long {
                line.extend_from_slice(&buf[i..end]);
            }
            i = end;
            if i < n && buf[i] == b'\n' {
                let flow = if too_long {
                    s.long_lines += 1;
                    f(Line::Skipped)
                } else {
                    f(Line::Text(&line))
                };
                line.clear();
                too_long = false;
                i += 1;
                if flow.is_break() {
                    reader.consume(n);
                    return Ok(s);
                }
            }
        }
        reader.consume(n);
    }
    if too_long {
        s.long_lines += 1;
        let _ = f(Line::Skipped);
    } else if !line.is_empty() {
        let _ = f(Line::Text(&line));
    }
    Ok(s)
}

/// One stderr line (`TOOL: PATH: ...`) for each kind of input the reader skipped in `path`; nothing when it
/// skipped nothing.
pub fn say(tool: &str, path: &str, s: &Skipped) {
    if s.long_lines > 0 {
        eprintln!("{tool}: {path}: {} lines longer than {} MiB skipped", s.long_lines, MAX_LINE >> 20);
    }
    if s.stopped {
        eprintln!("{tool}: {path}: read no further after {} GiB of NUL bytes in a row", MAX_NUL_RUN >> 30);
    } else if s.nul_bytes > 0 {
        eprintln!("{tool}: {path}: {} NUL bytes skipped (zero-filled blocks of a crashed run?)", s.nul_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Read};

    fn lines(input: &[u8], capacity: usize) -> (Vec<String>, Skipped) {
        let mut out = Vec::new();
        let s = for_each(&mut BufReader::with_capacity(capacity, input), |l| {
            out.push(match l {
                Line::Text(t) => String::from_utf8_lossy(t).into_owned(),
                Line::Skipped => "<skipped>".into(),
            })
        })
        .unwrap();
        (out, s)
    }

    #[test]
    fn lines_nuls_and_long_lines_whatever_the_buffer() {
        let mut input = b"a\n\0\0\0b\0c\n\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
        input.extend(b"\nlast");
        for capacity in [1, 3, 4096, 1 << 21] {
            let (got, s) = lines(&input, capacity);
            assert_eq!(got, ["a", "bc", "", "<skipped>", "last"], "capacity {capacity}");
            assert_eq!(s, Skipped { long_lines: 1, nul_bytes: 4, stopped: false });
        }
        let exact = [vec![b'y'; MAX_LINE], b"\n".to_vec()].concat();
        assert_eq!(lines(&exact, 4096).0[0].len(), MAX_LINE);
    }

    #[test]
    fn until_stops_after_the_line_it_is_told() {
        let mut seen = Vec::new();
        let mut input = BufReader::with_capacity(4, &b"a\nbb\nc\n"[..]);
        until(&mut input, |l| {
            seen.push(matches!(l, Line::Text(t) if t == b"bb"));
            if seen.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(seen, [false, true]);
    }

    #[test]
    fn endless_zeros_stop() {
        let mut zeros = BufReader::with_capacity(1 << 20, std::io::repeat(0).take(u64::MAX));
        let mut calls = 0;
        let s = for_each(&mut zeros, |_| calls += 1).unwrap();
        assert!(s.stopped && s.nul_bytes >= MAX_NUL_RUN && calls == 0);
    }
}
