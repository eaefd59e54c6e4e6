"""Compiles src/gpu/stats_kernel.cu to PTX with NVRTC (the registry's nvidia-cuda-nvrtc-cu12 wheel, through its
C API with ctypes: no nvcc, no CUDA headers) for compute_80, and checks the result is `.version 8.0` or lower and
`.target sm_80`, so every driver from CUDA 12.0 and every GPU from sm_80 on takes it.

    python scripts/gen_ptx.py OUT.ptx      (run by `make ptx` and `make ptx-check` from their virtualenv)
"""

import ctypes
import glob
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "gpu")
# --fmad=false: no multiply-add contraction, so the GPU rounds exactly as the host code of the same header does.
OPTIONS = [b"--gpu-architecture=compute_80", b"--std=c++11", b"-default-device", b"--fmad=false"]


def nvrtc():
    import nvidia.cuda_nvrtc  # the wheel's package: lib/libnvrtc.so.12 beside libnvrtc-builtins

    base = list(nvidia.cuda_nvrtc.__path__)[0]
    libs = sorted(glob.glob(os.path.join(base, "lib", "libnvrtc.so*")))
    libs = [p for p in libs if "builtins" not in p]
    if not libs:
        sys.exit(f"gen_ptx: no libnvrtc.so in {base}/lib")
    return ctypes.CDLL(libs[0])


def compile_ptx():
    lib = nvrtc()
    with open(os.path.join(SRC, "stats_kernel.cu"), "rb") as f:
        source = f.read()
    with open(os.path.join(SRC, "stats_core.h"), "rb") as f:
        header = f.read()
    prog = ctypes.c_void_p()
    headers = (ctypes.c_char_p * 1)(header)
    names = (ctypes.c_char_p * 1)(b"stats_core.h")
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), source, b"stats_kernel.cu", 1, headers, names)
    if rc:
        sys.exit(f"gen_ptx: nvrtcCreateProgram failed ({rc})")
    opts = (ctypes.c_char_p * len(OPTIONS))(*OPTIONS)
    rc = lib.nvrtcCompileProgram(prog, len(OPTIONS), opts)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    if rc:
        sys.exit(f"gen_ptx: compilation failed ({rc}):\n{log.value.decode(errors='replace')}")
    lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
    ptx = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetPTX(prog, ptx)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return ptx.value.decode()


def check(ptx):
    ver = re.search(r"^\.version (\d+)\.(\d+)$", ptx, re.M)
    if not ver or (int(ver[1]), int(ver[2])) > (8, 0):
        sys.exit(f"gen_ptx: PTX ISA must be 8.0 or lower, got {ver and ver[0]}")
    if not re.search(r"^\.target sm_80$", ptx, re.M):
        sys.exit("gen_ptx: PTX target must be sm_80")
    if ".entry flashlog_stats_v1(" not in ptx:
        sys.exit("gen_ptx: entry flashlog_stats_v1 missing")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ptx = compile_ptx()
    check(ptx)
    with open(sys.argv[1], "w") as f:
        f.write(ptx)


if __name__ == "__main__":
    main()
