//! The environment, turned into a [`Config`] once. Pure: it reads variables through a closure, so tests need
//! no process environment. The rules are those of `LOG-FORMAT.md` ("Levels", "Variables of the shim's own",
//! "Destination").

use crate::glob::GlobSet;

/// Where records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
    /// A file path template; every `%i` becomes the process id when the file is opened.
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
    /// 0 = off, 1-2 names, 3-4 inputs and outputs, 5 and above statistics.
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
    /// instead (0: no limit; default `stats::DEFAULT_STATS_MAX_MB`).
    pub stats_max_mb: u64,
    /// One line each for stderr, printed when the shim first has something to log about (so a process that
    /// never touches FlashInfer prints nothing).
    pub warnings: Vec<String>,
    // ---- statistics at CUDA graph replay and the NaN watch (level 5 and above; `LOG-FORMAT.md`)
    /// `FLASHLOG_GRAPH_STATS=1`: calls captured into a CUDA graph get their statistics at every replay.
    pub graph_stats: bool,
    /// `FLASHLOG_GRAPH_STATS_MB` (default 64): size of the page-locked pool the captured copies go to.
    pub graph_stats_mb: usize,
    /// `FLASHLOG_GRAPH_STATS_EVERY=K` (default 1): statistics on every K-th replay of a graph only.
    pub graph_stats_every: u64,
    /// `FLASHLOG_WATCH=nonfinite`: records only for calls and replays where a tensor holds a NaN or an infinity.
    pub watch_nonfinite: bool,
}

/// Default size of the graph statistics pool, in MiB.
pub const DEFAULT_GRAPH_STATS_MB: usize = 64;

/// The level at and above which calls get inputs and outputs records.
pub const LEVEL_DETAILED: u8 = 3;
/// The level at and above which tensor statistics are taken.
pub const LEVEL_STATS: u8 = 5;

impl Config {
    /// Builds the configuration from a variable lookup. `FLASHLOG_LEVEL` / `FLASHLOG_DEST` take precedence
    /// over `FLASHINFER_LOGLEVEL` / `FLASHINFER_LOGDEST`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        let mut warnings = Vec::new();
        let (level_var, level_value) = first_set(&get, "FLASHLOG_LEVEL", "FLASHINFER_LOGLEVEL");
        let level = match level_value {
            None => 0,
            Some(v) => parse_level(&v).unwrap_or_else(|| {
                warnings.push(format!("flashlog: {level_var}='{v}' is not an integer; logging disabled"));
                0
            }),
        };
        let (_, dest_value) = first_set(&get, "FLASHLOG_DEST", "FLASHINFER_LOGDEST");
        let dest = match dest_value.as_deref() {
            None | Some("stdout") => Dest::Stdout,
            Some("stderr") => Dest::Stderr,
            Some(path) => Dest::File(path.to_string()),
        };
        let modules = match get("FLASHLOG_MODULES") {
            Some(globs) => ModuleFilter::Globs(GlobSet::parse(&globs)),
            None => ModuleFilter::PathContainsFlashinfer,
        };
        let kernels = GlobSet::parse(&get("FLASHLOG_KERNELS").unwrap_or_else(|| "*flashinfer*".to_string()));
        Config {
            level,
            dest,
            modules,
            kernels,
            dump_include: GlobSet::parse(&get("FLASHINFER_DUMP_INCLUDE").unwrap_or_default()),
            dump_exclude: GlobSet::parse(&get("FLASHINFER_DUMP_EXCLUDE").unwrap_or_default()),
            inject_panic: GlobSet::parse(&get("FLASHLOG_TEST_PANIC").unwrap_or_default()),
            graph_stats: get("FLASHLOG_GRAPH_STATS").is_some_and(|v| v.trim() == "1"),
            graph_stats_mb: parse_count(&get, "FLASHLOG_GRAPH_STATS_MB", 0, DEFAULT_GRAPH_STATS_MB, &mut warnings),
            graph_stats_every: parse_count(&get, "FLASHLOG_GRAPH_STATS_EVERY", 1, 1, &mut warnings) as u64,
            watch_nonfinite: match get("FLASHLOG_WATCH").as_deref().map(str::trim) {
                None | Some("") => false,
                Some("nonfinite") => true,
                Some(other) => {
                    warnings.push(format!("flashlog: FLASHLOG_WATCH='{other}' is not 'nonfinite'; watch off"));
                    false
                }
            },
            stats_max_mb: get("FLASHLOG_STATS_MAX_MB")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(crate::stats::DEFAULT_STATS_MAX_MB),
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

/// Parses a level as Python's `int()` would (surrounding spaces allowed); negative values mean 0 and values
/// above 5 mean 5.
pub fn parse_level(text: &str) -> Option<u8> {
    let v: i64 = text.trim().parse().ok()?;
    Some(v.clamp(0, LEVEL_STATS as i64) as u8)
}

/// Replaces every `%i` in a destination template with `pid`.
pub fn expand_pid(template: &str, pid: i32) -> String {
    template.replace("%i", &pid.to_string())
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
        assert_eq!(cfg(&[("FLASHINFER_LOGLEVEL", "99")]).level, 5);
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
        assert_eq!(cfg(&[("FLASHINFER_LOGDEST", "")]).dest, Dest::File(String::new()));
        assert_eq!(expand_pid("log_%i_%i.txt", 42), "log_42_42.txt");
        assert_eq!(expand_pid("plain.txt", 42), "plain.txt");
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
                "flashlog: FLASHLOG_GRAPH_STATS_EVERY='0' is not an integer >= 1; using 1",
                "flashlog: FLASHLOG_WATCH='nan' is not 'nonfinite'; watch off"
            ]
        );
    }

    #[test]
    fn stats_cap() {
        assert_eq!(cfg(&[]).stats_max_mb, crate::stats::DEFAULT_STATS_MAX_MB);
        assert_eq!(cfg(&[("FLASHLOG_STATS_MAX_MB", " 10 ")]).stats_max_mb, 10);
        assert_eq!(cfg(&[("FLASHLOG_STATS_MAX_MB", "x")]).stats_max_mb, crate::stats::DEFAULT_STATS_MAX_MB);
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
