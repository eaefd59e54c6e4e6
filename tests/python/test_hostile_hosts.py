"""Hosts that are unusual but real (issue 8 items 4-6 and 8, issue 15 item 3): every kind of fork while
another thread takes statistics, a signal handler calling FlashInfer while the same thread is inside the shim
or inside malloc, small stacks, pthread_cancel mid-call, a FIFO without a reader, stdout into `head -1`,
descriptor 1 reused, every descriptor closed and reused, a module unloaded and another loaded at the same
address, and a process that makes no FlashInfer lookup with a bad variable. Each compares the host's exit code
and output with the same host without the shim, under a time limit."""

import os
import re
import select
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import FIXDIR, LIB, clean_env, require, run

HOSTS = FIXDIR / "hosts/hosts"
HOSTOPS = FIXDIR / "hosts/flashinfer/hostops/hostops.so"
REENTERED = "[statistics skipped: re-entered from a signal handler]"


def hosts(*args, **kw):
    return run([require(HOSTS), *args], **kw)


def same_as_plain(args, *, mask=None, **kw):
    """Runs the host without and with the shim; asserts equal exit code and stdout (after `mask`), returns
    the shimmed run."""
    plain = hosts(*args, preload=False, timeout=kw.get("timeout", 120))
    shimmed = hosts(*args, **kw)
    norm = mask or (lambda s: s)
    assert shimmed.returncode == plain.returncode == 0, shimmed.stderr
    assert norm(shimmed.stdout) == norm(plain.stdout)
    return shimmed


@pytest.mark.parametrize("wipe", ["wipe-on-fork", "pid-checked"])
@pytest.mark.parametrize("kind", ["fork", "_Fork", "sysfork"])
def test_forks_while_another_thread_takes_statistics(tmp_path, kind, wipe):
    dest = tmp_path / "p_%i.log"
    env = {"FLASHLOG_STATS_MAX_MB": "4096"}  # the 64 MiB tensor's statistics must be taken, not skipped
    if wipe == "pid-checked":
        env["FLASHLOG_TEST_NO_WIPEONFORK"] = "1"  # as on a kernel without MADV_WIPEONFORK
    mask = lambda s: re.sub(r"(pid|parent)=\d+", r"\1=N", s)
    proc = same_as_plain(["fork-stats", require(HOSTOPS), kind, "3"], level="5", dest=dest, env=env, timeout=90,
                         mask=mask)
    children = re.findall(r"child \d pid=(\d+) status=0", proc.stdout)
    parent = re.search(r"parent=(\d+)", proc.stdout).group(1)
    assert len(children) == 3
    logs = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert set(logs) == {f"p_{pid}.log" for pid in [parent, *children]}
    for pid in children:
        text = logs[f"p_{pid}.log"]
        assert text.count("System Information") == 1 and f"Process: {pid} (hosts)" in text
        # The child changed its own copy of the tensor to 7.0: its statistics read its own memory.
        means = re.findall(r"mean=(\S+)", text)
        assert means and set(means) == {"7.000000"}, means
    assert "mean=7.000000" not in logs[f"p_{parent}.log"]


def test_signal_handler_reentering_a_call_at_level_5(tmp_path):
    log = tmp_path / "sig.log"
    proc = same_as_plain(["signal", require(HOSTOPS)], level="5", dest=log, timeout=90)
    assert proc.stderr == ""
    text = log.read_text()
    # The handler's calls that interrupted the shim's statistics are logged, with the reason in their place.
    assert text.count(REENTERED) >= 2
    blocks = re.findall(r"    Tensor\(\n((?:      .*\n)+?)    \)\n", text)
    big = [b for b in blocks if "shape=(4194304,)" in b]
    small = [b for b in blocks if "shape=(64,)" in b]
    assert len(big) >= 3 and len(small) >= 40
    # The main thread's calls are never re-entered: real statistics. The handler's calls have statistics
    # when the signal landed outside the shim, the reason line (and nothing else) when it landed inside.
    assert all("mean=2.000000" in b and REENTERED not in b for b in big)
    assert all(("mean=3.000000" in b) != (REENTERED in b) for b in small)
    assert any(REENTERED in b for b in small)


@pytest.mark.parametrize("level", ["1", "3", "5"])
def test_signal_handler_calling_flashinfer_inside_malloc(tmp_path, level):
    """A timer's handler calls FlashInfer 5,000 times while the main thread does nothing but malloc and free, so
    most calls interrupt glibc's allocator: once warm (one call outside the handler), the shim allocates nothing
    per call, and the host neither hangs nor aborts."""
    log = tmp_path / "m.log"
    proc = same_as_plain(["signal-malloc", require(HOSTOPS), "5000"], level=level, dest=log, timeout=90)
    assert proc.stdout == "handler_calls>=5000: yes handler_failures=0\n" and proc.stderr == ""
    assert log.read_text().count("hostops.touch") >= 5000


