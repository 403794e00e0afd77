"""Resampling mode names ("<library>:<filter>") and their validation."""
from __future__ import annotations

from dataclasses import dataclass

MODES = (
    "torch:nearest", "torch:nearest-exact", "torch:bilinear", "torch:bicubic", "torch:area",
    "cv2:nearest", "cv2:nearest-exact", "cv2:linear", "cv2:area", "cv2:cubic",
    "pil:nearest", "pil:bilinear", "pil:bicubic", "pil:box",
)
NEAREST_MODES = ("torch:nearest", "torch:nearest-exact", "cv2:nearest", "cv2:nearest-exact", "pil:nearest")
# Where each library's nearest filters sample a cell of the down-sampled grid. "centred" is the grid the
# smooth filters (bilinear, area, box, ...) use with half-pixel centres, so a label sampled there lines up
# with the image; "top-left" (torch 'nearest', OpenCV INTER_NEAREST) sits (1/f - 1) / 2 input pixels off it
# at factor f. Pillow has no top-left filter: torch's stands in, as the grid is the same.
NEAREST_GRIDS = ("centred", "top-left")
_NEAREST_BY_GRID = {
    "centred": {"torch": "torch:nearest-exact", "cv2": "cv2:nearest-exact", "pil": "pil:nearest"},
    "top-left": {"torch": "torch:nearest", "cv2": "cv2:nearest", "pil": "torch:nearest"},
}
# Modes whose kernel has negative lobes: soft labels can leave [0, 1] unless clamped.
NEGATIVE_LOBE_MODES = ("torch:bicubic", "cv2:cubic", "pil:bicubic")
_FLAG_MODES = ("torch:bilinear", "torch:bicubic")


@dataclass(frozen=True)
class Mode:
    """A validated mode: library, filter and the torch-only flags."""

    name: str
    align_corners: bool = False
    antialias: bool = False

    @property
    def library(self) -> str:
        return self.name.split(":")[0]

    @property
    def filter(self) -> str:
        return self.name.split(":")[1]

    @property
    def is_nearest(self) -> bool:
        return self.name in NEAREST_MODES

    @property
    def negative_lobes(self) -> bool:
        return self.name in NEGATIVE_LOBE_MODES


def parse_mode(mode: str, align_corners: bool = False, antialias: bool = False) -> Mode:
    """Validates `mode` and its flags; raises ValueError listing the valid choices."""
    if mode not in MODES:
        raise ValueError(f"unknown resampling mode {mode!r}; choose one of {', '.join(MODES)}")
    if (align_corners or antialias) and mode not in _FLAG_MODES:
        raise ValueError(f"align_corners/antialias apply to torch:bilinear and torch:bicubic only, "
                         f"not {mode!r}")
    return Mode(mode, bool(align_corners), bool(antialias))


def nearest_grid(mode: str) -> str:
    """"centred" or "top-left": where the nearest filter `mode` samples each output cell."""
    if mode not in NEAREST_MODES:
        raise ValueError(f"{mode!r} is not a nearest-neighbour mode; choose one of "
                         f"{', '.join(NEAREST_MODES)}")
    return "top-left" if mode in ("torch:nearest", "cv2:nearest") else "centred"


def nearest_of(mode: str, grid: str = "centred") -> str:
    """The nearest-neighbour filter that pairs with image filter `mode` (the hard-label baseline).

    grid="centred" (default) samples the cell centres that `mode` itself is centred on, so the hard label
    is aligned with the image; grid="top-left" is the misaligned variant many pipelines use. A nearest
    `mode` is returned as it is.
    """
    if grid not in NEAREST_GRIDS:
        raise ValueError(f"grid must be one of {NEAREST_GRIDS}, got {grid!r}")
    if mode in NEAREST_MODES:
        return mode
    if mode not in MODES:
        raise ValueError(f"unknown resampling mode {mode!r}; choose one of {', '.join(MODES)}")
    return _NEAREST_BY_GRID[grid][mode.split(":")[0]]
