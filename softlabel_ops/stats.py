"""Label statistics for analysis (paper Fig. 3b and 4): class shares before/after resampling, entropy.

All functions return plain numpy arrays (per-class arrays have shape (C,); scalars are 0-d float64).
"""
from __future__ import annotations

import numpy as np
import torch

from .containers import DenseSoftLabel, SparseSoftLabel
from .labels import as_label_tensor, output_size
from .modes import DEFAULT_MODE
from .resample import hard_resize, soft_resize

__all__ = ["class_share", "soft_class_share", "share_change", "multi_class_fraction", "mean_entropy",
           "label_statistics"]


def class_share(label, num_classes: int, ignore_value: int = 255) -> np.ndarray:
    """Share of each class among the non-ignore pixels of a hard label map (H, W) / (N, H, W); (C,)."""
    lab, _ = as_label_tensor(label)
    lab = lab.reshape(-1).long()
    lab = lab[(lab != ignore_value) & (lab >= 0) & (lab < num_classes)]
    counts = torch.bincount(lab, minlength=num_classes).double().cpu().numpy()
    total = counts.sum()
    return counts / total if total > 0 else counts


def soft_class_share(soft: DenseSoftLabel | SparseSoftLabel) -> np.ndarray:
    """Share of each class in the valid-mass-weighted soft labels: sum(valid * probs_c) / sum(valid); (C,)."""
    dense = soft.to_dense() if isinstance(soft, SparseSoftLabel) else soft
    p = dense.probs.double()
    v = dense.valid.double()
    mass = (p * v.unsqueeze(-3)).movedim(-3, 0).reshape(dense.num_classes, -1).sum(1)
    total = v.sum()
    return (mass / total if total > 0 else mass).cpu().numpy()


def share_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Percentage difference per class, 100 * (after - before) / before (nan where before == 0); Fig. 3b."""
    before = np.asarray(before, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(before > 0, 100.0 * (np.asarray(after) - before) / before, np.nan)


def multi_class_fraction(soft: DenseSoftLabel | SparseSoftLabel) -> np.ndarray:
    """Fraction of valid pixels whose distribution is not one-hot; 0-d float64."""
    valid = soft.valid > 0
    n = int(valid.sum())
    multi = int((valid & ~soft.single_class_mask()).sum())
    return np.float64(multi / n if n else 0.0)


def mean_entropy(soft: DenseSoftLabel | SparseSoftLabel) -> np.ndarray:
    """Mean per-pixel entropy (nats) over valid pixels; 0-d float64."""
    valid = soft.valid > 0
    n = int(valid.sum())
    return np.float64(float(soft.entropy()[valid].double().sum()) / n if n else 0.0)


def label_statistics(label, num_classes: int, size=None, scale=None, mode: str = DEFAULT_MODE, *,
                     ignore_value: int = 255, nearest_grid: str = "centred",
                     **resize_kwargs) -> dict[str, np.ndarray]:
    """Class shares at full resolution, after nearest and after soft resizing, and soft-label summaries.

    Returns a dict of numpy arrays: "full", "nearest", "soft" (C,) class shares; "nearest_change",
    "soft_change" (C,) percentage differences vs "full"; "multi_class_fraction", "mean_entropy" (0-d).
    The nearest baseline uses the same library's nearest filter on ``nearest_grid`` (see hard_resize).
    """
    lab, _ = as_label_tensor(label)
    hw = output_size(tuple(lab.shape[-2:]), size, scale)
    soft = soft_resize(label, num_classes, size=hw, mode=mode, ignore_value=ignore_value, **resize_kwargs)
    hard = hard_resize(label, hw, mode, grid=nearest_grid, ignore_value=ignore_value)
    full = class_share(label, num_classes, ignore_value)
    near = class_share(hard, num_classes, ignore_value)
    sshare = soft_class_share(soft)
    return {
        "full": full, "nearest": near, "soft": sshare,
        "nearest_change": share_change(full, near), "soft_change": share_change(full, sshare),
        "multi_class_fraction": multi_class_fraction(soft), "mean_entropy": mean_entropy(soft),
    }
