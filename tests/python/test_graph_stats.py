"""Statistics at CUDA graph replay (FLASHLOG_GRAPH_STATS=1) and the NaN watch (FLASHLOG_WATCH=nonfinite), issue 10,
with the fake driver of tests/fixtures/cuda: captured copies into page-locked memory and host functions become graph
nodes, replays run them in order with host functions on the driver's own thread, and every call a real driver
refuses during a capture fails and invalidates it. `graph_replay` captures cudaops calls once and replays the graph
with new data written between replays; every expected statistic here is computed by numpy from the data the program
printed."""

import re
import subprocess

import ml_dtypes
import numpy as np
import pytest

from conftest import DASH, EQ, FIXDIR, MODULE_DIR, REPO, STAMP, clean_env, require, run, split_records

PROGRAM = FIXDIR / "cuda/graph_replay"
CUDAOPS = MODULE_DIR / "cudaops/cudaops.so"
ROUTES = ["plt", "plt_legacy", "plt_ptsz", "to_graph", "dlsym", "procaddr", "procaddr_ptsz", "runtime"]
OLD_SKIP = "[statistics skipped: CUDA graph capture in progress]"
GRAPH_ON = {"FLASHLOG_GRAPH_STATS": 1}


def run_pair(tmp_path, args, env=None, level=5, name="g", fake=None):
    """The program without the shim and with it; asserts the host saw the same (exit code and stdout; the lines
    of concurrent threads in any order); returns (stdout, log text)."""
    exe = require(PROGRAM)
    base = {"FLASHINFER_MODULE": require(CUDAOPS), **(fake or {})}
    plain = run([exe, *args], preload=False, env=base)
    log = tmp_path / f"{name}.log"
    shimmed = run([exe, *args], level=level, dest=log, env={**base, **(env or {})})
    lines = lambda p: sorted(p.stdout.splitlines()) if "--threads" in args else p.stdout
    assert (shimmed.returncode, lines(shimmed)) == (plain.returncode, lines(plain)), shimmed.stderr
    assert plain.returncode == 0, plain.stdout + plain.stderr
    summary = dict(kv.split("=", 1) for kv in plain.stdout.splitlines()[-1].split()[1:])
    assert (summary["invalidated"], summary["unsafe_calls"], summary["hostfn_cuda_calls"]) == ("0", "0", "0")
    assert (summary["failures"], summary["exit"]) == ("0", "0")
    return shimmed.stdout, (log.read_text() if log.exists() else "")


def data(stdout):
    """{(thread, replay): {"in": array, "out": array, "nc": array, "fp8": array}} from the program's lines."""
    found = {}
    for line in stdout.splitlines():
        m = re.match(r"t=(\d+) replay=(\d+) (.*)$", line)
        if not m:
            continue
        entry = found.setdefault((int(m[1]), int(m[2])), {})
        for key, value in re.findall(r"(\w+)=(\S+)", m[3]):
            if key == "fp8":
                entry[key] = np.frombuffer(bytes(int(b, 16) for b in value.split(",")), dtype=ml_dtypes.float8_e4m3fn)
            elif key in ("in", "out", "nc", "host"):
                entry[key] = np.array([float(v) for v in value.split(",")], dtype=np.float32)
    return found


def fmt(v):
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.6f" % v


def stats(a):
    """The level-5 lines numpy computes for a float tensor: min/max propagate NaN, mean over all in float64."""
    v = np.asarray(a).astype(np.float64).ravel()
    nan = int(np.isnan(v).sum())
    mn, mx = (float("nan"), float("nan")) if nan else (v.min(), v.max())
    return [f"min={fmt(mn)}", f"max={fmt(mx)}", f"mean={fmt(v.mean())}", f"nan_count={nan}",
            f"inf_count={int(np.isinf(v).sum())}"]


def replay_record_texts(log):
    """The text of every replay record, found by its header line (each is written whole, with one write, but
    between other threads' inputs and outputs records, which split_records pairs by position): from the `=`
    line before the header to the blank line after its closing `=` line."""
    lines = log.split("\n")
    for i, line in enumerate(lines):
        if re.fullmatch(rf"{STAMP} FlashInfer Graph Replay: .*", line):
            end = next(j for j in range(i + 2, len(lines) - 1) if lines[j] == EQ and lines[j + 1] == "")
            yield "\n".join(lines[i - 1:end + 2])


