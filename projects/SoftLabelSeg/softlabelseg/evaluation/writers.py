"""Prediction writers: Cityscapes submission ``*_labelIds.png`` and colourised overlays."""

from __future__ import annotations

import os

import numpy as np

from ..utils.fileio import atomic_write

__all__ = ["CityscapesLabelIdsWriter", "OverlayWriter", "trainid_to_labelid_lut", "image_basename"]


def trainid_to_labelid_lut() -> np.ndarray:
    """uint8 (256,) lookup table: Cityscapes train id -> official label id (unknown/255 -> 0, unlabeled)."""
    from cityscapesscripts.helpers.labels import labels

    lut = np.zeros(256, dtype=np.uint8)
    for lab in labels:
        if 0 <= lab.trainId < 255:
            lut[lab.trainId] = lab.id
    return lut


def image_basename(file_name: str) -> str:
    """``.../frankfurt_000000_000294_leftImg8bit.png`` -> ``frankfurt_000000_000294``."""
    stem = os.path.splitext(os.path.basename(file_name))[0]
    return stem[: -len("_leftImg8bit")] if stem.endswith("_leftImg8bit") else stem


def _save_png(path: str, array: np.ndarray) -> None:
    from PIL import Image

    atomic_write(path, lambda f: Image.fromarray(array).save(f, format="PNG"))


class CityscapesLabelIdsWriter:
    """Writes ``<root>/<city>/<basename>_labelIds.png`` (uint8 label ids), the layout the official
    Cityscapes server and ``cityscapesscripts`` evaluation accept (city = the image's parent folder)."""

    def __init__(self, root: str):
        self.root = root
        self._lut = trainid_to_labelid_lut()

    def write(self, inp: dict, pred: np.ndarray) -> str:
        """pred: uint8 (H, W) train ids. Returns the written path."""
        name = inp["file_name"]
        city = os.path.basename(os.path.dirname(name))
        path = os.path.join(self.root, city, image_basename(name) + "_labelIds.png")
        _save_png(path, self._lut[pred])
        return path


class OverlayWriter:
    """Writes ``<root>/<basename>.png``: the full-resolution image blended with the coloured prediction."""

    def __init__(self, root: str, colors=None, max_images: int = 50, alpha: float = 0.5):
        self.root = root
        self.max_images = max_images
        self.alpha = alpha
        self._count = 0
        if colors is None:
            rng = np.random.default_rng(0)
            colors = rng.integers(0, 256, size=(256, 3))
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[: len(colors)] = np.asarray(colors, dtype=np.uint8)[:256]
        self._palette = palette

    def write(self, inp: dict, pred: np.ndarray) -> str | None:
        """pred: uint8 (H, W) train ids; the image is read from ``inp["file_name"]``."""
        if self._count >= self.max_images:
            return None
        from PIL import Image

        color = self._palette[pred]
        with Image.open(inp["file_name"]) as im:
            image = np.asarray(im.convert("RGB").resize((pred.shape[1], pred.shape[0])), dtype=np.float32)
        blend = (1 - self.alpha) * image + self.alpha * color.astype(np.float32)
        path = os.path.join(self.root, image_basename(inp["file_name"]) + ".png")
        _save_png(path, blend.round().clip(0, 255).astype(np.uint8))
        self._count += 1
        return path
