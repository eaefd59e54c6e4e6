"""The flight recorder (issue 22): FLASHLOG_RING_MB makes the file destination a memory-mapped ring, `flashlog
show` prints it as the plain log of the same calls, `flashlog summary` reads it; every way a process dies leaves
its published records readable. Hosts: target/fixtures/ring_driver (tests/fixtures/ffi/ring_driver.c)."""

import os
import re
import signal
import subprocess
from collections import defaultdict

import pytest

from conftest import FIXDIR, LIB, MODULE_DIR, REPO, clean_env, require, run, strip_stamps

FLASHLOG = REPO / "target/release/flashlog"
RING = FIXDIR / "ring_driver"
TVM = FIXDIR / "tvm_driver"
HEADER = 64 << 10
EQ = "=" * 80

INPUTS = re.compile(
    EQ + r"\n\[TS\] FlashInfer API Call: testops\.echo\n(?:\[call testops\.echo #(\d+) thread \d+ at [\d:.]{15}\]\n)?-{80}\n"
    r"Positional input arguments:\n  arg\[0\]:\n    (\d+)\n  arg\[1\]:\n    (\d+)\n")
OUTPUTS = re.compile(r"(?:\[call testops\.echo #(\d+) thread \d+ at [\d:.]{15}\]\n)?Output value:\n  (\d+)\n" + EQ + "\n\n")
ACCOUNT = re.compile(r"flashlog show: (.*): (\d+) records, (\d+|an unknown number of) older records overwritten, "
                     r"(\d+) torn records left out(?:, (\d+) damaged records left out \(checksum mismatch\))?"
                     r"(?:, (\d+) records dropped by their writers)?")


def ring_env(mb, **extra):
    return {"FLASHLOG_RING_MB": mb, **extra}


