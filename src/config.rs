//! The environment, turned into a [`Config`] once. Pure: it reads variables through a closure, so tests need
//! no process environment. The rules are those of `docs/log-format.md` ("Levels", "Variables",
//! "Destination").

use crate::glob::GlobSet;

/// Where records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
    /// A file path template, expanded by [`expand_path_template`] when the file is opened.
    File(String),
}

/// Which TVM-FFI modules get their `__tvm_ffi_*` exports wrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleFilter {
    /// The default: module paths containing `flashinfer`.
    PathContainsFlashinfer,
    /// `FLASHLOG_MODULES`: globs on the module path (`*` = every module).
    Globs(GlobSet),
}

impl ModuleFilter {
    /// Whether the module at `path` is wrapped.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            ModuleFilter::PathContainsFlashinfer => path.contains("flashinfer"),
            ModuleFilter::Globs(globs) => globs.matches(path),
        }
    }
}

/// Everything the shim takes from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// 0 = off, 1-2 names, 3-4 inputs and outputs, 5 and above statistics (at most [`MAX_LEVEL`]).
    pub level: u8,
    /// Where records go.
    pub dest: Dest,
    /// Which modules are wrapped.
    pub modules: ModuleFilter,
    /// Which kernels' launches are logged (globs on demangled names).
    pub kernels: GlobSet,
    /// `FLASHINFER_DUMP_INCLUDE`: when non-empty, only matching calls get level-3 records.
    pub dump_include: GlobSet,
    /// `FLASHINFER_DUMP_EXCLUDE`: matching calls get no level-3 records.
    pub dump_exclude: GlobSet,
    /// `FLASHLOG_TEST_PANIC`: fault injection for the tests; a call whose name matches panics inside the
    /// shim while its record is built (the host must not notice, and logging turns off).
    pub inject_panic: GlobSet,
    /// `FLASHLOG_STATS_MAX_MB`: tensors whose statistics would read more than this many MiB get a skip line
    /// instead (0: no limit; default [`DEFAULT_STATS_MAX_MB`]).
    pub stats_max_mb: u64,
    /// Level-10 dump folder template (`FLASHLOG_DUMP_DIR`, else `FLASHINFER_DUMP_DIR`, else
    /// `flashinfer_dumps`); every `%i` becomes the pid.
    pub dump_dir: String,
    /// `FLASHINFER_DUMP_MAX_SIZE_GB` (default 20) in bytes (1 GB = 2^30 bytes): inputs and outputs of every
    /// dumped call of the process together.
    pub dump_max_bytes: u64,
    /// `FLASHINFER_DUMP_MAX_COUNT` (default 1000): calls dumped per process.
    pub dump_max_count: u64,
    /// One line each for stderr, printed when the shim first has something to log about (so a process that
    /// never touches FlashInfer prints nothing).
    pub warnings: Vec<String>,
    // ---- statistics at CUDA graph replay and the NaN watch (level 5 and above; `docs/log-format.md`)
    /// `FLASHLOG_GRAPH_STATS=1`: calls captured into a CUDA graph get their statistics at every replay.
    pub graph_stats: bool,
    /// `FLASHLOG_GRAPH_STATS_MB` (default 64): size of the page-locked pool the captured copies go to.
    pub graph_stats_mb: usize,
    /// `FLASHLOG_GRAPH_STATS_EVERY=K` (default 1): statistics on every K-th replay of a graph only.
    pub graph_stats_every: u64,
    /// `FLASHLOG_WATCH=nonfinite`: records only for calls and replays where a tensor holds a NaN or an infinity.
    pub watch_nonfinite: bool,
    /// `FLASHLOG_RING_MB`: with a file destination, the size in bytes of the flight recorder's ring (the data
    /// area; see `crate::ring`). `None`: records are appended as usual.
    pub ring_bytes: Option<u64>,
    /// `FLASHLOG_SYNC=1`: each FlashInfer call's stream is synchronised before and after it, and each graph
    /// replay's after it, so a CUDA error names its call (`crate::sync`).
    pub sync: bool,
    /// `FLASHLOG_GRAPH_MARKERS=1` (with `FLASHLOG_SYNC=1`): a progress marker after each captured call.
    pub graph_markers: bool,
    /// `FLASHLOG_CORRELATE=1`: every call's records carry the correlation line (with its microsecond time) from
    /// the first call, one thread or many (`crate::correlation`); by default only once a second thread logs.
    pub correlate: bool,
    /// The destination is shared by the processes of a job (`WORLD_SIZE` or its equivalents above 1, and the
    /// destination is stdout, stderr or a file whose name has no `%i` or `%r`): every record carries the
    /// correlation line from the first call, so a reader pairs each call's records although other processes'
    /// records come between them.
    pub shared_by_ranks: bool,
    /// `FLASHLOG_GPU_STATS` (default on; `0` off): statistics of device tensors by the library's own kernel
    /// (`crate::gpu`) instead of copies to the host.
    pub gpu_stats: bool,
    /// `FLASHLOG_GPU_STATS_MAX_GB` (default 64, decimals allowed; 0: no limit): device tensors whose statistics
    /// would read more get a skip line on the GPU route (the kernel delays the host's stream by its run time).
    pub gpu_stats_max_gb: f64,
}

