"""Real FlashInfer modules, JIT-built without a GPU, under the shim (issue 5). Run by tests/flashinfer/run.sh
(`make test-flashinfer`) with the environment of scripts/flashinfer-env.sh; FI_MODULES names a file of
`<name> <path>` lines written by build_modules.py."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "target/release/libflashlog.so"
EQ = "=" * 80
STAMP = r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\]"

if not os.environ.get("FI_MODULES") or not LIB.exists():
    pytest.skip("run through tests/flashinfer/run.sh (make test-flashinfer)", allow_module_level=True)
MODULES = dict(line.split()[:2] for line in Path(os.environ["FI_MODULES"]).read_text().splitlines())


def exports(path):
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True, check=True).stdout
    names = [l.split()[-1] for l in out.splitlines()]
    return sorted(n[len("__tvm_ffi_"):] for n in names if n.startswith("__tvm_ffi_") and not n.startswith("__tvm_ffi__"))


def run_py(code, tmp_path, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("FLASHINFER_LOG", "FLASHLOG_"))}
    e.update({k: str(v) for k, v in env.items()})
    e["LD_PRELOAD"] = str(LIB)
    p = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


EXPORT_MODULES = ["norm", "sampling", "page", "rope", "batch_decode"]


@pytest.mark.parametrize("level", [1, 3, 5])
@pytest.mark.parametrize("name", EXPORT_MODULES)
def test_every_export_is_wrapped_and_named(tmp_path, name, level):
    if name not in MODULES:
        pytest.skip(f"{name} module not built")
    path = MODULES[name]
    stem = Path(path).stem  # batch_decode_with_kv_cache_dtype_q_f16_..._use_logits_cap_False
    names = exports(path)
    assert names, path
    log = tmp_path / f"l{level}.log"
    # Every export looked up (dlsym, wrapped) and called with no arguments: FlashInfer's C++ answers each with its
    # own TypeError, which must reach Python unchanged.
    code = f"""
import tvm_ffi
m = tvm_ffi.load_module({path!r})
for n in {names!r}:
    try:
        getattr(m, n)()
    except TypeError as e:
        print(n, str(e).splitlines()[0])
"""
    out = run_py(code, tmp_path, FLASHLOG_LEVEL=level, FLASHLOG_DEST=log)
    seen = dict(line.split(" ", 1) for line in out.splitlines())
    assert sorted(seen) == names  # every call raised TypeError in Python
    text = log.read_text()
    logged = re.findall(STAMP + r" FlashInfer API Call: (\S+)", text)
    assert logged == [f"{stem}.{n}" for n in names]
    if level >= 3:
        records = [r for r in text.split(EQ + "\n\n") if "FlashInfer API Call:" in r]
        assert len(records) == len(names)
        for n, record in zip(names, records):
            lines = record.splitlines()
            assert re.fullmatch(STAMP + f" FlashInfer API Call: {re.escape(stem)}\\.{n}", lines[1]), lines
            assert lines[2:4] == ["-" * 80, "(No explicit arguments)"], lines
            assert lines[4:] == [f"Call failed: TypeError: {seen[n]}"], lines  # then the closing `=` line
            assert seen[n].startswith(f"Mismatched number of arguments when calling: `{n}("), seen[n]


RMSNORM = """
import torch, tvm_ffi
m = tvm_ffi.load_module({path!r})
x = torch.arange(4 * 128, dtype=torch.float32).reshape(4, 128).to(torch.float16)
w = torch.ones(128, dtype=torch.float16)
out = torch.empty_like(x)
try:
    m.rmsnorm(out, x[:, ::2], w[:64], 1e-6, False)
except Exception as e:
    print("raised", type(e).__name__, str(e).splitlines()[0])
