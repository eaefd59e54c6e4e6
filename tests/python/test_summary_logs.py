"""`flashlog summary` on the logs users meet (issues 13, 14, 15): 16 interleaving threads with one planted NaN,
FlashInfer 0.7.4's own logger (recorded once, tests/data/flashinfer-0.7.4), both loggers in one file, appended
runs, ranks from the headers, and files that are not logs. Every case checks the exit status."""

import os
import re
import shutil
import subprocess
import sys

from conftest import FIXDIR, LIB, MODULE_DIR, REPO, clean_env, require

FLASHLOG = REPO / "target/release/flashlog"
DRIVER = FIXDIR / "tvm_driver"
DATA = REPO / "tests/data/flashinfer-0.7.4"
STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]"


def flashlog(args, env=None, timeout=120):
    e = clean_env(FLASHLOG_LIB=LIB, **(env or {}))
    return subprocess.run([str(require(FLASHLOG)), *map(str, args)], env=e, capture_output=True, text=True,
                          timeout=timeout)


def summary(*paths):
    return flashlog(["summary", *paths])


def test_sixteen_threads_planted_nan_names_exactly_that_call(tmp_path):
    log = tmp_path / "threads.log"
    args = [require(DRIVER), "threads-nan", MODULE_DIR, 16, 1000, 7, 500]
    plain = subprocess.run(list(map(str, args)), env=clean_env(), capture_output=True, text=True, timeout=120)
    shimmed = flashlog(["-l5", f"-o{log}", "--", *args])
    # The host sees the same thing with and without the shim (the thread id differs from run to run).
    tid_free = lambda out: re.sub(r"thread=\d+", "thread=T", out)
    assert (shimmed.returncode, tid_free(shimmed.stdout)) == (plain.returncode, tid_free(plain.stdout)) == (
        0, "planted thread=T call=500 nan_in_output=1\nthreads=16 calls_ok=16000\n")
    tid = re.search(r"planted thread=(\d+)", shimmed.stdout).group(1)
    text = log.read_text()

    # The planted call is the one inputs record with eps = nan; its correlation line names thread and number.
    planted = re.findall(r"FlashInfer API Call: norm\.rmsnorm\n\[call norm\.rmsnorm #(\d+) thread (\d+) at [\d:.]+\]\n"
                         r"(?:(?!\n={80}\n).)*?  arg\[3\]:\n    nan\n", text, re.S)
    assert len(planted) == 1, planted[:3]
    number, thread = planted[0]
    assert thread == tid

    # The threads did interleave, the planted call too, by handshakes and never by timing (tvm_driver threads-nan:
    # the planted call starts once every thread has logged, so it has its correlation line, and waits inside the
    # module until another thread's call has run): pairing an outputs record with the latest unfinished call would
    # blame another thread's call.
    tags = re.findall(r"^\[call norm\.rmsnorm #(\d+) thread (\d+) at [\d:.]+\]\n(Output value:|-{80})$", text, re.M)
    # Correlation lines start when a second thread logs: only the calls before that have none (how many depends
    # on the scheduling), and every record from then on has one. The decision is made before a record is built,
    # so the first thread's one call in flight when the second thread logged may land after tagged records: all
    # untagged records but the last are the file's first ones.
    heads = re.findall(r"FlashInfer API Call: norm\.rmsnorm\n(\[call )?", text)
    untagged = [i for i, tagged in enumerate(heads) if not tagged]
    assert len(heads) == 16000 and untagged[:-1] == list(range(len(untagged) - 1)) and len(untagged) <= 1000
    assert 2 * (16000 - len(untagged)) <= len(tags) <= 2 * 16000
    interleaved = sum(1 for a, b in zip(tags, tags[1:]) if a[2].startswith("-") and b[:2] != a[:2])
    assert interleaved > 0
    at = tags.index((number, thread, "-" * 80))
    assert tags[at + 1][:2] != (number, thread), "the planted call was not interleaved"

    s = summary(log)
    assert s.returncode == 1, s.stderr  # a NaN was found
    row = next(line for line in s.stdout.splitlines() if "norm.rmsnorm" in line)
    want = rf"\s+16000\s+0\s+1\s+norm\.rmsnorm\s+-\s+{re.escape(str(log))}:\d+ {STAMP} thread {tid} call #{number} arg\[0\]"
    assert re.fullmatch(want, row), row
    assert re.search(rf"^first NaN/Inf overall: {re.escape(str(log))}:\d+ {STAMP} thread {tid} call #{number} arg\[0\] "
                     r"norm\.rmsnorm output$", s.stdout, re.M), s.stdout
    assert "did not return" not in s.stdout and "without their inputs record" not in s.stdout
    assert s.stdout.endswith("unparsed lines: 0\n")


def test_single_thread_logs_keep_todays_shape(tmp_path):
    log = tmp_path / "one.log"
    p = flashlog(["-l3", f"-o{log}", "--", require(DRIVER), "threads", MODULE_DIR, 1, 50])
    assert p.returncode == 0 and p.stdout == "threads=1 calls_ok=50\n"
    assert "[call " not in log.read_text()
    assert summary(log).returncode == 0


