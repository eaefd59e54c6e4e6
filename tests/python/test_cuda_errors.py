"""FLASHLOG_SYNC=1 names the call behind a CUDA error (issue 21), with the fake driver's sticky errors: the cudaops
`fault` kernel puts the context into CUDA_ERROR_ILLEGAL_ADDRESS (700) when it runs, and every later driver call
returns 700. `cuda_errors` makes three eager calls (the second faults) or captures five calls into a graph (the
fourth faults at the third replay) and prints every return code it sees: the host must see the same with and
without the shim, and no capture may be invalidated."""

import py_compile
import re
import subprocess

import pytest

from conftest import DASH, FIXDIR, MODULE_DIR, REPO, STAMP, require, run, split_records

PROGRAM = FIXDIR / "cuda/cuda_errors"
CUDAOPS = MODULE_DIR / "cudaops/cudaops.so"
LAUNCHER = REPO / "target/release/flashlog"
ROUTES = ["plt", "plt_ptsz", "to_graph", "dlsym", "procaddr", "procaddr_ptsz", "runtime"]
ILLEGAL = "CUDA_ERROR_ILLEGAL_ADDRESS (700)"
AFTER = f"[CUDA error after this call: {ILLEGAL}]"
BEFORE = f"[CUDA error before this call: {ILLEGAL}, from earlier work]"
# The time a correlation form carries (docs/log-format.md): its value is the clock's, only its shape is checked.
AT = r" at \d{2}:\d{2}:\d{2}\.\d{6}"


def run_pair(tmp_path, args, level, env=None, name="c"):
    """The program without the shim and with it: same exit code and stdout; returns (stdout, log text)."""
    exe = require(PROGRAM)
    base = {"FLASHINFER_MODULE": require(CUDAOPS)}
    plain = run([exe, *args], preload=False, env=base)
    log = tmp_path / f"{name}.log"
    shimmed = run([exe, *args], level=level, dest=log, env={**base, **(env or {})})
    assert (shimmed.returncode, shimmed.stdout) == (plain.returncode, plain.stdout), shimmed.stderr
    assert "invalidated=0 unsafe_calls=0" in plain.stdout, plain.stdout
    return plain, (log.read_text() if log.exists() else "")


def calls(log):
    """(name, text) of each call, inputs and outputs records together (one thread, no launch records)."""
    found = []
    for r in split_records(log):
        m = re.search(STAMP + r" FlashInfer API Call: (\S+)\n", r)
        if m:
            found.append((m[1], r))
    return found


@pytest.mark.parametrize("level", [3, 5])
def test_the_faulting_call_is_named_eagerly(tmp_path, level):
    plain, log = run_pair(tmp_path, ["eager"], level, {"FLASHLOG_SYNC": 1, "FLASHLOG_KERNELS": ""})
    # The host saw its own error as without the shim: the third call fails, the final synchronisation too.
    assert "call2 rc=0" in plain.stdout and "call3 rc=-1" in plain.stdout and "sync rc=700" in plain.stdout
    assert plain.returncode == 4
    (n1, first), (n2, fault), (n3, third) = calls(log)
    assert (n1, n2, n3) == ("cudaops.scale2", "cudaops.fault", "cudaops.scale2")
    assert "CUDA error" not in first
    # The faulting call: a clean start, the after line first in its outputs record.
    assert BEFORE not in fault and f"    )\n{AFTER}\nOutput value:" in fault, fault
    # The next call finds the context failed: the before line right after its dashes; and its own after line.
    assert f"{DASH}\n{BEFORE}\nPositional input arguments:" in third, third
    assert f"    )\n{AFTER}\nCall failed:" in third, third
    assert log.count(AFTER) == 2 and log.count(BEFORE) == 1


def test_level_1_writes_the_after_line_with_the_call(tmp_path):
    _, log = run_pair(tmp_path, ["eager"], 1, {"FLASHLOG_SYNC": 1, "FLASHLOG_KERNELS": ""})
    lines = log.splitlines()
    calls = [i for i, l in enumerate(lines) if " FlashInfer API Call: " in l]
    assert len(calls) == 3
    pid_thread = re.search(r"Process: (\d+)", log)[1]
    assert re.fullmatch(rf"{re.escape(AFTER)} \[call cudaops\.fault #2 thread {pid_thread}{AT}\]", lines[calls[1] + 1])
    assert lines[calls[2] + 1] == BEFORE
    assert re.fullmatch(rf"{re.escape(AFTER)} \[call cudaops\.scale2 #3 thread {pid_thread}{AT}\]", lines[calls[2] + 2])


