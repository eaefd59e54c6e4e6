//! The terminal the summary prints to: its width and whether to colour. The summary's only OS call (the
//! window size) is here.

use super::render::Style;
use std::io::IsTerminal;

/// The width to fit the output to: `COLUMNS` when set to a number, else the terminal's width when stdout is a
/// terminal, else none (a pipe or a file gets whole lines).
pub fn width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|n| *n > 0) {
        return Some(n.max(40));
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct passed; descriptor 1 is a terminal (checked above).
    let rc = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then(|| usize::from(size.ws_col).max(40))
}

/// Whether to colour: stdout is a terminal and `NO_COLOR` is unset or empty (no-color.org).
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The line with its style's escape sequences (bold header, red findings, yellow notes, cyan commands).
pub fn paint(line: &str, style: Style) -> String {
    let code = match style {
        Style::Plain => return line.to_string(),
        Style::Header => "1",
        Style::Finding => "31",
        Style::Note => "33",
        Style::Hint => "36",
    };
    format!("\x1b[{code}m{line}\x1b[0m")
}