def test_flashinfer_only_log():
    s = summary(DATA / "python.log")
    assert s.returncode == 1, s.stderr  # a NaN in an output and a call that did not return
    rows = {line.split()[3]: line for line in s.stdout.splitlines()[1:] if re.match(r"\s+\d+ ", line)}
    assert set(rows) == {"crash_in_module", "normalize_rows", "rmsnorm"}
    assert re.fullmatch(rf"\s+3\s+0\s+1\s+normalize_rows\s+-\s+\S*/python\.log:125 {STAMP} result", rows["normalize_rows"])
    assert re.search(rf"^raised: \S*/python\.log:53 {STAMP} rmsnorm$", s.stdout, re.M)
    assert re.search(rf"^did not return: \S*/python\.log:170 {STAMP} crash_in_module$", s.stdout, re.M)
    assert "without its exit line" not in s.stdout  # FlashInfer's logger writes none
    assert len(re.findall("^did not return", s.stdout, re.M)) == 1
    assert re.search(rf"^first NaN/Inf overall: \S*/python\.log:125 {STAMP} result normalize_rows output$", s.stdout, re.M)
    assert "file python.log: 1 run, 9 records\n" in s.stdout
    assert s.stdout.endswith("unparsed lines: 0\n")  # keyword and default sections are grammar, not noise

    clean = summary(DATA / "python-clean.log")
    assert clean.returncode == 0, clean.stdout  # a raised exception is not a finding
    assert re.search(rf"^raised: \S*/python-clean\.log:53 {STAMP} rmsnorm$", clean.stdout, re.M)
    assert "did not return" not in clean.stdout and "first NaN/Inf overall: none\n" in clean.stdout


def test_both_loggers_in_one_file():
    s = summary(DATA / "both.log")
    assert s.returncode == 1
    dnr = re.findall(r"^did not return: \S*/both\.log:(\d+) \S+ \S+ (\S+)$", s.stdout, re.M)
    assert dnr == [("540", "crash_in_module"), ("558", "testops.crash")]  # the same crash, seen by both loggers
    raised = re.findall(r"^raised: \S*/both\.log:(\d+) \S+ \S+ (\S+)$", s.stdout, re.M)
    # rmsnorm raised in Python; rmsnorm_module raised after the module's own "Call failed" outputs record.
    assert raised == [("53", "rmsnorm"), ("226", "rmsnorm_module")]
    assert re.search(r"^\s+3\s+0\s+0\s+norm\.rmsnorm\s+-\s+-$", s.stdout, re.M)
    assert re.search(rf"^\s+3\s+0\s+1\s+normalize_rows\s+-\s+\S*/both\.log:369 {STAMP} result$", s.stdout, re.M)
    # Recorded before the exit line existed, and it crashed: the shim's run ended without one.
    assert re.search(r"^the run ended without its exit line: the last call started was testops\.crash "
                     r"\(\S*/both\.log:558, pid 20299\)$", s.stdout, re.M), s.stdout
    assert "file both.log: 1 run (pid 20299), 22 records\n" in s.stdout
    assert s.stdout.endswith("unparsed lines: 0\n")


def test_appended_runs(tmp_path):
    s = summary(DATA / "appended.log")
    assert s.returncode == 1
    assert "file appended.log: 2 runs (pid 20414, pid 20586), 40 records\n" in s.stdout
    # The first run crashed: its last call did not return, although the second run's records follow it.
    dnr = re.findall(r"^did not return: \S*/appended\.log:\d+ \(run (\d), pid (\d+)\) \S+ \S+ (\S+)$", s.stdout, re.M)
    assert dnr == [("1", "20414", "crash_in_module"), ("1", "20414", "testops.crash")]
    raised = re.findall(r"^raised: \S*/appended\.log:\d+ \(run (\d), pid \d+\) \S+ \S+ (\S+)$", s.stdout, re.M)
    assert raised == [("1", "rmsnorm"), ("1", "rmsnorm_module"), ("2", "rmsnorm"), ("2", "rmsnorm_module")]
    # FlashInfer's logger alone: runs are told apart by its system information record.
    two = tmp_path / "two.log"
    two.write_text((DATA / "python.log").read_text() + (DATA / "python-clean.log").read_text())
    s = summary(two)
    assert s.returncode == 1 and "file two.log: 2 runs, 15 records\n" in s.stdout
    assert re.search(rf"^did not return: \S*/two\.log:170 \(run 1\) {STAMP} crash_in_module$", s.stdout, re.M)
    assert len(re.findall("^raised: ", s.stdout, re.M)) == 2


