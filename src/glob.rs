//! Shell-style glob matching (`*`, `?`, `[...]`), as Python's `fnmatch.fnmatchcase`, for
//! `FLASHLOG_MODULES`, `FLASHLOG_KERNELS` and `FLASHINFER_DUMP_INCLUDE` / `_EXCLUDE`.

/// A comma-separated list of glob patterns; a name matches the set when it matches any pattern.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobSet {
    patterns: Vec<String>,
}

impl GlobSet {
    /// Parses a comma-separated list; empty items are dropped, spaces around items trimmed.
    pub fn parse(list: &str) -> GlobSet {
        GlobSet { patterns: list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect() }
    }

    /// Whether the set has no pattern (then it matches nothing).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `name` matches any pattern.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| glob_match(p.as_bytes(), name.as_bytes()))
    }
}

/// Whether `text` matches the glob `pattern` in full (iterative, with backtracking on the last `*`).
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = match_class(pattern, p, text[t]) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == b'[' {
                        // An unclosed `[` is a literal, as in fnmatch.
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[start] == b'['`; returns (matched, index after `]`),
/// or None when the class is not closed.
fn match_class(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pattern.len() {
        if pattern[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            matched |= pattern[i] <= c && c <= pattern[i + 2];
            i += 3;
        } else {
            matched |= pattern[i] == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        glob_match(p.as_bytes(), t.as_bytes())
    }

    #[test]
    fn like_fnmatchcase() {
        assert!(m("*", ""));
        assert!(m("*flashinfer*", "/home/u/.cache/flashinfer/0.6/norm/norm.so"));
        assert!(!m("*flashinfer*", "/usr/lib/libfoo.so"));
        assert!(m("norm.*", "norm.rmsnorm"));
        assert!(m("*decode*", "batch_decode_x.run"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[ab]x", "bx"));
        assert!(!m("[!ab]x", "bx"));
        assert!(m("[a-c]1", "b1"));
        assert!(m("[x", "[x"));
        assert!(m("*a*b*c", "xxaxxbxxc"));
        assert!(!m("*a*b*c", "xxaxxbxx"));
        assert!(!m("abc", "abcd"));
    }

    #[test]
    fn sets_split_on_commas() {
        let s = GlobSet::parse(" norm.* , *decode* ,,");
        assert!(s.matches("norm.rmsnorm"));
        assert!(s.matches("batch_decode.run"));
        assert!(!s.matches("page.append"));
        assert!(GlobSet::parse("").is_empty());
        assert!(!GlobSet::parse("").matches("x"));
    }
}
