"""Reads of host memory (issues 8 and 15): every read a record needs is batched (the number of read system calls
per call does not grow with the number of tensors, counted by the shim's FLASHLOG_TEST_COUNT_READS counter),
statistics are bounded by the bytes a view spans and by FLASHLOG_STATS_MAX_MB, a record prints a bounded number
of container items, byte offsets that wrap are invalid tensors, and where a seccomp policy refuses
process_vm_readv (EPERM or ENOSYS) the records are the same, read through a pipe, after one stderr line.

Every host run is compared with the same run without the shim (exit code, stdout), under a timeout."""

import re

import numpy as np
import pytest

from conftest import FIXDIR, MODULE_DIR, require, run, split_records, strip_stamps

DRIVER = FIXDIR / "reads_driver"
COUNT = re.compile(r"^flashlog: read system calls: (\d+)$", re.M)
REFUSED = "flashlog: process_vm_readv is refused here ({}); reading host memory through a pipe instead\n"


def host(args, tmp_path, level, env=None, timeout=60):
    """Runs the driver with and without the shim; checks the host saw no difference; returns (proc, log)."""
    cmd = [require(DRIVER), args[0], MODULE_DIR, *args[1:]]
    bare = run(cmd, preload=False, timeout=timeout)
    log = tmp_path / "reads.log"
    log.unlink(missing_ok=True)
    proc = run(cmd, level=level, dest=log, env=env, timeout=timeout)
    assert (proc.returncode, proc.stdout) == (bare.returncode, bare.stdout), proc.stderr
    assert bare.returncode == 0, bare.stderr
    return proc, log.read_text()


def read_calls(proc):
    found = COUNT.findall(proc.stderr)
    assert len(found) == 1, proc.stderr
    return int(found[0])


def call_records(text):
    """The one call's record, as (inputs part, outputs part)."""
    calls = [r for r in split_records(text) if "FlashInfer API Call:" in r and "System Information" not in r]
    assert len(calls) == 1, text[:2000]
    inputs, outputs = calls[0].split("\nOutput value:\n")
    return inputs + "\n", "Output value:\n" + outputs


# One process makes one call. Fixed costs: the process_vm_readv probe (1) and making the pipe (pipe2, open of
# /proc/self/fd/N, fstat: 3). Per call at level 3, all in one section of shim work: at most one fstat that
# checks the pipe is still ours (none here: the pipe was just made), then one writev + readv pair per batch:
# the argument array, the descriptors, the shapes+strides, and for an Array argument its payloads and items.
FIXED = 1 + 3


def level3_bound(kind):
    return FIXED + 1 + 2 * (5 if kind == "array" else 3)


@pytest.mark.parametrize("kind", ["dl", "obj", "array"])
def test_read_calls_per_record_do_not_grow_with_tensors(tmp_path, kind):
    counts = {}
    for n in (1, 10, 17, 50, 200):
        proc, text = host(["many", n, kind], tmp_path, level=3, env={"FLASHLOG_TEST_COUNT_READS": 1})
        counts[n] = read_calls(proc)
        assert counts[n] <= level3_bound(kind), (n, counts)
        (inputs, outputs) = call_records(text)
        shown = min(n, 64) if kind == "array" else n
        assert inputs.count("shape=(4, 8)") == shown
        assert inputs.count("data_ptr=0x") == shown
        assert "<invalid" not in inputs and "unreadable" not in inputs
        if kind == "array" and n > 64:
            assert f"      ... ({n - 64} more items)\n" in inputs
        assert outputs.startswith("Output value:\n  None\n")
    # The count is the same from 10 tensors to 200: no step above 16 any more.
    assert counts[10] == counts[17] == counts[50] == counts[200], counts


@pytest.mark.parametrize("kind", ["dl", "obj", "array"])
def test_level5_batches_the_data_too(tmp_path, kind):
    for n in (3, 50, 200):
        proc, text = host(["many", n, kind], tmp_path, level=5, env={"FLASHLOG_TEST_COUNT_READS": 1})
        # The data of small host tensors: one batch before the call (in the same section: writev + readv) and
        # one after it (a new section: fstat + writev + readv; tensors inside an Array are not shown after the
        # call, so no second batch for them).
        assert read_calls(proc) <= level3_bound(kind) + (2 if kind == "array" else 5), n
    (inputs, outputs) = call_records(text)
    indent = " " * (10 if kind == "array" else 6)
    for i in range(64 if kind == "array" else n):
        block = f"{indent}min={i * 100}.000000\n{indent}max={i * 100 + 31}.000000\n{indent}mean={i * 100 + 15.5:.6f}\n"
        assert block in inputs, i
        if kind != "array":
            assert f"  arg[{i}] (after):\n    min={i * 100}.000000\n    max={i * 100 + 31}.000000\n" in outputs


