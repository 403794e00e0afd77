"""Bad input: each case raises an error naming the file, or (opt-in) is skipped / converted and counted."""
from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest
from softlabelseg.data import BadSampleError, DatasetNotFoundError, SoftLabelDatasetMapper, build_train_loader
from softlabelseg.data.datasets import load_cityscapes_semantic
from softlabelseg.data.decode import BAD_INPUT_COUNTS

from tests.helpers.fixtures import cityscapes_tree, save_png


@pytest.fixture
def tree(tmp_path):
    cityscapes_tree(tmp_path, "train", n=3, hw=(32, 64))
    recs = load_cityscapes_semantic(tmp_path, "train")
    return tmp_path, recs


def _map(rec, **kw):
    return SoftLabelDatasetMapper(num_classes=19, factor=0.5, crop_size=(8, 16), **kw)(rec)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("which", ["file_name", "sem_seg_file_name"])
def test_truncated_files(tree, which):
    _, recs = tree
    _truncate(Path(recs[0][which]))
    with pytest.raises(BadSampleError, match="truncated or corrupt") as e:
        _map(recs[0])
    assert e.value.path == recs[0][which]


def test_unreadable_and_missing(tree):
    _, recs = tree
    with open(recs[0]["file_name"], "wb") as f:
        f.write(b"this is not a png")
    with pytest.raises(BadSampleError, match="not a readable image") as e:
        _map(recs[0])
    assert recs[0]["file_name"] in str(e.value)
    with pytest.raises(BadSampleError, match="does not exist"):
        _map({**recs[1], "sem_seg_file_name": recs[1]["sem_seg_file_name"] + ".gone"})


def test_label_values_neither_class_nor_ignore(tree):
    _, recs = tree
    lab = np.zeros((32, 64), np.uint8)
    lab[0, :3] = [19, 40, 254]
    save_png(Path(recs[0]["sem_seg_file_name"]), lab)
    with pytest.raises(BadSampleError, match=r"\[19, 40, 254\] are neither a class id") as e:
        _map(recs[0])
    assert e.value.path == recs[0]["sem_seg_file_name"]


def test_colour_label_and_unknown_label_id(tree, tmp_path):
    _, recs = tree
    save_png(Path(recs[0]["sem_seg_file_name"]), np.zeros((32, 64, 3), np.uint8))
    with pytest.raises(BadSampleError, match="single-channel"):
        _map(recs[0])
    ids = cityscapes_tree(tmp_path / "ids", "train", n=1, hw=(32, 64), label_kind="labelIds")
    rec = load_cityscapes_semantic(tmp_path / "ids", "train")[0]
    save_png(Path(rec["sem_seg_file_name"]), np.full_like(ids[0], 77))
    with pytest.raises(BadSampleError, match=r"raw label values \[77\]"):
        _map(rec)


def test_size_mismatch(tree):
    _, recs = tree
    save_png(Path(recs[0]["sem_seg_file_name"]), np.zeros((32, 60), np.uint8))
    with pytest.raises(BadSampleError, match="64x32 .* but its label .* is 60x32") as e:
        _map(recs[0])
    assert e.value.path == recs[0]["file_name"]


@pytest.mark.parametrize("shape,mode", [((32, 64), "L"), ((32, 64, 4), "RGBA")])
def test_grayscale_and_rgba(tree, shape, mode):
    _, recs = tree
    save_png(Path(recs[0]["file_name"]), np.full(shape, 90, np.uint8), mode)
    with pytest.raises(BadSampleError, match=f"image mode is '{mode}'.*convert_to_rgb=True"):
        _map(recs[0])
    before = BAD_INPUT_COUNTS["converted"]
    out = _map(recs[0], convert_to_rgb=True)
    assert out["image"].shape == (3, 8, 16) and BAD_INPUT_COUNTS["converted"] == before + 1


def test_empty_split(tmp_path):
    (tmp_path / "leftImg8bit" / "val" / "aachen").mkdir(parents=True)
    (tmp_path / "gtFine" / "val").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="split is empty"):
        load_cityscapes_semantic(tmp_path, "val")


def test_loader_raises_by_default_and_skips_with_a_count(tree, caplog):
    _, recs = tree
    _truncate(Path(recs[1]["file_name"]))
    mapper = SoftLabelDatasetMapper(num_classes=19, factor=0.5, crop_size=(8, 16))
    with pytest.raises(BadSampleError, match=recs[1]["file_name"]):
        list(itertools.islice(iter(build_train_loader(recs, mapper, 2, seed=0)), 3))
    with caplog.at_level(logging.WARNING, logger="softlabelseg.data.loader"):
        loader = build_train_loader(recs, mapper, 2, seed=0, skip_bad_samples=True)
        batches = list(itertools.islice(iter(loader), 3))
    assert all(len(b) == 2 for b in batches)  # a bad sample is replaced, the batch keeps its size
    assert all(d["file_name"] != recs[1]["file_name"] for b in batches for d in b)
    assert loader.num_skipped >= 1 and list(loader.skipped) == [recs[1]["file_name"]]
    assert any("skipped sample #" in r.getMessage() and recs[1]["file_name"] in r.getMessage()
               for r in caplog.records)
