"""Small stand-ins (model, loaders, config) for the engine tests; no tests here.

The model follows the segmentor contract: training -> {"loss_sem_seg": scalar},
eval -> [{"sem_seg": (C, H, W)}].
Its dropout and the loaders' flip augmentation draw from the global torch/python RNGs, so an exact resume
needs the RNG states restored.
"""

import importlib.util
import os
import random
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.helpers.repo import CONFIGS

NUM_CLASSES = 3
HAVE_D2 = importlib.util.find_spec("detectron2") is not None
# both engines for the tests of behaviour the one training path gives them alike
ENGINES = ["native", pytest.param("detectron2", marks=pytest.mark.skipif(
    not HAVE_D2, reason="detectron2 is not installed (docs/detectron2.md says how)"))]


class ToySegModel(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES, nan_at_call: int | None = None, plain: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.Identity() if plain else nn.BatchNorm2d(8)
        self.drop = nn.Identity() if plain else nn.Dropout2d(0.2)
        self.head = nn.Conv2d(8, num_classes, 1)
        self.nan_at_call = nan_at_call
        self.calls = 0

    def forward(self, batched):
        dev = self.head.weight.device
        x = torch.stack([d["image"] for d in batched]).to(dev).float() / 255.0
        logits = self.head(self.drop(F.relu(self.bn(self.conv1(x)))))
        if self.training:
            self.calls += 1
            y = torch.stack([d["sem_seg"] for d in batched]).to(dev)
            loss = F.cross_entropy(logits, y, ignore_index=255)
            if self.nan_at_call is not None and self.calls >= self.nan_at_call:
                loss = loss * float("nan")
            return {"loss_sem_seg": loss}
        out = []
        for d, lg in zip(batched, logits):
            full = F.interpolate(
                lg[None], size=(d["height"], d["width"]), mode="bilinear", align_corners=False
            )
            out.append({"sem_seg": full[0].softmax(0)})
        return out


def make_sample(rng: np.random.Generator, size=(16, 16)) -> dict:
    """Image whose red channel encodes the class (so the toy model can learn it) and its label."""
    h, w = size
    label = rng.integers(0, NUM_CLASSES, size=(h // 4, w // 4)).repeat(4, 0).repeat(4, 1)
    image = np.stack(
        [
            label * 100 + rng.integers(0, 30, size=(h, w)),
            rng.integers(0, 255, (h, w)),
            rng.integers(0, 255, (h, w)),
        ]
    ).astype(np.uint8)
    label[0, 0] = 255
    return {
        "image": torch.from_numpy(image),
        "sem_seg": torch.from_numpy(label.astype(np.int64)),
        "height": h,
        "width": w,
        "file_name": "toy.png",
    }


class ToyLoader:
    """Infinite loader of list[dict] batches, deterministic given ``seed`` (rank-offset under DDP).

    With ``stateful=True`` it exposes ``state_dict``/``load_state_dict`` (batches produced so far);
    otherwise the trainer resumes it by fast-forwarding.
    """

    def __init__(self, batch_size: int = 2, seed: int = 0, stateful: bool = True, delay: float = 0.0):
        self.batch_size = batch_size
        self.delay = delay
        self.seed = seed
        self.stateful = stateful
        self._pos = 0
        if not stateful:
            self.state_dict = None
            self.load_state_dict = None

    def __iter__(self):
        from softlabelseg.utils import comm

        i = self._pos
        while True:
            if self.delay:
                time.sleep(self.delay)
            rng = np.random.default_rng([self.seed, comm.get_rank(), i])
            batch = []
            for _ in range(self.batch_size):
                s = make_sample(rng)
                if random.random() < 0.5:  # augmentation from the global python RNG
                    s["image"], s["sem_seg"] = s["image"].flip(-1), s["sem_seg"].flip(-1)
                batch.append(s)
            i += 1
            self._pos = i
            yield batch

    def state_dict(self):  # noqa: F811 (replaced by None when not stateful)
        return {"pos": self._pos}

    def load_state_dict(self, state):  # noqa: F811
        self._pos = int(state["pos"])


def toy_test_set(n: int = 4):
    rng = np.random.default_rng(123)
    return [[make_sample(rng, (16, 16))] for _ in range(n)]


def build_toy_test_loader(n: int = 4):
    return toy_test_set(n)


CONFIG = """
from softlabelseg.config import LazyCall as L
from softlabelseg.evaluation import SemSegEvaluator
from tests.helpers.standins import ToyLoader, ToySegModel, build_toy_test_loader
from .common.optim import SGD as optimizer
from .common.schedule import poly as lr_multiplier
from .common.train import train

model = L(ToySegModel)()
dataloader = dict(
    train=L(ToyLoader)(batch_size=2, delay=0.0),
    test=L(build_toy_test_loader)(n=4),
    evaluator=L(SemSegEvaluator)(
        num_classes=3, class_names=["a", "b", "c"], output_dir="${softlabelseg.run_dir:inference}"
    ),
)
optimizer.lr = 0.05
train.max_iter = 6
train.eval_period = 3
train.log_period = 2
train.checkpointer.period = 2
train.device = "cpu"
"""


def write_standin_config(folder) -> str:
    """A LazyConfig recipe of the stand-ins importing the shared optim/schedule/train parts. Its targets are
    ``tests.helpers.standins.*``: a process that trains it needs the repository root on sys.path (pytest
    puts it there; a subprocess gets it from :mod:`tests.helpers.run_tool`)."""
    common = os.path.join(CONFIGS, "common")
    path = os.path.join(str(folder), "standin_config.py")
    os.makedirs(os.path.join(str(folder), "common"), exist_ok=True)
    for name in ("optim.py", "schedule.py", "train.py"):
        with (
            open(os.path.join(common, name)) as src,
            open(os.path.join(str(folder), "common", name), "w") as dst,
        ):
            dst.write(src.read())
    with open(path, "w") as f:
        f.write(CONFIG)
    return path
