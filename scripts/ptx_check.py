"""`make ptx-check`: regenerates the statistics kernel's PTX from src/gpu/stats_kernel.cu into a temporary file
(scripts/gen_ptx.py, the pinned NVRTC wheel), fails when it differs from the checked-in src/gpu/stats_kernel.ptx,
and assembles the checked-in file with `ptxas` from the registry's nvidia-cuda-nvcc-cu12 wheels: 12.0 for sm_80 and
sm_90, 12.9 for sm_100 and sm_120 (the wheels are downloaded once into WHEELS by `pip download --no-deps`).

    python scripts/ptx_check.py WHEELS_DIR
"""

import glob
import os
import stat
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PTX = os.path.join(REPO, "src", "gpu", "stats_kernel.ptx")
# (nvcc wheel version, architectures its ptxas assembles for)
PTXAS = [("12.0.140", ["sm_80", "sm_90"]), ("12.9.86", ["sm_100", "sm_120"])]


def ptxas(wheels, version):
    """The ptxas of the nvcc wheel `version`, extracted once beside the wheel."""
    out = os.path.join(wheels, f"ptxas-{version}")
    if not os.path.exists(out):
        found = glob.glob(os.path.join(wheels, f"nvidia_cuda_nvcc_cu12-{version}-*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", wheels,
                            f"nvidia-cuda-nvcc-cu12=={version}"], check=True)
            found = glob.glob(os.path.join(wheels, f"nvidia_cuda_nvcc_cu12-{version}-*.whl"))
        with zipfile.ZipFile(found[0]) as z, open(out + ".tmp", "wb") as f:
            f.write(z.read("nvidia/cuda_nvcc/bin/ptxas"))
        os.chmod(out + ".tmp", stat.S_IRWXU)
        os.replace(out + ".tmp", out)
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    wheels = sys.argv[1]
    os.makedirs(wheels, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, "stats_kernel.ptx")
        subprocess.run([sys.executable, os.path.join(HERE, "gen_ptx.py"), fresh], check=True)
        with open(fresh) as a, open(PTX) as b:
            if a.read() != b.read():
                sys.exit("ptx-check: src/gpu/stats_kernel.ptx differs from what src/gpu/stats_kernel.cu gives; "
                         "run `make ptx` and commit the result")
        print("ptx-check: src/gpu/stats_kernel.ptx is what the source gives (NVRTC 12.0.140, compute_80)")
        for version, archs in PTXAS:
            tool = ptxas(wheels, version)
            for arch in archs:
                cubin = os.path.join(tmp, f"{arch}.cubin")
                proc = subprocess.run([tool, f"-arch={arch}", "-o", cubin, PTX], capture_output=True, text=True)
                if proc.returncode != 0:
                    sys.exit(f"ptx-check: ptxas {version} -arch={arch} failed:\n{proc.stderr}")
                print(f"ptx-check: ptxas {version} -arch={arch}: {os.path.getsize(cubin)} bytes")


if __name__ == "__main__":
    main()
