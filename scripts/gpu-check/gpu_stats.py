"""Run by scripts/gpu-check.sh under LD_PRELOAD=libflashlog.so at level 5 (issue 20): the library's statistics
kernel on a real GPU.

    python3 gpu_stats.py GPUCHECK_SO EMULATE_SO PTX LOG

1. Bit for bit: the kernel launched here (through the driver, as the library launches it) on every kind and five
   views gives partials equal to the fake driver's emulation of the same header code (EMULATE_SO) on the same
   bytes.
2. The library's level-5 lines for device tensors of every torch dtype and five views equal torch's numbers.
3. Bandwidth of the kernel on a large bfloat16 tensor next to a device-to-device copy, in the same run.
4. 1,000 small tensors: the kernel's time for them (44 launches) and the wall time of one level-5 call.
5. The first load of the PTX (run with CUDA_CACHE_DISABLE=1: a JIT compile every time).
Prints CHECK lines and one table (`TABLE|...` lines); exits 1 when a check fails.
"""

import ctypes
import re
import sys
import time

import torch
import tvm_ffi

GPUCHECK, EMULATE, PTX_PATH, LOG = sys.argv[1:5]
THREADS, MAX_TENSORS, MAX_BLOCKS, MIN_PER_BLOCK = 256, 23, 1024, 4096


class Desc(ctypes.Structure):
    _fields_ = [("base", ctypes.c_uint64), ("partials", ctypes.c_uint64), ("n", ctypes.c_uint64),
                ("per_block", ctypes.c_uint64), ("sizes", ctypes.c_uint64 * 8), ("strides", ctypes.c_int64 * 8),
                ("ndim", ctypes.c_uint32), ("kind", ctypes.c_uint32), ("nblocks", ctypes.c_uint32),
                ("fmt", ctypes.c_uint32)]


