"""The `flashlog` launcher and `flashlog summary` (issue 4), on real programs and real logs."""

import os
import re
import signal
import subprocess

import numpy as np
import pytest

from conftest import FIXDIR, LIB, MODULE_DIR, REPO, clean_env, require

FLASHLOG = REPO / "target/release/flashlog"
DRIVER = FIXDIR / "tvm_driver"


def launch(args, env=None, timeout=60):
    e = clean_env(FLASHLOG_LIB=LIB, **(env or {}))
    return subprocess.run([str(require(FLASHLOG)), *map(str, args)], env=e, capture_output=True, text=True,
                          timeout=timeout)


def test_variables_and_preload(tmp_path):
    other = require(FIXDIR / "libother_interposer.so")
    p = launch(["-l", "3", "-o", tmp_path / "r_%i.log", "--modules", "*x*", "--kernels", "", "--", "env"],
               env={"LD_PRELOAD": other})
    assert p.returncode == 0, p.stderr
    env = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    assert env["LD_PRELOAD"] == f"{LIB.resolve()}:{other}"
    assert env["FLASHLOG_LEVEL"] == "3" and env["FLASHLOG_DEST"] == str(tmp_path / "r_%i.log")
    assert env["FLASHLOG_MODULES"] == "*x*" and env["FLASHLOG_KERNELS"] == ""
    assert "FLASHINFER_LOGLEVEL" not in env  # FlashInfer's own logger stays off
    p = launch(["env"])
    env = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    assert env["FLASHLOG_LEVEL"] == "1" and "FLASHLOG_DEST" not in env


def env_of(args, env=None):
    p = launch([*args, "env"], env=env)
    assert p.returncode == 0, p.stderr
    return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


# Every option that sets a variable: (option, a value or None for a flag, the variable, what it gets).
VALUED = [("--level", "5", "FLASHLOG_LEVEL", "5"), ("--output", "{tmp}/r_%i.log", "FLASHLOG_DEST", "{tmp}/r_%i.log"),
          ("--modules", "*x*", "FLASHLOG_MODULES", "*x*"), ("--kernels", "", "FLASHLOG_KERNELS", ""),
          ("--dump-dir", "{tmp}/dumps_%i", "FLASHLOG_DUMP_DIR", "{tmp}/dumps_%i")]
FLAGS = [("--graph-stats", "FLASHLOG_GRAPH_STATS", "1"), ("--watch", "FLASHLOG_WATCH", "nonfinite"),
         ("--sync", "FLASHLOG_SYNC", "1"), ("--graph-markers", "FLASHLOG_GRAPH_MARKERS", "1"),
         ("--correlate", "FLASHLOG_CORRELATE", "1")]
# What a flag needs given with it.
WITH = {"--graph-markers": ["--sync"]}
SHORT = {"--level": "-l", "--output": "-o"}


def test_option_forms(tmp_path):
    """Every option in each of its forms (`--opt V`, `--opt=V`, `-xV` and `-x V` for the short ones) sets what the
    table says; level 10 so that every option is allowed."""
    base = ["-l", "10"]
    for opt, value, var, want in VALUED:
        value, want = value.format(tmp=tmp_path), want.format(tmp=tmp_path)
        forms = [[opt, value], [f"{opt}={value}"]]
        if opt in SHORT:
            forms += [[SHORT[opt], value], [SHORT[opt] + value]] if value else [[SHORT[opt], value]]
        for form in forms:
            args = form if opt == "--level" else [*base, *form]
            assert env_of([*args, "--"])[var] == want, (form, var)
    for opt, var, want in FLAGS:
        env = env_of([*base, opt, *WITH.get(opt, []), "--"])
        assert env[var] == want, opt
        p = launch([*base, f"{opt}=1", *WITH.get(opt, []), "ls"])
        assert (p.returncode, p.stderr) == (2, f"flashlog: unknown option '{opt}=1' (flashlog --help lists them)\n")
    env = env_of(["-l", "5", "--"])
    assert not {"FLASHLOG_GRAPH_STATS", "FLASHLOG_WATCH", "FLASHLOG_DUMP_DIR", "FLASHLOG_SYNC",
                "FLASHLOG_GRAPH_MARKERS"} & set(env)
    env_of(["-l10", "--dump-dir", tmp_path / "d/e", "-o", tmp_path / "logs/%r/x.log", "--"])
    assert (tmp_path / "d/e").is_dir() and (tmp_path / "logs").is_dir()  # created before the command starts
    assert list((tmp_path / "logs").iterdir()) == []  # the per-process part is the library's


