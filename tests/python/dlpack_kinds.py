"""The DLPack kinds the shim's statistics cover, one table for the host-path tests (test_stats.py) and the GPU
kernel tests (test_gpu_stats.py): name -> (numpy dtype, DLPack code, bits, lanes)."""

import ml_dtypes
import numpy as np

FLOATS = {
    "float16": (np.float16, 2, 16, 1),
    "bfloat16": (ml_dtypes.bfloat16, 4, 16, 1),
    "float32": (np.float32, 2, 32, 1),
    "float64": (np.float64, 2, 64, 1),
    "float8_e3m4": (ml_dtypes.float8_e3m4, 7, 8, 1),
    "float8_e4m3": (ml_dtypes.float8_e4m3, 8, 8, 1),
    "float8_e4m3b11fnuz": (ml_dtypes.float8_e4m3b11fnuz, 9, 8, 1),
    "float8_e4m3fn": (ml_dtypes.float8_e4m3fn, 10, 8, 1),
    "float8_e4m3fnuz": (ml_dtypes.float8_e4m3fnuz, 11, 8, 1),
    "float8_e5m2": (ml_dtypes.float8_e5m2, 12, 8, 1),
    "float8_e5m2fnuz": (ml_dtypes.float8_e5m2fnuz, 13, 8, 1),
    "float8_e8m0fnu": (ml_dtypes.float8_e8m0fnu, 14, 8, 1),
    "float6_e2m3fn": (ml_dtypes.float6_e2m3fn, 15, 6, 1),
    "float6_e3m2fn": (ml_dtypes.float6_e3m2fn, 16, 6, 1),
}
# Two codes per byte: numpy has no packed type, so the bytes are uint8.
PACKED = {"float4_e2m1fn_x2": (np.uint8, 17, 4, 2)}
INTS = {
    "int8": (np.int8, 0, 8, 1),
    "int16": (np.int16, 0, 16, 1),
    "int32": (np.int32, 0, 32, 1),
    "int64": (np.int64, 0, 64, 1),
    "uint8": (np.uint8, 1, 8, 1),
    "uint16": (np.uint16, 1, 16, 1),
    "uint32": (np.uint32, 1, 32, 1),
    "uint64": (np.uint64, 1, 64, 1),
    "bool": (np.bool_, 6, 8, 1),
}
