"""Records this folder's logs with FlashInfer 0.7.4's own Python logger (run by hand, once; see README.md).

usage: python record.py python|python-clean|both|both-clean MODULE_DIR

The logger is FlashInfer's real one (`flashinfer.api_logging.flashinfer_api`, configured by FLASHINFER_LOGLEVEL
and FLASHINFER_LOGDEST as FlashInfer reads them at import). On a machine without a GPU few FlashInfer APIs run,
so the calls are the real `flashinfer.rmsnorm` (which raises there: a real raised exception), and small
functions of this script decorated with the real `flashinfer_api`, some calling the fixture module norm.so
through the real `tvm_ffi` loader (the shim logs those calls, when preloaded). `crash` aborts the process inside
a decorated call (in the C module testops.crash when the shim's fixtures are used), like a CUDA fault does.
"""

import sys

import flashinfer
import torch
import tvm_ffi
from flashinfer.api_logging import flashinfer_api

scenario, module_dir = sys.argv[1], sys.argv[2]
norm = tvm_ffi.load_module(f"{module_dir}/norm/norm.so")
testops = tvm_ffi.load_module(f"{module_dir}/testops/testops.so")


@flashinfer_api
def normalize_rows(x, eps=1e-6, *, scale=None):
    """Rows divided by their norm: a zero row with eps=0 gives NaN (0/0) in the output only."""
    y = x / (x.norm(dim=-1, keepdim=True) + eps)
    return y if scale is None else y * scale


@flashinfer_api
def rmsnorm_module(x, weight, eps=1e-6, enable_pdl=False):
    """rmsnorm through the fixture module (a FlashInfer-shaped TVM-FFI module), like FlashInfer's own wrapper."""
    out = torch.empty_like(x)
    norm.rmsnorm(out, x, weight, eps, enable_pdl)
    return out


@flashinfer_api
def crash_in_module(x):
    """Aborts the process inside the C call, as a CUDA fault would."""
    testops.crash(x.shape[0])


x = torch.arange(4 * 16, dtype=torch.float32).reshape(4, 16) / 10.0
w = torch.ones(16, dtype=torch.float32)
zero_row = x.clone()
zero_row[2] = 0.0

normalize_rows(x)
try:
    flashinfer.rmsnorm(x, w)  # real FlashInfer API; raises without a GPU: nothing is logged after the inputs
except Exception as e:  # noqa: BLE001
    print("raised", type(e).__name__, file=sys.stderr)
if scenario.startswith("both"):
    rmsnorm_module(x, w)
    try:
        rmsnorm_module(x, w, eps="bad")  # the module raises TypeError: the shim logs "Call failed", Python nothing
    except Exception as e:  # noqa: BLE001
        print("raised", type(e).__name__, file=sys.stderr)
if not scenario.endswith("clean"):
    normalize_rows(zero_row, eps=0.0, scale=2.0)  # keyword arguments; a NaN in the output only
normalize_rows(x, 1e-3)
if scenario.startswith("both"):
    rmsnorm_module(x, w)
if not scenario.endswith("clean"):
    crash_in_module(x)
print("done", file=sys.stderr)
