"""The how-to pages under docs/howto, done once each on throw-away data."""
from __future__ import annotations

import importlib.util
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from softlabelseg.config import LazyCall as L
from softlabelseg.config import LazyConfig, deferred, instantiate
from softlabelseg.data import DatasetCatalog, MetadataCatalog, SoftLabelDatasetMapper
from softlabelseg.modeling import Backbone
from softlabelseg_export.metadata import ExportMetadata

import softlabel_ops
from softlabel_ops import filters, modes
from tests.helpers.fixtures import save_png, scene_label

BASE = os.path.join(os.path.dirname(__file__), "..", "projects", "SoftLabelSeg", "configs", "common", "data",
                    "base.py")
SEGMENTOR_CONFIG = os.path.join(os.path.dirname(BASE), "..", "models", "segmentor.py")
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


class _TwoLevelBackbone(Backbone):
    """docs/howto/add_a_model.md step 1: stride-2 and stride-4 features."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.s2 = torch.nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.s4 = torch.nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self._out_shape = {"s2": (width, 2), "s4": (2 * width, 4)}

    def forward(self, x):
        a = torch.relu(self.s2(x))
        return {"s2": a, "s4": torch.relu(self.s4(a))}


class _SumHead(torch.nn.Module):
    """Step 2: channels from input_shape, logits at the finest stride."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.proj = torch.nn.ModuleDict({k: torch.nn.Conv2d(c, num_classes, 1)
                                         for k, (c, _) in input_shape.items()})
        self.first = next(iter(input_shape))

    def forward(self, feats):
        size = feats[self.first].shape[-2:]
        return sum(torch.nn.functional.interpolate(self.proj[k](v), size=size, mode="bilinear")
                   for k, v in feats.items())


def test_add_a_model():
    """Steps 1-3 of docs/howto/add_a_model.md: the model config's segmentor() with a new backbone and head."""
    spec = importlib.util.spec_from_file_location("model_segmentor", SEGMENTOR_CONFIG)
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    cfg = helper.segmentor(backbone=L(_TwoLevelBackbone)(width=8),
                           head=L(deferred)(target=_SumHead, num_classes="${..num_classes}"), num_classes=3)
    model = instantiate(cfg)
    lab = scene_label(np.random.default_rng(0), (32, 64), num_classes=3).astype(np.int64)
    soft = softlabel_ops.soft_resize(lab, 3, size=(16, 32), mode="torch:area")
    model.train()
    image = torch.randint(0, 256, (3, 16, 32), dtype=torch.uint8)
    loss = model([{"image": image, "sem_seg": soft}])["loss_sem_seg"]
    loss.backward()
    assert torch.isfinite(loss) and model.head.proj["s4"].weight.grad is not None
    model.eval()
    with torch.no_grad():
        out = model([{"image": image, "height": 32, "width": 64}])
    assert out[0]["sem_seg"].shape == (3, 32, 64)


class FocalLoss(torch.nn.Module):
    """docs/howto/add_a_loss.md, step 1."""

    def __init__(self, gamma=2.0, ignore_value=255):
        super().__init__()
        self.gamma, self.ignore_value = gamma, ignore_value

    def forward(self, logits, target):
        keep = target != self.ignore_value
        logp = logits.log_softmax(1).gather(1, torch.where(keep, target, 0)[:, None])[:, 0]
        return -((1 - logp.exp()) ** self.gamma * logp)[keep].mean()