"""


def test_level3_records_and_flashinfer_error(tmp_path):
    log = tmp_path / "l3.log"
    out = run_py(RMSNORM.format(path=MODULES["norm"]), tmp_path, FLASHLOG_LEVEL=3, FLASHLOG_DEST=log)
    message = "Check failed: input.device().device_type == kDLCUDA (1 vs. 2) : input must be a CUDA tensor"
    assert out == f"raised RuntimeError {message}\n"
    text = re.sub(STAMP, "[TS]", log.read_text())
    text = re.sub(r"data_ptr=0x[0-9a-f]+", "data_ptr=0x?", text)
    record = text[text.index("[TS] FlashInfer API Call: norm.rmsnorm"):]
    want = "\n".join([
        "[TS] FlashInfer API Call: norm.rmsnorm", "-" * 80, "Positional input arguments:",
        "  arg[0]:", "    Tensor(", "      shape=(4, 128)", "      stride=(128, 1)", "      dtype=torch.float16",
        "      device=cpu", "      is_contiguous=True", "      data_ptr=0x?", "    )",
        "  arg[1]:", "    Tensor(", "      shape=(4, 64)", "      stride=(128, 2)", "      dtype=torch.float16",
        "      device=cpu", "      is_contiguous=False", "      data_ptr=0x?", "    )",
        "  arg[2]:", "    Tensor(", "      shape=(64,)", "      stride=(1,)", "      dtype=torch.float16",
        "      device=cpu", "      is_contiguous=True", "      data_ptr=0x?", "    )",
        "  arg[3]:", "    1e-06", "  arg[4]:", "    False",
        f"Call failed: InternalError: {message}", EQ, "", ""])
    assert record == want


def test_level5_statistics_of_torch_cpu_tensors(tmp_path):
    log = tmp_path / "l5.log"
    run_py(RMSNORM.format(path=MODULES["norm"]), tmp_path, FLASHLOG_LEVEL=5, FLASHLOG_DEST=log)
    text = log.read_text()
    x = text.split("  arg[1]:")[1].split("  arg[2]:")[0]
    # x[:, ::2] of arange(512) in float16: even columns of each row, min 0, max 510, mean 255.
    assert "min=0.000000\n" in x and "max=510.000000\n" in x and "mean=255.000000\n" in x
    # The call failed, and the outputs record still shows every tensor argument as the call left it.
    after = text.split("Tensor arguments after the call:\n")[1]
    assert after.startswith("  arg[0] (after):\n") and "  arg[2] (after):\n    min=1.000000\n" in after


def test_sampling_with_optional_none_and_scalars(tmp_path):
    log = tmp_path / "s.log"
    code = f"""
import torch, tvm_ffi
m = tvm_ffi.load_module({MODULES["sampling"]!r})
probs = torch.softmax(torch.randn(2, 16), dim=-1)
out = torch.empty(2, dtype=torch.int32); valid = torch.empty(2, dtype=torch.bool)
try:
    m.top_p_sampling_from_probs(probs, out, valid, None, None, 0.9, True, None, 42, None, 0)
except Exception as e:
    print("raised", type(e).__name__)
"""
    assert run_py(code, tmp_path, FLASHLOG_LEVEL=3, FLASHLOG_DEST=log) == "raised RuntimeError\n"
    text = log.read_text()
    args = dict(re.findall(r"  arg\[(\d+)\]:\n((?:    .*\n)+)", text))
    assert [args[str(i)].strip() for i in (3, 4, 5, 6, 7, 8, 9, 10)] == ["None", "None", "0.9", "True", "None", "42",
                                                                          "None", "0"]
    assert "dtype=torch.int32" in args["1"] and "dtype=torch.bool" in args["2"]
    assert re.search(r"^Call failed: \w+: .+$", text, re.M)


def tensor_block(shape, stride, dtype, contiguous=True, indent="    "):
    return [f"{indent}Tensor(", f"{indent}  shape={tuple(shape)!r}", f"{indent}  stride={tuple(stride)!r}",
            f"{indent}  dtype=torch.{dtype}", f"{indent}  device=cpu", f"{indent}  is_contiguous={contiguous}",
            f"{indent}  data_ptr=0x?", f"{indent})"]


def call_records(text, call):
    """The (inputs, outputs) line lists of each level-3 record pair of `call`, timestamps and pointers masked."""
    text = re.sub(r"data_ptr=0x[0-9a-f]+", "data_ptr=0x?", re.sub(STAMP, "[TS]", text))
    found = []
    for m in re.finditer(EQ + r"\n\[TS\] FlashInfer API Call: " + re.escape(call) + r"\n", text):
        body = text[m.end():text.index("\n" + EQ + "\n\n", m.end())].split("\n")
        split = next(i for i, l in enumerate(body) if l.startswith(("Output value:", "Call failed:")))
        found.append((body[:split], body[split:]))
    return found


REPRESENTATIVE = """
import json, torch, tvm_ffi
mods = {{n: tvm_ffi.load_module(p) for n, p in {paths!r}.items()}}
f16, i32 = torch.float16, torch.int32
seen = []
def call(mod, fn, *args):
    try:
        seen.append([mod, fn, "ok", repr(getattr(mods[mod], fn)(*args))])
    except Exception as e:
        seen.append([mod, fn, type(e).__name__, str(e).splitlines()[0]])
