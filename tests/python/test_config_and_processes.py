"""Configuration, destinations, processes and threads (issue 2): bad variables give one clear stderr line and
the host goes on; `%i` files per process and per forked child; 16 threads x 10,000 calls into one file with
every record whole; the dlsym interposition rules."""

import os
import re
import stat

import pytest

from conftest import DASH, EQ, FIXDIR, MODULE_DIR, STAMP, require, run, split_records

DRIVER = FIXDIR / "tvm_driver"


def errors_run(**kw):
    return run([require(DRIVER), "errors", MODULE_DIR], **kw)


@pytest.mark.parametrize("value", ["abc", "", "1.5", "3x"])
def test_invalid_level_warns_once_and_disables(tmp_path, value):
    log = tmp_path / "x.log"
    plain = errors_run(preload=False)
    proc = errors_run(level=value, dest=log)
    assert proc.returncode == 0 and proc.stdout == plain.stdout
    assert proc.stderr == f"flashlog: FLASHINFER_LOGLEVEL='{value}' is not an integer; logging disabled\n"
    assert not log.exists()


@pytest.mark.parametrize("value,records", [("-1", False), ("99", True), (" 3 ", True), ("0", False)])
def test_out_of_range_levels(tmp_path, value, records):
    log = tmp_path / "x.log"
    proc = errors_run(level=value, dest=log)
    assert proc.returncode == 0 and proc.stderr == ""
    assert log.exists() == records


def test_shim_variables_take_precedence(tmp_path):
    mine, theirs = tmp_path / "mine.log", tmp_path / "theirs.log"
    env = {"FLASHLOG_LEVEL": "1", "FLASHLOG_DEST": mine}
    errors_run(level="3", dest=theirs, env=env, check=True)
    assert not theirs.exists()
    assert "Positional input" not in mine.read_text() and "FlashInfer API Call: testops.noop" in mine.read_text()
    proc = errors_run(env={"FLASHLOG_LEVEL": "bad"})
    assert proc.stderr == "flashlog: FLASHLOG_LEVEL='bad' is not an integer; logging disabled\n"


# A missing folder is created now, and an empty destination means stdout (test_ranks_and_folders.py).
@pytest.mark.parametrize("where", ["readonly"])
def test_unopenable_destination_is_one_line(tmp_path, where):
    if where == "readonly":
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        dest = ro / "x.log"
        reason = "Permission denied (os error 13)"
        if os.geteuid() == 0:  # root ignores directory permissions: use a path under a file instead
            (tmp_path / "file").write_text("")
            dest = tmp_path / "file/x.log"
            reason = "Not a directory (os error 20)"
    plain = errors_run(preload=False)
    proc = errors_run(level="1", dest=dest)
    assert proc.returncode == 0 and proc.stdout == plain.stdout
    lines = proc.stderr.splitlines()
    assert lines[0] == f"flashlog: cannot open log destination '{dest}': {reason}; nothing is logged by this process (set -o or FLASHLOG_DEST to a file whose folder can be created, or to stderr)"
    assert "FlashInfer API Call" not in proc.stderr  # one line, not the whole log on the program's stderr
    assert sum("cannot open" in l for l in lines) == 1


def test_stdout_and_stderr_destinations(tmp_path):
    out = errors_run(level="1", dest="stdout")
    assert "FlashInfer API Call: testops.noop" in out.stdout and out.stderr == ""
    err = errors_run(level="1", dest="stderr")
    assert "FlashInfer API Call: testops.noop" in err.stderr and "FlashInfer" not in err.stdout


def test_pid_in_file_names_two_processes(tmp_path):
    dest = tmp_path / "rank_%i_%i.log"
    for _ in range(2):
        errors_run(level="1", dest=dest, check=True)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2
    for f in files:
        pid = re.fullmatch(r"rank_(\d+)_(\d+)\.log", f.name)
        assert pid and pid.group(1) == pid.group(2)
        assert f"Process: {pid.group(1)} (tvm_driver)" in f.read_text()


