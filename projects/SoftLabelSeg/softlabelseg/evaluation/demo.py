"""Predictions of a trained model on any images, drawn as overlays with a legend (``tools/demo.py``).

The image goes through the recipe's test mapper (resized to the test factor with the recipe's filter), the
model predicts labels at the image's own size (with the class offsets its checkpoint carries), and each
image gets ``<stem>.png`` (the image blended with the class colours, and a legend of the classes present)
and ``<stem>_labels.png`` (train ids).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..utils.fileio import atomic_write

__all__ = ["IMAGE_EXTENSIONS", "draw_overlay", "list_images", "output_paths", "predict_image",
           "write_prediction"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(source: str, output: str) -> list[str]:
    """The images of ``source`` (a file, or a folder searched recursively), sorted. Refuses an ``output``
    folder inside a ``source`` folder, one whose overlay would replace a ``source`` image, and an ``output``
    that is a file: the demo never writes where it reads, nor reads what it wrote."""
    if not os.path.exists(source):
        raise FileNotFoundError(f"--input {source} does not exist")
    if os.path.exists(output) and not os.path.isdir(output):
        raise ValueError(f"--output {output} is a file; the demo writes a folder of overlays: choose a "
                         "folder")
    if os.path.isfile(source):
        targets = output_paths(output, source, source)
        if any(os.path.realpath(t) == os.path.realpath(source) for t in targets):
            raise ValueError(f"--output {output} would write {targets[0]} over the input image {source}: "
                             "choose another output folder")
        return [source]
    src, out = os.path.realpath(source), os.path.realpath(output)
    if os.path.commonpath([src, out]) == src:
        raise ValueError(f"--output {output} lies inside --input {source}: choose a folder outside it")
    found = sorted(os.path.join(root, f) for root, _, files in os.walk(source) for f in files
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not found:
        raise FileNotFoundError(f"--input {source} holds no image ({', '.join(IMAGE_EXTENSIONS)})")
    return found


@torch.no_grad()
def predict_image(model, mapper, path: str, convert_to_rgb: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 (H, W, 3), labels uint8 (H, W)) of the image at ``path`` (the model in eval mode);
    raises ``BadSampleError`` naming an unreadable file."""
    from ..data import read_image

    image = read_image(path, convert_to_rgb=convert_to_rgb)
    inputs = [mapper.test_input(image)]
    if callable(getattr(model, "predict_labels", None)):
        labels = model.predict_labels(inputs)[0]["sem_seg_labels"]
    else:
        labels = model(inputs)[0]["sem_seg"].argmax(0)
    return image, labels.cpu().numpy().astype(np.uint8)


def draw_overlay(image: np.ndarray, labels: np.ndarray, colors, class_names, alpha: float = 0.5
                 ) -> np.ndarray:
    """``image`` blended with the colours of ``labels`` (ignore stays the image), and below it a legend
    strip naming the classes present, largest first. uint8 (H + legend, W, 3)."""
    from PIL import Image, ImageDraw

    palette = np.zeros((256, 3), np.uint8)
    palette[: len(colors)] = np.asarray(colors, np.uint8)
    known = labels < len(class_names)
    blend = image.astype(np.float32)
    blend[known] = (1 - alpha) * blend[known] + alpha * palette[labels[known]]
    counts = np.bincount(labels[known].ravel(), minlength=len(class_names))
    present = [c for c in np.argsort(-counts) if counts[c] > 0]
    row_h, swatch, width = 16, 12, image.shape[1]
    per_row = max(1, width // 150)
    rows = max(1, -(-len(present) // per_row))
    canvas = Image.new("RGB", (width, image.shape[0] + rows * row_h + 4), (255, 255, 255))
    canvas.paste(Image.fromarray(blend.round().clip(0, 255).astype(np.uint8)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, c in enumerate(present):
        x, y = (k % per_row) * (width // per_row) + 4, image.shape[0] + 2 + (k // per_row) * row_h
        draw.rectangle([x, y + 2, x + swatch, y + 2 + swatch], fill=tuple(int(v) for v in palette[c]),
                       outline=(0, 0, 0))
        share = 100.0 * counts[c] / max(1, int(known.sum()))
        draw.text((x + swatch + 4, y + 2), f"{class_names[c]} {share:.0f}%", fill=(0, 0, 0))
    return np.asarray(canvas)


def output_paths(output: str, path: str, source: str) -> tuple[str, str]:
    """(overlay, labels) paths of the image ``path`` read from ``source`` (a file, or the folder above it)."""
    rel = os.path.relpath(path, source) if os.path.isdir(source) else os.path.basename(path)
    stem = os.path.join(output, os.path.splitext(rel)[0])
    return stem + ".png", stem + "_labels.png"


def write_prediction(output: str, path: str, source: str, overlay: np.ndarray, labels: np.ndarray
                     ) -> tuple[str, str]:
    """Writes ``<output>/<relative folder>/<stem>.png`` and ``<stem>_labels.png`` atomically; returns both
    paths. The relative folder is the image's below ``source`` (none for a single file)."""
    from PIL import Image

    written = output_paths(output, path, source)
    for target, array in zip(written, (overlay, labels), strict=True):
        atomic_write(target, lambda f, a=array: Image.fromarray(a).save(f, format="PNG"))
    return written
