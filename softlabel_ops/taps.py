"""Per-axis tap tables that reproduce each library's resampling kernel exactly.

Every supported mode is separable: output index `o` along an axis reads the source indices
`idx[o, k]` with weights `w[o, k]` (k < K). A 2-D resize is the outer product of the row table and
the column table. Unused taps carry weight 0 (and a valid index), so tables are rectangular.
The formulas follow the libraries' sources (ATen UpSample*, OpenCV imgproc/resize.cpp, Pillow
Resample.c / Geometry.c), including their float32 rounding where it changes a nearest index.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .modes import Mode

__all__ = ["axis_taps", "crop_taps"]


def _pack(rows_idx: list[np.ndarray], rows_w: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    k = max(1, max(len(r) for r in rows_idx))
    idx = np.zeros((len(rows_idx), k), np.int64)
    w = np.zeros((len(rows_idx), k), np.float64)
    for o, (i, ww) in enumerate(zip(rows_idx, rows_w)):
        idx[o, : len(i)] = i
        idx[o, len(i):] = i[-1] if len(i) else 0
        w[o, : len(ww)] = ww
    return idx, w


def _one_tap(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return idx.astype(np.int64)[:, None], np.ones((len(idx), 1), np.float64)


def _two_tap(i0: np.ndarray, lam: np.ndarray, in_len: int) -> tuple[np.ndarray, np.ndarray]:
    i0 = i0.astype(np.int64)
    i1 = np.minimum(i0 + 1, in_len - 1)
    lam = lam.astype(np.float64)
    return np.stack([i0, i1], 1), np.stack([1.0 - lam, lam], 1)


# ---------------------------------------------------------------- torch (ATen CPU kernels)
def _torch_nearest(in_len: int, out_len: int, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    d = np.arange(out_len)
    if not exact and out_len == in_len:
        return _one_tap(d)
    if not exact and out_len == 2 * in_len:
        return _one_tap(d >> 1)
    scale = np.float32(in_len) / np.float32(out_len)  # float32 as in ATen's nearest_idx
    df = d.astype(np.float32) + (np.float32(0.5) if exact else np.float32(0))
    return _one_tap(np.minimum(np.floor(df * scale).astype(np.int64), in_len - 1))


def _torch_scale(in_len: int, out_len: int, align_corners: bool) -> float:
    if align_corners:
        return (in_len - 1) / (out_len - 1) if out_len > 1 else 0.0
    return in_len / out_len


def _torch_linear(in_len: int, out_len: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray]:
    scale = _torch_scale(in_len, out_len, align_corners)
    d = np.arange(out_len, dtype=np.float64)
    src = scale * d if align_corners else np.maximum(scale * (d + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src), in_len - 1)
    return _two_tap(i0, np.clip(src - i0, 0.0, 1.0), in_len)


def _cubic_coeffs(t: np.ndarray, a: float) -> np.ndarray:
    def c1(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def c2(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([c2(t + 1), c1(t), c1(1 - t), c2(2 - t)], 1)


def _torch_cubic(in_len: int, out_len: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray]:
    scale = _torch_scale(in_len, out_len, align_corners)
    d = np.arange(out_len, dtype=np.float64)
    src = scale * d if align_corners else scale * (d + 0.5) - 0.5
    i = np.floor(src)
    idx = np.clip(i[:, None].astype(np.int64) + np.arange(-1, 3)[None], 0, in_len - 1)
    return idx, _cubic_coeffs(src - i, -0.75)


def _aa_linear(x: float) -> float:
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _aa_cubic(x: float, a: float = -0.5) -> float:
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


def _torch_aa(in_len: int, out_len: int, align_corners: bool, cubic: bool) -> tuple[np.ndarray, np.ndarray]:
    """ATen's separable antialiased kernel (_compute_weights_aa); bicubic uses a = -0.5 here."""
    scale = _torch_scale(in_len, out_len, align_corners)
    interp = 4 if cubic else 2
    filt = _aa_cubic if cubic else _aa_linear
    support = interp * 0.5 * scale if scale >= 1.0 else interp * 0.5
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    rows_i, rows_w = [], []
    for o in range(out_len):
        center = scale * (o + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_len)
        j = np.arange(xmin, xmax)
        w = np.array([filt((x - center + 0.5) * invscale) for x in j], np.float64)
        tot = w.sum()
        rows_i.append(j)
        rows_w.append(w / tot if tot != 0.0 else w)
    return _pack(rows_i, rows_w)


