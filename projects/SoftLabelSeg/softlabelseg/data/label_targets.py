"""The kinds of training target, in one table that the mapper, the evidence grid, its report and figures read.

A label mode (:data:`LABEL_MODE_SPECS`) is how the mapper makes the target from the full-resolution label:
soft labels (dense or sparse) resampled with the image's filter, hard labels by nearest neighbour on a
named grid, or hard labels at full resolution. A label target (:data:`LABEL_TARGETS`, a variant of the
evidence grid) is a label mode with its settings, its display name and its colour in figures; what the
target's label is resampled with (:meth:`LabelTarget.resampling_mode`) follows from the mode registry of
``softlabel_ops``. Adding a target is one row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from softlabel_ops.modes import DEFAULT_MODE, NEAREST_MODES, nearest_grid, nearest_of

__all__ = ["BASELINE", "CONTROL", "DECOMPOSITION", "LABEL_MODES", "LABEL_MODE_SPECS", "LABEL_TARGETS",
           "METHOD", "LabelMode", "LabelTarget", "ceiling_targets", "default_targets"]


@dataclass(frozen=True)
class LabelMode:
    """How the mapper makes a target. ``grid``: hard labels sampled by nearest neighbour on this grid
    (``softlabel_ops.modes.NEAREST_GRIDS``); None: soft labels resampled with the image's filter."""

    name: str
    grid: str | None = None
    sparse: bool = False  # soft labels kept as the top-K classes of each pixel
    full_res: bool = False  # hard labels at 1 / factor x the training grid (no label down-sampling)


# In the order the mapper's error message lists them.
LABEL_MODE_SPECS = {m.name: m for m in (
    LabelMode("soft"),
    LabelMode("soft_sparse", sparse=True),
    LabelMode("nearest", grid="centred"),
    LabelMode("nearest_topleft", grid="top-left"),
    LabelMode("full_res", grid="centred", full_res=True),
)}
LABEL_MODES = tuple(LABEL_MODE_SPECS)


@dataclass(frozen=True)
class LabelTarget:
    """One kind of training target (a variant of the evidence grid): its config settings, display name and
    line colour in figures.

    ``image_mode``: None keeps the recipe's image filter (the label follows it); ``label_filter``: soft
    labels only, a filter other than the image's (a diagnostic); ``label_smoothing``: hard labels with
    cross-entropy label smoothing (the grid runner's value). ``kind``: a short name when the target is one
    of the kinds the label ceilings and the targets figure show; ``default``: in the grid runner's default
    grid.
    """

    name: str
    title: str
    label_mode: str
    colour: str
    multi_class: bool = True
    image_mode: str | None = None
    label_filter: str | None = None
    label_smoothing: bool = False
    kind: str | None = None
    default: bool = False

    def __post_init__(self):
        if self.label_mode not in LABEL_MODE_SPECS:
            raise ValueError(f"{self.name}: label_mode must be one of {LABEL_MODES}, got {self.label_mode!r}")

    @property
    def grid(self) -> str | None:
        """The nearest grid of a hard-label target; None for soft labels."""
        return LABEL_MODE_SPECS[self.label_mode].grid

    def resampling_mode(self, image_mode: str = DEFAULT_MODE) -> str | None:
        """The ``softlabel_ops`` mode the label is resampled with under a recipe whose image filter is
        ``image_mode`` (the recipes' default when left out); None for full-resolution labels."""
        spec = LABEL_MODE_SPECS[self.label_mode]
        image = self.image_mode or image_mode
        if spec.full_res:
            return None
        if spec.grid is not None:
            return nearest_of(image, spec.grid)
        return self.label_filter or image

    @property
    def ceiling_label(self) -> str | None:
        """The name ``tools/analyze_downsampling.py`` gives this target's mode in its summary CSV (a nearest
        mode says its grid: 'torch:nearest (top-left)')."""
        mode = self.resampling_mode()
        if mode is None or mode not in NEAREST_MODES:
            return mode
        return f"{mode} ({nearest_grid(mode)})"


# Rows in the order of tables and legends. Colours: matplotlib's default cycle, the default grid first, so
# every figure keeps the colours it had when a line's colour was its place in the cycle.
LABEL_TARGETS = {t.name: t for t in (
    LabelTarget("nearest_topleft", "nearest, top-left grid", "nearest_topleft", "#1f77b4",
                kind="top-left nearest", default=True),
    LabelTarget("nearest", "nearest, centred grid", "nearest", "#ff7f0e", kind="centred nearest",
                default=True),
    LabelTarget("soft", "soft", "soft", "#2ca02c", kind="soft bilinear", default=True),
    LabelTarget("soft_mc_off", "soft, MC off", "soft", "#8c564b", multi_class=False),
    LabelTarget("soft_sparse", "soft, sparse top-K", "soft_sparse", "#e377c2"),
    LabelTarget("soft_area", "soft, area (image too)", "soft", "#d62728", image_mode="torch:area",
                kind="soft area", default=True),
    # soft_area changes two things at once; these two change one each
    LabelTarget("soft_area_label", "soft, area label only", "soft", "#7f7f7f", label_filter="torch:area"),
    LabelTarget("nearest_area_image", "nearest, centred grid, area image", "nearest", "#bcbd22",
                image_mode="torch:area"),
    LabelTarget("full_res", "full-resolution labels", "full_res", "#9467bd", default=True),
    # a regulariser without information: hard labels, smoothed as much as soft labels spread
    LabelTarget("nearest_ls", "nearest, centred grid, label smoothing", "nearest", "#17becf",
                label_smoothing=True),
)}
BASELINE = "nearest"  # the fair baseline: every variant's paired difference is taken against it
CONTROL = "nearest_topleft"  # the common pipeline's labels: a second reference for the paired differences
METHOD = "soft"  # the method itself
# The gain over the common pipeline in two steps: alignment (CONTROL -> BASELINE), soft labelling
# (BASELINE -> METHOD).
DECOMPOSITION = (CONTROL, BASELINE, METHOD)


def ceiling_targets() -> list[LabelTarget]:
    """The kinds of target that have a label ceiling and a panel in the targets figure, in table order."""
    return [t for t in LABEL_TARGETS.values() if t.kind is not None]


def default_targets() -> list[str]:
    """The names of the grid runner's default variants, in table order."""
    return [t.name for t in LABEL_TARGETS.values() if t.default]
