"""Helpers for tests and benchmarks: a tiny stand-in segmentor and BatchNorm calibration."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .metadata import ExportMetadata


class StandInSegmentor(nn.Module):
    """Minimal segmentor with the ``forward_logits(uint8 (N, 3, H, W)) -> (N, C, H, W)`` contract.

    Stride-4 convs, bilinear upsampling, ``size_divisibility`` padding like the real segmentor.
    """

    size_divisibility = 4

    def __init__(self, num_classes: int = 5, width: int = 8):
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1), False)
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, num_classes, 1),
        )  # fmt: skip

    def forward_logits(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        x = (images.float() - self.pixel_mean) / self.pixel_std
        d = self.size_divisibility
        x = F.pad(x, (0, (-w) % d, 0, (-h) % d))  # branch-free: valid for dynamic shapes
        logits = F.interpolate(self.body(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits[:, :, :h, :w]


def stand_in_metadata(num_classes: int = 5, factor: float = 0.25) -> ExportMetadata:
    """Metadata with made-up class names and colours for ``num_classes`` classes."""
    colors = [[(37 * i) % 256, (91 * i) % 256, (53 * i + 80) % 256] for i in range(num_classes)]
    return ExportMetadata(
        class_names=[f"class{i}" for i in range(num_classes)], class_colors=colors, resolution_factor=factor
    )


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, images: torch.Tensor, steps: int = 2) -> nn.Module:
    """Set BatchNorm running statistics from ``images`` (uint8 (N, 3, H, W)) so a randomly initialised
    model has trained-like activations (no exploding logits) for numerical comparisons; eval mode after.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.train()
    for _ in range(steps):
        model.forward_logits(images) if hasattr(model, "forward_logits") else model(images.float())
    return model.eval()


PAPER_MODELS = "projects/SoftLabelSeg/configs/common/models"  # hrnet_w48.py, deeplabv3plus_r101.py, ...


def paper_model(name: str, repo_root, size=(64, 128), num_classes: int = 19, seed: int = 0):
    """(cfg, model): the paper model ``name`` (a file of ``configs/common/models``) with random weights
    (``seed``) and BatchNorm calibrated on two random uint8 images of ``size``, in eval mode."""
    from pathlib import Path

    import numpy as np
    from softlabelseg.config import instantiate

    from .recipe import load_recipe

    recipe = Path(repo_root) / PAPER_MODELS / f"{name}.py"
    cfg = load_recipe(str(recipe), [f"model.num_classes={num_classes}"])
    torch.manual_seed(seed)
    model = instantiate(cfg.model)
    images = np.random.default_rng(seed).integers(0, 256, (2, 3, *size), dtype=np.uint8)
    return cfg, calibrate_batchnorm(model, torch.from_numpy(images))


TOYCITY_RECIPE = "projects/SoftLabelSeg/configs/toycity/tiny_soft.py"


def toycity_setup(root, repo_root, num_val: int = 4, seed: int = 0) -> dict:
    """A small ToyCity val split under ``root`` and the ToyCity recipe's tiny model with calibrated
    BatchNorm saved as a checkpoint. Returns dict(records, cfg, model, config_file, checkpoint)."""
    from pathlib import Path

    from softlabelseg.config import instantiate
    from softlabelseg.data import ToyCityParams
    from softlabelseg.data.datasets import load_toycity_semantic

    from .recipe import build_model, load_recipe

    root, config_file = Path(root), str(Path(repo_root) / TOYCITY_RECIPE)
    records = load_toycity_semantic(root, "val", ToyCityParams(num_train=1, num_val=num_val))
    cfg = load_recipe(config_file)
    torch.manual_seed(seed)
    model = build_model(cfg)
    mapper = instantiate(cfg.dataloader.test.mapper)
    images = torch.stack([mapper(r)["image"] for r in records[:2]])
    calibrate_batchnorm(model, images)
    checkpoint = root / "tiny_toycity.pth"
    torch.save({"model": model.state_dict(), "iteration": 0}, checkpoint)
    return dict(
        records=records,
        cfg=cfg,
        model=model,
        config_file=config_file,
        checkpoint=str(checkpoint),
        mapper=mapper,
    )
