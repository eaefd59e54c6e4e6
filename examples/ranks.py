"""One rank of a multi-rank run (torchrun --nproc_per_node=2 examples/ranks.py MODULE_DIR): each rank joins a
gloo process group, calls a FlashInfer-shaped fixture module through the real tvm_ffi loader, and rank 1
feeds it a NaN, so `flashlog summary` has something to find."""

import os
import sys

import numpy as np
import torch.distributed as dist
import tvm_ffi

dist.init_process_group("gloo")
rank = dist.get_rank()
norm = tvm_ffi.load_module(f"{sys.argv[1]}/norm/norm.so")
x = np.linspace(-1.0, 1.0, 32, dtype=np.float32).reshape(4, 8)
if rank == 1:
    x[1, 2] = np.nan
w = np.ones(8, dtype=np.float32)
out = np.zeros_like(x)
norm.rmsnorm(tvm_ffi.from_dlpack(out), tvm_ffi.from_dlpack(x), tvm_ffi.from_dlpack(w), 1e-6, False)
dist.barrier()
print(f"rank {rank} of {dist.get_world_size()} (local {os.environ['LOCAL_RANK']}): done")
dist.destroy_process_group()
