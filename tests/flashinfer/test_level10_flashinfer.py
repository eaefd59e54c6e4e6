"""Level 10 on real FlashInfer modules (issue 9), run by tests/flashinfer/run.sh (`make test-flashinfer`): real
`norm` and `sampling` calls on CPU torch tensors are dumped, FlashInfer's `Check failed: ... must be a CUDA
tensor` error is recorded, the tensors read back with `safetensors.torch` equal the program's, and replay
reproduces the same error."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "target/release/libflashlog.so"

if not os.environ.get("FI_MODULES") or not LIB.exists():
    pytest.skip("run through tests/flashinfer/run.sh (make test-flashinfer)", allow_module_level=True)
MODULES = dict(line.split()[:2] for line in Path(os.environ["FI_MODULES"]).read_text().splitlines())

CALLS = """
import torch, tvm_ffi
norm = tvm_ffi.load_module({norm!r})
sampling = tvm_ffi.load_module({sampling!r})
x = torch.arange(4 * 128, dtype=torch.float32).reshape(4, 128).to(torch.float16)
w = torch.ones(128, dtype=torch.float16)
out = torch.zeros_like(x)
probs = torch.full((2, 16), 1 / 16)
idx = torch.zeros(2, dtype=torch.int32); valid = torch.zeros(2, dtype=torch.bool)
torch.save({{"x": x, "w": w, "probs": probs}}, "expected.pt")
for call in (lambda: norm.rmsnorm(out, x[:, ::2], w[:64], 1e-6, False),
             lambda: sampling.top_p_sampling_from_probs(probs, idx, valid, None, None, 0.9, True, None, 42, None, 0)):
    try:
        call()
    except Exception as e:
        print("raised", type(e).__name__, str(e).splitlines()[0])
"""


def test_real_calls_dumped_and_replayed(tmp_path):
    dump = tmp_path / "dumps"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASHINFER_LOG", "FLASHLOG_"))}
    env.update(LD_PRELOAD=str(LIB), FLASHLOG_LEVEL="10", FLASHLOG_DEST="/dev/null", FLASHLOG_DUMP_DIR=str(dump))
    code = CALLS.format(norm=MODULES["norm"], sampling=MODULES["sampling"])
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    calls = sorted(d for d in dump.iterdir() if d.is_dir())
    assert [c.name.split("_", 4)[-1] for c in calls] == ["norm.rmsnorm_call0001",
                                                         "sampling.top_p_sampling_from_probs_call0001"]
    lines = [json.loads(l) for l in (calls[0] / "metadata.jsonl").read_text().splitlines()]
    assert lines[-1]["execution_status"] == "failed" and "must be a CUDA tensor" in lines[-1]["error_message"]
    assert lines[0]["arguments"][1]["stride"] == [128, 2] and lines[0]["arguments"][1]["device"] == "cpu"
    import torch

    load_file = pytest.importorskip("safetensors.torch").load_file

    expected = torch.load(tmp_path / "expected.pt")
    inputs = load_file(calls[0] / "inputs.safetensors")
    assert torch.equal(inputs["arg_1"], expected["x"][:, ::2]) and torch.equal(inputs["arg_2"], expected["w"][:64])
    assert torch.equal(load_file(calls[1] / "inputs.safetensors")["arg_0"], expected["probs"])
    r = subprocess.run([sys.executable, "-m", "flashlog", "replay", str(dump)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO / "python")}, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(": same error: ") == 2, r.stdout
