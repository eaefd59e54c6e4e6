//! The launcher's options, as one table: parsing, the checks made before the command starts, `--help` and the
//! table of `docs/usage.md` all come from [`OPTIONS`], so adding an option is adding one row (and, for a
//! check of its own, one [`Check`]).

/// What an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takes {
    /// A value, named as `--help` shows it (`LEVEL`, `DIR`).
    Value(&'static str),
    /// Nothing: a flag. The text is what it sets its variable to.
    Flag(&'static str),
}

/// What is checked before the command starts (a failed check is one line on stderr and exit status 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing.
    None,
    /// One of [`LEVELS`].
    Level,
    /// `stdout`, `stderr` or a file whose folder exists or can be created (it is created now).
    Destination,
    /// A folder that exists or can be created (it is created now).
    Folder,
    /// A flight recorder's size: a positive number of MiB the ring format accepts.
    RingMb,
    /// Another flag, given too or set in the environment by its variable (`--graph-markers` needs `--sync`).
    Needs(&'static str),
}

/// One launcher option.
#[derive(Clone, Copy, Debug)]
pub struct Opt {
    /// `-l`, or None.
    pub short: Option<&'static str>,
    /// `--level`.
    pub long: &'static str,
    /// A value or a flag.
    pub takes: Takes,
    /// The variable it sets in the command's environment (None: the launcher acts on it itself).
    pub var: Option<&'static str>,
    /// The lowest level at which it does anything: below it the option is refused.
    pub min_level: u8,
    /// What is checked about its value.
    pub check: Check,
    /// One sentence or two for `--help` and `docs/usage.md`.
    pub help: &'static str,
}

/// The levels the shim has (a level between them means the one below; the launcher accepts only these).
pub const LEVELS: [u8; 5] = [0, 1, 3, 5, 10];

/// The options, in the order `--help` lists them.
pub const OPTIONS: &[Opt] = &[
    Opt {
        short: Some("-l"),
        long: "--level",
        takes: Takes::Value("LEVEL"),
        var: Some("FLASHLOG_LEVEL"),
        min_level: 0,
        check: Check::Level,
        help: "0 off, 1 names, 3 inputs and outputs, 5 statistics, 10 dumps for flashlog replay (default: \
               FLASHLOG_LEVEL, else FLASHINFER_LOGLEVEL, else 1)",
    },
    Opt {
        short: Some("-o"),
        long: "--output",
        takes: Takes::Value("DEST"),
        var: Some("FLASHLOG_DEST"),
        min_level: 0,
        check: Check::Destination,
        help: "stdout, stderr or a file, appended to; %i becomes the process id, %r the rank, one file per \
               process; its folder is created now (default: FLASHINFER_LOGDEST, else stdout)",
    },
    Opt {
        short: None,
        long: "--modules",
        takes: Takes::Value("GLOBS"),
        var: Some("FLASHLOG_MODULES"),
        min_level: 0,
        check: Check::None,
        help: "which TVM-FFI modules to wrap, globs on the path (default *flashinfer*)",
    },
    Opt {
        short: None,
        long: "--kernels",
        takes: Takes::Value("GLOBS"),
        var: Some("FLASHLOG_KERNELS"),
        min_level: 0,
        check: Check::None,
        help: "which kernel launches to log, globs on demangled names (default *flashinfer*; empty: none)",
    },
    Opt {
        short: None,
        long: "--ring",
        takes: Takes::Value("MB"),
        var: Some("FLASHLOG_RING_MB"),
        min_level: 0,
        check: Check::RingMb,
        help: "the flight recorder: the file destination becomes a ring of the last MB MiB of records, in a \
               memory-mapped file, no system call per record (read it with flashlog show; not with \
               --with-python-logger)",
    },
    Opt {
        short: None,
        long: "--graph-stats",
        takes: Takes::Flag("1"),
        var: Some("FLASHLOG_GRAPH_STATS"),
        min_level: 5,
        check: Check::None,
        help: "level 5 and 10: calls captured into a CUDA graph get their statistics at every replay",
    },
    Opt {
        short: None,
        long: "--watch",
        takes: Takes::Flag("nonfinite"),
        var: Some("FLASHLOG_WATCH"),
        min_level: 5,
        check: Check::None,
        help: "level 5 and 10: write a call's records, or a replay record, only when a tensor holds a NaN or \
               an infinity",
    },
    Opt {
        short: None,
        long: "--sync",
        takes: Takes::Flag("1"),
        var: Some("FLASHLOG_SYNC"),
        min_level: 1,
        check: Check::None,
        help: "synchronise each FlashInfer call's stream before and after it, so a CUDA error is written after \
               the call that caused it and flashlog summary names that call; a graph replay that fails gets a \
               record naming the graph (docs/cuda-errors.md)",
    },
    Opt {
        short: None,
        long: "--graph-markers",
        takes: Takes::Flag("1"),
        var: Some("FLASHLOG_GRAPH_MARKERS"),
        min_level: 1,
        check: Check::Needs("--sync"),
        help: "with --sync: a progress marker after each captured call, so a failing replay's record names the \
               last captured call that completed and the first that did not",
    },
    Opt {
        short: None,
        long: "--correlate",
        takes: Takes::Flag("1"),
        var: Some("FLASHLOG_CORRELATE"),
        min_level: 1,
        check: Check::None,
        help: "every call's records carry the correlation line from the first call, with the record's time to the \
               microsecond (by default only once a second thread logs), so export --trace and report place \
               calls at measured times",
    },
    Opt {
        short: None,
        long: "--dump-dir",
        takes: Takes::Value("DIR"),
        var: Some("FLASHLOG_DUMP_DIR"),
        min_level: 10,
        check: Check::Folder,
        help: "level 10: the folder of the dumps, created now; %i, %r as in -o (default: FLASHINFER_DUMP_DIR, \
               else flashinfer_dumps)",
    },
    Opt {
        short: None,
        long: "--with-python-logger",
        takes: Takes::Flag("1"),
        var: None,
        min_level: 0,
        check: Check::None,
        help: "keep FlashInfer's own Python logger on too: FLASHINFER_LOGLEVEL is kept (set to the shim's level \
               when unset) and -o sends its records to the same destination (FLASHINFER_LOGDEST). Without it, \
               FLASHINFER_LOGLEVEL is removed from the command's environment, so only the shim logs",
    },
    Opt {
        short: Some("-h"),
        long: "--help",
        takes: Takes::Flag("1"),
        var: None,
        min_level: 0,
        check: Check::None,
        help: "this text",
    },
    Opt {
        short: Some("-V"),
        long: "--version",
        takes: Takes::Flag("1"),
        var: None,
        min_level: 0,
        check: Check::None,
        help: "the version",
    },
];

/// The row of `--name`.
pub fn find(long: &str) -> &'static Opt {
    OPTIONS.iter().find(|o| o.long == long).expect("a name of OPTIONS")
}

