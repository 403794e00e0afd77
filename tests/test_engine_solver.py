"""Optimizer parameter groups and LR schedules (warmup + poly / cosine through LRMultiplier)."""

import math

import pytest
import torch
from fvcore.common.param_scheduler import (
    ConstantParamScheduler,
    CosineParamScheduler,
    PolynomialDecayParamScheduler,
)
from softlabelseg.engine import (
    LRMultiplier,
    WarmupParamScheduler,
    get_default_optimizer_params,
)

from tests.helpers.standins import ToySegModel


def test_param_groups_norm_bias_and_lr_factor():
    model = ToySegModel()
    groups = get_default_optimizer_params(
        model,
        base_lr=0.1,
        weight_decay=1e-4,
        weight_decay_norm=0.0,
        weight_decay_bias=0.0,
        lr_factor_func=lambda name: 0.1 if name.startswith("conv1") else 1.0,
    )
    by_param = {id(p): g for g in groups for p in g["params"]}
    assert by_param[id(model.bn.weight)]["weight_decay"] == 0.0
    assert by_param[id(model.head.bias)]["weight_decay"] == 0.0
    assert by_param[id(model.head.weight)]["weight_decay"] == 1e-4
    assert by_param[id(model.conv1.weight)]["lr"] == pytest.approx(0.01)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def lrs(multiplier, n=100):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LRMultiplier(opt, multiplier, n)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_poly():
    out = lrs(WarmupParamScheduler(PolynomialDecayParamScheduler(1.0, 0.9), 0.001, 0.1))
    assert out[0] == pytest.approx(0.001 * 0.9**0.9)  # warmup starts at factor * schedule(end of warmup)
    assert out[10] == pytest.approx(0.9**0.9)
    assert out[50] == pytest.approx(0.5**0.9)
    assert out[5] == pytest.approx((0.001 + 0.5 * 0.999) * 0.9**0.9)


def test_cosine_and_state_roundtrip():
    out = lrs(CosineParamScheduler(1.0, 0.0))
    assert (
        out[0] == 1.0
        and out[50] == pytest.approx(0.5)
        and out[99] == pytest.approx((1 + math.cos(math.pi * 0.99)) / 2)
    )
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    s = LRMultiplier(opt, CosineParamScheduler(1.0, 0.0), 10)
    for _ in range(4):
        opt.step()
        s.step()
    state = s.state_dict()
    assert set(state) == {"base_lrs", "last_epoch"}
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    s2 = LRMultiplier(opt2, CosineParamScheduler(1.0, 0.0), 10)
    s2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    with pytest.raises(TypeError):
        LRMultiplier(opt, lambda t: 1.0, 10)
    with pytest.raises(ValueError):
        WarmupParamScheduler(ConstantParamScheduler(1.0), 0.1, 1.5)
