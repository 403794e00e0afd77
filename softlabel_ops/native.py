"""Compiled CPU kernel: soft_resize.c (package data), built on first use with the system C compiler
and loaded through ctypes.

The shared library is cached under $SOFTLABEL_OPS_CACHE (default ~/.cache/softlabel_ops, else a
private folder in the temp dir), keyed by a hash of the source and flags, and written atomically so
concurrent data-loader workers can race safely. It needs no torch headers (a build takes about a
second). When no compiler is found, the build fails, or SOFTLABEL_OPS_NATIVE=0, `available()` is
False and soft_resize uses the pure torch path, which gives the same results (up to float rounding).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from importlib import resources

import numpy as np
import torch

from .containers import DenseSoftLabel, SparseSoftLabel
from .labels import check_values

_FLAGS = ["-O3", "-shared", "-fPIC", "-std=c99", "-fno-strict-aliasing", "-Wall", "-Wextra"]
SOURCE_FILE = "soft_resize.c"
MAX_CLASSES = 65535  # per-pixel class counts are stored as uint16
_DTYPES = {torch.uint8: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.int64: 4}
_lock = threading.Lock()
_lib = None
_error: str | None = None
_p = ctypes.c_void_p
_i64 = ctypes.c_int64


def _cache_dirs() -> list[str]:
    """Candidate cache folders: $SOFTLABEL_OPS_CACHE, else the user cache, then a private temp folder."""
    if os.environ.get("SOFTLABEL_OPS_CACHE"):
        return [os.environ["SOFTLABEL_OPS_CACHE"]]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return [os.path.join(base, "softlabel_ops"), os.path.join(tempfile.gettempdir(), f"softlabel_ops-{uid}")]


def _usable(folder: str) -> bool:
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return False
    st = os.stat(folder)  # never load code from a folder someone else controls
    return os.access(folder, os.W_OK) and (not hasattr(os, "getuid") or st.st_uid == os.getuid())


def source() -> str:
    """The kernel's C source, read from the installed package."""
    return resources.files(__package__).joinpath(SOURCE_FILE).read_text()


def compiler() -> str | None:
    """The C compiler to build with: $CC, else cc, gcc or clang on the PATH."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def compile_kernel(path: str, cc: str, code: str) -> str:
    """Builds `code` into the shared library `path` (atomically); returns the compiler's warnings."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp_so = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))
    os.close(fd)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, SOURCE_FILE)
        with open(src, "w") as f:
            f.write(code)
        try:
            cmd = [cc, *_FLAGS, src, "-o", tmp_so]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if res.returncode != 0:
                raise RuntimeError(f"{cc} failed: {res.stderr.strip()[:2000]}")
            os.replace(tmp_so, path)
            return res.stderr.strip()
        finally:
            if os.path.exists(tmp_so):
                os.remove(tmp_so)


def _declare(lib) -> None:
    lib.soft_resize.restype = ctypes.c_int
    lib.soft_resize.argtypes = [_p, ctypes.c_int, _i64, _i64, _i64, _p, _p, _i64, _i64, _p, _p, _i64, _i64,
                                _i64, _i64, ctypes.c_int, _i64, _p, _p, _p]
    lib.any_bad.restype = ctypes.c_int
    lib.any_bad.argtypes = [_p, ctypes.c_int, _i64, _i64, _i64]
    lib.sp_new.restype = _p
    lib.sp_new.argtypes = [_i64]
    lib.sp_free.argtypes = [_p]
    lib.sp_max_count.restype = _i64
    lib.sp_max_count.argtypes = [_p]
    lib.sp_failed.restype = ctypes.c_int
    lib.sp_failed.argtypes = [_p]
    lib.sp_fill.argtypes = [_p, _i64, _i64, _i64, _p, _p]


