"""The evidence grid's report: Markdown tables (the grid, paired differences, the decomposition of the gain,
label ceilings, per-class IoU, prior-matching offsets) and the mIoU-vs-factor plot."""

from __future__ import annotations

import math
import os
from fractions import Fraction

from softlabelseg.data.datasets.builtin_meta import CITYSCAPES_GROUPS
from softlabelseg.data.label_targets import DECOMPOSITION, METHOD

from .grid_stats import (
    by_cell,
    group_scores,
    mean_std,
    paired_differences,
    paired_p_value,
    shared_seed_means,
)
from .sweep import BASELINE, CONTROL, VARIANTS, GridPoint, read_json

__all__ = ["calibration_table", "format_p_value", "markdown_tables", "plot_miou"]


def markdown_tables(results: dict[GridPoint, dict], class_names: list[str],
                    ceilings: dict[tuple[str, Fraction], float] | None = None,
                    groups: dict[str, tuple[str, ...]] | None = None) -> str:
    """The grid (mean ± sample std over seeds, with thin / stuff class groups), the paired differences to
    centred and to top-left nearest, the decomposition of the gain (alignment, soft labelling) for the
    trained models and, when ``ceilings`` {(variant, factor): recoverable mIoU} is given, for the label
    ceilings, and the per-class IoU table. ``groups``: {"thin": names, "stuff": names} (default:
    Cityscapes' names)."""
    groups = groups or CITYSCAPES_GROUPS
    cells = by_cell(results)
    variants = _ordered({v for v, _ in cells})
    factors = sorted({f for _, f in cells})
    thin = [n for n in class_names if n in groups["thin"]]
    stuff = [n for n in class_names if n in groups["stuff"]]
    lines = ["### mIoU at full resolution: mean ± std over seeds", "",
             f"Class groups: thin = {', '.join(thin)}; stuff = {', '.join(stuff)}.", "",
             "| labels | factor | seeds | iterations | minutes / run | mIoU | thin mIoU | stuff mIoU |",
             "|---|---|---|---|---|---|---|---|"]
    for f in factors:
        for v in variants:
            runs = cells.get((v, f))
            if not runs:
                continue
            sc = [group_scores(m, class_names, groups) for m in runs.values()]
            iters = sorted({int(m["_iterations"]) for m in runs.values() if not math.isnan(m["_iterations"])})
            minutes = mean_std([m["_seconds"] / 60 for m in runs.values()])[0]
            lines.append(f"| {VARIANTS[v].title} | {f} | {len(runs)} | {'/'.join(map(str, iters)) or '-'} | "
                         f"{'-' if math.isnan(minutes) else f'{minutes:.1f}'} | "
                         + " | ".join(_cell([s[k] for s in sc]) for k in ("mIoU", "thin", "stuff")) + " |")
    for reference in (BASELINE, CONTROL):
        if reference in variants and len(variants) > 1:
            lines += ["", *_paired_table(cells, reference, variants, factors, class_names, groups)]
    rows = []  # a factor where no seed finished all three variants gets no trained-model row
    for f in factors:
        means, n_shared = shared_seed_means(cells, DECOMPOSITION, f)
        if n_shared:
            seeds = f"{n_shared} seed" + ("" if n_shared == 1 else "s")
            rows.append(_decomposition_row(f, f"trained model ({seeds})", means))
        if ceilings:
            rows.append(_decomposition_row(f, "label ceiling", {v: ceilings.get((v, f), math.nan)
                                                                  for v in means}))
    if rows:
        lines += ["", "### Decomposition of the gain over top-left nearest (mIoU points)", "",
                  "alignment = centred nearest - top-left nearest; soft labelling = soft - centred nearest; "
                  "trained models: means over the seeds all three variants finished.", "",
                  "| factor | what | alignment | soft labelling | total |", "|---|---|---|---|---|", *rows]
    if ceilings:
        lines += ["", "### Label ceiling (recoverable mIoU of the training targets) vs trained model", "",
                  "| labels | factor | ceiling | trained | gap |", "|---|---|---|---|---|"]
        for f in factors:
            for v in variants:
                c = ceilings.get((v, f), math.nan)
                t = mean_std([m["mIoU"] for m in cells.get((v, f), {}).values()])[0]
                if math.isnan(c) or math.isnan(t):
                    continue
                lines.append(f"| {VARIANTS[v].title} | {f} | {c:.2f} | {t:.2f} | {c - t:.2f} |")
    lines += ["", "### Per-class IoU (shape of the paper's Table 1), mean over seeds", "",
              "| labels | factor | " + " | ".join(class_names) + " | mIoU | seeds |",
              "|---|---|" + "---|" * len(class_names) + "---|---|"]
    for f in factors:
        for v in variants:
            runs = list(cells.get((v, f), {}).values())
            if not runs:
                continue
            per_class = [_fmt(mean_std([m.get(f"IoU-{n}") for m in runs])[0]) for n in class_names]
            lines.append(f"| {VARIANTS[v].title} | {f} | " + " | ".join(per_class)
                         + f" | **{_fmt(mean_std([m['mIoU'] for m in runs])[0])}** | {len(runs)} |")
    return "\n".join(lines) + "\n"


