"""ToyCity, TinyCNN, cell-centred nearest labels at 1/8: the baseline of ``tiny_soft.py``, all else equal."""

from .tiny_soft import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.mapper.label_mode = "nearest"