# page.append_paged_kv_cache: 3 new tokens of one request into a 2-page NHD cache (page_size 4, 2 heads, dim 64);
# the v cache is a strided view (the first 64 of 128 columns).
k_new = torch.randn(3, 2, 64, dtype=f16); v_new = torch.randn(3, 2, 64, dtype=f16)
k_cache = torch.zeros(2, 4, 2, 64, dtype=f16); v_cache = torch.zeros(2, 4, 2, 128, dtype=f16)[..., :64]
call("page", "append_paged_kv_cache", k_new, v_new, torch.zeros(3, dtype=i32), torch.arange(3, dtype=i32),
     k_cache, v_cache, torch.tensor([0, 1], dtype=i32), torch.tensor([0, 2], dtype=i32),
     torch.tensor([3], dtype=i32), 0)
# rope.apply_rope_pos_ids: 5 tokens, 4 q heads, 2 k heads, head dim 64, rotary_dim 64, rope_theta 1e4.
q = torch.randn(5, 4, 64, dtype=f16); k = torch.randn(5, 2, 64, dtype=f16)
call("rope", "apply_rope_pos_ids", q, k, torch.empty_like(q), torch.empty_like(k), torch.arange(5, dtype=i32),
     64, False, 1.0, 1e4)
# rope.rope_set_launch_override(two_heads, split): pure host code; one valid call, one FlashInfer rejects.
call("rope", "rope_set_launch_override", -1, 0)
call("rope", "rope_set_launch_override", 1, 70000)
if "batch_decode" in mods:
    # run(float_ws, int_ws, plan_info_vec: Array<int64_t>, q, k_cache, v_cache, indptr, indices, last_page_len, o,
    #     maybe_lse, kv_layout_code, window_left, enable_pdl, maybe_alibi_slopes, logits_soft_cap, sm_scale,
    #     rope_rcp_scale, rope_rcp_theta)
    qd = torch.randn(2, 4, 128, dtype=f16); kv = torch.zeros(3, 16, 4, 128, dtype=f16)
    call("batch_decode", "run", torch.empty(1024, dtype=torch.uint8), torch.empty(1024, dtype=torch.uint8),
         [1, 2, 0, 64, 128, 0, 0, 0, 0, 1], qd, kv, kv, torch.tensor([0, 1, 3], dtype=i32),
         torch.tensor([0, 1, 2], dtype=i32), torch.tensor([5, 16], dtype=i32), torch.empty_like(qd), None, 0, -1,
         False, None, 0.0, 0.08838834764831845, 1.0, 1e-4)
