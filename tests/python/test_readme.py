"""The README keeps its word: every command of its `console` blocks runs as written (from the repository root,
with the launcher on PATH as `flashlog`) and prints what the README shows, timestamps, process ids and
addresses aside. Blocks that need torch run only where a Python with torch exists (test_torchrun.py's rule).
Options and the launcher's --help list the same things (test_launcher_summary.py)."""

import os
import re
import subprocess

import pytest

from conftest import LIB, REPO, clean_env
from test_torchrun import PYTHON as TORCH_PYTHON


def console_blocks():
    """(commands with their expected output) per ```console block of the README."""
    text = (REPO / "README.md").read_text()
    blocks = []
    for body in re.findall(r"```console\n(.*?)```", text, re.S):
        steps = []
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append([line[2:], []])
            elif steps:
                steps[-1][1].append(line)
        blocks.append(steps)
    return blocks


def masked(text):
    text = re.sub(r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\]", "[TS]", text)
    text = re.sub(r"\bpid \d+", "pid N", text)
    text = re.sub(r"Process: \d+", "Process: N", text)
    text = re.sub(r"0x[0-9a-f]+", "0xADDR", text)
    return [line.rstrip() for line in text.splitlines()]


BLOCKS = console_blocks()


def test_the_readme_has_runnable_examples():
    assert len(BLOCKS) >= 2 and all(BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_console_block_runs_as_shown(tmp_path, index):
    steps = BLOCKS[index]
    if any("torchrun" in cmd for cmd, _ in steps):
        if TORCH_PYTHON is None:
            pytest.skip("needs a Python with torch (FLASHLOG_TORCH_PYTHON or the FlashInfer environment)")
    # A scratch copy of the root: the commands' relative paths resolve into the repository, their files land here.
    for name in ("target", "scripts", "examples", ".venv"):
        (tmp_path / name).symlink_to(REPO / name)
    path = [str(LIB.parent)] + ([str(TORCH_PYTHON.parent)] if TORCH_PYTHON else []) + [os.environ["PATH"]]
    env = clean_env(PATH=":".join(path), FLASHLOG_LIB=LIB)
    for cmd, expected in steps:
        proc = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode in (0, 1), f"{cmd}\n{proc.stdout}\n{proc.stderr}"
        shown = masked("\n".join(expected))
        got = masked(proc.stdout)
        # torchrun prints its own warnings and the ranks in any order: every shown line must be there.
        if "torchrun" in cmd:
            assert sorted(set(shown) - set(got)) == [], cmd
        else:
            assert got == shown, cmd
