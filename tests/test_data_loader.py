"""Loaders: seeded infinite training stream (same seed + worker count -> same batches), rank sharding,
sequential evaluation loader, trivial list collation."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from softlabelseg.data import SoftLabelDatasetMapper, TrainingSampler, build_test_loader, build_train_loader
from softlabelseg.data.datasets import load_cityscapes_semantic

from tests.helpers.fixtures import cityscapes_tree


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("cs")
    cityscapes_tree(root, "train", n=5, hw=(32, 64))
    return load_cityscapes_semantic(root, "train")


def _mapper():
    return SoftLabelDatasetMapper(num_classes=19, factor=0.5, crop_size=(8, 16), label_mode="soft")


def _take(loader, n):
    return [[(d["image_id"], d["image"], d["sem_seg"].probs) for d in batch]
            for batch in itertools.islice(iter(loader), n)]


def _same(a, b) -> bool:
    return all(x[0] == y[0] and torch.equal(x[1], y[1]) and torch.equal(x[2], y[2])
               for ba, bb in zip(a, b) for x, y in zip(ba, bb))


def test_sampler_is_seeded_infinite_and_sharded():
    a = [i for _, i in itertools.islice(TrainingSampler(7, seed=1), 21)]
    assert a == [i for _, i in itertools.islice(TrainingSampler(7, seed=1), 21)]
    assert sorted(a[:7]) == list(range(7)) and a[:7] != a[7:14]  # a new permutation per epoch
    assert a != [i for _, i in itertools.islice(TrainingSampler(7, seed=2), 21)]
    r0 = [i for _, i in itertools.islice(TrainingSampler(7, seed=1, rank=0, world_size=2), 10)]
    r1 = [i for _, i in itertools.islice(TrainingSampler(7, seed=1, rank=1, world_size=2), 10)]
    assert r0 == a[0:20:2] and r1 == a[1:20:2]
    assert [i for _, i in itertools.islice(TrainingSampler(3, shuffle=False), 5)] == [0, 1, 2, 0, 1]
    with pytest.raises(ValueError, match="non-empty"):
        TrainingSampler(0)


def test_train_loader_same_seed_same_stream(records):
    a = _take(build_train_loader(records, _mapper(), total_batch_size=3, num_workers=0, seed=5), 4)
    b = _take(build_train_loader(records, _mapper(), total_batch_size=3, num_workers=0, seed=5), 4)
    c = _take(build_train_loader(records, _mapper(), total_batch_size=3, num_workers=0, seed=6), 4)
    assert len(a) == 4 and all(len(batch) == 3 for batch in a)
    assert isinstance(a[0][0][2], torch.Tensor)  # soft probs (C, h, w), a list per batch: no collation
    assert _same(a, b) and not _same(a, c)


def test_train_loader_batches_do_not_depend_on_workers(records):
    a = _take(build_train_loader(records, _mapper(), total_batch_size=2, num_workers=2, seed=5), 3)
    b = _take(build_train_loader(records, _mapper(), total_batch_size=2, num_workers=2, seed=5), 3)
    assert _same(a, b)
    # batch b holds stream positions 2b, 2b+1, whichever process built it
    single = [x for batch in _take(build_train_loader(records, _mapper(), 1, 0, seed=5), 6) for x in batch]
    assert _same(a, [single[0:2], single[2:4], single[4:6]])


class _CountingMapper:
    def __init__(self):
        self.inner, self.calls = _mapper(), 0

    def __call__(self, record, rng):
        self.calls += 1
        return self.inner(record, rng)


@pytest.mark.parametrize("workers", [0, 2])
def test_resumed_stream_equals_uninterrupted_without_decoding_consumed_samples(records, workers):
    full = _take(build_train_loader(records, _mapper(), 2, num_workers=workers, seed=5), 7)
    first = build_train_loader(records, _mapper(), 2, num_workers=workers, seed=5)
    it = iter(first)
    for _ in range(4):
        next(it)
    state = first.state_dict()
    assert state["batch"] == 4
    mapper = _CountingMapper()
    resumed = build_train_loader(records, mapper, 2, num_workers=0, seed=5)
    resumed.load_state_dict(state)
    rest = _take(resumed, 3)
    assert _same(rest, full[4:7])
    assert mapper.calls == 6  # only the 3 new batches were decoded, none of the 4 consumed ones


def test_test_loader_is_sequential(records):
    mapper = SoftLabelDatasetMapper(False, num_classes=19, factor=0.5)
    for workers in (0, 2):
        loader = build_test_loader(records, mapper, num_workers=workers)
        batches = list(loader)
        assert len(loader) == 5 and [len(b) for b in batches] == [1] * 5
        assert [b[0]["image_id"] for b in batches] == [r["image_id"] for r in records]
        assert batches[0][0]["sem_seg"].shape == (32, 64) and batches[0][0]["image"].shape == (3, 16, 32)


def test_empty_dataset_and_bad_batch_size(records):
    with pytest.raises(ValueError, match="no samples"):
        build_train_loader([], _mapper(), 2)
    with pytest.raises(ValueError, match="total_batch_size"):
        build_train_loader(records, _mapper(), 0)


def test_mapper_rng_default_is_seeded(records):
    a = SoftLabelDatasetMapper(num_classes=19, factor=0.5, crop_size=(8, 16), seed=3)(records[0])
    b = SoftLabelDatasetMapper(num_classes=19, factor=0.5, crop_size=(8, 16), seed=3)(records[0])
    assert torch.equal(a["image"], b["image"]) and np.array_equal(a["sem_seg"].valid, b["sem_seg"].valid)