def test_huge_overlapping_and_broadcast_views(tmp_path):
    proc, text = host(["overlap"], tmp_path, level=5, timeout=30)
    (inputs, outputs) = call_records(text)
    skip = "[statistics skipped: overlapping view of 1152921504606846976 elements over 12.0 MiB]"
    assert inputs.count(skip) == 1 and outputs.count(skip) == 1
    assert "shape=(1048576, 1048576, 1048576)\n      stride=(1, 1, 1)" in inputs
    # The stride-0 broadcast of 2^60 elements has exact statistics: each row is the first 2^20 values.
    row = (np.arange(1 << 20) % 1000).astype(np.float64) - 500.0
    assert f"      min=-500.000000\n      max=499.000000\n      mean={row.mean():.6f}\n" in inputs
    # A small overlapping view (3x3, strides 1,1) keeps exact statistics: values -500 + i + j.
    small = np.add.outer(np.arange(3), np.arange(3)) - 500.0
    assert f"      min=-500.000000\n      max=-496.000000\n      mean={small.mean():.6f}\n" in inputs


def test_self_containing_and_shared_arrays_are_bounded(tmp_path):
    for level in (3, 5):
        proc, text = host(["arrays"], tmp_path, level=level, timeout=30)
        (inputs, _) = call_records(text)
        items = re.findall(r"^ *\[\d+\]:", inputs, re.M)
        assert len(items) <= 256
        # The self-containing Array and List stop at the depth limit; the shared ones at the item budget.
        assert inputs.count("[...]\n") >= 2
        assert re.search(r"^ +\.\.\. \(\d+ more items, limit of 256 items per record reached\)$", inputs, re.M)
        assert len(inputs) < 64 * 1024


def test_small_arrays_keep_their_lines(tmp_path):
    _, text = host(["many", 2, "array"], tmp_path, level=3)
    (inputs, _) = call_records(text)
    body = inputs.split("Positional input arguments:\n")[1]
    assert body.startswith("  arg[0]:\n    [\n      [0]:\n        Tensor(\n          shape=(4, 8)\n")
    assert "      [1]:\n        Tensor(\n" in body
    assert "    ]\n  arg[1]:\n    0.5\n  arg[2]:\n    True\n" in body
    assert "more items" not in body


def test_byte_offsets_that_wrap_are_invalid(tmp_path):
    for level in (3, 5):
        _, text = host(["offset"], tmp_path, level=level)
        (inputs, outputs) = call_records(text)
        assert "  arg[0]:\n    <invalid tensor: byte_offset overflows the address>\n" in inputs
        assert "  arg[1]:\n    <invalid tensor: view overflows the address space>\n" in inputs
        assert "  arg[2]:\n    <invalid tensor: view overflows the address space>\n" in inputs
        assert "      byte_offset=16\n" in inputs
        if level == 5:
            assert "  arg[0] (after):\n    <invalid tensor: byte_offset overflows the address>\n" in outputs


def test_stats_max_mb(tmp_path):
    _, text = host(["cap"], tmp_path, level=5, env={"FLASHLOG_STATS_MAX_MB": 4})
    (inputs, outputs) = call_records(text)
    assert "      [statistics skipped: 8.0 MiB over FLASHLOG_STATS_MAX_MB=4]\n" in inputs
    assert "    [statistics skipped: 8.0 MiB over FLASHLOG_STATS_MAX_MB=4]\n" in outputs
    # Under the cap (and with the default), the statistics are there.
    for env in ({"FLASHLOG_STATS_MAX_MB": 8}, {}):
        _, text = host(["cap"], tmp_path, level=5, env=env)
        (inputs, _) = call_records(text)
        assert "      min=0.000000\n      max=6.000000\n" in inputs and "skipped" not in inputs


def normalized(text):
    """Records without what differs between two runs of the same program (timestamps, pids, addresses)."""
    text = strip_stamps(text)
    text = re.sub(r"0x[0-9a-f]+", "0xADDR", text)
    return re.sub(r"Process: \d+", "Process: PID", text)


def without_exit_line(text):
    """The records of a log without its exit line (one per process that returned from main)."""
    assert len(re.findall(r"^\[flashlog exit: pid \d+, \d+ records?\]$", text, re.M)) == 1, text[-200:]
    return re.sub(r"^\[flashlog exit: pid \d+, \d+ records?\]\n", "", text, flags=re.M)