/// Default of `FLASHLOG_STATS_MAX_MB`: tensors larger than this many MiB get no statistics.
///
/// Chosen from a measurement: the statistics of host memory run at about 1.8-3 GB/s here (`make bench`,
/// float32, bfloat16 and float8 through the shim), and each level-5 call reads a tensor twice (inputs and
/// after the call); 256 MiB is then about 0.1-0.3 s per call for the largest tensor that still gets
/// statistics, while a 40 GiB KV cache (13-22 s per pass) is skipped with its reason line.
pub const DEFAULT_STATS_MAX_MB: u64 = 256;

/// Default of `FLASHLOG_GPU_STATS_MAX_GB`: device tensors spanning more get a skip line (the kernel delays the
/// host's stream: 64 GiB is about 15 ms of HBM3e reading).
pub const DEFAULT_GPU_STATS_MAX_GB: f64 = 64.0;

/// Default size of the graph statistics pool, in MiB.
pub const DEFAULT_GRAPH_STATS_MB: usize = 64;

/// The level at and above which calls get inputs and outputs records.
pub const LEVEL_DETAILED: u8 = 3;
/// The level at and above which tensor statistics are taken.
pub const LEVEL_STATS: u8 = 5;
/// The largest level; a larger value means this one (as FlashInfer's logger reads it).
pub const MAX_LEVEL: u8 = 10;
/// The level at and above which every tensor of a call is dumped to disk (level 10, docs/dumps-and-replay.md).
pub const LEVEL_DUMP: u8 = 10;

