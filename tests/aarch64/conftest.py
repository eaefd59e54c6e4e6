"""The aarch64 tests: the same fixture programs run twice, natively with the x86-64 library and fixtures, and
under qemu-user with the aarch64 library and the fixtures cross-built for aarch64; their records must match
line for line once timestamps, addresses, process ids and the command name are masked."""

import os
import re
import subprocess
from pathlib import Path

NATIVE_LIB = Path(os.environ["FLASHLOG_LIB"])
NATIVE_FIX = Path(os.environ["FIXDIR"])
ARM_LIB = Path(os.environ["AARCH64_LIB"])
ARM_FIX = Path(os.environ["AARCH64_FIXDIR"])
MODULES = "cache/flashinfer/0.6.0/90a/cached_ops"
QEMU = "qemu-aarch64-static"

SHIM_VARS = ("FLASHINFER_LOGLEVEL", "FLASHINFER_LOGDEST", "FLASHLOG_LEVEL", "FLASHLOG_DEST", "FLASHLOG_MODULES",
             "FLASHLOG_KERNELS", "LD_PRELOAD", "QEMU_SET_ENV", "QEMU_LD_PREFIX")


def run_on(arch, args, *, level=None, dest=None, preload_after=(), preload_before=(), env=None, timeout=300):
    """Runs fixture program `args[0]` (a path relative to the fixture folder; later arguments may contain
    `{fix}` and `{modules}`) on `arch` ("native" or "aarch64") with the shim preloaded (between the
    `preload_before` and `preload_after` fixture libraries). Returns the CompletedProcess."""
    lib, fix = (NATIVE_LIB, NATIVE_FIX) if arch == "native" else (ARM_LIB, ARM_FIX)
    fmt = {"fix": str(fix), "modules": str(fix / MODULES)}
    argv = [str(fix / args[0])] + [a.format(**fmt) for a in args[1:]]
    e = {k: v for k, v in os.environ.items() if k not in SHIM_VARS}
    e.update({k: str(v).format(**fmt) for k, v in (env or {}).items()})
    if level is not None:
        e["FLASHINFER_LOGLEVEL"] = str(level)
    if dest is not None:
        e["FLASHINFER_LOGDEST"] = str(dest)
    preload = [str(fix / p) for p in preload_before] + [str(lib)] + [str(fix / p) for p in preload_after]
    if arch == "native":
        e["LD_PRELOAD"] = ":".join(preload)
    else:
        # The guest's LD_PRELOAD must not reach qemu itself (an x86-64 process).
        argv = [QEMU, "-E", "LD_PRELOAD=" + ":".join(preload)] + argv
    return subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout, errors="replace")


def masked(text):
    """A log with what legitimately differs between two runs masked: timestamps, hex addresses, process ids,
    the command name (qemu's under emulation) and fixture paths."""
    text = re.sub(r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\]", "[TS]", text)
    text = re.sub(r"0x[0-9a-f]+", "0xADDR", text)
    text = re.sub(r"Process: \d+ \(.*\)", "Process: PID (CMD)", text)
    # Correlation lines, alone or ending a launch record's first line: thread ids differ between runs, and so do
    # call numbers when threads interleave.
    text = re.sub(r"\[call (\S+) #\d+ thread \d+(?: at [\d:.]+)?\]$", r"[call \1 #N thread T]", text, flags=re.M)
    # The exit line names the process.
    text = re.sub(r"^\[flashlog exit: pid \d+,", "[flashlog exit: pid P,", text, flags=re.M)
    text = text.replace(str(ARM_FIX), "FIXDIR").replace(str(NATIVE_FIX), "FIXDIR")
    return text

ARM_PYTHON = Path(os.environ.get("AARCH64_PYTHON", "target/aarch64/python")).resolve()
NATIVE_PYTHON = os.environ.get("NATIVE_PYTHON", "python3")


def run_python(arch, script_args, *, level=None, dest=None, preload=True, timeout=300):
    """Runs a Python script (arguments may contain `{modules}`) with the real tvm_ffi loader on `arch`: the
    test venv's Python natively, the unpacked arm64 CPython with aarch64 wheels under qemu."""
    lib, fix = (NATIVE_LIB, NATIVE_FIX) if arch == "native" else (ARM_LIB, ARM_FIX)
    args = [a.format(modules=str(fix / MODULES)) for a in script_args]
    e = {k: v for k, v in os.environ.items() if k not in SHIM_VARS}
    if level is not None:
        e["FLASHINFER_LOGLEVEL"] = str(level)
    if dest is not None:
        e["FLASHINFER_LOGDEST"] = str(dest)
    if arch == "native":
        argv = [NATIVE_PYTHON] + args
        if preload:
            e["LD_PRELOAD"] = str(lib)
    else:
        guest = "PYTHONPATH=" + str(ARM_PYTHON / "site") + ("," + "LD_PRELOAD=" + str(lib) if preload else "")
        argv = [QEMU, "-L", str(ARM_PYTHON / "root"), "-E", guest, str(ARM_PYTHON / "root/usr/bin/python3.11")] + args
    return subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout, errors="replace")
