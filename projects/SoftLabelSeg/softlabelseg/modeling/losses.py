"""Losses as parts of a recipe: ``model.loss = L(LossByTarget)(soft=L(SoftKL)(), hard=L(CrossEntropy)())``.

A loss is an ``nn.Module`` called as ``loss(logits, target)`` with logits ``(N, C, h, w)`` (float32, at the
target grid) and the batch's target: int64 labels ``(N, h, w)`` (ignore value where there is no label) or a
batched soft-label container (``softlabel_ops.DenseSoftLabel`` / ``SparseSoftLabel``). The segmentor pads
and stacks the targets; a loss only compares. To add one, write a module with that call and name it in the
recipe (docs/howto/add_a_loss.md).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import softlabel_ops

__all__ = ["CrossEntropy", "LossByTarget", "SoftKL", "is_hard_target"]


def is_hard_target(target) -> bool:
    """True for int64 label maps, False for soft-label containers."""
    return isinstance(target, Tensor)


def _weights(class_weights: Sequence[float] | None) -> Tensor | None:
    return None if class_weights is None else torch.tensor(list(class_weights), dtype=torch.float32)


class _ClassWeighted(nn.Module):
    """Holds optional per-class weights (a non-persistent buffer, so checkpoints do not change)."""

    def __init__(self, class_weights: Sequence[float] | None, loss_weight: float):
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.register_buffer("class_weights", _weights(class_weights), persistent=False)

    def check_classes(self, num_classes: int) -> None:
        """Raises when the class weights do not have one entry per class."""
        if self.class_weights is not None and len(self.class_weights) != num_classes:
            raise ValueError(f"{type(self).__name__}: class_weights has {len(self.class_weights)} entries; "
                             f"the model has {num_classes} classes")


class SoftKL(_ClassWeighted):
    """KL(target || softmax(logits)) weighted by each pixel's valid mass (the paper's loss, eq. 5).

    Args:
        multi_class: keep pixels whose soft label spreads over several classes (False: single-class pixels
            only, the paper's Table 3 ablation).
        class_weights: optional (C,) weights; loss_weight: scales the loss.
    """

    def __init__(self, multi_class: bool = True, class_weights: Sequence[float] | None = None,
                 loss_weight: float = 1.0):
        super().__init__(class_weights, loss_weight)
        self.multi_class = bool(multi_class)

    def forward(self, logits: Tensor, target) -> Tensor:
        if is_hard_target(target):
            raise TypeError("SoftKL takes soft targets; hard labels (label_mode nearest/full_res) need "
                            "CrossEntropy, or model.loss = LossByTarget(...) to pick by target")
        return self.loss_weight * softlabel_ops.soft_kl_loss(
            logits, target, multi_class=self.multi_class, class_weights=self.class_weights)


class CrossEntropy(_ClassWeighted):
    """Cross-entropy on hard labels, ignoring ``ignore_value``; all-ignored batches give 0, not NaN.

    Args:
        label_smoothing: mass spread uniformly over all classes (``torch.nn.functional.cross_entropy``'s);
            a regulariser that adds no information about the image.
        class_weights: optional (C,) weights; loss_weight: scales the loss.
    """

    def __init__(self, ignore_value: int = 255, label_smoothing: float = 0.0,
                 class_weights: Sequence[float] | None = None, loss_weight: float = 1.0):
        super().__init__(class_weights, loss_weight)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing={label_smoothing!r}: expected a value in [0, 1)")
        self.ignore_value, self.label_smoothing = int(ignore_value), float(label_smoothing)

    def forward(self, logits: Tensor, target) -> Tensor:
        if not is_hard_target(target):
            raise TypeError("CrossEntropy takes hard labels; soft targets need SoftKL, or "
                            "model.loss = LossByTarget(...) to pick by target")
        if not (target != self.ignore_value).any():  # cross_entropy would return NaN
            return logits.sum() * 0.0
        return self.loss_weight * F.cross_entropy(logits, target, weight=self.class_weights,
                                                  ignore_index=self.ignore_value,
                                                  label_smoothing=self.label_smoothing)


class LossByTarget(nn.Module):
    """The default: ``soft`` for soft-label containers, ``hard`` for int64 labels, so one recipe trains on
    any ``label_mode`` the mapper is set to."""

    def __init__(self, soft: nn.Module, hard: nn.Module):
        super().__init__()
        self.soft, self.hard = soft, hard

    def check_classes(self, num_classes: int) -> None:
        for part in (self.soft, self.hard):
            if hasattr(part, "check_classes"):
                part.check_classes(num_classes)

    def forward(self, logits: Tensor, target) -> Tensor:
        return (self.hard if is_hard_target(target) else self.soft)(logits, target)
