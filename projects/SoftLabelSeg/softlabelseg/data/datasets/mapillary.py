"""Mapillary Vistas v1.2 semantic segmentation, 65 evaluated classes (from the release's config file).

    <root>/{training,validation}/images/*.jpg
    <root>/{training,validation}/v1.2/labels/*.png   (v2.0 release; v1.2-only release: {split}/labels/*.png)
    <root>/config_v1.2.json                          (v1.2-only release: config.json)
"""
from __future__ import annotations

import json
from pathlib import Path

from ..catalog import missing_path_error
from ..decode import BadSampleError, pair_records
from .builtin_meta import MAPILLARY_V12_LABELS, mapillary_tables

__all__ = ["MAPILLARY_LAYOUT", "load_mapillary_semantic", "mapillary_classes"]

MAPILLARY_LAYOUT = ("<root>/{training,validation}/images/*.jpg, <root>/{training,validation}/v1.2/labels/*.png "
                    "(or .../labels/*.png) and <root>/config_v1.2.json (or config.json)")
_SPLITS = {"train": "training", "val": "validation"}
NUM_CLASSES = 65


def _config_file(root: Path) -> Path | None:
    for name in ("config_v1.2.json", "config.json"):
        if (root / name).is_file():
            return root / name
    return None


def mapillary_classes(root=None) -> tuple[list[str], list[tuple], tuple]:
    """(names, colours, LUT) of the 65 evaluated classes: from ``root``'s config file when present,
    else the built-in v1.2 table. Raises when the config file does not describe 65 evaluated classes."""
    cfg = _config_file(Path(root)) if root is not None else None
    if cfg is None:
        return mapillary_tables(MAPILLARY_V12_LABELS)
    try:
        entries = json.loads(cfg.read_text())["labels"]
        labels = [(e["readable"], tuple(e["color"]), bool(e.get("evaluate", True))) for e in entries]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadSampleError(cfg, f"not a Mapillary Vistas config file ({e})") from None
    names, colors, lut = mapillary_tables(labels)
    if len(names) != NUM_CLASSES:
        raise BadSampleError(cfg, f"describes {len(names)} evaluated classes; Mapillary Vistas v1.2 has "
                             f"{NUM_CLASSES} (is this the v2.0 config?)")
    return names, colors, lut


def load_mapillary_semantic(root, split: str) -> list[dict]:
    """Records for ``split`` ("train"/"val") of the Mapillary Vistas folder ``root``, sorted; each carries
    ``label_lut`` (raw value -> train id, unevaluated classes -> 255)."""
    root = Path(root)
    sub = _SPLITS.get(split, split)
    image_dir = root / sub / "images"
    if not root.is_dir():
        raise missing_path_error("Mapillary Vistas root", root, MAPILLARY_LAYOUT)
    if not image_dir.is_dir():
        raise missing_path_error(f"Mapillary Vistas {sub} images", image_dir, MAPILLARY_LAYOUT)
    gt_dir = next((d for d in (root / sub / "v1.2" / "labels", root / sub / "labels") if d.is_dir()), None)
    if gt_dir is None:
        raise missing_path_error(f"Mapillary Vistas {sub} v1.2 labels", root / sub / "v1.2" / "labels",
                                 MAPILLARY_LAYOUT)
    _, _, lut = mapillary_classes(root)
    files = sorted(image_dir.glob("*.jpg"))
    if not files:
        raise missing_path_error(f"Mapillary Vistas {sub} split is empty (no *.jpg)", image_dir,
                                 MAPILLARY_LAYOUT)
    return pair_records(((f, gt_dir / f"{f.stem}.png") for f in files), label_lut=lut)
