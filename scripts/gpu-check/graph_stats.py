"""Run by scripts/gpu-check.sh under LD_PRELOAD=libflashlog.so at level 5 with FLASHLOG_GRAPH_STATS=1: scale2
captured once in torch.cuda.graph, replayed three times with new data copied in between (a NaN in the second
replay's input). Prints torch's own statistics of each replay's tensors; the shell script compares them with the
shim's replay records."""
import sys

import torch
import tvm_ffi


def fmt(t):
    return (f"min={t.min().item():.6f} max={t.max().item():.6f} mean={t.mean().item():.6f} "
            f"nan_count={int(torch.isnan(t).sum().item())}")


mod = tvm_ffi.load_module(sys.argv[1])
# Multiples of 1/4 below 16: every partial sum is exact in float32, so torch's mean and the shim's agree exactly.
x = (torch.arange(1, 4097, device="cuda") % 64).to(torch.float32) / 4
static_in = torch.zeros_like(x)
static_out = torch.zeros_like(x)
mod.scale2(static_out, static_in)  # eager first: the module loads outside the capture
torch.cuda.synchronize()
g = torch.cuda.CUDAGraph()
with torch.cuda.graph(g):  # the shim adds copies and host functions; the capture must stay valid
    mod.scale2(static_out, static_in)
ok = True
for k in (1, 2, 3):
    data = x * k
    if k == 2:
        data[7] = float("nan")
    static_in.copy_(data)
    static_out.zero_()
    g.replay()
    torch.cuda.synchronize()
    ok &= bool(torch.equal(static_out[~torch.isnan(data)], 2 * data[~torch.isnan(data)]))
    print(f"TORCH replay={k} in {fmt(static_in)}")
    print(f"TORCH replay={k} out {fmt(static_out)}")
print(f"CHECK replays_ok={ok}")
