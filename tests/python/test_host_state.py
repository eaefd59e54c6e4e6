"""Hosts that change the process state under the shim (issue 18 items 4-7): a capture begun through
`RTLD_DEFAULT` (or on another thread) around a call whose tensor is page-locked or managed memory, a wrong
`num_args`, every descriptor closed and the numbers reused for the host's own files at level 10, a `chdir`
at level 10. Each runs the same program without the shim and compares exit code, output and errno (the
programs print the errno each call leaves)."""

import json
import re
import subprocess

import pytest

from conftest import FIXDIR, LIB, MODULE_DIR, clean_env, require, run

CAPTURE_UNSEEN = FIXDIR / "cuda/capture_unseen"
CUDAOPS = MODULE_DIR / "cudaops/cudaops.so"
HOST_STATE = FIXDIR / "hoststate/host_state"
STATEOPS = FIXDIR / "hoststate/flashinfer/stateops/stateops.so"
SKIPPED = "[statistics skipped: CUDA graph capture in progress]"


def same_as_plain(cmd, *, env=None, **kw):
    """Runs `cmd` without and with the shim (both with `env`); asserts the same exit code and stdout; returns
    both runs."""
    plain = run(cmd, preload=False, env=env, timeout=120)
    shimmed = run(cmd, env=env, timeout=120, **kw)
    assert shimmed.returncode == plain.returncode, shimmed.stderr
    assert shimmed.stdout == plain.stdout
    return plain, shimmed


def call_blocks(text, name):
    """The records of calls to `name`: inputs and outputs record together, in order."""
    return re.findall(r"FlashInfer API Call: " + re.escape(name) + r"\n(.*?)\n={80}\n\n", text, re.S)


# ---------------------------------------------------------------- item 4: captures the shim did not see
@pytest.mark.parametrize("level", ["5", "10"])
@pytest.mark.parametrize("mem", ["pinned", "managed", "device"])
@pytest.mark.parametrize("where", ["same", "blocking", "other-thread"])
def test_unseen_capture_around_a_call_is_never_invalidated(tmp_path, level, mem, where):
    log = tmp_path / "log.txt"
    env = {"FLASHINFER_MODULE": require(CUDAOPS), "FLASHINFER_EXPORT": "noop", "FLASHLOG_DUMP_DIR": tmp_path / "d"}
    plain, proc = same_as_plain([require(CAPTURE_UNSEEN), mem, where], level=level, dest=log, env=env)
    assert proc.returncode == 0 and "invalidated=0 exit=0" in proc.stdout, proc.stdout
    assert "capture: begin=0 call=0 end=0 graph=yes" in proc.stdout
    assert proc.stderr == plain.stderr
    eager, during, after = call_blocks(log.read_text(), "cudaops.noop")
    # Outside the capture: statistics, before and after the call.
    for block in (eager, after):
        assert block.count("mean=0.750000") == 2, block
    # Statistics are taken during the capture when nothing the shim does can join it: the capture runs on
    # another thread's stream (GLOBAL mode; the shim's calls run in RELAXED mode, so they neither fail nor
    # invalidate it), or on a blocking stream while the tensor is host memory (read after synchronising the
    # call's own stream; a device tensor's copy would be legacy-stream work, which joins a blocking capture).
    taken = where == "other-thread" or (where == "blocking" and mem != "device")
    # A device tensor's statistics on the GPU route (docs/gpu-stats.md) are a kernel on the call's own stream and its
    # synchronisation, no legacy-stream work: taken beside a blocking capture too (its dump, a copy, is not).
    stats_taken = taken or (where == "blocking" and mem == "device")
    if stats_taken:
        assert during.count("mean=0.750000") == 2, during
    else:
        assert during.count(SKIPPED) == 2 and "mean=" not in during, during
    if level == "10":
        metas = sorted((tmp_path / "d").glob("*_call0002/metadata.jsonl"))
        assert len(metas) == 1
        lines = [json.loads(l) for l in metas[0].read_text().splitlines()]
        arg = lines[0]["arguments"][0]
        if taken:
            assert arg["dumped"] is True
        else:
            assert arg["dumped"] is False and arg["reason"] == "CUDA graph capture in progress"
            assert lines[0]["graph_capture"] is True


@pytest.mark.parametrize("level", ["5", "10"])
def test_a_failed_capture_query_skips_with_the_error_name(tmp_path, level):
    log = tmp_path / "log.txt"
    env = {"FLASHINFER_MODULE": require(CUDAOPS), "FLASHINFER_EXPORT": "noop", "FLASHLOG_DUMP_DIR": tmp_path / "d"}
    _, proc = same_as_plain([require(CAPTURE_UNSEEN), "pinned", "destroyed"], level=level, dest=log, env=env)
    assert proc.returncode == 0, proc.stdout
    eager, dead, after = call_blocks(log.read_text(), "cudaops.noop")
    reason = "capture status unknown (cuStreamIsCapturing: CUDA_ERROR_INVALID_HANDLE (400))"
    assert dead.count(f"[statistics skipped: {reason}]") == 2, dead
    assert eager.count("mean=0.750000") == 2 and after.count("mean=0.750000") == 2
    if level == "10":
        meta = next((tmp_path / "d").glob("*_call0002/metadata.jsonl"))
        assert json.loads(meta.read_text().splitlines()[0])["arguments"][0]["reason"] == reason


