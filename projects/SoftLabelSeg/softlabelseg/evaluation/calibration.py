"""A decision rule for thin classes: per-class logit offsets that match the predicted class shares to the
label shares (prior matching), fitted on training images and applied unchanged at evaluation.

Why: a soft label keeps a thin class's mass but spreads it; a 2-pixel pole in an 8-pixel cell carries about
a quarter of the cell, so a model trained on those targets rarely makes it the argmax, and the class
shrinks at full resolution although the model "knows" it is there. An offset ``b_c`` added to class c's
logits moves the decision boundary without touching the geometry: ``argmax_c(up(logits)_c + b_c)``, with
``up`` the bilinear up-sampling the evaluator uses (offsets commute with it: its weights sum to one).

The offsets are found by fixed-point steps ``b_c += step * clip(log share_c(labels) - log share_c(pred))`` on
full-resolution predictions of training images; validation images are never used for fitting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CachedPredictions", "cache_predictions", "fit_prior_bias", "confusion_with_bias"]

_EPS = 1e-6


@dataclass
class CachedPredictions:
    """Logits at the model's input grid, ``(C, h, w)`` float32 each, and full-resolution labels
    ``(H, W)`` uint8/int64 (values >= C are ignored)."""

    logits: list[torch.Tensor]
    labels: list[torch.Tensor]
    num_classes: int

    def predict(self, i: int, bias: torch.Tensor) -> torch.Tensor:
        """Full-resolution prediction (H, W) int64 of image ``i`` with ``bias`` (C,) added."""
        lg = (self.logits[i] + bias[:, None, None])[None]
        return F.interpolate(lg, self.labels[i].shape, mode="bilinear", align_corners=False)[0].argmax(0)


@torch.no_grad()
def cache_predictions(model, loader, max_images: int | None = None) -> CachedPredictions:
    """Runs ``model.forward_logits`` on the test loader's images (eval mapper: image at the test factor,
    label at full resolution) and keeps logits and labels for repeated decisions."""
    model.eval()
    logits, labels = [], []
    for batch in loader:
        for x in batch:
            image = x["image"][None].to(model.device)
            logits.append(model.forward_logits(image)[0].float().cpu())
            labels.append(x["sem_seg"].to(torch.uint8 if int(x["sem_seg"].max()) < 256 else torch.int64))
        if max_images and len(logits) >= max_images:
            break
    return CachedPredictions(logits, labels, int(logits[0].shape[0]))


def _shares(counts: torch.Tensor) -> torch.Tensor:
    return counts.double() / counts.sum().clamp(min=1)


def _label_counts(cache: CachedPredictions) -> torch.Tensor:
    C = cache.num_classes
    total = torch.zeros(C, dtype=torch.int64)
    for lab in cache.labels:
        flat = lab.flatten().long()
        total += torch.bincount(flat[flat < C], minlength=C)[:C]
    return total


def _pred_counts(cache: CachedPredictions, bias: torch.Tensor) -> torch.Tensor:
    C = cache.num_classes
    total = torch.zeros(C, dtype=torch.int64)
    for i, lab in enumerate(cache.labels):
        pred = cache.predict(i, bias).flatten()
        total += torch.bincount(pred[lab.flatten().long() < C], minlength=C)[:C]
    return total


def fit_prior_bias(cache: CachedPredictions, iters: int = 12, step: float = 0.5,
                   max_abs: float = 5.0) -> tuple[torch.Tensor, list[float]]:
    """Offsets (C,) float32 that match predicted to label class shares on ``cache`` (valid pixels).

    Offsets of the classes present in the labels have mean 0; absent classes keep 0. Returns the offsets
    with the smallest mismatch seen and the mismatch (mean |log share ratio|) of every step.
    """
    C = cache.num_classes
    target = _shares(_label_counts(cache))
    present = target > 0
    bias = torch.zeros(C, dtype=torch.float32)
    best, best_err, history = bias, math.inf, []
    for k in range(iters):
        pred = _shares(_pred_counts(cache, bias))
        ratio = torch.log(target + _EPS) - torch.log(pred + _EPS)
        ratio[~present] = 0
        err = float(ratio[present].abs().mean())
        history.append(err)
        if err < best_err:
            best, best_err = bias, err
        # a class predicted nowhere moves one clipped step; the step shrinks so the discrete argmax settles
        bias = bias + step / math.sqrt(k + 1) * ratio.float().clamp(-1.0, 1.0)
        bias[present] -= bias[present].mean()  # only differences matter; keep them centred on 0
        bias = bias.clamp(-max_abs, max_abs)
    return best, history


def confusion_with_bias(cache: CachedPredictions, bias: torch.Tensor | None = None) -> np.ndarray:
    """(C, C) confusion (rows: ground truth) of the full-resolution predictions with ``bias``."""
    C = cache.num_classes
    bias = torch.zeros(C) if bias is None else bias
    conf = torch.zeros(C * C, dtype=torch.int64)
    for i, lab in enumerate(cache.labels):
        pred = cache.predict(i, bias).flatten()
        gt = lab.flatten().long()
        keep = gt < C
        conf += torch.bincount(gt[keep] * C + pred[keep], minlength=C * C)
    return conf.view(C, C).numpy()
