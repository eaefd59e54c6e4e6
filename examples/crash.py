"""A program whose third FlashInfer-shaped call aborts inside the kernel (the README's crash and replay recipes):
it loads two fixture modules with the real tvm_ffi loader, as FlashInfer's Python code does, runs an rmsnorm,
a call that raises, and a scale whose negative factor makes the kernel abort (SIGABRT, exit status 134).
Run: python examples/crash.py target/fixtures/cache/flashinfer/0.6.0/90a/cached_ops"""

import sys

import numpy as np
import tvm_ffi

modules = sys.argv[1]
norm = tvm_ffi.load_module(f"{modules}/norm/norm.so")
ops = tvm_ffi.load_module(f"{modules}/dumpops/dumpops.so")
x = np.arange(4 * 128, dtype=np.float32).reshape(4, 128) / 100
w, out = np.ones(128, np.float32), np.zeros((4, 128), np.float32)
norm.rmsnorm(tvm_ffi.from_dlpack(out), tvm_ffi.from_dlpack(x), tvm_ffi.from_dlpack(w), 1e-6, False)
try:
    ops.fail_checked(tvm_ffi.from_dlpack(x))
except RuntimeError as e:
    print("caught:", e, flush=True)
ops.scale(tvm_ffi.from_dlpack(out), tvm_ffi.from_dlpack(x), -1.0)  # aborts inside the kernel
print("not reached")
