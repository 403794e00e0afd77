"""Prior matching: offsets restore a thin class that a spread-out (soft) prediction never lets win."""
import numpy as np
import torch
from softlabelseg.evaluation.calibration import CachedPredictions, confusion_with_bias, fit_prior_bias


def _thin_pole_case():
    """Label: class 1 (pole) is a 2-pixel column in every 8-pixel cell column block; the logits at the
    1/8 grid give the pole a third of the cell (soft-label training): plain argmax never picks it."""
    H, W, f = 16, 64, 8
    label = torch.zeros(H, W, dtype=torch.uint8)
    label[:, 3::16] = 1
    label[:, 4::16] = 1
    label[:, 60:] = 255  # ignored pixels take no part
    probs = torch.full((2, H // f, W // f), 0.0)
    probs[1, :, 0::2] = 0.3  # cells holding a pole
    probs[0] = 1 - probs[1]
    logits = torch.log(probs.clamp(min=1e-3))
    return CachedPredictions([logits, logits.clone()], [label, label.clone()], 2)


def test_offsets_match_shares_and_recover_the_thin_class():
    cache = _thin_pole_case()
    plain = confusion_with_bias(cache)
    assert plain[1, 1] == 0  # the pole never wins the argmax
    bias, history = fit_prior_bias(cache, iters=20)
    assert bias[1] > bias[0] and history[-1] < history[0]
    tuned = confusion_with_bias(cache, bias)
    iou = np.diag(tuned) / (tuned.sum(0) + tuned.sum(1) - np.diag(tuned))
    assert iou[1] > 0.3
    assert tuned.sum() == plain.sum() == int((cache.labels[0] < 2).sum()) * 2  # ignore stays out


def test_zero_offsets_equal_plain_argmax_and_absent_classes_stay_put():
    cache = _thin_pole_case()
    cache = CachedPredictions([torch.cat([lg, torch.full_like(lg[:1], -9.0)]) for lg in cache.logits],
                              cache.labels, 3)
    np.testing.assert_array_equal(confusion_with_bias(cache, torch.zeros(3)), confusion_with_bias(cache))
    bias, _ = fit_prior_bias(cache, iters=5)
    assert float(bias[2]) == 0.0  # class 2 never occurs in the labels
