"""Mapillary Vistas v1.2 (65 classes) at 1/4 of the original resolution: 512 x 512 crops, rescale 0.5-2x.

Images vary in size (typically 3000 x 4000); evaluation is on the full-resolution labels.
"""
from .base import dataloader

dataloader.train.dataset = "mapillary_vistas_sem_seg_train"
dataloader.test.dataset = "mapillary_vistas_sem_seg_val"
dataloader.train.mapper.num_classes = 65
dataloader.train.mapper.factor = 0.25
dataloader.train.mapper.crop_size = [512, 512]
dataloader.train.mapper.label_mode = "soft_sparse"
