"""Supersampled drawing canvas and pinhole camera for the ToyCity renderer.

Shapes are drawn by the painter's algorithm into a colour buffer and a class buffer at ``ss`` times the
output resolution. The output image is the box average of the colour buffer (anti-aliased edges, like a
camera integrating over each pixel); the output label is the majority class of each ``ss x ss`` block
(the argmax of the class coverage at the full-resolution grid).
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["Camera", "Canvas", "IGNORE"]

IGNORE = 255


class Camera:
    """Pinhole camera over a flat street. World: X right, Y up, Z forward (metres), camera at height ``h``.

    A world point projects to ``x = cx + f * (X - x0) / Z``, ``y = horizon + f * (h - Y) / Z``.
    """

    def __init__(self, f: float, cx: float, horizon: float, h: float = 1.5, x0: float = 0.0):
        self.f, self.cx, self.horizon, self.h, self.x0 = f, cx, horizon, h, x0

    def project(self, X, Y, Z) -> np.ndarray:
        """(..., 2) image points (x, y) in output pixels for broadcastable X, Y, Z (Z > 0)."""
        Z = np.asarray(Z, float)
        x = self.cx + self.f * (np.asarray(X, float) - self.x0) / Z
        y = self.horizon + self.f * (self.h - np.asarray(Y, float)) / Z
        out = np.empty(np.broadcast_shapes(x.shape, y.shape) + (2,))
        out[..., 0], out[..., 1] = x, y
        return out

    def scale(self, Z: float) -> float:
        """Pixels per metre for a flat object at depth ``Z``."""
        return self.f / Z


class Canvas:
    """Paired colour / class buffers at ``ss`` x the output size ``(height, width)``.

    All coordinates passed in are in OUTPUT pixels (floats); the canvas scales them.
    """

    def __init__(self, height: int, width: int, ss: int = 4):
        self.height, self.width, self.ss = height, width, ss
        self.color = np.zeros((height * ss, width * ss, 3), np.uint8)
        self.label = np.full((height * ss, width * ss), IGNORE, np.uint8)

    def _pts(self, pts) -> np.ndarray:
        """Output-pixel floats (..., 2) -> supersampled int32 points (depths >= 0.5 m keep them bounded)."""
        return np.rint(np.asarray(pts, np.float64) * self.ss).astype(np.int32)

    def poly(self, pts, cls: int | None, color) -> None:
        """Fill a polygon (N, 2). ``cls=None`` paints colour only (markings, windows keep the class below)."""
        p = [self._pts(pts).reshape(-1, 2)]
        cv2.fillPoly(self.color, p, _c(color))
        if cls is not None:
            cv2.fillPoly(self.label, p, int(cls))

    def polys(self, polys, cls: int | None, color) -> None:
        """Fill many polygons (an (n, m, 2) array or a list of (m_i, 2)) with one colour / class."""
        if len(polys):
            p = list(self._pts(polys)) if isinstance(polys, np.ndarray) else [self._pts(q) for q in polys]
            cv2.fillPoly(self.color, p, _c(color))
            if cls is not None:
                cv2.fillPoly(self.label, p, int(cls))

    def line(self, p0, p1, width: float, cls: int | None, color) -> None:
        """A straight bar of ``width`` output pixels (sub-pixel widths allowed) from ``p0`` to ``p1``."""
        p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
        d = p1 - p0
        n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-6) * (width / 2)
        self.poly([p0 + n, p1 + n, p1 - n, p0 - n], cls, color)

    def ellipse(self, center, axes, cls: int | None, color, angle: float = 0.0, thickness: float = -1):
        """Filled ellipse, or a ring of ``thickness`` output pixels when ``thickness > 0``."""
        c = tuple(int(round(v * self.ss)) for v in center)
        a = tuple(max(int(round(v * self.ss)), 1) for v in axes)
        t = -1 if thickness < 0 else max(int(round(thickness * self.ss)), 1)
        cv2.ellipse(self.color, c, a, angle, 0, 360, _c(color), t)
        if cls is not None:
            cv2.ellipse(self.label, c, a, angle, 0, 360, int(cls), t)

    def shade(self, pts, factor: float) -> None:
        """Multiply the colour inside a polygon by ``factor`` (shadows); the class is unchanged."""
        p = self._pts(pts).reshape(-1, 2)
        x0, y0 = np.maximum(p.min(0), 0)
        x1, y1 = np.minimum(p.max(0) + 1, (self.color.shape[1], self.color.shape[0]))
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [p - (x0, y0)], 1)
        roi = self.color[y0:y1, x0:x1]
        np.copyto(roi, cv2.convertScaleAbs(roi, alpha=factor), where=mask[..., None].astype(bool))

    def fill_rows(self, y0: float, y1: float, colors: np.ndarray, cls: int) -> None:
        """Fill output rows [y0, y1) with per-row colours ``(rows_ss, 3)`` (gradients), class ``cls``."""
        a, b = int(round(y0 * self.ss)), int(round(y1 * self.ss))
        a, b = max(a, 0), min(b, self.label.shape[0])
        if b > a:
            cv2.resize(np.ascontiguousarray(colors[a:b, None, :]), (self.color.shape[1], b - a),
                       dst=self.color[a:b], interpolation=cv2.INTER_NEAREST)
            self.label[a:b] = cls

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """-> (image float32 (H, W, 3) box-averaged, label uint8 (H, W) majority class per block)."""
        image = cv2.resize(self.color, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return image.astype(np.float32), block_majority(self.label, self.ss)


def block_majority(label: np.ndarray, ss: int) -> np.ndarray:
    """Most frequent value of each ``ss x ss`` block of ``label`` (H*ss, W*ss) -> (H, W).

    Ties go to the value at the block's centre sample, so thin structures drawn last are not biased away.
    """
    H, W = label.shape[0] // ss, label.shape[1] // ss
    blocks = label.reshape(H, ss, W, ss).transpose(0, 2, 1, 3).reshape(H, W, ss * ss)
    out = blocks[..., 0].copy()
    mixed = ~(blocks == out[..., None]).all(-1)
    vals = blocks[mixed]  # (M, ss*ss)
    if vals.size:
        uniq, inv = np.unique(vals, return_inverse=True)
        inv = inv.reshape(vals.shape)
        m, u = vals.shape[0], uniq.size
        flat = (np.arange(m)[:, None] * u + inv).ravel()
        counts = 2 * np.bincount(flat, minlength=m * u).reshape(m, u)
        centre = (ss // 2) * ss + ss // 2
        counts[np.arange(m), inv[:, centre]] += 1
        out[mixed] = uniq[counts.argmax(1)]
    return out


def _c(color) -> tuple:
    return tuple(int(v) for v in np.clip(np.asarray(color, float), 0, 255))
