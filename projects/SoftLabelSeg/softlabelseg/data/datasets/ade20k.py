"""ADE20K (SceneParsing / ADEChallengeData2016), 150 classes; raw 0 ("other") -> ignore, 1..150 -> 0..149.

    <root>/ADEChallengeData2016/images/{training,validation}/*.jpg
    <root>/ADEChallengeData2016/annotations/{training,validation}/*.png
"""
from __future__ import annotations

from pathlib import Path

from ..catalog import missing_path_error
from ..decode import pair_records
from .builtin_meta import ADE20K_LUT

__all__ = ["ADE20K_LAYOUT", "load_ade20k_semantic"]

ADE20K_LAYOUT = "<root>/images/{training,validation}/*.jpg and <root>/annotations/{training,validation}/*.png"
_SPLITS = {"train": "training", "val": "validation"}


def load_ade20k_semantic(root, split: str) -> list[dict]:
    """Records for ``split`` ("train"/"val") of the ``ADEChallengeData2016`` folder ``root``, sorted.

    Each record carries ``label_lut`` = the shift-by-one table (0 -> 255).
    """
    root = Path(root)
    sub = _SPLITS.get(split, split)
    image_dir, gt_dir = root / "images" / sub, root / "annotations" / sub
    for what, d in (("ADE20K root", root), (f"ADE20K {sub} images", image_dir),
                    (f"ADE20K {sub} annotations", gt_dir)):
        if not d.is_dir():
            raise missing_path_error(what, d, ADE20K_LAYOUT)
    files = sorted(image_dir.glob("*.jpg"))
    if not files:
        raise missing_path_error(f"ADE20K {sub} split is empty (no *.jpg)", image_dir, ADE20K_LAYOUT)
    return pair_records(((f, gt_dir / f"{f.stem}.png") for f in files), label_lut=ADE20K_LUT)