REFUSALS = [
    (["-l", "11"], "flashlog: --level '11' is not a level: use 0, 1, 3, 5 or 10"),
    (["--level=4"], "flashlog: --level '4' is not a level: use 0, 1, 3, 5 or 10"),
    (["-l3x"], "flashlog: --level '3x' is not a level: use 0, 1, 3, 5 or 10"),
    (["--level="], "flashlog: --level '' is not a level: use 0, 1, 3, 5 or 10"),
    (["-l", "3", "--watch"], "flashlog: --watch needs level 5 or 10 (the level is 3): add -l 5"),
    (["--graph-stats"], "flashlog: --graph-stats needs level 5 or 10 (the level is 1): add -l 5"),
    (["-l5", "--dump-dir", "d"], "flashlog: --dump-dir needs level 10 (the level is 5): add -l 10"),
    (["-l0", "--sync"], "flashlog: --sync needs level 1, 3, 5 or 10 (the level is 0): add -l 1"),
    (["-l0", "--correlate"], "flashlog: --correlate needs level 1, 3, 5 or 10 (the level is 0): add -l 1"),
    (["--graph-markers"], "flashlog: --graph-markers needs --sync (or FLASHLOG_SYNC=1): add --sync"),
    (["-l", "5", "--graph-markers", "--watch"], "flashlog: --graph-markers needs --sync (or FLASHLOG_SYNC=1): add --sync"),
    (["--ring", "0"], "flashlog: ring size '0' is not a positive number of MiB up to 1048576 (1 TiB)"),
    (["--ring", "2000000", "-o", "x.ring"],
     "flashlog: ring size '2000000' is not a positive number of MiB up to 1048576 (1 TiB)"),
    (["--output="], "flashlog: option --output= needs a destination"),
    (["--dump-dir="], "flashlog: option --dump-dir= needs a folder"),
    (["--levels=3"], "flashlog: unknown option '--levels=3' (flashlog --help lists them)"),
    (["-o", "{file}/x.log"], "flashlog: --output {file}/x.log: cannot create folder '{file}': File exists (os error 17); "
                             "give a file in a folder that can be created"),
    (["-o", "{file}/sub/%r/x.log"], "flashlog: --output {file}/sub/%r/x.log: cannot create folder '{file}/sub': Not a "
                                    "directory (os error 20); give a file in a folder that can be created"),
    (["-o", "{tmp}"], "flashlog: --output {tmp}: is a folder; give a file name (e.g. {tmp}/rank_%r.log)"),
    (["-l", "10", "--dump-dir={file}/d"], "flashlog: --dump-dir {file}/d: cannot create folder '{file}/d': Not a "
                                          "directory (os error 20); give a folder that can be created"),
]


