"""Shared helpers for the integration tests: where the library and fixtures are, and how to run a program
under the shim and read its log."""

import atexit
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = Path(os.environ.get("FLASHLOG_LIB", REPO / "target/release/libflashlog.so"))
FIXDIR = Path(os.environ.get("FIXDIR", REPO / "target/fixtures"))
MODULE_DIR = FIXDIR / "cache/flashinfer/0.6.0/90a/cached_ops"

EQ = "=" * 80
DASH = "-" * 80
STAMP = r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\]"

SHIM_VARS = (
    "FLASHINFER_LOGLEVEL", "FLASHINFER_LOGDEST", "FLASHLOG_LEVEL", "FLASHLOG_DEST", "FLASHLOG_MODULES",
    "FLASHLOG_KERNELS", "FLASHINFER_DUMP_INCLUDE", "FLASHINFER_DUMP_EXCLUDE", "LD_PRELOAD",
    "FLASHLOG_DUMP_DIR", "FLASHINFER_DUMP_DIR", "FLASHINFER_DUMP_MAX_SIZE_GB", "FLASHINFER_DUMP_MAX_COUNT", "FLASHLOG_RING_MB",
    "FLASHLOG_SYNC", "FLASHLOG_GRAPH_MARKERS", "FLASHLOG_CORRELATE",
)
# Level-10 dumps of any test that does not choose a folder go here, never into the working directory.
DEFAULT_DUMP_DIR = Path(tempfile.mkdtemp(prefix="flashlog-test-dumps-"))
atexit.register(shutil.rmtree, DEFAULT_DUMP_DIR, True)


def clean_env(**extra):
    """The test's environment without any shim variable, plus `extra` (values converted to str)."""
    env = {k: v for k, v in os.environ.items() if k not in SHIM_VARS}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(cmd, *, level=None, dest=None, preload=True, env=None, timeout=120, cwd=None, check=False):
    """Runs `cmd` (a list) with the shim preloaded at `level` writing to `dest`; returns CompletedProcess."""
    extra = dict(env or {})
    extra.setdefault("FLASHLOG_DUMP_DIR", DEFAULT_DUMP_DIR)
    if preload:
        extra["LD_PRELOAD"] = str(LIB) + ((" " + str(extra["LD_PRELOAD"])) if "LD_PRELOAD" in extra else "")
    if level is not None:
        extra["FLASHINFER_LOGLEVEL"] = level
    if dest is not None:
        extra["FLASHINFER_LOGDEST"] = dest
    proc = subprocess.run(
        [str(c) for c in cmd], env=clean_env(**extra), capture_output=True, text=True, timeout=timeout, cwd=cwd,
        errors="replace",
    )
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def strip_stamps(text):
    """Replaces every record timestamp with [TS] so records can be compared with fixed text."""
    return re.sub(STAMP, "[TS]", text)


def split_records(text):
    """Splits a log into its records: detailed records (from an `====` line to the blank line after the
    closing `====`, or to the end), level-1 call lines and launch records. Returns a list of strings."""
    records, current = [], []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if current:
            current.append(line)
            if line == "" and len(current) >= 2 and current[-2] == EQ and len(current) > 3:
                records.append("\n".join(current))
                current = []
        elif line == EQ:
            current = [line]
        elif re.match(STAMP + " FlashInfer (API Call|Kernel Launch): ", line):
            rec = [line]
            while i + 1 < len(lines) and lines[i + 1].startswith("  "):
                i += 1
                rec.append(lines[i])
            records.append("\n".join(rec))
        i += 1
    if current:
        records.append("\n".join(current))
    return records


def require(path):
    """Skips nothing: a missing fixture is a build error of `make test`, so fail loudly."""
    assert Path(path).exists(), f"{path} is missing: run `make fixtures` (make test does)"
    return path


@pytest.fixture
def tmp_log(tmp_path):
    return tmp_path / "flashlog.log"
