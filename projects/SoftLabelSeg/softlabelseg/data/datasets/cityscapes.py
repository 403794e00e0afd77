"""Cityscapes semantic segmentation in its own layout (also used for ToyCity, which mirrors it).

    <root>/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    <root>/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelTrainIds.png   (preferred)
                                                    _gtFine_labelIds.png        (mapped to train ids on the fly)
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..catalog import missing_path_error
from ..decode import BadSampleError, image_size, label_file, reject_record
from .builtin_meta import CITYSCAPES_ID_TO_TRAINID

__all__ = ["CITYSCAPES_LAYOUT", "load_cityscapes_semantic"]

logger = logging.getLogger(__name__)
CITYSCAPES_LAYOUT = ("<root>/leftImg8bit/{split}/{city}/*_leftImg8bit.png and "
                     "<root>/gtFine/{split}/{city}/*_gtFine_labelTrainIds.png (or *_gtFine_labelIds.png)")
_IMG_SUFFIX = "_leftImg8bit.png"


def load_cityscapes_semantic(root, split: str, read_sizes: bool = True) -> list[dict]:
    """Records for one split, sorted by file name.

    Args:
        root: the Cityscapes folder (holding ``leftImg8bit/`` and ``gtFine/``).
        split: "train", "val" or "test".
        read_sizes: read ``height``/``width`` from each image header (else assume 1024x2048).
    Returns:
        list of dict(file_name, sem_seg_file_name, height, width, image_id[, label_lut]); ``label_lut`` is
        set when only ``*_labelIds.png`` exist (ids -> train ids, cityscapesscripts' table).
    """
    root = Path(root)
    image_dir, gt_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for what, d in (("Cityscapes root", root), (f"Cityscapes {split} images", image_dir),
                    (f"Cityscapes {split} labels", gt_dir)):
        if not d.is_dir():
            raise missing_path_error(what, d, CITYSCAPES_LAYOUT)
    files = sorted(image_dir.glob(f"*/*{_IMG_SUFFIX}"))
    if not files:
        raise missing_path_error(f"Cityscapes {split} split is empty (no *{_IMG_SUFFIX})",
                                 image_dir / "<city>", CITYSCAPES_LAYOUT)
    records, n_ids = [], 0
    for f in files:
        city, stem = f.parent.name, f.name[: -len(_IMG_SUFFIX)]
        train_ids = gt_dir / city / f"{stem}_gtFine_labelTrainIds.png"
        label_ids = gt_dir / city / f"{stem}_gtFine_labelIds.png"
        rec = {"file_name": str(f), "image_id": stem}
        try:
            rec["sem_seg_file_name"] = label_file(f, train_ids, label_ids)
            rec["height"], rec["width"] = image_size(f) if read_sizes else (1024, 2048)
        except BadSampleError as e:
            reject_record(e)
            continue
        if rec["sem_seg_file_name"] == str(label_ids):
            rec["label_lut"] = CITYSCAPES_ID_TO_TRAINID
            n_ids += 1
        records.append(rec)
    if n_ids:
        logger.info("Cityscapes %s: %d of %d labels are *_labelIds.png, mapped to train ids on the fly",
                    split, n_ids, len(records))
    return records