def load():
    """The loaded library, building it if needed; None (with the reason in `error()`) if impossible."""
    global _lib, _error
    if _lib is not None or _error is not None:
        return _lib
    with _lock:
        if _lib is not None or _error is not None:
            return _lib
        if os.environ.get("SOFTLABEL_OPS_NATIVE", "1") == "0":
            _error = "disabled by SOFTLABEL_OPS_NATIVE=0"
            return None
        cc = compiler()
        folders = [d for d in _cache_dirs() if _usable(d)]
        try:
            code = source()
            key = hashlib.sha256("\0".join([code, cc or "", *_FLAGS, sys.platform]).encode()).hexdigest()[:16]
            if not cc:
                raise RuntimeError("no C compiler found (set CC)")
            if not folders:
                raise OSError(f"no writable cache folder among {_cache_dirs()}")
            path = os.path.join(folders[0], f"soft_resize_{key}.so")
            if not os.path.exists(path):
                compile_kernel(path, cc, code)
            lib = ctypes.CDLL(path)
            _declare(lib)
            _lib = lib
        except Exception as exc:  # any failure means: use the torch path
            _error = f"{type(exc).__name__}: {exc}"
        if _error:
            warnings.warn(f"softlabel_ops: compiled kernel unavailable ({_error}); using the slower pure "
                          "torch path (set SOFTLABEL_OPS_NATIVE=0 to silence)", RuntimeWarning, stacklevel=3)
    return _lib


def available() -> bool:
    """True when the compiled kernel can be used (builds it on first call)."""
    return load() is not None


def error() -> str | None:
    """Why the compiled kernel is unavailable (None when it is available or not yet tried)."""
    return _error


def _ptr(a) -> int:
    return a.data_ptr() if isinstance(a, torch.Tensor) else a.ctypes.data


def soft_resize(lab: torch.Tensor, ty, tx, num_classes: int, ignore: int, ignore_value, sparse: bool,
                top_k: int | None, clamp: bool) -> DenseSoftLabel | SparseSoftLabel:
    """Compiled counterpart of resample._soft_resize_torch (CPU label (N, H, W), numpy tap tables)."""
    lib = load()
    if lib is None:
        raise RuntimeError(f"the compiled softlabel_ops kernel is unavailable: {_error}")
    if num_classes > MAX_CLASSES:
        raise ValueError(f"the compiled kernel supports up to {MAX_CLASSES} classes, got {num_classes}")
    n, H, W = lab.shape
    code = _DTYPES[lab.dtype]
    if lib.any_bad(lab.data_ptr(), code, lab.numel(), num_classes, ignore):
        check_values(lab, num_classes, ignore_value)  # names the offending values
    (iy, wy), (ix, wx) = ty, tx
    iy, wy, ix, wx = (np.ascontiguousarray(a) for a in (iy, wy, ix, wx))
    h, ky = iy.shape
    w, kx = ix.shape
    valid = torch.empty(n, h, w, dtype=torch.float32)
    args = [lab.data_ptr(), code, n, H, W, _ptr(iy), _ptr(wy), h, ky, _ptr(ix), _ptr(wx), w, kx,
            num_classes, ignore, int(bool(clamp)), int(top_k or 0)]
    if not sparse:
        # torch.empty + zeroing in C: torch.zeros would wake intra-op threads, which stall for a
        # whole time slice on a loaded machine.
        probs = torch.empty(n, num_classes, h, w, dtype=torch.float32)
        if lib.soft_resize(*args, probs.data_ptr(), valid.data_ptr(), None) != 0:
            raise MemoryError("soft_resize: out of memory for scratch buffers")
        return DenseSoftLabel(probs, valid)
    buf = lib.sp_new(n * h * w)
    if not buf:
        raise MemoryError("soft_resize: out of memory for the sparse buffer")
    try:
        rc = lib.soft_resize(*args, None, valid.data_ptr(), buf)
        if rc != 0 or lib.sp_failed(buf):
            raise MemoryError("soft_resize: out of memory while collecting sparse labels")
        k = max(1, int(lib.sp_max_count(buf)))
        if top_k is not None:
            k = min(k, int(top_k))
        indices = torch.empty(n, k, h, w, dtype=torch.int64)
        weights = torch.empty(n, k, h, w, dtype=torch.float32)
        lib.sp_fill(buf, n, k, h * w, indices.data_ptr(), weights.data_ptr())
    finally:
        lib.sp_free(buf)
    return SparseSoftLabel(indices, weights, valid, num_classes)
