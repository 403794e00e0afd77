"""ADE20K (ADEChallengeData2016, 150 classes) at full resolution: 512 x 512 crops, rescale 0.5-2x,
cat_max_ratio 0.75 (the SegFormer setup; crops larger than a rescaled image up-sample its label softly).

Some ADE20K images are grayscale: ``dataloader.train.mapper.convert_to_rgb=True`` converts them (counted in
the log) instead of raising.
"""
from .base import dataloader

dataloader.train.dataset = "ade20k_sem_seg_train"
dataloader.test.dataset = "ade20k_sem_seg_val"
dataloader.train.mapper.num_classes = 150
dataloader.train.mapper.crop_size = [512, 512]
dataloader.train.mapper.cat_max_ratio = 0.75
dataloader.train.mapper.label_mode = "soft_sparse"  # 150 dense planes per pixel are costly; top-K is exact
dataloader.train.total_batch_size = 16
