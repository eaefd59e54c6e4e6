#!/usr/bin/env bash
# `make test-flashinfer`: real FlashInfer modules, JIT-built here without a GPU, under the shim (issue 5).
# Downloads several GB on first use (scripts/flashinfer-env.sh); later runs reuse the environment and the builds.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS
eval "$(bash scripts/flashinfer-env.sh)"
out=target/flashinfer
mkdir -p "$out"
echo "building FlashInfer modules (about a minute each the first time)..." >&2
(cd "$out" && "$FLASHINFER_PYTHON" "$OLDPWD/tests/flashinfer/build_modules.py") | tee "$out/modules.txt"
FI_MODULES="$PWD/$out/modules.txt" "$FLASHINFER_PYTHON" -m pytest -q tests/flashinfer
echo "test-flashinfer: $((SECONDS - start)) s"
