//! The `flashlog replay` command for a call that failed or did not return, when a level-10 dump of it is on
//! disk: the dump folder's `session.jsonl` (one JSON object a line, written by the library: `function_name`,
//! `process_id`, `dump_dir`, `execution_status`) names the call's folder.

use super::{Place, Summary};
use std::path::{Path, PathBuf};

/// Lines of a `session.jsonl` read at most (a dump folder holds at most `FLASHINFER_DUMP_MAX_COUNT` calls).
const MAX_SESSION_LINES: usize = 1 << 20;
/// Entries of a folder looked at for dump folders.
const MAX_FOLDERS_LOOKED_AT: usize = 4096;

impl Summary {
    /// `flashlog replay DIR/CALL` for the call `name` (or `name: error`) at `p`, when its dump is found: in the
    /// folder `FLASHLOG_DUMP_DIR` or `FLASHINFER_DUMP_DIR` names, or a dump folder beside the log or here.
    pub fn replay_hint(&self, name: &str, p: &Place) -> Option<String> {
        let call = name.split(": ").next()?;
        let pid = self.files[p.file].runs.get(p.run)?.pid?;
        let failed = name.contains(": ");
        self.dump_folders(p.file, pid).into_iter().find_map(|dir| {
            let folder = dumped_call(&dir, pid, call, failed)?;
            Some(format!("flashlog replay {}", shell_word(&folder.to_string_lossy())))
        })
    }

    /// Where the dumps of process `pid` may be, existing folders only: the folders the dump variables name
    /// here, and every folder beside the log or here that holds a `session.jsonl` (`--dump-dir` chose it).
    fn dump_folders(&self, file: usize, pid: u32) -> Vec<PathBuf> {
        let names: Vec<String> = ["FLASHLOG_DUMP_DIR", "FLASHINFER_DUMP_DIR"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .map(|d| d.replace("%i", &pid.to_string()))
            .collect();
        let log_dir = Path::new(&self.files[file].path).parent().map(Path::to_path_buf).unwrap_or_default();
        let mut candidates: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
        for base in [log_dir, PathBuf::new()] {
            let listed = std::fs::read_dir(if base.as_os_str().is_empty() { Path::new(".") } else { &base });
            let mut subfolders: Vec<PathBuf> = listed
                .into_iter()
                .flatten()
                .take(MAX_FOLDERS_LOOKED_AT)
                .filter_map(|e| e.ok())
                .map(|e| base.join(e.file_name()))
                .collect();
            subfolders.sort();
            candidates.extend(subfolders);
        }
        let mut folders: Vec<PathBuf> = Vec::new();
        for dir in candidates {
            if dir.join("session.jsonl").is_file() && !folders.contains(&dir) {
                folders.push(dir);
            }
        }
        folders
    }
}

/// The folder of the last call `call` of process `pid` in the dump folder `dir` that failed (`failed`) or
/// whose outputs were never saved (it did not return).
fn dumped_call(dir: &Path, pid: u32, call: &str, failed: bool) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dir.join("session.jsonl")).ok()?;
    let name_field = format!("\"function_name\": {}", json_string(call));
    let pid_field = format!("\"process_id\": {pid},");
    let mut found: Option<(String, bool)> = None;
    for line in text.lines().take(MAX_SESSION_LINES) {
        if !line.contains(&name_field) || !line.contains(&pid_field) {
            continue;
        }
        let Some(folder) = field(line, "dump_dir") else { continue };
        let status = field(line, "execution_status").unwrap_or_default();
        let base = folder.rsplit('/').next().unwrap_or(&folder).to_string();
        match (failed, status.as_str()) {
            (true, "failed") => found = Some((base, true)),
            (false, "inputs_saved") => found = Some((base, true)),
            // The same call completed: it is not the one that did not return.
            (false, _) if found.as_ref().is_some_and(|(b, _)| *b == base) => found = None,
            _ => {}
        }
    }
    let (base, _) = found?;
    let path = dir.join(base);
    path.is_dir().then_some(path)
}

/// The string value of `"key": "..."` in a JSON line written by the library (no escapes in these fields).
fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\": \""))? + key.len() + 5;
    let end = line[start..].find('"')? + start;
    Some(line[start..end].to_string())
}

/// `s` as a JSON string literal (the library escapes `"` and `\`).
fn json_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A path as one shell word (quoted when it has anything a shell would split or expand).
fn shell_word(s: &str) -> String {
    if s.bytes().all(|c| c.is_ascii_alphanumeric() || b"/._-+:=,@%".contains(&c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_lines() {
        let dir = std::env::temp_dir().join(format!("flashlog-hints-{}", std::process::id()));
        let call = "20261202_040516_959_pid7_dumpops.scale_call0002";
        std::fs::create_dir_all(dir.join(call)).unwrap();
        let line = |folder: &str, status: &str| {
            format!("{{\"function_name\": \"dumpops.scale\", \"process_id\": 7, \"dump_dir\": \"d/{folder}\", \"execution_status\": \"{status}\"}}\n")
        };
        let first = "20261202_040516_900_pid7_dumpops.scale_call0001";
        let text = line(first, "inputs_saved") + &line(first, "completed") + &line(call, "inputs_saved");
        std::fs::write(dir.join("session.jsonl"), text).unwrap();
        assert_eq!(dumped_call(&dir, 7, "dumpops.scale", false), Some(dir.join(call)));
        assert_eq!(dumped_call(&dir, 8, "dumpops.scale", false), None);
        assert_eq!(dumped_call(&dir, 7, "dumpops.scale", true), None);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(shell_word("a b/c"), "'a b/c'");
        assert_eq!(shell_word("dumps/x_call0001"), "dumps/x_call0001");
    }
}
