"""The launcher's LD_PRELOAD (issue 18): a sanitizer runtime in it stays first (ASan ends a program whose initial
library list does not start with it), and a library installed under a path with a space is preloaded through this
user's link without spaces (ld.so splits LD_PRELOAD on spaces and colons). Each program is compared with the same
program run without the library (exit code, stdout, stderr)."""

import os
import shutil
import stat
import subprocess

import pytest

from conftest import FIXDIR, LIB, MODULE_DIR, REPO, clean_env, require

FLASHLOG = REPO / "target/release/flashlog"
DRIVER = FIXDIR / "tvm_driver"
CALLS = "[2026-01-01 00:00:00] FlashInfer API Call: norm.rmsnorm"


def libasan():
    path = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(path) or not os.path.exists(path):
        pytest.skip("gcc has no libasan.so here")
    return path


def sh(cmd, env, **kw):
    return subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=120, **kw)


def calls_in(log):
    return sum(1 for line in log.read_text().splitlines() if line.endswith("] FlashInfer API Call: norm.rmsnorm"))


def test_asan_runtime_in_ld_preload_stays_first(tmp_path):
    asan = libasan()
    prog = tmp_path / "asan_prog"
    src = tmp_path / "asan_prog.c"
    src.write_text('#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n'
                   'int main(int c, char** v) { char* p = malloc(32); strcpy(p, c > 1 ? v[1] : "none");\n'
                   '  printf("asan program: %s\\n", p); free(p); return 3; }\n')
    subprocess.run(["gcc", "-fsanitize=address", "-g", "-o", prog, src], check=True, timeout=120)
    # The ASan program, with the runtime preloaded as a user would: same exit code and output.
    plain = sh([prog, "hello"], clean_env(LD_PRELOAD=asan))
    assert (plain.returncode, plain.stdout, plain.stderr) == (3, "asan program: hello\n", "")
    shimmed = sh([FLASHLOG, "-l", "1", "--", prog, "hello"], clean_env(LD_PRELOAD=asan, FLASHLOG_LIB=LIB))
    assert (shimmed.returncode, shimmed.stdout, shimmed.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    # A program that calls FlashInfer, with ASan preloaded: logged, and otherwise the same.
    log = tmp_path / "log"
    args = [require(DRIVER), "threads", MODULE_DIR, 1, 3]
    plain = sh(args, clean_env(LD_PRELOAD=asan))
    shimmed = sh([FLASHLOG, "-l", "1", "-o", log, "--", *args], clean_env(LD_PRELOAD=asan, FLASHLOG_LIB=LIB))
    assert (shimmed.returncode, shimmed.stdout, shimmed.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert plain.stdout == "threads=1 calls_ok=3\n" and calls_in(log) == 3
    # The order: sanitizer runtimes first, the library, the rest (the unit tests reorder runtimes given later: a
    # launcher started that way would itself be ended by ASan).
    other = require(FIXDIR / "libother_interposer.so")
    p = sh([FLASHLOG, "--", "sh", "-c", 'echo "$LD_PRELOAD"'],
           clean_env(LD_PRELOAD=f"{asan} {other}", FLASHLOG_LIB=LIB))
    assert p.stdout == f"{asan}:{LIB.resolve()}:{other}\n", p.stderr


@pytest.fixture
def installed(tmp_path):
    """The launcher and the library installed side by side under a folder whose path has a space; a private
    runtime folder and temp folder for the link."""
    bin_dir = tmp_path / "ML projects/venv/bin"
    bin_dir.mkdir(parents=True)
    shutil.copy(require(FLASHLOG), bin_dir / "flashlog")
    shutil.copy(LIB, bin_dir / "libflashlog.so")
    run_dir, tmp_dir = tmp_path / "run", tmp_path / "tmp"
    run_dir.mkdir(mode=0o700)
    tmp_dir.mkdir()
    env = {k: v for k, v in clean_env().items() if k != "FLASHLOG_LIB"}
    env.update(XDG_RUNTIME_DIR=str(run_dir), TMPDIR=str(tmp_dir))
    return bin_dir, run_dir, tmp_dir, env


def test_launcher_installed_under_a_path_with_a_space(tmp_path, installed):
    bin_dir, run_dir, tmp_dir, env = installed
    args = [require(DRIVER), "threads", MODULE_DIR, 1, 3]
    plain = sh(args, env)
    log = tmp_path / "log"
    shimmed = sh([bin_dir / "flashlog", "-l", "1", "-o", log, "--", *args], env)
    assert (shimmed.returncode, shimmed.stdout, shimmed.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert plain.returncode == 0 and calls_in(log) == 3
    folder = run_dir / "flashlog"
    (link,) = folder.iterdir()
    assert stat.S_IMODE(folder.lstat().st_mode) == 0o700
    assert link.name.startswith("libflashlog-") and os.readlink(link) == str(bin_dir / "libflashlog.so")
    first = link.lstat()
    # Reused as it is by the next run; the child sees the link in LD_PRELOAD.
    p = sh([bin_dir / "flashlog", "--", "sh", "-c", 'echo "$LD_PRELOAD"'], env)
    assert p.stdout == f"{link}\n" and link.lstat().st_ino == first.st_ino
    # A runtime folder others can write is not used: the temp folder's per-user folder is.
    folder.chmod(0o777)
    p = sh([bin_dir / "flashlog", "--", "sh", "-c", 'echo "$LD_PRELOAD"'], env)
    fallback = tmp_dir / f"flashlog-{os.getuid()}"
    assert p.returncode == 0 and p.stdout == f"{fallback / link.name}\n", p.stderr
    assert os.readlink(fallback / link.name) == str(bin_dir / "libflashlog.so")
    # A link planted in place of the folder is not followed.
    shutil.rmtree(fallback)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    fallback.symlink_to(elsewhere)
    p = sh([bin_dir / "flashlog", "--", "true"], env)
    assert p.returncode == 1 and list(elsewhere.iterdir()) == []
    assert p.stdout == "" and p.stderr == (
        f"flashlog: the library's path has a space or colon ({bin_dir / 'libflashlog.so'}), and no link to it: "
        f"{fallback} is not a folder of this user's that only it can write\n")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a folder to another user")
def test_another_users_link_folder_is_not_used(tmp_path, installed):
    bin_dir, run_dir, tmp_dir, env = installed
    for folder in (run_dir / "flashlog", tmp_dir / f"flashlog-{os.getuid()}"):
        folder.mkdir(mode=0o700)
        os.chown(folder, 65534, 65534)
    p = sh([bin_dir / "flashlog", "--", "true"], env)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "is not a folder of this user's" in p.stderr
