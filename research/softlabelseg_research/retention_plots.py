"""PNG figures of the retention analysis: per-class share change per factor (Fig. 3b) and one label at
full resolution vs nearest vs soft (Fig. 4). Matplotlib with the Agg backend (no display needed)."""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from softlabelseg.utils.factors import factor_label

from softlabel_ops import NEAREST_MODES, hard_resize, nearest_grid, soft_resize
from softlabel_ops.labels import output_size

from .retention import RetentionResult, _soft_kwargs

__all__ = ["color_lut", "plot_example", "plot_share_change"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def color_lut(colors, num_classes: int, ignore_value: int = 255) -> np.ndarray:
    """(256, 3) uint8 palette: the dataset's class colours (or a fixed random palette), ignore black."""
    lut = np.random.default_rng(0).integers(0, 256, (256, 3)).astype(np.uint8)
    if colors is not None and len(colors) >= num_classes:
        lut[:num_classes] = np.asarray(colors[:num_classes], np.uint8)
    lut[ignore_value] = 0
    return lut


def plot_share_change(result: RetentionResult, f: float, path: str) -> None:
    """Bar chart: per-class share change % at factor ``f``, one bar group per class, one bar per mode."""
    plt = _pyplot()
    names = result.class_names
    x = np.arange(len(names))
    width = 0.8 / len(result.modes)
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(names)), 4.2))
    for i, m in enumerate(result.modes):
        s = result.summary_row(f, m)
        rec = "" if np.isnan(s["recoverable_miou"]) else f", recoverable mIoU {s['recoverable_miou']:.1f}"
        ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(result.share_change(f, m)), width,
               label=f"{s['mode']}: mean |Δ| {s['mean_abs_share_change_pct']:.1f}%{rec}")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("label-mass share change %")
    ax.set_title(f"{result.dataset}: class share after down-sampling to {factor_label(f)} "
                 f"({result.images} label maps)")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path, plt)


def plot_example(label: np.ndarray, class_names, colors, f: float, modes, path: str, *,
                 antialias: bool = False, ignore_value: int = 255, title: str = "",
                 max_width: int = 1024) -> None:
    """One label at full resolution, each nearest mode (its grid named) and each soft mode (argmax colours
    + max-prob grey map).

    Reduced labels are shown up-sampled with nearest to the full-resolution grid (display only; maps
    wider than ``max_width`` are shown at a coarser display grid to keep the PNG small).
    """
    plt = _pyplot()
    C = len(class_names)
    lut = color_lut(colors, C, ignore_value)
    H, W = label.shape
    size = output_size((H, W), scale=f)
    disp = (H, W) if W <= max_width else (round(H * max_width / W), max_width)

    def show(small: torch.Tensor) -> np.ndarray:  # nearest up-sampling for display
        return F.interpolate(small[None, None].float(), disp, mode="nearest")[0, 0].numpy()

    panels = [("full resolution", lut[show(torch.from_numpy(label)).astype(np.uint8)], None)]
    for m in [m for m in modes if m in NEAREST_MODES] or ["torch:nearest-exact"]:
        hard = hard_resize(label, size, m, ignore_value=ignore_value)
        panels.append((f"{m} ({nearest_grid(m)}) {factor_label(f)}", lut[show(hard).astype(np.uint8)], None))
    for m in (m for m in modes if m not in NEAREST_MODES):
        soft = soft_resize(label, C, size=size, mode=m, ignore_value=ignore_value,
                           **_soft_kwargs(m, antialias))
        arg = soft.argmax(ignore_value=ignore_value, min_valid=0.5)
        conf = soft.probs.amax(0) * (soft.valid > 0)
        panels.append((f"{m} {factor_label(f)}: argmax", lut[show(arg).astype(np.uint8)], None))
        panels.append((f"{m} {factor_label(f)}: confidence (max prob)", show(conf), "gray"))
    rows = (len(panels) + 1) // 2
    aspect = disp[0] / disp[1]
    fig, axes = plt.subplots(rows, 2, figsize=(10, rows * 5 * aspect + 0.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, img, cmap) in zip(axes.flat, panels):
        ax.imshow(img, cmap=cmap, vmin=0, vmax=1, interpolation="nearest") if cmap else \
            ax.imshow(img, interpolation="nearest")
        ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path, plt)


def _save(fig, path: str, plt) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
