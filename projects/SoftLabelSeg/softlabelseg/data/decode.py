"""Strict image / label decoding: every bad input raises :class:`BadSampleError` naming the file.

Images come back as RGB ``uint8 (H, W, 3)``; labels as train ids ``uint8 (H, W)`` with 255 = ignore,
after the record's optional look-up table (raw PNG value -> train id, -1 marks values that must not occur).
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections import Counter

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["BadSampleError", "BAD_INPUT_COUNTS", "check_label_values", "collect_bad_records", "image_size",
           "label_file", "note_bad_input", "pair_records", "read_image", "read_label", "read_sem_seg",
           "reject_record"]

logger = logging.getLogger(__name__)
BAD_INPUT_COUNTS: Counter = Counter()  # per process: "skipped" / "converted" -> count


class BadSampleError(ValueError):
    """A file that cannot be used as given. ``path`` names it; the message says what to do."""

    def __init__(self, path, message: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {message}")


_BAD_RECORDS: contextvars.ContextVar[list | None] = contextvars.ContextVar("bad_records", default=None)


@contextlib.contextmanager
def collect_bad_records():
    """Within this context, dataset listers skip a bad record (:func:`reject_record` appends the error to
    the yielded list) instead of raising."""
    errors: list[BadSampleError] = []
    token = _BAD_RECORDS.set(errors)
    try:
        yield errors
    finally:
        _BAD_RECORDS.reset(token)


def reject_record(err: BadSampleError) -> None:
    """A lister found a bad record: raise ``err``, or inside :func:`collect_bad_records` record it."""
    errors = _BAD_RECORDS.get()
    if errors is None:
        raise err
    errors.append(err)


def label_file(image, *candidates) -> str:
    """The first existing label file among ``candidates`` for ``image``; raises :class:`BadSampleError`
    naming what was looked for (and saying so when a candidate is a folder, not a file)."""
    for c in candidates:
        if os.path.isfile(c):
            return os.fspath(c)
    folders = [os.fspath(c) for c in candidates if os.path.isdir(c)]
    if folders:
        raise BadSampleError(image, f"its label path {folders[0]} is a folder, not a label file; remove or "
                             "rename the folder")
    looked = " and ".join(map(os.fspath, candidates))
    raise BadSampleError(image, f"no label for this image: looked for {looked}")


def pair_records(pairs, **extra) -> list[dict]:
    """Records ``dict(file_name, sem_seg_file_name, height, width, image_id, **extra)`` for (image, label)
    path pairs, the size read from the image header; a pair with a missing label or an unreadable header
    goes to :func:`reject_record`."""
    records = []
    for image, label in pairs:
        try:
            label = label_file(image, label)
            h, w = image_size(image)
        except BadSampleError as e:
            reject_record(e)
            continue
        records.append({"file_name": os.fspath(image), "sem_seg_file_name": label, "height": h, "width": w,
                        "image_id": os.path.splitext(os.path.basename(image))[0], **extra})
    return records


def note_bad_input(kind: str, err: Exception | str) -> int:
    """Count and log an input that was skipped or converted (never silent). Returns the running count."""
    BAD_INPUT_COUNTS[kind] += 1
    n = BAD_INPUT_COUNTS[kind]
    if n <= 20 or n % 100 == 0:
        logger.warning("%s input #%d in this process: %s", kind, n, err)
    return n


def _open(path, what: str) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()  # decode now so truncation surfaces here, with the file name
    except FileNotFoundError:
        raise BadSampleError(path, f"{what} file does not exist") from None
    except UnidentifiedImageError:
        raise BadSampleError(path, f"{what} file is not a readable image (corrupt or wrong format)") from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated / broken streams
        raise BadSampleError(path, f"{what} file is truncated or corrupt ({e})") from None
    return img


def image_size(path) -> tuple[int, int]:
    """(height, width) from the file header only."""
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        raise BadSampleError(path, f"cannot read the image header ({e})") from None
    return h, w


def read_image(path, *, convert_to_rgb: bool = False) -> np.ndarray:
    """Decode an RGB image -> ``uint8 (H, W, 3)``.

    Grayscale, palette, RGBA or 16-bit images raise unless ``convert_to_rgb`` (then they are converted
    and counted in the log as "converted").
    """
    img = _open(path, "image")
    if img.mode != "RGB":
        if not convert_to_rgb:
            raise BadSampleError(
                path, f"image mode is {img.mode!r} ({len(img.getbands())} channel(s)); expected 8-bit RGB. "
                "Convert the file, or pass convert_to_rgb=True to the mapper to convert on the fly "
                "(or skip_bad_samples=True to the loader to skip it).")
        note_bad_input("converted", BadSampleError(path, f"image mode {img.mode!r} converted to RGB"))
        if img.mode in ("I", "I;16", "I;16B", "F"):  # wide grayscale: scale to 8 bit first
            arr = np.asarray(img, dtype=np.float64)
            arr = np.clip(arr * (255.0 / max(float(arr.max()), 1.0)), 0, 255).astype(np.uint8)
            img = Image.fromarray(arr)
        img = img.convert("RGB")
    return np.asarray(img)


def check_label_values(label: np.ndarray, num_classes: int, ignore_value: int = 255, path="<label>") -> None:
    """Raise :class:`BadSampleError` when ``label`` holds values that are neither a class nor ignore."""
    counts = np.bincount(label.ravel(), minlength=256)
    counts[ignore_value] = 0
    bad = np.flatnonzero(counts[num_classes:]) + num_classes
    if bad.size:
        raise BadSampleError(
            path, f"label values {bad[:10].tolist()} are neither a class id in [0, {num_classes}) nor the "
            f"ignore value {ignore_value} ({int(counts[bad].sum())} pixels)")


def read_label(path, lut=None, num_classes: int | None = None, ignore_value: int = 255) -> np.ndarray:
    """Decode a single-channel id PNG -> train ids ``uint8 (H, W)`` (``ignore_value`` = ignore).

    ``lut``: optional 256 entries mapping raw values to train ids; entries -1 mark raw values that are
    invalid (reported with the file name). ``num_classes``: when given, values outside
    ``[0, num_classes) + {ignore_value}`` raise.
    """
    img = _open(path, "label")
    if img.mode not in ("L", "P", "I", "I;16"):
        raise BadSampleError(
            path, f"label mode is {img.mode!r}; expected a single-channel id PNG (e.g. *_labelTrainIds.png, "
            "not the *_color.png visualisation)")
    raw = np.asarray(img)
    if not raw.flags.writeable:  # PIL hands out read-only buffers; torch.from_numpy wants writable ones
        raw = raw.copy()
    if raw.dtype != np.uint8:
        if raw.size and (raw.min() < 0 or raw.max() > 255):
            raise BadSampleError(path, f"label values span [{raw.min()}, {raw.max()}]; expected 0..255")
        raw = raw.astype(np.uint8)
    if lut is not None:
        lut = np.asarray(lut, dtype=np.int16)
        mapped = lut[raw]
        if (mapped < 0).any():
            bad = np.unique(raw[mapped < 0])
            raise BadSampleError(path, f"raw label values {bad[:10].tolist()} have no train id in this "
                                 "dataset's label table")
        raw = mapped.astype(np.uint8)
    if num_classes is not None:
        check_label_values(raw, num_classes, ignore_value, path)
    return raw


def read_sem_seg(record: dict, num_classes: int | None = None, ignore_value: int = 255) -> np.ndarray:
    """The record's label as train ids ``uint8 (H, W)``, applying its ``label_lut`` when present."""
    return read_label(record["sem_seg_file_name"], record.get("label_lut"), num_classes, ignore_value)