def _paired_table(cells, reference: str, variants, factors, class_names, groups) -> list[str]:
    """Markdown lines: each variant minus ``reference`` at the same seed, mean ± std over the pairs, with the
    two-sided paired t-test p-value of the mIoU difference (nan below 2 pairs or with no spread)."""
    lines = [f"### Paired difference to {VARIANTS[reference].title} (same seed): mean ± std", "",
             "| labels | factor | pairs | Δ mIoU | p (paired t-test) | Δ thin | Δ stuff |",
             "|---|---|---|---|---|---|---|"]
    for f in factors:
        for v in variants:
            if v == reference:
                continue
            diffs = paired_differences(cells, v, reference, f, class_names, groups)
            if not diffs:
                continue
            miou = [d["mIoU"] for d in diffs]
            p = paired_p_value(miou)
            row = [_cell(miou, signed=True), format_p_value(p),
                   *(_cell([d[k] for d in diffs], signed=True) for k in ("thin", "stuff"))]
            lines.append(f"| {VARIANTS[v].title} | {f} | {len(diffs)} | " + " | ".join(row) + " |")
    return lines


def format_p_value(p: float) -> str:
    """Two decimals, three below 0.01 and "< 0.001" below that, so that no p-value reads as 0; "-" for nan."""
    if math.isnan(p):
        return "-"
    return f"{p:.2f}" if p >= 0.01 else f"{p:.3f}" if p >= 0.001 else "< 0.001"


def calibration_table(points: list[GridPoint], root: str) -> str:
    """Markdown: val mIoU / thin / stuff with plain argmax and with prior-matching offsets
    (``tools/calibrate_prior.py --output <root>/calibration/<point>.json``), mean over the seeds that have
    them, and the prior-matched mIoU's paired difference to centred nearest; empty when no point has them."""
    cells: dict[tuple[str, Fraction], dict[int, dict]] = {}
    for p in points:
        res = read_json(os.path.join(root, "calibration", f"{p.name}.json"))
        if res is not None:
            cells.setdefault((p.variant, p.factor), {})[p.seed] = res["val"]
    if not cells:
        return ""
    lines = ["### Thin classes at argmax: prior-matching offsets fitted on training images "
             "(scored on the recipe's test split)", "",
             "| labels | factor | seeds | mIoU argmax -> offsets | thin | stuff | "
             f"Δ mIoU with offsets to {VARIANTS[BASELINE].title} (pairs) |",
             "|---|---|---|---|---|---|---|"]
    for (v, f) in sorted(cells, key=lambda k: (k[1], list(VARIANTS).index(k[0]))):
        runs = cells[(v, f)]
        cols = []
        for k in ("mIoU", "thin", "stuff"):
            a = mean_std([r["argmax"][k] for r in runs.values()])[0]
            b = mean_std([r["prior-matched"][k] for r in runs.values()])[0]
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
        stats = [mean_std(cells[(variant, f)]) for f in factors]
        ax.errorbar([float(f) for f in factors], [s[0] for s in stats],
                    yerr=[0.0 if math.isnan(s[1]) else s[1] for s in stats],
                    marker="o", capsize=3, label=VARIANTS[variant].title, color=VARIANTS[variant].colour)
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


def _ordered(variants):
    order = list(VARIANTS)
    return sorted(variants, key=order.index)


def _cell(values, signed: bool = False) -> str:
    mean, std, n = mean_std(values)
    if n == 0:
        return "-"
    fmt = "+.2f" if signed else ".2f"
    return f"{mean:{fmt}}" if n < 2 else f"{mean:{fmt}} ± {std:.2f}"


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}"


def _decomposition_row(f, what: str, means: dict[str, float]) -> str:
    parts = (means[BASELINE] - means[CONTROL], means[METHOD] - means[BASELINE],
             means[METHOD] - means[CONTROL])  # alignment, soft labelling, total
    return f"| {f} | {what} | " + " | ".join("-" if math.isnan(x) else f"{x:+.2f}" for x in parts) + " |"