@pytest.mark.parametrize("mode,name", [("eperm", "EPERM"), ("enosys", "ENOSYS")])
def test_seccomp_refusing_process_vm_readv(tmp_path, mode, name):
    for level in (3, 5):
        proc, text = host(["seccomp", mode], tmp_path, level=level, env={"FLASHLOG_STATS_MAX_MB": 4})
        assert proc.stdout.startswith(f"process_vm_readv after the filter: -1 errno={1 if mode == 'eperm' else 38}\n")
        assert proc.stderr == REFUSED.format(name)
        # The same records as the same calls make where process_vm_readv is allowed.
        parts = []
        for sub in (["many", 20, "obj"], ["cap"], ["arrays"]):
            _, t = host(sub, tmp_path, level=level, env={"FLASHLOG_STATS_MAX_MB": 4})
            parts.append(without_exit_line(t).split("=" * 80 + "\n\n", 1)[1])
        want = normalized(text.split("=" * 80 + "\n\n", 1)[0] + "=" * 80 + "\n\n" + "".join(parts))
        assert normalized(without_exit_line(text)) == want
        assert "<invalid" not in text and "unreadable" not in text and "statistics error" not in text


@pytest.mark.parametrize("mode,name", [("eperm", "EPERM"), ("enosys", "ENOSYS")])
def test_more_threads_than_pipes_where_process_vm_readv_is_refused(tmp_path, mode, name):
    """32 threads starting at once (the pipe set holds 16) where process_vm_readv is refused, so the pipes are the
    only route: a thread that finds every pipe taken, or the refusal only at its first read, waits for a pipe.
    Every call's two arguments are in its record (16 records said `[num_args=2 but only 0 arguments could be
    read ...]` before)."""
    log = tmp_path / "t.log"
    p = run([require(FIXDIR / "ring_driver"), "refuse", "process_vm_readv", mode, MODULE_DIR, 32, 300], level=3,
            dest=log, timeout=300)
    assert p.returncode == 0 and p.stdout.endswith("threads=32 calls=300\n"), p.stderr
    assert p.stderr == REFUSED.format(name)
    text = log.read_text()
    assert text.count("FlashInfer API Call: testops.echo") == text.count("  arg[1]:\n") == 32 * 300
    assert "could be read" not in text and "<invalid" not in text


def test_fork_child_reads_its_own_memory(tmp_path):
    """Parent and child call at the same time after a fork, each with its own values in the same tensors: a
    child sharing the parent's pipe would mix the two processes' bytes."""
    logs = tmp_path / "logs"
    logs.mkdir()
    cmd = [require(DRIVER), "fork", MODULE_DIR]
    bare = run(cmd, preload=False, timeout=60)
    proc = run(cmd, level=5, dest=logs / "log_%i.txt", timeout=60)
    assert (proc.returncode, proc.stdout) == (bare.returncode, bare.stdout) and bare.returncode == 0, proc.stderr
    assert "parent_bad=0 child_status=0" in proc.stdout
    texts = [p.read_text() for p in sorted(logs.iterdir())]
    assert len(texts) == 2
    for text in texts:
        values = set(re.findall(r"^ +max=(\S+)$", text, re.M))
        after_fork = values - {f"{i * 100 + 31}.000000" for i in range(20)}
        assert after_fork in ({"7.000000"}, {"9.000000"}), after_fork
        assert "<invalid" not in text and "statistics error" not in text


def test_host_reusing_the_pipe_descriptor(tmp_path):
    """The host closes every descriptor above 2 (the shim's pipe too) and opens 1,000 files, one of them with
    the pipe's number: nothing of the shim reaches them, and the next records are right."""
    files = tmp_path / "files"
    files.mkdir()
    cmd = [require(DRIVER), "reuse", MODULE_DIR, files]
    bare = run(cmd, preload=False, timeout=60)
    proc = run(cmd, level=3, dest="stderr", timeout=60)
    assert (proc.returncode, proc.stdout) == (bare.returncode, bare.stdout) and bare.returncode == 0, proc.stderr
    assert "bytes in host files=0" in proc.stdout
    assert all(p.stat().st_size == 0 for p in files.iterdir())
    records = [r for r in split_records(proc.stderr) if "FlashInfer API Call:" in r]
    assert len(records) == 3
    for r in records:
        assert r.count("shape=(4, 8)") == 20 and "<invalid" not in r
