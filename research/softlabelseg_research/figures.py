"""Pictures for the README and the evidence report, made from data and runs (``tools/make_figures.py``).

- :func:`targets_figure`: what each kind of training target looks like at a factor on one crop with thin
  classes (top-left nearest, centred nearest, soft bilinear, soft area), next to the full-resolution
  predictions of models trained on each.
- :func:`miou_figure`: mIoU against the training factor per kind of target, mean and seed spread, one panel
  per grid.
- :func:`decomposition_figure`: the gain over top-left nearest split into alignment (centred minus top-left
  nearest) and soft labelling (soft minus centred nearest), trained models beside label ceilings.
"""

from __future__ import annotations

import os

import numpy as np
from softlabelseg.data.label_targets import BASELINE, CONTROL, DECOMPOSITION, METHOD, ceiling_targets

from .grid_stats import by_cell, mean_std, shared_seed_means
from .sweep import VARIANTS

__all__ = ["TARGETS", "decomposition_figure", "miou_figure", "pick_crop", "targets_figure"]

# (variant, how its target is made at the training grid): the kinds of target the figure compares
TARGETS = tuple((t.name, t.resampling_mode()) for t in ceiling_targets())


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pick_crop(label: np.ndarray, classes: list[int], size: tuple[int, int], step: int = 8) -> tuple[int, int]:
    """Top-left corner (y, x) of the ``size`` window holding the most pixels of ``classes``, every class
    present if possible (a crop with a pole and a sign)."""
    best, corner = (-1, -1), (0, 0)
    h, w = size
    for y in range(0, label.shape[0] - h + 1, step):
        for x in range(0, label.shape[1] - w + 1, step):
            window = label[y:y + h, x:x + w]
            counts = [int((window == c).sum()) for c in classes]
            score = (sum(c > 0 for c in counts), sum(counts))
            if score > best:
                best, corner = score, (y, x)
    return corner


