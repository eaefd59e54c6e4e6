"""Run by scripts/gpu-check.sh under LD_PRELOAD=libflashlog.so at level 5: one eager call, then the same call
captured in a CUDA graph and replayed. Prints CHECK lines; the shell script reads the log and checks it."""
import sys

import torch
import tvm_ffi

mod = tvm_ffi.load_module(sys.argv[1])
x = torch.arange(1, 4097, dtype=torch.float32, device="cuda") / 64
out = torch.zeros_like(x)
mod.scale2(out, x)  # eager: statistics of device tensors through the driver
torch.cuda.synchronize()
print(f"CHECK eager_ok={bool(torch.equal(out, 2 * x))}")
print(f"TORCH in min={x.min().item():.6f} max={x.max().item():.6f} mean={x.mean().item():.6f}")
print(f"TORCH out min={out.min().item():.6f} max={out.max().item():.6f} mean={out.mean().item():.6f}")

static_in = torch.zeros_like(x)
static_out = torch.zeros_like(x)
g = torch.cuda.CUDAGraph()
with torch.cuda.graph(g):  # capture: the shim must skip statistics and not break the capture
    mod.scale2(static_out, static_in)
static_in.copy_(x * 3)
g.replay()
torch.cuda.synchronize()
print(f"CHECK replay_ok={bool(torch.equal(static_out, 6 * x))}")
