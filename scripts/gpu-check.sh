#!/usr/bin/env bash
# scripts/gpu-check.sh: the level-5 checks that need a real GPU (issue 3), for a machine with an NVIDIA GPU,
# PyTorch and nvcc and no network. Builds (or reuses) libflashlog.so, builds a FlashInfer-shaped TVM-FFI module
# with a real CUDA kernel, and under LD_PRELOAD at level 5 runs it eagerly and inside torch.cuda.graph capture
# and replay. Checks: device statistics equal torch's, the captured call's records say statistics were skipped,
# the graph replays correctly, and nothing failed. Then (issue 10) with FLASHLOG_GRAPH_STATS=1: the call captured
# once in torch.cuda.graph and replayed three times with new data: one replay record per replay whose statistics
# equal torch's own min/max/mean/isnan; with FLASHLOG_WATCH=nonfinite only the replay whose input holds a NaN.
# Then level 10: the device tensors are dumped with the right bytes, nothing is copied during the capture,
# and the eager call replays identical on the device. Last (issue 21), with FLASHLOG_SYNC=1: a real kernel's
# out-of-bounds write in a child process, eagerly and at a graph replay, whose call the log and the summary name.
#   scripts/gpu-check.sh [WHEEL_DIR]   (WHEEL_DIR: where an apache-tvm-ffi wheel was carried, if not installed)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lib=target/release/libflashlog.so
if [ ! -f "$lib" ]; then cargo build --release --locked; fi
lib=$(realpath "$lib")

python3 -c "import tvm_ffi" 2>/dev/null || {
  wheels=${1:-wheels}
  python3 -m pip install --no-index --find-links "$wheels" --target "$work/py" apache-tvm-ffi >/dev/null
  export PYTHONPATH="$work/py${PYTHONPATH:+:$PYTHONPATH}"
}
mkdir -p "$work/flashinfer/gpucheck"
nvcc -O2 -shared -Xcompiler -fPIC -o "$work/flashinfer/gpucheck/gpucheck.so" scripts/gpu-check/scale2.cu -ldl

log="$work/gpu.log"
FLASHLOG_LEVEL=5 FLASHLOG_DEST="$log" LD_PRELOAD="$lib" \
  python3 scripts/gpu-check/check.py "$work/flashinfer/gpucheck/gpucheck.so" | tee "$work/out.txt"

python3 - "$log" "$work/out.txt" <<'PY'
import re, sys
log, out = open(sys.argv[1]).read(), open(sys.argv[2]).read()
fail = []
def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
    ok or fail.append(what)
check("CHECK eager_ok=True" in out, "eager result out == 2 * in")
check("CHECK replay_ok=True" in out, "graph replays correctly (out == 6 * in)")
records = [r for r in log.split("=" * 80 + "\n[") if "FlashInfer API Call: gpucheck.scale2" in r]
check(len(records) >= 2, f"two scale2 calls logged (found {len(records)})")
torch = {k: dict(re.findall(r"(min|max|mean)=(\S+)", line)) for k, line in re.findall(r"TORCH (in|out) (.*)", out)}
eager = records[0] if records else ""
inputs, _, after = eager.partition("Tensor arguments after the call:")
shim_in = dict(re.findall(r"(min|max|mean)=(\S+)", inputs.split("arg[1]:")[-1]))
shim_out = dict(re.findall(r"(min|max|mean)=(\S+)", after.split("arg[0] (after):")[-1].split("arg[1]")[0]))
check(shim_in == torch.get("in"), f"device statistics of the input equal torch's: {shim_in} vs {torch.get('in')}")
check(shim_out == torch.get("out"), f"device statistics of the output equal torch's: {shim_out} vs {torch.get('out')}")
captured = records[1] if len(records) > 1 else ""
check(captured.count("[statistics skipped: CUDA graph capture in progress]") == 4, "captured call: 4 skip lines")
check("statistics error" not in log, "no statistics error")
print("gpu-check level 5:", "FAILED" if fail else "all checks passed")
sys.exit(1 if fail else 0)
PY

# Level 10 (issue 9): the same program dumps every tensor; the eager call is replayed on the device.
dumps="$work/dumps"
FLASHLOG_LEVEL=10 FLASHLOG_DEST=/dev/null FLASHLOG_DUMP_DIR="$dumps" LD_PRELOAD="$lib" \
  python3 scripts/gpu-check/check.py "$work/flashinfer/gpucheck/gpucheck.so" >/dev/null
PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" python3 - "$dumps" <<'PY'
import json, sys, subprocess
from pathlib import Path
import numpy as np
from flashlog.replay import read_safetensors
calls = sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir())
fail = []
def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
    ok or fail.append(what)
check(len(calls) == 2, f"two scale2 calls dumped (found {len(calls)})")
eager, captured = calls[0], calls[-1]
l1 = [json.loads(l) for l in (eager / "metadata.jsonl").read_text().splitlines()]
check([l["execution_status"] for l in l1] == ["inputs_saved", "completed"], "eager call: both lines")
check(l1[0]["arguments"][1]["device"] == "cuda:0", "tensors recorded on cuda:0")
x = np.arange(1, 4097, dtype=np.float32) / 64
i, o = read_safetensors(eager / "inputs.safetensors"), read_safetensors(eager / "outputs.safetensors")
check(i["arg_1"][2] == x.tobytes(), "device input dumped with the right bytes")
check(o["arg_0"][2] == (2 * x).tobytes(), "device output dumped with the right bytes")
c1 = json.loads((captured / "metadata.jsonl").read_text().splitlines()[0])
check(all(a["dumped"] is False for a in c1["arguments"][:2]) and c1["graph_capture"], "captured call: nothing copied")
r = subprocess.run([sys.executable, "-m", "flashlog", "replay", str(eager)], capture_output=True, text=True)
print(r.stdout, end="")
check(r.returncode == 0 and ": identical" in r.stdout, "replay of the eager call on the device: identical")
print("gpu-check level 10:", "FAILED" if fail else "all checks passed")
sys.exit(1 if fail else 0)
PY

# ---- issue 10: statistics at graph replay, and the NaN watch
for mode in all watch; do
  glog="$work/graph-$mode.log"
  watch=""
  [ "$mode" = watch ] && watch=nonfinite
  FLASHLOG_LEVEL=5 FLASHLOG_DEST="$glog" FLASHLOG_GRAPH_STATS=1 FLASHLOG_WATCH="$watch" LD_PRELOAD="$lib" \
    python3 scripts/gpu-check/graph_stats.py "$work/flashinfer/gpucheck/gpucheck.so" | tee "$work/graph-$mode.txt"
  python3 - "$glog" "$work/graph-$mode.txt" "$mode" <<'PY'
import re, sys
log, out, mode = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
fail = []
def check(ok, what):
    print(("PASS " if ok else "FAIL ") + f"[{mode}] " + what)
    ok or fail.append(what)
check("CHECK replays_ok=True" in out, "the graph replays correctly three times")
torch = {(int(k), n): dict(re.findall(r"(min|max|mean|nan_count)=(\S+)", rest))
         for k, n, rest in re.findall(r"TORCH replay=(\d) (in|out) (.*)", out)}
recs = {}
for rec in log.split("=" * 80 + "\n["):
    m = re.search(r"FlashInfer Graph Replay: gpucheck\.scale2 \(id=\d+, replay (\d+)\)", rec)
    if m:
        before, _, after = rec.partition("Tensor arguments after the call:")
        recs[int(m[1])] = (before.split("arg[1]:")[-1], after.split("arg[0] (after):")[-1].split("arg[1]")[0])
want = [2] if mode == "watch" else [1, 2, 3]
check(sorted(recs) == want, f"replay records {sorted(recs)} (want {want})")
for k in want:
    if k not in recs:
        continue
    shim_in = dict(re.findall(r"(min|max|mean|nan_count)=(\S+)", recs[k][0]))
    shim_out = dict(re.findall(r"(min|max|mean|nan_count)=(\S+)", recs[k][1]))
    check(shim_in == torch[(k, "in")], f"replay {k} input: {shim_in} vs torch {torch[(k, 'in')]}")
    check(shim_out == torch[(k, "out")], f"replay {k} output: {shim_out} vs torch {torch[(k, 'out')]}")
check("[statistics deferred to graph replay: id=" in log or mode == "watch", "the captured call's deferred lines")
check("Statistics: GPU kernel (" in log, "replays use the library's kernel (issue 20), replays with new data above")
check("statistics error" not in log and "statistics skipped" not in log, "no error or skip line")
if mode == "watch":
    check(re.search(r"flashlog watch: \d+ calls and 3 graph replays checked, 1 with NaN or Inf", log) is not None,
          "the watch's line at exit")
