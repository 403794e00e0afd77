"""Pure torch soft resampling (any device): gather the footprint, scatter-add class mass, in row chunks.

This is the reference path: it runs on CUDA tensors and wherever the compiled CPU kernel is
unavailable, and the compiled kernel is tested against it. Memory stays bounded by processing a few
output rows at a time; no full-resolution one-hot tensor is built.
"""
from __future__ import annotations

import torch

# Pixels whose footprint holds less valid mass than this are treated as fully ignored.
VALID_EPS = 1e-6
_CHUNK_ELEMS = 1 << 18


def _rows_per_chunk(n: int, w: int, taps: int, num_classes: int) -> int:
    per_row = max(1, n * w * max(taps, num_classes))
    return max(1, _CHUNK_ELEMS // per_row)


def class_mass(lab: torch.Tensor, iy: torch.Tensor, wy: torch.Tensor, ix: torch.Tensor, wx: torch.Tensor,
               num_classes: int, ignore_value: int):
    """Yields (r0, r1, mass) over output-row chunks; mass float64 (N, r1 - r0, w, C).

    lab (N, H, W) integer; iy/wy (h, Ky) and ix/wx (w, Kx) tap tables on lab's device.
    """
    n = lab.shape[0]
    h, ky = iy.shape
    w, kx = ix.shape
    step = _rows_per_chunk(n, w, ky * kx, num_classes)
    wxx = wx[None, None]
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        g = lab[:, iy[r0:r1, :, None, None], ix[None, None]].long()  # (N, r, Ky, w, Kx)
        wt = (wy[r0:r1, :, None, None] * wxx).expand_as(g)
        ok = (g != ignore_value) & (wt != 0)
        g = torch.where(ok, g, 0).permute(0, 1, 3, 2, 4).reshape(-1, ky * kx)
        wt = torch.where(ok, wt, 0).permute(0, 1, 3, 2, 4).reshape(-1, ky * kx)
        m = torch.zeros(g.shape[0], num_classes, dtype=torch.float64, device=lab.device)
        m.scatter_add_(1, g, wt)
        yield r0, r1, m.view(n, r1 - r0, w, num_classes)


def normalise(mass: torch.Tensor, clamp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """mass (..., C) float64 -> (probs (..., C) float64, valid (...) float64).

    valid = total mass of non-ignore taps (clamp: limited to [0, 1]); probs = mass / valid where
    valid > VALID_EPS, else all zero (and valid = 0). clamp: negative class mass is set to 0 first.
    """
    total = mass.sum(-1)
    if clamp:
        mass = mass.clamp(min=0)
        denom = mass.sum(-1)
        total = total.clamp(0, 1)
    else:
        denom = total
    keep = (total > VALID_EPS) & (denom > 0)
    probs = torch.where(keep[..., None], mass / torch.where(keep, denom, 1)[..., None], 0)
    return probs, torch.where(keep, total, 0)


def top_classes(probs: torch.Tensor, top_k: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """probs (P, C) float64 -> (indices int64 (P, K), weights float64 (P, K)) sorted by weight.

    K = the largest number of non-zero classes of any pixel (>= 1), at most top_k; when a pixel
    keeps fewer classes than it has, its kept weights are renormalised to sum to 1. Ties keep the
    lower class id first; padding entries have index 0 and weight 0.
    """
    nz = probs != 0
    count = nz.sum(-1, keepdim=True)
    k = max(1, int(count.max())) if probs.numel() else 1
    if top_k is not None:
        k = min(k, int(top_k))
    key = torch.where(nz, probs, float("-inf"))
    order = torch.sort(key, dim=-1, descending=True, stable=True).indices[..., :k]
    wts = torch.gather(probs, -1, order)
    idx = torch.where(wts != 0, order, 0)
    if top_k is not None:
        s = wts.sum(-1, keepdim=True)
        lost = (count > k) & (s != 0)
        wts = torch.where(lost, wts / torch.where(lost, s, 1), wts)
    return idx, wts
