"""The host never notices the shim, CUDA side (issue 8, items 1-3): the shim exports `dlsym` and nothing else;
PLT calls into a libcuda are caught by rewriting GOT slots (never a slot that resolves elsewhere, never a data
symbol, never libcuda's own, nothing at level 0); no pointer into the shim is ever taken as a real function;
lookups made by a libcuda pass through; only functions get a TVM-FFI trampoline.

Each host runs without the shim and with it at levels 0 and 3 (5 where statistics matter), under a timeout,
and must show the same exit code and stdout (the fixtures print `errno=` last). Fixtures: tests/fixtures/host/."""

import re
import subprocess

import pytest

from conftest import FIXDIR, LIB, MODULE_DIR, require, run, split_records
from test_launch import expected_launches, logged_launches

HOST = FIXDIR / "host"
CUDA = FIXDIR / "cuda"
CUDAOPS = MODULE_DIR / "cudaops/cudaops.so"
CUDAOPS_NOW = MODULE_DIR / "cudaops_now/cudaops_now.so"
DATAMOD = MODULE_DIR / "dataexport/dataexport.so"
TIMEOUT = 60


def hexless(text):
    return re.sub(r"0x[0-9a-f]+", "0x?", text)


def compare(cmd, level, env=None, dest=None, plain_env=None, strip=hexless):
    """Runs `cmd` without the shim and with it at `level`; asserts the same exit code and stdout; returns both."""
    plain = run(cmd, preload=False, env=plain_env if plain_env is not None else env, timeout=TIMEOUT)
    shimmed = run(cmd, level=level, dest=dest, env=env, timeout=TIMEOUT)
    assert shimmed.returncode == plain.returncode, (plain.stdout, shimmed.stdout, shimmed.stderr)
    assert strip(shimmed.stdout) == strip(plain.stdout), shimmed.stderr
    return plain, shimmed


def test_the_only_export_is_dlsym():
    out = subprocess.run(["nm", "-D", "--defined-only", str(LIB)], capture_output=True, text=True, check=True)
    names = {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}
    assert names == {"dlsym"}, names


@pytest.mark.parametrize("level", [0, 3, 5])
def test_cuew_data_objects_stay_the_hosts(tmp_path, level):
    """A library whose data objects are named cuLaunchKernel etc. fills and calls them as without the shim."""
    plain, _ = compare([require(HOST / "cuew_main")], level, dest=tmp_path / "log")
    assert "object cuLaunchKernel in libcuew.so" in plain.stdout
    assert "cuLaunchKernel=set" in plain.stdout and "cuInit(0)=0" in plain.stdout


@pytest.mark.parametrize("level", [0, 3])
def test_a_librarys_own_cuda_names_stay_its_own(tmp_path, level):
    """A library that defines and calls cuLaunchKernel / cudaLaunchKernel gets its own answers, even with the
    driver loaded (the GOT rewrite sees slots that resolve into libowncuda and leaves them)."""
    plain, _ = compare([require(HOST / "owncuda_main")], level, dest=tmp_path / "log")
    assert "own_call_all=424344" in plain.stdout
    assert "cuLaunchKernel=42 cudaLaunchKernel=43" in plain.stdout


TRACKED = {"cuStreamBeginCapture_v2", "cuLaunchKernel", "cuGetProcAddress_v2"}


@pytest.mark.parametrize("binding", ["lazy", "now"])
def test_got_slots_rewritten_only_when_logging(tmp_path, binding):
    """At level 0 every GOT slot of the program holds what it holds without the shim; at level 3 exactly the
    slots of tracked driver names point into the shim (lazy ones too, before their first call), the others
    and every return code are unchanged."""
    exe = require(HOST / f"got_probe_{binding}")
    compare([exe], 0, strip=lambda t: t)
    plain = run([exe], preload=False, timeout=TIMEOUT)
    shimmed = run([exe], level=3, dest=tmp_path / "log", timeout=TIMEOUT)
    assert shimmed.returncode == plain.returncode == 0
    slots = 0
    for want, got in zip(plain.stdout.splitlines(), shimmed.stdout.splitlines(), strict=True):
        m = re.match(r"slot \w+ (\w+) (JUMP_SLOT|GLOB_DAT) -> (\S+)$", want)
        if m and m.group(1) in TRACKED:
            slots += 1
            assert got == want.rsplit(" -> ", 1)[0] + " -> libflashlog.so"
        else:
            assert got == want
    assert slots == 6


