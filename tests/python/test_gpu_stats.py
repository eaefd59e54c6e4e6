"""Level-5 statistics of device tensors computed by the library's own kernel (issue 20), on the fake driver of
tests/fixtures/cuda, which runs the kernel's own header code (src/gpu/stats_core.h) in the kernel's block and tree
order. `gpu_stats` puts the same bytes in fake device memory and in host memory and passes both views to one
call: the device tensor's lines (GPU route) must equal the host tensor's lines (the host path) byte for byte, and
the fake's count of device-to-host bytes shows that no tensor data crossed."""

import os
import re
import zlib

import ml_dtypes
import numpy as np
import pytest

import dlpack_kinds
from conftest import FIXDIR, MODULE_DIR, REPO, require, run

PROGRAM = FIXDIR / "cuda/gpu_stats"
MODULE = MODULE_DIR / "statsops/statsops.so"
SEED = int(os.environ.get("GPU_STATS_SEED", "0"))
KERNEL_LINE = "Statistics: GPU kernel (cuLibraryLoadData, PTX 8.0 sm_80, deterministic)"

# name -> (numpy dtype, DLPack code, bits, lanes): every kind of the host-path tests' table, float4 included.
# The one difference: these tests hold float6 and bool tensors as raw bytes (any byte for a float6 code, whose
# kernel must read the low 6 bits; 0 or 1 for a bool), so their numpy type here is uint8.
RAW_BYTES = ("float6_e2m3fn", "float6_e3m2fn", "bool")
KINDS = {name: (np.uint8, *kind[1:]) if name in RAW_BYTES else kind
         for name, kind in {**dlpack_kinds.FLOATS, **dlpack_kinds.PACKED, **dlpack_kinds.INTS}.items()}


