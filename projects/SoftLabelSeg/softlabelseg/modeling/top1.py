"""Top-1 labels at full resolution from low-resolution logits, without the (C, H, W) upsampled scores.

Evaluation upsamples the head's logits (C, h, w) to the padded input, crops the padding and upsamples
again to the record's full (H, W) before the argmax; at 65 classes and 2048 x 4096 that is 2 GB of float32
per copy. Both bilinear resizes are linear per axis, so their composition is a small (H, h) and (W, w)
matrix with at most four non-zero taps per row. :func:`fused_top1` applies those taps to bands of output
rows and keeps only the argmax, so memory is one band (about ``max_bytes``) whatever C x H x W.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["axis_matrix", "fused_top1"]


def axis_matrix(n_in: int, padded: int, keep: int, n_out: int, device=None) -> Tensor:
    """(n_out, n_in) weights of: bilinear n_in -> ``padded``, keep the first ``keep``, bilinear -> n_out
    (``align_corners=False``), obtained by running those very ops on the identity."""
    eye = torch.eye(n_in, device=device)[None, :, :, None]  # channel j = unit vector j along H
    x = F.interpolate(eye, size=(padded, 1), mode="bilinear", align_corners=False)[:, :, :keep]
    x = F.interpolate(x, size=(n_out, 1), mode="bilinear", align_corners=False)
    return x[0, :, :, 0].T.contiguous()


def _taps(m: Tensor, k: int = 4) -> tuple[Tensor, Tensor]:
    k = min(k, m.shape[1])
    w, idx = m.abs().topk(k, dim=1)
    return idx, m.gather(1, idx)


def fused_top1(logits: Tensor, padded_size, crop_size, out_size, max_bytes: int = 64 << 20) -> Tensor:
    """argmax over classes of ``resize(resize(logits, padded_size)[:, :crop_h, :crop_w], out_size)``.

    Args:
        logits: (C, h, w) head output for one image (any float dtype; computed in float32).
        padded_size: (Hp, Wp) the padded input the logits were computed on.
        crop_size: (h_img, w_img) the image inside the padding.
        out_size: (H, W) the record's full resolution.
    Returns:
        int64 (H, W) labels; equal to the two-step upsampling's argmax except at near-ties.
    """
    c, h, w = logits.shape
    dev = logits.device
    iy, wy = _taps(axis_matrix(h, int(padded_size[0]), int(crop_size[0]), int(out_size[0]), dev))
    ix, wx = _taps(axis_matrix(w, int(padded_size[1]), int(crop_size[1]), int(out_size[1]), dev))
    logits = logits.float()
    height, width = int(out_size[0]), int(out_size[1])
    out = torch.empty(height, width, dtype=torch.int64, device=dev)
    band = max(1, int(max_bytes) // max(1, c * width * 4 * 3))
    for top in range(0, height, band):
        rows = slice(top, min(top + band, height))
        vert = sum(wy[rows, k][None, :, None] * logits[:, iy[rows, k], :] for k in range(iy.shape[1]))
        full = sum(wx[:, k][None, None, :] * vert[:, :, ix[:, k]] for k in range(ix.shape[1]))
        out[rows] = full.argmax(0)
    return out