def test_without_sync_records_are_as_before_with_the_error_named(tmp_path):
    plain, log = run_pair(tmp_path, ["eager"], 5)
    assert "CUDA error after" not in log and "CUDA error before" not in log
    # The shim's own statistics fail after the fault: by name and code, never a bare "failed" and never
    # "capture in progress" for a capture query that failed.
    assert f"[statistics skipped: capture status unknown (cuStreamIsCapturing: {ILLEGAL})]" in log
    assert "failed]" not in log and "capture in progress" not in log
    baseline, _ = run_pair(tmp_path, ["eager"], 5, {"FLASHLOG_SYNC": 1}, name="sync")
    assert baseline.stdout == plain.stdout


@pytest.mark.parametrize("name, value, then", [("FLASHLOG_SYNC", "yes", "no synchronisation around calls"),
                                               ("FLASHLOG_GRAPH_MARKERS", "on", "no graph markers"),
                                               ("FLASHLOG_GPU_STATS", "off", "the GPU statistics kernel stays on")])
def test_a_switch_with_a_bad_value_is_one_stderr_line(tmp_path, name, value, then):
    exe = require(PROGRAM)
    base = {"FLASHINFER_MODULE": require(CUDAOPS)}
    plain = run([exe, "eager"], preload=False, env=base)
    log = tmp_path / "bad.log"
    shimmed = run([exe, "eager"], level=3, dest=log, env={**base, name: value})
    assert (shimmed.returncode, shimmed.stdout) == (plain.returncode, plain.stdout)
    assert shimmed.stderr.count("flashlog:") == 1, shimmed.stderr
    assert f"flashlog: {name}='{value}' is not 0 or 1; {then}\n" in shimmed.stderr
    assert "CUDA error" not in log.read_text()  # FLASHLOG_SYNC stayed off


def test_level_0_and_no_sync_change_nothing(tmp_path):
    plain, log = run_pair(tmp_path, ["eager"], 0, {"FLASHLOG_SYNC": 1})
    assert log == ""


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("markers", [0, 1])
def test_a_fault_inside_a_graph_replay_names_graph_replay_and_calls(tmp_path, route, markers):
    env = {"FLASHLOG_SYNC": 1, "FLASHLOG_GRAPH_MARKERS": markers, "FLASHLOG_KERNELS": ""}
    plain, log = run_pair(tmp_path, ["graph", "--route", route], 3, env)
    assert "replay=3 write=0 launch=0 sync=700" in plain.stdout and "capture begin=0 calls=0,0,0,0,0" in plain.stdout
    errs = [r for r in split_records(log) if " FlashInfer Graph Replay Error: " in r]
    assert len(errs) == 1, log
    rec = errs[0].splitlines()[1:-1]
    assert re.fullmatch(STAMP + " FlashInfer Graph Replay Error: graph id=1, replay 3", rec[0]), rec[0]
    assert rec[1] == DASH and rec[2] == f"[CUDA error after this replay: {ILLEGAL}]"
    assert rec[3] == "FlashInfer calls captured into this graph, in capture order:"
    names = ["scale2", "scale2", "scale2", "fault", "scale2"]
    tid = re.search(r"Process: (\d+)", log)[1]
    # Call #1 is the warm-up call; the captured calls are #2..#6, and each names its capture-time record.
    want = [f"  {i + 1}. cudaops.{n} [call cudaops.{n} #{i + 2} thread {tid}]" for i, n in enumerate(names)]
    assert rec[4:9] == want
    assert [n for n, _ in calls(log)] == ["cudaops.scale2"] + [f"cudaops.{n}" for n in names]
    progress = [f"last completed: cudaops.scale2 [call cudaops.scale2 #4 thread {tid}]",
                f"first not completed: cudaops.fault [call cudaops.fault #5 thread {tid}]"]
    assert rec[9:] == (progress if markers else [])
    # Replay 4 finds the context failed already: one line, not another record.
    assert f"[CUDA error at launch of graph id=1, replay 4: {ILLEGAL}, the context had failed already]" in log


def test_graph_replays_without_sync_write_nothing_new(tmp_path):
    _, log = run_pair(tmp_path, ["graph"], 3, {"FLASHLOG_GRAPH_MARKERS": 1, "FLASHLOG_KERNELS": ""})
    assert "Graph Replay Error" not in log and "CUDA error" not in log


def test_a_launch_record_inside_a_call_names_the_call(tmp_path):
    _, log = run_pair(tmp_path, ["launch"], 1, {"FLASHLOG_KERNELS": "*scale2*"})
    lines = log.splitlines()
    i = next(i for i, l in enumerate(lines) if " FlashInfer Kernel Launch: flashinfer::scale2(" in l)
    tid = re.search(r"Process: (\d+)", log)[1]
    assert lines[i - 1].endswith("FlashInfer API Call: cudaops.scale2")
    assert re.search(r"FlashInfer Kernel Launch: flashinfer::scale2\(float\*, float const\*, int\) "
                     rf"\[call cudaops\.scale2 #1 thread {tid}{AT}\]$", lines[i]), lines[i]