def gpu_stats(tmp_path, raw, code, bits, lanes, offset, shape, strides, *extra, env=None, name="g"):
    """Runs gpu_stats over the bytes `raw` with the view (offset and strides in elements); returns
    (arguments' statistics blocks of the inputs record, dtoh bytes, kernels run, whole log)."""
    data = tmp_path / f"{name}.bin"
    data.write_bytes(raw)
    log = tmp_path / f"{name}.log"
    log.unlink(missing_ok=True)
    itemsize = max(1, bits * lanes // 8)
    args = [require(PROGRAM), require(MODULE), data, code, bits, lanes, offset * itemsize, len(shape), *shape]
    args += list(strides) if strides is not None else ["-"]
    proc = run([*args, *extra], level=5, dest=log, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.fullmatch(r"rc=0 dtoh=(\d+) launches=(\d+)\n", proc.stdout)
    assert m, proc.stdout
    text = log.read_text()
    inputs = text.split("Positional input arguments:")[1].split("Output value:")[0]
    blocks = re.split(r"^  arg\[\d+\]:\n", inputs, flags=re.M)[1:]
    stats = [re.findall(r"^\s+((?:min|max|mean|nan_count|inf_count)=\S+|\[statistics .*\])$", b, re.M) for b in blocks]
    return stats, int(m[1]), int(m[2]), text


def random_bytes(name, n, rng):
    dt, code, bits, lanes = KINDS[name]
    if name.startswith(("float6_", "float4_")):
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    if name == "bool":
        return (rng.integers(0, 4, n) > 1).astype(np.uint8).tobytes()
    if np.dtype(dt).kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, n, dtype=dt, endpoint=True).tobytes()
    vals = rng.standard_normal(n).astype(np.float32) * 8
    if np.dtype(dt).itemsize == 1:
        top = float(ml_dtypes.finfo(dt).max)
        vals = np.clip(vals, -top, top)
    if name == "float8_e8m0fnu":
        vals = np.abs(vals) + 0.01
    a = vals.astype(dt)
    if name.startswith(("float16", "bfloat16", "float32", "float64", "float8_e3m4", "float8_e4m3", "float8_e5m2")):
        # Every special the format has: NaN is tested separately below (it hides min/max/mean).
        if name in ("float16", "bfloat16", "float32", "float64", "float8_e5m2", "float8_e4m3", "float8_e3m4"):
            a[n // 3] = np.inf
            a[n // 2] = -np.inf if n > 100 else a[n // 2]
    return a.tobytes()


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_equals_the_host_path(tmp_path, name):
    _, code, bits, lanes = KINDS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()) + SEED)
    for n, label in ((7, "small"), (10007, "blocks")):
        raw = random_bytes(name, n, rng)
        stats, dtoh, launches, text = gpu_stats(tmp_path, raw, code, bits, lanes, 0, [n], None, name=label)
        assert KERNEL_LINE in text
        assert stats[0] and stats[0] == stats[1], (name, label, stats)
        assert dtoh == 0 and launches == 2, (dtoh, launches)
    # NaN: every line as the host path writes it.
    if np.dtype(KINDS[name][0]).kind == "f" or name.startswith("float8"):
        raw = bytearray(random_bytes(name, 300, rng))
        nan = {"float16": b"\x00\x7e", "bfloat16": b"\xc0\x7f", "float32": b"\x00\x00\xc0\x7f",
               "float64": b"\x00" * 6 + b"\xf8\x7f"}.get(name)
        if nan is None and name.startswith("float8"):
            nan = bytes([np.array([np.nan], dtype=KINDS[name][0]).view(np.uint8)[0]])
        if nan is not None:
            raw[17 * len(nan):18 * len(nan)] = nan
            stats, _, _, _ = gpu_stats(tmp_path, bytes(raw), code, bits, lanes, 0, [300], None, name="nan")
            assert stats[0] == stats[1] and "min=nan" in stats[0] and "nan_count=0" not in stats[0], stats


VIEWS = [
    # (label, base elements, offset, shape, strides)
    ("transposed", 64 * 48, 0, [48, 64], [1, 48]),
    ("slice with gaps", 64 * 48, 3 * 48 + 5, [7, 22], [48, 2]),
    ("broadcast", 48, 0, [1000, 48], [0, 1]),
    ("negative stride", 48, 47, [48], [-1]),
    ("3-d permuted with size-1 dims", 6 * 5 * 4, 0, [4, 1, 6, 5, 1], [1, 7, 20, 4, 3]),
    ("0-d", 3, 2, [], None),
    ("unaligned offset, several blocks", 70001, 3, [69990], [1]),
    ("inner stride 3", 30000, 1, [9000], [3]),
    ("eight dimensions", 2 ** 9, 1, [2, 2, 2, 2, 2, 2, 2, 3], [256, 128, 64, 32, 16, 8, 4, 1]),
]


@pytest.mark.parametrize("name", ["bfloat16", "float32", "float8_e4m3fn", "int64", "float4_e2m1fn_x2"])
@pytest.mark.parametrize("view", VIEWS, ids=[v[0] for v in VIEWS])
def test_views_equal_the_host_path(tmp_path, name, view):
    _, code, bits, lanes = KINDS[name]
    label, count, offset, shape, strides = view
    raw = random_bytes(name, count, np.random.default_rng(5))
    stats, dtoh, _, _ = gpu_stats(tmp_path, raw, code, bits, lanes, offset, shape, strides)
    assert stats[0] and stats[0] == stats[1], (label, stats)
    assert dtoh == 0


def test_256_mib_tensor_crosses_only_partials(tmp_path):
    n = (256 << 20) // 4
    vals = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    # FLASHLOG_STATS_MAX_MB no longer limits device tensors on the GPU route.
    stats, dtoh, launches, text = gpu_stats(
        tmp_path, vals.tobytes(), 2, 32, 1, 0, [n], None, "--device-only", env={"FLASHLOG_STATS_MAX_MB": 1}
    )
    assert dtoh <= 1024 * 96 and launches == 2, (dtoh, launches)
    got = dict(s.split("=") for s in stats[0])
    v = vals.astype(np.float64)
    assert float(got["min"]) == pytest.approx(v.min(), abs=1e-6)
    assert float(got["max"]) == pytest.approx(v.max(), abs=1e-6)
    assert float(got["mean"]) == pytest.approx(v.mean(), abs=1e-6)
    assert "FLASHLOG_STATS_MAX_MB" not in text


def test_many_tensors_share_launches(tmp_path):
    raw = random_bytes("float32", 100, np.random.default_rng(9))
    stats, dtoh, launches, _ = gpu_stats(tmp_path, raw, 2, 32, 1, 0, [100], None, "--device-only", "--copies", 60)
    assert len(stats) == 60 and all(s == stats[0] for s in stats)
    # 60 tensors: 3 launches of up to 23 per phase, inputs and outputs.
    assert (dtoh, launches) == (0, 6)


def test_gpu_cap_gives_a_skip_line(tmp_path):
    # 2 MiB over FLASHLOG_GPU_STATS_MAX_GB=0.001 (about 1 MiB): never launched, never copied; 1 MiB passes.
    raw = random_bytes("float32", 1 << 19, np.random.default_rng(1))
    env = {"FLASHLOG_GPU_STATS_MAX_GB": "0.001"}
    stats, dtoh, launches, _ = gpu_stats(tmp_path, raw, 2, 32, 1, 0, [1 << 19], None, "--device-only", env=env)
    assert stats[0] == ["[statistics skipped: 2.0 MiB over FLASHLOG_GPU_STATS_MAX_GB=0.001]"]
    assert (dtoh, launches) == (0, 0)
    stats, dtoh, launches, _ = gpu_stats(tmp_path, raw, 2, 32, 1, 0, [1 << 18], None, "--device-only", env=env)
    assert len(stats[0]) == 5 and (dtoh, launches) == (0, 2)


@pytest.mark.parametrize(
    "env,line,copies",
    [
        ({"FAKECUDA_NO_LIBRARY_API": 1}, "Statistics: GPU kernel (cuModuleLoadData, PTX 8.0 sm_80, deterministic)", False),
        ({"FAKECUDA_REFUSE_PTX": 1}, "Statistics: copies to the host (the driver did not load the kernel: "
                                     "cuLibraryLoadData 222, cuModuleLoadData 222)", True),
        ({"FLASHLOG_GPU_STATS": 0}, "Statistics: copies to the host (FLASHLOG_GPU_STATS=0)", True),
    ],
    ids=["no library API", "PTX refused", "variable off"],
)
def test_fallbacks(tmp_path, env, line, copies):
    raw = random_bytes("bfloat16", 5000, np.random.default_rng(2))
    stats, dtoh, launches, text = gpu_stats(tmp_path, raw, 4, 16, 1, 0, [5000], None, env=env)
    assert line in text.split("\n"), text[:1500]
    assert stats[0] and stats[0] == stats[1]
    if copies:
        assert dtoh >= 2 * 10000 and launches == 0
    else:
        assert dtoh == 0 and launches == 2


def test_wrong_parameter_size_fails_the_fake_loudly():
    proc = run([require(PROGRAM), "--bad-launch", REPO / "src/gpu/stats_kernel.ptx"], preload=False)
    assert proc.stdout == "short=1 exact=0\n", proc.stdout + proc.stderr
    assert "flashlog_stats_v1 launched with 4055 parameter bytes, its PTX declares 4056" in proc.stderr


def test_level_below_five_writes_no_statistics_line(tmp_path):
    raw = random_bytes("float32", 10, np.random.default_rng(1))
    data = tmp_path / "d.bin"
    data.write_bytes(raw)
    log = tmp_path / "l.log"
    proc = run([require(PROGRAM), require(MODULE), data, 2, 32, 1, 0, 1, 10, "-"], level=3, dest=log)
    assert proc.returncode == 0 and "launches=0" in proc.stdout
    assert "Statistics:" not in log.read_text()


# ---- graph replay (FLASHLOG_GRAPH_STATS=1): the kernel captured as a node instead of the copy
import test_graph_stats as tg  # noqa: E402  (its program, parsers and numpy expectations)


def replay_pair(tmp_path, args, env):
    """graph_replay without and with the shim: same stdout, 0 invalidated / unsafe; returns (stdout, log, the
    shimmed run's fake counters, the plain run's)."""
    exe = require(tg.PROGRAM)
    base = {"FLASHINFER_MODULE": require(tg.CUDAOPS)}
    plain = run([exe, *args], preload=False, env=base)
    log = tmp_path / "g.log"
    shimmed = run([exe, *args], level=5, dest=log, env={**base, **env})
    assert (shimmed.returncode, shimmed.stdout) == (plain.returncode, plain.stdout), shimmed.stderr
    assert plain.returncode == 0, plain.stdout + plain.stderr
    summary = dict(kv.split("=", 1) for kv in plain.stdout.splitlines()[-1].split()[1:])
    assert (summary["invalidated"], summary["unsafe_calls"], summary["hostfn_cuda_calls"]) == ("0", "0", "0")
    info = lambda p: dict(re.findall(r"(dtoh_bytes|stats_kernels_run|copy nodes run)=(\d+)", p.stderr))
    return shimmed.stdout, log.read_text(), info(shimmed), info(plain)


@pytest.mark.parametrize(
    "route,mode", [(r, "global") for r in tg.ROUTES] + [("plt", "thread_local"), ("runtime", "relaxed")]
)
def test_replays_by_every_capture_route_use_the_kernel(tmp_path, route, mode):
    stdout, log, shim, plain = replay_pair(tmp_path, ["--route", route, "--mode", mode, "--extra"], tg.GRAPH_ON)
    assert KERNEL_LINE in log
    # No tensor byte crossed: the shim added no device-to-host copy, eager or at replay, and no copy node.
    assert shim["dtoh_bytes"] == plain["dtoh_bytes"] and shim["copy nodes run"] == "0"
    assert int(shim["stats_kernels_run"]) > 0
    replays = tg.data(stdout)
    sid, nid = tg.deferred_id(log, "cudaops.scale2"), tg.deferred_id(log, "cudaops.noop")
    scale2, noop = tg.replay_records(log, "cudaops.scale2"), tg.replay_records(log, "cudaops.noop")
    assert sorted(scale2) == [(sid, 1), (sid, 2), (sid, 3)] and "statistics error" not in log
    for r in (1, 2, 3):
        assert scale2[(sid, r)] == tg.expect_scale2(replays[(0, r)]), r
        assert noop[(nid, r)] == tg.expect_noop(replays[(0, r)]), r


def test_replays_with_the_copy_route_when_the_variable_is_off(tmp_path):
    stdout, log, shim, plain = replay_pair(tmp_path, ["--extra"], {**tg.GRAPH_ON, "FLASHLOG_GPU_STATS": 0})
    assert "Statistics: copies to the host (FLASHLOG_GPU_STATS=0)" in log
    assert shim["stats_kernels_run"] == "0" and int(shim["copy nodes run"]) > 0
    sid = tg.deferred_id(log, "cudaops.scale2")
    replays = tg.data(stdout)
    assert tg.replay_records(log, "cudaops.scale2")[(sid, 2)] == tg.expect_scale2(replays[(0, 2)])


def test_nan_watch_on_kernel_replays(tmp_path):
    env = {**tg.GRAPH_ON, "FLASHLOG_WATCH": "nonfinite"}
    stdout, log, shim, plain = replay_pair(tmp_path, ["--extra", "--nan-at", "2"], env)
    assert int(shim["stats_kernels_run"]) > 0 and shim["dtoh_bytes"] == plain["dtoh_bytes"]
    scale2 = tg.replay_records(log, "cudaops.scale2")
    assert [k[1] for k in scale2] == [2]
    (block,) = scale2.values()
    assert block == tg.expect_scale2(tg.data(stdout)[(0, 2)])


def test_gpu_check_parts_build_here(tmp_path):
    """scripts/gpu-check.sh runs only on a GPU machine: here its shell parses, its Python compiles and its
    emulation library builds and agrees with the kernel's parameter layout."""
    import py_compile
    import subprocess

    assert subprocess.run(["bash", "-n", REPO / "scripts/gpu-check.sh"]).returncode == 0
    py_compile.compile(str(REPO / "scripts/gpu-check/gpu_stats.py"), cfile=str(tmp_path / "g.pyc"), doraise=True)
    so = tmp_path / "emulate.so"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-I", REPO / "src/gpu", "-o", so,
                    REPO / "scripts/gpu-check/emulate.c"], check=True)
    import ctypes

    assert ctypes.CDLL(str(so)).fl_sizeof_batch() == 4056


