"""Replay of calls dumped at level 10 (docs/dumps-and-replay.md).

Each call folder holds `metadata.jsonl` (line 1 before the call, line 2 after it), `inputs.safetensors` and
`outputs.safetensors`. Replay loads the module with the real `tvm_ffi` loader, rebuilds every argument (tensors
with their dtype, shape, strides, byte offset and device, through a DLPack capsule of our own, so any dtype and
any strides work), calls the export and compares: every tensor argument after the call and the result with the
dumped outputs (`identical` bit for bit, `close` within --rtol/--atol with NaN equal to NaN), the same error for
a call that failed, and the same death for a call that never returned. Every call runs in a worker process
(isolate.py), so a call that crashes the loader is that call's result, not the replay's end; the module file is
the recorded one, or refused (module_file.py). One line per module loaded (LOAD, on stderr), one per call, a summary line;
exit status 0 only when every call passed.
"""

import argparse
import ctypes
import fnmatch
import json
import os
import struct
import sys
from pathlib import Path

from .isolate import Worker, serve
from .module_file import ModuleRefused, resolve

try:
    import numpy as np
except ImportError:  # a clear line instead of a traceback: replay runs in whichever Python the user chose
    sys.exit(f"flashlog replay: numpy is not installed in {sys.executable}; run it with the Python that runs "
             "FlashInfer (FLASHLOG_PYTHON=/path/to/python flashlog replay DIR, or that Python's -m flashlog replay)")

# ---------------------------------------------------------------------------------------------- problems


class BadDump(Exception):
    """A dump folder that cannot be replayed: missing, truncated or corrupt file (the message names it)."""


# ---------------------------------------------------------------------------------------------- safetensors


def read_safetensors(path):
    """{key: (dtype, shape, bytes)} of a safetensors file, read with our own parser (no dependency)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise BadDump(f"{path.name} is missing") from None
    except OSError as e:
        raise BadDump(f"{path.name}: {e.strerror}") from None
    if len(data) < 8:
        raise BadDump(f"{path.name} is truncated ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise BadDump(f"{path.name} is truncated: header of {n} bytes, file of {len(data)}")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadDump(f"{path.name} has a corrupt header ({e})") from None
    if not isinstance(header, dict):
        raise BadDump(f"{path.name} has a corrupt header (not an object)")
    body = memoryview(data)[8 + n:]
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            start, end = info["data_offsets"]
            dtype, shape = info["dtype"], info["shape"]
        except (KeyError, TypeError, ValueError):
            raise BadDump(f"{path.name} has a corrupt header entry for {key}") from None
        if end > len(body) or start > end:
            raise BadDump(f"{path.name} is truncated: {key} needs bytes up to {end}, the file has {len(body)}")
        out[key] = (dtype, shape, bytes(body[start:end]))
    return out


# ---------------------------------------------------------------------------------------------- metadata


def read_metadata(folder):
    """The lines of a call folder's metadata.jsonl (one or two dicts)."""
    path = folder / "metadata.jsonl"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise BadDump("metadata.jsonl is missing") from None
    lines = []
    for i, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadDump(f"metadata.jsonl line {i + 1} is not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or "execution_status" not in obj:
            raise BadDump(f"metadata.jsonl line {i + 1} is not a flashlog record")
        lines.append(obj)
    if not lines:
        raise BadDump("metadata.jsonl is empty")
    if lines[0].get("logger") != "flashlog":
        raise BadDump("metadata.jsonl was not written by flashlog (FlashInfer's own logger writes such folders "
                      "too: `flashinfer replay` replays those)")
    if lines[0].get("execution_status") != "inputs_saved":
        raise BadDump("metadata.jsonl line 1 is not the inputs_saved line")
    return lines


# ---------------------------------------------------------------------------------------------- DLPack


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


_DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _DELETER)]


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_CAPSULE_NAME = b"dltensor"
# Everything a capsule points at stays alive for the life of the replay process (no deleter to call).
_KEEP = []


