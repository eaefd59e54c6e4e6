"""Every reader of the launcher in bounded memory: `summary --show` (its second pass), `export --trace` and
`report` (its pass and its record-text passes) read lines with the one bounded reader, so a log holding a 256 MiB
line (inside the shown record, or at its end without a newline), a log ending in 1.25 GiB of NULs (a sparse file)
and a file of NULs alone each cost far less than their size. The bound is each child's own peak resident size
(`getrusage(RUSAGE_CHILDREN)` in a fresh interpreter), a quarter of the size of what it read past, never a time."""

import json
import re
import subprocess

import pytest

from conftest import FIXDIR, LIB, MODULE_DIR, REPO, clean_env, require

FLASHLOG = REPO / "target/release/flashlog"
LONG = 256 << 20
# NULs in a row after which a file is read no further (the reader's limit), and the run appended here.
NUL_STOP = 1 << 30
NULS = NUL_STOP + (256 << 20)
# A quarter of the huge line: the readers hold at most a 1 MiB line and 1 MiB read buffers.
MAX_RSS = LONG // 4
LEFT_OUT = "[... a line longer than 1 MiB, left out ...]"


# Run by a fresh interpreter, so that the peak it reads is flashlog's alone (a child's peak starts from its
# parent's resident size at the fork, and pytest's holds this file's large strings).
MEASURE = ("import resource, subprocess, sys\n"
           "status = subprocess.run(sys.argv[2:]).returncode\n"
           "open(sys.argv[1], 'w').write(f'{status} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}')\n")


def measured(tmp_path, *args):
    """`flashlog ARGS`: (exit status, stdout, stderr, peak resident bytes of that process)."""
    out, err, res = tmp_path / "out.txt", tmp_path / "err.txt", tmp_path / "rusage.txt"
    with open(out, "wb") as o, open(err, "wb") as e:
        subprocess.run(["python3", "-c", MEASURE, str(res), str(require(FLASHLOG)), *map(str, args)],
                       env=clean_env(), stdout=o, stderr=e, check=True, timeout=300)
    status, kib = map(int, res.read_text().split())
    return status, out.read_text(), err.read_text(), kib * 1024


