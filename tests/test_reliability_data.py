"""The data stream survives bad files when asked to, counts them, and resumes without replaying itself.

Protects: skip_bad_samples (zero-byte / garbage images, missing or folder labels, at listing and at
decode time, training and evaluation), the skip totals (log, metrics, evaluation JSON), and the O(1)
resume of the training stream (a resumed run equals an uninterrupted one).
"""
from __future__ import annotations

import itertools
import json
import logging
import os

import pytest
import torch
from softlabelseg.data import BadSampleError, SoftLabelDatasetMapper, build_test_loader, build_train_loader
from softlabelseg.data.datasets import load_cityscapes_semantic
from softlabelseg.data.decode import collect_bad_records
from softlabelseg.engine import Checkpointer, SimpleTrainer
from softlabelseg.evaluation import SemSegEvaluator, inference_on_dataset
from torch import nn

from tests.helpers.fixtures import cityscapes_tree


@pytest.fixture
def tree(tmp_path):
    cityscapes_tree(tmp_path, "train", n=6, hw=(32, 64))
    return tmp_path


def _mapper(train=True):
    if train:
        return SoftLabelDatasetMapper(num_classes=19, factor=0.5, crop_size=(8, 16))
    return SoftLabelDatasetMapper(False, num_classes=19, factor=0.5)


def _files(root):
    return sorted((root / "leftImg8bit" / "train" / "aachen").glob("*.png"))


def _damage(root):
    """Zero-byte image (caught at listing), garbage image, missing label, label path that is a folder."""
    imgs = _files(root)
    imgs[0].write_bytes(b"")
    labels = root / "gtFine" / "train" / "aachen"
    (labels / imgs[2].name.replace("leftImg8bit", "gtFine_labelTrainIds")).unlink()
    folder = labels / imgs[3].name.replace("leftImg8bit", "gtFine_labelTrainIds")
    folder.unlink()
    folder.mkdir()
    return imgs


def test_listing_names_each_bad_record_or_skips_it(tree):
    imgs = _damage(tree)
    with pytest.raises(BadSampleError, match=imgs[0].name):
        load_cityscapes_semantic(tree, "train")
    with collect_bad_records() as bad:
        recs = load_cityscapes_semantic(tree, "train")
    assert len(recs) == 3 and len(bad) == 3
    text = "\n".join(map(str, bad))
    assert "is a folder, not a label file" in text and "no label for this image" in text
    assert "cannot read the image header" in text


def test_training_stream_skips_bad_files_keeps_batches_full_and_counts(tree, caplog):
    imgs = _damage(tree)
    imgs[1].write_bytes(os.urandom(500))  # garbage: its header fails, so listing leaves it out
    good = load_cityscapes_semantic_skip(tree)
    assert str(imgs[1]) not in {r["file_name"] for r in good}
    garbage = {"file_name": str(imgs[5]), "sem_seg_file_name": good[0]["sem_seg_file_name"],
               "height": 32, "width": 64, "image_id": "g"}
    imgs[5].write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))  # listed before it broke: fails at decode
    records = [r for r in good if r["file_name"] != str(imgs[5])] + [garbage]
    with caplog.at_level(logging.WARNING, logger="softlabelseg.data.loader"):
        loader = build_train_loader(records, _mapper(), 2, seed=0, skip_bad_samples=True)
        batches = list(itertools.islice(iter(loader), 12))
    assert all(len(b) == 2 for b in batches)
    assert str(imgs[5]) in loader.skipped and loader.num_skipped >= 2  # met in several epochs, logged once
    assert sum(str(imgs[5]) in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(BadSampleError, match=imgs[5].name):
        list(itertools.islice(iter(build_train_loader(records, _mapper(), 2, seed=0)), 12))


def load_cityscapes_semantic_skip(root):
    with collect_bad_records():
        return load_cityscapes_semantic(root, "train")


def test_evaluation_skips_and_reports_in_the_json(tree, tmp_path):
    imgs = _files(tree)
    records = load_cityscapes_semantic(tree, "train")
    imgs[4].write_bytes(os.urandom(400))  # broken after listing: caught when decoded
    loader = build_test_loader(records, _mapper(False), skip_bad_samples=True)

    def model(batch):
        return [{"sem_seg": torch.rand(19, d["height"], d["width"])} for d in batch]

    ev = SemSegEvaluator(num_classes=19, output_dir=str(tmp_path / "inference"))
    inference_on_dataset(model, loader, ev)
    data = json.loads((tmp_path / "inference" / "sem_seg_evaluation.json").read_text())
    assert list(data["skipped_inputs"]) == [str(imgs[4])]
    with pytest.raises(BadSampleError):
        inference_on_dataset(model, build_test_loader(records, _mapper(False)), ev)


class _Linear(nn.Module):
    """Loss depends on every sample's image and soft label, so the weights record the data order."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))

    def forward(self, batch):
        x = torch.stack([d["image"].float().mean((1, 2)) / 255 for d in batch])
        t = torch.stack([d["sem_seg"].probs[:3].mean((1, 2)).sum() for d in batch])
        return {"loss": ((x @ self.w) - t).pow(2).mean()}


class _Counting:
    def __init__(self, mapper):
        self.mapper, self.calls = mapper, 0

    def __call__(self, record, rng):
        self.calls += 1
        return self.mapper(record, rng)


def _trainer(records, mapper, out):
    model = _Linear()
    trainer = SimpleTrainer(model, build_train_loader(records, mapper, 2, seed=3),
                            torch.optim.SGD(model.parameters(), lr=0.5))
    return trainer, Checkpointer(model, str(out), trainer=trainer)


def test_resumed_run_equals_uninterrupted_and_decodes_no_consumed_sample(tree, tmp_path):
    records = load_cityscapes_semantic(tree, "train")
    ref, _ = _trainer(records, _mapper(), tmp_path / "ref")
    ref.train(0, 8)
    first, ck = _trainer(records, _mapper(), tmp_path / "run")
    first.train(0, 5)
    ck.save("model_0000004", iteration=5)
    counting = _Counting(_mapper())
    second, ck2 = _trainer(records, counting, tmp_path / "run")
    state = ck2.resume_or_load(None, resume=True)
    second.train(int(state["iteration"]), 8)
    torch.testing.assert_close(second.model.w, ref.model.w, rtol=0, atol=0)
    assert counting.calls == 3 * 2  # 3 iterations x 2 samples: the 5 consumed batches were not decoded
