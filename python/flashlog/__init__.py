"""flashlog: log FlashInfer's compiled calls, CUDA graph captures and kernel launches of any process.

The wheel carries the ``flashlog`` launcher (on PATH after ``pip install``), the ``LD_PRELOAD`` library
``libflashlog.so`` and its C header. This package tells where the library is, so that

    LD_PRELOAD=$(python -c 'import flashlog; print(flashlog.library_path())') python my_script.py

works without the launcher, and ``python -m flashlog ...`` does what the launcher does.
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
    honours it the same way), else the copy inside this installed package. Raises FileNotFoundError
    when neither exists."""
    override = os.environ.get("FLASHLOG_LIB")
    path = _Path(override) if override else _HERE / "lib" / "libflashlog.so"
    if not path.is_file():
        where = f"FLASHLOG_LIB={override}" if override else str(path)
        raise FileNotFoundError(f"libflashlog.so not found ({where}); reinstall the flashlog wheel")
    return str(path.resolve())