def test_forked_child_writes_its_own_file(tmp_path):
    proc = run([require(DRIVER), "fork", MODULE_DIR], level="3", dest=tmp_path / "p_%i.log", check=True)
    parent, child = re.search(r"parent=(\d+) child=(\d+) child_status=0", proc.stdout).groups()
    logs = {f.name: f.read_text() for f in tmp_path.iterdir()}
    assert set(logs) == {f"p_{parent}.log", f"p_{child}.log"}
    values = lambda t: re.findall(r"  arg\[0\]:\n    (\d+)\n", t)
    assert values(logs[f"p_{parent}.log"]) == ["1", "4"]
    assert values(logs[f"p_{child}.log"]) == ["2", "3"]
    assert f"Process: {child} (tvm_driver)" in logs[f"p_{child}.log"]


def test_sixteen_threads_never_interleave(tmp_path):
    log = tmp_path / "threads.log"
    proc = run([require(DRIVER), "threads", MODULE_DIR, 16, 10000], level="3", dest=log, timeout=600, check=True)
    assert proc.stdout == "threads=16 calls_ok=160000\n"
    text = log.read_text()
    # Each call writes two records (inputs before, outputs after), each with one write(2): other threads'
    # records may come between the two, but no record may be cut. Scan the file as a sequence of whole units.
    tensor = r"    Tensor\(\n(      .*\n){6}    \)\n"
    # Once a second thread logs, both records of a call carry its correlation line (README, log format).
    correlation = r"(\[call norm\.rmsnorm #\d+ thread \d+ at \d{2}:\d{2}:\d{2}\.\d{6}\]\n)?"
    inputs = re.compile(
        re.escape(EQ) + "\n" + STAMP + r" FlashInfer API Call: norm\.rmsnorm\n" + correlation + re.escape(DASH) + "\n"
        r"Positional input arguments:\n(  arg\[[012]\]:\n" + tensor + r")"
        r"{3}  arg\[3\]:\n    1e-06\n  arg\[4\]:\n    False\n")
    outputs = re.compile(correlation + re.escape("Output value:\n  None\n" + EQ + "\n\n"))
    first = text[: text.index("\n\n")]
    assert first.startswith(EQ + "\n") and "System Information" in first, "system information must come first"
    pos = len(first) + 2
    n_in = n_out = 0
    # The exit line (docs/log-format.md) ends the log: the 16 threads were joined before the program returned.
    exit_line = re.search(r"\[flashlog exit: pid \d+, 320000 records\]\n\Z", text)
    assert exit_line, text[-300:]
    text = text[: exit_line.start()]
    while pos < len(text):
        m = inputs.match(text, pos)
        if m:
            n_in += 1
            pos = m.end()
        elif m := outputs.match(text, pos):
            n_out += 1
            pos = m.end()
        else:
            raise AssertionError(f"cut or interleaved record at byte {pos}: {text[pos:pos + 300]!r}")
    assert n_in == n_out == 160000
    # 16 threads, each with its own three tensors.
    assert len(set(re.findall(r"data_ptr=(0x[0-9a-f]+)", text))) == 16 * 3


def test_second_interposer_still_gets_the_next_foo(tmp_path):
    other = require(FIXDIR / "libother_interposer.so")
    plain = run([require(FIXDIR / "call_foo")], preload=False, env={"LD_PRELOAD": other})
    assert plain.stdout == "foo=42\n"
    for level in ("0", "3"):
        proc = run([FIXDIR / "call_foo"], level=level, env={"LD_PRELOAD": other}, timeout=20)
        assert proc.returncode == 0 and proc.stdout == "foo=42\n", proc.stderr


def test_library_calling_dlsym_before_our_constructor(tmp_path):
    log = tmp_path / "early.log"
    env = {"EARLY_MODULE": MODULE_DIR / "testops/testops.so"}
    proc = run([require(FIXDIR / "early_main")], level="1", dest=log, env=env, check=True)
    assert proc.stdout == "early constructor: strlen=ok malloc=ok echo_rc=0 echo_value=17\n"
    assert "FlashInfer API Call: testops.echo" in log.read_text()
