"""The record's time in the correlation form (docs/log-format.md, "Correlation line"): `[call NAME #N thread T at
HH:MM:SS.ffffff]` with several threads, and from the first call with FLASHLOG_CORRELATE=1 (the launcher's
--correlate), at levels 1, 3 and 5 and on kernel-launch records; a one-thread log without it keeps FlashInfer's
shape; `flashlog export --trace` and `flashlog report` place calls at those times, and logs without them are read
as before. Times are only compared with each other and with the log's own headers, never with the wall clock or
with a duration."""

import datetime
import json
import re
import subprocess

import pytest

from conftest import EQ, FIXDIR, LIB, MODULE_DIR, REPO, STAMP, clean_env, require, run

DRIVER = FIXDIR / "tvm_driver"
CUDA_PROGRAM = FIXDIR / "cuda/cuda_errors"
FLASHLOG = REPO / "target/release/flashlog"
# A correlation form anywhere on a line: name, number, thread, and the time when it has one.
FORM = re.compile(r"\[call (\S+) #(\d+) thread (\d+)(?: at (\d{2}):(\d{2}):(\d{2})\.(\d{6}))?\]")


def flashlog(args, env=None):
    e = clean_env(FLASHLOG_LIB=LIB, **(env or {}))
    return subprocess.run([str(require(FLASHLOG)), *map(str, args)], env=e, capture_output=True, text=True,
                          timeout=300)


def micros_of_day(m):
    h, mi, s, us = (int(m.group(i)) for i in range(4, 8))
    return ((h * 60 + mi) * 60 + s) * 1_000_000 + us