def _colour(probs: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(C, h, w) class probabilities -> the probability-weighted mix of the class colours, uint8 (h, w, 3)."""
    return np.einsum("chw,cd->hwd", probs, palette[: probs.shape[0]].astype(np.float32)).clip(0, 255).astype(
        np.uint8)


def _target_colours(label: np.ndarray, num_classes: int, factor: float, mode: str, palette: np.ndarray,
                    ignore: int = 255) -> np.ndarray:
    """The target of ``mode`` at ``factor`` as colours, each low-resolution cell blown up to the
    full-resolution pixels it stands for (no smoothing: what the loss sees)."""
    import softlabel_ops
    from softlabel_ops.labels import output_size

    size = output_size(label.shape, scale=factor)
    if mode in softlabel_ops.NEAREST_MODES:
        hard = softlabel_ops.hard_resize(label, size, mode, ignore_value=ignore).numpy()
        probs = np.zeros((num_classes, *size), np.float32)
        keep = hard != ignore
        probs[hard[keep], np.nonzero(keep)[0], np.nonzero(keep)[1]] = 1.0
    else:
        soft = softlabel_ops.soft_resize(label, num_classes, size=size, mode=mode, ignore_value=ignore)
        probs = (soft.probs * soft.valid.clamp(max=1)).numpy()
    cells = _colour(probs, palette)
    ry, rx = -(-label.shape[0] // size[0]), -(-label.shape[1] // size[1])
    return np.repeat(np.repeat(cells, ry, 0), rx, 1)[: label.shape[0], : label.shape[1]]


def targets_figure(image: np.ndarray, label: np.ndarray, predictions: dict[str, np.ndarray], class_names,
                   colors, factor: float, crop: tuple[int, int, int, int], path: str,
                   title: str = "") -> None:
    """Two rows on one crop ``(y, x, h, w)``: the image and the targets of :data:`TARGETS` at ``factor``;
    the full-resolution label and each model's full-resolution prediction (``predictions``: variant ->
    labels (H, W); a missing one is left blank). Saved as PNG at ``path``."""
    plt = _plt()
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(colors)] = np.asarray(colors, np.uint8)
    y, x, h, w = crop
    cut = (slice(y, y + h), slice(x, x + w))
    fig, axes = plt.subplots(2, 1 + len(TARGETS), figsize=(2.4 * (1 + len(TARGETS)), 5.0), dpi=130)
    axes[0, 0].imshow(image[cut])
    axes[0, 0].set_title("image", fontsize=8)
    axes[1, 0].imshow(palette[label][cut])
    axes[1, 0].set_title("full-resolution label", fontsize=8)
    for k, (variant, mode) in enumerate(TARGETS, start=1):
        name = VARIANTS[variant].title
        axes[0, k].imshow(_target_colours(label, len(class_names), factor, mode, palette)[cut])
        axes[0, k].set_title(f"target: {name}", fontsize=8)
        if variant in predictions:
            axes[1, k].imshow(palette[predictions[variant]][cut])
        axes[1, k].set_title(f"trained on {name}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    present = sorted(set(np.unique(label[cut]).tolist()) - {255})
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[c] / 255.0) for c in present]
    fig.legend(handles, [class_names[c] for c in present], loc="lower center", ncol=min(8, len(present)),
               fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95), h_pad=1.6)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def miou_figure(panels: list[tuple[str, dict]], path: str, score: str = "mIoU",
                metadata: dict[str, str] | None = None) -> None:
    """One panel per ``(title, results)`` (``{GridPoint: metrics}``): ``score`` against the training factor
    per target, the mean over seeds with the seed standard deviation as error bars; ``metadata``: PNG
    text entries to record."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), dpi=120, squeeze=False)
    for ax, (title, results) in zip(axes[0], panels, strict=True):
        cells = by_cell(results)
        factors = sorted({f for _, f in cells})
        for variant in [v for v in VARIANTS if any((v, f) in cells for f in factors)]:
            fs = [f for f in factors if (variant, f) in cells]
            stats = [mean_std([m[score] for m in cells[(variant, f)].values()]) for f in fs]
            ax.errorbar([float(f) for f in fs], [s[0] for s in stats],
                        yerr=[0.0 if np.isnan(s[1]) else s[1] for s in stats], marker="o", capsize=3,
                        label=VARIANTS[variant].title, color=VARIANTS[variant].colour)
        ax.set_xscale("log", base=2)
        ax.set_xticks([float(f) for f in factors], [str(f) for f in factors])
        ax.set_xlabel("training-resolution factor")
        ax.set_ylabel(f"{score} (%) at full resolution")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    legend = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    axes[0][-1].legend(list(legend.values()), list(legend), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata=metadata)
    plt.close(fig)


def decomposition_figure(rows: list[tuple[str, dict, dict | None]], path: str,
                         metadata: dict[str, str] | None = None) -> None:
    """Bars per ``(label, results, ceilings)`` and factor: alignment and soft labelling in mIoU points for
    the trained models (paired over the seeds the three targets share) and, when given, the label
    ceilings ({(variant, factor): recoverable mIoU}); ``metadata``: PNG text entries to record."""
    plt = _plt()
    names, align, soft = [], [], []
    for label, results, ceilings in rows:
        cells = by_cell(results)
        for f in sorted({f for _, f in cells}):
            means, n = shared_seed_means(cells, DECOMPOSITION, f)
            if n == 0:
                continue
            entries = [("trained", means)]
            if ceilings:
                entries.append(("ceiling", {v: ceilings.get((v, f), np.nan) for v in means}))
            for what, m in entries:
                names.append(f"{label}\n{f} {what}")
                align.append(m[BASELINE] - m[CONTROL])
                soft.append(m[METHOD] - m[BASELINE])
    fig, ax = plt.subplots(figsize=(max(6, 0.75 * len(names)), 3.8), dpi=120)
    x = np.arange(len(names))
    ax.bar(x - 0.2, align, 0.4, label="alignment (centred - top-left nearest)")
    ax.bar(x + 0.2, soft, 0.4, label="soft labelling (soft - centred nearest)")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(x, names, fontsize=7, rotation=35, ha="right")
    ax.set_ylabel("mIoU points")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, metadata=metadata)
    plt.close(fig)