def replay_records(log, name):
    """{(id, replay): {("before"|"after", arg): [lines]}} of the replay records of `name`, checking their frame."""
    found = {}
    for rec in replay_record_texts(log):
        m = re.search(rf"^{STAMP} FlashInfer Graph Replay: {re.escape(name)} \(id=(\d+), replay (\d+)\)$", rec, re.M)
        if not m:
            continue
        lines = rec.split("\n")
        assert lines[0] == EQ and lines[2] == DASH and lines[-2] == EQ and lines[-1] == "", rec
        body, phase, arg, blocks = lines[3:-2], None, None, {}
        for line in body:
            if line == "Tensor arguments before the call:":
                phase = "before"
            elif line == "Tensor arguments after the call:":
                phase = "after"
            elif mm := re.fullmatch(r"  arg\[(\d+)\]( \(after\))?:", line):
                assert (mm[2] is not None) == (phase == "after"), rec
                arg = int(mm[1])
                blocks[(phase, arg)] = []
            else:
                assert line.startswith("    ") and arg is not None, rec
                blocks[(phase, arg)].append(line.strip())
        key = (int(m[1]), int(m[2]))
        assert key not in found, f"replay record twice: {key}"
        found[key] = blocks
    return found


def call_records(log, name):
    return [r for r in split_records(log) if f"FlashInfer API Call: {name}" in r and r.startswith(EQ)]


def deferred_id(log, name):
    ids = {int(i) for r in call_records(log, name) for i in re.findall(r"\[statistics deferred to graph replay: id=(\d+)\]", r)}
    assert len(ids) == 1, ids
    return ids.pop()


def expect_scale2(d):
    return {("before", 0): stats(np.zeros(16)), ("before", 1): stats(d["in"]),
            ("after", 0): stats(d["out"]), ("after", 1): stats(d["in"])}


def expect_noop(d):
    view = d["nc"].reshape(4, 8)[:, ::2]
    return {("before", 0): stats(view), ("before", 1): stats(d["fp8"]), ("before", 2): stats(d["host"]),
            ("after", 0): stats(view), ("after", 1): stats(d["fp8"]), ("after", 2): stats(d["host"])}


@pytest.mark.parametrize(
    "route,mode", [(r, "global") for r in ROUTES] + [("plt", "thread_local"), ("runtime", "relaxed")]
)
def test_replay_statistics_by_every_capture_route(tmp_path, route, mode):
    stdout, log = run_pair(tmp_path, ["--route", route, "--mode", mode, "--extra"], env=GRAPH_ON)
    replays = data(stdout)
    assert sorted(replays) == [(0, 1), (0, 2), (0, 3)]
    sid, nid = deferred_id(log, "cudaops.scale2"), deferred_id(log, "cudaops.noop")
    assert sid != nid
    # The captured call's records: every tensor block deferred (4 per call), none skipped.
    captured = [r for r in call_records(log, "cudaops.scale2") if "deferred" in r]
    assert len(captured) == 1 and captured[0].count("[statistics deferred to graph replay:") == 4
    assert OLD_SKIP not in log and "statistics error" not in log
    assert "nan_count=0" in log and not re.search(r"(nan|inf)_count=[1-9]", log)
    scale2, noop = replay_records(log, "cudaops.scale2"), replay_records(log, "cudaops.noop")
    assert sorted(scale2) == [(sid, 1), (sid, 2), (sid, 3)]
    assert sorted(noop) == [(nid, 1), (nid, 2), (nid, 3)]
    for r in (1, 2, 3):
        assert scale2[(sid, r)] == expect_scale2(replays[(0, r)]), r
        assert noop[(nid, r)] == expect_noop(replays[(0, r)]), r


def test_nan_watch_writes_only_the_replay_with_a_nan(tmp_path):
    args = ["--extra", "--nan-at", "2"]
    stdout, log = run_pair(tmp_path, args, env={**GRAPH_ON, "FLASHLOG_WATCH": "nonfinite"}, name="watch")
    replays = data(stdout)
    scale2, noop = replay_records(log, "cudaops.scale2"), replay_records(log, "cudaops.noop")
    assert [k[1] for k in scale2] == [2] and noop == {}
    (only,) = scale2.values()
    assert only == expect_scale2(replays[(0, 2)])
    assert "nan_count=1" in log
    # No call record: the eager call held no NaN, the captured ones had no statistics at capture time.
    assert "FlashInfer API Call" not in log
    lines = [l for l in log.splitlines() if "flashlog watch:" in l]
    assert len(lines) == 1 and re.fullmatch(
        STAMP + r" flashlog watch: 1 calls and 6 graph replays checked, 1 with NaN or Inf", lines[0]), lines
    # Without the watch: all three replays of both calls.
    stdout, log = run_pair(tmp_path, args, env=GRAPH_ON, name="all")
    scale2 = replay_records(log, "cudaops.scale2")
    assert sorted(k[1] for k in scale2) == [1, 2, 3] and len(replay_records(log, "cudaops.noop")) == 3
    for (_, r), blocks in scale2.items():
        assert blocks == expect_scale2(data(stdout)[(0, r)])
    assert "flashlog watch" not in log
    # flashlog summary names the replay that first produced a NaN, and its call.
    summary = subprocess.run([str(REPO / "target/release/flashlog"), "summary", str(tmp_path / "all.log")],
                             env=clean_env(), capture_output=True, text=True, timeout=60)
    sid = deferred_id(log, "cudaops.scale2")
    assert summary.returncode == 1, summary.stdout  # 1: a NaN was found
    assert re.search(rf"first NaN/Inf overall: \S*all\.log:\d+ {STAMP} graph id={sid} replay 2 arg\[1\] "
                     rf"cudaops\.scale2 input\n", summary.stdout), summary.stdout