class _Exporter:
    """An object with `__dlpack__`, handing tvm_ffi a DLTensor we built (any dtype, strides, byte offset)."""

    def __init__(self, managed, device):
        self.managed, self.device = managed, device

    def __dlpack__(self, stream=None, max_version=None, **_):
        return _capsule_new(ctypes.addressof(self.managed), _CAPSULE_NAME, None)

    def __dlpack_device__(self):
        return self.device


def _uint_view(eb):
    return {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(eb, np.dtype(("V", eb)))


class Tensor:
    """One rebuilt tensor argument: its storage, the strided view over it, and the tvm_ffi Tensor."""

    def __init__(self, entry, data, device):
        self.entry = entry
        code, bits, lanes = entry["dlpack_dtype"]
        self.eb = max(1, (bits * lanes + 7) // 8)
        shape, strides = list(entry["shape"]), list(entry["stride"])
        low = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0 and n > 0)
        high = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0 and n > 0)
        numel = int(np.prod(shape)) if shape else 1
        offset = int(entry.get("byte_offset", 0))
        span = (high - low + 1) * self.eb if numel else 0
        self.host = np.zeros(offset + span + self.eb, dtype=np.uint8)
        first = offset - low * self.eb
        self.view = np.ndarray(shape, dtype=_uint_view(self.eb), buffer=self.host, offset=first,
                               strides=[s * self.eb for s in strides]) if numel else None
        if numel:
            if len(data) != numel * self.eb:
                raise BadDump(f"inputs.safetensors holds {len(data)} bytes for {entry['key']}, "
                              f"its shape needs {numel * self.eb}")
            self.view[...] = np.frombuffer(data, dtype=_uint_view(self.eb)).reshape(shape)
        self.device = device
        self.storage = None
        base = self.host.ctypes.data
        if device[0] != 1:
            import torch  # only when a tensor lives on a device

            self.storage = torch.from_numpy(self.host).to(f"cuda:{device[1]}")
            base = self.storage.data_ptr()
        managed = _DLManagedTensor()
        self._shape = (ctypes.c_int64 * max(1, len(shape)))(*shape)
        self._strides = (ctypes.c_int64 * max(1, len(strides)))(*strides)
        t = managed.dl_tensor
        t.data = base - low * self.eb
        t.device = _DLDevice(*device)
        t.ndim = len(shape)
        t.dtype = _DLDataType(code, bits, lanes)
        t.shape = ctypes.cast(self._shape, ctypes.POINTER(ctypes.c_int64))
        t.strides = ctypes.cast(self._strides, ctypes.POINTER(ctypes.c_int64))
        t.byte_offset = offset
        self.managed = managed
        _KEEP.append(self)
        import tvm_ffi

        self.ffi = tvm_ffi.from_dlpack(_Exporter(managed, device))

    def logical_bytes(self):
        """The elements now, in logical row-major order (what outputs.safetensors holds)."""
        if self.view is None:
            return b""
        if self.storage is not None:
            self.host[...] = self.storage.cpu().numpy()
        return np.ascontiguousarray(self.view).tobytes()


# ---------------------------------------------------------------------------------------------- arguments


def _device_of(entry, override):
    if override is None:
        return (int(entry.get("device_type", 1)), int(entry.get("device_id", 0)))
    if override == "cpu":
        return (1, 0)
    if override.startswith("cuda"):
        return (2, int(override.split(":")[1]) if ":" in override else 0)
    raise BadDump(f"unknown --device {override}")


