//! Which file a dumped call's module is: its absolute path as the kernel mapped it (a module loaded by a
//! relative path, or by a path the host left after a `chdir`, is named by the file that is actually mapped),
//! with its size and modification time, so that replay loads that file and can tell another file under the
//! same name. Read at level 10 only, once per dumped call (a read of `/proc/self/maps` and one `stat`).

use super::json::{push_int, push_str};
use std::os::unix::fs::MetadataExt;

/// The file a module's code was mapped from.
#[derive(Debug, PartialEq, Eq)]
pub struct ModuleFile {
    /// Absolute path, as `/proc/self/maps` names it.
    pub path: String,
    /// Device and inode of the mapping.
    pub dev_ino: (u64, u64),
}

/// The mapping of `/proc/self/maps` text that contains `addr`: its file's path and (device, inode).
pub fn find_mapping(maps: &str, addr: usize) -> Option<ModuleFile> {
    for line in maps.lines() {
        let mut fields = line.splitn(6, ' ');
        let (range, _perms, _offset, dev, inode) =
            (fields.next()?, fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        let (lo, hi) = range.split_once('-')?;
        let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)) else {
            continue;
        };
        if addr < lo || addr >= hi {
            continue;
        }
        let path = fields.next().unwrap_or("").trim_start();
        if !path.starts_with('/') {
            return None;
        }
        let (major, minor) = dev.split_once(':')?;
        let (major, minor) = (u64::from_str_radix(major, 16).ok()?, u64::from_str_radix(minor, 16).ok()?);
        let inode = inode.parse().ok()?;
        return Some(ModuleFile {
            path: path.to_string(),
            dev_ino: (libc::makedev(major as u32, minor as u32), inode),
        });
    }
    None
}

/// `, "library_path": ..., "library_size": N, "library_mtime_ns": N` for the module whose code is at `code`;
/// only `library_path` and `"library_replaced": true` when the file at that path is no longer the one mapped
/// (rebuilt since it was loaded); nothing when the mapping cannot be found.
pub fn push_fields(o: &mut Vec<u8>, code: usize) {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let Some(file) = find_mapping(&maps, code) else {
        return;
    };
    let path = file.path.strip_suffix(" (deleted)").unwrap_or(&file.path);
    o.extend_from_slice(b", \"library_path\": ");
    push_str(o, path.as_bytes());
    match std::fs::metadata(path) {
        Ok(m) if (m.dev(), m.ino()) == file.dev_ino => {
            o.extend_from_slice(b", \"library_size\": ");
            push_int(o, m.size());
            o.extend_from_slice(b", \"library_mtime_ns\": ");
            push_int(o, m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128);
        }
        _ => o.extend_from_slice(b", \"library_replaced\": true"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
5581c000-5581d000 r--p 00000000 fd:01 1234 /usr/bin/python3.11
7f00a000-7f00b000 r-xp 00001000 103:02 98765                      /home/u/ML projects/x/norm.so
7f00c000-7f00d000 rw-p 00000000 00:00 0 
7f00e000-7f00f000 r-xp 00000000 08:01 55 /tmp/old.so (deleted)
";

    #[test]
    fn finds_the_mapping_with_spaces_in_its_path() {
        let f = find_mapping(MAPS, 0x7f00a800).unwrap();
        assert_eq!(f.path, "/home/u/ML projects/x/norm.so");
        assert_eq!(f.dev_ino, (libc::makedev(0x103, 2), 98765));
        assert_eq!(find_mapping(MAPS, 0x7f00b000), None);
        assert_eq!(find_mapping(MAPS, 0x7f00c100), None);
        assert_eq!(find_mapping(MAPS, 0x7f00e000).unwrap().path, "/tmp/old.so (deleted)");
    }

    #[test]
    fn this_test_binary_is_found_with_its_size() {
        let mut o = Vec::new();
        push_fields(&mut o, this_test_binary_is_found_with_its_size as *const () as usize);
        let text = String::from_utf8(o).unwrap();
        let exe = std::env::current_exe().unwrap();
        let size = std::fs::metadata(&exe).unwrap().size();
        assert!(text.starts_with(&format!(", \"library_path\": \"{}\"", exe.display())), "{text}");
        assert!(text.contains(&format!("\"library_size\": {size}, ")), "{text}");
    }
}
