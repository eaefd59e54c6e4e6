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


@pytest.mark.parametrize("name", ["norm", "sampling", "page", "rope"])
def test_every_export_is_wrapped_and_named(tmp_path, name):
    names = exports(MODULES[name])
    assert names, MODULES[name]
    log = tmp_path / "l1.log"
    code = f"""
import tvm_ffi
m = tvm_ffi.load_module({MODULES[name]!r})
for n in {names!r}:
    try:
        getattr(m, n)()
    except Exception as e:
        pass
"""
    run_py(code, tmp_path, FLASHLOG_LEVEL=1, FLASHLOG_DEST=log)
    logged = re.findall(STAMP + r" FlashInfer API Call: (\S+)", log.read_text())
    assert logged == [f"{name}.{n}" for n in names]


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
    names = re.findall(STAMP + r" FlashInfer API Call: (\S+)", log.read_text())
    assert names and all("." in n for n in names), names
