"""The multi-rank example of docs/usage.md as written: `flashlog -l 5 -o 'logs/rank_%r.log' -- torchrun
--nproc_per_node=2 ...` with the gloo backend, each rank calling a fixture module through tvm_ffi. Needs a
Python with torch: `$FLASHLOG_TORCH_PYTHON`, else the FlashInfer environment of scripts/flashinfer-env.sh."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import LIB, MODULE_DIR, REPO, clean_env


def torch_python():
    for candidate in (os.environ.get("FLASHLOG_TORCH_PYTHON"), REPO / ".flashinfer-env/bin/python"):
        if candidate and Path(candidate).exists():
            ok = subprocess.run([str(candidate), "-c", "import torch, tvm_ffi, numpy"], capture_output=True)
            if ok.returncode == 0:
                return Path(candidate)
    return None


PYTHON = torch_python()


@pytest.mark.skipif(PYTHON is None, reason="no Python with torch here (set FLASHLOG_TORCH_PYTHON or run "
                    "scripts/flashinfer-env.sh)")
def test_torchrun_two_ranks_under_the_launcher(tmp_path):
    launcher = LIB.parent / "flashlog"
    torchrun = PYTHON.parent / "torchrun"
    proc = subprocess.run(
        [str(launcher), "-l", "5", "-o", "logs/rank_%r.log", "--", str(torchrun), "--nproc_per_node=2",
         str(REPO / "examples/ranks.py"), str(MODULE_DIR)],
        cwd=tmp_path, env=clean_env(FLASHLOG_LIB=LIB), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["rank_0.log", "rank_1.log"]
    for r in (0, 1):
        text = (tmp_path / f"logs/rank_{r}.log").read_text()
        assert f"\nRank: {r} of 2 (local {r})\n" in text
        assert text.count("FlashInfer API Call: norm.rmsnorm") == 1
    summary = subprocess.run([str(launcher), "summary", "logs/rank_0.log", "logs/rank_1.log"], cwd=tmp_path,
                             env=clean_env(), capture_output=True, text=True, timeout=60)
    assert summary.returncode == 1, summary.stdout
    assert re.search(r"first NaN/Inf overall: rank_1\.log \(rank 1 of 2\):\d+ .* norm\.rmsnorm input", summary.stdout)
