"""Predictors: a segmentor wrapped for evaluation, with flip / multi-scale TTA, sliding-window inference
or top-1 labels (``build_test_model`` picks from ``train.test``).

TTA and sliding windows follow the model contract: ``wrapper(list[dict]) -> [{"sem_seg": (C, height,
width)}]`` with probabilities at the record's full size; the top-1 predictor returns
``[{"sem_seg_labels": (height, width)}]`` instead. Scales are relative to the image the eval mapper produced
(which already sits at the recipe's test scale, by default the training factor).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SemSegTTA", "SlidingWindowInference", "Top1Predictor", "build_test_model", "resize_uint8"]


def resize_uint8(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of a uint8 (3, h, w) image to ``size`` = (h, w)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shrink = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    x = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return x[0].round().clamp(0, 255).to(torch.uint8)


class SemSegTTA(nn.Module):
    """Averages the model's probabilities over scales x {identity, horizontal flip}.

    Args:
        model: the segmentor (or another wrapper).
        scales: image scales relative to the mapper's test image, e.g. (0.75, 1.0, 1.25).
        flip: also run each scale on the horizontally flipped image (the output is flipped back).
    """

    def __init__(self, model: nn.Module, scales=(1.0,), flip: bool = False):
        super().__init__()
        self.model = model
        self.scales = tuple(float(s) for s in scales)
        self.flip = flip

    @torch.no_grad()
    def forward(self, batched_inputs: list[dict]) -> list[dict]:
        results = []
        for inp in batched_inputs:
            image = inp["image"]
            total, n = None, 0
            for s in self.scales:
                size = (max(1, round(image.shape[-2] * s)), max(1, round(image.shape[-1] * s)))
                scaled = resize_uint8(image, size)
                for flipped in (False, True) if self.flip else (False,):
                    x = scaled.flip(-1) if flipped else scaled
                    prob = self.model([{**inp, "image": x}])[0]["sem_seg"]
                    prob = prob.flip(-1) if flipped else prob
                    total = prob.float() if total is None else total + prob.float()
                    n += 1
            results.append({"sem_seg": total / n})
        return results


class SlidingWindowInference(nn.Module):
    """Runs the model on overlapping ``crop`` windows of the test image and averages the overlaps.

    Windows are in pixels of the mapper's test image; each window's probabilities are taken at the window's
    own size (the model is told ``height``/``width`` = window size), accumulated on the test-image grid,
    then bilinearly upsampled to the record's full ``height`` x ``width``.
    """

    def __init__(self, model: nn.Module, crop: tuple[int, int], stride: tuple[int, int] | None = None):
        super().__init__()
        self.model = model
        self.crop = (int(crop[0]), int(crop[1]))
        if not stride:
            stride = (max(1, self.crop[0] * 2 // 3), max(1, self.crop[1] * 2 // 3))
        self.stride = (int(stride[0]), int(stride[1]))

    @staticmethod
    def _starts(length: int, crop: int, stride: int) -> list[int]:
        if length <= crop:
            return [0]
        n = math.ceil((length - crop) / stride) + 1
        return sorted({min(i * stride, length - crop) for i in range(n)})

    @torch.no_grad()
    def forward(self, batched_inputs: list[dict]) -> list[dict]:
        results = []
        for inp in batched_inputs:
            image = inp["image"]
            h, w = image.shape[-2:]
            ch, cw = min(self.crop[0], h), min(self.crop[1], w)
            acc, cnt = None, torch.zeros(h, w)
            for top in self._starts(h, ch, self.stride[0]):
                for left in self._starts(w, cw, self.stride[1]):
                    window = image[:, top : top + ch, left : left + cw]
                    prob = self.model([{**inp, "image": window, "height": ch, "width": cw}])[0]["sem_seg"]
                    if acc is None:
                        acc = torch.zeros(prob.shape[0], h, w, device=prob.device)
                        cnt = cnt.to(prob.device)
                    acc[:, top : top + ch, left : left + cw] += prob.float()
                    cnt[top : top + ch, left : left + cw] += 1
            prob = acc / cnt
            full = (int(inp.get("height", h)), int(inp.get("width", w)))
            if full != (h, w):
                prob = F.interpolate(prob[None], size=full, mode="bilinear", align_corners=False)[0]
            results.append({"sem_seg": prob})
        return results


class Top1Predictor(nn.Module):
    """``model.predict_labels`` as the forward: ``[{"sem_seg_labels": int64 (height, width)}]``, the
    argmax of the model's probabilities without holding them at full resolution."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batched_inputs: list[dict]) -> list[dict]:
        return self.model.predict_labels(batched_inputs)


def build_test_model(model: nn.Module, flip: bool = False, scales=(1.0,), sliding_window=None,
                     top1: bool = True) -> nn.Module:
    """Wraps ``model`` for evaluation as configured; returns ``model`` itself when nothing is enabled.

    sliding_window: None or a dict ``{"crop": (h, w), "stride": (h, w) or None}`` in test-image pixels.
    top1: without test-time wrappers, a model with ``predict_labels`` returns labels instead of
    full-resolution probabilities (the evaluator only needs the argmax).
    """
    if sliding_window:
        model = SlidingWindowInference(model, sliding_window["crop"], sliding_window.get("stride"))
    if flip or tuple(scales) != (1.0,):
        model = SemSegTTA(model, scales=scales, flip=flip)
    elif top1 and not sliding_window and callable(getattr(model, "predict_labels", None)):
        model = Top1Predictor(model)
    return model
