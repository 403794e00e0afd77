"""The site's Results page (``docs/results.md``): one table per recipe measured, made from the committed runs.

For the main job and for every grid folder of ``results/grids.json`` with a finished run: the recipe,
its model and data, the command that trains one run, and per factor and kind of label target the seeds
finished, the mIoU (mean ± std over seeds, scored as the grid page scores it) and the wall time of a run,
with a link to the grid's page. :func:`render_all <softlabelseg_research.evidence.render_all>` fills the
page's ``results`` block with :func:`results_text`, so the page cannot drift from the runs.
"""

from __future__ import annotations

import math
import os
import re

from .grid_stats import by_cell, group_scores, mean_std
from .sweep import RESULT_FILE, VARIANTS, GridPoint, OverrideKeys, collect, read_json

__all__ = ["results_text"]

TRAIN = "python tools/lazyconfig_train_net.py"
_MAPPER = "dataloader.train.mapper."
_RUN_ONLY = (OverrideKeys().output_dir, *OverrideKeys().seeds)  # overrides a reader sets per run


def _minutes(seconds: list[float]) -> str:
    known = [s for s in seconds if not math.isnan(s)]
    if not known:
        return "-"
    mean = sum(known) / len(known)
    return f"{mean:.0f} s" if mean < 120 else f"{mean / 60:.0f} min"


def _pm(values: list[float]) -> str:
    mean, std, n = mean_std(values)
    return "-" if n == 0 else f"{mean:.2f}" if n < 2 else f"{mean:.2f} ± {std:.2f}"


def _model(cfg) -> str:
    """The backbone as the recipe names it (timm model name, or the class with its output stride)."""
    backbone = cfg.model.get("backbone")
    if backbone is None:
        return type(cfg.model).__name__
    name = backbone.get("model_name")
    if name:
        return f"`{name}`" + (" (ImageNet weights)" if backbone.get("weights") or backbone.get("pretrained")
                              else "")
    target = backbone.get("_target_")
    name = getattr(target, "__name__", str(target))
    stride = backbone.get("output_stride")
    return name + (f", output stride {stride}" if stride else "")


def _overrides(point: GridPoint) -> list[str]:
    """The config overrides that make ``point``'s training targets (no output folder, no seed)."""
    try:
        out = point.overrides(OverrideKeys(), "-")
    except ValueError:  # a variant that smooths needs the runner's smoothing value
        out = point.overrides(OverrideKeys(), "-", label_smoothing=0.0)
        out = [o if not o.startswith(OverrideKeys().label_smoothing) else
               f"{OverrideKeys().label_smoothing}=<value>" for o in out]
    return [o for o in out if o.split("=", 1)[0] not in _RUN_ONLY]


def _command(config: str, overrides: list[str]) -> str:
    lines = [f"{TRAIN} --config-file {config}"] + overrides
    return "```bash\n" + " \\\n    ".join(lines) + "\n```\n"


def grid_table(specs: list, root: str, docs: str) -> str | None:
    """The section of one grid folder (``specs``: the manifest grids that share it), None when no run of
    it finished."""
    from .evidence import _recipe  # the recipe loader the grid pages use (cached)

    spec = specs[0]
    folder = os.path.join(root, spec.folder)
    points = list(dict.fromkeys(p for s in specs for p in s.points()))
    results = collect(points, folder)
    if not results:
        return None
    cfg, names, groups = _recipe(os.path.join(root, spec.config))
    cells = by_cell(results)
    factors = sorted({f for _, f in cells})
    pages = ", ".join(f"[{s.title or s.name}]({os.path.relpath(os.path.join(root, s.page), docs)})"
                      for s in specs)
    first = min(results, key=lambda p: (p.factor, list(VARIANTS).index(p.variant), p.seed))
    rows = ["| factor | labels | overrides | seeds | mIoU | time per run |", "|---|---|---|---|---|---|"]
    for f in factors:
        for v in [v for v in VARIANTS if (v, f) in cells]:
            runs = cells[(v, f)]
            miou = [group_scores(m, names, groups)["mIoU"] for m in runs.values()]
            extra = " ".join(f"`{o.removeprefix(_MAPPER)}`" for o in _overrides(GridPoint(v, f, 0)))
            rows.append(f"| {f} | {VARIANTS[v].title} | {extra} | {len(runs)} | {_pm(miou)} | "
                        f"{_minutes([m['_seconds'] for m in runs.values()])} |")
    iterations = cfg.train.max_iter
    head = (f"### {spec.title or spec.name}\n\n"
            f"Recipe `{spec.config}`; model {_model(cfg)}; trained on `{cfg.dataloader.train.dataset}` for "
            f"{iterations} iterations, scored at full resolution on `{cfg.dataloader.test.dataset}`; "
            f"factors {', '.join(str(f) for f in factors)}; {len(results)} runs finished. "
            f"Grid page: {pages}. One run, the first row at seed 0:\n\n"
            + _command(spec.config, _overrides(GridPoint(first.variant, first.factor, 0))) + "\n")
    return head + "\n".join(rows) + "\n"


def main_job_table(job: dict, root: str) -> str:
    """The main job's two runs (soft labels and the centred-nearest baseline): recipe, data, mIoU with and
    without the class offsets, wall time where measured."""
    timing = read_json(os.path.join(root, job["timing"])) or {}
    timed = os.path.normpath(os.path.dirname(job["timing"]))  # the run the timing file measured
    rows = ["| run | recipe | scored on | mIoU | without class offsets | time |", "|---|---|---|---|---|---|"]
    for kind in ("soft", "nearest"):
        folder = os.path.join(root, job[kind])
        res = read_json(os.path.join(folder, RESULT_FILE))
        if res is None:
            continue
        config = _logged_config(os.path.join(folder, "log.txt"))
        plain = res.get("metrics_without_offsets")
        seconds = timing.get("wall_seconds") if os.path.normpath(job[kind]) == timed else None
        rows.append(f"| {kind} | " + (f"`{config}`" if config else "-") + f" | `{res.get('dataset', '-')}` | "
                    f"{res['metrics']['mIoU']:.2f} | " + (f"{plain['mIoU']:.2f}" if plain else "-") + " | "
                    + (_minutes([seconds]) if seconds else "-") + " |")
    return "\n".join(rows) + "\n"


def _logged_config(log: str) -> str | None:
    """The ``--config-file`` a run's log records."""
    try:
        with open(log, encoding="utf-8") as f:
            for line in f:
                m = re.search(r"config_file='([^']+)'", line)
                if m:
                    return m.group(1)
    except OSError:
        return None
    return None


def results_text(manifest: dict, root: str) -> str:
    """The ``results`` block of ``docs/results.md``: the main job's table, then one section per grid
    folder with a finished run, in manifest order; a last line names the grids with none yet."""
    docs = os.path.join(root, "docs")
    parts = []
    if manifest.get("main_job"):
        parts.append("### Main job\n\n" + main_job_table(manifest["main_job"], root))
    by_folder: dict[str, list] = {}
    for spec in manifest["grids"]:
        by_folder.setdefault(spec.folder, []).append(spec)
    waiting = []
    for specs in by_folder.values():
        section = grid_table(specs, root, docs)
        if section is None:
            waiting += [s.title or s.name for s in specs]
        else:
            parts.append(section)
    if waiting:
        parts.append("No run finished yet: " + "; ".join(waiting) + ".\n")
    return "\n".join(parts)