impl Config {
    /// Builds the configuration from a variable lookup. `FLASHLOG_LEVEL` / `FLASHLOG_DEST` take precedence
    /// over `FLASHINFER_LOGLEVEL` / `FLASHINFER_LOGDEST`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        let mut warnings = Vec::new();
        let (level, level_warning) = level_from_lookup(&get);
        warnings.extend(level_warning);
        // An empty destination variable is as good as unset: the default (stdout), or the other variable.
        let nonempty = |name: &str| get(name).filter(|v| !v.is_empty());
        let (_, dest_value) = first_set(&nonempty, "FLASHLOG_DEST", "FLASHINFER_LOGDEST");
        let dest = match dest_value.as_deref() {
            None | Some("") | Some("stdout") => Dest::Stdout,
            Some("stderr") => Dest::Stderr,
            Some(path) => Dest::File(path.to_string()),
        };
        let shared_by_ranks = LauncherIds::from_lookup(&get).world_size.is_some_and(|n| n > 1)
            && !matches!(&dest, Dest::File(t) if names_each_process(t));
        let modules = match get("FLASHLOG_MODULES") {
            Some(globs) => ModuleFilter::Globs(GlobSet::parse(&globs)),
            None => ModuleFilter::PathContainsFlashinfer,
        };
        let kernels = GlobSet::parse(&get("FLASHLOG_KERNELS").unwrap_or_else(|| "*flashinfer*".to_string()));
        // Level-10 dumps (docs/dumps-and-replay.md).
        let (_, dump_dir) = first_set(&get, "FLASHLOG_DUMP_DIR", "FLASHINFER_DUMP_DIR");
        let dump_dir = dump_dir.unwrap_or_else(|| "flashinfer_dumps".to_string());
        let mut number = |name: &str, default: f64| match get(name) {
            None => default,
            Some(v) => v.trim().parse::<f64>().ok().filter(|x| *x >= 0.0).unwrap_or_else(|| {
                warnings.push(format!("flashlog: {name}='{v}' is not a number; using {default}"));
                default
            }),
        };
        let dump_max_bytes = (number("FLASHINFER_DUMP_MAX_SIZE_GB", 20.0) * (1u64 << 30) as f64) as u64;
        let dump_max_count = number("FLASHINFER_DUMP_MAX_COUNT", 1000.0) as u64;
        let ring_bytes = ring_from_lookup(&get, &dest, &mut warnings);
        let graph_stats = parse_switch(&get, "FLASHLOG_GRAPH_STATS", false, "no statistics at graph replay", &mut warnings);
        let watch_nonfinite = match get("FLASHLOG_WATCH").as_deref().map(str::trim) {
            None | Some("") => false,
            Some("nonfinite") => true,
            Some(other) => {
                warnings.push(format!("flashlog: FLASHLOG_WATCH='{other}' is not 'nonfinite'; watch off"));
                false
            }
        };
        // Asked for below the level that does it: said once, so the user does not wait for records that never come.
        for (on, what) in [(graph_stats, "FLASHLOG_GRAPH_STATS=1"), (watch_nonfinite, "FLASHLOG_WATCH=nonfinite")] {
            if on && level > 0 && level < LEVEL_STATS {
                warnings.push(format!(
                    "flashlog: {what} needs level 5 or 10 (the level is {level}); off (set FLASHINFER_LOGLEVEL=5)"
                ));
            }
        }
        Config {
            level,
            ring_bytes,
            dump_dir,
            dump_max_bytes,
            dump_max_count,
            dest,
            modules,
            kernels,
            dump_include: GlobSet::parse(&get("FLASHINFER_DUMP_INCLUDE").unwrap_or_default()),
            dump_exclude: GlobSet::parse(&get("FLASHINFER_DUMP_EXCLUDE").unwrap_or_default()),
            inject_panic: GlobSet::parse(&get("FLASHLOG_TEST_PANIC").unwrap_or_default()),
            graph_stats,
            graph_stats_mb: parse_count(&get, "FLASHLOG_GRAPH_STATS_MB", 0, DEFAULT_GRAPH_STATS_MB, &mut warnings),
            graph_stats_every: parse_count(&get, "FLASHLOG_GRAPH_STATS_EVERY", 1, 1, &mut warnings) as u64,
            watch_nonfinite,
            sync: parse_switch(&get, "FLASHLOG_SYNC", false, "no synchronisation around calls", &mut warnings),
            graph_markers: parse_switch(&get, "FLASHLOG_GRAPH_MARKERS", false, "no graph markers", &mut warnings),
            correlate: parse_switch(&get, "FLASHLOG_CORRELATE", false, "correlation lines only with several threads", &mut warnings),
            shared_by_ranks,
            gpu_stats: parse_switch(
                &get,
                "FLASHLOG_GPU_STATS",
                true,
                "the GPU statistics kernel stays on",
                &mut warnings,
            ),
            gpu_stats_max_gb: get("FLASHLOG_GPU_STATS_MAX_GB")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .unwrap_or(DEFAULT_GPU_STATS_MAX_GB),
            stats_max_mb: get("FLASHLOG_STATS_MAX_MB")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(DEFAULT_STATS_MAX_MB),
            warnings,
        }
    }

    /// Whether the call `name` (`<module>.<export>`) gets inputs and outputs records at level 3 and above.
    /// Patterns match the full name or the export alone (FlashInfer's own patterns name Python functions such
    /// as `rmsnorm`, which is the export name here).
    pub fn dump_allows(&self, name: &str) -> bool {
        let export = name.rsplit_once('.').map_or(name, |(_, e)| e);
        let hit = |set: &GlobSet| set.matches(name) || set.matches(export);
        (self.dump_include.is_empty() || hit(&self.dump_include)) && !hit(&self.dump_exclude)
    }
}

/// The level the variables name (`FLASHLOG_LEVEL`, else `FLASHINFER_LOGLEVEL`; unset: 0), and the warning
/// for a value that is not an integer (then 0). The one rule for the configuration and for the constructor,
/// which needs the level before the configuration is built.
pub fn level_from_lookup(get: &impl Fn(&str) -> Option<String>) -> (u8, Option<String>) {
    let (var, value) = first_set(get, "FLASHLOG_LEVEL", "FLASHINFER_LOGLEVEL");
    match value {
        None => (0, None),
        Some(v) => match parse_level(&v) {
            Some(level) => (level, None),
            None => (0, Some(format!("flashlog: {var}='{v}' is not an integer; logging disabled"))),
        },
    }
}