def test_refusals_before_the_command_starts(tmp_path):
    """Each mistake: one line naming the option and what would do, exit status 2, and the command never ran."""
    (tmp_path / "file").write_text("")
    marker = tmp_path / "ran"
    for args, message in REFUSALS:
        fill = lambda t: str(t).format(file=tmp_path / "file", tmp=tmp_path)
        p = launch([*map(fill, args), "--", "touch", marker])
        assert (p.returncode, p.stderr, p.stdout) == (2, fill(message) + "\n", ""), args
        assert not marker.exists(), args
    # An inherited level that is not an integer is named by the variable the user set.
    for var in ("FLASHINFER_LOGLEVEL", "FLASHLOG_LEVEL"):
        p = launch(["touch", marker], env={var: "abc"})
        assert (p.returncode, p.stderr) == (2, f"flashlog: {var}='abc' is not a level: set it to 0, 1, 3, 5 or 10, "
                                               "or pass -l\n")
    assert not marker.exists()
    # The same variable is fine with -l, and a level that the library reads (Python's int) is fine without it.
    assert launch(["-l", "1", "true"], env={"FLASHINFER_LOGLEVEL": "abc"}).returncode == 0
    assert launch(["--watch", "true"], env={"FLASHINFER_LOGLEVEL": " 1_0 "}).returncode == 0
    # --graph-markers with FLASHLOG_SYNC=1 inherited instead of --sync; any other value of it is no --sync.
    for sync, status in (("1", 0), (" 1 ", 0), ("0", 2), ("", 2), ("yes", 2)):
        p = launch(["--graph-markers", "true"], env={"FLASHLOG_SYNC": sync})
        assert p.returncode == status, (sync, p.stderr)


def test_python_logger_stays_off(tmp_path):
    """FLASHINFER_LOGLEVEL=3 flashlog -l 3 ...: the child has no FLASHINFER_LOGLEVEL, so FlashInfer's Python
    logger (which reads it at import) stays off; --with-python-logger keeps both on, into the same file."""
    env = env_of(["-l", "3", "-o", tmp_path / "l.log", "--"], env={"FLASHINFER_LOGLEVEL": "3"})
    assert "FLASHINFER_LOGLEVEL" not in env and env["FLASHLOG_LEVEL"] == "3"
    # Without -l the level the user gave FlashInfer becomes the shim's.
    env = env_of([], env={"FLASHINFER_LOGLEVEL": "5"})
    assert "FLASHINFER_LOGLEVEL" not in env and env["FLASHLOG_LEVEL"] == "5"
    log = tmp_path / "five.log"
    p = launch(["-o", log, "--", DRIVER, "errors", MODULE_DIR], env={"FLASHINFER_LOGLEVEL": "5"})
    assert p.returncode == 0 and "Output value:" in log.read_text()  # level 3 and above reached the shim
    env = env_of(["-l5", f"-o{tmp_path / 'both.log'}", "--with-python-logger"])
    assert env["FLASHINFER_LOGLEVEL"] == env["FLASHLOG_LEVEL"] == "5"
    assert env["FLASHINFER_LOGDEST"] == env["FLASHLOG_DEST"] == str(tmp_path / "both.log")
    env = env_of(["-l5", "--with-python-logger"], env={"FLASHINFER_LOGLEVEL": "3"})
    assert (env["FLASHINFER_LOGLEVEL"], env["FLASHLOG_LEVEL"]) == ("3", "5")
    assert "FLASHINFER_LOGDEST" not in env


def option_names(text, pattern):
    return {o for pair in re.findall(pattern, text, re.M) for o in pair if o}


def test_help_and_usage_doc_list_the_same_things():
    """--help and docs/usage.md's table come from one table (src/bin/flashlog/options.rs): the same options, and
    every variable and exit status --help names is in the doc."""
    helptext = launch(["--help"]).stdout
    flat = option_names(helptext, r"^  (?:(-\w), )?(--[\w-]+)")
    assert flat >= {"-l", "--level", "-o", "--output", "--modules", "--kernels", "--with-python-logger",
                    "--graph-stats", "--watch", "--sync", "--graph-markers", "--correlate", "--dump-dir"}
    doc = (REPO / "docs/usage.md").read_text()
    section = doc[doc.index("### Launcher options"):]
    section = section[: section.index("\n## ")]
    assert option_names(section, r"^\| `(--?[\w-]+)`(?:, `(--?[\w-]+)`)?") == flat
    for name in set(re.findall(r"\b(?:FLASHLOG|FLASHINFER)_[A-Z_]+\b", helptext[:helptext.index("flashlog summary LOG")])):
        assert name in doc, name
    for status in re.findall(r"\b(12[67]|[0-2]) (?:if|for|when|nothing|a NaN|unusable)", helptext):
        assert re.search(rf"\b{status}\b", section), status
    assert "FLASHLOG_LIB" in helptext and "-lN" in helptext and "--name=VALUE" in helptext
    assert "`--level=5`" in doc and "`-l5`" in doc
    assert all(len(line) <= 116 for line in helptext.splitlines())


