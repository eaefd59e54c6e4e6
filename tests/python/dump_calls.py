"""Run by test_dump_replay.py (not a test itself): calls the dump fixtures through the real tvm_ffi loader with
numpy arrays (contiguous, transposed, strided, offset, 0-d, empty, inside arrays, every dtype), prints what it
observes, and saves the logical bytes of every tensor argument before and after each call to an .npz file, so
the test can compare the dumped files with the host's own data.

usage: dump_calls.py MODULE_DIR EXPECTED.npz main|crash"""

import sys

import numpy as np
import tvm_ffi

from flashlog.replay import Tensor

module_dir, expected_path, mode = sys.argv[1:4]
norm = tvm_ffi.load_module(f"{module_dir}/norm/norm.so")
ops = tvm_ffi.load_module(f"{module_dir}/dumpops/dumpops.so")
saved = {}


def logical(a):
    if isinstance(a, Tensor):
        return np.frombuffer(a.logical_bytes(), dtype=np.uint8)
    return np.frombuffer(np.ascontiguousarray(a).tobytes(), dtype=np.uint8)


def call(index, fn, tensors, *args):
    """Calls fn(*args), saving the logical bytes of `tensors` ({key: array}) before and after."""
    for key, a in tensors.items():
        saved[f"c{index}_in_{key}"] = logical(a).copy()
    try:
        r = fn(*args)
    except Exception as e:  # noqa: BLE001 - the error is part of what the host observes
        r = f"raised {type(e).__name__}: {e}"
    for key, a in tensors.items():
        saved[f"c{index}_out_{key}"] = logical(a).copy()
    print(index, fn, "->", r, flush=True)
    return r


T = tvm_ffi.from_dlpack
x = np.arange(4 * 128, dtype=np.float32).reshape(4, 128) / 100.0
w = np.linspace(0.5, 1.5, 128, dtype=np.float32)

if mode == "crash":
    o = np.ones((2, 2), np.float32)
    print("calling scale with a negative factor", flush=True)
    ops.scale(T(o), T(o), -1.0)
    sys.exit(0)

out = np.zeros_like(x)
call(0, norm.rmsnorm, {"arg_0": out, "arg_1": x, "arg_2": w}, T(out), T(x), T(w), 1e-6, False)
o2 = np.zeros((4, 4), np.float32)
call(1, ops.scale, {"arg_0": o2.T, "arg_1": x[:, ::32]}, T(o2.T), T(x[:, ::32]), 2.0)
sub = x[1:3, 5:9]
call(2, ops.pass_through, {"arg_0__3": sub}, [1, 2.5, "s", T(sub)])
call(3, ops.fail_checked, {"arg_0": x}, T(x))
rev, zero_d, empty = w[::-1].copy()[::-1], np.array(2.0, np.float32), np.zeros((0, 3), np.float32)
offset = Tensor({"key": "o", "dlpack_dtype": [2, 32, 1], "shape": [2, 3], "stride": [3, 1], "byte_offset": 12},
                np.arange(6, dtype=np.float32).tobytes(), (1, 0))
neg_rev = w[::-1]
call(4, ops.negate_all, {"arg_0__0": neg_rev, "arg_1": zero_d, "arg_2": empty, "arg_3": offset},
     [T(neg_rev), 3], T(zero_d), T(empty), offset.ffi)
# Every dtype the statistics know, built from random bytes (code, bits, lanes).
dtypes = [(0, 8, 1), (0, 16, 1), (0, 32, 1), (0, 64, 1), (1, 8, 1), (1, 16, 1), (1, 32, 1), (1, 64, 1),
          (2, 16, 1), (2, 32, 1), (2, 64, 1), (4, 16, 1), (6, 8, 1), (7, 8, 1), (8, 8, 1), (9, 8, 1), (10, 8, 1),
          (11, 8, 1), (12, 8, 1), (13, 8, 1), (14, 8, 1), (15, 6, 1), (16, 6, 1), (17, 4, 2)]
rng = np.random.default_rng(7)
typed = {}
for i, (code, bits, lanes) in enumerate(dtypes):
    eb = max(1, bits * lanes // 8)
    data = rng.integers(0, 256, size=3 * 5 * eb, dtype=np.uint8)
    if code == 6:
        data = (data & 1).astype(np.uint8)
    # Transposed storage: the dump must give the logical order back.
    typed[f"arg_{i}"] = Tensor({"key": "t", "dlpack_dtype": [code, bits, lanes], "shape": [3, 5], "stride": [1, 3],
                                "byte_offset": 0}, data.tobytes(), (1, 0))
call(5, ops.negate_all, typed, *[t.ffi for t in typed.values()])
part = x[1:3]
r = call(6, ops.pass_through, {"arg_0": part}, T(part))
saved["c6_out_result"] = logical(np.from_dlpack(r))
np.savez(expected_path, **saved)
print("dtype codes:", [c for c, _, _ in dtypes])