/// `FLASHLOG_RING_MB` read against the destination: the ring's data size, or a warning (not a positive number;
/// a destination that is not a file, where logging goes on as without it).
fn ring_from_lookup(get: &impl Fn(&str) -> Option<String>, dest: &Dest, warnings: &mut Vec<String>) -> Option<u64> {
    let value = get("FLASHLOG_RING_MB").filter(|v| !v.trim().is_empty())?;
    let Some(bytes) = crate::ring::format::data_bytes_for_mb(&value) else {
        warnings.push(format!("flashlog: FLASHLOG_RING_MB='{value}' is not a positive number of MiB up to 1048576 (1 TiB); no ring"));
        return None;
    };
    let name = match dest {
        Dest::File(_) => return Some(bytes),
        Dest::Stdout => "stdout",
        Dest::Stderr => "stderr",
    };
    warnings.push(format!(
        "flashlog: FLASHLOG_RING_MB needs a file destination (FLASHINFER_LOGDEST is {name}); logging goes on to {name}"
    ));
    None
}

/// The first of two variables that is set: (its name, its value). When neither is set, the second name.
fn first_set(
    get: &impl Fn(&str) -> Option<String>,
    first: &'static str,
    second: &'static str,
) -> (&'static str, Option<String>) {
    match get(first) {
        Some(v) => (first, Some(v)),
        None => (second, get(second)),
    }
}

/// A variable that is on (`1`) or off (`0`), `default` when empty or unset; anything else is a warning (`then`
/// says what happens instead) and the default.
fn parse_switch(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: bool,
    then: &str,
    warnings: &mut Vec<String>,
) -> bool {
    match get(name).as_deref().map(str::trim) {
        None | Some("") => default,
        Some("0") => false,
        Some("1") => true,
        Some(other) => {
            warnings.push(format!("flashlog: {name}='{other}' is not 0 or 1; {then}"));
            default
        }
    }
}

/// A non-negative integer variable of at least `min`; unset gives `default`, anything else a warning and
/// `default`.
fn parse_count(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    min: usize,
    default: usize,
    warnings: &mut Vec<String>,
) -> usize {
    match get(name) {
        None => default,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= min && n <= 1 << 20 => n,
            _ => {
                warnings.push(format!("flashlog: {name}='{v}' is not an integer >= {min}; using {default}"));
                default
            }
        },
    }
}

/// Parses a level as Python's `int()` parses a string: surrounding whitespace, an optional sign, ASCII
/// digits with single `_` between digits (`1_0` is 10; `_1`, `1_`, `1__0` are not integers). Negative values
/// mean 0, values above [`MAX_LEVEL`] mean [`MAX_LEVEL`] (however many digits they have).
pub fn parse_level(text: &str) -> Option<u8> {
    // Python's whitespace: Unicode White_Space plus the four ASCII separators 0x1c-0x1f.
    let t = text.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c));
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let bytes = digits.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_digit() || !bytes[bytes.len() - 1].is_ascii_digit() {
        return None;
    }
    let mut value: u64 = 0;
    let mut previous_underscore = false;
    for &b in bytes {
        match b {
            b'0'..=b'9' => {
                value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
                previous_underscore = false;
            }
            b'_' if !previous_underscore => previous_underscore = true,
            _ => return None,
        }
    }
    Some(if negative { 0 } else { value.min(u64::from(MAX_LEVEL)) as u8 })
}

/// What launchers tell a process about its place in a multi-process run, from their variables: torchrun
/// and accelerate (`RANK`, `LOCAL_RANK`, `WORLD_SIZE`), then Open MPI (`OMPI_COMM_WORLD_*`), then PMI
/// (`PMI_RANK`, `PMI_SIZE`), then Slurm (`SLURM_PROCID`, `SLURM_LOCALID`, `SLURM_NTASKS`). Each field is
/// the first of its variables that holds a non-negative integer; `None` when none does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LauncherIds {
    /// The global rank.
    pub rank: Option<u64>,
    /// The rank on this node.
    pub local_rank: Option<u64>,
    /// The number of ranks.
    pub world_size: Option<u64>,
}

const RANK_VARS: [&str; 4] = ["RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"];
const LOCAL_RANK_VARS: [&str; 3] = ["LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"];
const WORLD_SIZE_VARS: [&str; 4] = ["WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"];