def _torch_area(in_len: int, out_len: int) -> tuple[np.ndarray, np.ndarray]:
    """adaptive_avg_pool: [floor(o*in/out), ceil((o+1)*in/out)) averaged uniformly."""
    rows_i, rows_w = [], []
    for o in range(out_len):
        s = (o * in_len) // out_len
        e = ((o + 1) * in_len + out_len - 1) // out_len
        rows_i.append(np.arange(s, e))
        rows_w.append(np.full(e - s, 1.0 / (e - s)))
    return _pack(rows_i, rows_w)


# ---------------------------------------------------------------- OpenCV (float32 input)
def _cv2_nearest(in_len: int, out_len: int) -> tuple[np.ndarray, np.ndarray]:
    ifx = 1.0 / (out_len / in_len)
    d = np.arange(out_len, dtype=np.float64)
    return _one_tap(np.minimum(np.floor(d * ifx).astype(np.int64), in_len - 1))


def _cv2_nearest_exact(in_len: int, out_len: int) -> tuple[np.ndarray, np.ndarray]:
    """INTER_NEAREST_EXACT, read off OpenCV itself: its fixed-point rounding differs between releases, and
    an index ramp (exact in float32 below 2**24) resized by the installed cv2 is that release's answer."""
    import cv2

    if in_len >= 1 << 24:
        raise ValueError(f"cv2:nearest-exact supports axes shorter than 2**24 pixels, got {in_len}")
    ramp = np.arange(in_len, dtype=np.float32)[None, :]
    idx = cv2.resize(ramp, (out_len, 1), interpolation=cv2.INTER_NEAREST_EXACT)[0]
    return _one_tap(np.minimum(idx.astype(np.int64), in_len - 1))


def _cv2_linear_like(in_len: int, out_len: int, area_mode: bool) -> tuple[np.ndarray, np.ndarray]:
    inv_scale = out_len / in_len
    scale = 1.0 / inv_scale
    d = np.arange(out_len, dtype=np.float64)
    if area_mode:  # INTER_AREA when any axis is up-sampled
        sx = np.floor(d * scale)
        fx = ((d + 1) - (sx + 1) * inv_scale).astype(np.float32)
        fx = np.where(fx <= 0, np.float32(0), fx - np.floor(fx))
    else:
        f = ((d + 0.5) * scale - 0.5).astype(np.float32)
        sx = np.floor(f)
        fx = f - sx
    low = sx < 0
    fx = np.where(low, 0, fx)
    sx = np.where(low, 0, sx)
    high = sx >= in_len - 1
    fx = np.where(high, 0, fx)
    sx = np.where(high, in_len - 1, sx)
    idx, _ = _two_tap(sx, fx, in_len)
    fx = fx.astype(np.float32)
    return idx, np.stack([(np.float32(1) - fx).astype(np.float64), fx.astype(np.float64)], 1)


def _cv2_cubic(in_len: int, out_len: int) -> tuple[np.ndarray, np.ndarray]:
    scale = 1.0 / (out_len / in_len)
    d = np.arange(out_len, dtype=np.float64)
    f = ((d + 0.5) * scale - 0.5).astype(np.float32)
    sx = np.floor(f)
    t = (f - sx).astype(np.float32)
    idx = np.clip(sx[:, None].astype(np.int64) + np.arange(-1, 3)[None], 0, in_len - 1)
    a = np.float32(-0.75)
    c0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    c1 = ((a + 2) * t - (a + 3)) * t * t + 1
    c2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    c3 = np.float32(1) - c0 - c1 - c2
    return idx, np.stack([c0, c1, c2, c3], 1).astype(np.float64)


def _cv2_area_down(in_len: int, out_len: int) -> tuple[np.ndarray, np.ndarray]:
    """computeResizeAreaTab (also the integer-factor fast path, which it equals)."""
    scale = in_len / out_len
    rows_i, rows_w = [], []
    for dx in range(out_len):
        fsx1 = dx * scale
        fsx2 = fsx1 + scale
        cell = min(scale, in_len - fsx1)
        sx1, sx2 = math.ceil(fsx1), math.floor(fsx2)
        sx2 = min(sx2, in_len - 1)
        sx1 = min(sx1, sx2)
        ii, ww = [], []
        if sx1 - fsx1 > 1e-3:
            ii.append(sx1 - 1)
            ww.append(float(np.float32((sx1 - fsx1) / cell)))
        for sx in range(sx1, sx2):
            ii.append(sx)
            ww.append(float(np.float32(1.0 / cell)))
        if fsx2 - sx2 > 1e-3:
            ii.append(sx2)
            ww.append(float(np.float32(min(min(fsx2 - sx2, 1.0), cell) / cell)))
        rows_i.append(np.array(ii, np.int64))
        rows_w.append(np.array(ww, np.float64))
    return _pack(rows_i, rows_w)


