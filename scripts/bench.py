#!/usr/bin/env python3
"""`make bench`: every figure of the README's benchmark table, measured in one run, side by side.

1. Per-call cost: the fixture driver calls `norm.rmsnorm` (3 tensors, a float, a bool) in a tight loop and
   prints the median ns per call over 21 batches. Each configuration runs in its own process, REPEAT times;
   the table shows the median of those medians and the ratio to the direct call (no LD_PRELOAD).
2. Statistics throughput: one call on a 256 MiB host tensor at level 5 minus the same call at level 3, for
   float32, bfloat16 and float8_e4m3fn (each call takes statistics twice: inputs and after the call), next to
   numpy (and ml_dtypes) computing min, max, mean, isnan().sum() and isinf().sum() on the same size, and the
   peak memory the shim adds (VmHWM after the level-5 calls minus before them).
3. Graph replay statistics (`graph_rows`): what `FLASHLOG_GRAPH_STATS=1` adds to one replay of a captured
   scale2(out, in) on the fake driver (4 KiB and 16 MiB tensors; the replay copies each of the 2 tensors'
   spans twice and runs 2 host functions computing 4 tensors' statistics), per captured tensor; and an eager
   level-5 call with `FLASHLOG_WATCH=nonfinite` and nothing non-finite (no record written) against level 5
   writing every record.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHIM_VARS = ("FLASHINFER_LOGLEVEL", "FLASHINFER_LOGDEST", "FLASHLOG_LEVEL", "FLASHLOG_DEST", "LD_PRELOAD")


def env_with(**extra):
    env = {k: v for k, v in os.environ.items() if k not in SHIM_VARS}
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def parse(out, key):
    for word in out.split():
        if word.startswith(key + "="):
            return float(word.split("=", 1)[1])
    raise RuntimeError(f"no {key}= in output: {out!r}")


def run(cmd, env):
    p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({p.returncode}): {p.stderr}")
    return p.stdout


def per_call(args, tmp):
    driver, module_dir = args.fixdir / "tvm_driver", args.fixdir / "cache/flashinfer/0.6.0/90a/cached_ops"
    lib = args.lib.resolve()
    log = tmp / "bench.log"
    configs = [
        ("direct call (no LD_PRELOAD)", None, None, None, args.calls),
        ("level 0", lib, "0", None, args.calls),
        ("level 1 -> /dev/null", lib, "1", "/dev/null", args.calls // 4),
        ("level 1 -> file", lib, "1", log, args.calls // 4),
        ("level 3 -> /dev/null", lib, "3", "/dev/null", args.calls // 40),
        ("level 3 -> file", lib, "3", log, args.calls // 40),
    ]
    rows = []
    for name, preload, level, dest, calls in configs:
        samples = []
        for _ in range(args.repeat):
            if log.exists():
                log.unlink()
            env = env_with(LD_PRELOAD=preload, FLASHINFER_LOGLEVEL=level, FLASHINFER_LOGDEST=dest)
            samples.append(parse(run([driver, "bench", module_dir, calls], env), "median_ns_per_call"))
        rows.append((name, statistics.median(samples), min(samples), max(samples)))
    direct = rows[0][1]
    print(f"Per call ({args.repeat} processes each; median of per-process medians of 21 batches):")
    print(f"  {'configuration':30} {'ns/call':>9} {'min':>9} {'max':>9} {'x direct':>9}")
    for name, med, lo, hi in rows:
        print(f"  {name:30} {med:9.1f} {lo:9.1f} {hi:9.1f} {med / direct:9.2f}")
    return rows


def numpy_stats_seconds(dtype_name, mib):
    import numpy as np

    n_bytes = mib << 20
    rng = np.random.default_rng(0)
    if dtype_name == "float32":
        a = rng.uniform(-4, 4, n_bytes // 4).astype(np.float32)
    else:
        import ml_dtypes

        dt = {"bfloat16": ml_dtypes.bfloat16, "float8_e4m3fn": ml_dtypes.float8_e4m3fn}[dtype_name]
        itemsize = np.dtype(dt).itemsize
        a = rng.uniform(-4, 4, n_bytes // itemsize).astype(np.float32).astype(dt)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        (a.min(), a.max(), a.mean(), np.isnan(a).sum(), np.isinf(a).sum())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def stats_throughput(args):
    bench = args.fixdir / "bench/stats_bench"
    module = args.fixdir / "cache/flashinfer/0.6.0/90a/cached_ops/statsops/statsops.so"
    lib = args.lib.resolve()
    print(f"\nStatistics of a {args.mib} MiB host tensor (median of 3 calls; each level-5 call reads it twice):")
    print(f"  {'dtype':15} {'shim GB/s':>10} {'numpy GB/s':>11} {'shim/numpy':>11} {'added peak MiB':>15}")
    rows = []
    for dtype in ("float32", "bfloat16", "float8_e4m3fn"):
        out = {}
        for level in ("3", "5"):
            env = env_with(LD_PRELOAD=lib, FLASHINFER_LOGLEVEL=level, FLASHINFER_LOGDEST="/dev/null")
            out[level] = run([bench, module, dtype, args.mib, 3], env)
        seconds = (parse(out["5"], "median_ns_per_call") - parse(out["3"], "median_ns_per_call")) / 1e9
        gbps = 2 * (args.mib << 20) / seconds / 1e9
        np_gbps = (args.mib << 20) / numpy_stats_seconds(dtype, args.mib) / 1e9
        added = (parse(out["5"], "vmhwm_after_kib") - parse(out["5"], "vmhwm_before_kib")) / 1024
        rows.append((dtype, gbps, np_gbps, added))
        print(f"  {dtype:15} {gbps:10.2f} {np_gbps:11.2f} {gbps / np_gbps:11.2f} {added:15.1f}")
    return rows


def graph_rows(args, tmp):
    """Replay cost per captured tensor with FLASHLOG_GRAPH_STATS=1, and the NaN watch's eager cost."""
    prog = args.fixdir / "cuda/graph_replay"
    module = args.fixdir / "cache/flashinfer/0.6.0/90a/cached_ops/cudaops/cudaops.so"
    lib = args.lib.resolve()
    print("\nGraph replay statistics (fake driver; median ns per replay, median of "
          f"{args.repeat} processes; 4 tensors' statistics per replay):")
    print(f"  {'tensor':8} {'stats off ns':>13} {'stats on ns':>13} {'added/tensor us':>16} {'GB/s':>7}")
    rows = []
    for label, elems, replays in (("4 KiB", 1024, 22000), ("16 MiB", 4 << 20, 110)):
        med = {}
        for on in (False, True):
            samples = []
            for _ in range(args.repeat):
                env = env_with(LD_PRELOAD=lib, FLASHINFER_LOGLEVEL=5, FLASHINFER_LOGDEST="/dev/null",
                               FLASHINFER_MODULE=module, FLASHLOG_GRAPH_STATS=1 if on else None,
                               FLASHLOG_GRAPH_STATS_MB=128 if on else None)
                out = run([prog, "--bench", replays, "--elems", elems], env)
                samples.append(parse(out, "median_ns_per_replay"))
            med[on] = statistics.median(samples)
        per_tensor_ns = (med[True] - med[False]) / 4
        gbps = elems * 4 / per_tensor_ns if per_tensor_ns > 0 else float("nan")
        rows.append((label, med[False], med[True], per_tensor_ns))
        print(f"  {label:8} {med[False]:13.0f} {med[True]:13.0f} {per_tensor_ns / 1000:16.2f} {gbps:7.2f}")
    driver, module_dir = args.fixdir / "tvm_driver", args.fixdir / "cache/flashinfer/0.6.0/90a/cached_ops"
    log = tmp / "watch.log"
    calls = max(args.calls // 100, 1000)
    print("\nEager level-5 call, norm.rmsnorm (3 host tensors of 4 x 128 float32), nothing non-finite:")
    print(f"  {'configuration':36} {'ns/call':>9}")
    for name, watch in (("level 5 -> file, every record", None), ("level 5 -> file, FLASHLOG_WATCH=nonfinite", "nonfinite")):
        samples = []
        for _ in range(args.repeat):
            if log.exists():
                log.unlink()
            env = env_with(LD_PRELOAD=lib, FLASHINFER_LOGLEVEL=5, FLASHINFER_LOGDEST=log, FLASHLOG_WATCH=watch)
            samples.append(parse(run([driver, "bench", module_dir, calls], env), "median_ns_per_call"))
        rows.append((name, statistics.median(samples)))
        print(f"  {name:36} {statistics.median(samples):9.1f}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", type=Path, default=Path("target/release/libflashlog.so"))
    ap.add_argument("--fixdir", type=Path, default=Path("target/fixtures"))
    ap.add_argument("--calls", type=int, default=2_100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--mib", type=int, default=256)
    args = ap.parse_args()
    print(f"flashlog benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        per_call(args, Path(tmp))
    stats_throughput(args)
    with tempfile.TemporaryDirectory() as tmp:
        graph_rows(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
