"""Data: dataset catalog and readers, the ToyCity generator, the paired soft-label mapper, loaders."""
from .catalog import (
    DATASETS_ENV,
    DatasetCatalog,
    DatasetNotFoundError,
    Metadata,
    MetadataCatalog,
    dataset_root,
)
from .datasets import register_all
from .decode import BadSampleError, read_image, read_label, read_sem_seg
from .toycity_generator import ToyCityParams, ensure_toycity, generate_toycity

__all__ = [
    "DATASETS_ENV", "BadSampleError", "DatasetCatalog", "DatasetNotFoundError", "Metadata", "MetadataCatalog",
    "ToyCityParams", "dataset_root", "ensure_toycity", "generate_toycity", "read_image", "read_label",
    "read_sem_seg", "register_all",
]
