"""The documents keep their word: every command of the `console` blocks of README.md and docs/*.md runs as written
(from a scratch copy of the repository root, with the launcher on PATH as `flashlog`) and prints what the block
shows, timestamps, process ids, addresses and dump-folder names aside; and no other fenced block shows a command
with its output (`$ ` lines), so nothing the documents show escapes this test. Blocks that need torch run only
where a Python with torch exists (test_torchrun.py's rule). Options and the launcher's --help list the same things
(test_launcher_summary.py)."""

import os
import re
import subprocess

import pytest

from conftest import LIB, REPO, clean_env
from test_torchrun import PYTHON as TORCH_PYTHON

DOCUMENTS = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


def fenced_blocks(path):
    """(info string, body) of every fenced block of a Markdown file."""
    return re.findall(r"^```(\w*)\n(.*?)^```", path.read_text(), re.S | re.M)


def console_blocks():
    """(document, commands with their expected output) per ```console block of every document."""
    blocks = []
    for path in DOCUMENTS:
        for info, body in fenced_blocks(path):
            if info != "console":
                continue
            steps = []
            for line in body.splitlines():
                if line.startswith("$ "):
                    steps.append([line[2:], []])
                elif steps:
                    steps[-1][1].append(line)
            blocks.append((path.relative_to(REPO), steps))
    return blocks


def masked(text):
    text = re.sub(r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\]", "[TS]", text)
    text = re.sub(r"\d{8}_\d{6}_\d{3}_pid\d+", "STAMP_pidN", text)
    text = re.sub(r"\d{8}_\d{6}_\d{3}", "STAMP", text)
    text = re.sub(r'"(process_id|thread_id|library_size|library_mtime_ns)": \d+', r'"\1": N', text)
    text = re.sub(r'"library_path": "[^"]*"', '"library_path": "PATH"', text)
    text = re.sub(r"\bpid \d+", "pid N", text)
    text = re.sub(r"Process: \d+", "Process: N", text)
    text = re.sub(r"0x[0-9a-f]+", "0xADDR", text)
    return [line.rstrip() for line in text.splitlines()]


BLOCKS = console_blocks()


def test_the_documents_have_runnable_examples():
    assert len(BLOCKS) >= 6 and all(steps for _, steps in BLOCKS)
    assert sum(str(doc) == "README.md" for doc, _ in BLOCKS) >= 4


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_block_showing_a_command_is_a_console_block(path):
    """A command shown with `$ ` and its output is run by this test only in a console block: any other block
    holding one would be an example nothing checks."""
    for info, body in fenced_blocks(path):
        if info != "console":
            assert not re.search(r"^\$ ", body, re.M), f"{path.name}: a {info or 'plain'} block shows a command:\n{body}"


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"{BLOCKS[i][0]}-{i}")
def test_console_block_runs_as_shown(tmp_path, index):
    doc, steps = BLOCKS[index]
    if any("torchrun" in cmd for cmd, _ in steps):
        if TORCH_PYTHON is None:
            pytest.skip("needs a Python with torch (FLASHLOG_TORCH_PYTHON or the FlashInfer environment)")
    # A scratch copy of the root: the commands' relative paths resolve into the repository, their files land here.
    for name in ("target", "scripts", "examples", "tests", ".venv"):
        (tmp_path / name).symlink_to(REPO / name)
    path = [str(LIB.parent)] + ([str(TORCH_PYTHON.parent)] if TORCH_PYTHON else []) + [os.environ["PATH"]]
    env = clean_env(PATH=":".join(path), FLASHLOG_LIB=LIB)
    for cmd, expected in steps:
        proc = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode in (0, 1), f"{doc}: {cmd}\n{proc.stdout}\n{proc.stderr}"
        shown = masked("\n".join(expected))
        got = masked(proc.stdout)
        # torchrun prints its own warnings and the ranks in any order: every shown line must be there.
        if "torchrun" in cmd:
            assert sorted(set(shown) - set(got)) == [], f"{doc}: {cmd}"
        else:
            assert got == shown, f"{doc}: {cmd}"
