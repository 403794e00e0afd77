"""Framework-free soft-label resampling, containers and losses (torch + numpy only).

soft_resize turns an integer label map into per-pixel class distributions with the exact geometry
of an image filter (torch / OpenCV / Pillow), so images and labels are resized alike.
"""
from .containers import DenseSoftLabel, SparseSoftLabel
from .image import resize_image
from .loss import soft_kl_loss
from .modes import MODES, NEAREST_GRIDS, NEAREST_MODES, NEGATIVE_LOBE_MODES, nearest_grid, nearest_of
from .resample import hard_resize, soft_resize
from .stats import (
    class_share,
    label_statistics,
    mean_entropy,
    multi_class_fraction,
    share_change,
    soft_class_share,
)

__all__ = [
    "soft_resize", "hard_resize", "resize_image", "DenseSoftLabel", "SparseSoftLabel", "soft_kl_loss",
    "MODES", "NEAREST_MODES", "NEAREST_GRIDS", "NEGATIVE_LOBE_MODES", "nearest_of", "nearest_grid",
    "class_share", "soft_class_share", "share_change",
    "multi_class_fraction", "mean_entropy", "label_statistics",
]
