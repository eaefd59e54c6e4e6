//! The input boundary of `flashlog summary`: a plain log is read as it is, a flight-recorder ring as the text
//! `flashlog show` prints for it, so rings and plain logs can be summarised together in one command.

use std::io::{BufRead, BufReader, Cursor};

/// A reader of the log text at `path` (a ring's problems and what it left out go to stderr, one line each).
pub fn open(path: &str) -> std::io::Result<Box<dyn BufRead>> {
    if crate::ringread::is_ring(path) {
        let contents = crate::ringread::read(path).map_err(std::io::Error::other)?;
        for problem in &contents.problems {
            eprintln!("flashlog summary: {path}: {problem}");
        }
        if contents.torn + contents.damaged > 0 || contents.overwritten.is_none() {
            eprintln!("{}", crate::show::account(path, &contents).replacen("flashlog show", "flashlog summary", 1));
        }
        return Ok(Box::new(Cursor::new(contents.text)));
    }
    Ok(Box::new(BufReader::with_capacity(1 << 20, std::fs::File::open(path)?)))
}
