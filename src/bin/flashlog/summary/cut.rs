//! The one cutter of record texts out of a log, shared by `flashlog summary --show` and `flashlog report`: a
//! pass over a file with the summary's parser (so records are framed, and outputs records paired with their
//! calls within one thread, exactly as the summary reads them) that tells which wanted record each line belongs
//! to. A call's record is its inputs record, its outputs record (wherever other threads' records put it) and,
//! in a log of one thread, the kernel-launch records (and a CUDA error line) written right after its lines; a
//! line outside records is a record of its own (a level-1 CUDA error line, a deferred statistics line).
//!
//! The pass reads lines with the bounded reader ([`crate::lines`]): a line too long to read is given as
//! [`LONG_LINE`], so a record holding one is still cut, and line numbers stay those of the file.

use super::parse::FileParser;
use super::{FileInfo, Summary};
use crate::lines::{self, Line, Skipped};
use crate::records::EQ;
use std::io::BufRead;

/// What a line too long to read reads as in a record's text.
pub const LONG_LINE: &str = "[... a line longer than 1 MiB, left out ...]";
/// What stands between two pieces of one call's record that other threads' records separate.
pub const OTHER_THREADS: &str = "  [... records of other threads ...]";

/// Reads the log `reader` (of `path`, for the parser's messages) once, and calls `keep(record, line_no, text)`
/// for each line (1-based, without its newline) that belongs to a record `wanted` accepts, `record` being that
/// record's first line. `wanted` is asked first for the record the line belongs to, then, for a line outside
/// records (or one whose record is not wanted), for the line itself.
pub fn cut(
    path: &str,
    reader: &mut impl BufRead,
    wanted: impl Fn(u64) -> bool,
    mut keep: impl FnMut(u64, u64, &str),
) -> std::io::Result<Skipped> {
    let mut scratch = Summary::default();
    scratch.files.push(FileInfo { path: path.to_string(), ..FileInfo::default() });
    let mut parser = FileParser::new(&mut scratch, 0);
    // The record and line of the latest line kept, and whether that line was a record's `=` line (a record
    // that closed there has no launch after it).
    let (mut line_no, mut kept_last, mut kept_eq) = (0u64, None::<(u64, u64)>, false);
    let skipped = lines::for_each(reader, |l| {
        line_no += 1;
        let lossy;
        let text = match l {
            Line::Text(raw) => {
                lossy = String::from_utf8_lossy(raw);
                let line = lossy.trim_end_matches('\r');
                parser.line(line);
                line
            }
            Line::Skipped => {
                parser.skipped_line();
                LONG_LINE
            }
        };
        // A kernel-launch record (and a CUDA error line after it) right after a kept call's line is that call's,
        // in a log of one thread.
        let launch_of_kept = kept_last.filter(|(_, l)| !kept_eq && parser.in_launch_record() && l + 1 == line_no);
        let record = parser.record_of_last_line().filter(|r| wanted(*r));
        let record = launch_of_kept.map(|(r, _)| r).or(record);
        let Some(record) = record.or_else(|| wanted(line_no).then_some(line_no)) else {
            return;
        };
        keep(record, line_no, text);
        kept_last = Some((record, line_no));
        kept_eq = text == EQ;
    })?;
    parser.finish();
    Ok(skipped)
}
