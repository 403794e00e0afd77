"""Resampling mode names ("<library>:<filter>") and their validation."""
from __future__ import annotations

from dataclasses import dataclass

MODES = (
    "torch:nearest", "torch:nearest-exact", "torch:bilinear", "torch:bicubic", "torch:area",
    "cv2:nearest", "cv2:linear", "cv2:area", "cv2:cubic",
    "pil:nearest", "pil:bilinear", "pil:bicubic", "pil:box",
)
NEAREST_MODES = ("torch:nearest", "torch:nearest-exact", "cv2:nearest", "pil:nearest")
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


def nearest_of(mode: str) -> str:
    """The nearest-neighbour filter of the same library (the hard-label baseline of `mode`)."""
    if mode in NEAREST_MODES:
        return mode
    if mode not in MODES:
        raise ValueError(f"unknown resampling mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode.split(":")[0] + ":nearest"
