"""Predictions of a trained model on any images, drawn as overlays with a legend (``tools/demo.py``).

The image is decoded as the ONNX runners decode it (OpenCV, EXIF orientation applied), goes through the
recipe's test mapper (resized to the test factor with the recipe's filter), and the model predicts labels at
the image's own size (with the class offsets its checkpoint carries). Each image gets the folder tools'
outputs (:mod:`softlabelseg.folder_contract`): ``<stem>_labels.png`` (train ids) and ``<stem>_overlay.png``
(the runners' overlay, ignore black, with a legend of the classes present below it).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .folder_contract import IMAGE_EXTENSIONS, blend, find_images, output_stems, output_targets, palette
from .utils.fileio import atomic_write

__all__ = ["draw_overlay", "list_images", "output_paths", "predict_image", "write_prediction"]


def list_images(source: str, output: str) -> list[str]:
    """The images of ``source`` (a file, or a folder searched recursively), sorted. Refuses an ``output``
    folder inside a ``source`` folder, one whose overlay would replace a ``source`` image, an ``output``
    that is a file, and two images of one stem (:class:`~softlabelseg.folder_contract.SameStemError`): the
    demo never writes where it reads, nor reads what it wrote, nor one output twice."""
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
    found = [str(p) for p in find_images(source)]
    if not found:
        raise FileNotFoundError(f"--input {source} holds no image ({', '.join(IMAGE_EXTENSIONS)})")
    output_stems(found, source, output)
    return found


@torch.no_grad()
def predict_image(model, mapper, path: str) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 (H, W, 3), labels uint8 (H, W)) of the image at ``path`` (the model in eval mode),
    decoded as the runners decode it; raises :class:`~softlabelseg.folder_contract.ImageReadError` (an
    OSError) naming an unreadable file."""
    from .folder_contract import read_image

    image = read_image(path)
    inputs = [mapper.test_input(image)]
    if callable(getattr(model, "predict_labels", None)):
        labels = model.predict_labels(inputs)[0]["sem_seg_labels"]
    else:
        labels = model(inputs)[0]["sem_seg"].argmax(0)
    return image, labels.cpu().numpy().astype(np.uint8)


def draw_overlay(image: np.ndarray, labels: np.ndarray, colors, class_names, alpha: float = 0.5,
                 ignore_value: int = 255) -> np.ndarray:
    """``image`` blended with the colours of ``labels`` as the runners draw it
    (:func:`~softlabelseg.folder_contract.blend`: ignore and unknown ids black), and below it a legend strip
    naming the classes present, largest first. uint8 (H + legend, W, 3)."""
    from PIL import Image, ImageDraw

    lut = palette(colors, ignore_value)
    known = labels < len(class_names)
    counts = np.bincount(labels[known].ravel(), minlength=len(class_names))
    present = [c for c in np.argsort(-counts) if counts[c] > 0]
    row_h, swatch, width = 16, 12, image.shape[1]
    per_row = max(1, width // 150)
    rows = max(1, -(-len(present) // per_row))
    canvas = Image.new("RGB", (width, image.shape[0] + rows * row_h + 4), (255, 255, 255))
    canvas.paste(Image.fromarray(blend(image, labels, lut, alpha)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, c in enumerate(present):
        x, y = (k % per_row) * (width // per_row) + 4, image.shape[0] + 2 + (k // per_row) * row_h
        draw.rectangle([x, y + 2, x + swatch, y + 2 + swatch], fill=tuple(int(v) for v in lut[c]),
                       outline=(0, 0, 0))
        share = 100.0 * counts[c] / max(1, int(known.sum()))
        draw.text((x + swatch + 4, y + 2), f"{class_names[c]} {share:.0f}%", fill=(0, 0, 0))
    return np.asarray(canvas)


def output_paths(output: str, path: str, source: str) -> tuple[str, str]:
    """(overlay, labels) paths of the image ``path`` read from ``source`` (a file, or the folder above it):
    ``<stem>_overlay.png``, ``<stem>_labels.png`` (:func:`~softlabelseg.folder_contract.output_targets`)."""
    rel = os.path.relpath(path, source) if os.path.isdir(source) else os.path.basename(path)
    labels, overlay = output_targets(output, os.path.splitext(rel)[0])
    return str(overlay), str(labels)


def write_prediction(output: str, path: str, source: str, overlay: np.ndarray, labels: np.ndarray
                     ) -> tuple[str, str]:
    """Writes ``<output>/<relative folder>/<stem>_overlay.png`` and ``<stem>_labels.png`` atomically;
    returns both paths. The relative folder is the image's below ``source`` (none for a single file)."""
    from PIL import Image

    written = output_paths(output, path, source)
    for target, array in zip(written, (overlay, labels), strict=True):
        atomic_write(target, lambda f, a=array: Image.fromarray(a).save(f, format="PNG"))
    return written