/// Splits one argument into (its option, the value given with it): `-l3` and `--level=3` give the value, `-l`
/// and `--level` leave it to the next argument; a flag never has one (`--watch=x` is not an option). None when
/// the argument is no option of the table.
pub fn split(arg: &str) -> Option<(&'static Opt, Option<&str>)> {
    for opt in OPTIONS {
        if arg == opt.long || opt.short == Some(arg) {
            return Some((opt, None));
        }
        if let Takes::Value(_) = opt.takes {
            if let Some(v) = arg.strip_prefix(opt.long).and_then(|r| r.strip_prefix('=')) {
                return Some((opt, Some(v)));
            }
            if let Some(v) = opt.short.and_then(|s| arg.strip_prefix(s)) {
                return Some((opt, Some(v)));
            }
        }
    }
    None
}

/// The option's names as `--help` shows them: `-l, --level LEVEL`.
fn names(opt: &Opt) -> String {
    let mut s = opt.short.map(|s| format!("{s}, ")).unwrap_or_default();
    s.push_str(opt.long);
    if let Takes::Value(v) = opt.takes {
        s.push(' ');
        s.push_str(v);
    }
    s
}

/// What the option sets, as `--help` and the docs say it: `(FLASHLOG_LEVEL)`, `(FLASHLOG_WATCH=nonfinite)`.
fn sets(opt: &Opt) -> String {
    match (opt.var, opt.takes) {
        (Some(var), Takes::Value(_)) => format!("; sets {var}"),
        (Some(var), Takes::Flag(v)) => format!("; sets {var}={v}"),
        (None, _) => String::new(),
    }
}

/// The options part of `--help`: one entry per row, its text wrapped at 116 columns.
pub fn help_options() -> String {
    const INDENT: usize = 24;
    const WIDTH: usize = 116;
    let mut out = String::new();
    for opt in OPTIONS {
        let head = format!("  {}", names(opt));
        let mut line = if head.len() + 2 <= INDENT {
            format!("{head:<INDENT$}")
        } else {
            out.push_str(&head);
            out.push('\n');
            " ".repeat(INDENT)
        };
        let mut empty = true;
        for word in format!("{}{}", opt.help, sets(opt)).split(' ') {
            if !empty && line.len() + 1 + word.len() > WIDTH {
                out.push_str(&line);
                out.push('\n');
                line = " ".repeat(INDENT);
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The options as the Markdown table of `docs/usage.md` (a unit test keeps the two the same and prints the
/// table to paste when they differ).
#[cfg_attr(not(test), allow(dead_code))]
pub fn markdown_table() -> String {
    let mut out = String::from("| option | meaning |\n|---|---|\n");
    for opt in OPTIONS {
        let mut cell = opt.short.map(|s| format!("`{s}`, ")).unwrap_or_default();
        cell.push_str(&format!("`{}`", opt.long));
        if let Takes::Value(v) = opt.takes {
            cell.push_str(&format!(" {v}"));
        }
        let text = format!("{}{}", opt.help, sets(opt)).replace('*', "\\*");
        out.push_str(&format!("| {cell} | {text} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_doc_has_the_table() {
        let doc = include_str!("../../../docs/usage.md");
        let table = markdown_table();
        assert!(doc.contains(&table), "docs/usage.md must contain, exactly:\n{table}");
    }

    #[test]
    fn every_row_in_help_and_split() {
        let help = help_options();
        for opt in OPTIONS {
            assert!(help.contains(&names(opt)), "{}", opt.long);
            assert_eq!(split(opt.long).map(|(o, v)| (o.long, v)), Some((opt.long, None)));
            if let Some(short) = opt.short {
                assert_eq!(split(short).map(|(o, _)| o.long), Some(opt.long));
            }
            if let Some(var) = opt.var {
                assert!(help.contains(var), "{var}");
            }
        }
        assert!(help.lines().all(|l| l.len() <= 116), "{help}");
        assert_eq!(split("--dump-dir=d").map(|(o, v)| (o.long, v)), Some(("--dump-dir", Some("d"))));
        assert!(split("--watch=x").is_none() && split("--levels=3").is_none());
    }
}
