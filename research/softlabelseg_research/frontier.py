"""The budget frontier: how much of full-resolution accuracy each training factor keeps, against its cost.

For each label target and factor of a grid, the mIoU as a percentage of the reference (the same recipe
trained at 1/1 on the native labels), seed by seed where both ran, beside the training cost: the pixels the
network sees, the forward GFLOPs of one training step (fvcore, batch as trained) and the CPU hours of the
run. ``frontier_table`` writes it as Markdown, ``plot_frontier`` as mIoU against CPU hours, a line a target.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

from .grid_stats import by_cell, mean_std
from .sweep import VARIANTS, _max_iter

__all__ = ["frontier_rows", "frontier_table", "pilot_curve_table", "plot_frontier", "step_gflops"]


@functools.cache
def step_gflops(config: str, factor: Fraction, height: int, width: int) -> float:
    """Forward GFLOPs of one training step of ``config`` at ``factor`` of a ``height`` x ``width`` image,
    counted by fvcore (one multiply-add = one FLOP, fvcore's convention) for the recipe's batch size."""
    import torch
    from fvcore.nn import FlopCountAnalysis
    from softlabelseg.config import LazyConfig, instantiate

    cfg = LazyConfig.load(config)
    model = instantiate(cfg.model).eval()
    size = (round(height * float(factor)), round(width * float(factor)))
    x = torch.zeros(1, 3, *size)
    counter = FlopCountAnalysis(_features(model), x)
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return counter.total() * int(cfg.dataloader.train.total_batch_size) / 1e9


def _features(model):
    """``model.forward_features`` as a module, the form fvcore traces."""
    import torch

    class Features(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model.forward_features(x)

    return Features()


def frontier_rows(results: dict, reference: dict, height: int, width: int,
                  gflops=None) -> list[dict]:
    """One row per (target, factor) of ``results`` ({GridPoint: metrics}), and the reference's own row.

    ``reference``: {GridPoint: metrics} of the 1/1 runs; percentages pair a run with the reference run of
    the same seed. ``gflops(factor) -> float`` gives the step cost (None leaves it out).
    """
    ref = {p.seed: m for p, m in reference.items()}
    rows = []
    cells = by_cell(results)
    for (variant, factor), runs in sorted(cells.items(), key=lambda kv: (list(VARIANTS).index(kv[0][0]),
                                                                           kv[0][1])):
        rows.append(_row(VARIANTS[variant].title, factor, runs, ref, height, width, gflops))
    if ref:
        rows.append(_row("full resolution (native labels)", Fraction(1), ref, ref, height, width, gflops))
    return rows


def _row(title, factor, runs: dict, ref: dict, height, width, gflops) -> dict:
    miou = [m["mIoU"] for m in runs.values()]
    kept = [100.0 * runs[s]["mIoU"] / ref[s]["mIoU"] for s in sorted(runs) if s in ref]
    cpu = [m.get("_cpu_seconds", math.nan) for m in runs.values()]
    hours = [c / 3600 for c in cpu if not math.isnan(c)]
    return {"target": title, "factor": factor, "seeds": len(runs), "miou": mean_std(miou),
            "kept": mean_std(kept),
            "pixels": round(height * float(factor)) * round(width * float(factor)),
            "size": f"{round(height * float(factor))}x{round(width * float(factor))}",
            "gflops": gflops(factor) if gflops else math.nan, "cpu_hours": mean_std(hours)}


def _fmt(ms, digits: int = 2) -> str:
    mean, std, n = ms
    if n == 0:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if n > 1 else "")


def frontier_table(rows: list[dict]) -> str:
    """Markdown: target, factor, input size and pixels, seeds, mIoU, % of full resolution, GFLOPs a step,
    CPU hours a run."""
    lines = ["| labels | factor | input (pixels) | seeds | mIoU | % of full resolution | "
             "forward GFLOPs a step | CPU hours a run |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g = "-" if math.isnan(r["gflops"]) else f"{r['gflops']:.1f}"
        lines.append(f"| {r['target']} | {r['factor']} | {r['size']} ({r['pixels']:,}) | {r['seeds']} | "
                     f"{_fmt(r['miou'])} | {_fmt(r['kept'], 1)} | {g} | {_fmt(r['cpu_hours'])} |")
    return "\n".join(lines) + "\n"


def plot_frontier(rows: list[dict], path: str, title: str) -> None:
    """mIoU (mean, with the seed spread as error bars) against CPU hours a run, a line a target, the
    full-resolution reference as its own marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from softlabelseg.utils.fileio import atomic_write

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for target in dict.fromkeys(r["target"] for r in rows):
        pts = sorted((r for r in rows if r["target"] == target and r["cpu_hours"][2] > 0),
                     key=lambda r: r["factor"])
        if not pts:
            continue
        x = [r["cpu_hours"][0] for r in pts]
        y = [r["miou"][0] for r in pts]
        err = [r["miou"][1] if r["miou"][2] > 1 else 0.0 for r in pts]
        reference = pts[0]["factor"] == 1
        style = dict(marker="*", markersize=12, linestyle="none") if reference else dict(marker="o")
        ax.errorbar(x, y, yerr=err, capsize=3, label=target, **style)
        for r, xi, yi in zip(pts, x, y, strict=True):
            ax.annotate(str(r["factor"]), (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("CPU hours a training run (log scale)")
    ax.set_ylabel("mIoU at full resolution")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()

    def write(f):
        fig.savefig(f, format="png")

    atomic_write(path, write)
    plt.close(fig)


def pilot_curve_table(runs: list[dict], root: str = ".") -> str:
    """The val curve of pilot runs (``{"title", "folder"}``): mIoU at each evaluation in the run's
    ``metrics.json``, a column per iteration, a row per pilot, and the training loss logged nearest it."""
    import json
    import os

    curves = {}
    for run in runs:
        rows = []
        path = os.path.join(root, run["folder"], "metrics.json")
        if os.path.isfile(path):
            with open(path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        last = _max_iter(os.path.join(root, run["folder"], "config.yaml"))  # the final evaluation logs it
        curves[run["title"]] = {int(min(r["iteration"] + 1, last)): (r["sem_seg/mIoU"], r.get("loss_sem_seg"))
                                for r in rows if "sem_seg/mIoU" in r}
    iterations = sorted({i for c in curves.values() for i in c})
    if not iterations:
        return "(no evaluation logged yet)\n"
    lines = ["| pilot | " + " | ".join(str(i) for i in iterations) + " |",
             "|---|" + "---|" * len(iterations)]
    for title, curve in curves.items():
        cells = [f"{curve[i][0]:.2f}" if i in curve else "-" for i in iterations]
        lines.append(f"| {title} (val mIoU) | " + " | ".join(cells) + " |")
        losses = [f"{curve[i][1]:.3f}" if i in curve and curve[i][1] is not None else "-" for i in iterations]
        lines.append(f"| {title} (training loss) | " + " | ".join(losses) + " |")
    return "\n".join(lines) + "\n"
