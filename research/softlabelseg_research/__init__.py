"""The project's research code, kept apart from the library it studies: grid runs and their statistics
(:mod:`.sweep`, :mod:`.grid_stats`, :mod:`.grid_report`), label retention (:mod:`.retention`), the evidence
report and its figures (:mod:`.evidence`, :mod:`.figures`, :mod:`.frontier`), and the generated blocks of
the manual (:mod:`.markdown_blocks`, :mod:`.docs_tables`). The tools in ``tools/`` are its entry points; the
runs it reads live in ``results/``."""
from .retention import (
    THIN_CLASSES,
    RetentionResult,
    analyze_records,
    measure_label,
)

__all__ = ["THIN_CLASSES", "RetentionResult", "analyze_records", "measure_label"]
