"""The aarch64 library under qemu-user against the x86-64 one, on the same fixture programs: same records,
same host behaviour (exit status and output), by every route the x86-64 tests use."""

import re

import pytest

from conftest import masked, run_on

TVM_MODES = ["kinds", "errors", "plan", "bad-tensors"]


def both(args, tmp_path, **kw):
    """Runs `args` natively and under qemu, each with its own log; returns (native, aarch64) as
    (CompletedProcess, masked log text)."""
    out = []
    for arch in ("native", "aarch64"):
        log = tmp_path / f"{arch}.log"
        proc = run_on(arch, args, dest=log, **kw)
        out.append((proc, masked(log.read_text()) if log.exists() else ""))
    return out


@pytest.mark.parametrize("level", [1, 3, 5])
@pytest.mark.parametrize("mode", TVM_MODES)
def test_module_records_match_line_for_line(tmp_path, mode, level):
    (native, native_log), (arm, arm_log) = both(["tvm_driver", mode, "{modules}"], tmp_path, level=level)
    assert arm.returncode == native.returncode, arm.stderr
    assert masked(arm.stdout) == masked(native.stdout)
    assert native_log.count("FlashInfer API Call:") > 0
    assert arm_log.splitlines() == native_log.splitlines()


@pytest.mark.parametrize("level", [0, 3])
def test_interposers_before_and_after_the_shim(tmp_path, level):
    plain = run_on("aarch64", ["call_foo"], level=0, preload_after=["libother_interposer.so"])
    for where in ("preload_after", "preload_before"):
        proc = run_on("aarch64", ["call_foo"], level=level, dest=tmp_path / "x.log",
                      **{where: ["libother_interposer.so"]}, timeout=60)
        assert (proc.returncode, proc.stdout) == (plain.returncode, plain.stdout), proc.stderr


def test_library_calling_dlsym_before_the_constructor(tmp_path):
    (native, native_log), (arm, arm_log) = both(["early_main"], tmp_path, level=1)
    assert arm.returncode == native.returncode == 0, arm.stderr
    assert arm_log.splitlines() == native_log.splitlines()


def test_threads_write_whole_records(tmp_path):
    threads, calls = 4, 300
    (native, native_log), (arm, arm_log) = both(["tvm_driver", "threads", "{modules}", str(threads), str(calls)],
                                                tmp_path, level=3)
    assert arm.returncode == native.returncode == 0, arm.stderr
    for log in (native_log, arm_log):
        assert log.count("FlashInfer API Call:") == threads * calls
        assert log.count("Output value:") == threads * calls
    # Which calls carry a correlation line depends on when the second thread first logged: compare the rest.
    def uncorrelated(log):
        return sorted(line for line in log.splitlines() if line != "[call norm.rmsnorm #N thread T]")

    assert uncorrelated(arm_log) == uncorrelated(native_log)


def test_fork_child_writes_its_own_file(tmp_path):
    for arch in ("native", "aarch64"):
        folder = tmp_path / arch
        folder.mkdir()
        proc = run_on(arch, ["tvm_driver", "fork", "{modules}"], level=1, dest=folder / "p_%i.log")
        assert proc.returncode == 0, proc.stderr
        logs = sorted(p.read_text() for p in folder.iterdir())
        assert len(logs) == 2, [p.name for p in folder.iterdir()]
        pids = {re.search(r"Process: (\d+)", text).group(1) for text in logs}
        assert len(pids) == 2


CUDA_PROGRAMS = ["capture_plt", "capture_dlsym", "capture_procaddr", "capture_other_thread", "capture_runtime"]


@pytest.mark.parametrize("program", CUDA_PROGRAMS)
def test_captures_by_every_route_are_never_disturbed(tmp_path, program):
    env = {"FLASHINFER_MODULE": "{modules}/cudaops/cudaops.so"}
    (native, native_log), (arm, arm_log) = both([f"cuda/{program}"], tmp_path, level=5, env=env)
    assert arm.returncode == native.returncode == 0, arm.stdout + arm.stderr
    summary = arm.stdout.strip().splitlines()[-1]
    assert "failures=0 invalidated=0 unsafe_calls=0" in summary, summary
    assert masked(arm.stdout) == masked(native.stdout)
    assert arm_log.splitlines() == native_log.splitlines()


def test_kernel_launches_by_every_route(tmp_path):
    (native, native_log), (arm, arm_log) = both(["cuda/launch_driver"], tmp_path, level=3)
    assert arm.returncode == native.returncode == 0, arm.stdout + arm.stderr
    assert arm_log.count("FlashInfer Kernel Launch:") == native_log.count("FlashInfer Kernel Launch:") > 0
    assert arm_log.splitlines() == native_log.splitlines()


def test_level0_hands_out_the_real_functions(tmp_path):
    plain = run_on("aarch64", ["tvm_driver", "pointer-check", "{modules}"], level=0)
    assert "same" in plain.stdout, plain.stdout + plain.stderr
    wrapped = run_on("aarch64", ["tvm_driver", "pointer-check", "{modules}"], level=1, dest=tmp_path / "x.log")
    assert "different" in wrapped.stdout


LOADER_SCRIPT = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "python/loader_calls.py")


def test_real_tvm_ffi_loader_from_arm64_python(tmp_path):
    """The real apache-tvm-ffi loader (aarch64 wheel) in an arm64 CPython: the host's output is the same with
    and without the shim, and the records match the x86-64 run of the same script."""
    from conftest import run_python

    plain = run_python("aarch64", [LOADER_SCRIPT, "{modules}"], preload=False)
    assert plain.returncode == 0, plain.stderr
    logs = {}
    for level in (3, 5):
        for arch in ("native", "aarch64"):
            log = tmp_path / f"{arch}{level}.log"
            proc = run_python(arch, [LOADER_SCRIPT, "{modules}"], level=level, dest=log)
            assert proc.returncode == 0, proc.stderr
            assert masked(proc.stdout) == masked(plain.stdout)
            logs[arch] = masked(log.read_text())
        assert logs["aarch64"].count("FlashInfer API Call:") > 0
        assert logs["aarch64"].splitlines() == logs["native"].splitlines()
