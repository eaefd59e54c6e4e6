"""flashlog's Python side: where the shim library is, and `python -m flashlog replay DIR` to run calls dumped
at level 10 again (see `replay.py`)."""

import os
from pathlib import Path

__all__ = ["library_path"]


def library_path():
    """The path of libflashlog.so: $FLASHLOG_LIB, else next to this package in an installed layout
    (<prefix>/lib/libflashlog.so beside <prefix>/lib/python/flashlog), else the source tree's release build."""
    env = os.environ.get("FLASHLOG_LIB")
    if env:
        return env
    here = Path(__file__).resolve().parent
    for candidate in (here / "libflashlog.so", here.parent.parent / "libflashlog.so",
                      here.parent.parent / "target/release/libflashlog.so"):
        if candidate.exists():
            return str(candidate)
    return str(here.parent.parent / "target/release/libflashlog.so")