# ---------------------------------------------------------------- item 5: a wrong num_args
@pytest.mark.parametrize("level", ["3", "5", "10"])
def test_wrong_num_args_goes_through_unchanged(tmp_path, level):
    log = tmp_path / "log.txt"
    plain, proc = same_as_plain([require(HOST_STATE), "num-args", require(STATEOPS)], level=level, dest=log,
                                env={"FLASHLOG_DUMP_DIR": tmp_path / "d"})
    assert proc.returncode == 0 and proc.stderr == plain.stderr == ""
    # Return codes and errno as without the shim (the program prints both; errno was 77 before each call).
    assert proc.stdout.count("errno=77") == 5
    assert "edge of mapping, num_args=1: rc=0 errno=77 result_type=1 result=42" in proc.stdout
    text = log.read_text()
    assert text.count("FlashInfer API Call: stateops.one_arg") == 5
    assert text.count("[num_args=100000000 but only 1 argument could be read: the others are not logged]") == 1
    assert text.count("[num_args=3 but only 0 arguments could be read: the others are not logged]") == 1
    assert text.count("[num_args=-1: no arguments are logged]") == 1
    # The stack case reads what the stack holds (up to the limit), and says the rest is not logged.
    assert len(re.findall(r"^\[num_args=100000000", text, re.M)) == 2
    assert "[num_args=1]" not in text and text.count("Call failed: return code -1") == 4


# ---------------------------------------------------------------- item 6: descriptors closed and reused
def test_descriptors_closed_at_level_10_and_reused_by_the_host(tmp_path):
    plain_dir, files, dumps = tmp_path / "plain", tmp_path / "files", tmp_path / "dumps"
    plain_dir.mkdir()
    files.mkdir()
    log = tmp_path / "log.txt"
    plain = run([require(HOST_STATE), "close-fds", require(STATEOPS), plain_dir, "200"], preload=False)
    proc = run([require(HOST_STATE), "close-fds", require(STATEOPS), files, "200"], level="10", dest=log,
               env={"FLASHLOG_DUMP_DIR": dumps})
    assert proc.returncode == plain.returncode == 0
    assert proc.stdout == plain.stdout == "files=200 failures=0 close_all_and_open=0 after=ok later=ok\n"
    # The host's files hold exactly what the host wrote: no JSON line of the shim landed in one.
    assert sorted(p.name for p in files.iterdir()) == sorted(p.name for p in plain_dir.iterdir())
    for p in plain_dir.iterdir():
        assert (files / p.name).read_bytes() == p.read_bytes(), p.name
    assert (files / "inside.txt").read_text() == "opened inside\n" + "written after the call\n" * 2
    # session.jsonl was reopened and got both lines of every call (203 calls).
    lines = [json.loads(l) for l in (dumps / "session.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * 203
    assert [l["execution_status"] for l in lines] == ["inputs_saved", "completed"] * 203
    # The call whose callee closed every descriptor (the metadata file's too) has both lines in its folder.
    calls = [p for p in dumps.iterdir() if p.is_dir()]
    assert len(calls) == 203
    for call in calls:
        assert len((call / "metadata.jsonl").read_text().splitlines()) == 2, call
    assert log.read_text().count("FlashInfer API Call:") == 203
    assert proc.stderr == (
        f"flashlog: the log file '{log}' was closed or replaced by the program; reopened it\n"
        f"flashlog: the dump file '{dumps}/session.jsonl' was closed or replaced by the program; reopened it\n")


# ---------------------------------------------------------------- item 7: chdir at level 10
@pytest.mark.parametrize("close", [False, True])
def test_chdir_at_level_10_keeps_the_dump_folder(tmp_path, close):
    """Default relative dump folder (no FLASHLOG_DUMP_DIR) and a relative log file; the host changes folder
    after its first call (and, with `close`, closes every descriptor, so the log file is reopened)."""
    runs = {}
    for name, preload in (("plain", False), ("shim", True)):
        start, other = tmp_path / name / "start", tmp_path / name / "other"
        start.mkdir(parents=True)
        other.mkdir()
        env = clean_env(FLASHINFER_LOGLEVEL="10", FLASHINFER_LOGDEST="log.txt")
        if preload:
            env["LD_PRELOAD"] = str(LIB)
        cmd = [str(require(HOST_STATE)), "chdir", str(require(STATEOPS)), str(other)] + (["close"] if close else [])
        runs[name] = subprocess.run(cmd, env=env, cwd=start, capture_output=True, text=True, timeout=120)
    plain, proc = runs["plain"], runs["shim"]
    assert proc.returncode == plain.returncode == 0
    assert proc.stdout == plain.stdout == "chdir: calls=3 failures=0\n"
    start, other = tmp_path / "shim/start", tmp_path / "shim/other"
    # Every call dumped into the folder the process started in; nothing in the new working folder.
    calls = sorted(p.name for p in (start / "flashinfer_dumps").iterdir() if p.is_dir())
    assert len(calls) == 3 and [c[-8:] for c in calls] == ["call0001", "call0002", "call0003"]
    assert len((start / "flashinfer_dumps/session.jsonl").read_text().splitlines()) == 6
    metas = [json.loads(l) for c in calls for l in (start / "flashinfer_dumps" / c / "metadata.jsonl").open()]
    # The metadata shows the folder as named (as FlashInfer's logger does).
    assert [m["dump_dir"] for m in metas] == [f"flashinfer_dumps/{c}" for c in calls for _ in (1, 2)]
    assert list(other.iterdir()) == []
    assert (start / "log.txt").read_text().count("FlashInfer API Call: stateops.touch") == 3
    expected = "flashlog: the log file 'log.txt' was closed or replaced by the program; reopened it\n" if close else ""
    if close:
        expected += (f"flashlog: the dump file '{start}/flashinfer_dumps/session.jsonl' was closed or replaced by "
                     "the program; reopened it\n")
    assert proc.stderr == plain.stderr + expected