print(json.dumps(seen))
"""


def test_representative_calls_line_by_line(tmp_path):
    import json

    log = tmp_path / "rep.log"
    paths = {n: MODULES[n] for n in ("page", "rope", "batch_decode") if n in MODULES}
    seen = json.loads(run_py(REPRESENTATIVE.format(paths=paths), tmp_path, FLASHLOG_LEVEL=3, FLASHLOG_DEST=log))
    text = log.read_text()
    outcome = {(m, f, kind): msg for m, f, kind, msg in seen}

    # page.append_paged_kv_cache: every argument, line by line, and FlashInfer's device check as the outcome.
    (inputs, outputs), = call_records(text, "page.append_paged_kv_cache")
    want = ["-" * 80, "Positional input arguments:",
            "  arg[0]:", *tensor_block((3, 2, 64), (128, 64, 1), "float16"),
            "  arg[1]:", *tensor_block((3, 2, 64), (128, 64, 1), "float16"),
            "  arg[2]:", *tensor_block((3,), (1,), "int32"),
            "  arg[3]:", *tensor_block((3,), (1,), "int32"),
            "  arg[4]:", *tensor_block((2, 4, 2, 64), (512, 128, 64, 1), "float16"),
            "  arg[5]:", *tensor_block((2, 4, 2, 64), (1024, 256, 128, 1), "float16", contiguous=False),
            "  arg[6]:", *tensor_block((2,), (1,), "int32"),
            "  arg[7]:", *tensor_block((2,), (1,), "int32"),
            "  arg[8]:", *tensor_block((1,), (1,), "int32"),
            "  arg[9]:", "    0"]
    assert inputs == want
    msg = outcome[("page", "append_paged_kv_cache", "RuntimeError")]
    assert "must be a CUDA tensor" in msg
    assert outputs == [f"Call failed: InternalError: {msg}"]

    # rope.apply_rope_pos_ids: ints, a bool and floats after the tensors.
    (inputs, outputs), = call_records(text, "rope.apply_rope_pos_ids")
    assert inputs == ["-" * 80, "Positional input arguments:",
                      "  arg[0]:", *tensor_block((5, 4, 64), (256, 64, 1), "float16"),
                      "  arg[1]:", *tensor_block((5, 2, 64), (128, 64, 1), "float16"),
                      "  arg[2]:", *tensor_block((5, 4, 64), (256, 64, 1), "float16"),
                      "  arg[3]:", *tensor_block((5, 2, 64), (128, 64, 1), "float16"),
                      "  arg[4]:", *tensor_block((5,), (1,), "int32"),
                      "  arg[5]:", "    64", "  arg[6]:", "    False", "  arg[7]:", "    1.0",
                      "  arg[8]:", "    10000.0"]
    msg = outcome[("rope", "apply_rope_pos_ids", "RuntimeError")]
    assert msg.startswith("Check failed: ") and "q must be a CUDA tensor" in msg, msg
    assert outputs == [f"Call failed: InternalError: {msg}"]

    # rope.rope_set_launch_override: a real call that succeeds (no device involved) and one FlashInfer rejects.
    ok, bad = call_records(text, "rope.rope_set_launch_override")
    assert ok == (["-" * 80, "Positional input arguments:", "  arg[0]:", "    -1", "  arg[1]:", "    0"],
                  ["Output value:", "  None"])
    assert outcome[("rope", "rope_set_launch_override", "ok")] == "None"
    msg = outcome[("rope", "rope_set_launch_override", "RuntimeError")]
    assert msg == "Check failed: (split >= 0 && split <= 65535) is false: split must be in [0, 65535], got 70000"
    assert bad == (["-" * 80, "Positional input arguments:", "  arg[0]:", "    1", "  arg[1]:", "    70000"],
                   [f"Call failed: InternalError: {msg}"])

    if "batch_decode" in paths:
        # batch_decode run: an int list arrives as Array<int64_t>; Optional None, ints, a bool and floats.
        (inputs, outputs), = call_records(text, Path(paths["batch_decode"]).stem + ".run")
        assert inputs[inputs.index("  arg[2]:"):inputs.index("  arg[3]:")] == [
            "  arg[2]:", "    [", *[f"      [{i}]: {v}" for i, v in enumerate([1, 2, 0, 64, 128, 0, 0, 0, 0, 1])],
            "    ]"]
        assert inputs[inputs.index("  arg[4]:"):inputs.index("  arg[5]:")] == [
            "  arg[4]:", *tensor_block((3, 16, 4, 128), (8192, 512, 128, 1), "float16")]
        assert inputs[inputs.index("  arg[10]:"):] == [
            "  arg[10]:", "    None", "  arg[11]:", "    0", "  arg[12]:", "    -1", "  arg[13]:", "    False",
            "  arg[14]:", "    None", "  arg[15]:", "    0.0", "  arg[16]:", "    0.08838834764831845",
            "  arg[17]:", "    1.0", "  arg[18]:", "    0.0001"]
        # FlashInfer's CUDA device guard fails first here (no driver); the error is a RuntimeError both in the
        # record and in Python.
        kind, msg = next((k, m) for (mod, f, k), m in outcome.items() if (mod, f) == ("batch_decode", "run"))
        assert kind == "RuntimeError" and msg.startswith("CUDA Runtime Error: "), (kind, msg)
        assert outputs == [f"Call failed: RuntimeError: {msg}"]


# FlashInfer asks torch for the GPU's compute capability before it picks its CUDA path; with no GPU here that one
# query is answered as an H200 would (9.0). Everything after it is FlashInfer's own code, down to its C++ check.
PUBLIC_API = """
import torch, flashinfer
torch.cuda.get_device_capability = lambda device=None: (9, 0)
x = torch.randn(4, 128, dtype=torch.float16); w = torch.ones(128, dtype=torch.float16)
try:
    flashinfer.norm.rmsnorm(x, w, enable_pdl=False)
