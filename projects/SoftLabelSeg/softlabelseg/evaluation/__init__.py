"""softlabelseg.evaluation: full-resolution semantic-segmentation evaluation.

- ``SemSegEvaluator``: confusion matrix (DDP all_reduce) -> IoU/mIoU/fwIoU/mACC/pACC, console table, JSON.
- ``inference_on_dataset(model, loader, evaluator)``: detectron2's evaluation loop.
- ``SemSegTTA`` / ``SlidingWindowInference`` / ``build_test_model``: test-time wrappers around a model.
- writers: Cityscapes ``*_labelIds.png`` submission files and colourised overlays.
"""

from .evaluator import DatasetEvaluator, DatasetEvaluators, inference_on_dataset
from .metrics import confusion_matrix, metrics_from_confusion
from .predictors import SemSegTTA, SlidingWindowInference, build_test_model
from .sem_seg_evaluation import (
    SemSegEvaluator,
    format_results_table,
    scored_class_groups,
    scored_class_names,
    write_json_atomic,
)
from .writers import CityscapesLabelIdsWriter, OverlayWriter

__all__ = [
    "DatasetEvaluator",
    "DatasetEvaluators",
    "inference_on_dataset",
    "confusion_matrix",
    "metrics_from_confusion",
    "SemSegEvaluator",
    "format_results_table",
    "write_json_atomic",
    "scored_class_groups",
    "scored_class_names",
    "SemSegTTA",
    "SlidingWindowInference",
    "build_test_model",
    "CityscapesLabelIdsWriter",
    "OverlayWriter",
]
