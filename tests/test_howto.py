"""The how-to pages under docs/howto, done once each on throw-away data."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from data_fixtures import save_png, scene_label
from softlabelseg.config import LazyConfig, instantiate
from softlabelseg.data import DatasetCatalog, MetadataCatalog

BASE = os.path.join(os.path.dirname(__file__), "..", "projects", "SoftLabelSeg", "configs", "common", "data",
                    "base.py")
NAMES = ["road", "pole", "car"]


@pytest.fixture(scope="module")
def my_dataset(tmp_path_factory):
    """docs/howto/add_a_dataset.md, 'From your own code': records + names + metadata."""
    root = tmp_path_factory.mktemp("mydata")
    rng = np.random.default_rng(0)

    def my_records(split):
        recs = []
        for i in range(3):
            lab = scene_label(np.random.default_rng([i, split == "val"]), (32, 64), num_classes=3)
            img = rng.integers(0, 256, (32, 64, 3)).astype(np.uint8)
            recs.append({"file_name": str(save_png(root / split / f"{i}.png", img)),
                         "sem_seg_file_name": str(save_png(root / split / f"{i}_label.png", lab)),
                         "height": 32, "width": 64, "image_id": f"{split}{i}"})
        return recs

    for split in ("train", "val"):
        name = f"howto_sem_seg_{split}"
        if name not in DatasetCatalog:
            DatasetCatalog.register(name, lambda s=split: my_records(s))
            MetadataCatalog.get(name).set(stuff_classes=NAMES, stuff_colors=[(128, 64, 128), (153, 153, 153),
                                                                             (0, 0, 142)],
                                          ignore_label=255, evaluator_type="sem_seg")
    return root


def test_add_a_dataset_from_user_code(my_dataset, tmp_path):
    cfg = LazyConfig.load(BASE)
    cfg.dataloader.train.dataset = "howto_sem_seg_train"
    cfg.dataloader.test.dataset = "howto_sem_seg_val"
    cfg.dataloader.train.mapper.num_classes = 3
    cfg.dataloader.train.mapper.factor = 0.5
    cfg.dataloader.train.total_batch_size = 2
    cfg.dataloader.train.num_workers = 0
    cfg.dataloader.test.num_workers = 0
    batch = next(iter(instantiate(cfg.dataloader.train)))
    assert len(batch) == 2 and batch[0]["image"].dtype == torch.uint8
    assert batch[0]["sem_seg"].num_classes == 3  # soft labels over the new classes
    evaluator = instantiate(cfg.dataloader.evaluator)
    evaluator.reset()
    for (x,) in instantiate(cfg.dataloader.test):
        gt = x["sem_seg"]
        probs = torch.nn.functional.one_hot(gt.clamp(max=2), 3).permute(2, 0, 1).float()
        evaluator.process([x], [{"sem_seg": probs}])
    res = evaluator.evaluate()["sem_seg"]
    assert res["mIoU"] == pytest.approx(100.0)
