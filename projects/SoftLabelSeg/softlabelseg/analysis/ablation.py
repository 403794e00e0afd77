"""The evidence grid (label variant x training-resolution factor x seed) as ordinary training runs.

A grid point is (variant, factor, seed). Each point is one run of ``tools/lazyconfig_train_net.py`` with
LazyConfig overrides and its own output folder; a point whose ``sem_seg_evaluation.json`` exists is
finished and never trained again, an interrupted one resumes from its last checkpoint. A variant names how
the training targets are made (``VARIANTS``): the two nearest-neighbour grids, soft labels with the
recipe's image filter or with area, with multi-class pixels dropped, or full-resolution labels. Each
variant is compared seed by seed (paired differences) with the fair baseline, centred nearest, and with
top-left nearest, the labels of the common pipeline.
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

from ..data.datasets.builtin_meta import CITYSCAPES_GROUPS
from ..utils.factors import parse_factor
from ..utils.fileio import atomic_write

__all__ = ["BASELINE", "CONTROL", "STUFF_CLASSES", "VARIANTS", "GridPoint", "OverrideKeys", "Variant",
           "calibration_table", "collect", "eval_point", "extra_result_file", "format_p_value", "make_grid",
           "markdown_tables", "paired_p_value", "parse_factor", "plot_miou", "run_point"]

RESULT_FILE = os.path.join("inference", "sem_seg_evaluation.json")


def extra_result_file(dataset: str) -> str:
    """Where :func:`eval_point` puts a point's scores on another dataset than the recipe's test set."""
    return os.path.join(f"inference_{dataset}", "sem_seg_evaluation.json")

TIME_FILE = "ablation_time.json"
# Large-area classes (the default grouping; a dataset's metadata may give its own ``class_groups``).
STUFF_CLASSES = CITYSCAPES_GROUPS["stuff"]


@dataclass(frozen=True)
class Variant:
    """How one row's training targets are made: a display name and its config settings."""

    title: str
    label_mode: str
    multi_class: bool = True
    image_mode: str | None = None  # None: the recipe's image filter (the label follows it)
    label_filter: str | None = None  # soft labels only: a filter other than the image's (a diagnostic)
    label_smoothing: bool = False  # hard labels with cross-entropy label smoothing (the runner's value)


VARIANTS = {
    "nearest_topleft": Variant("nearest, top-left grid", "nearest_topleft"),
    "nearest": Variant("nearest, centred grid", "nearest"),
    "soft": Variant("soft", "soft"),
    "soft_mc_off": Variant("soft, MC off", "soft", multi_class=False),
    "soft_sparse": Variant("soft, sparse top-K", "soft_sparse"),
    "soft_area": Variant("soft, area (image too)", "soft", image_mode="torch:area"),
    # soft_area changes two things at once; these two change one each
    "soft_area_label": Variant("soft, area label only", "soft", label_filter="torch:area"),
    "nearest_area_image": Variant("nearest, centred grid, area image", "nearest", image_mode="torch:area"),
    "full_res": Variant("full-resolution labels", "full_res"),
    # a regulariser without information: hard labels, smoothed as much as soft labels spread
    "nearest_ls": Variant("nearest, centred grid, label smoothing", "nearest", label_smoothing=True),
}
BASELINE = "nearest"  # the fair baseline: every variant's paired difference is taken against it
CONTROL = "nearest_topleft"  # the common pipeline's labels: a second reference for the paired differences


@dataclass(frozen=True)
class OverrideKeys:
    """Config keys the grid sets (the defaults fit every recipe under ``projects/SoftLabelSeg/configs``)."""

    label_mode: str = "dataloader.train.mapper.label_mode"
    image_mode: str = "dataloader.train.mapper.image_mode"
    label_filter: str = "dataloader.train.mapper.label_filter"
    factor: str = "dataloader.train.mapper.factor"
    multi_class: str = "model.loss.soft.multi_class"
    label_smoothing: str = "model.loss.hard.label_smoothing"
    seeds: tuple[str, ...] = ("train.seed", "dataloader.train.seed")
    output_dir: str = "train.output_dir"
    test_dataset: tuple[str, ...] = ("dataloader.test.dataset", "dataloader.evaluator.dataset_name")
    eval_output_dir: str = "dataloader.evaluator.output_dir"