# ---------------------------------------------------------------- Pillow (mode "F")
def _pil_filter(name: str):
    if name == "box":
        return (lambda x: 1.0 if -0.5 < x <= 0.5 else 0.0), 0.5
    if name == "bilinear":
        return _aa_linear, 1.0
    return _aa_cubic, 2.0


def _pil_resample(in_len: int, out_len: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's precompute_coeffs: support scaled by the factor when down-sampling."""
    filt, base_support = _pil_filter(name)
    scale = in_len / out_len
    fscale = max(scale, 1.0)
    support = base_support * fscale
    ss = 1.0 / fscale
    rows_i, rows_w = [], []
    for o in range(out_len):
        center = (o + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_len)
        j = np.arange(xmin, xmax)
        w = np.array([filt((x - center + 0.5) * ss) for x in j], np.float64)
        tot = w.sum()
        rows_i.append(j)
        rows_w.append(w / tot if tot != 0.0 else w)
    return _pack(rows_i, rows_w)


def _pil_nearest(in_len: int, out_len: int) -> tuple[np.ndarray, np.ndarray]:
    """ImagingScaleAffine: the source coordinate is accumulated by repeated addition."""
    a = in_len / out_len
    coords = np.empty(out_len, np.float64)
    xo = a * 0.5
    for o in range(out_len):
        coords[o] = xo
        xo += a
    return _one_tap(np.minimum(coords.astype(np.int64), in_len - 1))


# ---------------------------------------------------------------- entry points
@lru_cache(maxsize=256)
def axis_taps(mode: Mode, in_len: int, out_len: int, both_down: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Tap table of one axis: (idx int64 (out_len, K), w float64 (out_len, K)), read-only.

    `both_down` matters for cv2:area only: OpenCV uses true area averaging only when neither axis is
    up-sampled, and a 2-tap linear-like table on both axes otherwise.
    """
    if in_len < 1 or out_len < 1:
        raise ValueError(f"sizes must be positive, got in={in_len}, out={out_len}")
    name = mode.name
    if name in ("torch:nearest", "torch:nearest-exact"):
        idx, w = _torch_nearest(in_len, out_len, exact=name.endswith("exact"))
    elif name == "torch:area":
        idx, w = _torch_area(in_len, out_len)
    elif name in ("torch:bilinear", "torch:bicubic"):
        cubic = name.endswith("bicubic")
        if mode.antialias:
            idx, w = _torch_aa(in_len, out_len, mode.align_corners, cubic)
        elif cubic:
            idx, w = _torch_cubic(in_len, out_len, mode.align_corners)
        else:
            idx, w = _torch_linear(in_len, out_len, mode.align_corners)
    elif name == "cv2:nearest":
        idx, w = _cv2_nearest(in_len, out_len)
    elif name == "cv2:nearest-exact":
        idx, w = _cv2_nearest_exact(in_len, out_len)
    elif name == "cv2:linear":
        idx, w = _cv2_linear_like(in_len, out_len, area_mode=False)
    elif name == "cv2:area":
        idx, w = _cv2_area_down(in_len, out_len) if both_down else _cv2_linear_like(in_len, out_len, True)
    elif name == "cv2:cubic":
        idx, w = _cv2_cubic(in_len, out_len)
    elif name == "pil:nearest":
        idx, w = _pil_nearest(in_len, out_len)
    else:
        idx, w = _pil_resample(in_len, out_len, name.split(":")[1])
    idx = np.ascontiguousarray(idx, np.int64)
    w = np.ascontiguousarray(w, np.float64)
    idx.flags.writeable = False
    w.flags.writeable = False
    return idx, w


def crop_taps(idx: np.ndarray, w: np.ndarray, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows [start, start + length) of a table; rows outside it get weight 0 (padding)."""
    out_len, k = idx.shape
    cidx = np.zeros((length, k), np.int64)
    cw = np.zeros((length, k), np.float64)
    lo, hi = max(start, 0), min(start + length, out_len)
    if hi > lo:
        cidx[lo - start: hi - start] = idx[lo:hi]
        cw[lo - start: hi - start] = w[lo:hi]
    return cidx, cw
