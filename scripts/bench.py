#!/usr/bin/env python3
"""`make bench`: every figure of docs/benchmark.md's table, measured in one run, side by side.

1. Per-call cost: the fixture driver calls `norm.rmsnorm` (3 tensors, a float, a bool) in a tight loop and
   prints the median ns per call over 21 batches. Each configuration runs in its own process, REPEAT times;
   the table shows the median of those medians and the ratio to the direct call (no LD_PRELOAD).
2. Many tensors: `reads_driver bench N` calls testops.touch_all with N Tensor objects (float32 4x8), a float and
   a bool, for N = 1, 3, 10, 50, 200, at levels 1, 3 and 5 (-> file), each next to its floor measured in the
   same run: `reads_driver floor`, without the shim, makes the direct call, writes the same record bytes with
   write(2) to the same file (one call's records, taken from the shim's own log of that call) and makes the
   same reads with the kernel-checked copy the shim chooses (pipe batches of 3 ranges or more, else
   process_vm_readv; at level 5 also the tensors' data, one such batch before and one after the call). The ratio
   to the floor is what the shim adds beyond the unavoidable system calls (target at level 3: 1.5x).
3. FlashInfer's own level 3 on the same kind of call, when the FlashInfer environment of
   scripts/flashinfer-env.sh exists (FLASHINFER_ENV_DIR, default .flashinfer-env); otherwise a line says so.
4. The kernel-checked copies themselves (`copy_costs`): process_vm_readv against writev into a pipe + readv,
   for 1 to 400 ranges of 48 bytes and single ranges of 4 KiB to 4 MiB, and the fstat that checks the pipe:
   the measurement behind the shim's choice of route.
5. Statistics throughput: one call on a 256 MiB host tensor at level 5 minus the same call at level 3, for
   float32, bfloat16 and float8_e4m3fn (each call takes statistics twice: inputs and after the call), next to
   numpy (and ml_dtypes) computing min, max, mean, isnan().sum() and isinf().sum() on the same size, and the
   peak memory the shim adds (VmHWM after the level-5 calls minus before them).
3. Graph replay statistics (`graph_rows`): what `FLASHLOG_GRAPH_STATS=1` adds to one replay of a captured
   scale2(out, in) on the fake driver (4 KiB and 16 MiB tensors; the replay copies each of the 2 tensors'
   spans twice and runs 2 host functions computing 4 tensors' statistics), per captured tensor; and an eager
   level-5 call with `FLASHLOG_WATCH=nonfinite` and nothing non-finite (no record written) against level 5
   writing every record.
4. FLASHLOG_SYNC (`bench_sync.py`): the added cost per eager call next to two synchronisations (its floor),
   and of FLASHLOG_GRAPH_MARKERS=1 per captured call per replay.
5. Level 10 (dumps, `dump_rows`): the benchmark call at level 10 against level 5 and the direct call (each
   level-10 call writes a folder of three files); one level-10 call on a 256 MiB float32 host tensor minus the
   same call at level 5 (inputs and outputs: 512 MiB written) against a plain sequential write of the same
   bytes to the same file system in the same run, and the peak memory the shim adds at level 10.
6. Loader (`loader_rows`): a load/unload/launch round with 1,000 objects loaded, with the library at level 1
   and without it (the floor), side by side.
"""