@dataclass(frozen=True)
class GridPoint:
    variant: str  # a key of VARIANTS
    factor: Fraction
    seed: int

    @property
    def name(self) -> str:
        return f"{self.variant}_f{self.factor.numerator}of{self.factor.denominator}_s{self.seed}"

    def overrides(self, keys: OverrideKeys, output_dir: str,
                  label_smoothing: float | None = None) -> list[str]:
        """The point's config overrides; ``label_smoothing`` is required by variants that smooth."""
        v = VARIANTS[self.variant]
        out = [
            f"{keys.label_mode}={v.label_mode}",
            f"{keys.factor}={float(self.factor)!r}",
            f"{keys.output_dir}={output_dir}",
        ]
        if not v.multi_class:
            out.append(f"{keys.multi_class}=False")
        if v.label_smoothing:
            if label_smoothing is None:
                raise ValueError(f"variant {self.variant!r} needs a label-smoothing value "
                                 "(--label-smoothing)")
            out.append(f"{keys.label_smoothing}={label_smoothing!r}")
        if v.image_mode is not None:
            out.append(f"{keys.image_mode}={v.image_mode}")
        if v.label_filter is not None:
            out.append(f"{keys.label_filter}={v.label_filter}")
        return out + [f"{k}={self.seed}" for k in keys.seeds]