except Exception as e:
    print("raised", type(e).__name__)
"""


def whole_records(text):
    """Detailed records as written: each starts with an `=` line and ends with `=` line + blank line."""
    return re.findall(EQ + r"\n" + STAMP + r" FlashInfer API Call: (\S+)\n(?:.*\n)*?" + EQ + r"\n\n", text)


def test_both_loggers_write_whole_records_into_one_file(tmp_path):
    log = tmp_path / "both.log"
    out = run_py(PUBLIC_API, tmp_path, FLASHINFER_LOGLEVEL=3, FLASHINFER_LOGDEST=log)
    assert out == "raised RuntimeError\n"
    text = log.read_text()
    names = re.findall(STAMP + r" FlashInfer API Call: (\S+)", text)
    assert names == ["rmsnorm", "norm.rmsnorm"]  # FlashInfer's Python logger, then the shim
    # FlashInfer's inputs record, whole (its outputs record never comes: the call raised).
    theirs = re.search(EQ + r"\n" + STAMP + r" FlashInfer API Call: rmsnorm\n-{80}\nPositional input arguments:\n"
                       r"(?:  .*\n)+Keyword input arguments:\n  enable_pdl=\n    False\n"
                       r"Default parameters \(not explicitly provided\):\n(?:  .*\n)+" + EQ + "\n", text)
    assert theirs, text
    # The shim's records, whole: system information, then the call with FlashInfer's own error.
    assert re.search(EQ + r"\n" + STAMP + r" FlashInfer API Call: norm\.rmsnorm\n(?:.*\n)+?Call failed: InternalError: "
                     r"Check failed: input\.device\(\)\.device_type == kDLCUDA \(1 vs\. 2\) : input must be a CUDA tensor\n"
                     + EQ + "\n\n", text)
    assert text.count("flashlog version: 0.1.0") == 1


def test_shim_variables_leave_flashinfer_logger_off(tmp_path):
    log = tmp_path / "shim_only.log"
    run_py(PUBLIC_API, tmp_path, FLASHLOG_LEVEL=3, FLASHLOG_DEST=log)
    text = log.read_text()
    names = re.findall(STAMP + r" FlashInfer API Call: (\S+)", text)
    assert names and all("." in n for n in names), names
    assert "FlashInfer version:" not in text  # FlashInfer's own system information record


def test_shim_variables_take_precedence_for_the_shim_alone(tmp_path):
    # Both loggers on, each with its own level and file: FlashInfer's reads FLASHINFER_*, the shim FLASHLOG_*.
    theirs, ours = tmp_path / "flashinfer.log", tmp_path / "shim.log"
    out = run_py(PUBLIC_API, tmp_path, FLASHINFER_LOGLEVEL=1, FLASHINFER_LOGDEST=theirs, FLASHLOG_LEVEL=3,
                 FLASHLOG_DEST=ours)
    assert out == "raised RuntimeError\n"
    t, o = theirs.read_text(), ours.read_text()
    assert re.findall(STAMP + r" FlashInfer API Call: (\S+)", t) == ["rmsnorm"]
    assert "Positional input arguments:" not in t and "flashlog version:" not in t
    assert re.findall(STAMP + r" FlashInfer API Call: (\S+)", o) == ["norm.rmsnorm"]
    assert "Call failed: InternalError: Check failed: input.device().device_type == kDLCUDA" in o
