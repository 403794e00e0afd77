"""DenseSoftLabel / SparseSoftLabel methods: conversions, crop/pad/flip, stack, argmax, entropy."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from softlabel_ops import DenseSoftLabel, SparseSoftLabel, soft_resize


def _label(seed, shape=(13, 17), c=5):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, c, shape).astype(np.uint8)
    lab[rng.random(shape) < 0.15] = 255
    return lab


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), h=st.integers(1, 12), w=st.integers(1, 12),
       window=st.tuples(st.integers(-4, 12), st.integers(-4, 12), st.integers(1, 14), st.integers(1, 14)))
def test_spatial_methods_agree_between_dense_and_sparse(seed, h, w, window):
    d = soft_resize(_label(seed), 5, size=(h, w), mode="torch:area")
    s = d.to_sparse()
    for op in (lambda x: x.crop(*window), lambda x: x.hflip(), lambda x: x.pad_to(h + 3, w + 1)):
        a, b = op(d), op(s)
        torch.testing.assert_close(b.to_dense().probs, a.probs)
        torch.testing.assert_close(b.valid, a.valid)
        torch.testing.assert_close(b.argmax(), a.argmax())
        torch.testing.assert_close(b.entropy(), a.entropy())
        torch.testing.assert_close(b.single_class_mask(), a.single_class_mask())


def test_crop_pad_flip_semantics():
    d = soft_resize(_label(0), 5, size=(6, 8), mode="cv2:area")
    p = d.pad_to(9, 10)
    assert p.probs.shape == (5, 9, 10) and float(p.valid[6:].sum()) == 0 and float(p.valid[:, 8:].sum()) == 0
    torch.testing.assert_close(p.crop(0, 0, 6, 8).probs, d.probs)
    torch.testing.assert_close(d.hflip().probs, d.probs.flip(-1))
    c = d.crop(-1, 5, 3, 4)
    assert c.valid.shape == (3, 4) and float(c.valid[0].sum()) == 0 and float(c.valid[:, 3].sum()) == 0
    torch.testing.assert_close(c.probs[:, 1:, :3], d.probs[:, :2, 5:8])


def test_stack_pads_and_batches():
    a = soft_resize(_label(1, (10, 10)), 5, size=(4, 6), mode="torch:bilinear")
    b = soft_resize(_label(2, (10, 10)), 5, size=(5, 3), mode="torch:bilinear")
    st_ = DenseSoftLabel.stack([a, b])
    assert st_.probs.shape == (2, 5, 5, 6) and st_.valid.shape == (2, 5, 6) and st_.batched
    assert float(st_.valid[0, 4].sum()) == 0 and float(st_.valid[1, :, 3:].sum()) == 0
    sa, sb = a.to_sparse(), b.to_sparse(top_k=1)
    sp = SparseSoftLabel.stack([sa, sb], size=(6, 7))
    assert sp.indices.shape == (2, max(sa.k, sb.k), 6, 7)
    torch.testing.assert_close(sp.to_dense().probs[0], a.pad_to(6, 7).probs)
    torch.testing.assert_close(sp.to_dense().probs[1], sb.to_dense().pad_to(6, 7).probs)


def test_argmax_single_class_entropy():
    probs = torch.tensor([[[1.0, 0.5, 0.0, 0.2]], [[0.0, 0.5, 0.0, 0.8]]])  # (C=2, 1, 4)
    valid = torch.tensor([[1.0, 0.9, 0.0, 0.3]])
    d = DenseSoftLabel(probs, valid)
    assert d.argmax().tolist() == [[0, 0, 255, 255]]
    assert d.argmax(min_valid=0.0).tolist() == [[0, 0, 255, 1]]
    assert d.single_class_mask().tolist() == [[True, False, False, False]]
    ent = d.entropy()[0]
    assert float(ent[0]) == 0 and float(ent[1]) == pytest.approx(math.log(2))
    s = d.to_sparse()
    assert s.k == 2 and s.argmax(min_valid=0.0).tolist() == [[0, 0, 255, 1]]
    assert s.to_sparse(top_k=1).k == 1


def test_to_moves_and_casts():
    d = soft_resize(_label(3), 5, size=(4, 4), mode="torch:area")
    s = d.to_sparse()
    assert d.to(torch.float64).probs.dtype == torch.float64
    s64 = s.to(torch.float64)
    assert s64.indices.dtype == torch.int64 and s64.weights.dtype == torch.float64
    assert s.to("cpu").device.type == "cpu" and d.num_classes == 5 and s.num_classes == 5