print(f"gpu-check graph stats [{mode}]:", "FAILED" if fail else "all checks passed")
sys.exit(1 if fail else 0)
PY
done

# ---- issue 21: FLASHLOG_SYNC=1 names the call of a real kernel fault (an out-of-bounds write), eagerly and inside
# a graph replay, each in a child process of its own (a fault ends the CUDA context); the child must fail (torch
# raises), the log must name the call, and `flashlog summary` must name it too and exit 1.
launcher=target/release/flashlog
[ -x "$launcher" ] || cargo build --release --locked
for mode in eager graph; do
  flog="$work/fault-$mode.log"
  set +e
  FLASHLOG_LEVEL=3 FLASHLOG_DEST="$flog" FLASHLOG_SYNC=1 FLASHLOG_GRAPH_MARKERS=1 LD_PRELOAD="$lib" \
    python3 scripts/gpu-check/fault.py "$work/flashinfer/gpucheck/gpucheck.so" "$mode" >"$work/fault-$mode.txt" 2>&1
  child=$?
  "$launcher" summary "$flog" >"$work/fault-$mode.summary" 2>&1
  summary=$?
  set -e
  python3 - "$flog" "$work/fault-$mode.txt" "$work/fault-$mode.summary" "$mode" "$child" "$summary" <<'PY'
import re, sys
mode = sys.argv[4]
log, out, summ = (open(p).read() for p in sys.argv[1:4])
child, summary = int(sys.argv[5]), int(sys.argv[6])
fail = []
def check(ok, what):
    print(("PASS " if ok else "FAIL ") + f"[fault {mode}] " + what)
    ok or fail.append(what)
err = "CUDA_ERROR_ILLEGAL_ADDRESS (700)"
check(child != 0 and "UNEXPECTED" not in out, f"the child failed as the host would (exit {child})")
if mode == "eager":
    rec = log.split("FlashInfer API Call: gpucheck.write_at")[-1]
    check(f"[CUDA error after this call: {err}]" in rec.split("FlashInfer API Call:")[0], "write_at's outputs record has the after line")
    check(f"[CUDA error before this call: {err}, from earlier work]" in rec, "the next call has the before line")
    check(re.search(rf"first CUDA error: \S+:\d+ {re.escape(err)} after call gpucheck\.write_at", summ) is not None, "summary blames write_at")
else:
    check("REPLAY 2 ok" in out and "REPLAY 3 ok" not in out, "replays 1 and 2 ran, replay 3 faulted")
    check(re.search(r"FlashInfer Graph Replay Error: graph id=\d+, replay 3", log) is not None, "a replay error record for replay 3")
    check("first not completed: gpucheck.write_at" in log, "markers: write_at is the first call not completed")
    check("last completed: gpucheck.scale2" in log, "markers: the third scale2 completed")
    check(re.search(r"first CUDA error: .* in graph id=\d+, replay 3 \(.*first not completed: gpucheck\.write_at", summ) is not None, "summary names the replay")
check(summary == 1, f"summary exits 1 (got {summary})")
print(f"gpu-check fault [{mode}]:", "FAILED" if fail else "all checks passed")
sys.exit(1 if fail else 0)
PY
done

# ---- issue 20: statistics computed by the library's own kernel. The emulation the fake driver runs (same header),
# built here as a host library; the kernel's partials must equal it bit for bit, the lines torch's numbers; then
# bandwidth next to a device-to-device copy, 1,000 small tensors, and the first PTX load (JIT cache off).
gcc -O2 -shared -fPIC -I src/gpu -o "$work/emulate.so" scripts/gpu-check/emulate.c
slog="$work/gpu-stats.log"
CUDA_CACHE_DISABLE=1 FLASHLOG_LEVEL=5 FLASHLOG_DEST="$slog" LD_PRELOAD="$lib" \
  python3 scripts/gpu-check/gpu_stats.py "$work/flashinfer/gpucheck/gpucheck.so" "$work/emulate.so" \
  src/gpu/stats_kernel.ptx "$slog" | tee "$work/gpu-stats.txt"
python3 - "$work/gpu-stats.txt" <<'PY'
import sys
rows = [l.rstrip("\n").split("|")[1:] for l in open(sys.argv[1]) if l.startswith("TABLE|")]
if rows:
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
PY
