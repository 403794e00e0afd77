"""Pure torch soft resampling (any device), mirroring the compiled CPU kernel step for step.

This is the reference path: it runs on CUDA tensors and wherever the compiled kernel is unavailable,
and the compiled kernel is tested against it. Most output pixels see a single label in their whole
footprint; they are found with Ky * Kx vectorised compares and emitted directly (their mass is the
footprint's total weight). Only the remaining "mixed" pixels gather their taps and scatter-add class
mass (float64, in tap order), in chunks, so memory stays near the output size. No full-resolution
one-hot is ever built.
"""
from __future__ import annotations

import torch

# Pixels whose footprint holds less valid mass than this are treated as fully ignored.
VALID_EPS = 1e-6
_CHUNK_BYTES = 4 << 20


def seq_sum(w: torch.Tensor) -> torch.Tensor:
    """Row sums of a (L, K) table, added left to right like the compiled kernel."""
    s = w[:, 0].clone()
    for k in range(1, w.shape[1]):
        s += w[:, k]
    return s


def uniform_labels(lab: torch.Tensor, iy: torch.Tensor, ix: torch.Tensor):
    """First footprint label (N, h, w) and whether every tap of the footprint holds it (bool (N, h, w))."""
    first = lab.index_select(1, iy[:, 0]).index_select(2, ix[:, 0])
    mixed = torch.zeros(first.shape, dtype=torch.bool, device=lab.device)
    for a in range(iy.shape[1]):
        rows = lab.index_select(1, iy[:, a])
        for b in range(ix.shape[1]):
            mixed |= rows.index_select(2, ix[:, b]) != first
    return first.long(), ~mixed


def mixed_mass(lab, iy, wy, ix, wx, num_classes: int, ignore_value: int, flat: torch.Tensor):
    """Class mass float64 (P, C) of the output pixels `flat` (indices into N*h*w), taps added in order."""
    h, w = iy.shape[0], ix.shape[0]
    n_i, rest = flat // (h * w), flat % (h * w)
    y_i, x_i = rest // w, rest % w
    g = lab[n_i[:, None, None], iy[y_i][:, :, None], ix[x_i][:, None, :]].long().flatten(1)  # (P, Ky*Kx)
    wt = (wy[y_i][:, :, None] * wx[x_i][:, None, :]).flatten(1)
    g = torch.where(g == ignore_value, num_classes, g)
    acc = torch.zeros(flat.shape[0], num_classes + 1, dtype=torch.float64, device=lab.device)
    acc.scatter_add_(1, g, wt)
    return acc[:, :num_classes], (n_i, y_i, x_i)


def mixed_chunks(lab, iy, wy, ix, wx, num_classes: int, ignore_value: int, mixed_flat: torch.Tensor):
    """Yields (mass (P, C), (n, y, x) index tensors) for the mixed pixels, in bounded-memory chunks."""
    per_pixel = 16 * iy.shape[1] * ix.shape[1] + 24 * (num_classes + 1)
    step = max(1024, _CHUNK_BYTES // per_pixel)
    for s in range(0, mixed_flat.shape[0], step):
        yield mixed_mass(lab, iy, wy, ix, wx, num_classes, ignore_value, mixed_flat[s: s + step])


def single_class(mass: torch.Tensor, clamp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """normalise() for pixels holding one class with `mass` (float64): (keep bool, valid float64)."""
    total = mass.clamp(0, 1) if clamp else mass
    keep = (total > VALID_EPS) & (mass > 0)
    return keep, torch.where(keep, total, 0)


def normalise(mass: torch.Tensor, clamp: bool, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """mass float64 with classes along `dim` -> (probs float64 same shape, valid float64 without `dim`).

    valid = total mass of non-ignore taps (clamp: limited to [0, 1]); probs = mass / valid where
    valid > VALID_EPS, else all zero (and valid = 0). clamp: negative class mass is set to 0 first.
    """
    total = mass.sum(dim)
    if clamp:
        mass = mass.clamp(min=0)
        denom = mass.sum(dim)
        total = total.clamp(0, 1)
    else:
        denom = total
    keep = (total > VALID_EPS) & (denom > 0)
    probs = torch.where(keep.unsqueeze(dim), mass / torch.where(keep, denom, 1).unsqueeze(dim), 0)
    return probs, torch.where(keep, total, 0)


def top_classes(probs: torch.Tensor, top_k: int | None, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """probs float64 with classes along `dim` -> (indices int64, weights float64) with K along `dim`.

    Entries are sorted by decreasing weight, ties keeping the lower class id first. K = the largest
    number of non-zero classes of any pixel (>= 1), at most top_k; a pixel that keeps fewer classes
    than it has gets its kept weights renormalised to sum to 1. Padding entries: index 0, weight 0.
    """
    nz = probs != 0
    count = nz.sum(dim, keepdim=True)
    k = max(1, int(count.max())) if probs.numel() else 1
    if top_k is not None:
        k = min(k, int(top_k))
    key = torch.where(nz, probs, float("-inf"))
    idx, wts = [], []
    for _ in range(k):  # argmax returns the first (lowest) class among equal weights
        best = key.argmax(dim, keepdim=True)
        val = torch.gather(key, dim, best)
        found = val != float("-inf")
        idx.append(torch.where(found, best, 0))
        wts.append(torch.where(found, val, 0))
        key = key.scatter(dim, best, float("-inf"))
    idx, wts = torch.cat(idx, dim), torch.cat(wts, dim)
    if top_k is not None:
        s = wts.sum(dim, keepdim=True)
        lost = (count > k) & (s != 0)
        wts = torch.where(lost, wts / torch.where(lost, s, 1), wts)
    return idx, wts
