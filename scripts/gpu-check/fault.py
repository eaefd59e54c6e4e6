"""Run by scripts/gpu-check.sh under LD_PRELOAD=libflashlog.so with FLASHLOG_SYNC=1, each mode in a process of its
own (a fault ends the CUDA context): a real kernel's out-of-bounds write (an illegal address, 700) in the second of
three eager calls (`eager`), or in the fourth of five calls captured with torch.cuda.graph, at the third replay
(`graph`: the write's index is data, safe until replay 3). The process ends with the exception torch raises; the
shell script reads the log."""
import sys

import torch
import tvm_ffi

mod = tvm_ffi.load_module(sys.argv[1])
mode = sys.argv[2]
x = torch.arange(1, 4097, dtype=torch.float32, device="cuda") / 64
out = torch.zeros_like(x)
bad = torch.tensor([1 << 37], dtype=torch.int64, device="cuda")  # 512 GiB past `out`
safe = torch.zeros(1, dtype=torch.int64, device="cuda")
if mode == "eager":
    mod.scale2(out, x)
    mod.write_at(out, bad)
    mod.scale2(out, x)
    torch.cuda.synchronize()
else:
    idx = safe.clone()
    mod.scale2(out, x)  # the module's kernels load outside the capture
    torch.cuda.synchronize()
    a, b, c = torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        mod.scale2(a, x)
        mod.scale2(b, a)
        mod.scale2(c, b)
        mod.write_at(c, idx)
        mod.scale2(out, c)
    for replay in (1, 2, 3):
        idx.copy_(bad if replay == 3 else safe)
        g.replay()
        torch.cuda.synchronize()
        print(f"REPLAY {replay} ok", flush=True)
print("UNEXPECTED: no fault", flush=True)
