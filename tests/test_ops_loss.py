"""soft_kl_loss: CE equivalence, gradients, MC switch, class weights, valid mass, sparse == dense."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from softlabel_ops import DenseSoftLabel, SparseSoftLabel, soft_kl_loss, soft_resize


def _batch(seed, n=2, c=4, shape=(12, 16), size=(5, 7), mode="torch:area", ignore=0.2):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, c, (n,) + shape).astype(np.uint8)
    lab[rng.random(lab.shape) < ignore] = 255
    return soft_resize(lab, c, size=size, mode=mode)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), c=st.integers(2, 6), weighted=st.booleans())
def test_equals_cross_entropy_on_onehot_targets(seed, c, weighted):
    g = torch.Generator().manual_seed(seed)
    hard = torch.randint(0, c, (2, 6, 5), generator=g)
    hard[torch.rand(hard.shape, generator=g) < 0.3] = 255
    logits = torch.randn(2, c, 6, 5, generator=g, dtype=torch.float64)
    target = soft_resize(hard, c, size=(6, 5), mode="torch:nearest")
    w = torch.rand(c, generator=g, dtype=torch.float64) + 0.1 if weighted else None
    ref = F.cross_entropy(logits, hard, weight=w, ignore_index=255)
    if bool((hard != 255).any()):
        torch.testing.assert_close(soft_kl_loss(logits, target, class_weights=w), ref)
        torch.testing.assert_close(soft_kl_loss(logits, target.to_sparse(), class_weights=w), ref)
        total = F.cross_entropy(logits, hard, weight=w, ignore_index=255, reduction="sum")
        torch.testing.assert_close(soft_kl_loss(logits, target, class_weights=w, reduction="sum"), total)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), mode=st.sampled_from(["torch:bilinear", "torch:area", "pil:box"]),
       mc=st.booleans(), min_valid=st.sampled_from([0.0, 0.5]))
def test_sparse_loss_equals_dense_loss(seed, mode, mc, min_valid):
    d = _batch(seed, mode=mode)
    logits = torch.randn(2, 4, 5, 7, generator=torch.Generator().manual_seed(seed))
    w = torch.tensor([1.0, 2.0, 0.5, 1.5])
    for kw in ({}, {"class_weights": w}):
        a = soft_kl_loss(logits, d, multi_class=mc, min_valid=min_valid, **kw)
        b = soft_kl_loss(logits, d.to_sparse(), multi_class=mc, min_valid=min_valid, **kw)
        torch.testing.assert_close(a, b)


def test_kl_zero_at_target_and_matches_definition():
    d = _batch(1)
    probs = d.probs.double()
    logits = torch.log(probs.clamp_min(1e-300))
    assert float(soft_kl_loss(logits, d)) == pytest.approx(0.0, abs=1e-6)
    z = torch.randn(2, 4, 5, 7, dtype=torch.float64)
    logp = F.log_softmax(z, 1)
    t = probs
    kl = torch.where(t > 0, t * (torch.log(t.clamp_min(1e-300)) - logp), 0).sum(1)
    v = d.valid.double()
    torch.testing.assert_close(soft_kl_loss(z, d), (v * kl).sum() / v.sum())
    torch.testing.assert_close(soft_kl_loss(z, d, reduction="none"), v * kl)


def test_multi_class_switch_and_valid_weighting():
    d = _batch(2, mode="torch:bilinear")
    z = torch.randn(2, 4, 5, 7, dtype=torch.float64)
    single = d.single_class_mask()
    assert bool(single.any()) and bool((~single & (d.valid > 0)).any())
    per_pixel = soft_kl_loss(z, d, reduction="none")
    v = d.valid.double()
    expect = (per_pixel * single).sum() / (v * single).sum()
    torch.testing.assert_close(soft_kl_loss(z, d, multi_class=False), expect)
    keep = d.valid >= 0.75
    expect = (per_pixel * keep).sum() / (v * keep).sum()
    torch.testing.assert_close(soft_kl_loss(z, d, min_valid=0.75), expect)
    # a pixel with half the valid mass weighs half as much
    probs = torch.zeros(1, 2, 1, 2, dtype=torch.float64)
    probs[0, 0] = 1
    t = DenseSoftLabel(probs, torch.tensor([[[1.0, 0.5]]], dtype=torch.float64))
    z = torch.tensor([[[[0.0, 1.0]], [[1.0, 0.0]]]], dtype=torch.float64)
    l0, l1 = -F.log_softmax(z, 1)[0, 0, 0]
    torch.testing.assert_close(soft_kl_loss(z, t), (l0 + 0.5 * l1) / 1.5)


def test_no_contributing_pixel_gives_zero_with_gradient():
    t = DenseSoftLabel(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2))
    z = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = soft_kl_loss(z, t)
    loss.backward()
    assert float(loss.detach()) == 0 and z.grad is not None


@pytest.mark.parametrize("sparse", [False, True])
def test_gradcheck(sparse):
    d = _batch(3, n=1, c=3, shape=(6, 6), size=(3, 4), mode="torch:bilinear")
    d = DenseSoftLabel(d.probs.double(), d.valid.double())
    target = d.to_sparse() if sparse else d
    if sparse:
        target = SparseSoftLabel(target.indices, target.weights.double(), target.valid, 3)
    z = torch.randn(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.0, 0.3, 2.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: soft_kl_loss(x, target, class_weights=w), (z,))
    assert torch.autograd.gradcheck(lambda x: soft_kl_loss(x, target, multi_class=False), (z,))


def test_sparse_memory_does_not_grow_with_classes():
    """The sparse path gathers K log-probabilities; nothing of size (N, C, h, w) beyond log_softmax."""
    c = 150
    lab = np.random.default_rng(4).integers(0, c, (1, 16, 16)).astype(np.uint8)
    s = soft_resize(lab, c, size=(8, 8), mode="torch:area", sparse=True)
    assert s.indices.shape[1] <= 4
    z = torch.randn(1, c, 8, 8)
    torch.testing.assert_close(soft_kl_loss(z, s), soft_kl_loss(z, s.to_dense()))


def test_bad_inputs():
    d = _batch(5)
    with pytest.raises(ValueError, match="batched"):
        soft_kl_loss(torch.randn(2, 4, 5, 7), DenseSoftLabel(d.probs[0], d.valid[0]))
    with pytest.raises(ValueError, match="does not match"):
        soft_kl_loss(torch.randn(2, 4, 5, 6), d)
    with pytest.raises(ValueError, match="classes"):
        soft_kl_loss(torch.randn(2, 3, 5, 7), d)
    with pytest.raises(ValueError, match="reduction"):
        soft_kl_loss(torch.randn(2, 4, 5, 7), d, reduction="max")