def build_value(entry, inputs, tensors, device):
    """The Python value tvm_ffi gets for one `arguments` entry."""
    if entry is None or isinstance(entry, bool):
        return entry
    kind = entry.get("kind")
    if entry.get("replayable") is False:
        raise BadDump(f"argument of kind {kind} cannot be rebuilt ({entry.get('type_key', entry.get('value'))})")
    if kind == "tensor":
        key = entry["key"]
        if not entry.get("dumped", False):
            raise BadDump(f"{key} was not dumped ({entry.get('reason', 'unknown reason')})")
        if key not in inputs:
            raise BadDump(f"inputs.safetensors has no {key}")
        t = Tensor(entry, inputs[key][2], _device_of(entry, device))
        tensors[key] = t
        return t.ffi
    if kind in ("int", "str"):
        return entry["value"]
    if kind == "float":
        v = entry["value"]
        return float(v) if isinstance(v, str) else v
    if kind == "bytes":
        return bytes(entry["value"])
    if kind in ("array", "list"):
        return [build_value(item, inputs, tensors, device) for item in entry["items"]]
    if kind == "shape":
        import tvm_ffi

        return tvm_ffi.Shape(entry["value"])
    if kind == "dtype":
        import tvm_ffi

        return tvm_ffi.dtype(entry["value"])
    if kind == "device":
        import tvm_ffi

        return tvm_ffi.device(entry["value"])
    raise BadDump(f"argument of unknown kind {kind!r}")


# ---------------------------------------------------------------------------------------------- comparison

_FLOATS = {"F16": np.float16, "F32": np.float32, "F64": np.float64}


def _float_type(st_dtype):
    if st_dtype in _FLOATS:
        return _FLOATS[st_dtype]
    try:
        import ml_dtypes

        return {"BF16": ml_dtypes.bfloat16, "F8_E4M3": ml_dtypes.float8_e4m3fn,
                "F8_E5M2": ml_dtypes.float8_e5m2}.get(st_dtype)
    except ImportError:
        return None


_INTS = {"I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64, "U8": np.uint8, "U16": np.uint16,
         "U32": np.uint32, "U64": np.uint64, "BOOL": np.uint8}


def compare(key, st_dtype, want, got, rtol, atol):
    """(verdict, text): verdict is 'identical', 'close' or 'mismatch'."""
    if want == got:
        return "identical", ""
    if len(want) != len(got):
        return "mismatch", f"{key}: {len(got)} bytes instead of {len(want)}"
    ft = _float_type(st_dtype)
    if ft is not None:
        a = np.frombuffer(got, dtype=ft).astype(np.float64)
        b = np.frombuffer(want, dtype=ft).astype(np.float64)
        both_nan = np.isnan(a) & np.isnan(b)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.where(both_nan | (a == b), 0.0, np.abs(a - b))
            ok = (diff <= atol + rtol * np.abs(b)) & ~(np.isnan(a) ^ np.isnan(b))
        diff = np.where(np.isnan(diff), np.inf, diff)
        largest = float(diff.max()) if diff.size else 0.0
        if ok.all():
            return "close", f"largest difference {largest:.3g}"
        return "mismatch", f"{key}: {int((~ok).sum())} of {ok.size} elements differ (largest difference {largest:.3g})"
    it = _INTS.get(st_dtype)
    if it is not None:
        a = np.frombuffer(got, dtype=it).astype(np.float64)
        b = np.frombuffer(want, dtype=it).astype(np.float64)
        bad = a != b
        return "mismatch", (f"{key}: {int(bad.sum())} of {bad.size} elements differ "
                            f"(largest difference {float(np.abs(a - b).max()):.3g})")
    bad = sum(x != y for x, y in zip(want, got))
    return "mismatch", f"{key}: {bad} of {len(want)} bytes differ"


def encode_result(value):
    """A returned value in the `arguments` encoding, for comparison with line 2's `result`."""
    import tvm_ffi

    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {"kind": "int", "value": value}
    if isinstance(value, float):
        return {"kind": "float", "value": value}
    if isinstance(value, str):
        return {"kind": "str", "value": value}
    if isinstance(value, bytes):
        return {"kind": "bytes", "value": list(value)}
    if isinstance(value, tvm_ffi.Tensor):
        return {"kind": "tensor"}
    if isinstance(value, (list, tuple)) or type(value).__name__ in ("Array", "List"):
        return {"kind": "array", "items": [encode_result(v) for v in value]}
    return {"kind": "object"}


