"""Your own data without code: a folder of images, a folder of label PNGs, pairs matched by file stem.

:func:`load_folder_semantic` lists one split (detectron2's ``load_sem_seg(gt_root, image_root, gt_ext,
image_ext)``, MMSegmentation's ``img_dir`` / ``ann_dir`` with ``img_suffix`` / ``seg_map_suffix``): each
image ``<images>/<key><image_suffix>`` pairs with the label ``<labels>/<key><label_suffix>``, where ``key``
is the path below the folder without the suffix, so nested folders (``city/a``) pair too. Images without a
label and labels without an image stop the listing with one error that counts both and names the first few.

Labels hold class ids 0..C-1 and the ignore value (255 unless the data file says otherwise; another value is
mapped to 255 through the records' ``label_lut``). Values are checked where files are decoded anyway: every
file of the split a run is scored on before training (``engine.preflight.check_test_files``), each
training label when the mapper reads it. Evaluation is at each label's own size.
"""
from __future__ import annotations

import logging
import os

from ...folder_contract import IMAGE_EXTENSIONS  # the folder tools' list (the demo, both runners)
from ..catalog import DatasetNotFoundError
from ..decode import BadSampleError, pair_records, reject_record

__all__ = ["IMAGE_EXTENSIONS", "folder_pairs", "load_folder_semantic"]

logger = logging.getLogger(__name__)
SHOWN = 5  # orphans named in an error, per side


def _suffix_of(name: str, suffixes: tuple[str, ...], ignore_case: bool) -> str | None:
    low = name.lower() if ignore_case else name
    for s in suffixes:
        if low.endswith(s) and len(name) > len(s):
            return s
    return None


def _list_files(folder: str, suffixes: tuple[str, ...], ignore_case: bool, what: str) -> dict[str, str]:
    """``{key: name}`` of the files under ``folder`` (recursively, hidden entries left out) that end with
    one of ``suffixes``; ``name`` is the path relative to ``folder`` with ``/`` separators, ``key`` the same
    without the suffix."""
    found: dict[str, str] = {}
    other: list[str] = []
    hidden = 0
    for parent, dirs, files in os.walk(folder, followlinks=True):
        hidden += sum(d.startswith(".") for d in dirs) + sum(f.startswith(".") for f in files)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith("."):
                continue
            name = os.path.relpath(os.path.join(parent, f), folder).replace(os.sep, "/")
            suffix = _suffix_of(f, suffixes, ignore_case)
            if suffix is None:
                other.append(name)
                continue
            key = name[: len(name) - len(suffix)]
            if key in found:
                raise BadSampleError(os.path.join(folder, name), f"and {found[key]} are two {what} of the "
                                     f"same stem {key!r}; keep one, or set a suffix that tells them apart")
            found[key] = name
    if other:
        logger.info(f"{folder}: {len(other)} file(s) not ending with {' or '.join(suffixes)} left out "
                    f"(e.g. {', '.join(other[:3])})")
    if hidden:
        logger.info(f"{folder}: {hidden} hidden file(s) or folder(s) (names starting with '.') left out")
    return found


def _orphan_error(image_dir: str, label_dir: str, images: list[str], labels: list[str],
                  image_suffix: str | None, label_suffix: str) -> BadSampleError:
    """One error for both kinds of orphans (file names relative to their folders): counts, the first few."""
    any_image = "/".join(IMAGE_EXTENSIONS)
    parts = []
    for names, what, looked in (
        (images, "image(s) without a label", f"{label_dir}/<stem>{label_suffix}"),
        (labels, "label(s) without an image", f"{image_dir}/<stem>{image_suffix or any_image}"),
    ):
        if names:
            more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
            parts.append(f"{len(names)} {what} (looked for {looked}): {', '.join(names[:SHOWN])}{more}")
    now = f"{image_suffix or 'any image extension'!r} / {label_suffix!r}"
    return BadSampleError(
        image_dir, "images and labels do not pair up by file stem: " + "; ".join(parts) + ". Add or remove "
        "those files, or set image_suffix / label_suffix (the end of each file name after the stem an image "
        f"and its label share; now {now}).")


def folder_pairs(image_dir, label_dir, image_suffix: str | None = None,
                 label_suffix: str = ".png") -> tuple[list[tuple[str, str, str]], BadSampleError | None]:
    """``([(key, image path, label path), ...] sorted by key, orphan error or None)`` of two folders.

    ``image_suffix``: the end of every image file name (``".jpg"``, ``"_leftImg8bit.png"``); None: any of
    :data:`IMAGE_EXTENSIONS`, in any letter case. ``label_suffix``: the end of every label file name.
    Raises :class:`DatasetNotFoundError` for a missing folder or one without images.
    """
    image_dir, label_dir = os.fspath(image_dir), os.fspath(label_dir)
    for what, folder in (("images", image_dir), ("labels", label_dir)):
        if not os.path.isdir(folder):
            raise DatasetNotFoundError(f"the {what} folder {folder!r} does not exist (or is not a folder)")
    suffixes = IMAGE_EXTENSIONS if image_suffix is None else (image_suffix,)
    images = _list_files(image_dir, suffixes, image_suffix is None, "images")
    if not images:
        raise DatasetNotFoundError(f"the images folder {image_dir!r} holds no file ending with "
                                   f"{' or '.join(suffixes)}")
    labels = _list_files(label_dir, (label_suffix,), False, "labels")
    no_label = [images[k] for k in sorted(images) if k not in labels]
    no_image = [labels[k] for k in sorted(labels) if k not in images]
    err = _orphan_error(image_dir, label_dir, no_label, no_image, image_suffix, label_suffix) \
        if no_label or no_image else None
    pairs = [(k, os.path.join(image_dir, images[k]), os.path.join(label_dir, labels[k]))
             for k in sorted(images) if k in labels]
    return pairs, err


def load_folder_semantic(image_dir, label_dir, image_suffix: str | None = None, label_suffix: str = ".png",
                         label_lut=None) -> list[dict]:
    """Records ``dict(file_name, sem_seg_file_name, height, width, image_id)`` of the image / label pairs
    of two folders (see :func:`folder_pairs`), sorted by stem; ``image_id`` is the stem with its sub-folder
    (``city/a``). ``label_lut``: optional 256-entry table raw value -> class id (255 ignore, -1 invalid).

    Orphans raise one :class:`BadSampleError`; under ``skip_bad_samples`` (``collect_bad_records``) that
    error is logged and the pairs that match are used.
    """
    pairs, orphans = folder_pairs(image_dir, label_dir, image_suffix, label_suffix)
    if orphans is not None:
        reject_record(orphans)
    extra = {} if label_lut is None else {"label_lut": tuple(label_lut)}
    records = pair_records(((image, label) for _, image, label in pairs), **extra)
    key_of = {image: key for key, image, _ in pairs}
    for r in records:
        r["image_id"] = key_of[r["file_name"]]
    return records
