"""flashlog: log FlashInfer's compiled calls, CUDA graph captures and kernel launches of any process.

The wheel carries the ``flashlog`` launcher (on PATH after ``pip install``), the ``LD_PRELOAD`` library
``libflashlog.so`` and its C header. This package tells where the library is, so that

    LD_PRELOAD=$(python -c 'import flashlog; print(flashlog.library_path())') python my_script.py

works without the launcher; ``python -m flashlog ...`` does what the launcher does, and
``python -m flashlog replay DIR`` runs calls dumped at level 10 again (``replay.py``).
"""

import os
from importlib import metadata as _metadata
from pathlib import Path as _Path

__all__ = ["__version__", "library_path"]

try:
    __version__ = _metadata.version("flashlog")
except _metadata.PackageNotFoundError:  # imported from a source checkout, not installed
    __version__ = "0+unknown"

_HERE = _Path(__file__).resolve().parent


def library_path():
    """The absolute path of ``libflashlog.so`` as a string: ``$FLASHLOG_LIB`` when set (the launcher
    honours it the same way), else the copy inside this installed package (the wheel), else the one of
    ``make install``'s layout (``<prefix>/lib/libflashlog.so`` beside ``<prefix>/lib/flashlog/python``),
    else the source tree's release build. Raises FileNotFoundError when none exists."""
    override = os.environ.get("FLASHLOG_LIB")
    if override:
        path = _Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"libflashlog.so not found (FLASHLOG_LIB={override})")
        return str(path.resolve())
    candidates = (_HERE / "lib" / "libflashlog.so", _HERE.parent.parent / "libflashlog.so",
                  _HERE.parent.parent / "target" / "release" / "libflashlog.so")
    for path in candidates:
        if path.is_file():
            return str(path.resolve())
    raise FileNotFoundError(f"libflashlog.so not found ({candidates[0]}); reinstall the flashlog wheel")
