"""Records of TVM-FFI calls at levels 1 and 3 (issue 2), from the C driver that loads FlashInfer-shaped
modules the way tvm_ffi does. The host's output must be identical with and without the shim."""

import re
from pathlib import Path

import pytest

from conftest import DASH, EQ, FIXDIR, MODULE_DIR, require, run, split_records, strip_stamps

DRIVER = FIXDIR / "tvm_driver"
GOLDEN = Path(__file__).parent / "golden"


def driver(*args, **kw):
    return run([require(DRIVER), *args], **kw)


def normalise(text):
    text = strip_stamps(text)
    text = re.sub(r"data_ptr=0x[0-9a-f]+", "data_ptr=0x?", text)
    text = re.sub(r"^\[flashlog exit: pid \d+,", "[flashlog exit: pid PID,", text, flags=re.M)
    return re.sub(r"Process: \d+ ", "Process: PID ", text)


@pytest.mark.parametrize("cmd", ["kinds", "bad-tensors", "errors", "plan", "pointer-check"])
@pytest.mark.parametrize("level", ["1", "3", "5"])
def test_host_output_unchanged(tmp_path, cmd, level):
    plain = driver(cmd, MODULE_DIR, preload=False)
    assert plain.returncode == 0, plain.stderr
    shimmed = driver(cmd, MODULE_DIR, level=level, dest=tmp_path / "x.log")
    assert shimmed.returncode == 0, shimmed.stderr
    if cmd == "pointer-check":  # the one observable difference: the pointer handed out is the wrapper
        assert "different" in shimmed.stdout
    else:
        assert shimmed.stdout == plain.stdout
    assert shimmed.stderr == plain.stderr == ""


def test_every_value_kind_level3_golden(tmp_log):
    driver("kinds", MODULE_DIR, level=3, dest=tmp_log, check=True)
    assert normalise(tmp_log.read_text()) == (GOLDEN / "kinds_level3.txt").read_text()


def test_system_information_record_comes_first_once(tmp_log):
    driver("kinds", MODULE_DIR, level=1, dest=tmp_log, check=True)
    lines = tmp_log.read_text().splitlines()
    assert lines[0] == EQ
    assert re.fullmatch(r"\[[-\d :]+\] FlashInfer API Logging - System Information", lines[1])
    assert lines[2] == EQ and lines[3] == "flashlog version: 0.1.0"
    assert re.fullmatch(r"Process: \d+ \(tvm_driver\)", lines[4])
    assert lines[5] == "CUDA driver: <not loaded>" and lines[6] == EQ and lines[7] == ""
    assert tmp_log.read_text().count("System Information") == 1


def test_level1_is_one_line_per_call(tmp_log):
    driver("kinds", MODULE_DIR, level=1, dest=tmp_log, check=True)
    calls = tmp_log.read_text().split("\n\n", 1)[1]
    assert re.fullmatch(r"(\[[-\d :]+\] FlashInfer API Call: testops\.echo\n){6}\[flashlog exit: pid \d+, 6 records\]\n", calls)


def test_level3_record_layout(tmp_log):
    driver("plan", MODULE_DIR, level=3, dest=tmp_log, check=True)
    records = [normalise(r) for r in split_records(tmp_log.read_text())[1:]]
    name = "batch_decode_with_kv_cache_dtype_q_f16_dtype_kv_f16_dtype_o_f16_dtype_idx_i32_head_dim_qk_128_head_dim_vo_128_posenc_0_use_swa_False_use_logits_cap_False"
    assert records[0] == "\n".join([
        EQ, f"[TS] FlashInfer API Call: {name}.plan", DASH, "Positional input arguments:",
        "  arg[0]:", "    1", "  arg[1]:", "    32", "  arg[2]:", "    False",
        "Output value:", "  [", "    [0]: 128", "    [1]: 0", "    [2]: 4096", "    [3]: 1", "    [4]: 64", "  ]",
        EQ, "",
    ])
    run_record = records[1]
    assert f"FlashInfer API Call: {name}.run\n" in run_record
    assert run_record.count("Tensor(") == 9
    assert "      shape=(2, 8, 128)\n      stride=(1024, 128, 1)\n      dtype=torch.float16\n" in run_record
    assert "  arg[10]:\n    None\n  arg[11]:\n    0\n  arg[12]:\n    -1\n  arg[13]:\n    False\n" in run_record