def _same_result(want, got):
    if isinstance(want, dict) and isinstance(got, dict):
        if want.get("kind") in ("array", "list") and got.get("kind") == "array":
            wi, gi = want.get("items", []), got.get("items", [])
            return len(wi) == len(gi) and all(_same_result(a, b) for a, b in zip(wi, gi))
        if want.get("kind") == "tensor" or want.get("kind") == "object":
            return got.get("kind") == want.get("kind")
        if want.get("kind") == "float" and got.get("kind") == "float":
            w = want.get("value")
            w = float(w) if isinstance(w, str) else w
            return w == got.get("value") or (w != w and got.get("value") != got.get("value"))
        return want.get("kind") == got.get("kind") and want.get("value") == got.get("value")
    return want == got


# ---------------------------------------------------------------------------------------------- one call

_MODULES = {}


def _function(path, meta):
    """The export to replay, from the module file the parent chose (`path`)."""
    import tvm_ffi

    export = meta.get("export")
    if not path or not export:
        raise BadDump("metadata.jsonl names no library or export")
    if path not in _MODULES:
        try:
            _MODULES[path] = tvm_ffi.load_module(path)
        except Exception as e:  # noqa: BLE001 - any loader error is reported as such
            raise BadDump(f"cannot load {path}: {type(e).__name__}: {e}") from None
    try:
        return _MODULES[path][export]
    except Exception:  # noqa: BLE001
        raise BadDump(f"{path} has no export {export}") from None


def error_of(e):
    """(kind, message) of an exception as the TVM-FFI error object says (a kind Python has no class for,
    such as InternalError, arrives as RuntimeError), else the exception's own."""
    err = getattr(e, "__tvm_ffi_error__", None)
    if err is not None:
        try:
            return err.kind, err.message
        except Exception:  # noqa: BLE001
            pass
    return type(e).__name__, str(e)


def run_call(folder, lines, opts, path):
    """Replays one call that returned when recorded, with the module at `path`: (passed, text)."""
    first, last = lines[0], lines[-1]
    inputs = read_safetensors(folder / "inputs.safetensors")
    outputs = read_safetensors(folder / "outputs.safetensors") if last["execution_status"] != "inputs_saved" else {}
    fn = _function(path, first)
    tensors = {}
    args = [build_value(a, inputs, tensors, opts.device) for a in first.get("arguments", [])]
    try:
        result = fn(*args)
        error = None
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        result, error = None, error_of(e)
    if last["execution_status"] == "failed":
        if "error_kind" in last:
            want = (last["error_kind"], last["error_message"])
            if error == want:
                return True, f"same error: {want[0]}: {want[1]}"
            if error is None:
                return False, f"recorded error {want[0]}: {want[1]}; the replay returned"
            return False, f"recorded error {want[0]}: {want[1]}; the replay raised {error[0]}: {error[1]}"
        if error is not None:
            return True, f"failed again (return code {last.get('return_code')} recorded; replay raised {error[0]})"
        return False, f"recorded return code {last.get('return_code')}; the replay returned"
    if error is not None:
        return False, f"recorded completed; the replay raised {error[0]}: {error[1]}"
    verdicts, notes = [], []
    for key, t in tensors.items():
        if key not in outputs:
            continue
        v, text = compare(key, outputs[key][0], outputs[key][2], t.logical_bytes(), opts.rtol, opts.atol)
        verdicts.append(v)
        if text:
            notes.append(text)
    want_result = last.get("result")
    if "result" in last or result is not None:
        got = encode_result(result)
        if not _same_result(want_result, got):
            verdicts.append("mismatch")
            notes.append(f"result: {json.dumps(got)} instead of {json.dumps(want_result)}")
        else:
            for key, value in _result_tensors(result, "result"):
                if key in outputs:
                    v, text = compare(key, outputs[key][0], outputs[key][2], _tensor_bytes(value), opts.rtol,
                                      opts.atol)
                    verdicts.append(v)
                    if text:
                        notes.append(text)
    if "mismatch" in verdicts:
        return False, "mismatch: " + "; ".join(n for n in notes if ":" in n)
    if "close" in verdicts:
        return True, "close (" + "; ".join(notes) + ")"
    return True, "identical"


