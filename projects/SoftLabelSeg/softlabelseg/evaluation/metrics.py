"""Confusion matrix and the segmentation metrics derived from it (detectron2's definitions).

Rows are ground truth, columns are predictions: ``conf[g, p]`` counts pixels of class ``g`` predicted as
``p``. Pixels whose ground truth is the ignore value never enter the matrix.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["confusion_matrix", "metrics_from_confusion"]


def confusion_matrix(pred: torch.Tensor, gt: torch.Tensor, num_classes: int, ignore_value: int = 255):
    """Confusion matrix of one prediction.

    Args:
        pred: int tensor (H, W) of predicted classes in [0, C).
        gt: int tensor (H, W) of train ids in [0, C) or ``ignore_value``; same shape and device as ``pred``.
    Returns:
        int64 tensor (C, C) on ``pred``'s device.
    Raises:
        ValueError if shapes differ or ``gt`` holds values outside [0, C) that are not ``ignore_value``.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != label shape {tuple(gt.shape)}")
    gt = gt.to(device=pred.device, dtype=torch.int64)
    pred = pred.to(torch.int64)
    keep = gt != ignore_value
    gt, pred = gt[keep], pred[keep]
    if gt.numel() and (int(gt.min()) < 0 or int(gt.max()) >= num_classes):
        bad = torch.unique(gt[(gt < 0) | (gt >= num_classes)]).tolist()
        raise ValueError(
            f"label values {bad[:10]} are outside [0, {num_classes}) and not ignore ({ignore_value})"
        )
    counts = torch.bincount(gt * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def metrics_from_confusion(conf, class_names: list[str] | None = None) -> dict[str, float]:
    """Per-class IoU/accuracy and mIoU, fwIoU, mACC, pACC (in percent) from a (C, C) confusion matrix.

    A class with no ground-truth and no predicted pixel has IoU NaN and is left out of the means; a class
    with no ground truth but false positives has IoU 0 (counted); accuracy is NaN without ground truth.
    Returns a flat dict: mIoU, fwIoU, mACC, pACC, IoU-<name>, ACC-<name>.
    """
    conf = np.asarray(conf, dtype=np.float64)
    c = conf.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for a {c}x{c} confusion matrix")
    tp = np.diag(conf)
    pos_gt = conf.sum(axis=1)
    pos_pred = conf.sum(axis=0)
    union = pos_gt + pos_pred - tp
    acc_valid = pos_gt > 0
    iou_valid = union > 0
    acc = np.full(c, np.nan)
    iou = np.full(c, np.nan)
    acc[acc_valid] = tp[acc_valid] / pos_gt[acc_valid]
    iou[iou_valid] = tp[iou_valid] / union[iou_valid]
    total = pos_gt.sum()
    nan = float("nan")
    res = {
        "mIoU": 100 * float(iou[iou_valid].mean()) if iou_valid.any() else nan,
        "fwIoU": 100 * float((iou[acc_valid] * pos_gt[acc_valid]).sum() / total) if total > 0 else nan,
        "mACC": 100 * float(acc[acc_valid].mean()) if acc_valid.any() else nan,
        "pACC": 100 * float(tp.sum() / total) if total > 0 else nan,
    }
    for i, name in enumerate(names):
        res[f"IoU-{name}"] = 100 * float(iou[i])
    for i, name in enumerate(names):
        res[f"ACC-{name}"] = 100 * float(acc[i])
    return res


def nan_to_none(d):
    """JSON-safe copy: NaN floats become None (JSON has no NaN)."""
    if isinstance(d, dict):
        return {k: nan_to_none(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [nan_to_none(v) for v in d]
    if isinstance(d, float) and math.isnan(d):
        return None
    return d
