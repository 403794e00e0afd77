"""Every recipe under configs/ (each family folder but common/, found by globbing): loads, its mapper turns
a synthetic record into targets of its label mode at its factor, its model (random init) runs one
forward/backward on them at a small crop, and its optimizer and LR schedule build."""

import os

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from softlabelseg.config import LazyConfig, instantiate
from softlabelseg.engine import LRMultiplier

from tests.helpers.repo import CONFIGS, recipes

RECIPES = recipes()
_MODELS: dict[str, torch.nn.Module] = {}  # recipes sharing a model config share one instance


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recipe_data")
    rng = np.random.default_rng(0)
    h, w = 128, 256
    label = np.zeros((h, w), np.uint8)
    label[h // 2 :] = 1
    label[:, 100:103] = 2  # a thin structure
    label[5:9, 5:9] = 255
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / "img.png")
    Image.fromarray(label).save(folder / "lab.png")
    return {
        "file_name": str(folder / "img.png"),
        "sem_seg_file_name": str(folder / "lab.png"),
        "height": h,
        "width": w,
        "image_id": "img",
    }


def test_recipe_list_is_complete():
    assert len(RECIPES) >= 20
    names = {os.path.basename(r) for r in RECIPES}
    for fam in ("hrnet_w48", "deeplabv3plus_r101"):
        for mode in ("soft", "nearest"):
            for f in ("1of8", "1of4", "1of2"):
                assert f"{fam}_{mode}_{f}.py" in names
    assert {"segformer_b2_soft.py", "hrnet_w48_soft.py", "tiny_soft.py", "tiny_nearest.py"} <= names


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_builds_and_trains_one_step(recipe, record):
    cfg = LazyConfig.load(os.path.join(CONFIGS, recipe))
    assert {"model", "dataloader", "optimizer", "lr_multiplier", "train"} <= set(cfg.keys())
    assert cfg.dataloader.train.mapper.label_mode in ("soft", "soft_sparse", "nearest")
    if "pretrained" in cfg.model.backbone:
        cfg.model.backbone.pretrained = False  # no downloads in tests
    key = OmegaConf.to_yaml(cfg.model)
    if key not in _MODELS:
        torch.manual_seed(0)
        _MODELS[key] = instantiate(cfg.model)
    model = _MODELS[key].train()

    mapper_cfg = cfg.dataloader.train.mapper
    mapper_cfg.crop_size = [32, 64]
    mapper_cfg.scale_range = [1.0, 1.0]
    mapper = instantiate(mapper_cfg)
    rng = np.random.default_rng(0)
    batch = [mapper(record, rng) for _ in range(2)]
    expected = {"soft": "DenseSoftLabel", "soft_sparse": "SparseSoftLabel", "nearest": "Tensor"}
    assert type(batch[0]["sem_seg"]).__name__ == expected[mapper_cfg.label_mode]
    assert tuple(batch[0]["image"].shape[-2:]) == (32, 64)

    model.zero_grad(set_to_none=True)
    losses = model(batch)
    loss = sum(losses.values())
    assert torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())

    cfg.optimizer.params.model = model
    opt = instantiate(cfg.optimizer)
    sched = LRMultiplier(opt, instantiate(cfg.lr_multiplier), int(cfg.train.max_iter))
    assert sched.get_last_lr()[0] > 0
    assert cfg.train.output_dir and "${" not in OmegaConf.to_yaml(cfg.train, resolve=True)