def test_exit_codes_and_signals(tmp_path):
    assert launch(["sh", "-c", "exit 7"]).returncode == 7
    assert launch(["--", "sh", "-c", "kill -TERM $$"]).returncode == -signal.SIGTERM
    p = launch(["no-such-command-xyz"])
    assert p.returncode == 127 and p.stderr == "flashlog: no-such-command-xyz: command not found\n"
    not_executable = tmp_path / "script.sh"
    not_executable.write_text("echo hi\n")
    not_executable.chmod(0o644)
    p = launch([not_executable])
    assert p.returncode == 126 and "permission denied" in p.stderr
    p = launch(["-l", "x", "ls"])
    assert p.returncode == 2 and "is not a level" in p.stderr
    p = launch(["--frobnicate", "ls"])
    assert p.returncode == 2 and "unknown option" in p.stderr
    p = subprocess.run([str(FLASHLOG), "ls"], env=clean_env(FLASHLOG_LIB="/nonexistent/libflashlog.so"),
                       capture_output=True, text=True)
    assert p.returncode == 1 and "FLASHLOG_LIB=/nonexistent/libflashlog.so is not a file" in p.stderr


def test_help_and_version():
    p = launch(["--help"])
    assert p.returncode == 0 and "flashlog -l 3 -o 'logs/rank_%i.log' -- torchrun --nproc_per_node=8 train.py" in p.stdout
    version = re.search(r'^version = "(.+)"$', (REPO / "Cargo.toml").read_text(), re.M).group(1)
    assert launch(["--version"]).stdout == f"flashlog {version}\n"
    assert launch(["summary", "--help"]).stdout.startswith("usage: flashlog summary [--show] LOG...\n")


def test_help_into_a_closed_pipe():
    """`flashlog --help | head -1`: a reader that went away ends the output quietly (no panic, status 0). The pipe's
    read end is closed before the launcher starts, so every write meets EPIPE whatever the scheduling."""
    for args in (["--help"], ["--version"], ["summary", "--help"], ["show", "--help"], ["export", "--help"]):
        r, w = os.pipe()
        os.close(r)
        try:
            p = subprocess.run([str(require(FLASHLOG)), *args], env=clean_env(FLASHLOG_LIB=LIB), stdout=w,
                               stderr=subprocess.PIPE, text=True, timeout=60)
        finally:
            os.close(w)
        assert (p.returncode, p.stderr) == (0, ""), (args, p.stderr)


CUDA_ERRORS = FIXDIR / "cuda/cuda_errors"
CUDAOPS = MODULE_DIR / "cudaops/cudaops.so"