def test_nan_watch_eager_calls(tmp_path):
    """Eager calls under the watch: make_nan's records (held inputs + outputs, one write) only; scale2 none."""
    exe = require(FIXDIR / "cuda/capture_plt")
    for export, want in (("make_nan", 2), ("scale2", 0)):
        env = {"FLASHINFER_MODULE": require(CUDAOPS), "FLASHINFER_EXPORT": export}
        plain = run([exe], preload=False, env=env)
        log = tmp_path / f"{export}.log"
        shimmed = run([exe], level=5, dest=log, env={**env, "FLASHLOG_WATCH": "nonfinite"})
        assert (shimmed.returncode, shimmed.stdout) == (plain.returncode, plain.stdout) and plain.returncode == 0
        text = log.read_text()
        records = call_records(text, f"cudaops.{export}")
        assert len(records) == want
        for r in records:
            # The inputs record and the outputs record, together: level 5 as usual, NaN after the call.
            assert "Positional input arguments:" in r and "Tensor arguments after the call:" in r
            assert "nan_count=16" in r.split("Tensor arguments after the call:")[1]
        # 2 eager calls checked (the captured ones had no statistics to check).
        assert re.search(rf"flashlog watch: 2 calls and 0 graph replays checked, {want} with NaN or Inf\n"
                         r"\[flashlog exit: pid \d+, \d+ records?\]\n$", text)


def test_nan_watch_silent_in_processes_that_watch_nothing(tmp_path):
    log = tmp_path / "none.log"
    proc = run(["/bin/true"], level=5, dest=log, env={"FLASHLOG_WATCH": "nonfinite", **GRAPH_ON})
    assert proc.returncode == 0 and proc.stdout == proc.stderr == ""
    assert not log.exists()


def test_pool_exhausted_keeps_the_capture_and_says_why(tmp_path):
    stdout, log = run_pair(tmp_path, ["--extra"], env={**GRAPH_ON, "FLASHLOG_GRAPH_STATS_MB": 0})
    full = "[statistics skipped: graph statistics pool full (0 MiB)]"
    captured = [r for r in split_records(log) if "FlashInfer API Call" in r and full in r]
    assert len(captured) == 2 and captured[0].count(full) == 4 and captured[1].count(full) == 4
    # The CPU tensor needs no pool: the host function reads it itself.
    assert log.count("deferred to graph replay") == 2
    # The replay records keep the reason line for every tensor they could not cover.
    for name in ("cudaops.scale2", "cudaops.noop"):
        recs = replay_records(log, name)
        assert len(recs) == 3
        for (_, r), blocks in recs.items():
            assert {k for k in blocks if k[1] < 2} == {("before", 0), ("before", 1), ("after", 0), ("after", 1)}
            assert all(lines == [full] for k, lines in blocks.items() if k[1] < 2)
            if name == "cudaops.noop":
                assert blocks[("after", 2)] == stats(data(stdout)[(0, r)]["host"])


def test_capture_behind_the_shims_back(tmp_path):
    stdout, log = run_pair(tmp_path, ["--route", "unwrapped"], env=GRAPH_ON)
    reason = "[statistics skipped: graph statistics pool not prepared (capture begun by a route flashlog did not see)]"
    captured = [r for r in call_records(log, "cudaops.scale2") if reason in r]
    assert len(captured) == 1 and captured[0].count(reason) == 4
    assert "Graph Replay" not in log and "deferred" not in log


def test_capture_behind_the_shims_back_after_a_seen_one(tmp_path):
    stdout, log = run_pair(tmp_path, ["--then-unwrapped"], env=GRAPH_ON)
    assert "t=0 unwrapped capture begin=0 call=0 end=0 instantiate=0 replay=0 sync=0 result=ok" in stdout
    reason = "[statistics skipped: CUDA graph capture begun by a route flashlog did not see]"
    records = call_records(log, "cudaops.scale2")
    assert [r.count(reason) for r in records] == [0, 0, 4]
    assert records[1].count("[statistics deferred to graph replay: id=1]") == 4
    # Only the seen capture's graph writes replay records.
    assert sorted(replay_records(log, "cudaops.scale2")) == [(1, 1), (1, 2), (1, 3)]


