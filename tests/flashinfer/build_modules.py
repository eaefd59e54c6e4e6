"""Builds FlashInfer's real JIT modules norm, sampling, page, rope and one batch_decode module (nvcc for sm_90a;
no GPU needed) and prints `<name> <path of the .so> <seconds>` for each. Run with the environment of
scripts/flashinfer-env.sh. First builds on the project's 2-core machine: norm 52 s, sampling 142 s, page 23 s,
rope 63 s, batch_decode (f16, head_dim 128) 42 s; later runs load the cached .so files in seconds."""

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
    # One batch_decode module: fp16 q/kv/o, int32 indices, head_dim 128, no RoPE in the kernel, no sliding window,
    # no logits soft cap (what flashinfer.BatchDecodeWithPagedKVCacheWrapper builds for a Llama-shaped model).
    import torch
    from flashinfer.jit.attention.modules import gen_batch_decode_module

    t0 = time.monotonic()
    spec = gen_batch_decode_module(torch.float16, torch.float16, torch.float16, torch.int32, 128, 128, 0, False, False)
    spec.build_and_load()
    found = sorted(base.rglob(f"cached_ops/{spec.name}/{spec.name}.so"))
    if not found:
        sys.exit(f"build_modules: {spec.name}.so not found under {base}")
    print("batch_decode", found[-1], f"{time.monotonic() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
