"""The data pipeline every dataset shares: paired soft-label training mapper, full-resolution evaluation.

Dataset files import ``dataloader`` from here and set what differs (dataset names, classes, factor, crop).
Keys users override most: ``dataloader.train.mapper.factor`` (training-resolution factor; the test image
follows), ``dataloader.train.mapper.label_mode`` ("soft", "soft_sparse", "nearest": the cell-centred
baseline, "nearest_topleft": the misaligned top-left grid, or "full_res"),
``dataloader.train.mapper.image_mode`` (the filter used for the image *and* the soft label),
``dataloader.train.total_batch_size``, ``dataloader.train.num_workers``.
``crop_size=1.0`` is the whole image at the training factor (the paper's setting), ``[h, w]`` a fixed crop.
``skip_bad_samples`` (train and test, each off by default): leave unreadable or invalid samples out instead
of stopping; they are logged, counted in metrics.json (``data/skipped_samples``) and listed in the
evaluation JSON (``skipped_inputs``).
"""
from omegaconf import MISSING, OmegaConf
from softlabelseg.config import LazyCall as L
from softlabelseg.data import SoftLabelDatasetMapper, build_test_loader, build_train_loader
from softlabelseg.evaluation import SemSegEvaluator

from softlabel_ops.modes import DEFAULT_MODE

dataloader = OmegaConf.create()
dataloader.train = L(build_train_loader)(
    dataset=MISSING,
    mapper=L(SoftLabelDatasetMapper)(
        is_train=True,
        num_classes=MISSING,
        factor=1.0,
        crop_size=1.0,
        scale_range=[0.5, 2.0],
        cat_max_ratio=1.0,
        flip_prob=0.5,
        image_mode=DEFAULT_MODE,  # torch:bilinear
        antialias=False,
        label_mode="soft",
        label_filter=None,  # soft labels with the image's filter (the method); see the mapper
        photometric=True,
        convert_to_rgb=False,
    ),
    total_batch_size=8,
    num_workers=4,
    seed=0,
    skip_bad_samples=False,
)
dataloader.test = L(build_test_loader)(
    dataset=MISSING,
    mapper=L(SoftLabelDatasetMapper)(
        is_train=False,
        num_classes="${...train.mapper.num_classes}",
        factor="${...train.mapper.factor}",
        image_mode="${...train.mapper.image_mode}",
        antialias="${...train.mapper.antialias}",
        convert_to_rgb="${...train.mapper.convert_to_rgb}",
    ),
    num_workers=2,
    skip_bad_samples=False,
)
# The evaluation JSON goes to <train.output_dir>/inference under every engine (detectron2's tools too).
dataloader.evaluator = L(SemSegEvaluator)(
    dataset_name="${..test.dataset}", output_dir="${softlabelseg.run_dir:inference}"
)
