"""Optimizers. ``params.model`` is filled with the built model by the trainer.

SGD: the paper's setting (momentum 0.9, weight decay 1e-4; norm layers without decay).
AdamW: SegFormer's setting (lr 6e-5, weight decay 0.01, decode head at 10x lr, no decay on norm layers).
"""

import torch
from softlabelseg.config import LazyCall as L
from softlabelseg.engine import get_default_optimizer_params

SGD = L(torch.optim.SGD)(
    params=L(get_default_optimizer_params)(weight_decay_norm=0.0),
    lr=0.01,
    momentum=0.9,
    weight_decay=1e-4,
)


def segformer_lr_factor(name: str) -> float:
    """10x learning rate for the decode head, as in SegFormer."""
    return 10.0 if name.startswith("head.") else 1.0


AdamW = L(torch.optim.AdamW)(
    params=L(get_default_optimizer_params)(
        base_lr="${..lr}",
        weight_decay_norm=0.0,
        lr_factor_func=segformer_lr_factor,
    ),
    lr=6e-5,
    betas=(0.9, 0.999),
    weight_decay=0.01,
)
