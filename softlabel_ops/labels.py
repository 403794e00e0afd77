"""Input normalisation shared by the resampling entry points: label maps, sizes and crop windows."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def as_label_tensor(label) -> tuple[torch.Tensor, bool]:
    """Integer label map (H, W) or (N, H, W), numpy or torch -> contiguous torch (N, H, W), batched flag."""
    if isinstance(label, np.ndarray):
        if not np.issubdtype(label.dtype, np.integer):
            raise TypeError(f"label must be an integer array, got dtype {label.dtype}")
        if label.dtype == np.uint16:
            label = label.astype(np.int32)
        elif label.dtype in (np.uint32, np.uint64):
            label = label.astype(np.int64)
        label = torch.from_numpy(np.ascontiguousarray(label))
    if not isinstance(label, torch.Tensor):
        raise TypeError(f"label must be a numpy array or torch tensor, got {type(label).__name__}")
    if label.dtype not in _INT_DTYPES:
        raise TypeError(f"label must have an integer dtype (uint8/int16/int32/int64), got {label.dtype}")
    if label.dim() not in (2, 3):
        raise ValueError(f"label must be (H, W) or (N, H, W), got shape {tuple(label.shape)}")
    batched = label.dim() == 3
    lab = label if batched else label[None]
    if lab.shape[-1] < 1 or lab.shape[-2] < 1:
        raise ValueError(f"label has an empty spatial size {tuple(label.shape)}")
    return lab.contiguous(), batched


def check_values(lab: torch.Tensor, num_classes: int, ignore_value: int) -> None:
    """Raises ValueError naming the label values outside [0, num_classes) that are not `ignore_value`."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    lo, hi = torch.aminmax(lab)
    if int(lo) >= 0 and int(hi) < num_classes:
        return
    bad = (lab < 0) | (lab >= num_classes)
    if ignore_value is not None and int(ignore_value) >= 0:
        bad &= lab != ignore_value
    if bool(bad.any()):
        vals = torch.unique(lab[bad]).tolist()
        shown = ", ".join(str(v) for v in vals[:20]) + (", ..." if len(vals) > 20 else "")
        raise ValueError(
            f"label contains values [{shown}] outside [0, {num_classes}) that are not the ignore value "
            f"{ignore_value}; map them to train ids or to {ignore_value} first")


def output_size(in_hw: tuple[int, int], size=None, scale=None) -> tuple[int, int]:
    """(h, w) from an explicit size or a scale (float or (sy, sx)); size = floor(in * scale) like torch."""
    if (size is None) == (scale is None):
        raise ValueError("give exactly one of size=(h, w) or scale")
    if size is not None:
        if isinstance(size, int):
            size = (size, size)
        h, w = (int(s) for s in size)
    else:
        sy, sx = (scale, scale) if not isinstance(scale, Sequence) else scale
        h, w = math.floor(in_hw[0] * float(sy)), math.floor(in_hw[1] * float(sx))
    if h < 1 or w < 1:
        raise ValueError(f"output size must be positive, got {(h, w)} for input {in_hw}")
    return h, w


def crop_window(size: tuple[int, int], crop) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the output grid; defaults to the whole resized map."""
    if crop is None:
        return 0, 0, size[0], size[1]
    top, left, height, width = (int(v) for v in crop)
    if height < 1 or width < 1:
        raise ValueError(f"crop height/width must be positive, got {crop}")
    return top, left, height, width
