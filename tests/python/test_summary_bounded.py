"""`flashlog summary` in bounded memory (issue 18): a crashed run's log ending in hundreds of MiB of zero bytes
(a sparse file here), /dev/zero, and a line longer than the limit, each under a 128 MiB address-space limit."""

import re
import subprocess

from conftest import FIXDIR, LIB, MODULE_DIR, REPO, clean_env, require

FLASHLOG = REPO / "target/release/flashlog"
LIMIT_KIB = 128 * 1024


def limited_summary(*paths):
    """`flashlog summary` under `ulimit -v` 128 MiB."""
    cmd = f'ulimit -v {LIMIT_KIB} && exec "$0" summary "$@"'
    return subprocess.run(["sh", "-c", cmd, str(require(FLASHLOG)), *map(str, paths)], env=clean_env(),
                          capture_output=True, text=True, timeout=300)


def three_calls(tmp_path):
    log = tmp_path / "run.log"
    p = subprocess.run([str(require(FLASHLOG)), "-l1", f"-o{log}", "--", str(require(FIXDIR / "tvm_driver")),
                        "threads", str(MODULE_DIR), "1", "3"], env=clean_env(FLASHLOG_LIB=LIB), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0 and p.stdout == "threads=1 calls_ok=3\n", p.stderr
    return log


def test_zero_filled_log_under_128_mib(tmp_path):
    log = three_calls(tmp_path)
    clean = limited_summary(log)
    assert clean.returncode == 0 and clean.stderr == ""
    size = log.stat().st_size
    zeros = 400 << 20
    subprocess.run(["truncate", "-s", f"+{zeros}", str(log)], check=True)
    assert log.stat().st_size == size + zeros
    s = limited_summary(log)
    assert s.returncode == 0, s.stderr
    assert s.stdout == clean.stdout
    assert s.stderr == f"flashlog summary: {log}: {zeros} NUL bytes skipped (zero-filled blocks of a crashed run?)\n"
    # Records after the zeros (the next run appended to the same file) are read too.
    with open(log, "ab") as f:
        f.write(log.read_bytes()[:size])
    s = limited_summary(log)
    assert s.returncode == 0 and re.search(r"^\s+6\s+0\s+0\s+norm\.rmsnorm", s.stdout, re.M) and "2 runs" in s.stdout, (
        s.stdout + s.stderr)


def test_dev_zero_under_128_mib():
    s = limited_summary("/dev/zero")
    assert s.returncode == 2 and s.stdout == ""
    assert s.stderr == ("flashlog summary: /dev/zero: read no further after 1 GiB of NUL bytes in a row\n"
                        "flashlog summary: /dev/zero: no records (not a flashlog or FlashInfer log?)\n")


def test_a_line_longer_than_the_limit_is_skipped_and_counted(tmp_path):
    log = three_calls(tmp_path)
    clean = limited_summary(log)
    text = log.read_text()
    head, rest = text.split("\n", 1)
    log.write_text(head + "\n" + "x" * (64 << 20) + "\n" + rest)
    s = limited_summary(log)
    assert s.returncode == 0, s.stderr
    assert s.stderr == f"flashlog summary: {log}: 1 lines longer than 1 MiB skipped\n"
    assert s.stdout == clean.stdout
