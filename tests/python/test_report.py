"""`flashlog report` (issue 23, item 4): the page of a two-rank run with a planted NaN and of a 100,000-record
log, opened in headless Chromium (Debian's `chromium`, installed by `make test` through scripts/chromium.sh): no
console message and no script error, a screenshot that is not blank, the NaN marked and its record's text in the
page after its scripts ran. The bounds on the long log are counts (page size, points drawn), never times."""

import math
import re
import shutil
import struct
import subprocess
import zlib

import pytest

from conftest import FIXDIR, LIB, MODULE_DIR, REPO, clean_env, require

FLASHLOG = REPO / "target/release/flashlog"
DRIVER = FIXDIR / "tvm_driver"
EQ, DASH = "=" * 80, "-" * 80
# The long log's bounds: the page stays under 3 MB and draws under 40,000 points (2 series of at most 2000
# points with 5 columns, and a 400-bucket timeline), whatever the number of records.
MAX_PAGE_BYTES = 3_000_000
MAX_POINTS_DRAWN = 40_000


def flashlog(args, env=None):
    e = clean_env(FLASHLOG_LIB=LIB, **(env or {}))
    return subprocess.run([str(require(FLASHLOG)), *map(str, args)], env=e, capture_output=True, text=True,
                          timeout=300)


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("no chromium on PATH (scripts/chromium.sh, run by make test, installs it with apt-get)")
    return exe


def browse(page, tmp_path, *extra):
    """Chromium headless on `page` with `extra` flags; virtual time lets the scripts finish before the dump or the
    screenshot without a wall-clock wait. Returns (stdout, console lines of the page)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path}/chrome",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000"]
    p = subprocess.run([chromium(), *flags, *extra, page.as_uri()], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout, [line for line in p.stderr.splitlines() if ":CONSOLE" in line]


def png_pixels(path):
    """(width, height, rows of bytes, bytes per pixel) of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, head = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = head
    assert depth == 8 and colour in (2, 6) and interlace == 0, head
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def check_screenshot(png):
    w, h, rows, bpp = png_pixels(png)
    colours, inked = set(), 0
    for row in rows:
        for x in range(0, w * bpp, bpp):
            px = row[x:x + 3]
            colours.add(px)
            inked += px != b"\xff\xff\xff"
    # A page of text and charts: many colours (anti-aliased text, series colours), a fair share of ink.
    assert len(colours) > 50, len(colours)
    assert 0.01 < inked / (w * h) < 0.9, inked / (w * h)
    # The red of the NaN marks (#d62728) is drawn.
    assert b"\xd6\x27\x28" in colours


def check_page(page, tmp_path):
    """The page's DOM after its scripts ran, with no console message and no script error."""
    dom, console = browse(page, tmp_path, "--dump-dom")
    assert console == [], console
    assert re.search(r'<pre id="errors"></pre>', dom), re.search(r'<pre id="errors">.*?</pre>', dom, re.S).group(0)
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attrs = dict(re.findall(r'data-(\w+)="(\d+)"', body))
    assert attrs.get("rendered") == "1", body
    assert "://" not in re.sub(r'(xmlns(:\w+)?="[^"]*"|<pre[^>]*>.*?</pre>|<script[^>]*>.*?</script>)', "",
                               dom, flags=re.S), "the page refers to something outside it"
    return dom, int(attrs["points"]), int(attrs["marks"])


