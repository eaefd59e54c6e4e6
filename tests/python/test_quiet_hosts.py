"""A process that makes no FlashInfer call sees nothing of the shim: same output, no file, no stderr line
(compilers, shells and git inherit LD_PRELOAD)."""

import subprocess

import pytest

from conftest import LIB, run


@pytest.mark.parametrize(
    "cmd",
    [
        ["python3", "-c", "import ctypes, sys; ctypes.CDLL(None); print('hello', sys.version_info[0])"],
        ["gcc", "--version"],
        ["git", "--version"],
        ["sh", "-c", "echo shell; ls / >/dev/null"],
    ],
)
@pytest.mark.parametrize("level", ["3", "5"])
def test_no_output_and_no_file(tmp_path, cmd, level):
    dest = tmp_path / "never_%i.log"
    plain = run(cmd, preload=False)
    shimmed = run(cmd, level=level, dest=dest)
    assert shimmed.returncode == plain.returncode
    assert shimmed.stdout == plain.stdout
    assert shimmed.stderr == plain.stderr
    assert list(tmp_path.iterdir()) == []


def test_gcc_compiles_under_the_shim(tmp_path):
    src = tmp_path / "hello.c"
    src.write_text('#include <stdio.h>\nint main(void){puts("compiled");return 0;}\n')
    run(["gcc", "-o", tmp_path / "hello", src], level=3, dest=tmp_path / "log_%i", check=True)
    out = run([tmp_path / "hello"], level=3, dest=tmp_path / "log_%i", check=True)
    assert out.stdout == "compiled\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello", "hello.c"]


def test_library_is_built():
    assert LIB.exists()
    syms = subprocess.run(["nm", "-D", "--defined-only", str(LIB)], capture_output=True, text=True).stdout
    exported = {line.split()[-1] for line in syms.splitlines()}
    assert "dlsym" in exported
    assert "dlopen" not in exported, "the shim must not interpose dlopen"