def _result_tensors(value, key):
    """(key, tvm_ffi.Tensor) of a returned tensor and of tensors inside a returned array (`result__<j>`)."""
    import tvm_ffi

    if isinstance(value, tvm_ffi.Tensor):
        yield key, value
    elif isinstance(value, (list, tuple)) or type(value).__name__ in ("Array", "List"):
        for j, item in enumerate(value):
            yield from _result_tensors(item, f"{key}__{j}")


def _tensor_bytes(t):
    """A returned tensor's elements in logical order: through numpy, or torch for a device or a dtype numpy
    lacks."""
    try:
        return np.ascontiguousarray(np.from_dlpack(t)).tobytes()
    except Exception:  # noqa: BLE001 - numpy refuses device tensors and bfloat16 / float8
        import torch

        x = torch.from_dlpack(t).cpu().contiguous()
        return x.reshape(-1).view(torch.uint8).numpy().tobytes() if x.numel() else b""


def run_never_returned(folder, lines, opts, path):
    """A call that never returned when recorded (the worker is expected to die): (passed, text) when it
    returns or raises instead."""
    inputs = read_safetensors(folder / "inputs.safetensors")
    fn = _function(path, lines[0])
    tensors = {}
    args = [build_value(a, inputs, tensors, opts.device) for a in lines[0].get("arguments", [])]
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001
        kind, message = error_of(e)
        return True, f"reproduced: {kind}: {message}"
    return False, "never returned when recorded; the replay returned"


def worker_call(request):
    """In the worker: replays the call of one request; {"ok": bool, "text": ...} or {"bad": text}."""
    opts = argparse.Namespace(**request["opts"])
    folder = Path(request["folder"])
    try:
        lines = read_metadata(folder)
        run = run_never_returned if lines[-1]["execution_status"] == "inputs_saved" else run_call
        ok, text = run(folder, lines, opts, request["library"])
    except BadDump as e:
        return {"bad": str(e)}
    return {"ok": ok, "text": text}


def died_verdict(last, died):
    """(passed, text) of a call whose worker died (a signal, an exit) or hung: reproduced when the recorded call
    never returned, or died when it failed without an error object (a return code the loader may crash on)."""
    how = died["text"]
    status = last["execution_status"]
    if status == "inputs_saved":
        return True, f"reproduced: {how}"
    if status == "failed" and "error_kind" not in last and died["died"] != "hang":
        return True, f"reproduced: {how} (return code {last.get('return_code')} recorded, no error object)"
    recorded = f"error {last['error_kind']}: {last['error_message']}" if "error_kind" in last else status
    if status == "failed" and "error_kind" not in last:
        recorded = f"return code {last.get('return_code')}"
    return False, f"recorded {recorded}; the replay {'is ' if died['died'] == 'hang' else 'process died: '}{how}"


# ---------------------------------------------------------------------------------------------- driver


