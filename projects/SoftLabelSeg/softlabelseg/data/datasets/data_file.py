"""The data file: a small YAML (or JSON) file that makes a folder of images and label PNGs a dataset.

    classes: [road, building, sky, car, person]  # required: id = position (or a .txt file, one a line)
    colors: [[128, 64, 128], [70, 70, 70], ...]  # optional: [r, g, b] per class; generated when absent
    ignore_value: 255       # optional (default 255): the label value that is not scored
    root: .                 # optional: where the folders below start (default: this file's folder)
    image_suffix: .jpg      # optional (default: any of .png .jpg .jpeg .bmp .tif .tiff .webp)
    label_suffix: .png      # optional (default .png)
    train: {images: images/train, labels: labels/train}
    val: {images: images/val, labels: labels/val}  # any other name is a split too (test, ...)

A split may set its own ``image_suffix`` / ``label_suffix``. The dataset name ``folder:<data file>:<split>``
(e.g. ``dataloader.train.dataset=folder:/data/mine/data.yaml:train``) is registered the first time it is
looked up, with metadata the mapper, evaluator, demo and export read: class names, colours, ignore value.
The file is read once per process (at that first look-up).
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass

from ..catalog import DatasetCatalog, DatasetNotFoundError, MetadataCatalog, register_name_pattern
from ..decode import BadSampleError
from .builtin_meta import IGNORE, distinct_colors
from .folder import load_folder_semantic

__all__ = ["FOLDER_PREFIX", "DataFile", "DataFileError", "FolderSplit", "folder_class_mismatch",
           "parse_folder_name", "read_data_file", "register_folder_name"]

FOLDER_PREFIX = "folder:"
_TOP_KEYS = ("classes", "colors", "ignore_value", "root", "image_suffix", "label_suffix")
_SPLIT_KEYS = ("images", "labels", "image_suffix", "label_suffix")


class DataFileError(BadSampleError):
    """A data file that cannot be used as written; the message names the key and what to write."""


@dataclass(frozen=True)
class FolderSplit:
    """One split: its two folders (absolute) and the file-name suffixes that pair them."""

    images: str
    labels: str
    image_suffix: str | None
    label_suffix: str


@dataclass(frozen=True)
class DataFile:
    """A parsed data file. ``label_lut`` maps raw label values to class ids when ``ignore_value`` is not
    255 (None otherwise: labels are used as they are)."""

    path: str
    classes: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_value: int
    splits: dict[str, FolderSplit]

    @property
    def label_lut(self) -> tuple[int, ...] | None:
        if self.ignore_value == IGNORE:
            return None
        lut = [-1] * 256
        lut[: len(self.classes)] = range(len(self.classes))
        lut[self.ignore_value] = IGNORE
        return tuple(lut)


def _unknown_key(path, key: str, where: str, known) -> DataFileError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DataFileError(path, f"unknown key {key!r} {where}{hint}; the keys are {', '.join(known)}, and a "
                         "split is a mapping with images and labels")


def _classes(path, value, base: str) -> tuple[str, ...]:
    if isinstance(value, str):  # a text file, one class name a line
        names_file = os.path.join(base, value)
        try:
            with open(names_file, encoding="utf-8") as f:
                value = [line.strip() for line in f if line.strip()]
        except OSError as e:
            raise DataFileError(path, f"classes: cannot read the class-name file {names_file!r} "
                                f"({e.strerror})") from None
    if not isinstance(value, list) or not value:
        raise DataFileError(path, "classes: expected a non-empty list of class names (class id = position), "
                            "e.g. classes: [road, car, person], or a text file with one name a line")
    if any(isinstance(n, (list, dict)) or n is None for n in value):
        raise DataFileError(path, "classes: every entry must be a name (a string)")
    names = tuple(str(n) for n in value)
    if len(names) > IGNORE:
        raise DataFileError(path, f"classes: {len(names)} names; at most {IGNORE} classes fit 8-bit labels")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataFileError(path, f"classes: {', '.join(map(repr, repeated))} listed more than once")
    return names


def _colors(path, value, n: int) -> tuple[tuple[int, int, int], ...]:
    if value is None:
        return tuple(distinct_colors(n))
    if not isinstance(value, list) or len(value) != n:
        got = len(value) if isinstance(value, list) else type(value).__name__
        raise DataFileError(path, f"colors: expected one [r, g, b] per class ({n}), got {got}; or leave "
                            "colors out for generated ones")
    out = []
    for i, c in enumerate(value):
        if isinstance(c, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", c):
            c = [int(c[k : k + 2], 16) for k in (1, 3, 5)]
        if not (isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)):
            raise DataFileError(path, f"colors[{i}] is {c!r}; expected [r, g, b] with each in 0..255, or "
                                "'#rrggbb'")
        out.append(tuple(c))
    return tuple(out)


def _suffix(path, where: str, value, default):
    if value is None:
        return default
    if not isinstance(value, str) or not value:
        raise DataFileError(path, f"{where}: expected the end of the file names, e.g. '.png', got {value!r}")
    return value


def read_data_file(path) -> DataFile:
    """Parses and checks the data file ``path`` (folders are checked when a split is listed)."""
    import yaml

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DatasetNotFoundError(f"the data file {path!r} does not exist (or is not a file); write one as "
                                   "docs/datasets.md (Your own data) shows")
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise DataFileError(path, f"cannot be read as YAML or JSON ({e})") from None
    if not isinstance(doc, dict):
        raise DataFileError(path, "expected a mapping with classes and splits (train: {images, labels}, ...)")
    if "classes" not in doc:
        raise DataFileError(path, "has no classes: list the class names, class id = position")
    base = os.path.dirname(os.path.abspath(path))
    root = doc.get("root", ".")
    if not isinstance(root, str):
        raise DataFileError(path, f"root: expected a folder, got {root!r}")
    root = os.path.join(base, os.path.expanduser(root))
    classes = _classes(path, doc["classes"], base)
    ignore = doc.get("ignore_value", IGNORE)
    if not isinstance(ignore, int) or isinstance(ignore, bool) or not len(classes) <= ignore <= IGNORE:
        raise DataFileError(path, f"ignore_value: {ignore!r} must be an integer in [{len(classes)}, "
                            f"{IGNORE}] (above the {len(classes)} class ids 0..{len(classes) - 1})")
    image_suffix = _suffix(path, "image_suffix", doc.get("image_suffix"), None)
    label_suffix = _suffix(path, "label_suffix", doc.get("label_suffix"), ".png")
    splits = {}
    for key, value in doc.items():
        if key in _TOP_KEYS:
            continue
        if not isinstance(value, dict):
            raise _unknown_key(path, str(key), "at the top level", _TOP_KEYS)
        for k in value:
            if k not in _SPLIT_KEYS:
                raise _unknown_key(path, str(k), f"in split {key!r}", _SPLIT_KEYS)
        folders = []
        for k in ("images", "labels"):
            if not isinstance(value.get(k), str):
                raise DataFileError(path, f"{key}.{k}: expected a folder (relative to {root}), got "
                                    f"{value.get(k)!r}")
            folders.append(os.path.normpath(os.path.join(root, os.path.expanduser(value[k]))))
        splits[str(key)] = FolderSplit(
            *folders, _suffix(path, f"{key}.image_suffix", value.get("image_suffix"), image_suffix),
            _suffix(path, f"{key}.label_suffix", value.get("label_suffix"), label_suffix))
    if not splits:
        raise DataFileError(path, "names no split; add e.g. train: {images: <folder>, labels: <folder>}")
    return DataFile(path, classes, _colors(path, doc.get("colors"), len(classes)), ignore, splits)


def parse_folder_name(name: str) -> tuple[str, str]:
    """``"folder:<data file>:<split>"`` -> (data file, split)."""
    rest = name[len(FOLDER_PREFIX):]
    path, sep, split = rest.rpartition(":")
    if not sep or not path or not split or "/" in split or "\\" in split:
        raise KeyError(f"dataset {name!r}: expected folder:<data file>:<split>, e.g. "
                       f"folder:{rest or 'data.yaml'}:train")
    return path, split


def register_folder_name(name: str) -> None:
    """Registers ``folder:<data file>:<split>`` in both catalogs (the records are listed on each ``get``)."""
    path, split = parse_folder_name(name)
    spec = read_data_file(path)
    if split not in spec.splits:
        raise DataFileError(path, f"has no split {split!r} (dataset {name!r}); its splits: "
                            f"{', '.join(spec.splits)}")
    s = spec.splits[split]
    lut = spec.label_lut
    DatasetCatalog.register(name, lambda: load_folder_semantic(s.images, s.labels, s.image_suffix,
                                                               s.label_suffix, lut))
    mapping = "class ids as they are, 255 ignored" if lut is None else \
        f"class ids as they are, {spec.ignore_value} -> 255 (ignored), any other value is a bad label"
    MetadataCatalog.get(name).set(
        stuff_classes=list(spec.classes), stuff_colors=list(spec.colors), num_classes=len(spec.classes),
        ignore_label=IGNORE, evaluator_type="sem_seg", evaluation_resolution=None, label_lut=lut,
        label_mapping=mapping, data_file=os.path.abspath(path), image_root=s.images, sem_seg_root=s.labels)


register_name_pattern(FOLDER_PREFIX, register_folder_name)


def _names(node) -> list[str]:
    """The dataset names of a config value: a name, a list of names, or none (records given inline)."""
    from omegaconf import OmegaConf

    if isinstance(node, str):
        return [node]
    if OmegaConf.is_list(node) or isinstance(node, (list, tuple)):
        return [x for x in node if isinstance(x, str)]
    return []


def folder_class_mismatch(cfg, eval_only: bool = False) -> str | None:
    """What disagrees between the class list of the ``folder:`` datasets a job reads and the class counts
    of its config (``model.num_classes``, the mappers' ``num_classes``), as one message with the overrides
    that fix it; None when all agree (or no folder dataset is read)."""
    from omegaconf import OmegaConf

    def select(key):
        try:
            return OmegaConf.select(cfg, key, default=None)
        except Exception:  # a missing mandatory value or a broken interpolation: the config check's job
            return None

    keys = ["dataloader.test.dataset", "dataloader.evaluator.dataset_name"]
    if not eval_only:
        keys.insert(0, "dataloader.train.dataset")
    folders = {}
    for key in keys:
        for name in _names(select(key)):
            if name.startswith(FOLDER_PREFIX):
                folders[name] = MetadataCatalog.get(name)
    if not folders:
        return None
    tables = {tuple(m.stuff_classes) for m in folders.values()}
    if len(tables) > 1:
        shown = "; ".join(f"{n}: {len(m.stuff_classes)} ({', '.join(m.stuff_classes[:4])}, ...)"
                          for n, m in folders.items())
        return f"the folder datasets of this job list different classes ({shown}); use one data file's splits"
    name, meta = next(iter(folders.items()))
    n = len(meta.stuff_classes)
    # the train mapper's count too under eval_only: the test mapper's usually refers to it
    counts = ["model.num_classes", "dataloader.train.mapper.num_classes",
              "dataloader.test.mapper.num_classes"]
    wrong = [(k, v) for k, v in ((k, select(k)) for k in counts) if v is not None and v != n]
    if not wrong:
        return None
    fixes = []
    for key, _ in wrong:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, default=None)
        if node is None or not OmegaConf.is_interpolation(node, leaf):
            fixes.append(f"{key}={n}")
    shown = ", ".join(f"{k}={v}" for k, v in wrong)
    return (f"{name} has {n} classes ({meta.data_file}), but {shown}; add the override(s) "
            f"{' '.join(fixes) or ', '.join(f'{k}={n}' for k, _ in wrong)}")