def test_variable_off_is_todays_behaviour(tmp_path):
    stdout, log = run_pair(tmp_path, ["--extra"])
    captured = [r for r in split_records(log) if "FlashInfer API Call" in r and OLD_SKIP in r]
    assert len(captured) == 2 and [r.count(OLD_SKIP) for r in captured] == [4, 6]
    assert "Graph Replay" not in log and "deferred" not in log
    # Below level 5 the variable changes nothing either.
    stdout, log = run_pair(tmp_path, ["--extra"], env=GRAPH_ON, level=3, name="l3")
    assert "Graph Replay" not in log and "statistics" not in log


def test_every_kth_replay(tmp_path):
    stdout, log = run_pair(tmp_path, ["--replays", "5"], env={**GRAPH_ON, "FLASHLOG_GRAPH_STATS_EVERY": 2})
    recs = replay_records(log, "cudaops.scale2")
    assert sorted(k[1] for k in recs) == [2, 4]
    for (_, r), blocks in recs.items():
        assert blocks == expect_scale2(data(stdout)[(0, r)])


def test_eight_threads_capture_and_replay_at_once(tmp_path):
    stdout, log = run_pair(tmp_path, ["--threads", "8", "--extra"], env=GRAPH_ON)
    replays = data(stdout)
    assert len(replays) == 24
    # Every record is whole: the log is nothing but complete records.
    records = split_records(log)
    assert "".join(r if r.endswith("\n") else r + "\n" for r in records).count(EQ) == log.count(EQ)
    scale2, noop = replay_records(log, "cudaops.scale2"), replay_records(log, "cudaops.noop")
    assert len(scale2) == len(noop) == 24
    assert len({k[0] for k in scale2}) == 8 and {k[1] for k in scale2} == {1, 2, 3}
    # Each thread's data is distinct: the set of records is the set numpy expects, replay numbers included.
    want = {(r, repr(sorted(expect_scale2(d).items()))) for (t, r), d in replays.items()}
    got = {(k[1], repr(sorted(b.items()))) for k, b in scale2.items()}
    assert got == want
    want = {(r, repr(sorted(expect_noop(d).items()))) for (t, r), d in replays.items()}
    assert {(k[1], repr(sorted(b.items()))) for k, b in noop.items()} == want


def test_nan_watch_line_per_process_with_fork(tmp_path):
    """The parent's line counts the parent's calls; the child (which leaves with _exit) writes nothing."""
    driver, module_dir = require(FIXDIR / "tvm_driver"), MODULE_DIR
    plain = run([driver, "fork", module_dir], preload=False)
    proc = run([driver, "fork", module_dir], level=5, dest=tmp_path / "p_%i.log", env={"FLASHLOG_WATCH": "nonfinite"})
    assert proc.returncode == plain.returncode == 0
    parent, child = re.search(r"parent=(\d+) child=(\d+) child_status=0", proc.stdout).groups()
    logs = {f.name: f.read_text() for f in tmp_path.iterdir()}
    assert set(logs) == {f"p_{parent}.log"}
    text = logs[f"p_{parent}.log"]
    assert "FlashInfer API Call" not in text
    assert re.search(rf"\n{STAMP} flashlog watch: 2 calls and 0 graph replays checked, 0 with NaN or Inf\n"
                     r"\[flashlog exit: pid \d+, \d+ records?\]\n$", text)


def test_deferred_kernels_threads_and_a_second_capture(tmp_path):
    """FAKECUDA_DEFERRED=1 (kernels wait for a synchronisation), 3 threads through the runtime route, then a second
    capture behind the shim's back in each thread: every seen replay correct, nothing invalidated."""
    args = ["--route", "runtime", "--threads", "3", "--extra", "--then-unwrapped"]
    stdout, log = run_pair(tmp_path, args, env=GRAPH_ON, fake={"FAKECUDA_DEFERRED": 1})
    replays = data(stdout)
    scale2 = replay_records(log, "cudaops.scale2")
    assert len(scale2) == 9
    want = {(r, repr(sorted(expect_scale2(d).items()))) for (t, r), d in replays.items()}
    assert {(k[1], repr(sorted(b.items()))) for k, b in scale2.items()} == want
    assert log.count("[statistics skipped: CUDA graph capture begun by a route flashlog did not see]") == 3 * 4
