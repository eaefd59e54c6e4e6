"""The demo's host program: loads two FlashInfer-shaped fixture modules with the real tvm_ffi loader, as
FlashInfer's Python code does, and calls them with numpy arrays. With `--nan` the second rmsnorm call gets an
input holding a NaN."""

import sys

import numpy as np
import tvm_ffi

module_dir = sys.argv[1]
norm = tvm_ffi.load_module(f"{module_dir}/norm/norm.so")
testops = tvm_ffi.load_module(f"{module_dir}/testops/testops.so")

x = np.linspace(-1.0, 1.0, 4 * 8, dtype=np.float32).reshape(4, 8)
w = np.ones(8, dtype=np.float32)
for step in range(2):
    if step == 1 and "--nan" in sys.argv:
        x[2, 3] = np.nan
    out = np.zeros_like(x)
    norm.rmsnorm(tvm_ffi.from_dlpack(out), tvm_ffi.from_dlpack(x), tvm_ffi.from_dlpack(w), 1e-6, False)
    print(f"step {step}: out[0, :2] = {out[0, :2].tolist()}")
print("echo ->", testops.echo(7))
