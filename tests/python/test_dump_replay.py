"""Level 10 (issue 9): every tensor of a call dumped before and after it, and `flashlog replay` / `python -m
flashlog replay`. The fixture modules are called by real hosts (Python through the real tvm_ffi loader, the C
driver, the fake-CUDA capture programs); every dumped file is read back with the real `safetensors` package and
compared with the host's own data; the host's exit code and output are those of the same run without the shim."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors

from conftest import FIXDIR, MODULE_DIR, REPO, require, run

SCRIPT = REPO / "tests/python/dump_calls.py"
DRIVER = FIXDIR / "tvm_driver"
LAUNCHER = LIB_DIR = None
PYPATH = {"PYTHONPATH": str(REPO / "python")}
CAPTURE = "CUDA graph capture in progress"


def host(tmp_path, mode="main", *, dump=None, level=10, extra=None, module_dir=MODULE_DIR, preload=True):
    env = dict(PYPATH)
    if dump is not None:
        env["FLASHLOG_DUMP_DIR"] = dump
    env.update(extra or {})
    return run([sys.executable, SCRIPT, module_dir, tmp_path / f"expected_{mode}.npz", mode], level=level if preload
               else None, dest=tmp_path / "log.txt", env=env, preload=preload)


def replay(path, *args):
    """`flashlog replay` through the launcher (which execs python -m flashlog with this interpreter)."""
    launcher = require(REPO / "target/release/flashlog")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["FLASHLOG_PYTHON"] = sys.executable
    return subprocess.run([str(launcher), "replay", str(path), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def folders(dump):
    """The call folders in the order the calls began (session.jsonl), then by name."""
    order = {}
    session = Path(dump) / "session.jsonl"
    if session.exists():
        for line in session.read_text().splitlines():
            order.setdefault(Path(json.loads(line)["dump_dir"]).name, len(order))
    return sorted((p for p in Path(dump).iterdir() if p.is_dir()), key=lambda p: (order.get(p.name, 1 << 30), p.name))


def meta(folder):
    return [json.loads(l) for l in (folder / "metadata.jsonl").read_text().splitlines()]


def st(path):
    """{key: (dtype, shape, bytes)} read by the real safetensors package (its Rust parser and checks)."""
    return {k: (v["dtype"], v["shape"], bytes(v["data"])) for k, v in safetensors.deserialize(path.read_bytes())}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rec")
    plain = host(tmp, preload=False)
    assert plain.returncode == 0, plain.stderr
    shutil.move(tmp / "expected_main.npz", tmp / "plain.npz")
    dump = tmp / "dumps"
    shimmed = host(tmp, dump=dump)
    assert shimmed.returncode == 0, shimmed.stderr
    assert shimmed.stdout == plain.stdout and shimmed.stderr == plain.stderr
    crash_plain = host(tmp, "crash", preload=False)
    crash = host(tmp, "crash", dump=dump)
    assert crash.returncode == crash_plain.returncode == -6
    assert crash.stdout == crash_plain.stdout
    return tmp, dump, dict(np.load(tmp / "expected_main.npz"))


def test_folder_layout_and_metadata(recorded):
    _, dump, _ = recorded
    names = [f.name for f in folders(dump)]
    assert len(names) == 8
    for n in names:
        assert re.fullmatch(r"\d{8}_\d{6}_\d{3}_pid\d+_(norm|dumpops)\.\w+_call\d{4}", n), n
    assert sum("dumpops.negate_all_call0002" in n for n in names) == 1
    rms = next(f for f in folders(dump) if "norm.rmsnorm" in f.name)
    assert sorted(p.name for p in rms.iterdir()) == ["inputs.safetensors", "metadata.jsonl", "outputs.safetensors"]
    l1, l2 = meta(rms)
    assert l1["execution_status"] == "inputs_saved" and l2["execution_status"] == "completed"
    assert l1["logger"] == "flashlog" and l1["function_name"] == "norm.rmsnorm" and l1["export"] == "rmsnorm"
    assert l1["library"] == str(MODULE_DIR / "norm/norm.so") and l1["call_sequence"] == 1
    assert l1["arguments"][3] == {"kind": "float", "value": 1e-06} and l1["arguments"][4] is False
    a0 = l1["arguments"][0]
    assert (a0["kind"], a0["key"], a0["shape"], a0["stride"], a0["dtype"], a0["device"], a0["ffi_type"]) == (
        "tensor", "arg_0", [4, 128], [128, 1], "torch.float32", "cpu", "Tensor")
    assert l1["tensor_details"]["arg_1"]["device"] == "cpu" and l1["tensor_info"] == {
        "input_tensor_keys": ["arg_0", "arg_1", "arg_2"], "input_size_bytes": 4608}
    assert l2["tensor_info"]["output_tensor_keys"] == ["arg_0", "arg_1", "arg_2"] and l2["return_code"] == 0
    failed = meta(next(f for f in folders(dump) if "fail_checked" in f.name))[-1]
    assert (failed["execution_status"], failed["error_kind"]) == ("failed", "RuntimeError")
    assert failed["error_message"] == "Check failed: x.size(0) == 3 (4 vs. 3) : bad batch size"
    crashed = next(f for f in folders(dump) if "dumpops.scale_call0001" in f.name and meta(f)[0]["arguments"][2][
        "value"] < 0)
    assert [l["execution_status"] for l in meta(crashed)] == ["inputs_saved"]
    assert not (crashed / "outputs.safetensors").exists()
    arr = meta(next(f for f in folders(dump) if "pass_through_call0001" in f.name))[-1]
    assert arr["result"]["kind"] == "array" and arr["result"]["items"][:3] == [
        {"kind": "int", "value": 1}, {"kind": "float", "value": 2.5}, {"kind": "str", "value": "s"}]
    # session.jsonl: every line of every metadata.jsonl, whole.
    session = (dump / "session.jsonl").read_text().splitlines()
    assert len(session) == sum(len(meta(f)) for f in folders(dump))
    assert all(json.loads(l)["logger"] == "flashlog" for l in session)


def test_every_file_holds_the_hosts_data(recorded):
    _, dump, expected = recorded
    calls = [f for f in folders(dump) if "pid" in f.name and meta(f)[0]["arguments"] and not (
        "scale" in f.name and meta(f)[0]["arguments"][2]["value"] < 0)]
    assert len(calls) == 7
    for index, f in enumerate(calls):
        inputs, outputs = st(f / "inputs.safetensors"), st(f / "outputs.safetensors")
        keys = sorted(k[len(f"c{index}_in_"):] for k in expected if k.startswith(f"c{index}_in_"))
        assert sorted(inputs) == keys, f.name
        for k in keys:
            assert inputs[k][2] == expected[f"c{index}_in_{k}"].tobytes(), (f.name, k)
            assert outputs[k][2] == expected[f"c{index}_out_{k}"].tobytes(), (f.name, k)
        if f"c{index}_out_result" in expected:
            assert outputs["result"][2] == expected[f"c{index}_out_result"].tobytes()
    # Shapes and dtypes: transposed, strided, offset, 0-d, empty, in arrays, every dtype.
    scale = st(calls[1] / "inputs.safetensors")
    assert scale["arg_0"][:2] == ("F32", [4, 4]) and scale["arg_1"][:2] == ("F32", [4, 4])
    neg = st(calls[4] / "inputs.safetensors")
    assert neg["arg_1"][:2] == ("F32", []) and neg["arg_2"][:2] == ("F32", [0, 3]) and neg["arg_0__0"][1] == [128]
    assert meta(calls[4])[0]["arguments"][3]["byte_offset"] == 12
    kinds = {k: v[0] for k, v in st(calls[5] / "inputs.safetensors").items()}
    assert [kinds[f"arg_{i}"] for i in range(24)] == [
        "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "F16", "F32", "F64", "BF16", "BOOL", "U8", "U8", "U8",
        "F8_E4M3", "U8", "F8_E5M2", "U8", "U8", "U8", "U8", "U8"]
    details = meta(calls[5])[0]["tensor_details"]
    assert details["arg_20"]["dtype"] == "torch.float8_e8m0fnu" and details["arg_23"]["dtype"] == \
        "torch.float4_e2m1fn_x2"
    # numpy and the Python API of safetensors give the same arrays back.
    from safetensors.numpy import load_file

    rms = load_file(calls[0] / "outputs.safetensors")
    assert rms["arg_1"].shape == (4, 128) and rms["arg_1"][1, 0] == np.float32(1.28)


def test_replay_unchanged_module_passes(recorded):
    _, dump, _ = recorded
    r = replay(dump)
    assert r.returncode == 0, r.stdout + r.stderr
    # One LOAD line per module file, before its first call: the recorded file, unchanged.
    loads = [l for l in r.stderr.splitlines() if l.startswith("LOAD ")]
    assert len(loads) == 2
    for module in [MODULE_DIR / "norm/norm.so", MODULE_DIR / "dumpops/dumpops.so"]:
        size = module.stat().st_size
        assert any(l.startswith(f"LOAD {module} (the recorded file: {size} bytes, modified ") for l in loads), loads
    lines = r.stdout.splitlines()
    assert len(lines) == 9 and lines[-1] == "replayed 8 calls: 8 passed, 0 failed, 0 could not be replayed"
    by_name = {l.split()[1] + (":crash" if "reproduced" in l else ""): l for l in lines[:-1]}
    assert by_name["norm.rmsnorm"].endswith(": identical")
    assert by_name["dumpops.fail_checked"].endswith(
        ": same error: RuntimeError: Check failed: x.size(0) == 3 (4 vs. 3) : bad batch size")
    assert by_name["dumpops.scale:crash"].endswith(": reproduced: SIGABRT")
    assert all(l.startswith("PASS ") for l in lines[:-1])
    # python -m flashlog replay of one call folder, and --filter.
    one = next(f for f in folders(dump) if "rmsnorm" in f.name)
    r = subprocess.run([sys.executable, "-m", "flashlog", "replay", str(one)], capture_output=True, text=True,
                       env={**os.environ, **PYPATH}, timeout=120)
    assert r.returncode == 0 and r.stdout.splitlines()[-1].startswith("replayed 1 call: 1 passed")
    r = replay(dump, "--filter", "pass_*", "--device", "cpu")
    assert r.returncode == 0 and r.stdout.splitlines()[-1].startswith("replayed 2 calls: 2 passed")


def test_replay_changed_module_reports_the_mismatch(tmp_path):
    mod = tmp_path / "flashinfer/dumpops/dumpops.so"
    mod.parent.mkdir(parents=True)
    shutil.copy(require(MODULE_DIR / "dumpops/dumpops.so"), mod)
    code = ("import sys, numpy as np, tvm_ffi\nm = tvm_ffi.load_module(sys.argv[1])\n"
            "x = np.arange(6, dtype=np.float32).reshape(2, 3); o = np.zeros_like(x)\n"
            "m.scale(tvm_ffi.from_dlpack(o), tvm_ffi.from_dlpack(x), 0.5)\nprint(o.sum())\n")
    dump = tmp_path / "d"
    p = run([sys.executable, "-c", code, mod], level=10, dest=tmp_path / "l", env={"FLASHLOG_DUMP_DIR": dump})
    assert p.returncode == 0 and p.stdout == "7.5\n"
    assert replay(dump).returncode == 0
    shutil.copy(require(FIXDIR / "variant/dumpops/dumpops.so"), mod)
    # Another file under the recorded name is refused (one line), unless --library-root asks for it.
    r = replay(dump)
    assert r.returncode == 1
    assert re.fullmatch(rf"ERROR dumpops\.scale \S+: {mod} is not the recorded file \(\d+ bytes instead of \d+, "
                        r"modified [^)]+\): --library-root DIR replays with the module found in DIR\n"
                        r"replayed 1 call: 0 passed, 0 failed, 1 could not be replayed\n", r.stdout), r.stdout
    r = replay(dump, "--library-root", mod.parent)
    assert r.returncode == 1
    assert r.stderr.startswith(f"LOAD {mod} (from --library-root; recorded {mod}: differs: "), r.stderr
    assert re.search(r"^FAIL dumpops\.scale \S+: mismatch: arg_0: 6 of 6 elements differ \(largest difference 1\)$",
                     r.stdout, re.M), r.stdout
    assert r.stdout.splitlines()[-1] == "replayed 1 call: 0 passed, 1 failed, 0 could not be replayed"
    # Within --atol the same call is close, with its largest difference.
    r = replay(dump, "--atol", "1.5", "--library-root", mod.parent)
    assert r.returncode == 0 and "close (largest difference 1)" in r.stdout


def test_bad_dump_folders_are_named_and_skipped(recorded, tmp_path):
    _, dump, _ = recorded
    bad = tmp_path / "bad"
    shutil.copytree(dump, bad)
    calls = folders(bad)
    rms = next(f for f in calls if "rmsnorm" in f.name)
    (rms / "outputs.safetensors").unlink()
    scale = next(f for f in calls if "dumpops.scale_call0001" in f.name and len(meta(f)) == 2)
    data = (scale / "inputs.safetensors").read_bytes()
    (scale / "inputs.safetensors").write_bytes(data[:-10])
    pt = next(f for f in calls if "pass_through_call0001" in f.name)
    data = bytearray((pt / "inputs.safetensors").read_bytes())
    data[8] = ord("!")
    (pt / "inputs.safetensors").write_bytes(bytes(data))
    fc = next(f for f in calls if "fail_checked" in f.name)
    (fc / "metadata.jsonl").write_text((fc / "metadata.jsonl").read_text()[:-30] + "\n")
    r = replay(bad)
    lines = r.stdout.splitlines()
    assert r.returncode == 1
    errors = [l for l in lines if l.startswith("ERROR ")]
    assert len(errors) == 4, r.stdout
    assert any(rms.name in l and "outputs.safetensors is missing" in l for l in errors)
    assert any(scale.name in l and "inputs.safetensors is truncated" in l for l in errors)
    assert any(pt.name in l and "inputs.safetensors has a corrupt header" in l for l in errors)
    assert any(fc.name in l and "metadata.jsonl line 2 is not valid JSON" in l for l in errors)
    assert lines[-1] == "replayed 8 calls: 4 passed, 0 failed, 4 could not be replayed"


def driver(args, tmp_path, dump, level=10, extra=None, prefix=(), dest=None):
    env = {"FLASHLOG_DUMP_DIR": dump, **(extra or {})}
    plain = subprocess.run([*prefix, str(require(DRIVER)), *args], capture_output=True, text=True, timeout=120)
    shim = run([*prefix, DRIVER, *args], level=level, dest=dest or tmp_path / "l.txt", env=env)
    pids = lambda t: re.sub(r"(parent|child)=\d+", r"\1=N", t)
    assert (shim.returncode, pids(shim.stdout)) == (plain.returncode, pids(plain.stdout)), shim.stderr
    return shim


def test_dltensor_pointers_from_the_c_driver_and_16_threads(tmp_path):
    dump = tmp_path / "d"
    p = driver(["threads", MODULE_DIR, "16", "20"], tmp_path, dump)
    assert p.stderr == ""
    calls = folders(dump)
    assert len(calls) == 320
    session = (dump / "session.jsonl").read_text().split("\n")
    assert session[-1] == "" and len(session) == 641
    assert all(json.loads(l)["function_name"] == "norm.rmsnorm" for l in session[:-1])
    for f in calls[::37]:
        l1, l2 = meta(f)
        assert l1["arguments"][0]["ffi_type"] == "DLTensor*" and l2["execution_status"] == "completed"
        inputs = st(f / "inputs.safetensors")
        x = np.frombuffer(inputs["arg_1"][2], np.float32)
        assert inputs["arg_1"][1] == [2, 16] and x[1] - x[0] == 1.0
    assert replay(dump, "--filter", "rmsnorm").returncode == 0


def test_objects_of_every_kind_from_c_and_an_unreadable_device(tmp_path):
    dump = tmp_path / "d"
    driver(["kinds", MODULE_DIR], tmp_path, dump)
    big = next(f for f in folders(dump) if meta(f)[0]["arguments"].__len__() == 43)
    args = meta(big)[0]["arguments"]
    assert args[19]["device"] == "cuda:0" and args[19]["dumped"] is False
    assert args[19]["reason"] == "CUDA driver not loaded"
    assert args[32]["byte_offset"] == 16 and args[33]["shape"] == [] and args[34]["shape"] == [0]
    assert args[31]["stride"] == [1, 4] and args[35]["items"][2]["key"] == "arg_35__2"
    assert args[20] == {"kind": "str", "value": "it's a\nraw \u00e9 str\u0001"}
    assert args[37]["kind"] == "object" and args[37]["replayable"] is False
    assert sorted(st(big / "inputs.safetensors")) == ["arg_30", "arg_31", "arg_32", "arg_33", "arg_34", "arg_35__2"]


@pytest.mark.parametrize("template", ["shared", "per_pid_%i"])
def test_two_processes_and_a_forked_child_share_a_folder(tmp_path, template):
    dump = tmp_path / template
    for _ in range(2):
        driver(["fork", MODULE_DIR], tmp_path, dump)
    dirs = [dump] if "%i" not in template else sorted(tmp_path.glob("per_pid_*"))
    assert len(dirs) == (1 if "%i" not in template else 4)
    all_calls = [f for d in dirs for f in folders(d)]
    assert len(all_calls) == 8 and len({f.name for f in all_calls}) == 8
    pids = {meta(f)[0]["process_id"] for f in all_calls}
    assert len(pids) == 4
    lines = [l for d in dirs for l in (d / "session.jsonl").read_text().splitlines()]
    assert len(lines) == 16 and all(json.loads(l)["function_name"] == "testops.echo" for l in lines)


def test_limits_filters_and_one_stderr_line_each(tmp_path):
    dump = tmp_path / "count"
    p = driver(["threads", MODULE_DIR, "1", "5"], tmp_path, dump, extra={"FLASHINFER_DUMP_MAX_COUNT": "2"})
    assert len(folders(dump)) == 2
    assert p.stderr.count("\n") == 1 and "FLASHINFER_DUMP_MAX_COUNT=2 calls reached" in p.stderr
    # Size: each rmsnorm call has 2 x 3 tensors (128 + 128 + 64 bytes); 2 calls fit in 1300 bytes.
    dump = tmp_path / "size"
    gb = 1300 / (1 << 30)
    p = driver(["threads", MODULE_DIR, "1", "4"], tmp_path, dump, extra={"FLASHINFER_DUMP_MAX_SIZE_GB": repr(gb)})
    assert len(folders(dump)) == 2 and "FLASHINFER_DUMP_MAX_SIZE_GB" in p.stderr and p.stderr.count("\n") == 1
    # A refused large call does not stop later small ones that fit.
    code = ("import sys, numpy as np, tvm_ffi\nm = tvm_ffi.load_module(sys.argv[1])\nT = tvm_ffi.from_dlpack\n"
            "for n in (4, 100000, 4):\n  x = np.ones(n, np.float32); o = np.zeros_like(x); m.scale(T(o), T(x), 2.0)\n")
    dump = tmp_path / "mixed"
    p = run([sys.executable, "-c", code, MODULE_DIR / "dumpops/dumpops.so"], level=10, dest=tmp_path / "l",
            env={"FLASHLOG_DUMP_DIR": dump, "FLASHINFER_DUMP_MAX_SIZE_GB": repr(1e6 / (1 << 30))})
    assert p.returncode == 0 and p.stderr.count("\n") == 1
    assert [meta(f)[0]["arguments"][0]["shape"] for f in folders(dump)] == [[4], [4]]
    # Filters: only the included calls are dumped (and get level-3 records).
    dump = tmp_path / "filter"
    p = run([sys.executable, SCRIPT, MODULE_DIR, tmp_path / "e.npz", "main"], level=10, dest=tmp_path / "l",
            env={**PYPATH, "FLASHLOG_DUMP_DIR": dump, "FLASHINFER_DUMP_INCLUDE": "scale,pass_*",
                 "FLASHINFER_DUMP_EXCLUDE": "*pass_through"})
    assert p.returncode == 0
    assert [f.name.split("_", 4)[-1] for f in folders(dump)] == ["dumpops.scale_call0001"]


def test_unwritable_folder_and_full_disk(tmp_path):
    # A folder that cannot be made (a file in the way: permissions mean nothing to root).
    (tmp_path / "file").write_text("x")
    p = driver(["threads", MODULE_DIR, "2", "3"], tmp_path, tmp_path / "file/d")
    assert p.stderr.count("\n") == 1 and "level-10 dumps stopped: cannot create dump folder" in p.stderr
    assert "Not a directory" in p.stderr
    assert "FlashInfer API Call: norm.rmsnorm" in (tmp_path / "l.txt").read_text()
    # A file size limit (SIGXFSZ's default action kills): the C host must not die of the shim's writes.
    dump = tmp_path / "full"
    # (The records go to /dev/null: this checks the dump files, not the log file's own writes.)
    p = driver(["threads", MODULE_DIR, "4", "50"], tmp_path, dump, level=10, prefix=("prlimit", "--fsize=3000"),
               dest="/dev/null")
    assert p.returncode == 0
    stops = [l for l in p.stderr.splitlines() if l.startswith("flashlog: level-10 dumps stopped")]
    assert len(stops) == 1 and "File too large" in stops[0], p.stderr[-2000:]
    # Whatever was left is whole: every folder that has both lines replays.
    for f in folders(dump):
        for l in (f / "metadata.jsonl").read_text().splitlines() if (f / "metadata.jsonl").exists() else []:
            json.loads(l)
    assert not list(dump.glob("*/*.tmp"))


CUDA = FIXDIR / "cuda"


@pytest.mark.parametrize("program", ["capture_plt", "capture_dlsym", "capture_procaddr", "capture_other_thread",
                                     "capture_runtime"])
def test_device_tensors_and_captures(tmp_path, program):
    exe = require(CUDA / program)
    env = {"FLASHINFER_MODULE": require(MODULE_DIR / "cudaops/cudaops.so"), "FLASHLOG_DUMP_DIR": tmp_path / "d"}
    plain = run([exe], preload=False, env=env)
    shim = run([exe], level=10, dest=tmp_path / "l", env=env)
    strip = lambda t: re.sub(r"0x[0-9a-f]+", "0x?", t)
    assert shim.returncode == plain.returncode == 0 and strip(shim.stdout) == strip(plain.stdout)
    summary = dict(kv.split("=", 1) for kv in [l for l in shim.stdout.splitlines() if l.startswith("summary:")][-1]
                   .split()[1:])
    assert (summary["invalidated"], summary["unsafe_calls"], summary["failures"]) == ("0", "0", "0")
    calls = [f for f in folders(tmp_path / "d") if "cudaops.scale2" in f.name]
    eager = [f for f in calls if not meta(f)[0]["graph_capture"]]
    captured = [f for f in calls if meta(f)[0]["graph_capture"]]
    assert eager and captured
    for f in captured:
        l1, l2 = meta(f)
        assert all(a["dumped"] is False and a["reason"] == CAPTURE for a in l1["arguments"][:2])
        assert st(f / "inputs.safetensors") == {} and l2["tensor_info"]["output_tensor_keys"] == []
    for f in eager:
        l1, _ = meta(f)
        assert l1["arguments"][1]["device"] == "cuda:0"
        i, o = st(f / "inputs.safetensors"), st(f / "outputs.safetensors")
        x = np.frombuffer(i["arg_1"][2], np.float32)
        assert x.any() and np.array_equal(np.frombuffer(o["arg_0"][2], np.float32), 2 * x)
        assert o["arg_1"] == i["arg_1"]


UNMAPPED_HOST = r'''
import ctypes, mmap, sys
import numpy as np, tvm_ffi
from flashlog import replay as r
ops = tvm_ffi.load_module(sys.argv[1])
m = mmap.mmap(-1, 1 << 16)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
m.close()  # the pages are gone: the descriptor is valid, its data is not
def tensor(data, shape, strides):
    mt = r._DLManagedTensor()
    sh, st = (ctypes.c_int64 * 2)(*shape), (ctypes.c_int64 * 2)(*strides)
    t = mt.dl_tensor
    t.data, t.device, t.ndim, t.dtype = data, r._DLDevice(1, 0), 2, r._DLDataType(2, 32, 1)
    t.shape, t.strides = ctypes.cast(sh, ctypes.POINTER(ctypes.c_int64)), ctypes.cast(st, ctypes.POINTER(ctypes.c_int64))
    r._KEEP.extend([mt, sh, st])
    return tvm_ffi.from_dlpack(r._Exporter(mt, (1, 0)))
good = np.arange(8, dtype=np.float32)
print(ops.touch_all(tensor(addr, [64, 64], [64, 1]), tensor(addr, [8, 8], [1, 8]), tvm_ffi.from_dlpack(good)))
'''


def test_unreadable_host_memory_is_left_out(tmp_path):
    dump = tmp_path / "d"
    cmd = [sys.executable, "-c", UNMAPPED_HOST, MODULE_DIR / "testops/testops.so"]
    plain = run(cmd, preload=False, env=PYPATH)
    shim = run(cmd, level=10, dest=tmp_path / "l", env={**PYPATH, "FLASHLOG_DUMP_DIR": dump})
    assert (shim.returncode, shim.stdout, shim.stderr) == (plain.returncode, plain.stdout, plain.stderr) == (
        0, "None\n", "")
    (call,) = folders(dump)
    for line in meta(call):
        a = line["arguments"]
        assert [(x["dumped"], x.get("reason")) for x in a] == [(False, "host memory not readable")] * 2 + [(True, None)]
    assert list(st(call / "inputs.safetensors")) == ["arg_2"]
    assert st(call / "outputs.safetensors")["arg_2"][2] == np.arange(8, dtype=np.float32).tobytes()


FORK_WHILE_DUMPING = r'''
import os, sys, threading, time
import numpy as np, tvm_ffi
ops = tvm_ffi.load_module(sys.argv[1])
T = tvm_ffi.from_dlpack
stop = False
def worker():
    x = np.ones((64, 64), np.float32); o = np.zeros_like(x)
    while not stop:
        ops.scale(T(o), T(x), 2.0)
        time.sleep(0.001)
threads = [threading.Thread(target=worker) for _ in range(2)]
for t in threads: t.start()
statuses = []
for i in range(20):
    time.sleep(0.01)
    pid = os.fork()
    if pid == 0:
        x = np.ones(4, np.float32); o = np.zeros_like(x)
        ops.scale(T(o), T(x), 3.0)
        os._exit(0 if o[0] == 3.0 else 1)
    statuses.append(os.waitpid(pid, 0)[1])  # a hung child hangs the host: the test's timeout says so
stop = True
for t in threads: t.join()
print("children:", sorted(set(map(str, statuses))))
'''


@pytest.mark.parametrize("level", ["5", "10"])
def test_fork_while_other_threads_dump(tmp_path, level):
    dump = tmp_path / "d"
    cmd = [sys.executable, "-c", FORK_WHILE_DUMPING, MODULE_DIR / "dumpops/dumpops.so"]
    # (Level 5 too: its statistics share the staging buffer, whose lock a child must never wait for.)
    p = run(cmd, level=level, dest="/dev/null", env={"FLASHLOG_DUMP_DIR": dump, "FLASHINFER_DUMP_MAX_COUNT": 10**6},
            timeout=300)
    assert (p.returncode, p.stdout, p.stderr) == (0, "children: ['0']\n", "")
    if level == "5":
        return
    children = {meta(f)[0]["process_id"] for f in folders(dump) if meta(f)[0]["arguments"][0]["shape"] == [4]}
    assert len(children) == 20
    lines = (dump / "session.jsonl").read_text().split("\n")
    assert lines[-1] == "" and all(json.loads(l)["logger"] == "flashlog" for l in lines[:-1])


def test_error_kind_python_has_no_class_for(tmp_path):
    dump = tmp_path / "d"
    code = ("import sys, tvm_ffi\nm = tvm_ffi.load_module(sys.argv[1])\ntry:\n  m.fail_internal(1)\n"
            "except RuntimeError as e:\n  print(type(e).__name__, e)\n")
    p = run([sys.executable, "-c", code, MODULE_DIR / "dumpops/dumpops.so"], level=10, dest="/dev/null",
            env={"FLASHLOG_DUMP_DIR": dump})
    message = "Check failed: (input.device().device_type == kDLCUDA) is false: input must be a CUDA tensor"
    assert p.returncode == 0 and p.stdout == f"RuntimeError {message}\n"
    (call,) = folders(dump)
    assert (meta(call)[-1]["error_kind"], meta(call)[-1]["error_message"]) == ("InternalError", message)
    r = replay(dump)
    assert r.returncode == 0 and f": same error: InternalError: {message}" in r.stdout


def test_installed_launcher_finds_the_replay_package(recorded, tmp_path):
    _, dump, _ = recorded
    prefix = tmp_path / "prefix"
    subprocess.run(["make", "-s", "install", f"PREFIX={prefix}"], cwd=REPO, check=True, capture_output=True,
                   timeout=300)
    assert (prefix / "lib/flashlog/python/flashlog/replay.py").is_file()
    one = next(f for f in folders(dump) if "rmsnorm" in f.name)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONPATH")}
    r = subprocess.run([str(prefix / "bin/flashlog"), "replay", str(one)], capture_output=True, text=True,
                       env={**env, "FLASHLOG_PYTHON": sys.executable}, timeout=120)
    assert r.returncode == 0 and r.stdout.endswith("replayed 1 call: 1 passed, 0 failed, 0 could not be replayed\n")


def test_minus_two_failure_is_reproduced_and_the_replay_survives(tmp_path):
    """A call that failed with return code -2 and no error object (tvm-ffi headers <= 0.1.8) makes the real
    tvm_ffi loader crash when it is called again: the replay reports it reproduced and goes on."""
    dump = tmp_path / "d"
    p = driver(["errors", MODULE_DIR], tmp_path, dump)
    assert "fail_minus_two: rc=-2 error_raised=no" in p.stdout
    minus_two = next(f for f in folders(dump) if "fail_minus_two" in f.name)
    assert meta(minus_two)[-1]["return_code"] == -2 and "error_kind" not in meta(minus_two)[-1]
    r = replay(dump)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert f"PASS testops.fail_minus_two {minus_two.name}: reproduced: SIGSEGV (return code -2 recorded, no error " \
           "object)" in lines
    # The calls after it were replayed too (by a fresh worker).
    assert re.search(r"^PASS testops\.echo \S+: identical$", r.stdout, re.M), r.stdout
    assert lines[-1] == "replayed 4 calls: 4 passed, 0 failed, 0 could not be replayed"


def test_relative_module_path_replayed_from_another_folder(tmp_path):
    """A host loads its module by a relative path; the replay runs in another folder whose same relative path
    names another build: the recorded file is loaded (and named); once it changed, it is refused; with
    --library-root the other build is loaded, named, and its mismatch reported."""
    (tmp_path / "a/mods").mkdir(parents=True)
    (tmp_path / "b/mods").mkdir(parents=True)
    shutil.copy(require(MODULE_DIR / "dumpops/dumpops.so"), tmp_path / "a/mods/dumpops.so")
    shutil.copy(require(FIXDIR / "variant/dumpops/dumpops.so"), tmp_path / "b/mods/dumpops.so")
    code = ("import numpy as np, tvm_ffi\nm = tvm_ffi.load_module('mods/dumpops.so')\n"
            "x = np.arange(6, dtype=np.float32).reshape(2, 3); o = np.zeros_like(x)\n"
            "m.scale(tvm_ffi.from_dlpack(o), tvm_ffi.from_dlpack(x), 0.5)\nprint(o.sum())\n")
    dump = tmp_path / "d"
    env = {"FLASHLOG_DUMP_DIR": dump, "FLASHLOG_MODULES": "*"}
    plain = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "a", capture_output=True, text=True,
                           timeout=120)
    p = run([sys.executable, "-c", code], level=10, dest=tmp_path / "l", env=env, cwd=tmp_path / "a")
    assert (p.returncode, p.stdout, p.stderr) == (plain.returncode, plain.stdout, plain.stderr) == (0, "7.5\n", "")
    (call,) = folders(dump)
    first = meta(call)[0]
    recorded = tmp_path / "a/mods/dumpops.so"
    assert (first["library"], first["library_path"]) == ("mods/dumpops.so", str(recorded))
    assert first["library_size"] == recorded.stat().st_size and first["library_mtime_ns"] == recorded.stat().st_mtime_ns

    def replay_in_b(*args):
        launcher = require(REPO / "target/release/flashlog")
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        return subprocess.run([str(launcher), "replay", str(dump), *map(str, args)], capture_output=True, text=True,
                              timeout=300, env={**env, "FLASHLOG_PYTHON": sys.executable}, cwd=tmp_path / "b")

    r = replay_in_b()
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.splitlines()[0].startswith(f"LOAD {recorded} (the recorded file: "), r.stderr
    assert f"PASS dumpops.scale {call.name}: identical" in r.stdout
    # The recorded file rebuilt (another build under the same name): refused with one line.
    shutil.copy(tmp_path / "b/mods/dumpops.so", recorded)
    r = replay_in_b()
    errors = [l for l in r.stdout.splitlines() if l.startswith("ERROR")]
    assert r.returncode == 1 and len(errors) == 1 and f"{recorded} is not the recorded file" in errors[0], r.stdout
    assert "LOAD" not in r.stderr
    # --library-root: the other folder's build, named, and compared.
    r = replay_in_b("--library-root", ".")
    assert r.returncode == 1
    assert r.stderr.splitlines()[0].startswith(
        f"LOAD {tmp_path / 'b/mods/dumpops.so'} (from --library-root; recorded {recorded}: "), r.stderr
    assert f"FAIL dumpops.scale {call.name}: mismatch: arg_0: 6 of 6 elements differ" in r.stdout
    # Gone: refused, saying so.
    recorded.unlink()
    r = replay_in_b()
    assert r.returncode == 1 and f"{recorded} is missing: --library-root DIR" in r.stdout


def test_a_folder_that_is_not_a_dump_gets_one_line(tmp_path, recorded):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x\n")
    for path, why in [(tmp_path / "empty", "is not a dump folder: no metadata.jsonl in it, and no call folder "
                                            "(<stamp>_pid<PID>_<name>_call<NNNN>)"),
                      (tmp_path / "file.txt", "is not a folder: give a dump folder (FLASHLOG_DUMP_DIR) or one call "
                                              "folder in it"),
                      (tmp_path / "missing", "does not exist"),
                      (REPO / "tests", "is not a dump folder")]:
        r = replay(path)
        assert r.returncode == 2 and r.stdout.startswith(f"flashlog replay: {path} {why}"), r.stdout
        assert r.stdout.count("\n") == 1 and r.stderr == ""
    # A folder written by FlashInfer's own logger is a dump: each call is named, with what replays it.
    fi = tmp_path / "fi"
    call = fi / "20261202_011006_725_pid7_rmsnorm_call0001"
    call.mkdir(parents=True)
    (call / "metadata.jsonl").write_text(json.dumps({"function_name": "rmsnorm", "execution_status": "inputs_saved",
                                                     "tensor_format": "torch"}) + "\n")
    (call / "inputs.pt").write_bytes(b"")
    r = replay(fi)
    assert r.returncode == 1
    assert r.stdout == (f"ERROR rmsnorm {call.name}: metadata.jsonl was not written by flashlog (FlashInfer's own "
                        "logger writes such folders too: `flashinfer replay` replays those)\n"
                        "replayed 1 call: 0 passed, 0 failed, 1 could not be replayed\n")