def test_ranks_from_the_headers(tmp_path):
    """Two ranks at level 5, one with a NaN planted in its output. The headers carry `Rank: R of N (local L)`
    (written by the shim when the launcher variables are set; added here in that form where this build does not
    write it yet)."""
    logs = []
    for rank, plant in ((0, -1), (1, 3)):
        log = tmp_path / f"r_{rank}.log"
        env = {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"}
        p = flashlog(["-l5", f"-o{log}", "--", require(DRIVER), "threads-nan", MODULE_DIR, 1, 5, 0, plant], env=env)
        assert p.returncode == 0, p.stderr
        text = log.read_text()
        if "\nRank: " not in text:
            text = re.sub(r"(\nProcess: .*\n)", rf"\1Rank: {rank} of 2 (local {rank})\n", text, count=1)
            log.write_text(text)
        logs.append(log)
    s = summary(*logs)
    assert s.returncode == 1
    # A name without %r, with the launcher's WORLD_SIZE: the records carry correlation lines (the shim cannot know
    # that this test gives each rank its own name), so the place names the call too.
    assert re.search(rf"^first NaN/Inf overall: \S*/r_1\.log:\d+ \(rank 1 of 2\) {STAMP} thread \d+ call #4 arg\[0\] "
                     r"norm\.rmsnorm output$", s.stdout, re.M), s.stdout
    assert re.search(r"^file r_0\.log: rank 0 of 2, 1 run \(pid \d+\), 11 records$", s.stdout, re.M)
    assert re.search(r"^file r_1\.log: rank 1 of 2, 1 run \(pid \d+\), 11 records$", s.stdout, re.M)


def test_files_that_are_not_logs(tmp_path):
    script = tmp_path / "train.py"
    shutil.copy(__file__, script)
    s = summary(script)
    assert (s.returncode, s.stdout) == (2, "")
    assert s.stderr == f"flashlog summary: {script}: no records (not a flashlog or FlashInfer log?)\n"
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    binary = tmp_path / "random.bin"
    binary.write_bytes(os.urandom(1 << 16))
    s = summary(empty, binary, tmp_path / "missing.log")
    assert s.returncode == 2 and s.stdout == ""
    assert "empty.log: no records" in s.stderr and "random.bin: no records" in s.stderr
    assert "missing.log: No such file or directory" in s.stderr
    assert summary().returncode == 2
    # A good log beside a bad one: the table of the good one, and still exit status 2.
    s = summary(DATA / "python-clean.log", script)
    assert s.returncode == 2 and "rmsnorm" in s.stdout and "file train.py: 1 run, no records\n" in s.stdout


FORK_SCRIPT = """
import os, sys, threading
import numpy as np
import tvm_ffi
norm = tvm_ffi.load_module(sys.argv[1] + "/norm/norm.so")
def calls(n):
    x = np.ones((2, 16), np.float32); w = np.ones(16, np.float32); out = np.zeros_like(x)
    for _ in range(n):
        norm.rmsnorm(tvm_ffi.from_dlpack(out), tvm_ffi.from_dlpack(x), tvm_ffi.from_dlpack(w), 1e-6, False)
def threads(k, n):
    ts = [threading.Thread(target=calls, args=(n,)) for _ in range(k)]
    [t.start() for t in ts]; [t.join() for t in ts]
threads(4, 50)
pid = os.fork()
if pid == 0:
    calls(3)          # the child's only thread at first: today's shape
    threads(2, 5)     # then a second thread: correlation lines, numbers counted in the child from 1
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child", pid, status)
"""


def test_forked_child_numbers_its_own_calls(tmp_path):
    script = tmp_path / "fork_threads.py"
    script.write_text(FORK_SCRIPT)
    p = flashlog(["-l3", "-o", tmp_path / "p_%i.log", "--", sys.executable, script, MODULE_DIR], timeout=120)
    assert p.returncode == 0, p.stderr
    child = re.search(r"child (\d+) 0", p.stdout).group(1)
    logs = {f.name: f.read_text() for f in tmp_path.glob("p_*.log")}
    assert len(logs) == 2
    child_log = logs.pop(f"p_{child}.log")
    parent_log = logs.popitem()[1]
    assert len(re.findall(r"^\[call norm\.rmsnorm #\d+ thread \d+ at [\d:.]+\]$", parent_log, re.M)) >= 2 * 150  # threads 2 to 4 at least
    tags = [(int(n), int(t)) for n, t in re.findall(r"^\[call norm\.rmsnorm #(\d+) thread (\d+) at [\d:.]+\]$", child_log, re.M)]
    uncorrelated = re.findall(r"FlashInfer API Call: norm\.rmsnorm\n-{80}\n", child_log)
    assert len(uncorrelated) == 3 and child_log.index("[call ") > child_log.rindex(uncorrelated[0])
    assert sorted({n for n, _ in tags}) == list(range(4, 14))  # 10 threaded calls, numbered after the first 3
    assert int(child) not in {t for _, t in tags}  # the child's main thread did not log in threads
    assert summary_text(parent_log, tmp_path) == 0
    # The child left by os._exit: no exit line, so its run is listed as one that ended without it (status 1).
    assert "[flashlog exit: " not in child_log and "[flashlog exit: " in parent_log
    assert summary_text(child_log, tmp_path) == 1


def summary_text(text, tmp_path):
    f = tmp_path / "one.log"
    f.write_text(text)
    s = summary(f)
    assert "did not return" not in s.stdout and "without their inputs record" not in s.stdout, s.stdout
    return s.returncode
