"""Taps builders: per-axis tables that reproduce each library's resampling kernel exactly.

A builder maps one axis of `in_len` pixels to `out_len` pixels: output index `o` reads the source
indices `idx[o, k]` with weights `w[o, k]` (k < K). Unused taps carry weight 0 (and a valid index), so
tables are rectangular. Every builder a mode registers (modes.REGISTRY) has the signature
``(in_len, out_len, mode, both_down) -> (idx int64 (out_len, K), w float64 (out_len, K))``: `mode` is
the validated modes.Mode (its registry entry and torch flags), `both_down` says that neither axis of
the 2-D resize grows (OpenCV's area filter depends on it). The formulas follow the libraries' sources
(ATen UpSample*, OpenCV imgproc/resize.cpp, Pillow Resample.c / Geometry.c), including their float32
rounding where it changes a nearest index. numpy only (cv2 is imported where a table is read off it).
"""
from __future__ import annotations

import math

import numpy as np


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
    """Two taps (i0, i0 + 1 within the axis) weighted (1 - lam, lam), in lam's float dtype."""
    i0 = i0.astype(np.int64)
    i1 = np.minimum(i0 + 1, in_len - 1)
    return np.stack([i0, i1], 1), np.stack([1.0 - lam, lam], 1)


# ---------------------------------------------------------------- torch (ATen CPU kernels)
def torch_nearest(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
    """'nearest' (top-left grid) or 'nearest-exact' (centred grid), as the mode's registry entry says."""
    exact = mode.spec.grid == "centred"
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


def torch_linear(in_len: int, out_len: int, align_corners: bool = False,
                 dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """ATen's linear interpolation (no antialias) along one axis, the sampling coordinates and weights in
    `dtype` as ATen computes them for a tensor of that dtype (np.float32 for float32 scores)."""
    scale = dtype(_torch_scale(in_len, out_len, align_corners))
    d = np.arange(out_len, dtype=dtype)
    src = scale * d if align_corners else np.maximum(scale * (d + dtype(0.5)) - dtype(0.5), dtype(0))
    i0 = np.minimum(np.floor(src), in_len - 1)
    return _two_tap(i0, np.clip(src - i0, 0, 1), in_len)


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


def triangle(x: float) -> float:
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def keys_cubic(x: float, a: float = -0.5) -> float:
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


def _torch_aa(in_len: int, out_len: int, align_corners: bool, cubic: bool) -> tuple[np.ndarray, np.ndarray]:
    """ATen's separable antialiased kernel (_compute_weights_aa); bicubic uses a = -0.5 here."""
    scale = _torch_scale(in_len, out_len, align_corners)
    return _widened(in_len, out_len, scale, keys_cubic if cubic else triangle, 2.0 if cubic else 1.0)


def _widened(in_len: int, out_len: int, scale: float, filt, support: float) -> tuple[np.ndarray, np.ndarray]:
    """Kernel `filt` of `support` centred on (o + 0.5) * scale, widened by the factor when shrinking,
    each row normalised: ATen's antialiased kernels and Pillow's precompute_coeffs."""
    fscale = max(scale, 1.0)
    support = support * fscale
    inv = 1.0 / fscale
    rows_i, rows_w = [], []
    for o in range(out_len):
        center = (o + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_len)
        j = np.arange(xmin, xmax)
        w = np.array([filt((x - center + 0.5) * inv) for x in j], np.float64)
        tot = w.sum()
        rows_i.append(j)
        rows_w.append(w / tot if tot != 0.0 else w)
    return _pack(rows_i, rows_w)


def torch_bilinear(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
    if mode.antialias:
        return _torch_aa(in_len, out_len, mode.align_corners, cubic=False)
    return torch_linear(in_len, out_len, mode.align_corners)


def torch_bicubic(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
    if mode.antialias:
        return _torch_aa(in_len, out_len, mode.align_corners, cubic=True)
    return _torch_cubic(in_len, out_len, mode.align_corners)


def torch_area(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
    """adaptive_avg_pool: [floor(o*in/out), ceil((o+1)*in/out)) averaged uniformly."""
    rows_i, rows_w = [], []
    for o in range(out_len):
        s = (o * in_len) // out_len
        e = ((o + 1) * in_len + out_len - 1) // out_len
        rows_i.append(np.arange(s, e))
        rows_w.append(np.full(e - s, 1.0 / (e - s)))
    return _pack(rows_i, rows_w)


# ---------------------------------------------------------------- OpenCV (float32 input)
def cv2_nearest(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
    ifx = 1.0 / (out_len / in_len)
    d = np.arange(out_len, dtype=np.float64)
    return _one_tap(np.minimum(np.floor(d * ifx).astype(np.int64), in_len - 1))


def cv2_nearest_exact(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
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


def cv2_linear(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
    return _cv2_linear_like(in_len, out_len, area_mode=False)


def cv2_area(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
    """True area averaging only when neither axis grows; OpenCV's linear-like table on both otherwise."""
    return _cv2_area_down(in_len, out_len) if both_down else _cv2_linear_like(in_len, out_len, area_mode=True)


def cv2_cubic(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
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
def pil_box(x: float) -> float:
    return 1.0 if -0.5 < x <= 0.5 else 0.0


def pil_filter(kernel, support: float):
    """The taps builder of a Pillow filter `kernel(x)` of `support` (Pillow's precompute_coeffs: the
    support is scaled by the factor when down-sampling, each row normalised)."""

    def build(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
        return _widened(in_len, out_len, in_len / out_len, kernel, support)

    return build


def pil_nearest(in_len: int, out_len: int, mode, both_down: bool) -> tuple[np.ndarray, np.ndarray]:
    """ImagingScaleAffine: the source coordinate is accumulated by repeated addition."""
    a = in_len / out_len
    coords = np.empty(out_len, np.float64)
    xo = a * 0.5
    for o in range(out_len):
        coords[o] = xo
        xo += a
    return _one_tap(np.minimum(coords.astype(np.int64), in_len - 1))


