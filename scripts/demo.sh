#!/usr/bin/env bash
# `make demo`: run a small program that loads FlashInfer-shaped modules the way tvm_ffi does (a batch-decode
# plan and run, a call that fails with an error object) under the shim at level 3, then show the log.
set -euo pipefail
lib=$(realpath "$1")
fixdir=$(realpath "$2")
modules="$fixdir/cache/flashinfer/0.6.0/90a/cached_ops"
out=target/demo
rm -rf "$out" && mkdir -p "$out"
echo "\$ FLASHINFER_LOGLEVEL=3 FLASHINFER_LOGDEST='$out/flashlog_%i.log' LD_PRELOAD=$lib tvm_driver plan ..."
FLASHINFER_LOGLEVEL=3 FLASHINFER_LOGDEST="$out/flashlog_%i.log" LD_PRELOAD="$lib" "$fixdir/tvm_driver" plan "$modules"
FLASHINFER_LOGLEVEL=3 FLASHINFER_LOGDEST="$out/flashlog_%i.log" LD_PRELOAD="$lib" "$fixdir/tvm_driver" errors "$modules"
for log in "$out"/flashlog_*.log; do
  echo
  echo "---- $log"
  cat "$log"
done
