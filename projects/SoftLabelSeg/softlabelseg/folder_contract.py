"""What every "segment a folder" tool agrees on: ``tools/demo.py``, the Python runner
(``export/infer_onnx.py``) and the C++ runner (``export/cpp/src/main.cpp`` mirrors each rule here).

- the image extensions (any letter case), searched recursively, sorted;
- decoding with OpenCV (``cv2.imdecode``, which applies the EXIF orientation, as ``cv2.imread`` does), to RGB;
- outputs ``<stem>_labels.png`` (train ids) and ``<stem>_overlay.png`` under the image's sub-folder;
- two inputs that would write one output (``a.png`` and ``a.jpg``) are refused before any image, naming both;
- one palette: the class colours, with the ignore value and unknown ids black; the overlay blends it over the
  image with ``cv2.addWeighted``.

numpy and OpenCV only (no torch), so the ONNX runner can use it.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

__all__ = ["IGNORE_COLOR", "IMAGE_EXTENSIONS", "OUTPUT_SUFFIXES", "ImageReadError", "SameStemError", "blend",
           "decode_image", "find_images", "output_stems", "output_targets", "palette", "read_image"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
OUTPUT_SUFFIXES = ("_labels.png", "_overlay.png")
IGNORE_COLOR = (0, 0, 0)  # the ignore value and ids without a colour, in the overlay


class ImageReadError(OSError):
    """An input image is missing, unreadable, or not an image OpenCV can decode."""


class SameStemError(ValueError):
    """Two input images would write the same outputs."""


def find_images(folder: str | os.PathLike) -> list[Path]:
    """The files under ``folder`` (recursive) whose extension is one of :data:`IMAGE_EXTENSIONS`, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def decode_image(data: np.ndarray | bytes, name: str = "<bytes>") -> np.ndarray:
    """RGB uint8 (H, W, 3) from encoded image bytes, the EXIF orientation applied (``cv2.imdecode`` with
    ``IMREAD_COLOR``); raises :class:`ImageReadError` naming ``name``."""
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else data
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if image is None:
        raise ImageReadError(f"cannot read image {name!r}: not an image format OpenCV can decode, or corrupt")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """RGB uint8 (H, W, 3) of the image file ``path`` (:func:`decode_image`); raises
    :class:`ImageReadError` naming the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageReadError(f"image {path!r} does not exist")
    # the bytes through Python, then cv2.imdecode: cv2.imread crashes the process on a file name that is
    # not valid UTF-8
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as e:
        raise ImageReadError(f"cannot read image {path!r}: {e.strerror or e}") from None
    return decode_image(data, path)


def output_stems(files, root: str | os.PathLike | None, output: str | os.PathLike = "") -> dict[Path, Path]:
    """Output stem of each input file: its path relative to ``root`` (the input folder; None for single
    files) without the extension. Raises :class:`SameStemError` naming both files when two inputs share a
    stem, before any image is read: one output would replace the other."""
    stems: dict[Path, Path] = {}
    seen: dict[Path, Path] = {}
    for f in map(Path, files):
        rel = f.relative_to(root) if root is not None else Path(f.name)
        stem = rel.with_suffix("")
        if stem in seen:
            target = f"{Path(output) / stem}{OUTPUT_SUFFIXES[0]}"
            raise SameStemError(f"inputs '{seen[stem]}' and '{f}' would both write '{target}': rename one of "
                                "them or segment them separately")
        seen[stem] = f
        stems[f] = stem
    return stems


def output_targets(output: str | os.PathLike, stem: str | os.PathLike) -> tuple[Path, Path]:
    """(``<output>/<stem>_labels.png``, ``<output>/<stem>_overlay.png``)."""
    base = Path(output) / stem
    return tuple(base.parent / f"{base.name}{suffix}" for suffix in OUTPUT_SUFFIXES)


def palette(colors, ignore_value: int = 255) -> np.ndarray:
    """(256, 3) uint8 lookup table: the class colours, :data:`IGNORE_COLOR` for ``ignore_value`` and for ids
    without a colour."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:] = IGNORE_COLOR
    colors = np.asarray(colors, np.uint8).reshape(-1, 3)[:256]
    lut[: len(colors)] = colors
    lut[ignore_value % 256] = IGNORE_COLOR
    return lut


def blend(image: np.ndarray, labels: np.ndarray, lut: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB uint8 (H, W, 3): ``(1 - alpha) * image + alpha * lut[labels]``, rounded as ``cv2.addWeighted``."""
    return cv2.addWeighted(image, 1.0 - alpha, lut[labels], alpha, 0.0)
