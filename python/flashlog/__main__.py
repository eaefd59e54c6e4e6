"""``python -m flashlog ARGS...``: runs the ``flashlog`` launcher that this package's wheel installed, with
the same arguments, replacing this process (``os.execv``), so exit codes and signals are the command's own.
``python -m flashlog replay DIR ...`` runs the replay here, in Python (the launcher's ``replay`` runs this
module, so the two never call each other)."""

import os
import shutil
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

LAUNCHER = "flashlog"


def _from_record():
    """The launcher listed in the installed distribution's RECORD: exact for venvs, --user, --prefix and
    --target installs alike."""
    try:
        dist = metadata.distribution("flashlog")
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.name == LAUNCHER and f.parent.name in ("bin", "scripts", "Scripts"):
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    return None


def launcher_path():
    """The absolute path of the wheel's ``flashlog`` binary; None when it cannot be found."""
    # `pip install --target DIR` puts the launcher in DIR/bin (and leaves RECORD pointing elsewhere).
    beside = Path(__file__).resolve().parent.parent / "bin" / LAUNCHER
    found = beside if beside.is_file() else _from_record()
    if found:
        return str(found.resolve())
    for scheme in (None, f"{os.name}_user"):
        try:
            scripts = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        except KeyError:
            continue
        candidate = Path(scripts) / LAUNCHER
        if candidate.is_file():
            return str(candidate)
    return shutil.which(LAUNCHER)


def main():
    """Runs a replay, or execs the launcher with this process's arguments; returns 1 (with one line on
    stderr) when the launcher cannot be found or run."""
    if sys.argv[1:2] == ["replay"]:
        from .replay import main as replay_main

        return replay_main(sys.argv[1:])
    path = launcher_path()
    if path is None:
        print("flashlog: the flashlog launcher is not installed beside this package", file=sys.stderr)
        return 1
    try:
        os.execv(path, [path, *sys.argv[1:]])
    except OSError as e:
        print(f"flashlog: cannot run {path}: {e}", file=sys.stderr)
        return 1
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
