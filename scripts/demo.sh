#!/usr/bin/env bash
# `make demo`: flashlog on small real programs, each step with one line saying what it shows. The host
# programs are the test fixtures: FlashInfer-shaped TVM-FFI modules loaded by the real tvm_ffi loader from
# Python, and C programs driving a fake CUDA driver (no GPU needed). Logs are left in target/demo/.
set -euo pipefail
bin=$(realpath "$1")
fixdir=$(realpath "$2")
py="$(cd "$(dirname "$3")" && pwd)/$(basename "$3")"  # not resolved: the venv's python is a symlink
modules="$fixdir/cache/flashinfer/0.6.0/90a/cached_ops"
out=target/demo
rm -rf "$out" && mkdir -p "$out"
program="scripts/demo/program.py"
unset FLASHINFER_LOGLEVEL FLASHINFER_LOGDEST FLASHLOG_LEVEL FLASHLOG_DEST LD_PRELOAD

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. Level 1: one line per FlashInfer call, written before the call (the program's own output is untouched)"
show "$bin" -l 1 -o "$out/level1.log" -- "$py" "$program" "$modules"
cat "$out/level1.log" | grep -v -e '^=' -e '^$' | grep 'API Call'

step "2. Level 3: each call's inputs before it runs, its outputs after (here: norm.rmsnorm writes 'out' in place)"
show "$bin" -l 3 -o "$out/level3.log" -- "$py" "$program" "$modules" >/dev/null
awk '!f && /API Call: norm.rmsnorm/{f=1} f{print} f && /^Output value:/{o=1} o && /^=+$/{exit}' "$out/level3.log"

step "3. Level 5: statistics of every tensor, before and after the call; the second call gets a NaN"
show "$bin" -l 5 -o "$out/level5.log" -- "$py" "$program" "$modules" --nan >/dev/null
awk '/API Call: norm.rmsnorm/{n++} n==2' "$out/level5.log" |
  awk '/API Call|after the call/{print} /^  arg\[/{a=$0; if (a ~ /arg\[[01]\]/) print} /nan_count/ && a ~ /arg\[[01]\]/{print}' | head -12

step "4. flashlog summary: which call first saw a NaN, in an input or an output (exit status 1: something was found)"
set +e
"$bin" summary "$out/level5.log"
echo "(summary exit status: $?)"
set -e

step "5. A CUDA graph capture: statistics are skipped while it runs, so the capture is never broken"
FLASHINFER_MODULE="$modules/cudaops/cudaops.so" \
  "$bin" -l 5 -o "$out/capture.log" -- "$fixdir/cuda/capture_plt" | tail -1
grep -m1 -B6 'statistics skipped: CUDA graph capture in progress' "$out/capture.log" || true

step "6. Kernel launches: one record per launch of a kernel whose demangled name matches FLASHLOG_KERNELS"
"$bin" -l 3 -o "$out/launch.log" -- "$fixdir/cuda/launch_driver" >/dev/null
grep -m1 -A4 'Kernel Launch' "$out/launch.log"

printf '\nLogs are in %s/. Next: README.md, "Recipes".\n' "$out"