def test_failed_calls_keep_the_error(tmp_log):
    proc = driver("errors", MODULE_DIR, level=3, dest=tmp_log, check=True)
    # The caller still gets its error, with one reference, and the same errno.
    assert "fail_with_error: rc=-1 kind=ValueError message=bad value for argument 'x' refcount=1" in proc.stdout
    assert "fail_minus_two: rc=-2 error_raised=no" in proc.stdout
    assert "noop: rc=0 errno=42" in proc.stdout and "echo keeps errno 5" in proc.stdout
    text = normalise(tmp_log.read_text())
    assert "[TS] FlashInfer API Call: testops.fail_with_error\n" + DASH + "\n(No explicit arguments)\n" \
           "Call failed: ValueError: bad value for argument 'x'\n" + EQ + "\n\n" in text
    assert "(No explicit arguments)\nCall failed: return code -2\n" + EQ in text


def test_corrupt_descriptors_are_reported_not_read(tmp_log):
    proc = driver("bad-tensors", MODULE_DIR, level=3, dest=tmp_log, check=True)
    assert proc.stdout == "touch_all(bad tensors): rc=0 result_type=0 errno=0\n"
    body = tmp_log.read_text().split("Positional input arguments:\n")[1].split("Output value:")[0]
    values = re.findall(r"  arg\[\d+\]:\n    (.*)\n", body)
    assert values == [
        "<invalid tensor: ndim out of range>", "<invalid tensor: ndim out of range>", "<invalid tensor: null shape>",
        "<invalid tensor: unreadable shape>", "<invalid tensor: unreadable strides>",
        "<invalid tensor: unreadable DLTensor>", "<invalid tensor: null DLTensor pointer>",
        "<invalid tensor: unreadable DLTensor>", "<invalid tensor: null Tensor object>",
        "<invalid str: unreadable memory>", "<invalid object: unreadable memory>",
        "<invalid object: unreadable memory>", "<invalid object: unreadable reference>",
        "<object type_index=127>", "<object type_index=4000>",
    ]


def test_dump_include_and_exclude(tmp_log):
    env = {"FLASHINFER_DUMP_INCLUDE": "echo,*plan*", "FLASHINFER_DUMP_EXCLUDE": "*fail*"}
    driver("errors", MODULE_DIR, level=3, dest=tmp_log, env=env, check=True)
    text = strip_stamps(tmp_log.read_text())
    # Filtered calls still get their level-1 line; included ones their full records.
    assert "\n[TS] FlashInfer API Call: testops.fail_with_error\n[TS] FlashInfer API Call: testops.fail_minus_two\n" \
           "[TS] FlashInfer API Call: testops.noop\n" + EQ + "\n[TS] FlashInfer API Call: testops.echo\n" in text
    assert "Call failed" not in text


def test_modules_outside_flashinfer_are_not_wrapped(tmp_log):
    proc = driver("other-module", FIXDIR, level=3, dest=tmp_log, check=True)
    assert "wrapped=no" in proc.stdout and not tmp_log.exists()
    proc = driver("other-module", FIXDIR, level=3, dest=tmp_log, env={"FLASHLOG_MODULES": "*"}, check=True)
    assert "wrapped=yes" in proc.stdout
    assert "FlashInfer API Call: testops.echo" in tmp_log.read_text()


def test_level0_returns_the_real_pointer(tmp_log):
    proc = driver("pointer-check", MODULE_DIR, level=0, dest=tmp_log, check=True)
    assert proc.stdout.endswith("same\n") and not tmp_log.exists()
    proc = driver("pointer-check", MODULE_DIR, preload=True, check=True)  # level unset
    assert proc.stdout.endswith("same\n")


def test_internal_panic_passes_call_through_and_disables(tmp_log):
    env = {"FLASHLOG_TEST_PANIC": "testops.fail_with_error"}
    plain = driver("errors", MODULE_DIR, preload=False)
    proc = driver("errors", MODULE_DIR, level=3, dest=tmp_log, env=env)
    assert proc.returncode == 0 and proc.stdout == plain.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("flashlog: internal error at ") and lines[0].endswith(
        "injected by FLASHLOG_TEST_PANIC for testops.fail_with_error; logging disabled")
    # The panic came before the first record: no half record, nothing after it, so no file at all.
    assert not tmp_log.exists()
