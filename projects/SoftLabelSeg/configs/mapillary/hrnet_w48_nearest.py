"""HRNetV2-W48 on Mapillary Vistas with cell-centred nearest labels: the baseline of ``hrnet_w48_soft.py``."""

from .hrnet_w48_soft import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.mapper.label_mode = "nearest"
