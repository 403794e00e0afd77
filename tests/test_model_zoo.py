"""Model configs in configs/common/models: parameter counts, num_classes propagation, forward/backward.

Every model config in the folder is tested (found by globbing; ``segmentor.py`` is their shared helper).
Forward/backward runs use narrow variants (resnet18, hrnet_w18_small, a 1-block MiT) of the big configs
through overrides for the full contract, other configs as written; the configs as written also run at
32 x 64. Parameter counts are checked where a published size is known (``PARAMS``).
"""

import os

import pytest
import torch
from softlabelseg.config import LazyConfig, instantiate

from softlabel_ops import soft_resize
from tests.helpers.repo import MODELS, model_configs

NAMES = model_configs()

# Published sizes: HRNetV2-W48 seg 65.9M, SegFormer-B2 27.5M, DeepLabV3+ R101 ~59M.
PARAMS = {
    "deeplabv3plus_r101": (59.0e6, 0.02),
    "hrnet_w48": (65.9e6, 0.01),
    "segformer_b2": (27.5e6, 0.01),
    "tiny_cnn": (0.11e6, 0.2),
}

SMALL = {
    "deeplabv3plus_r101": ["model.backbone.model_name=resnet18"],
    "hrnet_w48": ["model.backbone.model_name=hrnet_w18_small"],
    "segformer_b2": ["model.backbone.depths=[1,1,1,1]", "model.backbone.embed_dims=[16,32,40,64]",
                     "model.head.embedding_dim=32"],
}  # narrow variants of the big models; any other model config runs as written


def _load(name, overrides=()):
    cfg = LazyConfig.load(os.path.join(MODELS, f"{name}.py"))
    return LazyConfig.apply_overrides(cfg, list(overrides))


def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_every_model_config_is_found():
    assert len(NAMES) >= 4 and "segmentor" not in NAMES
    assert set(PARAMS) <= set(NAMES) and set(SMALL) <= set(NAMES)  # no entry for a config that is gone


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_count(name):
    expected, tol = PARAMS[name]
    n = _count(instantiate(_load(name).model))
    assert abs(n - expected) <= tol * expected, f"{name}: {n / 1e6:.3f}M vs {expected / 1e6:.1f}M"


def _batch(num_classes, h=64, w=128, soft=False):
    out = []
    for s in range(2):
        g = torch.Generator().manual_seed(s)
        lab = torch.randint(0, num_classes, (h, w), generator=g)
        lab[:4] = 255
        target = soft_resize(lab, num_classes, size=(h // 4, w // 4), mode="torch:area") if soft else lab
        image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
        out.append({"image": image, "sem_seg": target, "height": h * 2, "width": w * 2})
    return out


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_contract(name):
    torch.manual_seed(0)
    cfg = _load(name, SMALL.get(name, []) + ["model.num_classes=7"])
    model = instantiate(cfg.model).train()
    x = torch.zeros(1, 3, 64, 128)
    assert model.forward_features(x).shape == (1, 7, 16, 32)  # every head predicts at stride 4
    for soft in (False, True):
        losses = model(_batch(7, soft=soft))
        assert set(losses) == {"loss_sem_seg"} and torch.isfinite(losses["loss_sem_seg"])
        losses["loss_sem_seg"].backward()
    assert all(p.grad is not None for p in model.head.parameters())
    model.eval()
    with torch.no_grad():
        out = model(_batch(7, h=60, w=100))
    assert [o["sem_seg"].shape for o in out] == [(7, 120, 200)] * 2


@pytest.mark.parametrize("output_stride,rates", [(8, [12, 24, 36]), (16, [6, 12, 18])])
def test_deeplab_output_stride(output_stride, rates):
    cfg = _load("deeplabv3plus_r101", SMALL["deeplabv3plus_r101"]
                + [f"model.backbone.output_stride={output_stride}"])
    model = instantiate(cfg.model)
    assert model.backbone.output_shape()["stage4"] == (512, output_stride)
    assert [b[0].dilation[0] for b in model.head.aspp.branches[1:]] == rates


def test_num_classes_is_one_key():
    cfg = _load("hrnet_w48", SMALL["hrnet_w48"] + ["model.num_classes=3"])
    assert cfg.model.head.num_classes == 3
    assert instantiate(cfg.model).head.classifier.out_channels == 3


@pytest.mark.parametrize("name", NAMES)
def test_full_size_forward_backward(name):
    """The configs as written, at a small input (32 x 64)."""
    torch.manual_seed(0)
    model = instantiate(_load(name).model).train()
    n = model.num_classes
    model(_batch(n, h=32, w=64))["loss_sem_seg"].backward()
    model.eval()
    with torch.no_grad():
        assert model(_batch(n, h=32, w=64))[0]["sem_seg"].shape == (n, 64, 128)


def test_yaml_round_trip_builds_the_same_model(tmp_path):
    cfg = _load("deeplabv3plus_r101", SMALL["deeplabv3plus_r101"] + ["model.num_classes=4"])
    LazyConfig.save(cfg, str(tmp_path / "config.yaml"))
    cfg2 = LazyConfig.load(str(tmp_path / "config.yaml"))
    m1, m2 = instantiate(cfg.model), instantiate(cfg2.model)
    assert type(m1) is type(m2) and _count(m1) == _count(m2) and m2.num_classes == 4