class Batch(ctypes.Structure):
    _fields_ = [("count", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("d", Desc * MAX_TENSORS)]


PARTIAL = 96
assert ctypes.sizeof(Desc) == 176 and ctypes.sizeof(Batch) == 4056

fails, table = [], []


def check(ok, what):
    print(("CHECK PASS " if ok else "CHECK FAIL ") + what)
    ok or fails.append(what)


def row(what, value, note=""):
    table.append((what, value, note))


# ---- the driver, the kernel
torch.cuda.init()
torch.zeros(1, device="cuda")  # a current context
cu = ctypes.CDLL("libcuda.so.1")
ptx = open(PTX_PATH, "rb").read() + b"\0"
module, function = ctypes.c_void_p(), ctypes.c_void_p()
t0 = time.perf_counter()
rc = cu.cuModuleLoadData(ctypes.byref(module), ptx)
load_ms = (time.perf_counter() - t0) * 1e3
check(rc == 0, f"cuModuleLoadData of the PTX: {rc}")
rc = cu.cuModuleGetFunction(ctypes.byref(function), module, b"flashlog_stats_v1")
check(rc == 0, f"cuModuleGetFunction: {rc}")
row("first PTX load (JIT, CUDA_CACHE_DISABLE=1)", f"{load_ms:.1f} ms", "cuModuleLoadData, this process")
emu = ctypes.CDLL(EMULATE)
check(emu.fl_sizeof_batch() == 4056, "emulation's fl_batch is 4056 bytes")


def cdiv(a, b):
    return -(-a // b)


def plan(n):
    """src/gpu/plan.rs: the fixed split (elements per block, blocks)."""
    per_block = max(1, cdiv(cdiv(n, MAX_BLOCKS), MIN_PER_BLOCK)) * MIN_PER_BLOCK
    return per_block, cdiv(n, per_block)


def desc_for(base, sizes, strides, kind, fmt=0):
    d = Desc()
    d.base, d.ndim, d.kind, d.fmt = base, len(sizes), kind, fmt
    n = 1
    for k, (s, st) in enumerate(zip(sizes, strides)):
        d.sizes[k], d.strides[k] = s, st
        n *= s
    d.n = n
    d.per_block, d.nblocks = plan(n)
    return d


def launch(descs, stream=None):
    """One launch for up to 23 descriptors; returns the partials (bytes per descriptor) after a sync."""
    batch = Batch()
    batch.count = len(descs)
    total = sum(d.nblocks for d in descs)
    pinned = torch.empty(total * PARTIAL, dtype=torch.uint8, pin_memory=True)
    slot = 0
    for i, d in enumerate(descs):
        d.partials = pinned.data_ptr() + slot * PARTIAL
        slot += d.nblocks
        batch.d[i] = d
    size = ctypes.c_size_t(ctypes.sizeof(Batch))
    extra = (ctypes.c_void_p * 5)(1, ctypes.addressof(batch), 2, ctypes.addressof(size), 0)
    s = stream if stream is not None else torch.cuda.current_stream().cuda_stream
    gx = max(d.nblocks for d in descs)
    rc = cu.cuLaunchKernel(function, gx, len(descs), 1, THREADS, 1, 1, 0, ctypes.c_void_p(s), None, extra)
    torch.cuda.synchronize()
    out, slot = [], 0
    for d in descs:
        out.append(bytes(pinned[slot * PARTIAL:(slot + d.nblocks) * PARTIAL].numpy()))
        slot += d.nblocks
    return rc, out


def emulate(d, host_bytes):
    out = ctypes.create_string_buffer(d.nblocks * PARTIAL)
    emu.fl_emulate(ctypes.byref(d), ctypes.c_char_p(host_bytes), out)
    return out.raw


# ---- 1. bit for bit against the emulation: every kernel kind, five kernel-level views
# kind -> (element bytes, minifloat layouts to try)
KINDS = {0: (4, [0]), 1: (8, [0]), 2: (2, [0]), 3: (2, [0]), 5: (1, [0]), 6: (1, [0]), 7: (2, [0]), 8: (4, [0]),
         9: (8, [0]), 10: (1, [0]), 11: (2, [0]), 12: (4, [0]), 13: (8, [0]), 14: (1, [0]),
         # minifloats: e4m3fn, e5m2, e8m0fnu, e2m3fn, e3m2fn, e3m4, e4m3b11fnuz, e5m2fnuz
         4: (1, [4 | 3 << 8 | 7 << 16 | 1 << 24, 5 | 2 << 8 | 15 << 16, 8 | 127 << 16 | 4 << 24,
                 2 | 3 << 8 | 1 << 16 | 3 << 24, 3 | 2 << 8 | 3 << 16 | 3 << 24, 3 | 4 << 8 | 3 << 16,
                 4 | 3 << 8 | 11 << 16 | 2 << 24, 5 | 2 << 8 | 16 << 16 | 2 << 24])}
N = 1 << 20
raw = torch.randint(0, 256, (N * 8 + 64,), dtype=torch.uint8, device="cuda")
# Floats get real values (random bytes are mostly NaN-free but huge): overwrite with normal data per kind.
host_raw = raw.cpu().numpy().tobytes()
VIEWS = [  # (name, byte offset in elements, sizes, strides)
    ("contiguous aligned", 0, [300001], [1]),
    ("contiguous unaligned", 3, [300001], [1]),
    ("slice with gaps", 5, [700, 222], [600, 2]),
    ("3-d permuted with gaps", 1, [9, 40, 33], [2000, 45, 1]),
    ("inner stride 3", 2, [100000], [3]),
]
bits_ok = 0
for kind, (eb, fmts) in KINDS.items():
    for fmt in fmts:
        for name, off, sizes, strides in VIEWS:
            base = raw.data_ptr() + off * eb
            d = desc_for(base, sizes, strides, kind, fmt)
            rc, (gpu,) = launch([d])
            span = eb * (1 + sum((s - 1) * st for s, st in zip(sizes, strides)))
            host = host_raw[off * eb:off * eb + span]
            same = rc == 0 and gpu == emulate(d, host)
            bits_ok += same
            check(same, f"bit for bit: kind {kind} fmt {fmt:#x} {name}")
row("kernel partials equal the emulation bit for bit", f"{bits_ok} cases", "every kind, five views")

# ---- 2. the library's lines against torch
mod = tvm_ffi.load_module(GPUCHECK)


def torch_lines(t):
    v = t.double() if t.dtype != torch.bool else t.to(torch.float64)
    is_float = t.is_floating_point()
    nan = int(torch.isnan(v).sum()) if is_float else 0
    inf = int(torch.isinf(v).sum()) if is_float else 0
    f6 = lambda x: "nan" if x != x else ("inf" if x == float("inf") else "-inf" if x == -float("inf") else "%.6f" % x)
    if not is_float:
        return [f"min={int(v.min())}", f"max={int(v.max())}", f"mean={f6(v.mean().item())}"]
    if nan:
        return ["min=nan", "max=nan", "mean=nan", f"nan_count={nan}", f"inf_count={inf}"]
    return [f"min={f6(v.min().item())}", f"max={f6(v.max().item())}", f"mean={f6(v.mean().item())}",
            f"nan_count=0", f"inf_count={inf}"]


DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.int16, torch.int32,
          torch.int64, torch.uint8, torch.bool]
for name in ("float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"):
    if hasattr(torch, name):
        DTYPES.append(getattr(torch, name))
expected = []
g = torch.Generator(device="cuda").manual_seed(7)
for dt in DTYPES:
    base = torch.randn(300, 200, device="cuda", generator=g) * 4
    if dt in (getattr(torch, "float8_e8m0fnu", None), torch.uint8):
        base = base.abs() + 0.01
    t = base.to(dt) if dt.is_floating_point else (base * 10).to(dt)
    if dt == torch.float32:
        t[7, 9] = float("inf")
    views = {"contiguous": t, "transposed": t.t(), "slice with gaps": t[3:250:2, 5::3],
             "broadcast": t[0:1, :].expand(64, 200), "offset": t[1:, 7:]}
    for vname, v in views.items():
        mod.inspect(v)
        expected.append((f"{dt} {vname}", torch_lines(v)))
torch.cuda.synchronize()
log = open(LOG).read()
records = [r for r in log.split("=" * 80 + "\n[") if "FlashInfer API Call: gpucheck.inspect" in r]
check("Statistics: GPU kernel (" in log, "the system information record says: GPU kernel")
check(len(records) >= len(expected), f"{len(expected)} inspect records (found {len(records)})")
lines_ok = 0
for (what, want), rec in zip(expected, records):
    inputs = rec.split("Positional input arguments:")[1].split("Output value:")[0]
    got = re.findall(r"^\s+((?:min|max|mean|nan_count|inf_count)=\S+)$", inputs, re.M)
    lines_ok += got == want
    check(got == want, f"lines equal torch's: {what}: {got} vs {want}")
row("level-5 lines equal torch's numbers", f"{lines_ok}/{len(expected)}", f"{len(DTYPES)} dtypes x 5 views")

# ---- 3. bandwidth: the kernel on a large bfloat16 tensor next to a device-to-device copy
free = torch.cuda.mem_get_info()[0]
n = min(1 << 32, int(free * 0.2) // 2) // 4096 * 4096
big = torch.randn(n // 2, device="cuda").to(torch.bfloat16).repeat(2)
dst = torch.empty_like(big)
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
d = desc_for(big.data_ptr(), [n], [1], 3)
launch([d])  # warm
d = desc_for(big.data_ptr(), [n], [1], 3)
pinned = torch.empty(d.nblocks * PARTIAL, dtype=torch.uint8, pin_memory=True)
d.partials = pinned.data_ptr()
batch = Batch()
batch.count = 1
batch.d[0] = d
size = ctypes.c_size_t(4056)
extra = (ctypes.c_void_p * 5)(1, ctypes.addressof(batch), 2, ctypes.addressof(size), 0)
stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
kernel_ms = []
for _ in range(5):
    start.record()
    cu.cuLaunchKernel(function, d.nblocks, 1, 1, THREADS, 1, 1, 0, stream, None, extra)
    end.record()
    torch.cuda.synchronize()
    kernel_ms.append(start.elapsed_time(end))
copy_ms = []
for _ in range(5):
    start.record()
    dst.copy_(big)
    end.record()
    torch.cuda.synchronize()
    copy_ms.append(start.elapsed_time(end))
nbytes = n * 2
kbw, cbw = nbytes / min(kernel_ms) / 1e6, 2 * nbytes / min(copy_ms) / 1e6
row("kernel, bfloat16", f"{kbw:.0f} GB/s", f"{nbytes / 2**30:.1f} GiB read in {min(kernel_ms):.2f} ms")
row("device-to-device copy", f"{cbw:.0f} GB/s", f"read+write, {min(copy_ms):.2f} ms")
check(kbw >= 0.5 * cbw, f"kernel bandwidth at least half the copy's ({kbw:.0f} vs {cbw:.0f} GB/s)")
del big, dst

# ---- 4. 1,000 small tensors
small = [torch.randn(1000, device="cuda") for _ in range(1000)]
descs = [desc_for(t.data_ptr(), [1000], [1], 0) for t in small]
pinned = torch.empty(1000 * PARTIAL, dtype=torch.uint8, pin_memory=True)
launches = []
for i in range(0, 1000, MAX_TENSORS):
    batch = Batch()
    part = descs[i:i + MAX_TENSORS]
    batch.count = len(part)
    for j, dd in enumerate(part):
        dd.partials = pinned.data_ptr() + (i + j) * PARTIAL
        batch.d[j] = dd
    size = ctypes.c_size_t(4056)
    extra = (ctypes.c_void_p * 5)(1, ctypes.addressof(batch), 2, ctypes.addressof(size), 0)
    launches.append((len(part), batch, size, extra))
torch.cuda.synchronize()
start.record()
for count, batch, size, extra in launches:
    cu.cuLaunchKernel(function, 1, count, 1, THREADS, 1, 1, 0, stream, None, extra)
end.record()
torch.cuda.synchronize()
row("1,000 small tensors (44 launches)", f"{start.elapsed_time(end):.3f} ms", "kernel time, events (goal < 1 ms)")
t0 = time.perf_counter()
mod.inspect(*small)
torch.cuda.synchronize()
row("one level-5 call with 1,000 device tensors", f"{(time.perf_counter() - t0) * 1e3:.1f} ms",
    "wall, both records written")

print("TABLE|what|value|how")
for what, value, note in table:
    print(f"TABLE|{what}|{value}|{note}")
print("gpu-check GPU statistics:", "FAILED" if fails else "all checks passed")
sys.exit(1 if fails else 0)