def make_grid(variants, factors, seeds, seeds_at: dict[Fraction, list[int]] | None = None) -> list[GridPoint]:
    """All points, seed by seed, coarsest factor first (the cheapest runs finish first).

    ``seeds_at`` restricts the seeds of some factors (e.g. ``{1/2: [0]}`` when 1/2 runs are costly).
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    seeds_at = seeds_at or {}
    points = []
    for seed in seeds:
        for factor in sorted(factors):
            if seed not in seeds_at.get(factor, seeds):
                continue
            points.extend(GridPoint(v, factor, seed) for v in variants)
    return points


def is_finished(run_dir: str, result_file: str = RESULT_FILE) -> bool:
    return os.path.isfile(os.path.join(run_dir, result_file))


def run_point(point: GridPoint, config_file: str, root: str, extra: list[str], keys: OverrideKeys,
              train_script: str, log=print, heartbeat_s: float = 30.0,
              label_smoothing: float | None = None) -> float:
    """Train and evaluate one point unless finished; returns the seconds spent (0 when skipped).

    The run's console output goes to ``<run_dir>/ablation_run.log``, its wall time (summed over
    resumptions) to ``<run_dir>/ablation_time.json``, rewritten every ``heartbeat_s`` while the run goes on,
    so a runner that is killed loses at most that much of the time; a failed run raises with the log's tail.
    """
    run_dir = os.path.join(root, point.name)
    if is_finished(run_dir):
        log(f"[skip] {point.name}: finished ({RESULT_FILE} present)")
        return 0.0
    # an earlier attempt (even one killed before its first checkpoint) is continued, never clobbered
    resume = any(os.path.isfile(os.path.join(run_dir, f)) for f in ("last_checkpoint", "config.yaml"))
    cmd = [sys.executable, train_script, "--config-file", config_file]
    cmd += ["--resume"] if resume else []
    cmd += point.overrides(keys, run_dir, label_smoothing) + list(extra)
    os.makedirs(run_dir, exist_ok=True)
    log(f"[run] {point.name}{' (resuming)' if resume else ''}")
    earlier = _read_json(os.path.join(run_dir, TIME_FILE)) or {"seconds": 0.0, "invocations": 0}
    start = time.perf_counter()
    returncode = _run_logged(
        cmd, run_dir, lambda: _write_timing(run_dir, earlier, time.perf_counter() - start), heartbeat_s)
    seconds = time.perf_counter() - start
    _write_timing(run_dir, earlier, seconds)
    _check_finished(point, run_dir, returncode, RESULT_FILE)
    log(f"[done] {point.name} in {seconds:.0f} s")
    return seconds


def eval_point(point: GridPoint, config_file: str, root: str, dataset: str, extra: list[str],
               keys: OverrideKeys, train_script: str, log=print,
               label_smoothing: float | None = None) -> bool:
    """Scores a finished point's final weights on ``dataset`` (``--eval-only --resume``) into
    ``<run_dir>/inference_<dataset>/``, unless done before; returns whether it ran. The point's own
    overrides apply, so the test images are made as its training images were."""
    run_dir = os.path.join(root, point.name)
    result = extra_result_file(dataset)
    if is_finished(run_dir, result):
        return False
    out = os.path.join(run_dir, os.path.dirname(result))
    cmd = [sys.executable, train_script, "--config-file", config_file, "--eval-only", "--resume"]
    cmd += point.overrides(keys, run_dir, label_smoothing) + list(extra)
    cmd += [f"{k}={dataset}" for k in keys.test_dataset] + [f"{keys.eval_output_dir}={out}"]
    log(f"[eval] {point.name} on {dataset}")
    _check_finished(point, run_dir, _run_logged(cmd, run_dir), result)
    return True


def _run_logged(cmd: list[str], run_dir: str, heartbeat=None, heartbeat_s: float = 30.0) -> int:
    """Runs ``cmd`` with its output appended to ``<run_dir>/ablation_run.log``; calls ``heartbeat`` every
    ``heartbeat_s`` while it runs. Returns the exit code."""
    with open(os.path.join(run_dir, "ablation_run.log"), "a") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        while True:
            if heartbeat is not None:
                heartbeat()
            try:
                return proc.wait(timeout=heartbeat_s)
            except subprocess.TimeoutExpired:
                continue


def _check_finished(point: GridPoint, run_dir: str, returncode: int, result_file: str) -> None:
    if returncode != 0 or not is_finished(run_dir, result_file):
        with open(os.path.join(run_dir, "ablation_run.log")) as f:
            tail = "".join(f.readlines()[-20:])
        raise RuntimeError(
            f"run {point.name} failed (exit {returncode}); see {run_dir}/ablation_run.log:\n{tail}"
        )


def _write_timing(run_dir: str, earlier: dict, seconds: float) -> None:
    """Wall time of the earlier invocations plus this one's ``seconds`` so far (this one counted)."""
    timing = {"seconds": earlier["seconds"] + seconds, "invocations": earlier["invocations"] + 1}
    atomic_write(os.path.join(run_dir, TIME_FILE), lambda f: f.write(json.dumps(timing).encode()))


def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def collect(points: list[GridPoint], root: str, result_file: str = RESULT_FILE) -> dict[GridPoint, dict]:
    """Metrics dict (mIoU, IoU-<class>, ...) of every finished point, plus ``_seconds`` (wall time of
    the run) and ``_iterations`` (``train.max_iter`` of its saved config) when known. ``result_file``:
    the evaluation to read (default the recipe's test set; :func:`extra_result_file` for another)."""
    results = {}
    for p in points:
        run_dir = os.path.join(root, p.name)
        res = _read_json(os.path.join(run_dir, result_file))
        if res is None:
            continue
        metrics = dict(res["metrics"])
        timing = _read_json(os.path.join(run_dir, TIME_FILE))
        metrics["_seconds"] = timing["seconds"] if timing else math.nan
        metrics["_iterations"] = _max_iter(os.path.join(run_dir, "config.yaml"))
        results[p] = metrics
    return results