@pytest.mark.parametrize("form", ["options", "sync-variable"])
def test_sync_and_graph_markers_reach_the_library(tmp_path, form):
    """`--sync --graph-markers`, or FLASHLOG_SYNC=1 inherited and `--graph-markers`: a graph whose fourth captured
    call faults at its third replay (the fake driver's sticky error) gets the replay error record with the markers'
    progress, the program sees what it sees without the launcher, and the summary names the replay (exit 1) and
    with --show prints that record."""
    exe, module = require(CUDA_ERRORS), require(CUDAOPS)
    plain = subprocess.run([str(exe), "graph"], env=clean_env(FLASHINFER_MODULE=module), capture_output=True,
                           text=True, timeout=60)
    log = tmp_path / "g.log"
    args, env = (["--sync"], {}) if form == "options" else ([], {"FLASHLOG_SYNC": "1"})
    p = launch(["-l", "3", *args, "--graph-markers", "--kernels=", "-o", log, "--", exe, "graph"],
               env={"FLASHINFER_MODULE": module, **env})
    assert (p.returncode, p.stdout) == (plain.returncode, plain.stdout), p.stderr
    text = log.read_text()
    assert " FlashInfer Graph Replay Error: graph id=1, replay 3" in text, text
    assert "last completed: cudaops.scale2 [call " in text and "first not completed: cudaops.fault [call " in text
    s = launch(["summary", "--show", log])
    assert s.returncode == 1, s.stdout + s.stderr
    line = 1 + text.splitlines().index("[CUDA error after this replay: CUDA_ERROR_ILLEGAL_ADDRESS (700)]")
    first = [l for l in s.stdout.splitlines() if l.startswith("first CUDA error: ")]
    assert len(first) == 1 and first[0].startswith(f"first CUDA error: {log}:{line} CUDA_ERROR_ILLEGAL_ADDRESS "
                                                   "(700) in graph id=1, replay 3 (last completed: "), s.stdout
    shown = s.stdout[s.stdout.index("==> first CUDA error"):]
    assert "FlashInfer Graph Replay Error: graph id=1, replay 3\n" in shown and "first not completed: " in shown
    # Without --sync the markers alone are refused before the program starts.
    p = launch(["--graph-markers", "--", exe, "graph"], env={"FLASHINFER_MODULE": module})
    assert (p.returncode, p.stdout) == (2, ""), p.stderr


def test_four_processes_four_files(tmp_path):
    script = " ".join(f"{DRIVER} errors {MODULE_DIR} >/dev/null &" for _ in range(4)) + " wait"
    p = launch(["-l", "1", "-o", tmp_path / "rank_%i.log", "--", "sh", "-c", script])
    assert p.returncode == 0, p.stderr
    files = sorted(tmp_path.iterdir())
    assert len(files) == 4
    for f in files:
        pid = re.fullmatch(r"rank_(\d+)\.log", f.name).group(1)
        assert f"Process: {pid} (tvm_driver)" in f.read_text()
        assert f.read_text().count("FlashInfer API Call:") == 4


def stats_log(tmp_path, name, values):
    data = tmp_path / f"{name}.bin"
    data.write_bytes(np.asarray(values, dtype=np.float32).tobytes())
    log = tmp_path / f"{name}.log"
    args = [FIXDIR / "stats/stats_driver", MODULE_DIR / "statsops/statsops.so", data, 2, 32, 1, 0, 1, len(values), "-"]
    p = launch(["-l", "5", "-o", log, "--", *args])
    assert p.returncode == 0, p.stderr
    return log


def test_summary_finds_first_nan_and_crashed_call(tmp_path):
    clean = stats_log(tmp_path, "rank0", [1.0, 2.0, 3.0])
    planted = stats_log(tmp_path, "rank1", [1.0, float("nan"), 3.0])
    crashed = tmp_path / "rank2.log"
    p = launch(["-l", "3", "-o", crashed, "--", DRIVER, "crash", MODULE_DIR])
    assert p.returncode == -signal.SIGABRT
    assert launch(["summary", clean]).returncode == 0  # nothing found
    s = launch(["summary", clean, planted, crashed])
    assert s.returncode == 1, s.stderr  # a NaN and a call that did not return
    lines = s.stdout.splitlines()
    assert re.fullmatch(r"\s+calls\s+NaN in\s+NaN out\s+name\s+first NaN/Inf in input\s+first NaN/Inf in output", lines[0])
    row = next(l for l in lines if "statsops.inspect" in l)
    place = rf"{re.escape(str(planted))}:\d+ \[[-\d :]+\] arg\[0\]"  # FILE:LINE first, the path as given
    assert re.fullmatch(rf"\s+2\s+1\s+1\s+statsops\.inspect\s+{place}\s+{place}", row), row
    crash_row = next(l for l in lines if "testops.crash" in l)
    assert re.fullmatch(r"\s+1\s+0\s+0\s+testops\.crash\s+-\s+-", crash_row)
    assert re.search(rf"^first NaN/Inf overall: {place} statsops\.inspect input$", s.stdout, re.M)
    assert re.search(rf"^did not return: {re.escape(str(crashed))}:10 \[[-\d :]+\] testops\.crash$", s.stdout, re.M)
    assert re.search(rf"^the run ended without its exit line: the last call started was testops\.crash "
                     rf"\({re.escape(str(crashed))}:10, pid \d+\)$", s.stdout, re.M), s.stdout
    assert lines[-1] == "unparsed lines: 0"


