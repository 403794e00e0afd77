"""Per-axis tap tables of a validated mode (its registry entry's builder, cached and read-only), and
their application to numpy arrays.

Every supported mode is separable: output index `o` along an axis reads the source indices
`idx[o, k]` with weights `w[o, k]` (k < K). A 2-D resize is the outer product of the row table and
the column table. The builders themselves are in softlabel_ops.filters. numpy only: the ONNX runner
upsamples its scores with these tables.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .modes import Mode

__all__ = ["apply_taps", "axis_taps", "crop_taps"]


@lru_cache(maxsize=256)
def axis_taps(mode: Mode, in_len: int, out_len: int, both_down: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Tap table of one axis: (idx int64 (out_len, K), w float64 (out_len, K)), read-only.

    `both_down` matters for cv2:area only: OpenCV uses true area averaging only when neither axis is
    up-sampled, and a 2-tap linear-like table on both axes otherwise.
    """
    if in_len < 1 or out_len < 1:
        raise ValueError(f"sizes must be positive, got in={in_len}, out={out_len}")
    idx, w = mode.spec.taps(in_len, out_len, mode, both_down)
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


def apply_taps(array: np.ndarray, idx: np.ndarray, w: np.ndarray, axis: int) -> np.ndarray:
    """`array` resampled along `axis` with one axis' table: out[.., o, ..] = sum_k array[.., idx[o, k], ..]
    * w[o, k], the taps added in order, in numpy's promotion of the array's and the weights' dtypes."""
    shape = [1] * array.ndim
    shape[axis] = -1
    out = array.take(idx[:, 0], axis) * w[:, 0].reshape(shape)
    for k in range(1, idx.shape[1]):
        out += array.take(idx[:, k], axis) * w[:, k].reshape(shape)
    return out
