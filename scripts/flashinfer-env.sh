#!/usr/bin/env bash
# Creates, once, a Python virtual environment with real FlashInfer, PyTorch and a CUDA compiler taken from the
# Python package registry, lays those packages out as a CUDA toolkit (CUDA_HOME), and prints the variables to use:
#
#     eval "$(scripts/flashinfer-env.sh)"
#
# No GPU is needed: FlashInfer's JIT compiles its real modules (norm.so, sampling.so, ...) with nvcc for sm_90a,
# and those modules load and run on the CPU up to the point where they check that their tensors live on a GPU.
# Everything but the `export` line goes to stderr. A second run reuses the environment (seconds). Remove the
# folder, or change a pin below, to build it anew.
#
# The script only ever installs into a folder it created itself (it leaves a `.flashlog-env` marker there): pointed
# at any other existing environment, it lists what it would install and stops, changing nothing. The exported
# variables leave CUDA_HOME out of the shell (cargo build scripts such as cudarc's rebuild whenever CUDA_HOME
# changes): `$FLASHINFER_PYTHON` is a small wrapper that sets CUDA_HOME for the Python it runs.
#
# Figures on this project's 2-core machine: the first run took 2 min 28 s (148 s of pip install, 64 packages);
# the environment takes about 7.4 GB on disk (downloads about 5 GB); a later run takes about a second.
#
# Variables: FLASHINFER_ENV_DIR (default: <repo>/.flashinfer-env), PYTHON (default: python3, 3.10 or later).
set -euo pipefail

# ---- pinned versions: the one place -------------------------------------------------------------------------
# torch 2.15.0's Linux wheel is built with CUDA 13.2 (it depends on nvidia-cuda-runtime 13.2.86), so the compiler
# packages are pinned to CUDA 13.2 too: a newer nvidia-nvvm emits PTX that the older ptxas rejects, and CCCL
# headers newer than nvcc are not supported by it. The registry has no CPU-only torch wheel for Linux x86-64
# (those live on PyTorch's own index), so this is the default CUDA wheel. FlashInfer's other dependencies are
# installed as it declares them.
CUDA_PKG_VERSION=13.2.86
PINS=(
  "torch==2.15.0"
  "flashinfer-python==0.7.4"
  "apache-tvm-ffi==0.1.15.post2"
  "nvidia-cuda-nvcc==${CUDA_PKG_VERSION}"
  "nvidia-nvvm==${CUDA_PKG_VERSION}"
  "nvidia-cuda-crt==${CUDA_PKG_VERSION}"
  "nvidia-cuda-runtime==${CUDA_PKG_VERSION}"
  "nvidia-cuda-cccl==${CUDA_PKG_VERSION}"
  "nvidia-curand==10.4.2.66"
  "ninja==1.13.2"
  "numpy==2.4.6"
  "pytest==9.2.0"
)
ARCH_LIST=9.0a
# ----------------------------------------------------------------------------------------------------------------

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENV_DIR=${FLASHINFER_ENV_DIR:-$REPO/.flashinfer-env}
PYTHON=${PYTHON:-python3}
say() { echo "flashinfer-env: $*" >&2; }
die() { say "error: $*"; exit 1; }

STAMP="$ENV_DIR/.installed"
MARKER="$ENV_DIR/.flashlog-env"
WANT="$(printf '%s\n' "${PINS[@]}")"
VPY="$ENV_DIR/bin/python"

install_env() {
  local t0=$SECONDS probe
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON to a Python 3.10+ interpreter)"
  "$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
    || die "$PYTHON is not Python 3.10+ with the venv module"
  # One small download first, so that an unreachable registry gives one clear line, not a pip traceback.
  probe=$(mktemp -d)
  if ! "$PYTHON" -m pip download --quiet --no-deps --no-cache-dir --timeout 30 --retries 1 \
      --only-binary :all: -d "$probe" "ninja==1.13.2" >/dev/null 2>"$probe/err"; then
    rm -rf "$probe"
    die "cannot reach the Python package registry (pip could not download ninja==1.13.2); check the network or the pip index settings"
  fi
  rm -rf "$probe"
  df -h "$(dirname "$ENV_DIR")" >&2 || true
  say "creating $ENV_DIR (downloads about 5 GB; several minutes)"
  rm -f "$STAMP"
  [ -x "$VPY" ] || "$PYTHON" -m venv "$ENV_DIR"
  touch "$MARKER"
  "$VPY" -m pip install --quiet --upgrade pip >&2 || die "pip upgrade failed"
  "$VPY" -m pip install --progress-bar off "${PINS[@]}" >&2 \
    || die "pip install failed (see above); is the package registry reachable?"
  printf '%s\n' "$WANT" >"$STAMP"
  say "packages installed in $((SECONDS - t0)) s"
}

if [ -e "$ENV_DIR" ] && [ ! -f "$MARKER" ] && [ ! -f "$STAMP" ]; then
  say "$ENV_DIR exists and was not created by this script; it is left unchanged."
  say "to use it, install these pins into it yourself (or point FLASHINFER_ENV_DIR at a new folder):"
  printf '  %s\n' "${PINS[@]}" >&2
  exit 1
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] || [ ! -x "$VPY" ]; then
  install_env
else
  say "reusing $ENV_DIR"
fi

# ---- CUDA_HOME: the registry's CUDA packages laid out as a toolkit ---------------------------------------------
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
CU="$SITE/nvidia/cu13"
[ -x "$CU/bin/nvcc" ] || die "nvcc not found under $CU (nvidia-cuda-nvcc ${CUDA_PKG_VERSION})"
CUDA_HOME="$ENV_DIR/cuda_home"
mkdir -p "$CUDA_HOME/lib64/stubs"
for d in bin include nvvm lib; do ln -sfn "$CU/$d" "$CUDA_HOME/$d"; done
for f in "$CU"/lib/*.so*; do ln -sfn "$f" "$CUDA_HOME/lib64/$(basename "$f")"; done
ln -sfn "$CU/lib/libcudart.so.13" "$CUDA_HOME/lib64/libcudart.so"
# Linking needs a libcuda.so; the fake driver of the test fixtures serves (nothing here runs on a GPU).
STUB="$REPO/target/fixtures/cuda/libcuda.so.1"
[ -f "$STUB" ] || make -C "$REPO" -s cuda-fixtures >&2 || die "could not build the fake libcuda for lib64/stubs"
ln -sfn "$STUB" "$CUDA_HOME/lib64/stubs/libcuda.so"

# The Python to run FlashInfer with: the environment's interpreter with CUDA_HOME set for it alone.
FIPY="$ENV_DIR/flashinfer-python"
printf '#!/bin/sh\nCUDA_HOME=%s exec %s "$@"\n' "'$CUDA_HOME'" "'$VPY'" >"$FIPY"
chmod +x "$FIPY"
echo "export PATH='$CUDA_HOME/bin:$ENV_DIR/bin':\"\$PATH\" FLASHINFER_CUDA_ARCH_LIST=$ARCH_LIST" \
  "FLASHINFER_WORKSPACE_BASE='$ENV_DIR/workspace' FLASHINFER_PYTHON='$FIPY'"
