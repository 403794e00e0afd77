"""Decode every file of a split once and check its labels, before a run depends on it.

A training run evaluates its test split only at the end: a truncated image or a label value the dataset does
not define would otherwise surface after all the training. :func:`check_records` opens every image and
label of the records and checks the label values against the classes (through the record's look-up table);
files that passed before with the same size, modification time and settings are skipped (a cache file), so
checking a split a second time costs a ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

from .decode import BadSampleError, read_image, read_sem_seg

__all__ = ["CACHE_ENV", "check_records", "default_cache_file"]

logger = logging.getLogger(__name__)
CACHE_ENV = "SOFTLABELSEG_CACHE"


def default_cache_file() -> str:
    """``$SOFTLABELSEG_CACHE/checked_files.json`` (default ``~/.cache/softlabelseg``)."""
    folder = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "softlabelseg")
    return os.path.join(folder, "checked_files.json")


def _stamp(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _settings(record: dict, num_classes: int, ignore_value: int, convert_to_rgb: bool) -> str:
    lut = record.get("label_lut")
    table = list(lut) if lut is not None else None
    text = json.dumps([num_classes, ignore_value, bool(convert_to_rgb), table])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _load(cache_file: str) -> dict:
    try:
        with open(cache_file) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(cache_file: str, data: dict) -> None:
    from ..utils.fileio import atomic_write

    try:
        atomic_write(cache_file, lambda f: f.write(json.dumps(data).encode()))
    except OSError as e:  # a cache that cannot be written only costs the next check its time
        logger.warning(f"could not write the file-check cache {cache_file}: {e}")


def check_records(records: list[dict], num_classes: int, ignore_value: int = 255, *,
                  convert_to_rgb: bool = False, cache_file: str | None = None) -> list[BadSampleError]:
    """Decodes each record's image and label and checks the label values; returns the errors (each names
    its file), an empty list when every file is good. ``cache_file``: where passed files are remembered
    (None: :func:`default_cache_file`)."""
    cache_file = cache_file or default_cache_file()
    cache = _load(cache_file)
    errors, checked, fresh = [], 0, 0
    for record in records:
        key = _settings(record, num_classes, ignore_value, convert_to_rgb)
        paths = (record["file_name"], record["sem_seg_file_name"])
        try:
            stamps = [_stamp(p) for p in paths]
        except OSError as e:
            errors.append(BadSampleError(e.filename or paths[0], "cannot be read (missing or not a file)"))
            continue
        if all(cache.get(p) == [*s, key] for p, s in zip(paths, stamps, strict=True)):
            continue
        checked += 1
        try:
            read_image(record["file_name"], convert_to_rgb=convert_to_rgb)
            read_sem_seg(record, num_classes, ignore_value)
        except BadSampleError as e:
            errors.append(e)
            continue
        for p, s in zip(paths, stamps, strict=True):
            cache[p] = [*s, key]
        fresh += 1
    if fresh:
        _save(cache_file, cache)
    logger.info(f"checked {checked} of {len(records)} samples' files ({len(records) - checked} unchanged "
                f"since an earlier check); {len(errors)} bad")
    return errors