def summary(stdout):
    line = [l for l in stdout.splitlines() if l.startswith("summary:")][-1]
    return dict(kv.split("=", 1) for kv in line.split()[1:])


def readelf_relocs(path):
    return subprocess.run(["readelf", "-rW", str(path)], capture_output=True, text=True, check=True).stdout


def driver_env(dirname):
    return {"LD_LIBRARY_PATH": FIXDIR / dirname, "FAKECUDA_PROCADDR_INTERNAL": "0", "FLASHINFER_MODULE": CUDAOPS}


def check_driver_program(tmp_path, dirname, program, level):
    env = driver_env(dirname)
    log = tmp_path / "log"
    plain, shimmed = compare([require(CUDA / program)], level, env=env, dest=log)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    if "summary:" in plain.stdout:
        s = summary(shimmed.stdout)
        assert (s["invalidated"], s["unsafe_calls"], s["failures"]) == ("0", "0", "0")
    text = log.read_text() if log.exists() else ""
    if level == 0:
        assert text == "" and "flashlog" not in shimmed.stderr
    elif program == "launch_driver":
        # Every launch logged exactly once (PLT, dlsym, cuGetProcAddress and runtime routes alike).
        normalise = lambda n: n.replace("(unsigned int)8", "8u")
        got = [(normalise(g[0]),) + g[1:] for g in logged_launches(text)]
        assert got == [(normalise(w[0]),) + w[1:] for w in expected_launches(plain.stdout)]
    else:
        # Every driver launch (the program's, through its route, and the module's, through its own PLT) is
        # logged exactly once: the fake driver counts what it accepted.
        assert text.count("FlashInfer Kernel Launch: ") == int(summary(plain.stdout)["launches"]) > 0
        calls = [r for r in split_records(text) if "FlashInfer API Call: cudaops.scale2" in r and r.startswith("=")]
        assert calls, text[:2000]
        if level >= 5 and program != "capture_runtime":
            # Captures were seen (through the GOT, dlsym or cuGetProcAddress): statistics skipped inside.
            assert any("[statistics skipped: CUDA graph capture in progress]" in r for r in calls)


DRIVER_PROGRAMS = ["capture_plt", "capture_plt_now", "capture_dlsym", "capture_procaddr", "capture_runtime",
                   "launch_driver"]


@pytest.mark.parametrize("level", [0, 1, 3])
@pytest.mark.parametrize("program", ["capture_plt", "capture_plt_now", "capture_noplt", "capture_dlsym",
                                     "capture_runtime"])
@pytest.mark.parametrize("module", [CUDAOPS, CUDAOPS_NOW], ids=["module_lazy", "module_now"])
def test_each_launch_logged_once_with_the_usual_driver(tmp_path, module, program, level):
    """With the usual (-Bsymbolic) fake driver: the module's launches through its own PLT are seen through its
    rewritten GOT (done when its first export is looked up; read-only under -z now), the program's through its
    route; none twice."""
    env = {"FLASHINFER_MODULE": require(module)}
    log = tmp_path / "log"
    plain, _ = compare([require(CUDA / program)], level, env=env, dest=log)
    text = log.read_text() if log.exists() else ""
    launches = int(summary(plain.stdout)["launches"])
    assert text.count("FlashInfer Kernel Launch: ") == (launches if level else 0) and launches > 0


def test_ordinary_driver_fixture_has_its_shape():
    """The ordinary build really takes its own function addresses by symbol lookup (its cuGetProcAddress table
    is filled by R_X86_64_64 relocations, which bound to the shim's export when it had one) and calls
    cuGetProcAddress_v2 through its PLT (otherwise the next test proves nothing)."""
    relocs = readelf_relocs(require(FIXDIR / "cuda-plain/libcuda.so.1"))
    assert re.search(r"R_X86_64_JUMP_SLOT\s+\S+\s+cuGetProcAddress_v2 ", relocs)
    assert re.search(r"R_X86_64_(64|GLOB_DAT)\s+\S+\s+cuLaunchKernel \+", relocs)


