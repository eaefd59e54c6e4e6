"""`make demo` shows every part the README promises, on a fresh clone (how long it takes depends on the machine
and its load, so it is not asserted; `make demo` prints it)."""

import os
import subprocess
import sys

from conftest import FIXDIR, LIB, REPO, clean_env


def test_demo_shows_each_part():
    launcher = LIB.parent / "flashlog"
    proc = subprocess.run(
        ["bash", "scripts/demo.sh", str(launcher), str(FIXDIR), sys.executable],
        cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FlashInfer API Call: norm.rmsnorm" in out.split("== 2.")[0], "level 1 lines"
    level3 = out.split("== 2.")[1].split("== 3.")[0]
    assert "Positional input arguments:" in level3 and "Output value:" in level3
    level5 = out.split("== 3.")[1].split("== 4.")[0]
    assert "nan_count=1" in level5 and "Tensor arguments after the call:" in level5
    summary = out.split("== 4.")[1].split("== 5.")[0]
    assert "first NaN/Inf overall:" in summary and "norm.rmsnorm input" in summary
    capture = out.split("== 5.")[1].split("== 6.")[0]
    assert "[statistics skipped: CUDA graph capture in progress]" in capture and "invalidated=0" in capture
    assert "FlashInfer Kernel Launch:" in out.split("== 6.")[1]
    assert os.path.exists(REPO / "target/demo/level5.log")
