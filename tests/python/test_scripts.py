"""The helper scripts a person runs: scripts/flashinfer-env.sh must never change an environment it did not
create, and must not leave CUDA_HOME in the shell's exports."""

import subprocess

from conftest import REPO, clean_env


def test_flashinfer_env_leaves_a_foreign_environment_alone(tmp_path):
    foreign = tmp_path / "someone_elses_venv"
    (foreign / "bin").mkdir(parents=True)
    (foreign / "bin" / "python").write_text("#!/bin/sh\nexit 3\n")
    before = sorted(p.relative_to(foreign) for p in foreign.rglob("*"))
    proc = subprocess.run(
        ["bash", str(REPO / "scripts/flashinfer-env.sh")],
        env=clean_env(FLASHINFER_ENV_DIR=foreign), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "", "no export line for an environment it did not set up"
    assert "was not created by this script; it is left unchanged" in proc.stderr
    assert "flashinfer-python==0.7.4" in proc.stderr, "it says what it would install"
    assert sorted(p.relative_to(foreign) for p in foreign.rglob("*")) == before


def test_flashinfer_env_exports_no_cuda_home():
    text = (REPO / "scripts/flashinfer-env.sh").read_text()
    export_lines = [line for line in text.splitlines() if line.lstrip().startswith('echo "export')]
    assert export_lines, "the script prints one export line"
    assert all("CUDA_HOME=" not in line for line in export_lines)