@pytest.mark.parametrize("level", [0, 3, 5])
@pytest.mark.parametrize("program", DRIVER_PROGRAMS)
def test_driver_built_without_bsymbolic(tmp_path, program, level):
    """A libcuda.so.1 whose cuGetProcAddress_v2 hands back its exported addresses (through its GOT) and whose
    legacy cuGetProcAddress calls _v2 through its PLT: no recursion, same results, captures and launches seen."""
    check_driver_program(tmp_path, "cuda-plain", program, level)


@pytest.mark.parametrize("level", [0, 3, 5])
@pytest.mark.parametrize("program", DRIVER_PROGRAMS)
@pytest.mark.parametrize("vendor", ["cuda-fwd", "cuda-fwd-other"])
def test_forwarding_driver_in_front_of_the_vendors(tmp_path, vendor, program, level):
    """A forwarding libcuda.so.1 that dlopens the vendor's driver (libcuda.so.550.54.15, or a file not named
    libcuda.so*) and forwards through dlsym: its lookups pass through unwrapped, so no loop forms; each launch
    is logged once."""
    check_driver_program(tmp_path, vendor, program, level)


def spy_lines(stderr):
    return sorted(l for l in stderr.splitlines() if l.startswith("spy: "))


@pytest.mark.parametrize("order", ["before", "after"])
def test_second_dlsym_interposer_sees_every_lookup(tmp_path, order):
    spy = require(HOST / "libdlsym_spy.so")
    exe = require(CUDA / "capture_dlsym")
    env = {"FLASHINFER_MODULE": CUDAOPS}
    plain = run([exe], preload=False, env={**env, "LD_PRELOAD": spy}, timeout=TIMEOUT)
    assert plain.returncode == 0
    preload = f"{spy} {LIB}" if order == "before" else f"{LIB} {spy}"
    for level in (0, 3):
        log = tmp_path / f"log{level}"
        shimmed = run([exe], preload=False, level=level, dest=log, env={**env, "LD_PRELOAD": preload},
                      timeout=TIMEOUT)
        assert shimmed.returncode == 0, shimmed.stderr
        assert hexless(shimmed.stdout) == hexless(plain.stdout)
        seen = spy_lines(shimmed.stderr)
        missing = [l for l in set(spy_lines(plain.stderr)) if seen.count(l) < spy_lines(plain.stderr).count(l)]
        assert not missing
        if level == 3:
            assert "FlashInfer API Call: cudaops.scale2" in log.read_text()


@pytest.mark.parametrize("level", [0, 3])
def test_tvm_ffi_data_object_comes_back_unchanged(tmp_path, level):
    log = tmp_path / "log"
    plain, _ = compare([require(HOST / "data_export_main"), require(DATAMOD)], level, dest=log)
    assert "table=11,22,33,44 at dataexport.so" in plain.stdout
    assert "counter=6 at dataexport.so" in plain.stdout
    text = log.read_text() if log.exists() else ""
    if level == 3:
        # The function beside the data objects is still wrapped; the data objects are never "called".
        assert "FlashInfer API Call: dataexport.ping" in text
        assert "table" not in text and "counter" not in text
    else:
        assert text == ""


@pytest.mark.parametrize("level", [0, 3])
def test_slots_rewritten_while_threads_call_and_modules_come_and_go(tmp_path, level):
    """4 threads call the driver through the PLT while the main thread loads, looks up and unloads a -lcuda
    module 200 times: every call gets the driver's answer, nothing crashes or hangs (three runs)."""
    for _ in range(3):
        plain, _ = compare([require(HOST / "got_stress"), require(CUDAOPS_NOW)], level, dest=tmp_path / "log")
        assert "mismatches=0 loads=200" in plain.stdout