def nan_log(tmp_path):
    """A level-5 log of one thread, six calls, a NaN planted in the output of the second."""
    log = tmp_path / "nan.log"
    p = subprocess.run([str(require(FLASHLOG)), "-l5", f"-o{log}", "--", str(require(FIXDIR / "tvm_driver")),
                        "threads-nan", str(MODULE_DIR), "1", "6", "0", "2"], env=clean_env(FLASHLOG_LIB=LIB),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.endswith("threads=1 calls_ok=6\n"), p.stderr
    return log


def run_all(tmp_path, log):
    """summary --show, export --trace and report of `log`: {tool: (status, stdout, stderr, rss, output file)}."""
    trace, page = tmp_path / "trace.json", tmp_path / "report.html"
    return {
        "summary": (*measured(tmp_path, "summary", "--show", log), None),
        "export": (*measured(tmp_path, "export", "--trace", log, "-o", trace), trace.read_text()),
        "report": (*measured(tmp_path, "report", log, "-o", page), page.read_text()),
    }


def calls_of(trace):
    return sum(1 for e in json.loads(trace)["traceEvents"] if e.get("ph") == "X")


@pytest.fixture
def clean(tmp_path):
    log = nan_log(tmp_path)
    got = run_all(tmp_path, log)
    assert [got[t][0] for t in got] == [1, 0, 0], {t: got[t][2] for t in got}
    return log, got


def test_a_huge_line_inside_the_shown_record(tmp_path, clean):
    log, before = clean
    text = log.read_text()
    nan = re.search(r"^ +nan_count=[1-9]\d*\n", text, re.M)
    with open(log, "w") as f:
        f.write(text[:nan.end()])
        f.write("x" * LONG + "\n")
        f.write(text[nan.end():])
    got = run_all(tmp_path, log)
    for tool, (status, _, err, rss, _) in got.items():
        assert rss < MAX_RSS, f"{tool}: {rss} bytes resident for a {LONG}-byte line"
        assert err.startswith(f"flashlog {tool}: {log}: 1 lines longer than 1 MiB skipped\n"), err
    status, out, err, _, _ = got["summary"]
    # The record is shown with the line said to be left out; all else is as before (the line is after the place).
    assert status == 1 and err == f"flashlog summary: {log}: 1 lines longer than 1 MiB skipped\n"
    shown = before["summary"][1].split("\n==> ", 1)
    assert out == shown[0] + "\n==> " + shown[1].replace(nan.group(0), nan.group(0) + LEFT_OUT + "\n", 1)
    status, _, err, _, trace = got["export"]
    assert status == 0 and calls_of(trace) == calls_of(before["export"][4]) == 6, err
    status, _, err, _, page = got["report"]
    assert status == 0 and LEFT_OUT in page and len(page) < len(before["report"][4]) + 4096, err
    assert re.fullmatch(rf"flashlog report: {re.escape(str(log))}: 1 lines longer than 1 MiB skipped\n"
                        r"flashlog report: 6 calls and 1 findings from 1 logs written to .*\n", err), err
    log.unlink()


def test_a_huge_last_line_without_newline(tmp_path, clean):
    log, before = clean
    with open(log, "a") as f:
        f.write("y" * LONG)
    got = run_all(tmp_path, log)
    for tool, (status, out, err, rss, _) in got.items():
        assert rss < MAX_RSS, f"{tool}: {rss} bytes resident for a {LONG}-byte line"
        assert status == before[tool][0] and err.startswith(f"flashlog {tool}: {log}: 1 lines longer than 1 MiB "
                                                            "skipped\n"), err
    assert got["summary"][1] == before["summary"][1]
    assert calls_of(got["export"][4]) == 6 and got["report"][4] == before["report"][4]
    log.unlink()


def test_a_log_ending_in_nuls(tmp_path, clean):
    log, before = clean
    subprocess.run(["truncate", "-s", f"+{NULS}", str(log)], check=True)
    got = run_all(tmp_path, log)
    for tool, (status, out, err, rss, _) in got.items():
        assert rss < MAX_RSS, f"{tool}: {rss} bytes resident for {NULS} NUL bytes"
        assert status == before[tool][0]
        assert err.startswith(f"flashlog {tool}: {log}: read no further after 1 GiB of NUL bytes in a row\n"), err
    assert got["summary"][1] == before["summary"][1]
    assert calls_of(got["export"][4]) == 6 and got["report"][4] == before["report"][4]


def test_a_file_of_nuls(tmp_path):
    zeros = tmp_path / "zeros.log"
    subprocess.run(["truncate", "-s", str(LONG), str(zeros)], check=True)
    got = run_all(tmp_path, zeros)
    for tool, (status, out, err, rss, _) in got.items():
        assert rss < MAX_RSS, f"{tool}: {rss} bytes resident for {LONG} NUL bytes"
    nuls = f"{zeros}: {LONG} NUL bytes skipped (zero-filled blocks of a crashed run?)\n"
    status, out, err, _, _ = got["summary"]
    assert (status, out) == (2, "") and err == (f"flashlog summary: {nuls}"
                                                f"flashlog summary: {zeros}: no records (not a flashlog or FlashInfer log?)\n")
    status, _, err, _, trace = got["export"]
    assert status == 0 and calls_of(trace) == 0
    assert err == f"flashlog export: {nuls}flashlog export: 0 calls from 1 logs written to {tmp_path / 'trace.json'}\n"
    status, _, err, _, _ = got["report"]
    assert status == 0 and re.fullmatch(rf"flashlog report: {re.escape(nuls)}flashlog report: 0 calls and 0 findings "
                                        r"from 1 logs written to .*\n", err), err
