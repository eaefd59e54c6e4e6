"""`make bench`, FLASHLOG_SYNC rows (imported by bench.py): what `FLASHLOG_SYNC=1` adds to an eager call on the
fake driver, next to the cost of the synchronisation itself (its floor: the call synchronises twice, before and
after), and what `FLASHLOG_GRAPH_MARKERS=1` adds per captured call per replay.

`cuda_errors bench N` makes N eager scale2 calls (16 floats) at levels 1 and 3 -> /dev/null and then N bare
cuStreamSynchronize calls on the idle stream (`ns_per_call`, `ns_per_sync`); `cuda_errors graph-bench N` replays a
graph of 8 captured scale2 calls N times, each replay followed by the host's own cuStreamSynchronize
(`ns_per_replay`). Medians of `--repeat` processes."""

import statistics

from bench import env_with, parse, run


def sync_rows(args):
    prog = args.fixdir / "cuda/cuda_errors"
    module = args.fixdir / "cache/flashinfer/0.6.0/90a/cached_ops/cudaops/cudaops.so"
    lib = args.lib.resolve()
    calls = max(args.calls // 100, 2000)

    def median(mode, n, key, level=1, **extra):
        samples = []
        for _ in range(args.repeat):
            env = env_with(LD_PRELOAD=lib, FLASHINFER_LOGLEVEL=level, FLASHINFER_LOGDEST="/dev/null",
                           FLASHINFER_MODULE=module, FLASHLOG_KERNELS="", **extra)
            samples.append(parse(run([prog, mode, n], env), key))
        return statistics.median(samples)

    print(f"\nFLASHLOG_SYNC=1 (fake driver, -> /dev/null; median of {args.repeat} processes):")
    rows = []
    for level in (1, 3):
        off = median("bench", calls, "ns_per_call", level)
        on = median("bench", calls, "ns_per_call", level, FLASHLOG_SYNC=1)
        print(f"  {f'level {level} eager call, FLASHLOG_SYNC off':44} {off:9.0f} ns/call")
        print(f"  {f'level {level} eager call, FLASHLOG_SYNC=1':44} {on:9.0f} ns/call (+{on - off:.0f})")
        rows += [(f"level {level} sync off", off), (f"level {level} sync on", on)]
    sync = median("bench", calls, "ns_per_sync")
    print(f"  {'floor: 2 x cuStreamSynchronize (idle stream)':44} {2 * sync:9.0f} ns")
    replays = max(calls // 10, 500)
    g_off = median("graph-bench", replays, "ns_per_replay")
    g_sync = median("graph-bench", replays, "ns_per_replay", FLASHLOG_SYNC=1)
    g_mark = median("graph-bench", replays, "ns_per_replay", FLASHLOG_SYNC=1, FLASHLOG_GRAPH_MARKERS=1)
    print(f"  {'replay of 8 captured calls, FLASHLOG_SYNC off':44} {g_off:9.0f} ns/replay")
    print(f"  {'replay, FLASHLOG_SYNC=1':44} {g_sync:9.0f} ns/replay (+{g_sync - g_off:.0f})")
    print(f"  {'replay, FLASHLOG_SYNC=1 + GRAPH_MARKERS=1':44} {g_mark:9.0f} ns/replay "
          f"(markers: +{(g_mark - g_sync) / 8:.0f} ns per captured call per replay)")
    return rows + [("sync floor", 2 * sync), ("replay off", g_off), ("replay sync", g_sync),
                   ("replay markers", g_mark)]