@pytest.mark.parametrize("level", ["1", "3", "5", "10"])
def test_thread_with_the_smallest_stack(tmp_path, level):
    """A thread made with a 16 KiB stack (PTHREAD_STACK_MIN) calls FlashInfer: the host runs as without the shim
    at every level; at level 5 its tensors get the skip line instead of statistics the stack cannot hold, while
    the main thread's call (8 MiB of stack) gets real ones."""
    log = tmp_path / "s.log"
    proc = same_as_plain(["small-stack", require(HOSTOPS), "16"], level=level, dest=log, timeout=60)
    assert proc.stdout == "calls from a thread with a 16 KiB stack: 3 failures=0\n" and proc.stderr == ""
    text = log.read_text()
    assert text.count("FlashInfer API Call: hostops.touch") == 4
    if level in ("5", "10"):
        assert text.count("[statistics skipped: too little stack left on this thread]") == 6
        assert text.count("mean=2.000000") == 2


def test_thread_with_room_gets_statistics(tmp_path):
    """The same calls from a thread with a 256 KiB stack get real statistics."""
    log = tmp_path / "s.log"
    same_as_plain(["small-stack", require(HOSTOPS), "256"], level="5", dest=log, timeout=60)
    text = log.read_text()
    assert text.count("mean=2.000000") == 8 and "statistics skipped" not in text


def test_call_from_a_handler_on_a_signal_stack(tmp_path):
    """A handler running on a 64 KiB sigaltstack calls FlashInfer: its statistics are skipped, saying why (the
    shim cannot size that stack), and the host runs as without the shim."""
    log = tmp_path / "a.log"
    proc = same_as_plain(["altstack", require(HOSTOPS)], level="5", dest=log, timeout=60)
    assert proc.stdout == "a call from a handler on a signal stack: failures=0\n" and proc.stderr == ""
    text = log.read_text()
    assert text.count("[statistics skipped: running on a stack of unknown size (a fiber's or a signal stack)]") == 2
    assert text.count("mean=2.000000") == 2


@pytest.mark.parametrize("mode", ["read", "testcancel", "flag"])
def test_pthread_cancel_mid_call(tmp_path, mode):
    log = tmp_path / "cancel.log"
    proc = same_as_plain(["cancel", require(HOSTOPS), mode], level="5", dest=log, timeout=30)
    assert "canceled=yes cleanup=yes" in proc.stdout and proc.stderr == ""
    text = log.read_text()
    name = {"read": "block_read", "testcancel": "spin_testcancel", "flag": "spin_until_flag"}[mode]
    assert f"FlashInfer API Call: hostops.{name}" in text
    # The later call on the main thread is logged whole: nothing was left claimed by the cancelled thread.
    # The last record is whole, then the exit line of a process that returned from main.
    assert re.search(r"={80}\n\n\[flashlog exit: pid \d+, \d+ records?\]\n\Z", text) and "hostops.touch" in text
    if mode == "flag":
        # The cancellation was pending when the call returned: the outputs record is still written whole.
        assert text.count("Output value:") == 2