def _max_iter(config_yaml: str) -> float:
    try:
        from omegaconf import OmegaConf

        return float(OmegaConf.load(config_yaml).train.max_iter)
    except Exception:  # noqa: BLE001 - a missing or foreign config only loses this column
        return math.nan


def group_miou(metrics: dict, class_names, group) -> float:
    """Mean IoU over the classes of ``group`` that have an IoU in ``metrics`` (nan if none)."""
    vals = [metrics.get(f"IoU-{n}") for n in class_names if n in group]
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def _mean_std(values) -> tuple[float, float, int]:
    arr = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return math.nan, math.nan, 0
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else math.nan, int(arr.size)


def _cell(values, signed: bool = False) -> str:
    mean, std, n = _mean_std(values)
    if n == 0:
        return "-"
    fmt = "+.2f" if signed else ".2f"
    return f"{mean:{fmt}}" if n < 2 else f"{mean:{fmt}} ± {std:.2f}"


def _ordered(keys):
    order = list(VARIANTS)
    return sorted(keys, key=order.index)


def _scores(metrics: dict, class_names, groups) -> dict[str, float]:
    return {"mIoU": metrics["mIoU"], "thin": group_miou(metrics, class_names, groups["thin"]),
            "stuff": group_miou(metrics, class_names, groups["stuff"])}


def markdown_tables(results: dict[GridPoint, dict], class_names: list[str],
                    ceilings: dict[tuple[str, Fraction], float] | None = None,
                    groups: dict[str, tuple[str, ...]] | None = None) -> str:
    """The grid (mean ± sample std over seeds, with thin / stuff class groups), the paired differences to
    centred and to top-left nearest, the decomposition of the gain (alignment, soft labelling) for the
    trained models and, when ``ceilings`` {(variant, factor): recoverable mIoU} is given, for the label
    ceilings, and the per-class IoU table. ``groups``: {"thin": names, "stuff": names} (default:
    Cityscapes' names)."""
    groups = groups or CITYSCAPES_GROUPS
    by_cell: dict[tuple[str, Fraction], dict[int, dict]] = {}
    for p, m in results.items():
        by_cell.setdefault((p.variant, p.factor), {})[p.seed] = m
    variants = _ordered({v for v, _ in by_cell})
    factors = sorted({f for _, f in by_cell})
    thin = [n for n in class_names if n in groups["thin"]]
    stuff = [n for n in class_names if n in groups["stuff"]]
    lines = ["### mIoU at full resolution: mean ± std over seeds", "",
             f"Class groups: thin = {', '.join(thin)}; stuff = {', '.join(stuff)}.", "",
             "| labels | factor | seeds | iterations | minutes / run | mIoU | thin mIoU | stuff mIoU |",
             "|---|---|---|---|---|---|---|---|"]
    for f in factors:
        for v in variants:
            runs = by_cell.get((v, f))
            if not runs:
                continue
            sc = [_scores(m, class_names, groups) for m in runs.values()]
            iters = sorted({int(m["_iterations"]) for m in runs.values() if not math.isnan(m["_iterations"])})
            minutes = _mean_std([m["_seconds"] / 60 for m in runs.values()])[0]
            lines.append(f"| {VARIANTS[v].title} | {f} | {len(runs)} | {'/'.join(map(str, iters)) or '-'} | "
                         f"{'-' if math.isnan(minutes) else f'{minutes:.1f}'} | "
                         + " | ".join(_cell([s[k] for s in sc]) for k in ("mIoU", "thin", "stuff")) + " |")
    for reference in (BASELINE, CONTROL):
        if reference in variants and len(variants) > 1:
            lines += ["", *_paired_table(by_cell, reference, variants, factors, class_names, groups)]
    lines += ["", "### Decomposition of the gain over top-left nearest (mIoU points)", "",
              "alignment = centred nearest - top-left nearest; soft labelling = soft - centred nearest; "
              "trained models: means over the seeds all three variants finished.", "",
              "| factor | what | alignment | soft labelling | total |", "|---|---|---|---|---|"]
    for f in factors:
        trio = {v: by_cell.get((v, f), {}) for v in ("nearest_topleft", "nearest", "soft")}
        shared = set.intersection(*map(set, trio.values()))  # seeds all three have: a paired estimate
        means = {v: _mean_std([runs[s]["mIoU"] for s in shared])[0] for v, runs in trio.items()}
        seeds = f"{len(shared)} seed" + ("" if len(shared) == 1 else "s")
        lines.append(_decomposition_row(f, f"trained model ({seeds})", means))
        if ceilings:
            lines.append(_decomposition_row(f, "label ceiling", {v: ceilings.get((v, f), math.nan)
                                                                   for v in means}))
    if ceilings:
        lines += ["", "### Label ceiling (recoverable mIoU of the training targets) vs trained model", "",
                  "| labels | factor | ceiling | trained | gap |", "|---|---|---|---|---|"]
        for f in factors:
            for v in variants:
                c = ceilings.get((v, f), math.nan)
                t = _mean_std([m["mIoU"] for m in by_cell.get((v, f), {}).values()])[0]
                if math.isnan(c) or math.isnan(t):
                    continue
                lines.append(f"| {VARIANTS[v].title} | {f} | {c:.2f} | {t:.2f} | {c - t:.2f} |")
    lines += ["", "### Per-class IoU (shape of the paper's Table 1), mean over seeds", "",
              "| labels | factor | " + " | ".join(class_names) + " | mIoU | seeds |",
              "|---|---|" + "---|" * len(class_names) + "---|---|"]
    for f in factors:
        for v in variants:
            runs = list(by_cell.get((v, f), {}).values())
            if not runs:
                continue
            cells = [_fmt(_mean_std([m.get(f"IoU-{n}") for m in runs])[0]) for n in class_names]
            lines.append(f"| {VARIANTS[v].title} | {f} | " + " | ".join(cells)
                         + f" | **{_fmt(_mean_std([m['mIoU'] for m in runs])[0])}** | {len(runs)} |")
    return "\n".join(lines) + "\n"


