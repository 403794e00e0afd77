"""The label-target table: every row builds the mapper it describes, its resampling mode is what that mapper
does to the label, and the ceiling names match what tools/analyze_downsampling.py writes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from softlabelseg.data import LABEL_MODES, SoftLabelDatasetMapper
from softlabelseg.data.datasets import load_cityscapes_semantic
from softlabelseg.data.label_targets import (
    BASELINE,
    CONTROL,
    DECOMPOSITION,
    LABEL_TARGETS,
    METHOD,
    LabelTarget,
    ceiling_targets,
)
from softlabelseg_research.retention import RetentionResult

import softlabel_ops
from softlabel_ops.modes import DEFAULT_MODE
from tests.helpers.fixtures import cityscapes_tree

HW = (64, 128)
FACTOR = 0.25


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("cs")
    label = cityscapes_tree(root, "train", n=1, hw=HW)[0]
    return load_cityscapes_semantic(root, "train")[0], label


@pytest.mark.parametrize("name", [n for n, t in LABEL_TARGETS.items() if t.resampling_mode() is not None])
def test_a_targets_resampling_mode_is_what_its_mapper_does(sample, name):
    target = LABEL_TARGETS[name]
    rec, label = sample
    mapper = SoftLabelDatasetMapper(num_classes=19, factor=FACTOR, crop_size=None, scale_range=(1.0, 1.0),
                                    flip_prob=0.0, photometric=False, label_mode=target.label_mode,
                                    image_mode=target.image_mode or DEFAULT_MODE,
                                    label_filter=target.label_filter)
    got = mapper(rec, np.random.default_rng(0))["sem_seg"]
    size = (round(HW[0] * FACTOR), round(HW[1] * FACTOR))
    mode = target.resampling_mode()
    if target.grid is not None:
        assert torch.equal(got, softlabel_ops.hard_resize(label, size, mode))
    else:
        expect = softlabel_ops.soft_resize(label, 19, size=size, mode=mode)
        dense = got.to_dense() if isinstance(got, softlabel_ops.SparseSoftLabel) else got
        torch.testing.assert_close(dense.probs, expect.probs, atol=1e-6, rtol=0)


def test_ceiling_names_are_analyze_downsamplings():
    names = RetentionResult("d", [], (FACTOR,), (), False, {})
    targets = ceiling_targets()
    assert targets and all(t.ceiling_label == names.mode_label(t.resampling_mode()) for t in targets)
    assert len({t.ceiling_label for t in targets}) == len(targets)


def test_the_table_is_consistent():
    assert set(DECOMPOSITION) == {BASELINE, CONTROL, METHOD} <= set(LABEL_TARGETS)
    assert {t.label_mode for t in LABEL_TARGETS.values()} == set(LABEL_MODES)
    for column in ("title", "colour"):
        values = [getattr(t, column) for t in LABEL_TARGETS.values()]
        assert len(set(values)) == len(values), column
    with pytest.raises(ValueError, match="label_mode must be one of"):
        LabelTarget("x", "x", "hard", "#000000")
