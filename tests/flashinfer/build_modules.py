"""Builds FlashInfer's real JIT modules norm, sampling, page and rope (nvcc for sm_90a; no GPU needed) and
prints `<name> <path of the .so>` for each. Run with the environment of scripts/flashinfer-env.sh."""

import importlib
import os
import sys
import time
from pathlib import Path

MODULES = {"norm": "flashinfer.norm", "sampling": "flashinfer.sampling", "page": "flashinfer.page",
           "rope": "flashinfer.rope"}


def main():
    base = Path(os.environ["FLASHINFER_WORKSPACE_BASE"])
    for name, pkg in MODULES.items():
        t0 = time.monotonic()
        getattr(importlib.import_module(pkg), f"get_{name}_module")()
        found = sorted(base.rglob(f"cached_ops/{name}/{name}.so"))
        if not found:
            sys.exit(f"build_modules: {name}.so not found under {base}")
        print(name, found[-1], f"{time.monotonic() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
