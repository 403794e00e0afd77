"""Resampling modes ("<library>:<filter>"): one registry entry per mode, and the views derived from it.

Every fact about a mode lives in its REGISTRY entry (:class:`ModeSpec`): soft_resize (its taps),
resize_image (the library's filter), the nearest-neighbour pairing, the export's OpenCV serving flags,
the analysis command line and the tests all read it. No torch: the serving runner imports it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import filters

# Where a nearest filter samples a cell of the down-sampled grid. "centred" is the grid the smooth
# filters (bilinear, area, box, ...) use with half-pixel centres, so a label sampled there lines up with
# the image; "top-left" (torch 'nearest', OpenCV INTER_NEAREST) sits (1/f - 1) / 2 input pixels off it at
# factor f.
NEAREST_GRIDS = ("centred", "top-left")
# The reference library: its nearest filter on a grid stands in where a library has none there (Pillow
# has no top-left nearest; the grid is the same).
_REFERENCE_LIBRARY = "torch"


@dataclass(frozen=True)
class ModeSpec:
    """Everything the project knows about one resampling mode.

    name: "<library>:<filter>" (library: torch, cv2 or pil, the libraries resize_image calls).
    taps: builder (in_len, out_len, mode, both_down) -> (idx, w) of one axis (see softlabel_ops.filters).
    image: the library's own filter for the image path: the torch F.interpolate mode, the OpenCV
        INTER_* name or the Pillow Image.Resampling name.
    opencv: the OpenCV INTER_* name with which the ONNX runners (Python and C++, OpenCV only) resize the
        image to the model input; the same filter for cv2 modes, the closest geometry otherwise.
    grid: for a nearest filter, the grid it samples (NEAREST_GRIDS); None for smooth filters.
    negative_lobes: the kernel has negative lobes (soft labels can leave [0, 1] unless clamped).
    torch_flags: align_corners / antialias apply (torch bilinear and bicubic).
    antialiased: the library always widens the kernel when shrinking (Pillow); the runners then resize
        with INTER_AREA, as they do for the antialias flag.
    short: short names the analysis command line accepts ("bilinear" for "torch:bilinear").
    float_image: the library resizes a uint8 image in float32 and the result is rounded half to even back
        to uint8 (torch); the ONNX runners then resize float32 with OpenCV and round the same way, and
        uint8 with OpenCV's fixed-point path otherwise (OpenCV's and Pillow's own 8-bit paths).
    """

    name: str
    taps: Callable
    image: str
    opencv: str
    grid: str | None = None
    negative_lobes: bool = False
    torch_flags: bool = False
    antialiased: bool = False
    short: tuple[str, ...] = ()
    float_image: bool = False

    def __post_init__(self):
        if self.name.count(":") != 1:
            raise ValueError(f"a mode name is '<library>:<filter>', got {self.name!r}")
        if self.grid not in (None, *NEAREST_GRIDS):
            raise ValueError(f"{self.name}: grid must be None or one of {NEAREST_GRIDS}, got {self.grid!r}")

    @property
    def library(self) -> str:
        return self.name.split(":")[0]

    @property
    def filter(self) -> str:
        return self.name.split(":")[1]


_ENTRIES = (
    ModeSpec("torch:nearest", filters.torch_nearest, "nearest", "INTER_NEAREST", grid="top-left",
             short=("nearest-topleft",), float_image=True),
    ModeSpec("torch:nearest-exact", filters.torch_nearest, "nearest-exact", "INTER_NEAREST_EXACT",
             grid="centred", short=("nearest", "nearest-exact"), float_image=True),
    ModeSpec("torch:bilinear", filters.torch_bilinear, "bilinear", "INTER_LINEAR", torch_flags=True,
             short=("bilinear",), float_image=True),
    ModeSpec("torch:bicubic", filters.torch_bicubic, "bicubic", "INTER_CUBIC", negative_lobes=True,
             torch_flags=True, short=("bicubic",), float_image=True),
    ModeSpec("torch:area", filters.torch_area, "area", "INTER_AREA", short=("area",), float_image=True),
    ModeSpec("cv2:nearest", filters.cv2_nearest, "INTER_NEAREST", "INTER_NEAREST", grid="top-left"),
    ModeSpec("cv2:nearest-exact", filters.cv2_nearest_exact, "INTER_NEAREST_EXACT", "INTER_NEAREST_EXACT",
             grid="centred"),
    ModeSpec("cv2:linear", filters.cv2_linear, "INTER_LINEAR", "INTER_LINEAR"),
    ModeSpec("cv2:area", filters.cv2_area, "INTER_AREA", "INTER_AREA"),
    ModeSpec("cv2:cubic", filters.cv2_cubic, "INTER_CUBIC", "INTER_CUBIC", negative_lobes=True),
    ModeSpec("pil:nearest", filters.pil_nearest, "NEAREST", "INTER_NEAREST", grid="centred"),
    ModeSpec("pil:bilinear", filters.pil_filter(filters.triangle, 1.0), "BILINEAR", "INTER_LINEAR",
             antialiased=True),
    ModeSpec("pil:bicubic", filters.pil_filter(filters.keys_cubic, 2.0), "BICUBIC", "INTER_CUBIC",
             negative_lobes=True, antialiased=True),
    ModeSpec("pil:box", filters.pil_filter(filters.pil_box, 0.5), "BOX", "INTER_AREA", antialiased=True),
)
REGISTRY: dict[str, ModeSpec] = {spec.name: spec for spec in _ENTRIES}
# The image filter of the recipes, and the mode of every function that takes one and is not told: the
# smooth filter the method trains with (soft labels follow it; the nearest baselines sample its grid).
DEFAULT_MODE = "torch:bilinear"
# The same filter in OpenCV, the runners' library: what they resize with when a model's metadata names no
# mode.
DEFAULT_OPENCV_MODE = next(name for name, spec in REGISTRY.items()
                           if spec.library == "cv2" and spec.image == REGISTRY[DEFAULT_MODE].opencv)


class ModeNames(Sequence):
    """Read-only, always current tuple of the registered mode names whose entry passes `keep`."""

    def __init__(self, keep: Callable[[ModeSpec], bool]):
        self._keep = keep

    def _names(self) -> tuple[str, ...]:
        return tuple(name for name, spec in REGISTRY.items() if self._keep(spec))

    def __getitem__(self, i):
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self):
        return iter(self._names())

    def __contains__(self, name) -> bool:
        return name in self._names()

    def __add__(self, other) -> tuple:
        return self._names() + tuple(other)

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and self._names() == tuple(other)

    def __repr__(self) -> str:
        return repr(self._names())


MODES = ModeNames(lambda spec: True)
NEAREST_MODES = ModeNames(lambda spec: spec.grid is not None)
NEGATIVE_LOBE_MODES = ModeNames(lambda spec: spec.negative_lobes)


@dataclass(frozen=True)
class Mode:
    """A mode with the torch-only flags, and its registry entry (looked up when not given; it is part of
    the identity, so tables cached for a mode follow its entry)."""

    name: str
    align_corners: bool = False
    antialias: bool = False
    spec: ModeSpec | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.spec is None:
            object.__setattr__(self, "spec", spec_of(self.name))

    @property
    def library(self) -> str:
        return self.spec.library

    @property
    def filter(self) -> str:
        return self.spec.filter

    @property
    def is_nearest(self) -> bool:
        return self.spec.grid is not None

    @property
    def negative_lobes(self) -> bool:
        return self.spec.negative_lobes


def spec_of(mode: str) -> ModeSpec:
    """The registry entry of `mode`; raises ValueError listing the valid choices."""
    try:
        return REGISTRY[mode]
    except (KeyError, TypeError):
        raise ValueError(f"unknown resampling mode {mode!r}; choose one of {', '.join(MODES)}") from None


def parse_mode(mode: str, align_corners: bool = False, antialias: bool = False) -> Mode:
    """Validates `mode` and its flags; raises ValueError listing the valid choices."""
    spec = spec_of(mode)
    if (align_corners or antialias) and not spec.torch_flags:
        flagged = " and ".join(name for name, s in REGISTRY.items() if s.torch_flags)
        raise ValueError(f"align_corners/antialias apply to {flagged} only, not {mode!r}")
    return Mode(mode, bool(align_corners), bool(antialias), spec)


def mode_name(text: str) -> str:
    """A full name ("cv2:area") or a short one ("area", "nearest", "nearest-topleft") -> the full name."""
    if text in REGISTRY:
        return text
    short = {alias: name for name, spec in REGISTRY.items() for alias in spec.short}
    if text not in short:
        raise ValueError(f"unknown mode {text!r}; use one of {', '.join(short)} or {', '.join(MODES)}")
    return short[text]


def nearest_grid(mode: str) -> str:
    """"centred" or "top-left": where the nearest filter `mode` samples each output cell."""
    grid = REGISTRY[mode].grid if mode in REGISTRY else None
    if grid is None:
        raise ValueError(f"{mode!r} is not a nearest-neighbour mode; choose one of "
                         f"{', '.join(NEAREST_MODES)}")
    return grid


def nearest_of(mode: str, grid: str = "centred") -> str:
    """The nearest-neighbour filter that pairs with image filter `mode` (the hard-label baseline).

    grid="centred" (default) samples the cell centres that `mode` itself is centred on, so the hard label
    is aligned with the image; grid="top-left" is the misaligned variant many pipelines use. A nearest
    `mode` is returned as it is. The library's own nearest filter on `grid` is used, the reference
    library's (torch) where it has none.
    """
    if grid not in NEAREST_GRIDS:
        raise ValueError(f"grid must be one of {NEAREST_GRIDS}, got {grid!r}")
    spec = spec_of(mode)
    if spec.grid is not None:
        return mode
    on_grid: dict[str, str] = {}
    for name, s in REGISTRY.items():
        if s.grid == grid:
            on_grid.setdefault(s.library, name)
    return on_grid.get(spec.library, on_grid[_REFERENCE_LIBRARY])


def opencv_flags(mode: str, antialias: bool = False) -> tuple[str, str]:
    """OpenCV INTER_* names with which the ONNX runners resize an image for `mode`: (any size, both sides
    shrinking). Shrinking with an antialiased kernel (Pillow's, or torch's antialias flag) takes
    INTER_AREA, the box filter that stands in for it."""
    m = parse_mode(mode, antialias=antialias)
    smoothed = (m.spec.antialiased or m.antialias) and not m.is_nearest
    return m.spec.opencv, "INTER_AREA" if smoothed else m.spec.opencv
