"""CUDA graph capture awareness (issue 3), with the fake driver of tests/fixtures/cuda, which fails unsafe calls
during a capture with 900 and invalidates it, as the real driver does. Each program begins and ends captures
through one route (PLT, dlsym, cuGetProcAddress legacy and per-thread, _v2 and the 4-argument form, the
runtime) and calls a FlashInfer-style module eagerly and inside each capture. The PLT route is a program linked
with -lcuda whose GOT slots the shim rewrites (it exports no CUDA name): built lazily bound (the default here),
with -z lazy and -z now explicitly, and with -fno-plt (data slots only)."""

import re

import pytest

from conftest import FIXDIR, MODULE_DIR, require, run, split_records

CUDA = FIXDIR / "cuda"
CUDAOPS = MODULE_DIR / "cudaops/cudaops.so"
PROGRAMS = ["capture_plt", "capture_plt_lazy", "capture_plt_now", "capture_noplt", "capture_dlsym",
            "capture_procaddr", "capture_other_thread", "capture_runtime"]
SKIP = "[statistics skipped: CUDA graph capture in progress]"


def summary(stdout):
    line = [l for l in stdout.splitlines() if l.startswith("summary:")][-1]
    return dict(kv.split("=", 1) for kv in line.split()[1:])


def call_records(log_text, name="cudaops.scale2"):
    return [r for r in split_records(log_text) if f"FlashInfer API Call: {name}" in r and r.startswith("=")]


@pytest.mark.parametrize("program", PROGRAMS)
def test_capture_routes_are_never_disturbed(tmp_path, program):
    exe = require(CUDA / program)
    env = {"FLASHINFER_MODULE": require(CUDAOPS)}
    plain = run([exe], preload=False, env=env)
    assert plain.returncode == 0, plain.stdout
    log = tmp_path / "cap.log"
    shimmed = run([exe], level=5, dest=log, env=env)
    assert shimmed.returncode == 0, shimmed.stdout + shimmed.stderr
    s = summary(shimmed.stdout)
    assert (s["invalidated"], s["unsafe_calls"], s["failures"]) == ("0", "0", "0")
    # The program sees exactly what it sees without the shim (results, return codes, capture status).
    strip = lambda t: re.sub(r"0x[0-9a-f]+", "0x?", t)
    assert strip(shimmed.stdout) == strip(plain.stdout)

    records = call_records(log.read_text())
    inside = [r for r in records if SKIP in r]
    outside = [r for r in records if SKIP not in r]
    hooks_in_capture = len(re.findall(r" hook=0 ", plain.stdout)) + len(re.findall(r"B_hook=0", plain.stdout))
    assert len(inside) == hooks_in_capture > 0
    # Inside a capture every tensor block is skipped: inputs and arguments after the call.
    for r in inside:
        assert "min=" not in r
        assert r.count(SKIP) == 4, r
    # Outside captures (eager calls before and after): real statistics of the device tensors.
    assert len(outside) >= 1
    for r in outside:
        assert "statistics error" not in r, r
        assert r.count("      min=") == 2 and r.count("    min=") >= 4, r


def stat(block, key):
    return float(re.search(rf"{key}=(\S+)", block).group(1))


def test_statistics_resume_after_capture_and_are_correct(tmp_path):
    """The eager call after all captures computes out = 2 * in on the device: the statistics of `out` after
    the call are exactly twice those of `in`, and `out` before the call holds the previous result."""
    log = tmp_path / "cap.log"
    run([require(CUDA / "capture_plt")], level=5, dest=log, env={"FLASHINFER_MODULE": CUDAOPS}, check=True)
    last = call_records(log.read_text())[-1]
    before, after = last.split("Tensor arguments after the call:")
    in_stats = before.split("arg[1]:")[1]
    out_after = after.split("arg[0] (after):")[1].split("arg[1] (after):")[0]
    for key in ("min", "max", "mean"):
        assert stat(out_after, key) == 2 * stat(in_stats, key), last
    assert stat(out_after, "nan_count") == 0


def test_misbehaving_program_still_fails_the_same_way(tmp_path):
    """The fake driver really invalidates captures: a program that synchronises inside one fails, with or
    without the shim (so the zero counts above mean something)."""
    exe = require(CUDA / "capture_plt")
    plain = run([exe, "--misbehave"], preload=False)
    shimmed = run([exe, "--misbehave"], level=5, dest=tmp_path / "x.log")
    assert plain.returncode == shimmed.returncode == 1
    assert summary(shimmed.stdout)["invalidated"] == "1"


def test_level0_hands_out_real_driver_pointers(tmp_path):
    exe = require(CUDA / "capture_procaddr")
    plain = run([exe], preload=False)
    shimmed = run([exe], level=0)
    assert shimmed.stdout == plain.stdout
    assert not list(tmp_path.iterdir())


def test_device_pointer_rejected_by_driver_gives_error_line(tmp_path):
    log = tmp_path / "bogus.log"
    env = {"FLASHINFER_MODULE": CUDAOPS, "FLASHINFER_BOGUS_PTR": 1}
    proc = run([require(CUDA / "capture_plt")], level=5, dest=log, env=env)
    assert proc.returncode == 0, proc.stdout
    noop = [r for r in call_records(log.read_text(), "cudaops.noop")]
    assert noop, log.read_text()[:2000]
    assert "[statistics error: device memory copy failed (cuMemcpyDtoH_v2): CUDA_ERROR_INVALID_VALUE (1)]" in noop[0]
