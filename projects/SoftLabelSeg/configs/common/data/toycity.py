"""ToyCity data (generated into $SOFTLABELSEG_DATASETS/toycity on first use): 1/8 training resolution.

Change the resolution with ``dataloader.train.mapper.factor=0.25`` (the crop follows: ``crop_size=1.0`` is
the whole image at the training factor, rescaled 0.5-2x as in the paper; the test image follows too).
``dataloader.train.mapper.label_mode``: "soft" (default), "soft_sparse" or "nearest" (the baseline).
"""
from omegaconf import OmegaConf
from softlabelseg.config import LazyCall as L
from softlabelseg.data import SoftLabelDatasetMapper, build_test_loader, build_train_loader
from softlabelseg.evaluation import SemSegEvaluator

dataloader = OmegaConf.create()
dataloader.train = L(build_train_loader)(
    dataset="toycity_sem_seg_train",
    mapper=L(SoftLabelDatasetMapper)(
        is_train=True,
        num_classes=19,
        factor=0.125,
        crop_size=1.0,
        scale_range=[0.5, 2.0],
        cat_max_ratio=1.0,
        flip_prob=0.5,
        image_mode="torch:bilinear",
        antialias=False,
        label_mode="soft",
        photometric=True,
    ),
    total_batch_size=8,
    num_workers=0,
    seed=0,
    skip_bad_samples=False,
)
dataloader.test = L(build_test_loader)(
    dataset="toycity_sem_seg_val",
    mapper=L(SoftLabelDatasetMapper)(
        is_train=False,
        num_classes="${...train.mapper.num_classes}",
        factor="${...train.mapper.factor}",
        image_mode="${...train.mapper.image_mode}",
        antialias="${...train.mapper.antialias}",
    ),
    num_workers=0,
)
dataloader.evaluator = L(SemSegEvaluator)(dataset_name="${..test.dataset}")