import argparse
import os
import shutil
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHIM_VARS = ("FLASHINFER_LOGLEVEL", "FLASHINFER_LOGDEST", "FLASHLOG_LEVEL", "FLASHLOG_DEST", "LD_PRELOAD", "FLASHLOG_RING_MB",
             "FLASHLOG_DUMP_DIR", "FLASHINFER_DUMP_DIR", "FLASHINFER_DUMP_MAX_COUNT", "FLASHINFER_DUMP_MAX_SIZE_GB")


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
    ring = tmp / "bench.ring"
    configs = [
        ("direct call (no LD_PRELOAD)", None, None, None, args.calls, None),
        ("level 0", lib, "0", None, args.calls, None),
        ("level 1 -> /dev/null", lib, "1", "/dev/null", args.calls // 4, None),
        ("level 1 -> file", lib, "1", log, args.calls // 4, None),
        ("level 1 -> ring 4 MiB", lib, "1", ring, args.calls // 4, 4),
        ("level 3 -> /dev/null", lib, "3", "/dev/null", args.calls // 40, None),
        ("level 3 -> file", lib, "3", log, args.calls // 40, None),
        ("level 3 -> ring 4 MiB", lib, "3", ring, args.calls // 40, 4),
    ]
    rows = []
    for name, preload, level, dest, calls, ring_mb in configs:
        samples = []
        for _ in range(args.repeat):
            log.unlink(missing_ok=True)
            ring.unlink(missing_ok=True)
            env = env_with(LD_PRELOAD=preload, FLASHINFER_LOGLEVEL=level, FLASHINFER_LOGDEST=dest,
                           FLASHLOG_RING_MB=ring_mb)
            samples.append(parse(run([driver, "bench", module_dir, calls], env), "median_ns_per_call"))
        rows.append((name, statistics.median(samples), min(samples), max(samples)))
    direct = rows[0][1]
    print(f"Per call ({args.repeat} processes each; median of per-process medians of 21 batches):")
    print(f"  {'configuration':30} {'ns/call':>9} {'min':>9} {'max':>9} {'x direct':>9}")
    for name, med, lo, hi in rows:
        print(f"  {name:30} {med:9.1f} {lo:9.1f} {hi:9.1f} {med / direct:9.2f}")
    return rows


def ring_summary(rows, many):
    """The flight recorder's cost (issue 22), from this run's rows: what a 4 MiB ring adds to the direct call at
    levels 1 and 3, next to what the file destination adds and, at level 3, to the floor of the many-tensor rows
    with N = 3 (the direct call + the same write(2)s + the same kernel-checked reads, minus the direct call)."""
    by = {r[0]: r[1] for r in rows}
    direct = by["direct call (no LD_PRELOAD)"]
    added = {k: by[k] - direct for k in by}
    print("\nFlight recorder (FLASHLOG_RING_MB=4, the rmsnorm-shaped call; added to the direct call, same run):")
    for level in (1, 3):
        r, f = added[f"level {level} -> ring 4 MiB"], added[f"level {level} -> file"]
        print(f"  level {level}: ring adds {r:9.1f} ns, file adds {f:9.1f} ns: ring / file = {r / f:.2f}")
    floor = next((r for r in many if r[0] == 3 and r[1] == 3), None)
    if floor:
        print(f"  level 3 floor (N=3: writes + kernel-checked reads): {floor[3] - floor[4]:9.1f} ns added; "
              f"the ring adds {added['level 3 -> ring 4 MiB'] / (floor[3] - floor[4]):.2f}x that")


def one_call_records(log_text):
    """(inputs record, outputs record) of the one call in a shim log: the inputs record is written before the
    call, the outputs record (from `Output value:` to the blank line) after it; a level-1 log has only a line."""
    calls = log_text.split("=" * 80 + "\n\n", 1)[1]
    if "Output value:" not in calls:
        return calls, ""
    head, tail = calls.split("Output value:", 1)
    return head, "Output value:" + tail


def many_tensors(args, tmp):
    drv = args.fixdir / "reads_driver"
    module_dir = args.fixdir / "cache/flashinfer/0.6.0/90a/cached_ops"
    lib = args.lib.resolve()
    log = tmp / "many.log"
    print(f"\nMany tensors (touch_all with N Tensor objects 4x8 + a float + a bool, -> file; {args.repeat} processes "
          "each; floor = direct call + the same write(2)s + the same kernel-checked reads, same run):")
    print(f"  {'N':>4} {'level':>5} {'ns/call':>11} {'floor ns':>10} {'x floor':>8} {'x direct':>9} {'reads/call':>10}")
    rows = []
    for n in args.tensors:
        direct = statistics.median(
            parse(run([drv, "bench", module_dir, n, max(args.calls // 10 // n, 2000)], env_with()), "median_ns_per_call")
            for _ in range(args.repeat))
        for level in (1, 3, 5):
            calls = max(args.calls // (40 if level == 1 else 400) // n // (10 if level == 5 else 1), 200)
            # One call's records, from the shim's own log, and its read system calls.
            log.unlink(missing_ok=True)
            env = env_with(LD_PRELOAD=lib, FLASHINFER_LOGLEVEL=level, FLASHINFER_LOGDEST=log,
                           FLASHLOG_TEST_COUNT_READS=1)
            p = subprocess.run([str(c) for c in (drv, "many", module_dir, n, "obj")], env=env, capture_output=True,
                               text=True, timeout=600)
            reads = int(p.stderr.rsplit("read system calls: ", 1)[1].split()[0]) if "read system calls" in p.stderr else 0
            inputs, outputs = one_call_records(log.read_text())
            (tmp / "in.txt").write_text(inputs)
            (tmp / "out.txt").write_text(outputs)
            shim, floor = [], []
            for _ in range(args.repeat):
                log.unlink(missing_ok=True)
                env = env_with(LD_PRELOAD=lib, FLASHINFER_LOGLEVEL=level, FLASHINFER_LOGDEST=log)
                shim.append(parse(run([drv, "bench", module_dir, n, calls], env), "median_ns_per_call"))
                log.unlink(missing_ok=True)
                floor.append(parse(run([drv, "floor", module_dir, n, calls, level, log, tmp / "in.txt",
                                        tmp / "out.txt"], env_with()), "median_ns_per_call"))
            med, fl = statistics.median(shim), statistics.median(floor)
            rows.append((n, level, med, fl, direct, reads))
            print(f"  {n:4} {level:5} {med:11.1f} {fl:10.1f} {med / fl:8.2f} {med / direct:9.1f} {reads:10}")
    return rows


def flashinfer_side_by_side(args):
    """FlashInfer's own Python logger at level 3 on rmsnorm-shaped CPU tensors (the call itself fails on CPU
    after the logger ran, as in tests/flashinfer), next to the shim's level 3 of the same shape."""
    env_dir = Path(os.environ.get("FLASHINFER_ENV_DIR", Path(__file__).resolve().parents[1] / ".flashinfer-env"))
    py = env_dir / "bin/python"
    if not py.exists():
        print(f"\nFlashInfer's own level 3: not measured here (no FlashInfer environment at {env_dir}; "
              "create it with scripts/flashinfer-env.sh, then run make bench again)")
        return None
    code = (
        "import time, statistics, torch, flashinfer\n"
        "x = torch.randn(4, 128); w = torch.ones(128); t = []\n"
        "for _ in range(21):\n"
        "    t0 = time.perf_counter_ns()\n"
        "    for _ in range(200):\n"
        "        try: flashinfer.norm.rmsnorm(x, w)\n"
        "        except Exception: pass\n"
        "    t.append((time.perf_counter_ns() - t0) / 200)\n"
        "print('median_ns_per_call=%.1f' % statistics.median(t))\n"
    )
    out = {}
    for level in ("0", "3"):
        env = env_with(FLASHINFER_LOGLEVEL=level, FLASHINFER_LOGDEST="/dev/null")
        out[level] = parse(run([py, "-c", code], env), "median_ns_per_call")
    added = out["3"] - out["0"]
    print(f"\nFlashInfer's own level 3 (rmsnorm, CPU tensors, -> /dev/null): {added:.1f} ns/call added "
          f"(level 0: {out['0']:.1f}, level 3: {out['3']:.1f})")
    return added


def copy_costs(args):
    out = run([args.fixdir / "bench/copy_costs"], env_with())
    print("\nKernel-checked copies (median of 7 runs; the shim uses the pipe for every batch up to 32 KiB, with one fstat "
          "per phase of a call):")
    print(f"  {'ranges':>6} {'bytes each':>10} {'process_vm_readv ns':>20} {'pipe ns':>9}")
    for line in out.splitlines():
        if line.startswith("fstat"):
            print(f"  fstat check of the pipe: {parse(line, 'fstat_ns'):.0f} ns")
            continue
        v = {k: float(x) for k, x in (w.split("=") for w in line.split())}
        print(f"  {v['ranges']:6.0f} {v['bytes']:10.0f} {v['pvr_ns']:20.0f} {v['pipe_ns']:9.0f}")


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


def loader_rows(args, tmp):
    """A load/unload/launch round with 1,000 objects loaded (`loader_host objects`: dlopen a -lcuda plugin,
    launch, dlclose, launch), with the library at level 1 next to its floor, the same round without it."""
    prog, tiny = args.fixdir / "loader/loader_host", args.fixdir / "loader/libtiny.so"
    plugin = (args.fixdir / "loader/libplugin.so").resolve()
    objects = tmp / "objects"
    objects.mkdir()
    for i in range(1000):
        shutil.copyfile(tiny, objects / f"libobj{i}.so")
    med = {}
    for name, preload in (("without the library", None), ("level 1", args.lib.resolve())):
        samples = []
        for _ in range(args.repeat):
            env = env_with(LD_PRELOAD=preload, FLASHINFER_LOGLEVEL=1 if preload else None,
                           FLASHINFER_LOGDEST="/dev/null" if preload else None)
            p = subprocess.run([str(prog), "objects", str(objects), "1000", "400", str(plugin)], env=env,
                               capture_output=True, text=True, timeout=600, check=True)
            samples.append(parse(p.stderr, "round_ns"))
        med[name] = statistics.median(samples)
    floor = med["without the library"]
    print(f"\nLoad/unload/launch round with 1,000 objects loaded (median of {args.repeat} processes' medians of "
          "400 rounds; target: 20x the floor + 0.2 ms):")
    print(f"  {'configuration':22} {'us/round':>9} {'x floor':>8}")
    for name, value in med.items():
        print(f"  {name:22} {value / 1000:9.1f} {value / floor:8.2f}")
    return med


def plain_write_seconds(folder, file_bytes, files, rounds=3):
    """Median seconds of a plain sequential write of `files` files of `file_bytes` each (4 MiB writes from one
    buffer, then a rename), as one level-10 call writes them; every file is kept until all rounds are done,
    as the dumps are, so both meet the same page-cache pressure."""
    chunk = bytes(range(256)) * (4 << 12)
    times = []
    for r in range(rounds):
        t0 = time.perf_counter()
        for i in range(files):
            tmp = folder / f"plain{r}_{i}.tmp"
            with open(tmp, "wb", buffering=0) as f:
                left = file_bytes
                while left > 0:
                    left -= f.write(chunk[:min(left, len(chunk))])
            tmp.rename(folder / f"plain{r}_{i}.bin")
        times.append(time.perf_counter() - t0)
    for p in folder.glob("plain*.bin"):
        p.unlink()
    return statistics.median(times)


def dump_rows(args, tmp):
    """Level 10: per call, large-tensor throughput against a plain write, added memory."""
    driver, module_dir = args.fixdir / "tvm_driver", args.fixdir / "cache/flashinfer/0.6.0/90a/cached_ops"
    lib = args.lib.resolve()
    dumps = tmp / "dumps"
    calls = 21 * 100
    configs = [("direct call (no LD_PRELOAD)", None, None, dumps), ("level 5 -> /dev/null", lib, "5", dumps),
               ("level 10, dumps in " + str(tmp)[:12] + "...", lib, "10", dumps)]
    if Path("/dev/shm").is_dir():
        configs.append(("level 10, dumps in /dev/shm", lib, "10", Path(tempfile.mkdtemp(dir="/dev/shm")) / "d"))
    print(f"\nLevel 10, the benchmark call ({args.repeat} processes each, {calls} calls; dumps in {tmp}):")
    print(f"  {'configuration':30} {'us/call':>9} {'min':>9} {'max':>9}")
    rows = []
    for name, preload, level, folder in configs:
        samples = []
        for _ in range(args.repeat):
            shutil.rmtree(folder, ignore_errors=True)
            env = env_with(LD_PRELOAD=preload, FLASHINFER_LOGLEVEL=level, FLASHINFER_LOGDEST="/dev/null",
                           FLASHLOG_DUMP_DIR=folder, FLASHINFER_DUMP_MAX_COUNT=calls + 1)
            samples.append(parse(run([driver, "bench", module_dir, calls], env), "median_ns_per_call") / 1e3)
        shutil.rmtree(folder.parent if folder.parent.parent == Path("/dev/shm") else folder, ignore_errors=True)
        rows.append((name, statistics.median(samples)))
        print(f"  {name:30} {statistics.median(samples):9.1f} {min(samples):9.1f} {max(samples):9.1f}")
    bench = args.fixdir / "bench/stats_bench"
    module = args.fixdir / "cache/flashinfer/0.6.0/90a/cached_ops/statsops/statsops.so"
    n_bytes = 2 * (args.mib << 20)
    print(f"\nLevel-10 dump of a {args.mib} MiB float32 host tensor (inputs + outputs = {n_bytes >> 20} MiB written; "
          "median of 3 calls, level 10 minus level 5; the plain write: the same files, same folder, same run):")
    print(f"  {'folder':22} {'dump GB/s':>10} {'plain write GB/s':>17} {'dump/plain':>11} {'added peak MiB':>15}")
    folders = [tmp] + ([Path(tempfile.mkdtemp(dir="/dev/shm"))] if Path("/dev/shm").is_dir() else [])
    for folder in folders:
        dumps = folder / "dumps"
        out = {}
        for level in ("5", "10"):
            env = env_with(LD_PRELOAD=lib, FLASHINFER_LOGLEVEL=level, FLASHINFER_LOGDEST="/dev/null",
                           FLASHLOG_DUMP_DIR=dumps)
            out[level] = run([bench, module, "float32", args.mib, 3], env)
            shutil.rmtree(dumps, ignore_errors=True)
        seconds = (parse(out["10"], "median_ns_per_call") - parse(out["5"], "median_ns_per_call")) / 1e9
        dump_gbps = n_bytes / seconds / 1e9
        plain_gbps = n_bytes / plain_write_seconds(folder, args.mib << 20, 2) / 1e9
        added = (parse(out["10"], "vmhwm_after_kib") - parse(out["10"], "vmhwm_before_kib")) / 1024
        name = str(folder)[:19] + ("..." if len(str(folder)) > 19 else "")
        print(f"  {name:22} {dump_gbps:10.2f} {plain_gbps:17.2f} {dump_gbps / plain_gbps:11.2f} {added:15.1f}")
        if folder != tmp:
            shutil.rmtree(folder, ignore_errors=True)
    return rows, dump_gbps, plain_gbps, added


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", type=Path, default=Path("target/release/libflashlog.so"))
    ap.add_argument("--fixdir", type=Path, default=Path("target/fixtures"))
    ap.add_argument("--calls", type=int, default=2_100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--tensors", type=int, nargs="*", default=[1, 3, 10, 50, 200])
    args = ap.parse_args()
    print(f"flashlog benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = per_call(args, Path(tmp))
        many = many_tensors(args, Path(tmp))
    ring_summary(rows, many)
    fi = flashinfer_side_by_side(args)
    if fi:
        shim3 = next(r for r in rows if r[0] == "level 3 -> /dev/null")[1] - rows[0][1]
        print(f"  shim level 3 (-> /dev/null) adds {shim3:.1f} ns/call: {fi / shim3:.1f}x cheaper")
    copy_costs(args)
    l3 = [r for r in many if r[1] == 3]
    if l3:
        worst = max(r[2] / r[3] for r in l3)
        print(f"\nLevel 3 against its floor: at most {worst:.2f}x (target 1.5x) over N = "
              f"{', '.join(str(r[0]) for r in l3)}")
    stats_throughput(args)
    with tempfile.TemporaryDirectory() as tmp:
        graph_rows(args, Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        loader_rows(args, Path(tmp))
    from bench_sync import sync_rows
    sync_rows(args)
    with tempfile.TemporaryDirectory(dir=os.environ.get("FLASHLOG_BENCH_DUMP_DIR")) as tmp:
        dump_rows(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
