"""SegFormer MiT-B2 on ADE20K with cell-centred nearest labels: the baseline of ``segformer_b2_soft.py``."""

from .segformer_b2_soft import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.mapper.label_mode = "nearest"
