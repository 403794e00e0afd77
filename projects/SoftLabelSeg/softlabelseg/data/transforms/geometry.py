"""One random geometry per sample, applied to the image and its label alike.

The geometry is expressed on the grid of the *whole* resized map: ``size`` = the resized map (training
factor x random scale), ``window`` = the crop ``(top, left, height, width)`` of that grid (it may extend
past the bottom/right border: padding), ``flip`` = horizontal flip of the crop. The label path hands
``size`` and ``window`` straight to ``softlabel_ops`` (crop-aware: the whole resized label is never built).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Geometry", "crop_pad_image", "sample_geometry", "scaled_size"]


@dataclass(frozen=True)
class Geometry:
    size: tuple[int, int]  # (h, w) of the whole resized map
    window: tuple[int, int, int, int]  # (top, left, height, width) on that grid
    flip: bool


def scaled_size(hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """(round(H * scale), round(W * scale)), at least 1 x 1."""
    return max(int(round(hw[0] * scale)), 1), max(int(round(hw[1] * scale)), 1)


def sample_geometry(rng: np.random.Generator, in_hw: tuple[int, int], factor: float,
                    scale_range: tuple[float, float] = (1.0, 1.0), crop_size: tuple[int, int] | None = None,
                    flip_prob: float = 0.0) -> Geometry:
    """Random rescale of the ``factor``-resized map, a random crop of ``crop_size`` (pad bottom/right when
    the map is smaller), and a flip with probability ``flip_prob``.

    Args:
        in_hw: (H, W) of the full-resolution sample.
        factor: training-resolution factor (1, 1/2, 1/4, 1/8) relative to the full resolution.
        scale_range: (lo, hi) of the uniform random rescale on top of ``factor`` (paper: 0.5-2.0).
        crop_size: (ch, cw) on the training grid; None keeps the whole resized map.
    """
    lo, hi = scale_range
    s = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    h, w = scaled_size(in_hw, factor * s)
    if crop_size is None:
        window = (0, 0, h, w)
    else:
        ch, cw = int(crop_size[0]), int(crop_size[1])
        top = int(rng.integers(0, h - ch + 1)) if h > ch else 0
        left = int(rng.integers(0, w - cw + 1)) if w > cw else 0
        window = (top, left, ch, cw)
    flip = bool(flip_prob > 0 and rng.random() < flip_prob)
    return Geometry((h, w), window, flip)


def crop_pad_image(image: np.ndarray, window, pad_value=0) -> np.ndarray:
    """``image[top:top+h, left:left+w]`` of an (H, W, C) array; pixels past the border get ``pad_value``."""
    top, left, h, w = window
    H, W = image.shape[:2]
    if top == 0 and left == 0 and (h, w) == (H, W):
        return image
    out = np.empty((h, w) + image.shape[2:], image.dtype)
    out[...] = np.asarray(pad_value, image.dtype)
    y0, y1, x0, x1 = max(top, 0), min(top + h, H), max(left, 0), min(left + w, W)
    if y1 > y0 and x1 > x0:
        out[y0 - top: y1 - top, x0 - left: x1 - left] = image[y0:y1, x0:x1]
    return out