def test_load_waits_for_the_host_to_initialise_cuda(tmp_path):
    # The system information record is written at the first call, before cuInit: no load yet, and no failure
    # remembered; the device call after cuInit takes the kernel route.
    raw = random_bytes("float32", 100, np.random.default_rng(4))
    data = tmp_path / "d.bin"
    data.write_bytes(raw)
    log = tmp_path / "l.log"
    proc = run([require(PROGRAM), require(MODULE), data, 2, 32, 1, 0, 1, 100, "-", "--late-init"], level=5, dest=log)
    assert proc.returncode == 0 and re.fullmatch(r"rc=0 dtoh=0 launches=2\n", proc.stdout), proc.stdout + proc.stderr
    text = log.read_text()
    assert ("Statistics: copies to the host (capture status unknown (cuStreamIsCapturing: "
            "CUDA_ERROR_NOT_INITIALIZED (3)))") in text
    records = text.split("FlashInfer API Call: statsops.inspect")
    assert len(records) == 3 and records[2].count("min=") == 4


def test_partials_are_read_after_the_synchronisation(tmp_path):
    # FAKECUDA_DEFERRED=1: kernels queue on their stream until it is synchronised; partials read too early would be
    # zeros (or the previous phase's), not the host path's lines.
    raw = random_bytes("bfloat16", 50000, np.random.default_rng(8))
    stats, dtoh, launches, _ = gpu_stats(tmp_path, raw, 4, 16, 1, 0, [50000], None, env={"FAKECUDA_DEFERRED": 1})
    assert stats[0] and stats[0] == stats[1] and (dtoh, launches) == (0, 2)