def test_add_a_loss():
    """docs/howto/add_a_loss.md, step 2: the main recipe with a focal loss on its hard labels; the built model
    trains on it, and with gamma 0 it is the recipe's own cross-entropy."""
    recipe = os.path.join(os.path.dirname(BASE), "..", "..", "toycity", "tiny_soft.py")
    cfg = LazyConfig.load(recipe)
    cfg.model.loss.hard = L(FocalLoss)(gamma=2.0)
    model = instantiate(cfg.model).train()
    assert isinstance(model.loss.hard, FocalLoss)
    lab = torch.from_numpy(scene_label(np.random.default_rng(0), (32, 64), num_classes=19).astype(np.int64))
    image = torch.randint(0, 256, (3, 32, 64), dtype=torch.uint8)
    loss = model([{"image": image, "sem_seg": lab}])["loss_sem_seg"]
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    cfg.model.loss.hard.gamma = 0.0
    focal0 = instantiate(cfg.model).train()
    plain = instantiate(LazyConfig.load(recipe).model).train()
    focal0.load_state_dict(plain.state_dict())
    torch.testing.assert_close(focal0([{"image": image, "sem_seg": lab}])["loss_sem_seg"],
                               plain([{"image": image, "sem_seg": lab}])["loss_sem_seg"])


def _hamming(x: float) -> float:
    """Pillow's HAMMING kernel: sinc(x) under a Hamming window, zero from |x| = 1 on."""
    return float(np.sinc(x) * (0.54 + 0.46 * np.cos(np.pi * x))) if abs(x) < 1.0 else 0.0


@pytest.fixture
def hamming_mode(monkeypatch):
    """docs/howto/add_a_resampling_mode.md for Pillow's HAMMING filter, removed again after the test:
    step 1 its taps builder (a Pillow filter of support 1), step 2 its registry entry."""
    spec = modes.ModeSpec("pil:hamming", filters.pil_filter(_hamming, 1.0), "HAMMING", "INTER_LINEAR",
                          antialiased=True, short=("hamming",))
    monkeypatch.setitem(modes.REGISTRY, spec.name, spec)
    return spec.name


def test_add_a_resampling_mode(hamming_mode, my_dataset):
    """The new mode flows through soft resampling, the image path, the mapper, analysis and export."""
    assert hamming_mode in softlabel_ops.MODES and modes.mode_name("hamming") == hamming_mode
    rng = np.random.default_rng(3)
    lab = scene_label(rng, (24, 40), num_classes=3)
    lab[rng.random(lab.shape) < 0.1] = 255
    for size in ((9, 14), (31, 50)):  # down and up: Pillow's resize of the one-hot planes
        soft = softlabel_ops.soft_resize(lab, 3, size=size, mode=hamming_mode)
        ref = np.stack([np.asarray(Image.fromarray((lab == c).astype(np.float32), "F")
                                   .resize(size[::-1], Image.Resampling.HAMMING)) for c in range(3)])
        np.testing.assert_allclose(soft.probs.numpy() * soft.valid.numpy(), ref, atol=1e-5)
    assert softlabel_ops.nearest_of(hamming_mode) == "pil:nearest"

    image = rng.integers(0, 256, (24, 40, 3)).astype(np.uint8)
    expected = np.asarray(Image.fromarray(image).resize((14, 9), Image.Resampling.HAMMING))
    np.testing.assert_array_equal(softlabel_ops.resize_image(image, (9, 14), hamming_mode), expected)

    mapper = SoftLabelDatasetMapper(num_classes=3, factor=0.5, image_mode=hamming_mode, scale_range=(1, 1),
                                    flip_prob=0.0, photometric=False)
    record = DatasetCatalog.get("howto_sem_seg_train")[0]
    sample = mapper(record)
    image, label = mapper.read(record)
    torch.testing.assert_close(sample["sem_seg"].probs,
                               softlabel_ops.soft_resize(label, 3, size=(16, 32), mode=hamming_mode).probs)
    np.testing.assert_array_equal(sample["image"].permute(1, 2, 0).numpy(),
                                  softlabel_ops.resize_image(image, (16, 32), hamming_mode))

    meta = ExportMetadata(["a"], [[0, 0, 0]], image_resize=hamming_mode)
    assert meta.image_cv2_flags == [cv2.INTER_LINEAR, cv2.INTER_AREA]  # what both ONNX runners resize with
