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
}

/// The level at and above which calls get inputs and outputs records.
pub const LEVEL_DETAILED: u8 = 3;
/// The level at and above which tensor statistics are taken.
pub const LEVEL_STATS: u8 = 5;
/// The level at and above which every tensor of a call is dumped to disk (level 10, `DUMPS.md`).
pub const LEVEL_DUMP: u8 = 10;

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
        // Level-10 dumps (DUMPS.md).
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
        Config {
            level,
            dump_dir,
            dump_max_bytes,
            dump_max_count,
            dest,
            modules,
            kernels,
            dump_include: GlobSet::parse(&get("FLASHINFER_DUMP_INCLUDE").unwrap_or_default()),
            dump_exclude: GlobSet::parse(&get("FLASHINFER_DUMP_EXCLUDE").unwrap_or_default()),
            inject_panic: GlobSet::parse(&get("FLASHLOG_TEST_PANIC").unwrap_or_default()),
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

/// Parses a level as Python's `int()` would (surrounding spaces allowed); negative values mean 0 and values
/// above 10 mean 10.
pub fn parse_level(text: &str) -> Option<u8> {
    let v: i64 = text.trim().parse().ok()?;
    Some(v.clamp(0, LEVEL_DUMP as i64) as u8)
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
        assert_eq!(cfg(&[("FLASHINFER_LOGLEVEL", "99")]).level, 10);
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
