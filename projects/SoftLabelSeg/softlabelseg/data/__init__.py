"""Data: dataset catalog and readers, the ToyCity generator, the paired soft-label mapper, loaders."""
from .catalog import (
    DATASETS_ENV,
    DatasetCatalog,
    DatasetNotFoundError,
    Metadata,
    MetadataCatalog,
    dataset_root,
)
from .datasets import class_groups, register_all
from .decode import BadSampleError, read_image, read_label, read_sem_seg
from .loader import TrainingSampler, build_test_loader, build_train_loader, get_dataset_dicts
from .mapper import LABEL_MODES, SoftLabelDatasetMapper
from .toycity import ToyCityParams, ensure_toycity, generate_toycity

__all__ = [
    "DATASETS_ENV", "LABEL_MODES", "BadSampleError", "DatasetCatalog", "DatasetNotFoundError", "Metadata",
    "MetadataCatalog", "SoftLabelDatasetMapper", "ToyCityParams", "TrainingSampler", "build_test_loader",
    "build_train_loader", "class_groups", "dataset_root", "ensure_toycity", "generate_toycity",
    "get_dataset_dicts", "read_image", "read_label", "read_sem_seg", "register_all",
]
