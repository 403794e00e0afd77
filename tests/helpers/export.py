"""Helpers for the export tests: a tiny stand-in segmentor and its metadata, a small ToyCity model
with its checkpoint, and broken models (a NaN weight, NaN scores) for the runners (no tests here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from softlabelseg_export.metadata import ExportMetadata
from softlabelseg_export.random_models import calibrate_batchnorm
from torch import nn

# The three paper models of the export tests: SegFormer-B2 by default, the two heavy ones with -m slow.
PAPER_MODELS = [
    "segformer_b2",
    pytest.param("hrnet_w48", marks=pytest.mark.slow),
    pytest.param("deeplabv3plus_r101", marks=pytest.mark.slow),
]


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


TOYCITY_RECIPE = "projects/SoftLabelSeg/configs/toycity/tiny_soft.py"


def toycity_setup(root, repo_root, num_val: int = 4, seed: int = 0) -> dict:
    """A small ToyCity val split under ``root`` and the ToyCity recipe's tiny model with calibrated
    BatchNorm saved as a checkpoint. Returns dict(records, cfg, model, config_file, checkpoint)."""
    from pathlib import Path

    from softlabelseg.config import instantiate
    from softlabelseg.data import ToyCityParams
    from softlabelseg.data.datasets import load_toycity_semantic
    from softlabelseg_export.recipe import build_model, load_recipe

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


def poison_onnx(source, path, value=float("nan")):
    """Copy of ``source`` with the first float initializer of two or more values set to ``value`` in one
    element; returns (path, initializer name)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(source)
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    tensor = next(t for t in proto.graph.initializer if t.data_type in floats and np.prod(t.dims) > 1)
    values = numpy_helper.to_array(tensor).copy()
    values.flat[1] = value
    tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
    onnx.save(proto, path)
    return str(path), tensor.name


def nan_scores_model(path):
    """A hand-built 2-class logits graph: class 0 = the red channel, class 1 = sqrt(-1 - red) = NaN."""
    import onnx
    from onnx import TensorProto, helper
    from softlabelseg_export.metadata import write_metadata

    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Slice", ["f", "zero", "one", "axis"], ["red"]),
        helper.make_node("Sub", ["minus_one", "red"], ["neg"]),
        helper.make_node("Sqrt", ["neg"], ["nan"]),
        helper.make_node("Concat", ["red", "nan"], ["logits"], axis=1),
    ]
    inits = [helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
             helper.make_tensor("one", TensorProto.INT64, [1], [1]),
             helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
             helper.make_tensor("minus_one", TensorProto.FLOAT, [], [-1.0])]  # fmt: skip
    graph = helper.make_graph(
        nodes, "nan_scores",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, "h", "w"])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    write_metadata(model, stand_in_metadata(2, factor=0.5))
    onnx.save(model, path)
    return path
