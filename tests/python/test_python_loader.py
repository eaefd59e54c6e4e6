"""The real loader (issue 2): apache-tvm-ffi from the package registry loads a fixture module and calls it with
numpy arrays and Python values; the shim's records match, and Python sees exactly what it sees without it."""

import re
import sys

import pytest

from conftest import EQ, MODULE_DIR, REPO, run, split_records, strip_stamps

SCRIPT = REPO / "tests/python/loader_calls.py"


def calls(**kw):
    return run([sys.executable, SCRIPT, MODULE_DIR], **kw)


@pytest.mark.parametrize("level", ["1", "3", "5"])
def test_python_sees_the_same(tmp_path, level):
    plain = calls(preload=False)
    assert plain.returncode == 0, plain.stderr
    assert "raised ValueError bad value for argument 'x'" in plain.stdout
    shimmed = calls(level=level, dest=tmp_path / "py.log")
    assert shimmed.returncode == 0, shimmed.stderr
    assert shimmed.stdout == plain.stdout
    assert shimmed.stderr == plain.stderr


def test_level1_names(tmp_path):
    log = tmp_path / "py.log"
    calls(level="1", dest=log, check=True)
    names = re.findall(r"FlashInfer API Call: (\S+)", log.read_text())
    assert names == ["norm.rmsnorm", "testops.touch_all"] + ["testops.echo"] * 4 + ["testops.fail_with_error"]


def test_level3_records_of_numpy_and_python_values(tmp_path):
    log = tmp_path / "py.log"
    calls(level="3", dest=log, check=True)
    records = [strip_stamps(r) for r in split_records(log.read_text())]
    touch = next(r for r in records if "testops.touch_all" in r)
    args = dict(re.findall(r"  arg\[(\d+)\]:\n((?:    .*\n)+)", touch))
    tensor = lambda shape, stride, contiguous: (
        f"    Tensor(\n      shape={shape}\n      stride={stride}\n      dtype=torch.float32\n      device=cpu\n"
        f"      is_contiguous={contiguous}\n")
    assert args["0"].startswith(tensor("(4, 64)", "(128, 2)", "False"))
    assert args["1"].startswith(tensor("()", "()", "True"))
    assert args["2"].startswith(tensor("(128, 4)", "(1, 128)", "False"))
    scalars = {k: v.strip() for k, v in args.items() if int(k) >= 3 and int(k) <= 11}
    assert scalars == {"3": "7", "4": "-2", "5": "2.5", "6": "1e-06", "7": "True", "8": "False", "9": "'HND'",
                       "10": "'a longer string value'", "11": "None"}
    assert args["12"] == "    [\n      [0]: 1\n      [1]: 2\n      [2]: 3\n    ]\n"
    assert args["13"].startswith("    [\n      [0]:\n        Tensor(\n          shape=()\n")
    assert args["13"].endswith("      [1]: 's'\n    ]\n")
    assert args["14"] == "    b'xy'\n"
    failed = next(r for r in records if "testops.fail_with_error" in r)
    assert failed.endswith("(No explicit arguments)\nCall failed: ValueError: bad value for argument 'x'\n" + EQ + "\n")
    echo = [r for r in records if "testops.echo" in r]
    assert [re.search(r"Output value:\n  (.*)\n", r).group(1) for r in echo] == ["7", "2.5", "True", "None"]


def test_level5_statistics_of_numpy_arrays(tmp_path):
    log = tmp_path / "py.log"
    calls(level="5", dest=log, check=True)
    rms = next(r for r in split_records(log.read_text()) if "norm.rmsnorm" in r)
    # input x = arange(512) / 100: min 0, max 5.11, mean 2.555; out is zero before the call.
    inputs, after = rms.split("Tensor arguments after the call:")
    arg1 = inputs.split("  arg[1]:")[1]
    assert "min=0.000000\n" in arg1 and "max=5.110000\n" in arg1 and "mean=2.555000\n" in arg1
    out_after = after.split("arg[0] (after):")[1].split("arg[1] (after):")[0]
    import numpy as np

    x = np.arange(4 * 128, dtype=np.float64).reshape(4, 128) / 100.0
    want = x / np.sqrt((x * x).mean(axis=1, keepdims=True) + 1e-6)
    got = {k: float(v) for k, v in re.findall(r"(min|max|mean)=(\S+)", out_after)}
    assert got == pytest.approx({"min": want.min(), "max": want.max(), "mean": want.mean()}, abs=2e-6)
    assert "nan_count=0\n" in out_after and "inf_count=0\n" in out_after
