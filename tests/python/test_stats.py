"""Level-5 statistics of host tensors (issue 3), checked against numpy (and ml_dtypes for bfloat16, float8,
float6 and float4) for every dtype: random data, NaN, +Inf, -Inf, all-NaN, empty, 0-d, a transposed view, a
slice with a byte offset, a broadcast (stride 0) view, and a tensor four times larger than the staging buffer.
The C driver hands the shim a DLTensor over the very bytes numpy holds."""

import math
import re

import ml_dtypes
import numpy as np
import pytest

import dlpack_kinds
from conftest import FIXDIR, MODULE_DIR, require, run

DRIVER = FIXDIR / "stats/stats_driver"
MODULE = MODULE_DIR / "statsops/statsops.so"
STAGING_BYTES = 4 << 20

# name -> (numpy dtype, DLPack code, bits, lanes); float4 is tested on its own (two codes per byte).
FLOATS, INTS = dlpack_kinds.FLOATS, dlpack_kinds.INTS


def shim_stats(tmp_path, base, code, bits, lanes, offset_elems, shape, strides, expect_rc=0):
    """Runs the driver over `base`'s bytes viewed with (offset, shape, strides) in elements; returns the
    statistics lines of the inputs record as a dict (or the raw statistics line)."""
    data = tmp_path / "data.bin"
    data.write_bytes(np.ascontiguousarray(base).tobytes())
    log = tmp_path / "stats.log"
    log.unlink(missing_ok=True)
    itemsize = max(1, (bits * lanes) // 8)
    args = [require(DRIVER), require(MODULE), data, code, bits, lanes, offset_elems * itemsize, len(shape), *shape]
    args += list(strides) if strides is not None else ["-"]
    proc = run(args, level=5, dest=log)
    assert proc.returncode == expect_rc, proc.stdout + proc.stderr
    text = log.read_text()
    inputs = text.split("Positional input arguments:")[1].split("Output value:")[0]
    return parse_stats(inputs), inputs


def parse_stats(block):
    return {k: v for k, v in re.findall(r"^\s+(min|max|mean|nan_count|inf_count)=(\S+)$", block, re.M)}


def expected_float(values):
    v = np.asarray(values, dtype=np.float64).ravel()
    np.seterr(invalid="ignore")  # mixed infinities: the mean is nan, as expected
    if v.size == 0:
        return {}
    nan = int(np.isnan(v).sum())
    inf = int(np.isinf(v).sum())
    if nan:
        mn = mx = mean = math.nan
    else:
        mn, mx, mean = v.min(), v.max(), v.mean()
    return {"min": mn, "max": mx, "mean": mean, "nan_count": nan, "inf_count": inf}


def assert_float_stats(got, want):
    assert set(got) == set(want), (got, want)
    for key in ("nan_count", "inf_count"):
        assert int(got[key]) == want[key], (key, got, want)
    for key in ("min", "max", "mean"):
        g, w = float(got[key]), float(want[key])
        if math.isnan(w) or math.isinf(w):
            assert (math.isnan(g) and math.isnan(w)) or g == w, (key, got, want)
        else:
            assert g == pytest.approx(w, rel=1e-6, abs=1e-6), (key, got, want)


def random_values(dt, n, rng):
    """Finite random values representable in `dt` (drawn in float32, cast)."""
    info_max = float(ml_dtypes.finfo(dt).max) if dt not in (np.float16, np.float32, np.float64) else 1e4
    scale = min(info_max / 2, 100.0)
    return rng.uniform(-scale, scale, n).astype(np.float32).astype(dt)


def pack(values, dt):
    """float6 kinds are stored one per byte (low 6 bits), as ml_dtypes does."""
    return values.view(np.uint8) if np.dtype(dt).itemsize == 1 else values


@pytest.mark.parametrize("name", list(FLOATS))
def test_float_kinds_random_and_specials(tmp_path, name):
    dt, code, bits, lanes = FLOATS[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    vals = random_values(dt, 1000, rng)
    if name == "float8_e8m0fnu":  # unsigned exponent-only format: positive powers of two
        vals = (2.0 ** rng.integers(-20, 20, 1000)).astype(np.float32).astype(dt)
    got, _ = shim_stats(tmp_path, pack(vals, dt), code, bits, lanes, 0, [1000], None)
    assert_float_stats(got, expected_float(vals.astype(np.float64)))

    specials = vals.copy()
    can_nan = not name.startswith("float6")
    can_inf = name in ("float16", "bfloat16", "float32", "float64", "float8_e3m4", "float8_e4m3", "float8_e5m2")
    if can_nan:
        specials[3] = np.nan
    if can_inf:
        specials[5], specials[7] = np.inf, -np.inf
    got, _ = shim_stats(tmp_path, pack(specials, dt), code, bits, lanes, 0, [1000], None)
    assert_float_stats(got, expected_float(specials.astype(np.float64)))


@pytest.mark.parametrize("name", ["float32", "bfloat16", "float8_e4m3fn"])
def test_all_nan_inf_only_empty_and_zero_d(tmp_path, name):
    dt, code, bits, lanes = FLOATS[name]
    all_nan = np.full(33, np.nan, dtype=np.float32).astype(dt)
    got, _ = shim_stats(tmp_path, all_nan, code, bits, lanes, 0, [33], None)
    assert got == {"min": "nan", "max": "nan", "mean": "nan", "nan_count": "33", "inf_count": "0"}
    if name != "float8_e4m3fn":
        mixed_inf = np.array([np.inf, -np.inf, 1.0], dtype=np.float32).astype(dt)
        got, _ = shim_stats(tmp_path, mixed_inf, code, bits, lanes, 0, [3], None)
        assert got == {"min": "-inf", "max": "inf", "mean": "nan", "nan_count": "0", "inf_count": "2"}
    empty = np.zeros(4, dtype=dt)
    got, block = shim_stats(tmp_path, empty, code, bits, lanes, 0, [0, 4], None)
    assert got == {} and "statistics" not in block
    zero_d = np.array([2.5], dtype=np.float32).astype(dt)
    got, _ = shim_stats(tmp_path, zero_d, code, bits, lanes, 0, [], None)
    assert_float_stats(got, expected_float([2.5]))


def test_float4_packed_two_per_byte(tmp_path):
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 16, 2 * 500, dtype=np.uint8)
    packed = (codes[0::2] | (codes[1::2] << 4)).astype(np.uint8)
    values = codes.view(ml_dtypes.float4_e2m1fn).astype(np.float64)
    got, _ = shim_stats(tmp_path, packed, 17, 4, 2, 0, [500], None)
    assert_float_stats(got, expected_float(values))


@pytest.mark.parametrize("name", list(INTS))
def test_integer_and_bool_kinds(tmp_path, name):
    dt, code, bits, _ = INTS[name]
    rng = np.random.default_rng(bits + code)
    if dt is np.bool_:
        vals = rng.integers(0, 2, 777).astype(np.bool_)
    else:
        info = np.iinfo(dt)
        vals = rng.integers(info.min, info.max, 777, dtype=dt, endpoint=True)
        vals[0], vals[1] = info.min, info.max
    got, block = shim_stats(tmp_path, vals, code, bits, 1, 0, [777], None)
    ints = [int(x) for x in vals]
    assert int(got["min"]) == min(ints) and int(got["max"]) == max(ints)
    assert float(got["mean"]) == pytest.approx(sum(ints) / len(ints), rel=1e-9, abs=1e-6)
    assert "nan_count" not in block


def test_views_transposed_offset_broadcast_negative(tmp_path):
    rng = np.random.default_rng(7)
    base = rng.standard_normal((64, 48)).astype(np.float32)
    # Transposed: dense, strides permuted.
    got, block = shim_stats(tmp_path, base, 2, 32, 1, 0, [48, 64], [1, 48])
    assert "is_contiguous=False" in block
    assert_float_stats(got, expected_float(base.T))
    # A slice with a byte offset and gaps: rows 3..9, every other column from column 5.
    view = base[3:10, 5::2]
    got, block = shim_stats(tmp_path, base, 2, 32, 1, 3 * 48 + 5, list(view.shape), [48, 2])
    assert "byte_offset=" in block
    assert_float_stats(got, expected_float(view))
    # Broadcast: one row repeated 1000 times (stride 0).
    row = base[0]
    got, _ = shim_stats(tmp_path, row, 2, 32, 1, 0, [1000, 48], [0, 1])
    assert_float_stats(got, expected_float(np.broadcast_to(row, (1000, 48))))
    # Negative stride: a reversed row, first element at the end.
    got, _ = shim_stats(tmp_path, row, 2, 32, 1, 47, [48], [-1])
    assert_float_stats(got, expected_float(row[::-1]))


def test_tensor_four_times_the_staging_buffer(tmp_path):
    n = 4 * STAGING_BYTES // 4 + 12345
    rng = np.random.default_rng(11)
    vals = rng.standard_normal(n).astype(np.float32)
    vals[n - 3] = np.nan  # in the last chunk
    got, _ = shim_stats(tmp_path, vals, 2, 32, 1, 0, [n], None)
    assert_float_stats(got, expected_float(vals))
    # The same, strided (every third element): walked run by run, chunk by chunk.
    m = n // 3
    got, _ = shim_stats(tmp_path, vals, 2, 32, 1, 0, [m], [3])
    assert_float_stats(got, expected_float(vals[: 3 * m : 3]))


def test_unmapped_host_data_gives_error_line_and_call_goes_through(tmp_path):
    log = tmp_path / "stats.log"
    args = [require(DRIVER), require(MODULE), "-unmapped", 2, 32, 1, 0, 1, 16, "-"]
    proc = run(args, level=5, dest=log)
    assert proc.returncode == 0 and proc.stdout == "rc=0\n"
    text = log.read_text()
    assert text.count("[statistics error: host memory not readable]") == 2, text


def test_unsupported_dtype_gives_error_line(tmp_path):
    vals = np.zeros(4, dtype=np.complex64)
    got, block = shim_stats(tmp_path, vals, 5, 64, 1, 0, [4], None)
    assert "[statistics error: unsupported dtype]" in block and got == {}


@pytest.mark.parametrize("name", [n for n in FLOATS if np.dtype(FLOATS[n][0]).itemsize == 1])
def test_every_code_of_narrow_formats_decodes_like_ml_dtypes(tmp_path, name):
    """All codes at once: the NaN count must match ml_dtypes' NaN codes exactly, and min, max and mean of the
    other codes must match their ml_dtypes values (one wrong code would move the mean)."""
    dt, code, bits, lanes = FLOATS[name]
    codes = np.arange(1 << bits, dtype=np.uint8)
    values = codes.view(dt).astype(np.float64)
    got, _ = shim_stats(tmp_path, codes, code, bits, lanes, 0, [codes.size], None)
    assert int(got["nan_count"]) == int(np.isnan(values).sum())
    assert int(got["inf_count"]) == int(np.isinf(values).sum())
    finite = codes[np.isfinite(values)]
    got, _ = shim_stats(tmp_path, finite, code, bits, lanes, 0, [finite.size], None)
    assert_float_stats(got, expected_float(finite.view(dt).astype(np.float64)))
