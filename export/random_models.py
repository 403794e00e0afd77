"""Paper models with random weights, for deployability checks and serving benchmarks before (or without)
training: BatchNorm statistics calibrated on random images keep the logits in a trained-like range, so
exports can be compared numerically."""

from __future__ import annotations

import torch
from torch import nn


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
