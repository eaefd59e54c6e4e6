"""Run by test_python_loader.py (not a test itself): loads fixture modules with the real tvm_ffi loader and
calls them with numpy arrays and Python values, printing everything it observes, so the output can be compared
with and without the shim."""

import sys

import numpy as np
import tvm_ffi

module_dir = sys.argv[1]
norm = tvm_ffi.load_module(f"{module_dir}/norm/norm.so")
testops = tvm_ffi.load_module(f"{module_dir}/testops/testops.so")

x = np.arange(4 * 128, dtype=np.float32).reshape(4, 128) / 100.0
w = np.ones(128, dtype=np.float32)
out = np.zeros_like(x)
print("rmsnorm ->", norm.rmsnorm(tvm_ffi.from_dlpack(out), tvm_ffi.from_dlpack(x), tvm_ffi.from_dlpack(w), 1e-6, False))
print("out[0, :3] =", out[0, :3].tolist())

strided = x[:, ::2]
zero_d = np.array(3.5, dtype=np.float32)
values = [tvm_ffi.from_dlpack(strided), tvm_ffi.from_dlpack(zero_d), tvm_ffi.from_dlpack(x.T), 7, -2, 2.5, 1e-6,
          True, False, "HND", "a longer string value", None, [1, 2, 3], [tvm_ffi.from_dlpack(zero_d), "s"], b"xy"]
print("touch_all ->", testops.touch_all(*values))
for v in (7, 2.5, True, None):
    print("echo", repr(v), "->", repr(testops.echo(v)))
try:
    testops.fail_with_error()
except Exception as e:  # noqa: BLE001 - the exact type is what we check
    print("raised", type(e).__name__, str(e).splitlines()[0])
