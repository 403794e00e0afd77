"""The paper's ablation grid (Tables 1 and 3) as a sweep of ordinary training runs, and its aggregation.

A grid point is (label mode, training-resolution factor, MC switch, seed). Each point is one run of
``tools/lazyconfig_train_net.py`` with LazyConfig overrides and its own output folder; a point whose
``sem_seg_evaluation.json`` exists is finished and never trained again, an interrupted one resumes from
its last checkpoint. Nearest-neighbour labels have single-class pixels only, so the MC switch does not
change them: the nearest baseline runs once per (factor, seed).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["GridPoint", "OverrideKeys", "make_grid", "run_point", "collect", "markdown_tables", "plot_miou"]

RESULT_FILE = os.path.join("inference", "sem_seg_evaluation.json")


@dataclass(frozen=True)
class OverrideKeys:
    """Config keys the grid sets (the defaults fit every recipe under ``projects/SoftLabelSeg/configs``)."""

    label_mode: str = "dataloader.train.mapper.label_mode"
    factor: str = "dataloader.train.mapper.factor"
    multi_class: str = "model.multi_class"
    seeds: tuple[str, ...] = ("train.seed", "dataloader.train.seed")
    output_dir: str = "train.output_dir"


@dataclass(frozen=True)
class GridPoint:
    label_mode: str  # "nearest" | "soft" | "soft_sparse"
    factor: Fraction
    multi_class: bool
    seed: int

    @property
    def variant(self) -> str:
        """Row name in the tables: "nearest", "soft" (MC on) or "soft, MC off"."""
        if self.label_mode == "nearest":
            return "nearest"
        return self.label_mode if self.multi_class else f"{self.label_mode}, MC off"

    @property
    def name(self) -> str:
        mc = "" if self.label_mode == "nearest" else ("_mc" if self.multi_class else "_nomc")
        return f"{self.label_mode}{mc}_f{self.factor.numerator}of{self.factor.denominator}_s{self.seed}"

    def overrides(self, keys: OverrideKeys, output_dir: str) -> list[str]:
        out = [
            f"{keys.label_mode}={self.label_mode}",
            f"{keys.factor}={float(self.factor)!r}",
            f"{keys.multi_class}={self.multi_class}",
            f"{keys.output_dir}={output_dir}",
        ]
        return out + [f"{k}={self.seed}" for k in keys.seeds]


def parse_factor(text: str) -> Fraction:
    """'1/8', '0.125' or '1' -> Fraction in (0, 1]."""
    f = Fraction(text).limit_denominator(64)
    if not 0 < f <= 1:
        raise ValueError(f"factor {text!r} must be in (0, 1]")
    return f


def make_grid(modes, factors, mc_values, seeds) -> list[GridPoint]:
    """All points, nearest once per (factor, seed) whatever ``mc_values`` holds; coarsest factor first."""
    points = []
    for seed in seeds:
        for factor in sorted(factors):
            for mode in modes:
                for mc in ([False] if mode == "nearest" else mc_values):
                    points.append(GridPoint(mode, factor, mc, seed))
    return points


def is_finished(run_dir: str) -> bool:
    return os.path.isfile(os.path.join(run_dir, RESULT_FILE))


def run_point(point: GridPoint, config_file: str, root: str, extra: list[str], keys: OverrideKeys,
              train_script: str, log=print) -> float:
    """Train and evaluate one point unless finished; returns the seconds spent (0 when skipped).

    The run's console output goes to ``<run_dir>/ablation_run.log``; a failed run raises with its tail.
    """
    run_dir = os.path.join(root, point.name)
    if is_finished(run_dir):
        log(f"[skip] {point.name}: finished ({RESULT_FILE} present)")
        return 0.0
    resume = os.path.isfile(os.path.join(run_dir, "last_checkpoint"))
    cmd = [sys.executable, train_script, "--config-file", config_file]
    cmd += ["--resume"] if resume else []
    cmd += point.overrides(keys, run_dir) + list(extra)
    os.makedirs(run_dir, exist_ok=True)
    log(f"[run] {point.name}{' (resuming)' if resume else ''}")
    start = time.perf_counter()
    with open(os.path.join(run_dir, "ablation_run.log"), "a") as logf:
        proc = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not is_finished(run_dir):
        with open(os.path.join(run_dir, "ablation_run.log")) as f:
            tail = "".join(f.readlines()[-20:])
        raise RuntimeError(
            f"run {point.name} failed (exit {proc.returncode}); see {run_dir}/ablation_run.log:\n{tail}"
        )
    log(f"[done] {point.name} in {seconds:.0f} s")
    return seconds


def collect(points: list[GridPoint], root: str) -> dict[GridPoint, dict]:
    """Metrics dict (mIoU, IoU-<class>, ...) of every finished point."""
    results = {}
    for p in points:
        path = os.path.join(root, p.name, RESULT_FILE)
        if os.path.isfile(path):
            with open(path) as f:
                results[p] = json.load(f)["metrics"]
    return results


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return math.nan, math.nan
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def _cell(values: list[float]) -> str:
    mean, std = _mean_std(values)
    if math.isnan(mean):
        return "-"
    return f"{mean:.1f}" if len(values) < 2 else f"{mean:.1f} ± {std:.1f}"


def _groups(results: dict[GridPoint, dict]) -> dict[tuple[str, Fraction], list[dict]]:
    groups: dict[tuple[str, Fraction], list[dict]] = {}
    for p, m in sorted(results.items(), key=lambda kv: (kv[0].factor, kv[0].variant, kv[0].seed)):
        groups.setdefault((p.variant, p.factor), []).append(m)
    return groups


def markdown_tables(results: dict[GridPoint, dict], class_names: list[str]) -> str:
    """Table 1 (per-class IoU and mIoU per variant and factor) and Table 3 (mIoU per factor x variant),
    as mean ± sample standard deviation over seeds (the seed count is in the last column)."""
    groups = _groups(results)
    short = [n[:6] for n in class_names]
    lines = ["### Per-class IoU (shape of the paper's Table 1)", "",
             "| labels | factor | " + " | ".join(short) + " | mIoU | seeds |",
             "|---|---|" + "---|" * len(short) + "---|---|"]
    for (variant, factor), ms in groups.items():
        cells = [_cell([m.get(f"IoU-{n}") for m in ms]) for n in class_names]
        lines.append(f"| {variant} | {factor} | " + " | ".join(cells)
                     + f" | **{_cell([m['mIoU'] for m in ms])}** | {len(ms)} |")
    variants = sorted({v for v, _ in groups}, key=lambda v: (v != "nearest", v))
    factors = sorted({f for _, f in groups})
    lines += ["", "### mIoU by factor and label variant (shape of the paper's Table 3)", "",
              "| factor | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for f in factors:
        cells = [_cell([m["mIoU"] for m in groups.get((v, f), [])]) for v in variants]
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_miou(results: dict[GridPoint, dict], path: str, title: str = "") -> None:
    """mIoU vs training-resolution factor, one line per label variant, error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(results)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
    for variant in sorted({v for v, _ in groups}):
        factors = sorted(f for v, f in groups if v == variant)
        stats = [_mean_std([m["mIoU"] for m in groups[(variant, f)]]) for f in factors]
        ax.errorbar([float(f) for f in factors], [s[0] for s in stats], yerr=[s[1] for s in stats],
                    marker="o", capsize=3, label=variant)
    ax.set_xscale("log", base=2)
    all_factors = sorted({f for _, f in groups})
    ax.set_xticks([float(f) for f in all_factors], [str(f) for f in all_factors])
    ax.set_xlabel("training-resolution factor")
    ax.set_ylabel("mIoU (%) at full resolution")
    ax.set_title(title or "mIoU vs training resolution")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
