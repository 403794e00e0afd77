"""LR multipliers (fvcore param schedulers over training progress in [0, 1)).

``poly``: linear warmup over the first 1% of training, then (1 - t)^0.9 (DeepLab / HRNet).
``cosine``: the same warmup, then a half cosine to 0.
``poly_segformer``: warmup over 1% then (1 - t)^1.0 (SegFormer: 1500 of 160k iterations).
Warmup lengths are fractions of ``train.max_iter`` (override: ``lr_multiplier.warmup_length=0.02``).
"""

from fvcore.common.param_scheduler import CosineParamScheduler, PolynomialDecayParamScheduler
from softlabelseg.config import LazyCall as L
from softlabelseg.engine import WarmupParamScheduler

poly = L(WarmupParamScheduler)(
    scheduler=L(PolynomialDecayParamScheduler)(base_value=1.0, power=0.9),
    warmup_length=0.01,
    warmup_factor=0.001,
)

cosine = L(WarmupParamScheduler)(
    scheduler=L(CosineParamScheduler)(start_value=1.0, end_value=0.0),
    warmup_length=0.01,
    warmup_factor=0.001,
)

poly_segformer = L(WarmupParamScheduler)(
    scheduler=L(PolynomialDecayParamScheduler)(base_value=1.0, power=1.0),
    warmup_length=0.01,
    warmup_factor=1e-6,
)
