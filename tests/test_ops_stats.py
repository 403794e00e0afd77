"""Label statistics for the analysis figures: class shares, share changes, multi-class fraction, entropy."""
import math

import numpy as np
import pytest
import torch

from softlabel_ops import (
    DenseSoftLabel,
    class_share,
    label_statistics,
    mean_entropy,
    multi_class_fraction,
    share_change,
    soft_class_share,
    soft_resize,
)


def test_class_share_counts_non_ignore_pixels():
    lab = np.array([[0, 0, 1, 255], [2, 2, 2, 255]], np.uint8)
    np.testing.assert_allclose(class_share(lab, 4), [2 / 6, 1 / 6, 3 / 6, 0])


def test_soft_area_preserves_class_mass_exactly():
    """Area down-sampling by an integer factor keeps every class's share; nearest does not."""
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 6, (64, 96)).astype(np.uint8)
    lab[:, 40:42] = 5  # a thin "pole" that nearest sampling at 1/8 tends to drop or inflate
    stats = label_statistics(lab, 6, scale=1 / 8, mode="torch:area")
    assert set(stats) >= {"full", "nearest", "soft", "nearest_change", "soft_change", "multi_class_fraction",
                          "mean_entropy"}
    for key in ("full", "nearest", "soft", "nearest_change", "soft_change"):
        assert isinstance(stats[key], np.ndarray) and stats[key].shape == (6,)
    np.testing.assert_allclose(stats["soft"], stats["full"], atol=1e-6)
    np.testing.assert_allclose(stats["soft_change"], 0, atol=1e-3)
    assert np.abs(stats["nearest_change"]).max() > 1
    assert 0 < float(stats["multi_class_fraction"]) <= 1 and float(stats["mean_entropy"]) > 0


def test_share_change_and_summaries():
    np.testing.assert_allclose(share_change(np.array([0.5, 0.25, 0.0]), np.array([0.25, 0.25, 0.1])),
                               [-50.0, 0.0, np.nan])
    probs = torch.tensor([[[1.0, 0.5, 0.0]], [[0.0, 0.5, 0.0]]])
    d = DenseSoftLabel(probs, torch.tensor([[1.0, 1.0, 0.0]]))
    assert float(multi_class_fraction(d)) == pytest.approx(0.5)
    assert float(mean_entropy(d)) == pytest.approx(math.log(2) / 2)
    np.testing.assert_allclose(soft_class_share(d), [0.75, 0.25])
    np.testing.assert_allclose(soft_class_share(d.to_sparse()), [0.75, 0.25])


def test_nearest_labels_are_single_class():
    lab = np.random.default_rng(1).integers(0, 3, (20, 20)).astype(np.uint8)
    d = soft_resize(lab, 3, size=(7, 7), mode="torch:nearest")
    assert float(multi_class_fraction(d)) == 0 and float(mean_entropy(d)) == 0