def forms(text):
    """(kind, name, number, thread, time of day in us, line index) of every correlation form with a time: kind is
    `level1`, `inputs`, `outputs`, `launch` or `error` (a CUDA error line's form)."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = FORM.search(line)
        if not m:
            continue
        assert m.group(4), f"a form without its time: {line}"
        if "FlashInfer Kernel Launch: " in line:
            kind = "launch"
        elif line.startswith("[CUDA error"):
            kind = "error"
        elif lines[i - 1].endswith(f"FlashInfer API Call: {m.group(1)}"):
            framed = i >= 2 and lines[i - 2] == EQ
            kind = "inputs" if framed else "level1"
        else:
            kind = "outputs"
        out.append((kind, m.group(1), int(m.group(2)), int(m.group(3)), micros_of_day(m), i))
    return out


def unwrapped(times):
    """Times of day in order of the log, with a day added after each wrap through midnight."""
    out, day = [], 0
    for t in times:
        if out and t + day < out[-1] - 12 * 3600 * 1_000_000:
            day += 24 * 3600 * 1_000_000
        out.append(t + day)
    return out


def check_times(text):
    """Per thread the times do not decrease, a call's inputs time is at most its outputs time, and an inputs or
    level-1 form's second is its header's (one clock reading). Returns the forms."""
    found = forms(text)
    lines = text.splitlines()
    by_thread = {}
    for kind, name, number, thread, t, i in found:
        by_thread.setdefault(thread, []).append(t)
        if kind in ("inputs", "level1"):
            header = re.match(STAMP, lines[i - 1]).group(0)
            assert header[12:20] == lines[i][lines[i].index(" at ") + 4:][:8], (lines[i - 1], lines[i])
    for thread, times in by_thread.items():
        times = unwrapped(times)
        assert times == sorted(times), f"thread {thread}: times go back"
    calls = {}
    for kind, name, number, thread, t, _ in found:
        if kind in ("inputs", "outputs"):
            calls.setdefault((thread, number), {})[kind] = t
    for key, c in calls.items():
        # An outputs record alone: the first thread's call in flight when a second thread logged (its inputs
        # record was built before; docs/log-format.md); an inputs record alone: a call that did not return.
        assert set(c) in ({"inputs", "outputs"}, {"outputs"}, {"inputs"}), key
        if len(c) == 1:
            continue
        start, end = unwrapped([c["inputs"], c["outputs"]])
        assert start <= end, key
    return found


@pytest.mark.parametrize("level", ["1", "3", "5"])
def test_correlate_adds_the_line_and_nothing_else(tmp_path, level):
    """One thread: without FLASHLOG_CORRELATE no form at all (FlashInfer's shape; the golden tests keep it
    exact); with it, every call's records carry the timed line, and taking those lines out gives the default log.
    The host is the same in all three runs."""
    plain = run([require(DRIVER), "kinds", MODULE_DIR], preload=False)
    default = run([DRIVER, "kinds", MODULE_DIR], level=level, dest=tmp_path / "d.log")
    timed = run([DRIVER, "kinds", MODULE_DIR], level=level, dest=tmp_path / "c.log", env={"FLASHLOG_CORRELATE": 1})
    for p in (default, timed):
        assert (p.returncode, p.stdout, p.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    d, c = (tmp_path / "d.log").read_text(), (tmp_path / "c.log").read_text()
    assert "[call " not in d
    calls = d.count("FlashInfer API Call: ")
    found = check_times(c)
    kinds = [f[0] for f in found]
    if level == "1":
        assert kinds == ["level1"] * calls
    else:
        assert sorted(kinds) == sorted(["inputs", "outputs"] * calls)
    assert [f[2] for f in found if f[0] != "outputs"] == list(range(1, calls + 1))
    mask = lambda text: re.sub(r"data_ptr=0x[0-9a-f]+|Process: \d+|pid \d+", "X", re.sub(STAMP, "[TS]", text))
    assert mask(re.sub(r"^\[call .*\]\n", "", c, flags=re.M)) == mask(d)


@pytest.mark.parametrize("level", ["1", "3", "5"])
def test_several_threads_carry_the_time(tmp_path, level):
    log = tmp_path / "t.log"
    p = run([require(DRIVER), "threads", MODULE_DIR, 4, 50], level=level, dest=log, timeout=300)
    assert (p.returncode, p.stdout) == (0, "threads=4 calls_ok=200\n"), p.stderr
    text = log.read_text()
    found = check_times(text)
    assert len({f[3] for f in found}) >= 2  # the line comes once a second thread logs (it must have, to finish)
    # From the moment a second thread logs every record carries it (a level-1 record after its call line): the
    # untagged call lines are the file's first ones, but for the first thread's call in flight at that moment.
    heads = re.findall(r"FlashInfer API Call: norm\.rmsnorm\n(\[call )?", text)
    untagged = [i for i, tagged in enumerate(heads) if not tagged]
    assert len(heads) == 200 and untagged[:-1] == list(range(len(untagged) - 1)) and len(untagged) < 200
    assert sum(1 for f in found if f[0] in ("inputs", "level1")) == 200 - len(untagged)


def test_with_correlate_every_thread_from_the_first_call(tmp_path):
    log = tmp_path / "t.log"
    p = run([require(DRIVER), "threads", MODULE_DIR, 4, 50], level=3, dest=log, env={"FLASHLOG_CORRELATE": 1},
            timeout=300)
    assert p.returncode == 0, p.stderr
    text = log.read_text()
    found = check_times(text)
    assert sum(1 for f in found if f[0] == "inputs") == text.count("FlashInfer API Call: ") == 200
    assert sum(1 for f in found if f[0] == "outputs") == 200


def test_ranks_sharing_one_file_correlate_from_the_first_call(tmp_path):
    """Two ranks of a job (WORLD_SIZE=2) logging into one file, one thread each: their records interleave, so every
    record carries the line from the first call, and the summary pairs every call with its own outputs record
    whatever came between. A name with %r gives each rank its own file, in FlashInfer's shape."""
    log = tmp_path / "run.log"
    procs = [subprocess.Popen([str(require(DRIVER)), "threads", str(MODULE_DIR), "1", "300"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=clean_env(LD_PRELOAD=LIB, FLASHINFER_LOGLEVEL=3, FLASHINFER_LOGDEST=log,
                                            WORLD_SIZE=2, RANK=rank))
             for rank in (0, 1)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert (p.returncode, out) == (0, "threads=1 calls_ok=300\n"), err
    text = log.read_text()
    found = check_times(text)
    assert sum(1 for f in found if f[0] == "inputs") == text.count("FlashInfer API Call: ") == 600
    assert sum(1 for f in found if f[0] == "outputs") == 600
    s = flashlog(["summary", log])
    assert s.returncode == 0, s.stdout + s.stderr
    assert "did not return" not in s.stdout and "without their inputs record" not in s.stdout
    assert re.search(r"^ +600 +0 +0 +norm\.rmsnorm ", s.stdout, re.M) and " 2 runs (pid " in s.stdout, s.stdout
    p = run([DRIVER, "threads", MODULE_DIR, 1, 3], level=3, dest=tmp_path / "rank_%r.log",
            env={"WORLD_SIZE": 2, "RANK": 1})
    assert p.returncode == 0, p.stderr
    assert "[call " not in (tmp_path / "rank_1.log").read_text()


@pytest.mark.parametrize("level", ["1", "3"])
def test_launch_records_carry_their_own_time(tmp_path, level):
    """A kernel launched inside a call names the call with the launch record's time, which its header's second
    agrees with, and which lies between the call's inputs and outputs times."""
    log = tmp_path / "l.log"
    module = {"FLASHINFER_MODULE": require(MODULE_DIR / "cudaops/cudaops.so")}
    plain = run([require(CUDA_PROGRAM), "launch"], preload=False, env=module)
    p = run([CUDA_PROGRAM, "launch"], level=level, dest=log,
            env={**module, "FLASHLOG_KERNELS": "*scale2*", "FLASHLOG_CORRELATE": 1})
    assert (p.returncode, p.stdout, p.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    text = log.read_text()
    found = check_times(text)
    lines = text.splitlines()
    launches = [f for f in found if f[0] == "launch"]
    assert launches, text
    for _, name, number, thread, t, i in launches:
        header = re.match(STAMP, lines[i]).group(0)
        assert header[12:20] == lines[i][lines[i].rindex(" at ") + 4:][:8]
        own = {f[0]: f[4] for f in found if (f[2], f[3]) == (number, thread) and f[0] != "launch"}
        start = own.get("inputs", own.get("level1"))
        assert unwrapped([start, t]) == sorted([start, t])
        if "outputs" in own:
            assert unwrapped([start, t, own["outputs"]]) == sorted(unwrapped([start, t, own["outputs"]]))


def trace_of(tmp_path, log, name="trace.json"):
    out = tmp_path / name
    p = flashlog(["export", "--trace", log, "-o", out])
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text())["traceEvents"]


def test_trace_slices_come_from_the_fields(tmp_path):
    """Each call's slice starts at its inputs record's time and lasts until its outputs record's, measured from
    the log's first header second; the log's own fields are the reference."""
    log = tmp_path / "t.log"
    p = run([require(DRIVER), "threads", MODULE_DIR, 3, 40], level=3, dest=log, env={"FLASHLOG_CORRELATE": 1},
            timeout=300)
    assert p.returncode == 0, p.stderr
    text = log.read_text()
    first = datetime.datetime.strptime(re.search(STAMP, text).group(0), "[%Y-%m-%d %H:%M:%S]")
    zero_of_day = ((first.hour * 60 + first.minute) * 60 + first.second) * 1_000_000

    def since_zero(t):
        return unwrapped([zero_of_day, t])[1] - zero_of_day

    calls = {}
    for kind, name, number, thread, t, _ in forms(text):
        calls.setdefault((thread, number), {})[kind] = since_zero(t)
    slices = [e for e in trace_of(tmp_path, log) if e["ph"] == "X"]
    assert len(slices) == len(calls) == 120
    for s in slices:
        c = calls[(s["tid"], s["args"]["call"])]
        assert s["ts"] == c["inputs"], s
        assert s["dur"] == max(1, c["outputs"] - c["inputs"]), s


def test_old_logs_without_the_time_read_as_before(tmp_path):
    """The same log with the fields taken out (the format before them): the summary is the same, and the
    trace has the same calls on the same threads, one microsecond apart within a second in the order of the log."""
    log = tmp_path / "new.log"
    p = run([require(DRIVER), "threads-nan", MODULE_DIR, 4, 25, 1, 10], level=5, dest=log,
            env={"FLASHLOG_CORRELATE": 1}, timeout=300)
    assert p.returncode == 0, p.stderr
    old = tmp_path / "old.log"
    old.write_text(re.sub(r" at \d{2}:\d{2}:\d{2}\.\d{6}\]", "]", log.read_text()))
    assert " at " not in re.sub(r"^(?!\[call).*$", "", old.read_text(), flags=re.M)
    new_summary, old_summary = (flashlog(["summary", f]) for f in (log, old))
    assert new_summary.returncode == old_summary.returncode == 1  # the planted NaN
    assert new_summary.stdout.replace("new.log", "X") == old_summary.stdout.replace("old.log", "X")
    assert "thread" in new_summary.stdout and "unpaired" not in new_summary.stdout.lower()
    new_slices = [e for e in trace_of(tmp_path, log, "n.json") if e["ph"] == "X"]
    old_slices = [e for e in trace_of(tmp_path, old, "o.json") if e["ph"] == "X"]
    key = lambda e: (e["tid"], e["args"].get("call"), e["name"])
    assert sorted(map(key, new_slices)) == sorted(map(key, old_slices))
    assert len(old_slices) >= 100
    # Without the fields, times are the order of the records within their second.
    starts = sorted(e["ts"] for e in old_slices)
    assert len(set(starts)) == len(starts)
    assert all(e["ts"] % 1_000_000 <= 2 * len(old_slices) + 10 for e in old_slices)


def test_report_says_which_times_it_shows(tmp_path):
    timed, plain = tmp_path / "timed.log", tmp_path / "plain.log"
    for log, env in ((timed, {"FLASHLOG_CORRELATE": 1}), (plain, {})):
        p = run([require(DRIVER), "kinds", MODULE_DIR], level=3, dest=log, env=env)
        assert p.returncode == 0, p.stderr
    pages = {}
    for name, logs in (("t", [timed]), ("p", [plain]), ("b", [timed, plain])):
        out = tmp_path / f"{name}.html"
        p = flashlog(["report", *logs, "-o", out])
        assert p.returncode == 0, p.stderr
        pages[name] = out.read_text()
    assert "Times: the records' own, to the microsecond" in pages["t"]
    assert "Times: records carry their time to the second" in pages["p"]
    assert "Times: in 1 of the files, the records' own to the microsecond" in pages["b"]


@pytest.mark.parametrize("value", ["yes", "2", "true"])
def test_a_bad_value_is_one_line_and_the_default(tmp_path, value):
    log = tmp_path / "b.log"
    plain = run([require(DRIVER), "kinds", MODULE_DIR], preload=False)
    p = run([DRIVER, "kinds", MODULE_DIR], level=3, dest=log, env={"FLASHLOG_CORRELATE": value})
    assert (p.returncode, p.stdout) == (plain.returncode, plain.stdout)
    assert p.stderr == (f"flashlog: FLASHLOG_CORRELATE='{value}' is not 0 or 1; correlation lines only with "
                        "several threads\n")
    assert "[call " not in log.read_text()
    # A process that makes no FlashInfer call says nothing, whatever the value.
    quiet = run(["true"], level=3, dest=tmp_path / "q.log", env={"FLASHLOG_CORRELATE": value})
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert not (tmp_path / "q.log").exists()


def test_the_launcher_flag_sets_it(tmp_path):
    log = tmp_path / "f.log"
    p = flashlog(["-l", "3", "--correlate", "-o", log, "--", require(DRIVER), "kinds", MODULE_DIR])
    assert p.returncode == 0, p.stderr
    assert len(check_times(log.read_text())) == 2 * log.read_text().count("FlashInfer API Call: ")


@pytest.mark.parametrize("level", ["1", "3"])
def test_summary_names_the_call_a_correlated_run_died_in(tmp_path, level):
    """A run that aborts inside a call: with the correlation lines, the summary still names that call at its
    call line (a level-1 record is its call line and its correlation line) and its thread and number."""
    log = tmp_path / "crash.log"
    plain = run([require(DRIVER), "crash", MODULE_DIR], preload=False)
    p = run([DRIVER, "crash", MODULE_DIR], level=level, dest=log, env={"FLASHLOG_CORRELATE": 1})
    assert (p.returncode, p.stdout) == (plain.returncode, plain.stdout)
    text = log.read_text()
    check_times(text)
    lines = text.splitlines()
    line = next(i for i, l in enumerate(lines) if l.endswith("API Call: testops.crash")) + 1
    number, thread = FORM.search(lines[line]).group(2, 3)
    s = flashlog(["summary", log])
    assert s.returncode == 1, s.stdout
    pid = re.search(r"Process: (\d+)", text).group(1)
    assert (f"the run ended without its exit line: the last call started was testops.crash ({log}:{line}, "
            f"pid {pid}, thread {thread} call #{number})\n") in s.stdout, s.stdout
    shown = flashlog(["summary", "--show", log])
    assert f"[call testops.crash #{number} thread {thread} at " in shown.stdout, shown.stdout