def test_launches_after_a_sticky_error_keep_their_kernel_names(tmp_path):
    # After the fault every driver call answers 700, cuFuncGetName included: the third call's launch of a kernel
    # seen before is still named (its handle cannot have been reused: nothing unloads in that state).
    _, log = run_pair(tmp_path, ["eager"], 1, {"FLASHLOG_KERNELS": "*"})
    launches = re.findall(rf"FlashInfer Kernel Launch: (.*) \[call (\S+) #(\d+) thread \d+{AT}\]$", log, re.M)
    assert launches == [("flashinfer::scale2(float*, float const*, int)", "cudaops.scale2", "1"),
                        ("flashinfer::fault_kernel(float*, int)", "cudaops.fault", "2"),
                        ("flashinfer::scale2(float*, float const*, int)", "cudaops.scale2", "3")], log
    assert "unnamed kernel" not in log


def test_summary_names_the_first_cuda_error_and_exits_1(tmp_path):
    launcher = require(LAUNCHER)
    _, eager = run_pair(tmp_path, ["eager"], 1, {"FLASHLOG_SYNC": 1}, name="eager")
    _, graph = run_pair(tmp_path, ["graph"], 3, {"FLASHLOG_SYNC": 1, "FLASHLOG_GRAPH_MARKERS": 1}, name="graph")
    _, clean = run_pair(tmp_path, ["launch"], 3, {"FLASHLOG_SYNC": 1}, name="clean")
    e, g, c = (tmp_path / f"{n}.log" for n in ("eager", "graph", "clean"))
    out = run([launcher, "summary", e, g], preload=False)
    assert out.returncode == 1, out.stdout + out.stderr
    first = [l for l in out.stdout.splitlines() if l.startswith("first CUDA error: ")]
    eager_line = 1 + eager.splitlines().index(next(l for l in eager.splitlines() if l.startswith(AFTER)))
    tid = re.search(r"Process: (\d+)", eager)[1]
    assert first[0] == f"first CUDA error: {e}:{eager_line} {ILLEGAL} after call cudaops.fault #2 thread {tid}"
    graph_line = 1 + graph.splitlines().index(f"[CUDA error after this replay: {ILLEGAL}]")
    gtid = re.search(r"Process: (\d+)", graph)[1]
    assert first[1] == (
        f"first CUDA error: {g}:{graph_line} {ILLEGAL} in graph id=1, replay 3 (last completed: cudaops.scale2 #4 "
        f"thread {gtid}, first not completed: cudaops.fault #5 thread {gtid})"
    )
    assert "unparsed lines: 0" in out.stdout
    ok = run([launcher, "summary", c], preload=False)
    assert ok.returncode == 0 and "first CUDA error" not in ok.stdout, ok.stdout


def test_the_gpu_check_of_a_real_fault_parses(tmp_path):
    """scripts/gpu-check.sh needs a GPU; here its shell, its embedded Python checks and fault.py must parse."""
    script = REPO / "scripts/gpu-check.sh"
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    text = script.read_text()
    assert "scripts/gpu-check/fault.py" in text and "write_at" in (REPO / "scripts/gpu-check/scale2.cu").read_text()
    blocks = re.findall(r"<<'PY'\n(.*?)\nPY\n", text, re.S)
    assert len(blocks) >= 4
    for i, block in enumerate(blocks + [(REPO / "scripts/gpu-check/fault.py").read_text()]):
        src = tmp_path / f"block{i}.py"
        src.write_text(block)
        py_compile.compile(str(src), doraise=True)


def test_a_refused_capture_end_is_written_by_name(tmp_path):
    """capture_plt --misbehave invalidates one capture itself (an unsafe synchronisation during it): under
    FLASHLOG_SYNC the driver's answer to the host's cuStreamEndCapture is written by name; the host sees the same."""
    exe = require(FIXDIR / "cuda/capture_plt")
    env = {"FLASHINFER_MODULE": require(CUDAOPS)}
    plain = run([exe, "--misbehave"], preload=False, env=env)
    log = tmp_path / "end.log"
    shimmed = run([exe, "--misbehave"], level=1, dest=log, env={**env, "FLASHLOG_SYNC": 1})
    assert (shimmed.returncode, shimmed.stdout) == (plain.returncode, plain.stdout)
    assert "end=901" in plain.stdout and "invalidated=1 " in plain.stdout
    lines = [l for l in log.read_text().splitlines() if l.startswith("[CUDA error")]
    assert lines == ["[CUDA error from cuStreamEndCapture: CUDA_ERROR_STREAM_CAPTURE_INVALIDATED (901)]"]
