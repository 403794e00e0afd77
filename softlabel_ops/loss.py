"""KL-divergence loss between logits and soft targets, weighted by valid mass (paper eq. 5)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .containers import DenseSoftLabel, SparseSoftLabel

__all__ = ["soft_kl_loss"]


def _xlogx(t: torch.Tensor) -> torch.Tensor:
    pos = t > 0
    return torch.where(pos, t * torch.log(torch.where(pos, t, 1)), 0)


def soft_kl_loss(logits: torch.Tensor, target: DenseSoftLabel | SparseSoftLabel, *, multi_class: bool = True,
                 class_weights: torch.Tensor | None = None, min_valid: float = 0.0,
                 reduction: str = "mean") -> torch.Tensor:
    """KL(target || softmax(logits)) per pixel, weighted by valid mass and class weights.

    logits (N, C, h, w); target batched DenseSoftLabel (N, C, h, w) or SparseSoftLabel (N, K, h, w).
    Pixel i contributes v_i * sum_c a_c t_ic (log t_ic - log p_ic), with v_i its valid mass (0 when
    below min_valid, or when multi_class=False and the pixel is not single-class) and a_c the class
    weights (default 1). reduction "mean" divides by sum_i v_i sum_c a_c t_ic (so one-hot targets give
    exactly F.cross_entropy(weight=a, ignore_index=...)), "sum" returns the numerator, "none" the
    per-pixel terms (N, h, w). With no contributing pixel, "mean" returns 0 (still differentiable).
    Sparse targets gather K log-probabilities per pixel, so their memory does not grow with C.
    Targets with negative entries (unclamped bicubic) contribute their cross-entropy part; 0 log 0 = 0.
    """
    if logits.dim() != 4:
        raise ValueError(f"logits must be (N, C, h, w), got shape {tuple(logits.shape)}")
    if not target.batched:
        raise ValueError("target must be batched (use DenseSoftLabel.stack / SparseSoftLabel.stack)")
    if tuple(target.valid.shape) != (logits.shape[0],) + tuple(logits.shape[2:]):
        raise ValueError(f"target grid {tuple(target.valid.shape)} does not match logits "
                         f"{tuple(logits.shape)}")
    if target.num_classes != logits.shape[1]:
        raise ValueError(f"target has {target.num_classes} classes, logits {logits.shape[1]}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    dtype = torch.promote_types(logits.dtype, torch.float32)
    logp = F.log_softmax(logits.to(dtype), dim=1)
    if isinstance(target, SparseSoftLabel):
        t = target.weights.to(dtype)
        logp_t = torch.gather(logp, 1, target.indices)
        cls = target.indices
    else:
        t = target.probs.to(dtype)
        logp_t = logp
        cls = None
    if class_weights is not None:
        a = class_weights.to(device=logits.device, dtype=dtype)
        a = a[cls] if cls is not None else a.view(1, -1, 1, 1)
        t_w = t * a
    else:
        t_w = t
    # KL = sum_c a_c t_c log t_c - sum_c a_c t_c log p_c; the first term is constant in the logits, so it
    # is reduced without autograd and only one full-size product carries a gradient.
    with torch.no_grad():
        neg_entropy = (_xlogx(t) * a).sum(1) if class_weights is not None else _xlogx(t).sum(1)
    kl = neg_entropy - (t_w * logp_t).sum(1)
    v = target.valid.to(dtype).clamp(min=0)
    keep = v > 0
    if min_valid > 0:
        keep &= v >= min_valid
    if not multi_class:
        keep &= target.single_class_mask()
    v = torch.where(keep, v, 0)
    per_pixel = v * kl
    if reduction == "none":
        return per_pixel
    total = per_pixel.sum()
    if reduction == "sum":
        return total
    norm = (v * t_w.sum(1)).sum()
    return torch.where(norm > 0, total / torch.where(norm > 0, norm, 1), total * 0)
