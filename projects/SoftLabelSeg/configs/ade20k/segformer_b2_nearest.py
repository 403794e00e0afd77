"""SegFormer MiT-B2 on ADE20K with nearest-neighbour labels: the baseline of ``segformer_b2_soft.py``."""

from .segformer_b2_soft import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.mapper.label_mode = "nearest"
