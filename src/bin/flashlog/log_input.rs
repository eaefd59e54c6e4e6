//! The input boundary of the log readers (`flashlog summary`, `report`, `export --trace`): a plain log is read as
//! it is, a flight-recorder ring as the text `flashlog show` prints for it, so rings and plain logs can be read
//! together in one command. A ring is decoded once per command and its text kept: readers that pass over a file
//! several times (the report, `summary --show`) see the same records, with the same line numbers, even while a
//! live process keeps writing the ring, and its problems are said once.

use std::io::{BufRead, BufReader, Cursor};
use std::sync::{Arc, Mutex};

/// The text of each ring decoded in this command, by path.
static RINGS: Mutex<Vec<(String, Arc<Vec<u8>>)>> = Mutex::new(Vec::new());

/// A decoded ring's text, shared by the readers of one command.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A reader of the log text at `path`. The first time a ring is opened, its problems and what it left out go to
/// stderr, one line each, under `tool`'s name (`flashlog summary`, ...).
pub fn open(path: &str, tool: &str) -> std::io::Result<Box<dyn BufRead>> {
    let known = RINGS.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(p, _)| p == path).map(|(_, t)| t.clone());
    if let Some(text) = known {
        return Ok(Box::new(Cursor::new(Shared(text))));
    }
    if crate::ringread::is_ring(path) {
        let contents = crate::ringread::read(path).map_err(std::io::Error::other)?;
        for problem in &contents.problems {
            eprintln!("{tool}: {path}: {problem}");
        }
        if contents.torn + contents.damaged > 0 || contents.overwritten.is_none() {
            eprintln!("{}", crate::show::account(path, &contents).replacen("flashlog show", tool, 1));
        }
        let text = Arc::new(contents.text);
        RINGS.lock().unwrap_or_else(|e| e.into_inner()).push((path.to_string(), text.clone()));
        return Ok(Box::new(Cursor::new(Shared(text))));
    }
    Ok(Box::new(BufReader::with_capacity(1 << 20, std::fs::File::open(path)?)))
}
