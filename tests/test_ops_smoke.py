"""Quick end-to-end checks of the softlabel_ops public API (the property tests live beside it)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from softlabel_ops import (
    MODES,
    DenseSoftLabel,
    SparseSoftLabel,
    hard_resize,
    label_statistics,
    resize_image,
    soft_kl_loss,
    soft_resize,
)


def _onehot_ref(lab, c, size, mode):
    oh = np.stack([(lab == k).astype(np.float32) for k in range(c)], -1)
    return resize_image(oh, size, mode).transpose(2, 0, 1)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_matches_library_on_onehot(mode):
    lab = np.random.default_rng(0).integers(0, 4, (23, 31)).astype(np.uint8)
    for size in [(7, 12), (40, 45)]:
        s = soft_resize(lab, 4, size=size, mode=mode)
        ref = _onehot_ref(lab, 4, size, mode)
        np.testing.assert_allclose(s.probs.numpy() * s.valid.numpy(), ref, atol=1e-5)


def test_api_roundtrip_and_loss():
    lab = torch.randint(0, 5, (2, 16, 20), dtype=torch.int64)
    lab[:, :2] = 255
    d = soft_resize(lab, 5, scale=0.5, mode="torch:area")
    s = soft_resize(lab, 5, scale=0.5, mode="torch:area", sparse=True)
    assert isinstance(d, DenseSoftLabel) and isinstance(s, SparseSoftLabel)
    assert d.probs.shape == (2, 5, 8, 10) and d.valid.shape == (2, 8, 10)
    torch.testing.assert_close(s.to_dense().probs, d.probs)
    logits = torch.randn(2, 5, 8, 10, requires_grad=True)
    loss = soft_kl_loss(logits, d)
    loss.backward()
    torch.testing.assert_close(soft_kl_loss(logits, s), loss)
    hard = hard_resize(lab, (8, 10))
    assert hard.dtype == torch.int64 and hard.shape == (2, 8, 10)
    onehot = soft_resize(hard, 5, size=(8, 10), mode="torch:nearest")
    torch.testing.assert_close(soft_kl_loss(logits, onehot), F.cross_entropy(logits, hard, ignore_index=255))
    stats = label_statistics(lab[0], 5, scale=0.5, mode="torch:area")
    assert stats["full"].shape == (5,)