impl LauncherIds {
    /// Reads the launcher variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> LauncherIds {
        let first = |names: &[&str]| names.iter().find_map(|n| get(n).and_then(|v| v.trim().parse::<u64>().ok()));
        LauncherIds {
            rank: first(&RANK_VARS),
            local_rank: first(&LOCAL_RANK_VARS),
            world_size: first(&WORLD_SIZE_VARS),
        }
    }
}

/// Everything a destination or dump-folder template can name about the process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessIds {
    /// The process id (`%i`, and `%r` / `%l` when the launcher set no rank).
    pub pid: i32,
    /// The launcher's ranks.
    pub launcher: LauncherIds,
}

/// Whether a destination template names a file of its own for each process of a job (`%i` or `%r` in it).
pub fn names_each_process(template: &str) -> bool {
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        // `%%` is a `%` (the next character is consumed with it); any other `%x` is looked at.
        if c == '%' && matches!(chars.next(), Some('i') | Some('r')) {
            return true;
        }
    }
    false
}

/// Expands a destination (or dump folder) template: `%i` becomes the process id, `%r` the rank, `%l` the
/// local rank (each the process id when no launcher variable names it, so names stay unique), `%%` a single
/// `%`. Any other `%` is kept as written.
pub fn expand_path_template(template: &str, ids: &ProcessIds) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut chars = template.chars();
    let pid = ids.pid as i64;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let rest = chars.clone().next();
        let value = match rest {
            Some('i') => Some(pid),
            Some('r') => Some(ids.launcher.rank.map_or(pid, |r| r as i64)),
            Some('l') => Some(ids.launcher.local_rank.map_or(pid, |r| r as i64)),
            Some('%') => {
                chars.next();
                out.push('%');
                continue;
            }
            _ => None,
        };
        match value {
            Some(v) => {
                chars.next();
                out.push_str(&v.to_string());
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn levels() {
        assert_eq!(cfg(&[]).level, 0);
        assert_eq!(cfg(&[("FLASHINFER_LOGLEVEL", "3")]).level, 3);
        assert_eq!(cfg(&[("FLASHINFER_LOGLEVEL", " 1 ")]).level, 1);
        assert_eq!(cfg(&[("FLASHINFER_LOGLEVEL", "-1")]).level, 0);
        assert_eq!(cfg(&[("FLASHINFER_LOGLEVEL", "99")]).level, MAX_LEVEL);
        assert_eq!(cfg(&[("FLASHINFER_LOGLEVEL", "7")]).level, 7);
        assert!(cfg(&[("FLASHINFER_LOGLEVEL", "-1")]).warnings.is_empty());
    }

    #[test]
    fn invalid_levels_warn_and_disable() {
        let c = cfg(&[("FLASHINFER_LOGLEVEL", "abc")]);
        assert_eq!(c.level, 0);
        assert_eq!(c.warnings, ["flashlog: FLASHINFER_LOGLEVEL='abc' is not an integer; logging disabled"]);
        let c = cfg(&[("FLASHINFER_LOGLEVEL", "")]);
        assert_eq!(c.warnings, ["flashlog: FLASHINFER_LOGLEVEL='' is not an integer; logging disabled"]);
        let c = cfg(&[("FLASHLOG_LEVEL", "x"), ("FLASHINFER_LOGLEVEL", "3")]);
        assert_eq!(c.level, 0);
        assert_eq!(c.warnings, ["flashlog: FLASHLOG_LEVEL='x' is not an integer; logging disabled"]);
    }

    #[test]
    fn shim_variables_take_precedence() {
        let c = cfg(&[
            ("FLASHLOG_LEVEL", "5"),
            ("FLASHINFER_LOGLEVEL", "1"),
            ("FLASHLOG_DEST", "stderr"),
            ("FLASHINFER_LOGDEST", "x.log"),
        ]);
        assert_eq!(c.level, 5);
        assert_eq!(c.dest, Dest::Stderr);
        assert_eq!(cfg(&[("FLASHLOG_LEVEL", "0"), ("FLASHINFER_LOGLEVEL", "3")]).level, 0);
    }

    #[test]
    fn destinations() {
        assert_eq!(cfg(&[]).dest, Dest::Stdout);
        assert_eq!(cfg(&[("FLASHINFER_LOGDEST", "stdout")]).dest, Dest::Stdout);
        assert_eq!(cfg(&[("FLASHINFER_LOGDEST", "Stderr")]).dest, Dest::File("Stderr".into()));
        assert_eq!(cfg(&[("FLASHINFER_LOGDEST", "")]).dest, Dest::Stdout, "empty means the default");
        assert_eq!(cfg(&[("FLASHLOG_DEST", ""), ("FLASHINFER_LOGDEST", "x.log")]).dest, Dest::File("x.log".into()));
        assert_eq!(cfg(&[("FLASHLOG_DEST", ""), ("FLASHINFER_LOGDEST", "")]).dest, Dest::Stdout);
    }

    #[test]
    fn levels_parse_like_python_int() {
        let table: &[(&str, Option<u8>)] = &[
            ("0", Some(0)),
            ("5", Some(5)),
            ("10", Some(10)),
            ("11", Some(10)),
            ("99999999999999999999999999", Some(10)),
            ("  3\t\n", Some(3)),
            ("\u{3000}4\x1f", Some(4)),
            ("+3", Some(3)),
            ("-3", Some(0)),
            ("-0", Some(0)),
            ("007", Some(7)),
            ("1_0", Some(10)),
            ("0_3", Some(3)),
            ("+1_0", Some(10)),
            ("_1", None),
            ("1_", None),
            ("1__0", None),
            ("+_1", None),
            ("", None),
            ("   ", None),
            ("+", None),
            ("-", None),
            ("+-1", None),
            ("1.5", None),
            ("3x", None),
            ("abc", None),
            ("0x10", None),
            ("1 0", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_level(text), *want, "parse_level({text:?})");
        }
    }

    #[test]
    fn launcher_ids_in_priority_order() {
        let ids = |vars: &[(&str, &str)]| {
            let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            LauncherIds::from_lookup(|k| map.get(k).cloned())
        };
        assert_eq!(ids(&[]), LauncherIds::default());
        let torchrun = ids(&[("RANK", "3"), ("LOCAL_RANK", "1"), ("WORLD_SIZE", "8"), ("SLURM_PROCID", "0")]);
        assert_eq!(torchrun, LauncherIds { rank: Some(3), local_rank: Some(1), world_size: Some(8) });
        let ompi =
            ids(&[("OMPI_COMM_WORLD_RANK", "5"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "6")]);
        assert_eq!(ompi, LauncherIds { rank: Some(5), local_rank: Some(1), world_size: Some(6) });
        let pmi = ids(&[("PMI_RANK", "2"), ("PMI_SIZE", "4")]);
        assert_eq!(pmi, LauncherIds { rank: Some(2), local_rank: None, world_size: Some(4) });
        let slurm = ids(&[("SLURM_PROCID", "7"), ("SLURM_LOCALID", "3"), ("SLURM_NTASKS", "16")]);
        assert_eq!(slurm, LauncherIds { rank: Some(7), local_rank: Some(3), world_size: Some(16) });
        let bad = ids(&[("RANK", "x"), ("SLURM_PROCID", "4")]);
        assert_eq!(bad.rank, Some(4), "a value that is not an integer is skipped");
    }

    #[test]
    fn path_templates() {
        let none = ProcessIds { pid: 42, launcher: LauncherIds::default() };
        let ranked =
            ProcessIds { pid: 42, launcher: LauncherIds { rank: Some(3), local_rank: Some(1), world_size: Some(8) } };
        assert_eq!(expand_path_template("log_%i_%i.txt", &none), "log_42_42.txt");
        assert_eq!(expand_path_template("plain.txt", &none), "plain.txt");
        assert_eq!(expand_path_template("r_%r_%l.log", &none), "r_42_42.log");
        assert_eq!(expand_path_template("r_%r_%l_%i.log", &ranked), "r_3_1_42.log");
        assert_eq!(expand_path_template("100%%_%r%", &ranked), "100%_3%");
        assert_eq!(expand_path_template("%x%%i%", &ranked), "%x%i%");
        assert_eq!(expand_path_template("é/%r", &ranked), "é/3");
    }

    #[test]
    fn module_and_kernel_filters() {
        let c = cfg(&[]);
        assert!(c.modules.matches("/x/flashinfer/norm.so"));
        assert!(!c.modules.matches("/x/other/norm.so"));
        assert!(c.kernels.matches("flashinfer::Kernel<1>"));
        let c = cfg(&[("FLASHLOG_MODULES", "*"), ("FLASHLOG_KERNELS", "")]);
        assert!(c.modules.matches("/x/other/norm.so"));
        assert!(!c.kernels.matches("flashinfer::Kernel<1>"));
    }

    #[test]
    fn graph_stats_and_watch() {
        let c = cfg(&[]);
        assert!(!c.graph_stats && !c.watch_nonfinite);
        assert_eq!((c.graph_stats_mb, c.graph_stats_every), (64, 1));
        let c = cfg(&[
            ("FLASHLOG_GRAPH_STATS", "1"),
            ("FLASHLOG_GRAPH_STATS_MB", "0"),
            ("FLASHLOG_GRAPH_STATS_EVERY", "3"),
            ("FLASHLOG_WATCH", "nonfinite"),
        ]);
        assert!(c.graph_stats && c.watch_nonfinite);
        assert_eq!((c.graph_stats_mb, c.graph_stats_every), (0, 3));
        assert!(c.warnings.is_empty());
        let c = cfg(&[("FLASHLOG_GRAPH_STATS_EVERY", "0"), ("FLASHLOG_WATCH", "nan"), ("FLASHLOG_GRAPH_STATS", "yes")]);
        assert!(!c.graph_stats && !c.watch_nonfinite);
        assert_eq!(c.graph_stats_every, 1);
        assert_eq!(
            c.warnings,
            [
                "flashlog: FLASHLOG_GRAPH_STATS='yes' is not 0 or 1; no statistics at graph replay",
                "flashlog: FLASHLOG_WATCH='nan' is not 'nonfinite'; watch off",
                "flashlog: FLASHLOG_GRAPH_STATS_EVERY='0' is not an integer >= 1; using 1"
            ]
        );
    }

    #[test]
    fn switches_are_0_or_1() {
        let c = cfg(&[("FLASHLOG_SYNC", "1"), ("FLASHLOG_GRAPH_MARKERS", " 1"), ("FLASHLOG_GPU_STATS", "0")]);
        assert!(c.sync && c.graph_markers && !c.gpu_stats && c.warnings.is_empty());
        assert!(cfg(&[]).gpu_stats && cfg(&[("FLASHLOG_GPU_STATS", "")]).gpu_stats);
        let c = cfg(&[("FLASHLOG_SYNC", "yes"), ("FLASHLOG_GRAPH_MARKERS", "true"), ("FLASHLOG_GPU_STATS", "off")]);
        assert!(!c.sync && !c.graph_markers && c.gpu_stats);
        assert_eq!(
            c.warnings,
            [
                "flashlog: FLASHLOG_SYNC='yes' is not 0 or 1; no synchronisation around calls",
                "flashlog: FLASHLOG_GRAPH_MARKERS='true' is not 0 or 1; no graph markers",
                "flashlog: FLASHLOG_GPU_STATS='off' is not 0 or 1; the GPU statistics kernel stays on"
            ]
        );
    }

    #[test]
    fn a_destination_shared_by_the_ranks_of_a_job_correlates() {
        let two = [("WORLD_SIZE", "2"), ("RANK", "1")];
        let with = |dest: &'static str, ids: &[(&'static str, &'static str)]| {
            let mut vars = ids.to_vec();
            vars.push(("FLASHINFER_LOGDEST", dest));
            cfg(&vars).shared_by_ranks
        };
        assert!(with("run.log", &two) && with("stdout", &two) && with("logs/%l.log", &two) && with("100%%r", &two));
        assert!(!with("rank_%r.log", &two) && !with("logs/%i/x.log", &two));
        assert!(!with("run.log", &[("WORLD_SIZE", "1"), ("RANK", "0")]) && !with("run.log", &[]));
        assert!(with("run.log", &[("OMPI_COMM_WORLD_SIZE", "4")]));
        assert!(names_each_process("a%%%r") && !names_each_process("a%%r%") && !names_each_process("%x%l"));
    }

    #[test]
    fn correlate_is_0_or_1() {
        assert!(!cfg(&[]).correlate && !cfg(&[("FLASHLOG_CORRELATE", "0")]).correlate);
        let c = cfg(&[("FLASHLOG_CORRELATE", " 1 ")]);
        assert!(c.correlate && c.warnings.is_empty());
        let c = cfg(&[("FLASHLOG_CORRELATE", "yes")]);
        assert!(!c.correlate);
        assert_eq!(
            c.warnings,
            ["flashlog: FLASHLOG_CORRELATE='yes' is not 0 or 1; correlation lines only with several threads"]
        );
    }

    #[test]
    fn ring_needs_a_file() {
        assert_eq!(cfg(&[("FLASHLOG_RING_MB", "4"), ("FLASHLOG_DEST", "r_%i.ring")]).ring_bytes, Some(4 << 20));
        assert_eq!(cfg(&[("FLASHLOG_DEST", "r_%i.ring")]).ring_bytes, None);
        let c = cfg(&[("FLASHLOG_RING_MB", "4")]);
        assert_eq!(c.ring_bytes, None);
        assert_eq!(
            c.warnings,
            ["flashlog: FLASHLOG_RING_MB needs a file destination (FLASHINFER_LOGDEST is stdout); logging goes on to stdout"]
        );
        let c = cfg(&[("FLASHLOG_RING_MB", "-2"), ("FLASHLOG_DEST", "x")]);
        assert_eq!(c.ring_bytes, None);
        assert_eq!(c.warnings, ["flashlog: FLASHLOG_RING_MB='-2' is not a positive number of MiB up to 1048576 (1 TiB); no ring"]);
    }

    #[test]
    fn watch_and_graph_stats_below_level_5_say_so() {
        let c = cfg(&[("FLASHINFER_LOGLEVEL", "3"), ("FLASHLOG_WATCH", "nonfinite"), ("FLASHLOG_GRAPH_STATS", "1")]);
        assert_eq!(
            c.warnings,
            [
                "flashlog: FLASHLOG_GRAPH_STATS=1 needs level 5 or 10 (the level is 3); off (set FLASHINFER_LOGLEVEL=5)",
                "flashlog: FLASHLOG_WATCH=nonfinite needs level 5 or 10 (the level is 3); off (set FLASHINFER_LOGLEVEL=5)"
            ]
        );
        assert!(cfg(&[("FLASHLOG_WATCH", "nonfinite")]).warnings.is_empty(), "level 0: nothing at all");
        assert!(cfg(&[("FLASHLOG_LEVEL", "5"), ("FLASHLOG_WATCH", "nonfinite")]).warnings.is_empty());
    }

    #[test]
    fn stats_cap() {
        assert_eq!(cfg(&[]).stats_max_mb, DEFAULT_STATS_MAX_MB);
        assert_eq!(cfg(&[("FLASHLOG_STATS_MAX_MB", " 10 ")]).stats_max_mb, 10);
        assert_eq!(cfg(&[("FLASHLOG_STATS_MAX_MB", "x")]).stats_max_mb, DEFAULT_STATS_MAX_MB);
    }

    #[test]
    fn dump_variables() {
        let c = cfg(&[]);
        assert_eq!((c.dump_dir.as_str(), c.dump_max_bytes, c.dump_max_count), ("flashinfer_dumps", 20 << 30, 1000));
        let c = cfg(&[
            ("FLASHLOG_DUMP_DIR", "mine_%i"),
            ("FLASHINFER_DUMP_DIR", "theirs"),
            ("FLASHINFER_DUMP_MAX_SIZE_GB", "0.5"),
            ("FLASHINFER_DUMP_MAX_COUNT", "3"),
        ]);
        assert_eq!((c.dump_dir.as_str(), c.dump_max_bytes, c.dump_max_count), ("mine_%i", 1 << 29, 3));
        assert_eq!(cfg(&[("FLASHINFER_DUMP_DIR", "theirs")]).dump_dir, "theirs");
        let c = cfg(&[("FLASHINFER_DUMP_MAX_COUNT", "many")]);
        assert_eq!(c.dump_max_count, 1000);
        assert_eq!(c.warnings, ["flashlog: FLASHINFER_DUMP_MAX_COUNT='many' is not a number; using 1000"]);
    }

    #[test]
    fn dump_filters() {
        let c = cfg(&[("FLASHINFER_DUMP_INCLUDE", "rmsnorm,*decode*"), ("FLASHINFER_DUMP_EXCLUDE", "*.plan")]);
        assert!(c.dump_allows("norm.rmsnorm"));
        assert!(c.dump_allows("batch_decode_x.run"));
        assert!(!c.dump_allows("batch_decode_x.plan"));
        assert!(!c.dump_allows("page.append_paged_kv_cache"));
        assert!(cfg(&[]).dump_allows("anything.at_all"));
    }
}
