"""Dataset analyses: how much label information survives down-sampling (paper Fig. 3b and 4)."""
from .retention import (
    THIN_CLASSES,
    RetentionResult,
    analyze_records,
    measure_label,
)

__all__ = ["THIN_CLASSES", "RetentionResult", "analyze_records", "measure_label"]