def _paired_table(by_cell, reference: str, variants, factors, class_names, groups) -> list[str]:
    """Markdown lines: each variant minus ``reference`` at the same seed, mean ± std over the pairs, with the
    two-sided paired t-test p-value of the mIoU difference (nan below 2 pairs or with no spread)."""
    lines = [f"### Paired difference to {VARIANTS[reference].title} (same seed): mean ± std", "",
             "| labels | factor | pairs | Δ mIoU | p (paired t-test) | Δ thin | Δ stuff |",
             "|---|---|---|---|---|---|---|"]
    for f in factors:
        ref = by_cell.get((reference, f), {})
        for v in variants:
            if v == reference:
                continue
            pairs = [(by_cell[(v, f)][s], ref[s]) for s in sorted(by_cell.get((v, f), {})) if s in ref]
            if not pairs:
                continue
            diffs = [_score_diff(_scores(x, class_names, groups), _scores(y, class_names, groups))
                     for x, y in pairs]
            miou = [d["mIoU"] for d in diffs]
            p = paired_p_value(miou)
            cells = [_cell(miou, signed=True), format_p_value(p),
                     *(_cell([d[k] for d in diffs], signed=True) for k in ("thin", "stuff"))]
            lines.append(f"| {VARIANTS[v].title} | {f} | {len(pairs)} | " + " | ".join(cells) + " |")
    return lines