def show(*paths, check=True):
    p = subprocess.run([str(require(FLASHLOG)), "show", *map(str, paths)], capture_output=True, text=True,
                       env=clean_env(), timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def account(stderr, with_dropped=False):
    """(records, overwritten, torn, damaged[, dropped]) from show's line about the (one) file."""
    m = ACCOUNT.search(stderr)
    assert m, stderr
    over = None if m[3].startswith("an") else int(m[3])
    counts = (int(m[2]), over, int(m[4]), int(m[5] or 0), int(m[6] or 0))
    return counts if with_dropped else counts[:4]


def masked(text):
    text = re.sub(r"^\[flashlog exit: pid \d+,", "[flashlog exit: pid P,", strip_stamps(text), flags=re.M)
    return re.sub(r"Process: \d+", "Process: P", text)


def split_sysinfo(text):
    """(system information record, the records after it)."""
    assert text.startswith(EQ + "\n[TS] FlashInfer API Logging - System Information\n"), text[:300]
    end = text.index(EQ + "\n\n", len(EQ) + 1) + len(EQ) + 2
    return text[:end], text[end:]


def parse_echo_records(body):
    """The echo records of a shown ring, in order: ("in", call, thread, i) and ("out", call, thread). Fails on
    anything that is not a whole record."""
    out, at = [], 0
    # A process that returned from main ends with its exit line (docs/log-format.md), a record of the ring too:
    # ("exit", records the process wrote).
    exit_line = re.search(r"\[flashlog exit: pid \w+, (\d+) records?\]\n\Z", body)
    if exit_line:
        body = body[: exit_line.start()]
    while at < len(body):
        m = INPUTS.match(body, at)
        if m:
            out.append(("in", m[1] and int(m[1]), int(m[2]), int(m[3])))
        else:
            m = OUTPUTS.match(body, at)
            assert m, f"not a whole record at {at}: {body[at:at + 400]!r}"
            out.append(("out", m[1] and int(m[1]), int(m[2])))
        at = m.end()
    if exit_line:
        out.append(("exit", int(exit_line[1])))
    return out


def per_thread_gaps(records):
    """Checks each thread's calls are consecutive (i, i+1, ...) in the ring; returns the gaps and the last i of
    each thread."""
    last, gaps = {}, 0
    for r in records:
        if r[0] != "in":
            continue
        _, _, thread, i = r
        if thread in last and i != last[thread] + 1:
            assert i > last[thread], f"thread {thread}: call {i} after {last[thread]}"
            gaps += 1
        last[thread] = i
    return gaps, last


# ---------------------------------------------------------------------------------------------- show == plain log
@pytest.mark.parametrize("kib,level", [(4, 3), (8, 1), (64, 3), (1024, 1), (1024, 3), (4096, 3)])
def test_show_is_the_tail_of_the_plain_log(tmp_path, kib, level):
    """Rings of 4 KiB to 4 MiB filled several times over: `flashlog show` prints the system information record and
    then exactly the last records of a plain log of the same program (same level, same data), record for record,
    and counts the others as overwritten; the file has its full size from the start and never grows."""
    per_call = 64 if level == 1 else 400
    calls = max(4 * kib * 1024 // per_call, 200)
    plain = tmp_path / "plain.log"
    p0 = run([RING, "seq", MODULE_DIR, 1, calls], level=level, dest=plain, check=True)
    ring = tmp_path / "r.ring"
    p1 = run([RING, "seq", MODULE_DIR, 1, calls], level=level, dest=ring, env=ring_env(kib / 1024), check=True)
    assert (p1.stdout, p1.stderr) == (p0.stdout, p0.stderr)
    assert ring.stat().st_size == HEADER + kib * 1024
    s = show(ring)
    shown, overwritten, torn, damaged = account(s.stderr)
    log = masked(plain.read_text())
    head, body = split_sysinfo(masked(s.stdout))
    plain_head, plain_body = split_sysinfo(log)
    assert head == plain_head
    records_per_call = 1 if level == 1 else 2
    assert (torn, damaged) == (0, 0)
    # The exit line is one more record of the ring.
    assert shown + overwritten == calls * records_per_call + 1, "the overwritten count is exact"
    assert overwritten >= 2 * shown, "the ring was filled several times over"
    assert body and plain_body.endswith(body)
    cut = len(plain_body) - len(body)
    assert plain_body[cut:].startswith((EQ + "\n[TS]", "Output value:", "[TS] FlashInfer API Call")), "whole records"
    if level == 3:
        assert len(parse_echo_records(body)) == shown


# ------------------------------------------------------------------------------------------- threads and deaths
@pytest.mark.parametrize("threads,calls,mb", [(16, 10000, 1), (16, 10000, 0.25), (48, 3000, 1)])
def test_many_threads_every_record_whole(tmp_path, threads, calls, mb):
    """16 threads x 10,000 calls at level 3 into a 1 MiB ring (about 150 times its size) and a 256 KiB one (about
    600 times), and 48 threads x 3,000 calls (many more writers than cores): every record shown is a whole echo
    record of its thread, none is damaged or torn, each thread's calls follow one another, and shown +
    overwritten + dropped is exactly the number of records written. (A record is dropped, never mixed with another,
    when its bytes would land on an older record still being written: its writer stalled for one lap of the ring
    or many, which a busy machine makes likely in the small ring.)"""
    ring = tmp_path / "t.ring"
    p = run([RING, "seq", MODULE_DIR, threads, calls], level=3, dest=ring, env=ring_env(mb), check=True)
    assert p.stdout.endswith(f"threads={threads} calls={calls}\n") and p.stderr == ""
    s = show(ring)
    shown, overwritten, torn, damaged, dropped = account(s.stderr, with_dropped=True)
    _, body = split_sysinfo(masked(s.stdout))
    records = parse_echo_records(body)
    assert len(records) == shown and (torn, damaged) == (0, 0)
    assert shown + overwritten + dropped == threads * calls * 2 + 1  # and the exit line
    gaps, last = per_thread_gaps(records)
    # A thread with records in the ring (one that finished early may have none left) has its last call there,
    # unless that record was one of the dropped ones.
    assert gaps + sum(i != calls - 1 for i in last.values()) <= dropped


def run_until_ready(cmd, env, sig):
    """Starts `cmd`, waits for its "ready" line (every thread has made its calls), then sends `sig`."""
    proc = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, err


def shim_env(level, dest, **extra):
    return clean_env(LD_PRELOAD=LIB, FLASHINFER_LOGLEVEL=level, FLASHINFER_LOGDEST=dest, **extra)


def check_crashed_ring(ring, threads, calls):
    """The ring of a process that died while `threads` threads wrote (each made at least `calls` calls first and at
    most 2000 more, which the ring holds): nothing overwritten or damaged, at most one torn record per thread, and
    every thread's calls from its first on, one after another."""
    s = show(ring)
    shown, overwritten, torn, damaged = account(s.stderr)
    assert (overwritten, damaged) == (0, 0)
    assert torn <= threads, "at most one torn record per thread that was writing"
    _, body = split_sysinfo(masked(s.stdout))
    records = parse_echo_records(body)
    assert len(records) == shown
    gaps, last = per_thread_gaps(records)
    assert gaps == 0
    assert {r[3] for r in records if r[0] == "in" and r[3] == 0} == {0}
    assert sum(1 for r in records if r[0] == "in" and r[3] == 0) == threads, "every thread's first call is there"
    assert len(last) == threads and min(last.values()) >= calls - 1, "the calls made before the signal are there"
    return records


def test_sigkill_while_8_threads_write(tmp_path):
    """SIGKILL once 8 threads have each made 200 calls (they go on writing when it lands, unless it comes after
    their 2000 further calls): the records are whole,
    each thread's calls follow one another up to its last, torn ones are at most one per thread, and `flashlog
    summary` reads the ring (naming at most one unfinished call per thread)."""
    ring = tmp_path / "k.ring"
    rc, err = run_until_ready([RING, "kill", MODULE_DIR, 8, 200], shim_env(3, ring, FLASHLOG_RING_MB=24),
                              signal.SIGKILL)
    assert rc == -signal.SIGKILL and err == ""
    check_crashed_ring(ring, 8, 200)
    s = subprocess.run([str(FLASHLOG), "summary", str(ring)], capture_output=True, text=True, env=clean_env())
    assert s.returncode in (0, 1), s.stderr
    assert re.search(r"^\s+\d+\s+\d+\s+\d+\s+testops\.echo", s.stdout, re.M)
    assert len(re.findall(r"^did not return: ", s.stdout, re.M)) <= 8


def test_reading_a_ring_while_4_threads_write_it(tmp_path):
    """`flashlog show` on a 1 MiB ring that 4 threads overwrite many times a second while it reads: every record
    shown is whole and the run has no gap (records overwritten during the read are left out at the old end, those
    still being written at the new end), three times over. (How many records a read keeps depends on how far the
    writers got meanwhile, so only the shape is checked.)"""
    ring = tmp_path / "live.ring"
    proc = subprocess.Popen([str(RING), "live", str(MODULE_DIR), "4", "100"], env=shim_env(3, ring, FLASHLOG_RING_MB=1),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        for _ in range(3):
            s = show(ring)
            shown, overwritten, torn, damaged, dropped = account(s.stderr, with_dropped=True)
            assert (torn, damaged) == (0, 0), s.stderr
            records = parse_echo_records(split_sysinfo(masked(s.stdout))[1])
            assert len(records) == shown
            gaps, _ = per_thread_gaps(records)
            assert gaps <= dropped
    finally:
        proc.kill()
        proc.communicate(timeout=60)


def test_exit_with_threads_writing(tmp_path):
    """_exit(3) from the main thread while 4 threads write: same exit code as without the shim, records whole."""
    ring = tmp_path / "x.ring"
    plain = subprocess.run([str(RING), "exit", str(MODULE_DIR), "4", "100"], env=clean_env(), capture_output=True)
    p = subprocess.run([str(RING), "exit", str(MODULE_DIR), "4", "100"], env=shim_env(3, ring, FLASHLOG_RING_MB=16),
                       capture_output=True, text=True)
    assert p.returncode == plain.returncode == 3 and p.stderr == ""
    check_crashed_ring(ring, 4, 100)


@pytest.mark.parametrize("how,name,sig", [("segv", "norm.rmsnorm", signal.SIGSEGV),
                                          ("abort", "testops.crash", signal.SIGABRT)])
@pytest.mark.parametrize("mb", [0.02, 1])
def test_death_inside_a_call(tmp_path, how, name, sig, mb):
    """SIGSEGV inside a FlashInfer call (its tensor's data is unmapped) and abort() inside one: the host dies as
    without the shim, the ring's last record is that call's inputs record, and `flashlog summary` names it as the
    call that did not return, with the ring read alongside a plain log in one command."""
    ring = tmp_path / "d.ring"
    plain = subprocess.run([str(RING), how, str(MODULE_DIR), "300"], env=clean_env(), capture_output=True, text=True)
    p = subprocess.run([str(RING), how, str(MODULE_DIR), "300"], env=shim_env(3, ring, FLASHLOG_RING_MB=mb),
                       capture_output=True, text=True)
    assert p.returncode == plain.returncode == -sig and p.stdout == plain.stdout == "calls=300\n"
    s = show(ring)
    shown, overwritten, torn, damaged = account(s.stderr)
    assert (torn, damaged) == (0, 0) and shown + overwritten == 601
    assert masked(s.stdout).rstrip("\n").split("\n" + EQ + "\n")[-1].startswith(f"[TS] FlashInfer API Call: {name}")
    other = tmp_path / "other.log"
    run([RING, "seq", MODULE_DIR, 1, 3], level=3, dest=other, check=True)
    summary = subprocess.run([str(FLASHLOG), "summary", str(other), str(ring)], capture_output=True, text=True,
                             env=clean_env())
    assert summary.returncode == 1, summary.stderr
    assert re.search(rf"^did not return: \S*d\.ring:\d+ \[[-\d :]+\] {re.escape(name)}$", summary.stdout, re.M)
    assert re.search(r"^file other\.log: 1 run", summary.stdout, re.M)
    assert re.search(r"^file d\.ring: 1 run", summary.stdout, re.M)


# ----------------------------------------------------------------------------------------------------- processes
def test_fork_with_and_without_pid_in_the_name(tmp_path):
    """With %i a forked child writes a ring of its own; without it, the child writes no records (one stderr line)
    and never touches its parent's ring. The host sees the same output either way."""
    plain = run([TVM, "fork", MODULE_DIR], preload=False)
    per_pid = run([TVM, "fork", MODULE_DIR], level=3, dest=tmp_path / "r_%i.ring", env=ring_env(0.05))
    assert per_pid.returncode == 0 and per_pid.stderr == ""
    parent, child = re.search(r"parent=(\d+) child=(\d+)", per_pid.stdout).groups()
    assert re.sub(r"\d+", "N", per_pid.stdout) == re.sub(r"\d+", "N", plain.stdout)
    tags = {}
    for pid in (parent, child):
        s = show(tmp_path / f"r_{pid}.ring")
        assert f"Process: {pid} " in s.stdout
        tags[pid] = re.findall(r"arg\[0\]:\n    (\d+)", s.stdout)
    assert tags == {parent: ["1", "4"], child: ["2", "3"]}
    shared = tmp_path / "one.ring"
    p = run([TVM, "fork", MODULE_DIR], level=3, dest=shared, env=ring_env(0.05))
    assert p.returncode == 0
    assert p.stderr == (f"flashlog: this forked process does not write into its parent's ring '{shared}' "
                        "(no %i in its name); it logs no records\n")
    s = show(shared)
    assert re.findall(r"arg\[0\]:\n    (\d+)", s.stdout) == ["1", "4"]
    assert sorted(os.listdir(tmp_path)) == sorted([f"r_{parent}.ring", f"r_{child}.ring", "one.ring"])


def test_ring_that_cannot_be_created(tmp_path):
    """A ring that cannot be made (a file size limit below its size; a folder that cannot exist): one stderr line
    naming the file, records go to stderr as for any destination that cannot be opened, and the host is unaffected
    (same output and exit code, no SIGXFSZ)."""
    plain = run([RING, "seq", MODULE_DIR, 1, 3], preload=False)
    big = tmp_path / "big.ring"
    p = run(["prlimit", "--fsize=100000", RING, "seq", MODULE_DIR, 1, 3], level=1, dest=big, env=ring_env(1))
    assert (p.returncode, p.stdout) == (0, plain.stdout)
    lines = p.stderr.splitlines()
    assert lines[0] == (f"flashlog: cannot open log destination '{big}': cannot create a ring there: cannot reserve "
                        f"{HEADER + (1 << 20)} bytes for it: File too large (os error 27); nothing is logged by this process (set -o or FLASHLOG_DEST to a file whose folder can be created, or to stderr)")
    # One line, and no record mixed into the program's stderr.
    assert sum("testops.echo" in l for l in lines) == 0 and sum(l.startswith("flashlog:") for l in lines) == 1
    assert not big.exists() and os.listdir(tmp_path) == []
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    under = blocker / "r.ring"
    p = run([RING, "seq", MODULE_DIR, 1, 3], level=1, dest=under, env=ring_env(1))
    assert (p.returncode, p.stdout) == (0, plain.stdout)
    assert p.stderr.splitlines()[0].startswith(f"flashlog: cannot open log destination '{under}': cannot create a "
                                               "ring there: ")
    assert sum(l.startswith("flashlog:") for l in p.stderr.splitlines()) == 1


def test_stdout_destination_and_existing_files(tmp_path):
    """FLASHLOG_RING_MB with stdout: one line, records on stdout as today. A ring already at the path (an earlier
    run) is kept as <path>.prev; a file that is not a ring is left alone (one line, records to stderr)."""
    base = run([RING, "seq", MODULE_DIR, 1, 2], level=1)
    p = run([RING, "seq", MODULE_DIR, 1, 2], level=1, env=ring_env(1))
    assert masked(p.stdout) == masked(base.stdout) and base.stdout.count("testops.echo") == 2
    assert p.stderr == ("flashlog: FLASHLOG_RING_MB needs a file destination (FLASHINFER_LOGDEST is stdout); "
                        "logging goes on to stdout\n")
    ring = tmp_path / "r.ring"
    run([RING, "seq", MODULE_DIR, 1, 5], level=3, dest=ring, env=ring_env(0.05), check=True)
    first = show(ring).stdout
    run([RING, "seq", MODULE_DIR, 1, 2], level=3, dest=ring, env=ring_env(0.05), check=True)
    assert show(tmp_path / "r.ring.prev").stdout == first
    assert show(ring).stdout.count("FlashInfer API Call") == 2
    text = tmp_path / "notes.txt"
    text.write_text("mine\n")
    p = run([RING, "seq", MODULE_DIR, 1, 2], level=1, dest=text, env=ring_env(0.05))
    assert p.returncode == 0 and text.read_text() == "mine\n"
    assert p.stderr.startswith(f"flashlog: cannot open log destination '{text}': cannot create a ring there: it "
                               f"exists and is not a flashlog ring (left as it is); nothing is logged by this process (set -o or FLASHLOG_DEST to a file whose folder can be created, or to stderr)\n")


def test_processes_given_one_ring_name_each_keep_their_records(tmp_path):
    """Four processes started at once with one ring name (ranks of a job without %r): the first to place its ring
    has the path, each of the others writes `<path>.<pid>` with one stderr line saying so, and every ring holds its
    own process's calls. A later run, once they have ended, moves the ring at the path to `<path>.prev` as for any
    earlier run, and says nothing."""
    ring = tmp_path / "job.ring"
    env = shim_env(3, ring, FLASHLOG_RING_MB=1)
    procs = [subprocess.Popen([str(RING), "kill", str(MODULE_DIR), "1", "5"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errs = {}
    try:
        for p in procs:
            assert p.stdout.readline() == "ready\n"
    finally:
        for p in procs:
            p.kill()
            errs[p.pid] = p.communicate(timeout=60)[1]
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 4 and "job.ring" in names, names
    pids = {p.pid for p in procs}
    beside = {int(n.split(".")[-1]) for n in names if n != "job.ring"}
    assert beside < pids
    (first,) = pids - beside
    assert errs[first] == ""
    for pid in beside:
        assert errs[pid] == (f"flashlog: ring '{ring}' is written by process {first}; this process ({pid}) writes its "
                             f"ring to '{ring}.{pid}' (%i or %r in the name gives each process its own)\n")
    for name in names:
        s = show(tmp_path / name)
        writer = first if name == "job.ring" else int(name.split(".")[-1])
        assert f"Process: {writer}" in s.stdout
        calls = [r[3] for r in parse_echo_records(split_sysinfo(masked(s.stdout))[1]) if r[0] == "in"]
        assert calls[:5] == [0, 1, 2, 3, 4]
    p = run([RING, "seq", MODULE_DIR, 1, 2], level=3, dest=ring, env=ring_env(1))
    assert (p.returncode, p.stderr) == (0, "")
    assert f"Process: {first}" in show(tmp_path / "job.ring.prev").stdout
    assert show(ring).stdout.count("FlashInfer API Call") == 2


@pytest.mark.parametrize("call,mode,errno", [("renameat2", "eperm", 1), ("renameat2", "enosys", 38),
                                            ("kill", "eperm", 1)])
def test_rings_placed_where_a_system_call_is_refused(tmp_path, call, mode, errno):
    """A seccomp policy (or an old kernel) that refuses renameat2 (the plain rename places the rings) or answers
    kill with EPERM (/proc tells whether the ring's writer runs): the new ring goes beside a running process's ring
    and over an earlier run's."""
    ring = tmp_path / "job.ring"
    env = shim_env(3, ring, FLASHLOG_RING_MB=1)
    refused = [str(RING), "refuse", call, mode, str(MODULE_DIR)]
    first = subprocess.Popen([str(RING), "kill", str(MODULE_DIR), "1", "5"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline() == "ready\n"
        p = subprocess.run(refused + ["1", "3"], env=env, capture_output=True, text=True, timeout=120)
    finally:
        first.kill()
        first.communicate(timeout=60)
    assert p.returncode == 0 and p.stdout.startswith(f"{call} after the filter: -1 errno={errno}\n"), p.stdout
    (beside,) = [n for n in os.listdir(tmp_path) if n != "job.ring"]
    assert p.stderr == (f"flashlog: ring '{ring}' is written by process {first.pid}; this process ({beside.split('.')[-1]}) "
                        f"writes its ring to '{tmp_path / beside}' (%i or %r in the name gives each process its own)\n")
    assert show(tmp_path / beside).stdout.count("FlashInfer API Call") == 3
    p = subprocess.run(refused + ["1", "2"], env=env, capture_output=True, text=True, timeout=120)
    assert (p.returncode, p.stderr) == (0, "")
    assert f"Process: {first.pid}" in show(tmp_path / "job.ring.prev").stdout
    assert show(ring).stdout.count("FlashInfer API Call") == 2


def test_launcher_ring_option(tmp_path):
    """`flashlog --ring MB -o FILE` runs the command with the ring."""
    ring = tmp_path / "l_%i.ring"
    p = subprocess.run([str(FLASHLOG), "-l", "3", "--ring", "0.1", "-o", str(ring), "--", str(RING), "seq",
                        str(MODULE_DIR), "1", "4"], env=clean_env(FLASHLOG_LIB=LIB), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    [made] = list(tmp_path.iterdir())
    assert made.stat().st_size == HEADER + 106496
    assert show(made).stdout.count("FlashInfer API Call: testops.echo") == 4


# ------------------------------------------------------------------------------------------------------ damage
def test_rings_damaged_by_hand(tmp_path):
    """A ring corrupted by hand: a bad header, a wrong size, garbage in the data area. `flashlog show` says so in
    one line and prints every record still whole, never garbage; a plain log is not a ring."""
    ring = tmp_path / "r.ring"
    run([RING, "seq", MODULE_DIR, 1, 100], level=3, dest=ring, env=ring_env(0.02), check=True)
    good = show(ring)
    good_shown, good_over, _, _ = account(good.stderr)
    good_records = parse_echo_records(split_sysinfo(masked(good.stdout))[1])
    data = bytearray(ring.read_bytes())

    bad_header = tmp_path / "header.ring"
    bad_header.write_bytes(bytes(data[:17]) + bytes([data[17] ^ 0xff]) + bytes(data[18:]))
    s = show(bad_header)
    assert s.stderr.splitlines()[0] == (f"flashlog show: {bad_header}: the ring's header is damaged; its records were "
                                        "found by scanning the data area (the count of overwritten records is unknown)")
    assert account(s.stderr)[0] == good_shown and s.stdout == good.stdout

    short = tmp_path / "short.ring"
    short.write_bytes(bytes(data[:-8192]))
    s = show(short)
    assert s.stderr.splitlines()[0] == (f"flashlog show: {short}: the file holds {len(data) - HEADER - 8192} bytes of "
                                        f"records where its header says {len(data) - HEADER} (it was truncated or "
                                        "extended after it was made); what is there is read")
    records = parse_echo_records(split_sysinfo(masked(s.stdout))[1])
    assert 0 < len(records) < len(good_records) and all(r in good_records for r in records)

    garbage = tmp_path / "garbage.ring"
    middle = HEADER + 8000
    garbage.write_bytes(bytes(data[:middle]) + b"\x5a" * 300 + bytes(data[middle + 300:]))
    s = show(garbage)
    shown, overwritten, torn, damaged = account(s.stderr)
    assert damaged >= 1 and shown + damaged + overwritten == good_shown + good_over
    records = parse_echo_records(split_sysinfo(masked(s.stdout))[1])
    assert len(records) == shown and all(r in good_records for r in records)

    plain = tmp_path / "plain.log"
    run([RING, "seq", MODULE_DIR, 1, 1], level=1, dest=plain, check=True)
    s = show(plain, check=False)
    assert s.returncode == 2 and s.stderr == f"flashlog show: {plain}: not a flashlog ring\n" and s.stdout == ""