def test_fifo_without_reader_never_blocks(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = same_as_plain(["calls", require(HOSTOPS), "3"], level="1", dest=fifo, timeout=20)
    lines = proc.stderr.splitlines()
    assert lines[0] == f"flashlog: cannot open log destination '{fifo}': FIFO has no reader; nothing is logged by this process (set -o or FLASHLOG_DEST to a file whose folder can be created, or to stderr)"
    assert sum("flashlog:" in l for l in lines) == 1
    assert proc.stderr.count("FlashInfer API Call: hostops.touch") == 0


def test_fifo_reader_that_goes_away(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader exists before the first record
    try:
        host = subprocess.Popen([str(require(HOSTS)), "calls", str(HOSTOPS), "20000"],
                                env=clean_env(LD_PRELOAD=str(LIB), FLASHINFER_LOGLEVEL="1", FLASHINFER_LOGDEST=str(fifo)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got = b""
        while len(got) < 100:
            select.select([reader], [], [], 10)
            try:
                got += os.read(reader, 100)
            except BlockingIOError:
                pass
    finally:
        os.close(reader)  # the pipe is full by now: the host's next record meets no reader
    out, err = host.communicate(timeout=60)
    assert got.startswith(b"=" * 80)
    assert host.returncode == 0 and out == "calls=20000 failed=0\n"
    assert err == f"flashlog: the reader of log destination '{fifo}' went away (Broken pipe); logging stopped\n"


def pipe_into_head(preload):
    env = clean_env(FLASHINFER_LOGLEVEL="1", **({"LD_PRELOAD": str(LIB)} if preload else {}))
    host = subprocess.Popen([str(require(HOSTS)), "pipe-head", str(HOSTOPS), "200"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-1"], stdin=host.stdout, stdout=subprocess.PIPE)
    host.stdout.close()
    first = head.communicate(timeout=30)[0]
    err = host.stderr.read().decode()
    return host.wait(timeout=30), first, err


def test_stdout_into_head_never_kills_the_host():
    plain_rc, plain_first, plain_err = pipe_into_head(False)
    rc, first, err = pipe_into_head(True)
    assert rc == plain_rc == 0, err  # not -13 (SIGPIPE)
    assert first == plain_first == b"host line 1\n"
    lines = err.splitlines()
    assert lines == ["flashlog: the reader of log destination 'stdout' went away (Broken pipe); logging stopped",
                     "host: 200 calls, 0 failed"]
    assert plain_err == "host: 200 calls, 0 failed\n"


def socket_reader_gone(preload):
    ours, theirs = socket.socketpair()
    env = clean_env(FLASHINFER_LOGLEVEL="1", **({"LD_PRELOAD": str(LIB)} if preload else {}))
    host = subprocess.Popen([str(require(HOSTS)), "pipe-head", str(HOSTOPS), "200"], env=env, stdout=theirs,
                            stderr=subprocess.PIPE, text=True)
    theirs.close()
    got = b""
    while b"host line 2\n" not in got:
        got += ours.recv(100)
    ours.close()
    err = host.communicate(timeout=30)[1]
    return host.returncode, err


def test_stdout_socket_whose_peer_goes_away():
    plain_rc, plain_err = socket_reader_gone(False)
    rc, err = socket_reader_gone(True)
    assert rc == plain_rc == 0, err
    assert err == ("flashlog: the reader of log destination 'stdout' went away (Broken pipe); logging stopped\n"
                   + plain_err)


def test_descriptor_1_reused_for_a_data_file(tmp_path):
    data = tmp_path / "data.txt"
    proc = hosts("stdout-reuse", require(HOSTOPS), data, level="1", timeout=30)
    plain_data = (tmp_path / "plain.txt")
    plain = hosts("stdout-reuse", HOSTOPS, plain_data, preload=False, timeout=30)
    assert proc.returncode == plain.returncode == 0
    assert data.read_text() == plain_data.read_text() == "".join(f"data {i}\n" for i in range(5))
    # Every record went to the stdout the process had at the first record.
    assert proc.stdout.startswith("host before\n")
    assert proc.stdout.count("FlashInfer API Call: hostops.touch") == 6
    assert proc.stderr == plain.stderr == "host: done\n"


def test_closerange_and_a_thousand_files(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    log = tmp_path / "log.txt"
    plain = hosts("closerange", HOSTOPS, plain_dir, "1000", preload=False, timeout=60)
    proc = hosts("closerange", require(HOSTOPS), files, "1000", level="1", dest=log, timeout=60)
    assert proc.returncode == plain.returncode == 0 and proc.stdout == plain.stdout == "files=1000 failures=0\n"
    for i, f in enumerate(sorted(files.iterdir())):
        assert f.read_text() == f"host file {i}\n", f
    assert log.read_text().count("FlashInfer API Call: hostops.touch") == 1001
    assert proc.stderr == f"flashlog: the log file '{log}' was closed or replaced by the program; reopened it\n"


PY_CLOSERANGE = """
import os, resource, sys, tvm_ffi
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < 1100 <= hard:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1100, hard))
m = tvm_ffi.load_module(sys.argv[1])
m.touch(-1)
os.closerange(3, 65536)
files = []
for i in range(1000):
    f = open(os.path.join(sys.argv[2], f"host_{i:04d}.txt"), "w")
    f.write(f"host file {i}\\n")
    f.flush()
    files.append(f)
    m.touch(i)
print("python host: 1000 files")
"""


def test_python_closerange_and_a_thousand_files(tmp_path):
    files, plain_dir = tmp_path / "files", tmp_path / "plain"
    files.mkdir()
    plain_dir.mkdir()
    log = tmp_path / "log.txt"
    cmd = [sys.executable, "-c", PY_CLOSERANGE, require(HOSTOPS)]
    plain = run(cmd + [plain_dir], preload=False, timeout=120)
    proc = run(cmd + [files], level="3", dest=log, timeout=120)
    assert proc.returncode == plain.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout == "python host: 1000 files\n"
    for i, f in enumerate(sorted(files.iterdir())):
        assert f.read_text() == f"host file {i}\n", f
    text = log.read_text()
    assert text.count("FlashInfer API Call: hostops.touch") == 1001 and text.count("Output value:") == 1001
    assert proc.stderr == plain.stderr + f"flashlog: the log file '{log}' was closed or replaced by the program; reopened it\n"


def test_closerange_with_records_on_stdout(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    proc = hosts("closerange", require(HOSTOPS), files, "1000", level="1", timeout=60)
    assert proc.returncode == 0 and proc.stdout.endswith("files=1000 failures=0\n")
    assert proc.stdout.count("FlashInfer API Call: hostops.touch") == 1001
    for i, f in enumerate(sorted(files.iterdir())):
        assert f.read_text() == f"host file {i}\n", f
    assert proc.stderr == (
        "flashlog: the shim's copy of stdout was closed or replaced by the program; copied stdout again\n")


def test_dlclose_and_another_module_at_the_same_address(tmp_path):
    first = tmp_path / "flashinfer/a/alpha.so"
    second = tmp_path / "flashinfer/b/beta.so"
    for p in (first, second):
        p.parent.mkdir(parents=True)
        shutil.copy(require(HOSTOPS), p)
    proc = same_as_plain(["dlclose-reuse", first, second], level="1", dest="stderr", timeout=30)
    if "same_base=no" in proc.stdout:
        pytest.skip("the loader did not map the second module at the first one's address")
    assert "same_base=yes" in proc.stdout
    calls = re.findall(r"FlashInfer API Call: (\S+)", proc.stderr)
    assert calls == ["alpha.touch", "beta.touch"]


def test_no_warning_without_a_flashinfer_lookup():
    libcuda = require(FIXDIR / "cuda/libcuda.so.1")
    proc = same_as_plain(["cuda-lookup", libcuda], level="abc", timeout=30)
    assert proc.stderr == ""
    shell = run(["sh", "-c", "true"], level="abc", timeout=30)
    assert shell.returncode == 0 and shell.stdout == shell.stderr == ""


def test_warning_once_at_the_first_flashinfer_lookup(tmp_path):
    log = tmp_path / "x.log"
    proc = same_as_plain(["calls", require(HOSTOPS), "3"], level="1_x", dest=log, timeout=30)
    assert proc.stderr == "flashlog: FLASHINFER_LOGLEVEL='1_x' is not an integer; logging disabled\n"
    assert not log.exists()
    # Python's int() rules: underscores between digits, a sign, spaces; beyond the largest level is the largest.
    for value in (" +1_0 ", "3", "1000"):
        log.unlink(missing_ok=True)
        ok = same_as_plain(["calls", HOSTOPS, "1"], level=value, dest=log, timeout=30)
        assert ok.stderr == "" and "hostops.touch" in log.read_text()


def test_file_size_limit_never_kills_the_host(tmp_path):
    """A log file that reaches the host's RLIMIT_FSIZE: the kernel raises SIGXFSZ at the write past it. The
    shim's writes take that signal back, so the host lives (with the same exit status and output as without
    the shim) and one line says records are being lost."""
    driver = require(FIXDIR / "tvm_driver")
    modules = FIXDIR / "cache/flashinfer/0.6.0/90a/cached_ops"
    cmd = ["prlimit", "--fsize=3000", driver, "threads", modules, 1, 50]
    plain = run(cmd, preload=False, timeout=60)
    log = tmp_path / "big.log"
    shimmed = run(cmd, level=3, dest=log, timeout=60)
    assert (shimmed.returncode, shimmed.stdout) == (plain.returncode, plain.stdout) == (0, plain.stdout)
    assert log.stat().st_size <= 3000
    lines = [l for l in shimmed.stderr.splitlines() if l.startswith("flashlog:")]
    assert lines == [f"flashlog: cannot write to log destination '{log}': File too large (os error 27); "
                     "records are lost until it can"], shimmed.stderr


def test_two_copies_of_the_shim_log_each_call_once(tmp_path):
    """The wheel's library and a build's both preloaded (two files, two copies): each call is logged once
    (the first copy's lookups reach the second as its next dlsym; what comes back is the second copy's entry
    point, which is no function symbol, so the first does not wrap it again), with one system information
    record, and the host sees what it sees without either."""
    copy = tmp_path / "copy" / "libflashlog.so"
    copy.parent.mkdir()
    shutil.copy(LIB, copy)
    driver = require(FIXDIR / "tvm_driver")
    modules = FIXDIR / "cache/flashinfer/0.6.0/90a/cached_ops"
    plain = run([driver, "plan", modules], preload=False)
    log = tmp_path / "two.log"
    both = run([driver, "plan", modules], level=1, dest=log, env={"LD_PRELOAD": copy})
    assert (both.returncode, both.stdout) == (plain.returncode, plain.stdout)
    calls = [l for l in log.read_text().splitlines() if "FlashInfer API Call:" in l]
    assert len(calls) == 2 and calls[0] != calls[1], calls
    assert log.read_text().count("FlashInfer API Logging - System Information") == 1