def test_two_ranks_with_a_planted_nan(tmp_path):
    logs = tmp_path / "logs"
    for rank, plant in ((0, -1), (1, 3)):
        env = {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"}
        p = flashlog(["-l5", "-o", logs / "rank_%r.log", "--", require(DRIVER), "threads-nan", MODULE_DIR, 1, 40, 0,
                      plant], env=env)
        assert p.returncode == 0, p.stderr
    r0, r1 = logs / "rank_0.log", logs / "rank_1.log"
    text1 = r1.read_text()
    # The planted call's outputs: the first nan_count above zero in rank 1's log, and its record.
    nan_line = next(i for i, line in enumerate(text1.splitlines(), 1) if re.fullmatch(r"\s+nan_count=[1-9]\d*", line))
    page = tmp_path / "report.html"
    p = flashlog(["report", r0, r1, "-o", page])
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(rf"flashlog report: 80 calls and \d+ findings from 2 logs written to {re.escape(str(page))} "
                        r"\(\d+ KB\)\n", p.stderr), p.stderr

    html = page.read_text()
    # What the charts show is text too: the first NaN/Inf with its FILE:LINE place, each file's call names.
    first = re.search(r'<p id="first">First NaN/Inf: <a class="place" href="#(f-1-\d+)">([^<]*)</a> \(rank 1 of 2\) '
                      r"NaN/Inf in output arg\[0\] \(after\) of norm\.rmsnorm</p>", html)
    assert first and first.group(2) == f"{r1}:{nan_line}", html[:3000]
    assert len(re.findall(r'<td class="name">norm\.rmsnorm</td>', html)) == 2
    assert "rank 0 of 2: " in html and "no NaN/Inf, no call that did not return, no CUDA error" in html

    dom, points, marks = check_page(page, tmp_path)
    # The finding the first line links to holds the planted call's record, as the log has it.
    finding = re.search(rf'<details class="finding nonfinite" id="{first.group(1)}"[^>]*>.*?<pre class="record">'
                        r"(.*?)</pre></details>", dom, re.S)
    assert finding, dom[:3000]
    record = finding.group(1).replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")
    assert record.startswith(EQ + "\n[") and "FlashInfer API Call: norm.rmsnorm" in record and record.endswith(EQ)
    assert record in text1 and "  arg[3]:\n    nan\n" in record
    # Marks: the timeline's bucket of rank 1 with the NaN, and the NaN count of the planted call in the chosen
    # series (the default choice is the first NaN's call name and argument); nothing else is non-finite.
    assert marks == 2, marks
    assert 'id="name"' in dom and "<option" in dom
    assert 0 < points < 10_000

    png = tmp_path / "shot.png"
    _, console = browse(page, tmp_path, f"--screenshot={png}", "--window-size=900,1100")
    assert console == []
    check_screenshot(png)


def synthetic_log(path, records, rank, nan_at=(), inf_at=(), seconds_per=2000, unfinished=False, blowup=None,
                  nan_from=None):
    """A level-5 log of `records` calls in the record format the shim writes (two call names, one tensor in and
    out; the statistics drift and oscillate, and grow exponentially from call `blowup` on), with NaNs at `nan_at`
    and from `nan_from` on, and Infs at `inf_at` (call indexes). docs/report.png shows two of them
    (docs/usage.md)."""
    out = [EQ, "[2026-12-07 05:00:00] FlashInfer API Logging - System Information", EQ, "flashlog version: 0.1.0",
           f"Process: {4000 + rank} (python3)", f"Rank: {rank} of 2 (local {rank})", EQ, ""]
    for i in range(records):
        t = 5 * 3600 + i // seconds_per
        stamp = f"2026-12-07 {t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"
        name = "gemm.bmm_fp8" if i % 3 == 0 else "norm.rmsnorm"
        grow = 1.0 + 3.0 * i / records + 0.5 * math.sin(i / 700.0)
        if blowup is not None and i > blowup:
            grow *= math.exp((i - blowup) / (records / 40))
        nan, inf = int(i in nan_at or (nan_from is not None and i >= nan_from)), int(i in inf_at)
        lo, hi, mean = (-grow, grow, 0.01 * math.sin(i / 50.0)) if not nan else ("nan", "nan", "nan")
        stat = ["      min=%s" % (lo if nan else f"{lo:.6f}"), "      max=%s" % (hi if nan else f"{hi:.6f}"),
                "      mean=%s" % (mean if nan else f"{mean:.6f}"), f"      nan_count={nan * 7}",
                f"      inf_count={inf * 2}"]
        out += [EQ, f"[{stamp}] FlashInfer API Call: {name}", DASH, "Positional input arguments:", "  arg[0]:",
                "    Tensor(", "      shape=(64, 128)", "      dtype=torch.float32", *stat, "    )",
                "Output value:", "  None", "Tensor arguments after the call:", "  arg[0] (after):",
                *[s[2:] for s in stat], EQ, ""]
    if unfinished:  # a last call that did not return
        out += [EQ, f"[{stamp}] FlashInfer API Call: norm.rmsnorm", DASH, "Positional input arguments:", EQ, ""]
    path.write_text("\n".join(out) + "\n")


def test_a_hundred_thousand_records_stay_within_bounds(tmp_path):
    log = tmp_path / "long.log"
    synthetic_log(log, 100_000, 0, nan_at={31_337, 31_338, 77_000}, inf_at={50_000}, unfinished=True)
    page = tmp_path / "long.html"
    p = flashlog(["report", log, "-o", page])
    assert p.returncode == 0, p.stderr
    assert p.stderr.startswith("flashlog report: 100001 calls and ")
    size = page.stat().st_size
    assert size < MAX_PAGE_BYTES, size

    dom, points, marks = check_page(page, tmp_path)
    assert points < MAX_POINTS_DRAWN, points
    # The default series is the first NaN's: call 31,337 is a norm.rmsnorm (a call index that is a multiple of 3 is
    # a gemm.bmm_fp8), its input arg[0]; of its 66,666 points at most 2000 are drawn.
    shown = re.search(r'<span id="shown">(\d+) of (\d+) points drawn</span>', dom)
    assert shown and int(shown.group(1)) <= 2000 and int(shown.group(2)) == 66_666, shown
    assert re.search(r"NaN/Inf in input arg\[0\] of norm\.rmsnorm", dom)
    assert "did not return: norm.rmsnorm" in dom
    # Marks: the timeline's buckets with findings (31,337 and 31,338 share one of 250 calls; 50,000; 77,000; the
    # call that did not return) and, in rmsnorm arg[0]'s chart, every one of its non-finite points, kept by the
    # decimation: NaN at 31,337 and 77,000, Inf at 50,000 (31,338 is a gemm's).
    assert marks == 4 + 3, marks
    png = tmp_path / "long.png"
    _, console = browse(page, tmp_path, f"--screenshot={png}", "--window-size=900,1100")
    assert console == []
    check_screenshot(png)


def test_a_run_that_stays_nan_lists_the_first_findings_and_counts_the_others(tmp_path):
    """From call 1000 on every call has a NaN, in and out: 8000 findings, of which the page lists 100 (each first
    NaN/Inf of a call name and argument among them) with their records, and counts the rest."""
    log = tmp_path / "nan.log"
    synthetic_log(log, 5000, 1, nan_from=1000)
    page = tmp_path / "nan.html"
    p = flashlog(["report", log, "-o", page])
    assert p.returncode == 0 and p.stderr.startswith("flashlog report: 5000 calls and 8000 findings from 1 logs"), p.stderr
    dom, points, marks = check_page(page, tmp_path)
    assert len(re.findall(r'<details class="finding nonfinite"', dom)) == 100
    assert f"7900 more NaN/Inf findings not listed (the first of each call name and argument is): flashlog summary {log}" in dom
    for name, arg in (("gemm.bmm_fp8", "arg[0]"), ("gemm.bmm_fp8", r"arg[0] (after)"), ("norm.rmsnorm", "arg[0]")):
        assert re.search(rf"<summary>.*NaN/Inf in (in|out)put {re.escape(arg)} of {re.escape(name)}</summary>", dom)
    # rmsnorm arg[0]: 2667 NaN points of 3333 (more than half of 2000): the first NaN point of each of 666 buckets
    # of 5 calls is kept, 533 of them (from call 1000 on); the timeline marks every bucket with a finding, listed
    # or not: those from call 1000 on, more than 300 of its 400.
    shown = re.search(r'<span id="shown">(\d+) of 3333 points drawn</span>', dom)
    assert shown and int(shown.group(1)) <= 2000, shown
    assert 530 + 300 <= marks <= 2000 + 400, marks


def test_graph_replays_and_cuda_errors(tmp_path):
    """Graph replay records (the fake driver's graph_replay with a NaN written before the second of three
    replays) are calls of their name in the statistics and the counts; a CUDA error line is a finding whose
    record holds that line."""
    log = tmp_path / "g.log"
    p = flashlog(["-l5", "--graph-stats", "-o", log, "--", require(FIXDIR / "cuda/graph_replay"), "--extra",
                  "--nan-at", 2], env={"FLASHINFER_MODULE": require(MODULE_DIR / "cudaops/cudaops.so")})
    assert p.returncode == 0, p.stderr
    assert log.read_text().count("FlashInfer Graph Replay: cudaops.scale2 (id=1, replay ") == 3
    errs = tmp_path / "errors.log"
    synthetic_log(errs, 10, 0)
    text = errs.read_text().split("\n")
    at = [i for i, line in enumerate(text) if line == "Output value:"][4] + 2
    text.insert(at, "[CUDA error after this call: CUDA_ERROR_ILLEGAL_ADDRESS (700)]")
    errs.write_text("\n".join(text))
    page = tmp_path / "g.html"
    p = flashlog(["report", log, errs, "-o", page])
    assert p.returncode == 0, p.stderr
    html = page.read_text()
    # scale2: 2 calls (capture and eager), 3 replays, one with a NaN (the second replay).
    assert '<tr><td>5</td><td>3</td><td>0</td><td>1</td><td class="name">cudaops.scale2</td></tr>' in html
    assert re.search(r"<summary><span class=\"place\">\S*g\.log:\d+</span> <span class=\"t\">[^<]*</span> "
                     r"NaN/Inf in input arg\[1\] of cudaops\.scale2 \(graph replay\)</summary><pre class=\"record\">"
                     rf"{EQ}\n\[[^]]*\] FlashInfer Graph Replay: cudaops\.scale2 \(id=1, replay 2\)\n", html), html[-6000:]
    cuda = re.search(rf"<summary><span class=\"place\">{re.escape(str(errs))}:{at + 1}</span> <span class=\"t\">[^<]*</span> "
                     r"CUDA error after norm\.rmsnorm: CUDA_ERROR_ILLEGAL_ADDRESS \(700\)</summary>"
                     r"<pre class=\"record\">(.*?)</pre>", html, re.S)
    assert cuda and "FlashInfer API Call: norm.rmsnorm" in cuda.group(1) and cuda.group(1).count("Call:") == 1
    assert "[CUDA error after this call: CUDA_ERROR_ILLEGAL_ADDRESS (700)]" in cuda.group(1)
    dom, points, marks = check_page(page, tmp_path)
    assert 'data-marks="0"' not in dom


def test_rings_read_as_the_logs_they_hold(tmp_path):
    """`report` and `export --trace` read a flight-recorder ring as `flashlog show` prints it: the same page and the
    same trace as for that text written to a file, places (FILE:LINE) included."""
    ring = tmp_path / "r.ring"
    assert flashlog(["-l5", "--ring", 1, "-o", ring, "--", require(DRIVER), "threads-nan", MODULE_DIR, 2, 30, 0,
                     7]).returncode == 0
    shown = tmp_path / "shown"
    shown.write_text(flashlog(["show", ring]).stdout)
    outputs = {}
    for name, log in (("ring", ring), ("shown", shown)):
        p = flashlog(["report", log, "-o", tmp_path / f"{name}.html"])
        assert p.returncode == 0 and "1 logs written" in p.stderr, p.stderr
        q = flashlog(["export", "--trace", log, "-o", tmp_path / f"{name}.json"])
        assert q.returncode == 0 and "60 calls from 1 logs" in q.stderr, q.stderr
        outputs[name] = [(tmp_path / f"{name}.{ext}").read_text().replace(str(log), "LOG") for ext in ("html", "json")]
    assert outputs["ring"] == outputs["shown"]
    assert "NaN/Inf in " in outputs["ring"][0]


def test_refusals(tmp_path):
    assert flashlog(["report", "-o", "x.html"]).returncode == 2
    p = flashlog(["report", "/nonexistent/a.log", "-o", "/tmp/never.html"])
    assert p.returncode == 2 and p.stderr.startswith("flashlog report: /nonexistent/a.log: ")
    assert flashlog(["report", "--bogus"]).returncode == 2
    h = flashlog(["report", "--help"])
    assert h.returncode == 0 and h.stdout.startswith("usage: flashlog report LOG... -o report.html\n")
