"""The first hour (issue 23): the exit line, and what `flashlog summary` says with it (a run that died, --show,
FILE:LINE places, counts, the replay command, width, colour, files that are not logs); the library's one-line
messages. Every host program is compared with the same program run without the library."""

import os
import pty
import re
import select
import signal
import subprocess
import sys

import pytest

from conftest import FIXDIR, LIB, MODULE_DIR, REPO, STAMP, clean_env, require, run

FLASHLOG = REPO / "target/release/flashlog"
DRIVER = FIXDIR / "tvm_driver"
EXIT = re.compile(r"^\[flashlog exit: pid (\d+), (\d+) records?\]$", re.M)


def flashlog(args, env=None, timeout=120, cwd=None):
    e = clean_env(FLASHLOG_LIB=LIB, **(env or {}))
    return subprocess.run([str(require(FLASHLOG)), *map(str, args)], env=e, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def same_as_plain(args, level, dest):
    """Runs `args` with and without the library; the host must see the same exit status and stdout."""
    plain = run(args, preload=False)
    shimmed = run(args, level=level, dest=dest)
    assert (shimmed.returncode, shimmed.stdout) == (plain.returncode, plain.stdout), args
    return shimmed


@pytest.mark.parametrize("level", ["1", "3", "5"])
def test_exit_line_after_a_normal_exit_only(tmp_path, level):
    ended = tmp_path / "ended.log"
    p = same_as_plain([require(DRIVER), "errors", MODULE_DIR], level, ended)
    assert p.returncode == 0 and p.stderr == ""
    text = ended.read_text()
    exits = EXIT.findall(text)
    records = text.count("FlashInfer API Call:") + text.count("Output value:") + text.count("Call failed:")
    assert exits == [(str(re.search(r"Process: (\d+)", text).group(1)), str(records))]
    assert text.endswith(f"[flashlog exit: pid {exits[0][0]}, {records} records]\n")
    for command, sig, call in (("crash", signal.SIGABRT, "crash"), ("crash-segv", signal.SIGSEGV, "segv"),
                               ("crash-kill", signal.SIGKILL, "killself")):
        log = tmp_path / f"{command}.log"
        p = same_as_plain([require(DRIVER), command, MODULE_DIR], level, log)
        assert p.returncode == -sig, (command, p.returncode)
        text = log.read_text()
        assert "[flashlog exit" not in text, command
        # The summary names the call the process died in, at its FlashInfer API Call line, at every level.
        s = flashlog(["summary", log])
        assert s.returncode == 1, (command, s.stdout, s.stderr)
        line = text.splitlines().index(next(l for l in text.splitlines() if l.endswith(f"API Call: testops.{call}"))) + 1
        pid = re.search(r"Process: (\d+)", text).group(1)
        assert (f"the run ended without its exit line: the last call started was testops.{call} ({log}:{line}, "
                f"pid {pid})\n") in s.stdout, s.stdout
    # The clean run is not a finding.
    assert flashlog(["summary", ended]).returncode == 0


def test_no_call_no_output(tmp_path):
    """A process that makes no FlashInfer call writes nothing at all, exit line included, at every level."""
    for level in ("1", "3", "5", "10"):
        dest = tmp_path / f"never_{level}.log"
        p = same_as_plain(["sh", "-c", "echo hello; exit 3"], level, dest)
        assert (p.stdout, p.stderr) == ("hello\n", "") and not dest.exists()
        p = flashlog(["-l", level, "-o", "stdout", "--", sys.executable, "-c", "print('hi')"])
        assert (p.returncode, p.stdout, p.stderr) == (0, "hi\n", "")


CHILD_SCRIPT = """
import os, sys
import numpy as np
import tvm_ffi
norm = tvm_ffi.load_module(sys.argv[1] + "/norm/norm.so")
x = np.ones((2, 16), np.float32); w = np.ones(16, np.float32); out = np.zeros_like(x)
norm.rmsnorm(tvm_ffi.from_dlpack(out), tvm_ffi.from_dlpack(x), tvm_ffi.from_dlpack(w), 1e-6, False)
pid = os.fork()
if pid == 0:
    sys.exit(0)       # a normal exit (atexit handlers run) of a child that logged nothing
_, status = os.waitpid(pid, 0)
print("child", pid, status)
if sys.argv[2] == "reuse-stdout":
    # The host closes stdout and opens its own file on descriptor 1: the exit line must not go there.
    sys.stdout.flush()
    os.close(1)
    fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    assert fd == 1
    os.write(1, b"host\\n")
"""


def test_exit_line_only_from_the_process_that_logged(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD_SCRIPT)
    log = tmp_path / "shared.log"  # one file for parent and child: only the parent's exit line may be in it
    p = flashlog(["-l", "3", "-o", log, "--", sys.executable, script, MODULE_DIR, "-"])
    assert p.returncode == 0 and p.stderr == "", p.stderr
    child = re.search(r"child (\d+) 0", p.stdout).group(1)
    text = log.read_text()
    exits = EXIT.findall(text)
    assert exits == [(re.search(r"Process: (\d+)", text).group(1), "2")] and child not in {pid for pid, _ in exits}
    # Logging to stdout, the host replaces descriptor 1 before exiting: the line goes to the shim's own copy.
    host_file = tmp_path / "host.txt"
    p = flashlog(["-l", "1", "--", sys.executable, script, MODULE_DIR, "reuse-stdout", host_file])
    assert p.returncode == 0, p.stderr
    assert host_file.read_text() == "host\n"
    assert EXIT.search(p.stdout) and p.stdout.index("FlashInfer API Call: norm.rmsnorm") < EXIT.search(p.stdout).start()


def test_library_says_what_it_ignores_once(tmp_path):
    """Without the launcher: the watch and the graph statistics below level 5 are one line each at the first
    call, and an invalid level is named by the variable the user set."""
    env = {"FLASHLOG_WATCH": "nonfinite", "FLASHLOG_GRAPH_STATS": "1"}
    p = run([require(DRIVER), "errors", MODULE_DIR], level="3", dest=tmp_path / "w.log", env=env)
    assert p.returncode == 0
    assert p.stderr.splitlines() == [
        "flashlog: FLASHLOG_GRAPH_STATS=1 needs level 5 or 10 (the level is 3); off (set FLASHINFER_LOGLEVEL=5)",
        "flashlog: FLASHLOG_WATCH=nonfinite needs level 5 or 10 (the level is 3); off (set FLASHINFER_LOGLEVEL=5)",
    ]
    p = run(["sh", "-c", "true"], level="3", env=env)
    assert p.stderr == ""  # no FlashInfer call: not a word
    p = run([require(DRIVER), "errors", MODULE_DIR], level="abc")
    assert p.stderr == "flashlog: FLASHINFER_LOGLEVEL='abc' is not an integer; logging disabled\n"


def nan_logs(tmp_path):
    """Two ranks at level 5 of 4 threads; rank 1 has a NaN planted in one call's output."""
    logs = []
    for rank, plant in ((0, -1), (1, 3)):
        log = tmp_path / f"rank_{rank}.log"
        env = {"RANK": str(rank), "WORLD_SIZE": "2"}
        p = flashlog(["-l5", f"-o{log}", "--", require(DRIVER), "threads-nan", MODULE_DIR, 1, 6, 0, plant], env=env)
        assert p.returncode == 0, p.stderr
        logs.append(log)
    return logs


def test_summary_places_counts_and_show(tmp_path):
    logs = nan_logs(tmp_path)
    s = flashlog(["summary", "--show", *logs], env={"COLUMNS": "500"})
    assert s.returncode == 1, s.stderr
    text = logs[1].read_text().splitlines()
    nan_line = next(i for i, l in enumerate(text, 1) if re.fullmatch(r"    nan_count=[1-9]\d*", l))  # the output's
    place = f"{logs[1]}:{nan_line} (rank 1 of 2) "
    row = next(l for l in s.stdout.splitlines() if "norm.rmsnorm" in l and not l.startswith("first"))
    # 12 calls, 0 with a NaN/Inf in an input, 1 in an output; the place is FILE:LINE, then the rank, then the call
    # (each rank's records carry correlation lines: WORLD_SIZE is 2 and the names have no %r).
    assert re.fullmatch(rf"\s+12\s+0\s+1\s+norm\.rmsnorm\s+-\s+{re.escape(place)}{STAMP} thread \d+ call #4 arg\[0\]",
                        row), row
    assert f"first NaN/Inf overall: {place}" in s.stdout
    # --show: the whole call, inputs and outputs records, exactly as in the file.
    shown = s.stdout[s.stdout.index("==> first NaN/Inf overall"):].splitlines()
    assert shown[0].startswith("==> first NaN/Inf overall (output of norm.rmsnorm): ")
    start = max(i for i in range(nan_line) if text[i - 1] == "=" * 80 and i < nan_line - 10)
    end = next(i for i in range(nan_line, len(text) + 1) if text[i - 1] == "=" * 80)
    assert shown[1:] == text[start - 1:end], "\n".join(shown)
    assert text[nan_line - 1] in shown and any("FlashInfer API Call: norm.rmsnorm" in l for l in shown)


def test_summary_replay_hint_for_a_dumped_crash(tmp_path):
    p = flashlog(["-l", "10", "--dump-dir", "dumps", "-o", "run.log", "--", require(DRIVER), "crash", MODULE_DIR],
                 cwd=tmp_path)
    assert p.returncode == -signal.SIGABRT
    folder = next((tmp_path / "dumps").glob("*_testops.crash_call0001"))
    s = flashlog(["summary", "--show", "run.log"], cwd=tmp_path)
    assert s.returncode == 1
    lines = s.stdout.splitlines()
    log = (tmp_path / "run.log").read_text().splitlines()
    call = 1 + next(i for i, l in enumerate(log) if l.endswith("FlashInfer API Call: testops.crash"))
    at = lines.index(next(l for l in lines if l.startswith(f"did not return: run.log:{call} ")))
    assert lines[at + 1] == f"  replay: flashlog replay dumps/{folder.name}"
    assert f"==> did not return (testops.crash): run.log:{call} " in s.stdout
    shown = s.stdout[s.stdout.index("==> did not return"):]
    assert shown.endswith("  arg[0]:\n    3\n"), shown
    assert "FlashInfer API Call: testops.crash\n" in shown
    # From elsewhere, the dump is found beside the log.
    s = flashlog(["summary", tmp_path / "run.log"])
    assert f"  replay: flashlog replay {tmp_path / 'dumps' / folder.name}\n" in s.stdout


def on_a_terminal(args, env, cwd):
    """Runs flashlog in `cwd` with stdout on a pseudo-terminal; returns what it printed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(str(FLASHLOG), [str(FLASHLOG), *map(str, args)], clean_env(FLASHLOG_LIB=LIB, **env))
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return out.decode()


def test_summary_colour_width_and_no_color(tmp_path):
    logs = [log.name for log in nan_logs(tmp_path)]
    coloured = on_a_terminal(["summary", *logs], {"COLUMNS": "100"}, tmp_path)
    assert "\x1b[31m" in coloured and "\x1b[1m" in coloured
    plain = on_a_terminal(["summary", *logs], {"COLUMNS": "100", "NO_COLOR": "1"}, tmp_path)
    assert "\x1b[" not in plain and "first NaN/Inf overall: " in plain
    assert all(len(l) <= 100 for l in plain.splitlines()), plain
    # Piped: no colour and whole lines; COLUMNS fits them.
    piped = flashlog(["summary", *logs], cwd=tmp_path).stdout
    assert "\x1b[" not in piped and max(map(len, piped.splitlines())) > 100
    narrow = flashlog(["summary", *logs], env={"COLUMNS": "80"}, cwd=tmp_path).stdout
    assert all(len(l) <= 80 for l in narrow.splitlines()) and f"first NaN/Inf overall: {logs[1]}:" in narrow


def test_summary_refuses_files_that_are_not_logs(tmp_path):
    readme = REPO / "docs/log-format.md"  # holds example records, but mostly prose
    s = flashlog(["summary", readme])
    assert (s.returncode, s.stdout) == (2, "")
    assert re.fullmatch(rf"flashlog summary: {re.escape(str(readme))}: not a log \(\d+ of its \d+ lines are not "
                        r"records; give a log written by flashlog or FlashInfer\)\n", s.stderr), s.stderr
    # Beside a real log, the document's quoted records count for nothing.
    logs = nan_logs(tmp_path)
    alone = flashlog(["summary", logs[0]])
    both = flashlog(["summary", logs[0], readme])
    assert both.returncode == 2 and "not a log" in both.stderr
    assert both.stdout.count("file log-format.md: not a log (") == 1
    strip = lambda out: [l for l in out.splitlines() if not l.startswith("file log-format.md")]
    assert strip(both.stdout) == strip(alone.stdout)


def test_summary_cuda_error_lines_are_findings(tmp_path):
    """The CUDA error line another part of the library writes after a failing call: listed, shown, status 1."""
    log = tmp_path / "ok.log"
    assert flashlog(["-l3", "-o", log, "--", require(DRIVER), "errors", MODULE_DIR]).returncode == 0
    text = log.read_text().replace("Output value:\n  None\n",
                                   "Output value:\n  None\n[CUDA error after this call: CUDA_ERROR_ILLEGAL_ADDRESS (700)]\n")
    log.write_text(text)
    s = flashlog(["summary", "--show", log])
    assert s.returncode == 1
    lines = text.splitlines()
    at = 1 + lines.index("[CUDA error after this call: CUDA_ERROR_ILLEGAL_ADDRESS (700)]")
    call = 1 + next(i for i, l in enumerate(lines) if l.endswith("FlashInfer API Call: testops.noop"))
    place = f"{log}:{at} CUDA_ERROR_ILLEGAL_ADDRESS (700) after call testops.noop (call line {call})"
    assert f"\nfirst CUDA error: {place}\n" in s.stdout, s.stdout
    shown = s.stdout[s.stdout.index("==> first CUDA error (CUDA_ERROR_ILLEGAL_ADDRESS (700)): "):]
    assert shown.splitlines()[2].endswith("FlashInfer API Call: testops.noop"), shown  # the whole call, from its = line
    assert s.stdout.count("[CUDA error after this call:") == 1 and "unparsed lines: 0" in s.stdout


def test_replay_help_names_every_option():
    p = flashlog(["replay", "--help"], env={"FLASHLOG_PYTHON": sys.executable})
    assert p.returncode == 0, p.stderr
    assert "{replay}" not in p.stdout and p.stdout.startswith("usage: flashlog replay [-h]")
    helps = dict(re.findall(r"^  (?:-h, )?(--?\w+)(?: [A-Z]+)?\s+(\S.*)$", p.stdout, re.M))
    assert set(helps) >= {"--help", "--device", "--filter", "--rtol", "--atol", "--timeout"}, helps


def check_trace_events(events):
    """Every event has the fields the trace-event format requires for its phase."""
    for e in events:
        assert isinstance(e["name"], str) and e["ph"] in ("X", "i", "M") and isinstance(e["pid"], int), e
        assert isinstance(e["tid"], int), e
        if e["ph"] in ("X", "i"):
            assert isinstance(e["ts"], int) and e["ts"] >= 0 and isinstance(e["args"], dict), e
        if e["ph"] == "X":
            assert isinstance(e["dur"], int) and e["dur"] >= 1, e
        if e["ph"] == "i":
            assert e["s"] in ("t", "p", "g"), e
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name") and isinstance(e["args"]["name"], str), e


def test_export_trace(tmp_path):
    import json
    logs = nan_logs(tmp_path)
    crashed = tmp_path / "crash.log"
    flashlog(["-l", "3", "-o", crashed, "--", require(DRIVER), "crash-segv", MODULE_DIR])
    threads = tmp_path / "threads.log"
    p = flashlog(["-l3", f"-o{threads}", "--", require(DRIVER), "threads", MODULE_DIR, 4, 50])
    assert p.returncode == 0
    out = tmp_path / "trace.json"
    p = flashlog(["export", "--trace", *logs, crashed, threads, "-o", out])
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    events = doc["traceEvents"]
    check_trace_events(events)
    # One slice per call of each log.
    calls = sum(f.read_text().count("FlashInfer API Call:") for f in (*logs, crashed, threads))
    slices = [e for e in events if e["ph"] == "X"]
    assert len(slices) == calls == 12 + 2 + 200 and f"{calls} calls from 4 logs" in p.stderr
    # Tracks: a process per file (named with its rank), a thread track per thread of the threaded run.
    names = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert any(n.startswith(f"rank 1 of 2: {logs[1]} (pid ") for n in names), names
    pid_threads = {e["pid"] for e in slices if e["args"]["place"].startswith(str(threads))}
    assert len(pid_threads) == 1
    tids = {e["tid"] for e in slices if e["pid"] in pid_threads}
    assert 2 <= len(tids) <= 5  # the first thread's early calls are uncorrelated (tid 0)
    # The NaN, with the statistics of the call in its slice's arguments, and the call that did not return.
    nan = [e for e in events if e["ph"] == "i" and e["name"].startswith("NaN/Inf: norm.rmsnorm")]
    assert len(nan) == 1 and nan[0]["args"]["kind"] == "output" and nan[0]["args"]["place"].startswith(f"{logs[1]}:")
    planted = [e for e in slices if "nan_count=32" in e["args"].get("arg[0] (after)", "")]
    assert len(planted) == 1 and "min=" in planted[0]["args"]["arg[1]"]
    died = [e for e in events if e["ph"] == "i" and e["name"] == "did not return: testops.segv"]
    assert len(died) == 1
    assert [e["args"]["outcome"] for e in slices if e["name"] == "testops.segv"] == ["did not return"]
    # Calls of one thread are in the order of their records.
    first = [e for e in slices if e["pid"] in pid_threads and e["tid"] == sorted(tids)[-1]]
    assert [e["ts"] for e in first] == sorted(e["ts"] for e in first)
    assert flashlog(["export", "--trace", "-o", out]).returncode == 2  # no log given
