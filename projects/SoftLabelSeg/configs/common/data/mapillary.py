"""Mapillary Vistas v1.2 (65 classes) at 1/4 of the original resolution: 512 x 512 crops, rescale 0.5-2x.

Images vary in size (typically 3000 x 4000); evaluation is on the full-resolution labels.
"""
from omegaconf import OmegaConf
from softlabelseg.config import LazyCall as L
from softlabelseg.data import SoftLabelDatasetMapper, build_test_loader, build_train_loader
from softlabelseg.evaluation import SemSegEvaluator

dataloader = OmegaConf.create()
dataloader.train = L(build_train_loader)(
    dataset="mapillary_vistas_sem_seg_train",
    mapper=L(SoftLabelDatasetMapper)(
        is_train=True,
        num_classes=65,
        factor=0.25,
        crop_size=[512, 512],
        scale_range=[0.5, 2.0],
        cat_max_ratio=1.0,
        flip_prob=0.5,
        image_mode="torch:bilinear",
        antialias=False,
        label_mode="soft_sparse",
        photometric=True,
        convert_to_rgb=False,
    ),
    total_batch_size=8,
    num_workers=4,
    seed=0,
    skip_bad_samples=False,
)
dataloader.test = L(build_test_loader)(
    dataset="mapillary_vistas_sem_seg_val",
    mapper=L(SoftLabelDatasetMapper)(
        is_train=False,
        num_classes="${...train.mapper.num_classes}",
        factor="${...train.mapper.factor}",
        image_mode="${...train.mapper.image_mode}",
        antialias="${...train.mapper.antialias}",
        convert_to_rgb="${...train.mapper.convert_to_rgb}",
    ),
    num_workers=2,
)
dataloader.evaluator = L(SemSegEvaluator)(dataset_name="${..test.dataset}")
