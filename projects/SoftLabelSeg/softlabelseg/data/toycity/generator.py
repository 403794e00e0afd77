"""ToyCity: a small synthetic street-scene dataset written in the exact Cityscapes layout and naming.

    <root>/toycity/leftImg8bit/{train,val}/{city}/{city}_{seq:06d}_000019_leftImg8bit.png
    <root>/toycity/gtFine/{train,val}/{city}/{city}_{seq:06d}_000019_gtFine_labelTrainIds.png  (+ _color.png)
    <root>/toycity/toycity.json     marker: generator version + parameters + class table

Scenes come from :func:`scene.render_scene` (rendered at ``supersample`` x the size, box-filtered
image, majority-class label). Generation is deterministic for a given version and parameters, and atomic:
files are written to a temporary folder that is renamed into place, under a file lock.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ..datasets.builtin_meta import CITYSCAPES_CLASSES, CITYSCAPES_COLORS
from .scene import render_scene, scene_style

__all__ = ["GENERATOR_VERSION", "TOYCITY_SIZES", "ToyCityParams", "ensure_toycity", "generate_toycity",
           "label_to_color"]

logger = logging.getLogger(__name__)
GENERATOR_VERSION = 2
MARKER = "toycity.json"
CITIES = {"train": ("brickton", "pixelheim", "voxelstadt"), "val": ("blurberg", "aliasville")}


# Registered sizes (H, W): the default set and two larger renderings of the same scenes, up to Cityscapes'
# 1024 x 2048. Objects are sized in metres: a pole 1-2 pixels wide at 256 x 512 is 4-8 pixels at full size.
TOYCITY_SIZES = ((256, 512), (512, 1024), (1024, 2048))


@dataclasses.dataclass(frozen=True)
class ToyCityParams:
    """Size and style of the generated set. Defaults: 240 train + 48 val clean scenes at 256 x 512.

    ``supersample`` None: 4 below 512 rows, else 2 (the canvas is then at least 1024 rows either way).
    ``scene``: ``clean`` or ``cluttered`` (denser objects, ragged canopies, annotation error; ``scene.py``).
    """

    height: int = 256
    width: int = 512
    num_train: int = 240
    num_val: int = 48
    seed: int = 0
    supersample: int | None = None
    scene: str = "clean"

    def __post_init__(self):
        if self.supersample is None:
            object.__setattr__(self, "supersample", 4 if self.height < 512 else 2)
        if self.height < 64 or self.width < 128:
            raise ValueError(f"ToyCity needs at least 64 x 128 pixels, got {self.height} x {self.width}")
        scene_style(self.scene)  # fail early on an unknown style

    def counts(self) -> dict[str, int]:
        return {"train": self.num_train, "val": self.num_val}

    @property
    def folder(self) -> str:
        """Folder name under the datasets root: ``toycity``, plus ``_<H>x<W>`` off the default size and
        ``_cluttered`` for cluttered scenes (``toycity_512x1024_cluttered``)."""
        at_default = (self.height, self.width) == (ToyCityParams.height, ToyCityParams.width)
        size = "" if at_default else f"_{self.height}x{self.width}"
        return f"toycity{size}" + ("" if self.scene == "clean" else f"_{self.scene}")


def label_to_color(label: np.ndarray) -> np.ndarray:
    """Train ids (H, W) -> Cityscapes colours uint8 (H, W, 3) RGB; ignore (255) -> black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(CITYSCAPES_COLORS)] = CITYSCAPES_COLORS
    return lut[label]


def _marker(params: ToyCityParams) -> dict:
    fields = dataclasses.asdict(params)
    if fields["scene"] == "clean":  # clean sets keep the marker they had before styles existed
        del fields["scene"]
    return {"generator_version": GENERATOR_VERSION, "params": fields,
            "classes": CITYSCAPES_CLASSES, "colors": [list(c) for c in CITYSCAPES_COLORS],
            "ignore_label": 255}


def _write_png(path: Path, array: np.ndarray) -> None:
    if array.ndim == 3:
        array = np.ascontiguousarray(array[..., ::-1])  # RGB -> BGR for OpenCV
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")


def generate_toycity(out_dir, params: ToyCityParams = ToyCityParams()) -> Path:
    """Render all scenes into ``out_dir`` (created; must not exist) and write the marker last."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True)
    for split_idx, (split, n) in enumerate(params.counts().items()):
        cities = CITIES[split]
        for i in range(n):
            city = cities[i % len(cities)]
            stem = f"{city}_{i // len(cities):06d}_000019"
            rng = np.random.default_rng([params.seed, split_idx, i, GENERATOR_VERSION])
            image, label = render_scene(rng, params.height, params.width, params.supersample, params.scene)
            img_dir, gt_dir = out_dir / "leftImg8bit" / split / city, out_dir / "gtFine" / split / city
            img_dir.mkdir(parents=True, exist_ok=True)
            gt_dir.mkdir(parents=True, exist_ok=True)
            _write_png(img_dir / f"{stem}_leftImg8bit.png", image)
            _write_png(gt_dir / f"{stem}_gtFine_labelTrainIds.png", label)
            _write_png(gt_dir / f"{stem}_gtFine_color.png", label_to_color(label))
    (out_dir / MARKER).write_text(json.dumps(_marker(params), indent=1))
    return out_dir


def _matches(folder: Path, params: ToyCityParams) -> bool:
    try:
        return json.loads((folder / MARKER).read_text()) == json.loads(json.dumps(_marker(params)))
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _lock(path: Path):
    try:
        import fcntl
    except ImportError:  # non-POSIX: rely on the atomic rename alone
        yield
        return
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_toycity(root, params: ToyCityParams = ToyCityParams(), name: str | None = None) -> Path:
    """Return ``root/name`` (default ``params.folder``), generating it first when absent or made by another
    version / parameters.

    A folder without a ToyCity marker is never touched (error). Regeneration replaces the folder atomically.
    """
    root = Path(root)
    name = params.folder if name is None else name
    target = root / name
    if _matches(target, params):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / f".{name}.lock"):
        if _matches(target, params):  # another process finished while we waited
            return target
        if target.exists() and not (target / MARKER).is_file():
            raise FileExistsError(f"{target} exists but is not a generated ToyCity folder (no {MARKER}); "
                                  "move it away or point SOFTLABELSEG_DATASETS elsewhere")
        t0 = time.perf_counter()
        logger.info("Generating ToyCity %s into %s ...", dataclasses.asdict(params), target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-tmp-", dir=root))
        try:
            generate_toycity(tmp / "data", params)
            if target.exists():  # stale version / parameters: swap out, then delete
                stale = Path(tempfile.mkdtemp(prefix=f".{name}-stale-", dir=root))
                os.rename(target, stale / "data")
                logger.warning("Replaced %s made by another generator version or parameters", target)
            os.rename(tmp / "data", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            for p in root.glob(f".{name}-stale-*"):
                shutil.rmtree(p, ignore_errors=True)
        logger.info("ToyCity ready in %.1f s: %s", time.perf_counter() - t0, target)
    return target