def call_folders(root):
    """The call folders under `root` (or `root` itself), in the order the calls were made; BadDump naming what
    `root` is when it is no dump (flashlog's or FlashInfer's logger's)."""
    root = Path(root)
    if (root / "metadata.jsonl").exists() or (root / "inputs.safetensors").exists():
        return [root]
    if not root.exists():
        raise BadDump(f"{root} does not exist")
    if not root.is_dir():
        raise BadDump(f"{root} is not a folder: give a dump folder (FLASHLOG_DUMP_DIR) or one call folder in it")
    try:
        folders = [p for p in root.iterdir() if p.is_dir() and "_pid" in p.name and "_call" in p.name]
    except OSError as e:
        raise BadDump(f"{root}: {e.strerror}") from None
    if not folders:
        raise BadDump(f"{root} is not a dump folder: no metadata.jsonl in it, and no call folder "
                      "(<stamp>_pid<PID>_<name>_call<NNNN>)")
    # session.jsonl has the inputs_saved lines in the order the calls began; folder names (their timestamps,
    # to the millisecond) order the rest.
    order = {}
    try:
        with open(root / "session.jsonl", encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    name = Path(json.loads(line).get("dump_dir", "")).name
                except (json.JSONDecodeError, AttributeError):
                    continue
                order.setdefault(name, len(order))
    except OSError:
        pass
    return sorted(folders, key=lambda p: (p.name[:19], order.get(p.name, len(order)), p.name))


def _name_of(folder):
    """`<module>.<export>` from a folder name (used to filter before reading anything)."""
    name = folder.name
    try:
        rest = name.split("_pid", 1)[1].split("_", 1)[1]
        return rest.rsplit("_call", 1)[0]
    except IndexError:
        return name


def main(argv):
    parser = argparse.ArgumentParser(prog="flashlog replay", description=__doc__.split("\n\n")[0])
    # The word "replay" that `python -m flashlog replay` passes on is the command itself, not an argument to
    # show in the usage line.
    if argv[:1] == ["replay"]:
        argv = argv[1:]
    parser.add_argument("dir", help="a dump folder (FLASHLOG_DUMP_DIR, --dump-dir) or one call folder in it")
    parser.add_argument("--device", help="move every tensor to this device (cpu, cuda:N; default: where it was)")
    parser.add_argument("--filter", metavar="GLOB",
                        help="replay only calls whose name (module.export or export) matches this glob")
    parser.add_argument("--rtol", type=float, default=1e-3, metavar="R",
                        help="relative tolerance of the comparison with the dumped outputs (default 1e-3)")
    parser.add_argument("--atol", type=float, default=1e-3, metavar="A",
                        help="absolute tolerance of the comparison with the dumped outputs (default 1e-3)")
    parser.add_argument("--timeout", type=float, default=120, metavar="S",
                        help="seconds one replayed call may run (default 120)")
    parser.add_argument("--library-root", metavar="DIR",
                        help="load each module from DIR (DIR/<recorded relative path> or DIR/<file name>) instead "
                             "of the recorded file, even when it differs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.worker:
        return serve(worker_call)
    try:
        folders = call_folders(opts.dir)
    except BadDump as e:
        print(f"flashlog replay: {e}")
        return 2
    worker = Worker(opts.timeout)
    request_opts = {"device": opts.device, "rtol": opts.rtol, "atol": opts.atol}
    loaded = set()
    passed = failed = bad = 0
    try:
        for folder in folders:
            name = _name_of(folder)
            if opts.filter and not (fnmatch.fnmatchcase(name, opts.filter)
                                    or fnmatch.fnmatchcase(name.rsplit(".", 1)[-1], opts.filter)):
                continue
            try:
                lines = read_metadata(folder)
                name = lines[0].get("function_name", name)
                try:
                    path, which = resolve(lines[0], opts.library_root)
                except ModuleRefused as e:
                    raise BadDump(str(e)) from None
                if path not in loaded:
                    loaded.add(path)
                    # On stderr: stdout keeps one line per call and the summary line, as scripts read them.
                    print(f"LOAD {path} ({which})", file=sys.stderr, flush=True)
                answer = worker.call({"folder": str(folder.resolve()), "library": path, "opts": request_opts})
                if "bad" in answer:
                    raise BadDump(answer["bad"])
                ok, text = (answer["ok"], answer["text"]) if "died" not in answer else died_verdict(lines[-1], answer)
            except BadDump as e:
                bad += 1
                print(f"ERROR {name} {folder.name}: {e}", flush=True)
                continue
            if ok:
                passed += 1
            else:
                failed += 1
            print(f"{'PASS' if ok else 'FAIL'} {name} {folder.name}: {text}", flush=True)
    finally:
        worker.close()
    total = passed + failed + bad
    print(f"replayed {total} call{'s' if total != 1 else ''}: {passed} passed, {failed} failed, "
          f"{bad} could not be replayed")
    return 0 if total > 0 and passed == total else 1
