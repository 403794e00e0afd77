"""soft_resize / hard_resize: label maps to soft (or nearest) labels with an image filter's geometry."""
from __future__ import annotations

import numpy as np
import torch

from . import native, torch_kernel
from .containers import DenseSoftLabel, SparseSoftLabel
from .labels import as_label_tensor, check_values, crop_window, output_size
from .modes import DEFAULT_MODE, nearest_of, parse_mode
from .taps import axis_taps, crop_taps

__all__ = ["soft_resize", "hard_resize", "window_taps"]

# Stand-in for "no ignore value": no integer label can equal it.
_NO_IGNORE = -(1 << 62)


def window_taps(mode, in_hw: tuple[int, int], size: tuple[int, int], window: tuple[int, int, int, int]):
    """Row and column tap tables (numpy idx int64, w float64) of `window` = (top, left, height, width)."""
    (H, W), (h, w) = in_hw, size
    both_down = h <= H and w <= W
    top, left, ch, cw = window
    ty = crop_taps(*axis_taps(mode, H, h, both_down), top, ch)
    tx = crop_taps(*axis_taps(mode, W, w, both_down), left, cw)
    return ty, tx


def _to_torch(table: tuple[np.ndarray, np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(table[0]).to(device), torch.from_numpy(table[1]).to(device)


def soft_resize(label, num_classes: int, size=None, scale=None, mode: str = DEFAULT_MODE, *,
                align_corners: bool = False, antialias: bool = False, ignore_value: int | None = 255,
                crop=None, sparse: bool = False, top_k: int | None = None, clamp: bool = False,
                backend: str = "auto") -> DenseSoftLabel | SparseSoftLabel:
    """Resizes an integer label map into soft labels: `mode` applied to its one-hot encoding.

    label: (H, W) or (N, H, W) integer numpy array / torch tensor (uint8, int16, int32, int64).
    size (h, w) or scale (float or (sy, sx); size = floor(in * scale)) gives the whole resized map;
    crop = (top, left, height, width) computes only that window of it (pixels past the map: valid 0).
    Returns DenseSoftLabel (C, h, w) or, with sparse=True, SparseSoftLabel (K, h, w) (top_k caps K and
    renormalises pixels that lose classes); a leading N for batched input; on the label's device.

    Per pixel, the mass of class c is the summed kernel weight of the footprint taps labelled c;
    valid = summed weight of the non-ignore taps; probs = mass / valid (zero where valid <= 1e-6).
    So probs * valid equals the library's resize of the one-hot planes. For negative-lobe kernels
    (bicubic) probs may leave [0, 1] and valid may exceed 1; clamp=True zeroes negative mass,
    renormalises and clamps valid to [0, 1].
    backend: "auto" (compiled CPU kernel when available), "torch" (pure torch), "native" (compiled).
    """
    m = parse_mode(mode, align_corners, antialias)
    lab, batched = as_label_tensor(label)
    n, H, W = lab.shape
    h, w = output_size((H, W), size, scale)
    window = crop_window((h, w), crop)
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    ignore = _NO_IGNORE if ignore_value is None else int(ignore_value)
    ty, tx = window_taps(m, (H, W), (h, w), window)
    on_cpu = lab.device.type == "cpu"
    if backend not in ("auto", "torch", "native"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'native', got {backend!r}")
    if backend == "native" and not on_cpu:
        raise ValueError(f"the compiled kernel runs on CPU labels only, got a {lab.device.type} tensor")
    fits = num_classes <= native.MAX_CLASSES
    use_native = backend == "native" or (backend == "auto" and on_cpu and fits and native.available())
    if use_native:
        out = native.soft_resize(lab, ty, tx, num_classes, ignore, ignore_value, sparse, top_k, clamp)
    else:
        check_values(lab, num_classes, ignore_value)
        out = _soft_resize_torch(lab, ty, tx, num_classes, ignore, sparse, top_k, clamp)
    if not batched:
        out = _unbatch(out)
    return out


def _soft_resize_torch(lab, ty, tx, num_classes, ignore, sparse, top_k, clamp):
    tk = torch_kernel
    iy, wy = _to_torch(ty, lab.device)
    ix, wx = _to_torch(tx, lab.device)
    n, ch, cw = lab.shape[0], iy.shape[0], ix.shape[0]
    first, uniform = tk.uniform_labels(lab, iy, ix)
    single = uniform & (first != ignore)
    mass = tk.seq_sum(wy)[:, None] * tk.seq_sum(wx)[None, :]
    keep, valid = tk.single_class(mass.expand(n, ch, cw), clamp)
    keep &= single
    valid = torch.where(keep, valid, 0).float()
    cls = torch.where(keep, first, 0).unsqueeze(1)
    one = keep.unsqueeze(1).float()
    mixed = torch.nonzero((~uniform).flatten()).flatten()
    chunks = tk.mixed_chunks(lab, iy, wy, ix, wx, num_classes, ignore, mixed)
    if not sparse:
        probs = torch.zeros(n, num_classes, ch, cw, dtype=torch.float32, device=lab.device)
        probs.scatter_(1, cls, one)
        for m, (ni, yi, xi) in chunks:
            p, v = tk.normalise(m, clamp)
            probs[ni, :, yi, xi] = p.float()
            valid[ni, yi, xi] = v.float()
        return DenseSoftLabel(probs, valid)
    parts = []
    for m, where in chunks:
        p, v = tk.normalise(m, clamp)
        valid[where] = v.float()
        parts.append((tk.top_classes(p, top_k), where))
    k = max([1] + [idx.shape[1] for (idx, _), _ in parts])
    indices = torch.zeros(n, k, ch, cw, dtype=torch.int64, device=lab.device)
    weights = torch.zeros(n, k, ch, cw, dtype=torch.float32, device=lab.device)
    indices[:, :1] = cls
    weights[:, :1] = one
    for (idx, wts), (ni, yi, xi) in parts:
        indices[ni, : idx.shape[1], yi, xi] = idx
        weights[ni, : idx.shape[1], yi, xi] = wts.float()
    return SparseSoftLabel(indices, weights, valid, num_classes)


def _unbatch(out):
    if isinstance(out, DenseSoftLabel):
        return DenseSoftLabel(out.probs[0], out.valid[0])
    return SparseSoftLabel(out.indices[0], out.weights[0], out.valid[0], out.num_classes)


def hard_resize(label, size, mode: str = "torch:nearest-exact", *, grid: str = "centred", crop=None,
                ignore_value: int = 255) -> torch.Tensor:
    """Nearest-neighbour label resize paired with image filter `mode` (the hard-label baseline).

    label (H, W) / (N, H, W) integer numpy or torch; size (h, w) of the whole map; crop as in
    soft_resize, pixels past the map get `ignore_value`. A non-nearest mode selects its library's nearest
    filter on `grid`: "centred" samples the cell centres the image filter uses ("cv2:linear" ->
    "cv2:nearest-exact"), "top-left" the misaligned corner ("cv2:linear" -> "cv2:nearest"); see
    ``modes.nearest_of``. A nearest mode is used as it is. Returns int64 (h, w) / (N, h, w).
    """
    m = parse_mode(nearest_of(mode, grid))
    lab, batched = as_label_tensor(label)
    n, H, W = lab.shape
    h, w = output_size((H, W), size)
    (iy, wy), (ix, wx) = (_to_torch(t, lab.device) for t in window_taps(m, (H, W), (h, w),
                                                                          crop_window((h, w), crop)))
    out = lab.index_select(1, iy[:, 0]).index_select(2, ix[:, 0]).long()
    rows_out, cols_out = wy[:, 0] == 0, wx[:, 0] == 0
    if bool(rows_out.any()) or bool(cols_out.any()):  # crop window past the map
        out[:, rows_out] = ignore_value
        out[:, :, cols_out] = ignore_value
    return out if batched else out[0]
