"""Which module file a replay loads (the README's "Level 10: dumps and replay").

Line 1 of a call's `metadata.jsonl` names the module three ways: `library` (the path the host gave the loader,
maybe relative), `library_path` (the absolute path of the file that was mapped) and `library_size` /
`library_mtime_ns` (that file when the call was dumped). Replay loads `library_path` and refuses it when its size or
modification time changed: another build under the same name would be reported `identical` or `mismatch` for the
wrong reason. `--library-root DIR` replays with the module found in DIR instead (asked for, so not refused), and
every replay says which file it loaded.
"""

import os
import time
from pathlib import Path


class ModuleRefused(Exception):
    """The recorded module cannot be loaded as it is (missing, another file, no absolute path): the message
    says why and what to do."""


def _when(ns):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9)) + f".{int(ns % 1_000_000_000) // 1_000_000:03}"


def _identity(path):
    """(size, mtime_ns) of a file, or None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _differences(recorded, now):
    """What differs between the recorded (size, mtime_ns) and the file's, as text ('' when nothing does)."""
    out = []
    if recorded[0] != now[0]:
        out.append(f"{now[0]} bytes instead of {recorded[0]}")
    if recorded[1] != now[1]:
        out.append(f"modified {_when(now[1])} instead of {_when(recorded[1])}")
    return ", ".join(out)


def resolve(meta, library_root=None):
    """(path to load, text saying which file it is and how it compares with the recorded one) for line 1 of a
    call's metadata; raises ModuleRefused."""
    library = meta.get("library") or ""
    path = meta.get("library_path")
    size, mtime = meta.get("library_size"), meta.get("library_mtime_ns")
    recorded = (size, mtime) if isinstance(size, int) and isinstance(mtime, int) else None
    if library_root is not None:
        root = Path(library_root)
        names = []
        if library and not os.path.isabs(library):
            names.append(library)
        names.append(os.path.basename(path or library))
        for name in names:
            candidate = (root / name).resolve()
            if candidate.is_file():
                now = _identity(candidate)
                what = f"from --library-root; recorded {path or library}"
                if recorded is None or now is None:
                    return str(candidate), f"{what}, no size and time recorded to compare"
                diff = _differences(recorded, now)
                return str(candidate), f"{what}: {'differs: ' + diff if diff else 'same size and modification time'}"
        raise ModuleRefused(f"--library-root {library_root} holds no {' nor '.join(dict.fromkeys(names))}")
    if not path:
        if not os.path.isabs(library):
            raise ModuleRefused(f"the module was recorded by the relative path {library} without its absolute "
                                "path: --library-root DIR names the folder to load it from")
        path = library
    now = _identity(path)
    if now is None:
        raise ModuleRefused(f"{path} is missing: --library-root DIR replays with the module found in DIR")
    if meta.get("library_replaced"):
        raise ModuleRefused(f"{path} was replaced after the recorded process loaded it: --library-root DIR "
                            "replays with the module found in DIR")
    if recorded is None:
        return path, "the recorded path; no size and time recorded to compare"
    diff = _differences(recorded, now)
    if diff:
        raise ModuleRefused(f"{path} is not the recorded file ({diff}): --library-root DIR replays with the "
                            "module found in DIR")
    return path, f"the recorded file: {now[0]} bytes, modified {_when(now[1])}"