def test_summary_of_malformed_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.log"
    garbage.write_bytes(os.urandom(4096) + b"\n=" * 3 + b"\n" + b"=" * 80 + b"\nnot a record\n")
    s = launch(["summary", garbage, tmp_path / "missing.log"])
    assert s.returncode == 2  # unusable input
    assert "missing.log: No such file or directory" in s.stderr
    assert "garbage.log: no records (not a flashlog or FlashInfer log?)" in s.stderr
    assert "unparsed: " in s.stderr and "not a record" in s.stderr
    assert s.stdout == ""  # no table of nothing
    # A readable log next to an unusable file: its table is shown, the status still says the input was unusable.
    good = stats_log(tmp_path, "good", [1.0, 2.0])
    s = launch(["summary", good, garbage])
    assert s.returncode == 2 and "statsops.inspect" in s.stdout
    assert re.search(r"^file garbage\.log: 1 run, no records$", s.stdout, re.M)


def test_summary_reads_a_large_file_in_bounded_memory(tmp_path):
    """50 MB of records in one pass under a 128 MiB address-space limit (a bound that does not depend on the
    machine's speed or load, unlike a time budget)."""
    one = stats_log(tmp_path, "one", [1.0, 2.0]).read_text()
    record = one[one.index("\n\n") + 2:]
    big = tmp_path / "big.log"
    with big.open("w") as f:
        f.write(one)
        for _ in range(50_000_000 // len(record)):
            f.write(record)
    s = subprocess.run(["sh", "-c", 'ulimit -v 131072 && exec "$0" summary "$1"', str(FLASHLOG), str(big)],
                       env=clean_env(), capture_output=True, text=True, timeout=600)
    assert s.returncode == 0, s.stderr
    calls = int(re.search(r"^\s+(\d+)\s+0\s+0\s+statsops\.inspect", s.stdout, re.M).group(1))
    assert calls == 1 + 50_000_000 // len(record)


def test_install_layout_and_header(tmp_path):
    """`make install` puts the launcher in bin/ and the library in lib/; the launcher finds it there. shim.h
    compiles in C and C++ next to <dlfcn.h> (its dlsym declaration agrees with glibc's)."""
    prefix = tmp_path / "prefix"
    subprocess.run(["make", "-s", "install", f"PREFIX={prefix}"], cwd=REPO, check=True, capture_output=True)
    assert sorted(p.name for p in (prefix / "bin").iterdir()) == ["flashlog"]
    env = clean_env()
    p = subprocess.run([str(prefix / "bin/flashlog"), "-l", "1", "--", str(DRIVER), "errors", str(MODULE_DIR)],
                       env=env, capture_output=True, text=True)
    assert p.returncode == 0 and "FlashInfer API Call: testops.noop" in p.stdout
    src = tmp_path / "use_header.c"
    src.write_text('#include <dlfcn.h>\n#include "flashlog.h"\nint main(void) { return dlsym(RTLD_DEFAULT, "x") != 0; }\n')
    for compiler in (["gcc"], ["g++", "-x", "c++"]):
        subprocess.run([*compiler, "-Wall", "-Wextra", "-Werror", "-fsyntax-only", f"-I{prefix}/include", str(src)],
                       check=True)