def paired_p_value(differences) -> float:
    """Two-sided p-value of a one-sample t-test that the mean paired difference is 0 (nan when undefined)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size < 2 or not np.ptp(d) > 0:
        return math.nan
    from scipy.stats import ttest_1samp

    return float(ttest_1samp(d, 0.0).pvalue)


def format_p_value(p: float) -> str:
    """Two decimals, three below 0.01 and "< 0.001" below that, so that no p-value reads as 0; "-" for nan."""
    if math.isnan(p):
        return "-"
    return f"{p:.2f}" if p >= 0.01 else f"{p:.3f}" if p >= 0.001 else "< 0.001"


def _score_diff(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a[k] - b[k] for k in a}


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}"


def _decomposition_row(f, what: str, means: dict[str, float]) -> str:
    parts = (means["nearest"] - means["nearest_topleft"], means["soft"] - means["nearest"],
             means["soft"] - means["nearest_topleft"])  # alignment, soft labelling, total
    return f"| {f} | {what} | " + " | ".join("-" if math.isnan(x) else f"{x:+.2f}" for x in parts) + " |"


def calibration_table(points: list[GridPoint], root: str) -> str:
    """Markdown: val mIoU / thin / stuff with plain argmax and with prior-matching offsets
    (``tools/calibrate_prior.py --output <root>/calibration/<point>.json``), mean over the seeds that have
    them, and the prior-matched mIoU's paired difference to centred nearest; empty when no point has them."""
    cells: dict[tuple[str, Fraction], dict[int, dict]] = {}
    for p in points:
        res = _read_json(os.path.join(root, "calibration", f"{p.name}.json"))
        if res is not None:
            cells.setdefault((p.variant, p.factor), {})[p.seed] = res["val"]
    if not cells:
        return ""
    lines = ["### Thin classes at argmax: prior-matching offsets fitted on training images (val)", "",
             "| labels | factor | seeds | mIoU argmax -> offsets | thin | stuff | "
             f"Δ mIoU with offsets to {VARIANTS[BASELINE].title} (pairs) |",
             "|---|---|---|---|---|---|---|"]
    for (v, f) in sorted(cells, key=lambda k: (k[1], list(VARIANTS).index(k[0]))):
        runs = cells[(v, f)]
        cols = []
        for k in ("mIoU", "thin", "stuff"):
            a = _mean_std([r["argmax"][k] for r in runs.values()])[0]
            b = _mean_std([r["prior-matched"][k] for r in runs.values()])[0]
            cols.append(f"{a:.2f} -> {b:.2f} ({b - a:+.2f})")
        base = cells.get((BASELINE, f), {})
        diffs = [runs[s]["prior-matched"]["mIoU"] - base[s]["prior-matched"]["mIoU"]
                 for s in sorted(runs) if s in base]
        paired = "-" if v == BASELINE or not diffs else f"{_cell(diffs, signed=True)} ({len(diffs)})"
        lines.append(f"| {VARIANTS[v].title} | {f} | {len(runs)} | " + " | ".join(cols) + f" | {paired} |")
    return "\n".join(lines) + "\n"


def plot_miou(results: dict[GridPoint, dict], path: str, title: str = "") -> None:
    """mIoU vs training-resolution factor, one line per label variant, error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells: dict[tuple[str, Fraction], list[float]] = {}
    for p, m in results.items():
        cells.setdefault((p.variant, p.factor), []).append(m["mIoU"])
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for variant in _ordered({v for v, _ in cells}):
        factors = sorted(f for v, f in cells if v == variant)
        stats = [_mean_std(cells[(variant, f)]) for f in factors]
        ax.errorbar([float(f) for f in factors], [s[0] for s in stats],
                    yerr=[0.0 if math.isnan(s[1]) else s[1] for s in stats],
                    marker="o", capsize=3, label=VARIANTS[variant].title)
    ax.set_xscale("log", base=2)
    all_factors = sorted({f for _, f in cells})
    ax.set_xticks([float(f) for f in all_factors], [str(f) for f in all_factors])
    ax.set_xlabel("training-resolution factor")
    ax.set_ylabel("mIoU (%) at full resolution")
    ax.set_title(title or "mIoU vs training resolution")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
