"""Statistics of the evidence grid's results: cells of seeds, mean ± std, class-group mIoU, paired
differences to a reference variant and their paired t-test p-values.

Results are ``{GridPoint: metrics}`` as :func:`.sweep.collect` returns them; metrics hold ``mIoU`` and
``IoU-<class>`` in percent.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .sweep import GridPoint

__all__ = ["by_cell", "group_miou", "group_scores", "mean_std", "paired_differences",
           "paired_p_value", "shared_seed_means"]

Cells = dict[tuple[str, Fraction], dict[int, dict]]


def by_cell(results: dict[GridPoint, dict]) -> Cells:
    """``{(variant, factor): {seed: metrics}}``, in the order of ``results``."""
    cells: Cells = {}
    for p, m in results.items():
        cells.setdefault((p.variant, p.factor), {})[p.seed] = m
    return cells


def group_miou(metrics: dict, class_names, group) -> float:
    """Mean IoU over the classes of ``group`` that have an IoU in ``metrics`` (nan if none)."""
    vals = [metrics.get(f"IoU-{n}") for n in class_names if n in group]
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def mean_std(values) -> tuple[float, float, int]:
    """Mean, sample std (nan below 2 values) and count of ``values``, None and nan left out."""
    arr = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return math.nan, math.nan, 0
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else math.nan, int(arr.size)


def group_scores(metrics: dict, class_names, groups) -> dict[str, float]:
    """``{"mIoU", "thin", "stuff"}`` of one run; ``groups``: {"thin": names, "stuff": names}."""
    return {"mIoU": metrics["mIoU"], "thin": group_miou(metrics, class_names, groups["thin"]),
            "stuff": group_miou(metrics, class_names, groups["stuff"])}


def paired_differences(cells: Cells, variant: str, reference: str, factor: Fraction, class_names,
                       groups) -> list[dict[str, float]]:
    """:func:`group_scores` of ``variant`` minus those of ``reference`` at ``factor``, one per seed both
    finished, in seed order."""
    ref = cells.get((reference, factor), {})
    runs = cells.get((variant, factor), {})
    pairs = [(runs[s], ref[s]) for s in sorted(runs) if s in ref]
    return [_score_diff(group_scores(x, class_names, groups), group_scores(y, class_names, groups))
            for x, y in pairs]


def shared_seed_means(cells: Cells, variants, factor: Fraction) -> tuple[dict[str, float], int]:
    """Mean mIoU of each of ``variants`` at ``factor`` over the seeds all of them finished (a paired
    estimate), and the number of those seeds."""
    runs = {v: cells.get((v, factor), {}) for v in variants}
    shared = set.intersection(*map(set, runs.values()))
    return {v: mean_std([r[s]["mIoU"] for s in shared])[0] for v, r in runs.items()}, len(shared)


def paired_p_value(differences) -> float:
    """Two-sided p-value of a one-sample t-test that the mean paired difference is 0 (nan when undefined)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size < 2 or not np.ptp(d) > 0:
        return math.nan
    from scipy.stats import ttest_1samp

    return float(ttest_1samp(d, 0.0).pvalue)


def _score_diff(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a[k] - b[k] for k in a}
