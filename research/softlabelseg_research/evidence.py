"""The evidence report made from the runs' own outputs: one manifest, generated tables, a staleness check.

``results/grids.json`` lists every committed grid (its folder of finished runs under ``results/``, recipe,
variants, factors, seeds, label ceilings, extra evaluation sets, the page its tables go to) and the findings
the README summarises. From it :func:`render_all` makes every generated text: each grid's page under
``docs/evidence/grids/`` (the tables ``tools/run_ablation.py`` writes beside a user's own grid), the summary
blocks of ``docs/evidence/README.md`` and the findings table of ``README.md`` (generated blocks,
:mod:`.markdown_blocks`; the prose around them is written by hand and types no figure), and the same
findings, main-job result and README figures on the site's home page and walk-through (:func:`site_links`
rebases their links onto ``docs/``), and the site's Results page (:mod:`.results_page`).
``tools/make_report.py`` writes them; ``--check`` (and a test) fails on a stale one."""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import statistics
from dataclasses import dataclass, field
from fractions import Fraction

from softlabelseg.data.label_targets import LABEL_TARGETS, ceiling_targets
from softlabelseg.utils.factors import parse_factor

from .frontier import frontier_rows, frontier_table, pilot_curve_table, step_gflops
from .grid_report import calibration_table, format_p_value, markdown_tables
from .grid_stats import by_cell, group_scores, mean_std, paired_differences, paired_p_value
from .markdown_blocks import replace_block
from .results_page import results_text
from .sweep import BASELINE, RESULT_FILE, VARIANTS, collect, extra_result_file, make_grid, read_json

__all__ = ["CEILING_MODES", "GridSpec", "frontier_of", "gap_table", "grid_document", "load_manifest",
           "read_ceilings", "readme_figure", "regime_table", "render_all", "site_links", "summary_table"]

# analyze_downsampling mode -> the variant whose targets it describes
CEILING_MODES = {t.ceiling_label: t.name for t in ceiling_targets()}


@dataclass(frozen=True)
class GridSpec:
    """One grid: the arguments of ``tools/run_ablation.py`` that made (and tabulate) its folder."""

    name: str
    folder: str
    config: str
    variants: tuple[str, ...]
    factors: tuple[str, ...]
    seeds: tuple[int, ...]
    seeds_at: dict = field(default_factory=dict)
    ceilings: str | None = None
    also_eval: tuple[str, ...] = ()
    title: str = ""
    short: str = ""  # a name for figure labels
    document: str = ""  # its generated page, relative to the root (default: ``ablation.md`` in ``folder``)

    @property
    def page(self) -> str:
        """The generated page of the grid's tables, relative to the repository root."""
        return self.document or os.path.join(self.folder, "ablation.md")

    def points(self):
        seeds_at = {parse_factor(f): list(s) for f, s in self.seeds_at.items()}
        return make_grid(list(self.variants), [parse_factor(f) for f in self.factors], list(self.seeds),
                         seeds_at)


def load_manifest(path: str) -> dict:
    """``{"grids": [GridSpec], "regimes": [...], "findings": [...]}`` of a manifest file (paths in it are
    relative to the repository root, the manifest's folder's parent: ``results/..``)."""
    with open(path) as f:
        data = json.load(f)
    grids = [GridSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in g.items()})
             for g in data.get("grids", [])]
    return {"grids": grids, "regimes": data.get("regimes", []), "findings": data.get("findings", []),
            "frontiers": data.get("frontiers", []), "pilots": data.get("pilots", []),
            "main_job": data.get("main_job"), "ceilings": data.get("ceilings", []),
            "gaps": data.get("gaps", []),
            "root": os.path.abspath(os.path.join(os.path.dirname(path), ".."))}


def read_ceilings(path: str) -> dict[tuple[str, Fraction], float]:
    """{(variant, factor): recoverable mIoU} from an analyze_downsampling ``*_summary.csv``."""
    out = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            variant = CEILING_MODES.get(row["mode"])
            if variant is not None:
                out[(variant, parse_factor(row["factor"]))] = float(row["recoverable_miou"])
    unresampled = [t.name for t in LABEL_TARGETS.values() if t.resampling_mode() is None]
    for f in {f for _, f in out}:
        for name in unresampled:
            out[(name, f)] = 100.0  # the full-resolution label recovers itself
    return out


@functools.cache
def _recipe(config: str):
    from softlabelseg.config import LazyConfig
    from softlabelseg.evaluation import scored_class_groups, scored_class_names

    cfg = LazyConfig.load(config)
    return cfg, scored_class_names(cfg), scored_class_groups(cfg)


def grid_document(spec: GridSpec, root: str = ".") -> str | None:
    """The text of the grid's page (None when no run of it finished)."""
    folder = os.path.join(root, spec.folder)
    grid = spec.points()
    results = collect(grid, folder)
    if not results:
        return None
    cfg, names, groups = _recipe(os.path.join(root, spec.config))
    ceilings = read_ceilings(os.path.join(root, spec.ceilings)) if spec.ceilings else None
    table = markdown_tables(results, names, ceilings, groups)
    calibrated = calibration_table(grid, folder)
    table += f"\n{calibrated}" if calibrated else ""
    for dataset in spec.also_eval:
        extra = collect(grid, folder, extra_result_file(dataset))
        if extra:
            table += (f"\n## Scored on {dataset} ({len(extra)}/{len(grid)} runs)\n\n"
                      + markdown_tables(extra, names, None, groups))
    # A heading first: a leading "Recipe: ..." line would be read (and dropped) as page metadata by MkDocs.
    header = (f"# {spec.title or spec.name}\n\n"
              f"Recipe: `{spec.config}` (soft labels use its image filter, "
              f"`{cfg.dataloader.train.mapper.image_mode}`, unless the row says otherwise); "
              f"{len(results)}/{len(grid)} runs finished; scored on `{cfg.dataloader.test.dataset}` "
              "unless a section says otherwise.\n\n")
    return header + table


def _pm(values, signed: bool = False) -> str:
    mean, std, n = mean_std(values)
    if n == 0:
        return "-"
    text = f"{mean:+.2f}" if signed else f"{mean:.2f}"
    return text if n < 2 else f"{text} ± {std:.2f}"


def summary_table(spec: GridSpec, root: str = ".", result_file: str = RESULT_FILE) -> str:
    """The short table of a grid: per factor and target, seeds, mIoU and thin mIoU (mean ± std), and the
    paired difference to centred nearest (mIoU, its p-value, thin)."""
    folder = os.path.join(root, spec.folder)
    results = collect(spec.points(), folder, result_file)
    if not results:
        return "(no finished run yet)\n"
    _, names, groups = _recipe(os.path.join(root, spec.config))
    cells = by_cell(results)
    lines = ["| factor | labels | seeds | mIoU | thin mIoU | Δ mIoU to centred nearest | p | Δ thin |",
             "|---|---|---|---|---|---|---|---|"]
    for f in sorted({f for _, f in cells}):
        for v in [v for v in VARIANTS if (v, f) in cells]:
            runs = cells[(v, f)]
            sc = [group_scores(m, names, groups) for m in runs.values()]
            diffs = [] if v == BASELINE else paired_differences(cells, v, BASELINE, f, names, groups)
            d_miou = [d["mIoU"] for d in diffs]
            paired = ([_pm(d_miou, True) + f" ({len(diffs)})", format_p_value(paired_p_value(d_miou)),
                       _pm([d["thin"] for d in diffs], True)] if diffs else ["-", "-", "-"])
            lines.append(f"| {f} | {VARIANTS[v].title} | {len(runs)} | {_pm([s['mIoU'] for s in sc])} | "
                         f"{_pm([s['thin'] for s in sc])} | " + " | ".join(paired) + " |")
    return "\n".join(lines) + "\n"


def _seed_deltas(runs: dict, ref: dict) -> list[float]:
    """mIoU of ``runs`` minus ``ref`` ({seed: metrics}), seed by seed, over the seeds both hold."""
    return [runs[s]["mIoU"] - ref[s]["mIoU"] for s in sorted(runs) if s in ref]


def regime_table(regime: dict, root: str = ".") -> str:
    """The over-fitting study: per training-subset size and target, the mIoU on the model's own training
    images, on val and on test, the train - val gap, and each target's paired difference to centred
    nearest on val and on test (mean ± std over seeds, count)."""
    lines = ["| training images | labels | seeds | train mIoU | val mIoU | train - val | test mIoU | "
             "Δ val to centred nearest | Δ test to centred nearest |",
             "|---|---|---|---|---|---|---|---|---|"]
    factor = [parse_factor(regime["factor"])]
    for size, (folder, train_set) in regime["subsets"].items():
        grid = make_grid(regime["variants"], factor, regime["seeds"])
        where = os.path.join(root, folder)
        by = {name: by_cell(collect(grid, where, rf)) for name, rf in (
            ("train", extra_result_file(train_set)), ("val", extra_result_file(regime["val"])),
            ("test", RESULT_FILE))}
        for v in regime["variants"]:
            cell = {k: c.get((v, factor[0]), {}) for k, c in by.items()}
            if not cell["test"]:
                continue
            miou = {k: [m["mIoU"] for m in runs.values()] for k, runs in cell.items()}
            gap = _seed_deltas(cell["train"], cell["val"])
            deltas = []
            for split in ("val", "test"):
                ref = by[split].get((BASELINE, factor[0]), {})
                d = _seed_deltas(cell[split], ref)
                deltas.append("-" if v == BASELINE or not d else f"{_pm(d, True)} ({len(d)})")
            lines.append(f"| {size} | {VARIANTS[v].title} | {len(cell['test'])} | {_pm(miou['train'])} | "
                         f"{_pm(miou['val'])} | {_pm(gap, True)} | {_pm(miou['test'])} | "
                         + " | ".join(deltas) + " |")
    return "\n".join(lines) + "\n"


def _finding_diffs(item: dict, manifest: dict, root: str) -> list[float]:
    """The per-seed differences a finding reports (its ``kind``): ``paired`` (a variant minus its reference,
    default centred nearest, on the grid's test set or ``eval``), ``calibration`` (a variant's mIoU with
    prior-matching offsets minus without, from the grid's calibration files) or ``regime`` (a variant minus
    centred nearest in the over-fitting study, at a training-subset size, on val)."""
    f = parse_factor(item.get("factor", "1/8"))
    kind = item.get("kind", "paired")
    if kind == "regime":
        regime = next(r for r in manifest["regimes"] if r["name"] == item["regime"])
        folder = os.path.join(root, regime["subsets"][str(item["subset"])][0])
        grid = make_grid([item["variant"], BASELINE], [f], regime["seeds"])
        cells = by_cell(collect(grid, folder, extra_result_file(regime["val"])))
        runs, ref = cells.get((item["variant"], f), {}), cells.get((BASELINE, f), {})
        return _seed_deltas(runs, ref)
    spec = next(g for g in manifest["grids"] if g.name == item["grid"])
    folder = os.path.join(root, spec.folder)
    if kind == "calibration":
        out = []
        for p in spec.points():
            if p.variant == item["variant"] and p.factor == f:
                res = read_json(os.path.join(folder, "calibration", f"{p.name}.json"))
                if res is not None:
                    out.append(res["val"]["prior-matched"]["mIoU"] - res["val"]["argmax"]["mIoU"])
        return out
    result_file = extra_result_file(item["eval"]) if item.get("eval") else RESULT_FILE
    _, names, groups = _recipe(os.path.join(root, spec.config))
    cells = by_cell(collect(spec.points(), folder, result_file))
    diffs = paired_differences(cells, item["variant"], item.get("reference", BASELINE), f, names, groups)
    return [d[item.get("score", "mIoU")] for d in diffs]


def frontier_of(item: dict, manifest: dict, root: str = ".") -> list[dict]:
    """The budget-frontier rows of a manifest ``frontiers`` entry: its ``grid`` against its ``reference``
    grid (the 1/1 runs), at the data's full ``size`` [h, w]."""
    specs = {g.name: g for g in manifest["grids"]}
    grid, ref = specs[item["grid"]], specs[item["reference"]]
    results = collect(grid.points(), os.path.join(root, grid.folder))
    reference = collect(ref.points(), os.path.join(root, ref.folder))
    h, w = item["size"]
    config = os.path.join(root, grid.config)
    return frontier_rows(results, reference, h, w, gflops=lambda f: step_gflops(config, f, h, w))


def gap_table(item: dict, manifest: dict, root: str = ".") -> str:
    """A manifest ``gaps`` entry: the label ceiling of each target and factor (``ceilings``, one CSV) beside
    what each of its ``grids`` (``{"grid", "title"}``) reaches on the data the ceiling was measured on, and
    the gap between them (ceiling - mean mIoU), for its ``variants`` (default: all): does a stronger model
    close the gap its labels leave?"""
    specs = {g.name: g for g in manifest["grids"]}
    ceilings = read_ceilings(os.path.join(root, item["ceilings"]))
    cells = []
    for entry in item["grids"]:
        spec = specs[entry["grid"]]
        cells.append(by_cell(collect(spec.points(), os.path.join(root, spec.folder))))
    titles = " | ".join(f"{e['title']}: mIoU | gap" for e in item["grids"])
    lines = [f"| labels | factor | ceiling | {titles} |", "|---|---|---|" + "---|---|" * len(item["grids"])]
    keys = {k for c in cells for k in c if k in ceilings and k[0] in item.get("variants", VARIANTS)}
    for f in sorted({f for _, f in keys}):
        for v in [v for v in VARIANTS if (v, f) in keys]:
            row = [VARIANTS[v].title, str(f), f"{ceilings[(v, f)]:.2f}"]
            for c in cells:
                scores = [m["mIoU"] for m in c.get((v, f), {}).values()]
                gap = f"{ceilings[(v, f)] - statistics.mean(scores):.2f}" if scores else "-"
                row += [f"{_pm(scores)} ({len(scores)})" if scores else "-", gap]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def ceilings_table(sources: list[dict], root: str = ".") -> str:
    """Label ceilings (recoverable mIoU of each kind of target, ``tools/analyze_downsampling.py``) of every
    ``{"title", "csv"}`` source, and the soft targets' mass off their top class: one row per data set and
    factor."""
    kinds = [(t.ceiling_label, t.kind) for t in ceiling_targets()]
    soft = [t.ceiling_label for t in ceiling_targets() if t.grid is None]
    filters = " / ".join(mode.split(":")[1] for mode in soft)
    lines = ["| data | factor | " + " | ".join(k for _, k in kinds) + f" | off-argmax mass of soft {filters} "
             "(%) |", "|---|---|" + "---|" * len(kinds) + "---|"]
    for source in sources:
        with open(os.path.join(root, source["csv"])) as f:
            rows = {(r["factor"], r["mode"]): r for r in csv.DictReader(f)}
        for factor in sorted({f for f, _ in rows}, key=lambda t: -float(parse_factor(t))):
            cells = [rows.get((factor, m), {}).get("recoverable_miou") for m, _ in kinds]
            mass = [rows.get((factor, m), {}).get("non_argmax_mass_pct") for m in soft]
            text = " / ".join(f"{float(x):.2f}" for x in mass if x) or "-"
            ceiling = " | ".join("-" if c is None else f"{float(c):.1f}" for c in cells)
            lines.append(f"| {source['title']} | {factor} | {ceiling} | {text} |")
    return "\n".join(lines) + "\n"


def main_job_text(job: dict, root: str = ".",
                  runs_at: str = "[`results/mainjob/`](results/mainjob/)",
                  baseline_at: str = "below") -> str:
    """The expected time and result of the main job, from its committed run (``job``: folders of the soft
    and the nearest run, the timing file); ``runs_at`` names the runs' folder as the page links it,
    ``baseline_at`` where the page shows the baseline's command."""
    timing = read_json(os.path.join(root, job["timing"]))
    runs = {k: read_json(os.path.join(root, job[k], RESULT_FILE)) for k in ("soft", "nearest")}

    def score(res: dict) -> str:
        plain = res.get("metrics_without_offsets")
        text = f"{res['metrics']['mIoU']:.2f} mIoU"
        return text + (f" ({plain['mIoU']:.2f} without the class offsets)" if plain else "")

    return (f"Expected on 2 CPU cores: about {round(timing['wall_seconds'] / 60)} minutes "
            f"({timing['wall_seconds']:.0f} s measured on an idle machine, "
            f"{timing['generation_seconds']:.0f} s of it generating ToyCity the first time), and "
            f"{score(runs['soft'])} at full resolution (with one torch thread a run repeats its numbers "
            f"exactly). The centred-nearest baseline {baseline_at}: {score(runs['nearest'])}. "
            f"Both runs: {runs_at}.\n")


def findings_table(manifest: dict, root: str = ".") -> str:
    """The README's "what we found" rows: each finding's differences, computed from its runs."""
    lines = ["| finding | where | Δ mIoU: mean ± std (seeds, p) | use |", "|---|---|---|---|"]
    for item in manifest["findings"]:
        d = _finding_diffs(item, manifest, root)
        if not d:
            value = "(not run yet)"
        elif len(d) == 1:
            value = f"{_pm(d, True)} (1 seed)"
        else:
            value = f"{_pm(d, True)} ({len(d)}, p {format_p_value(paired_p_value(d))})"
        lines.append(f"| {item['finding']} | {item['where']} | {value} | {item['use']} |")
    return "\n".join(lines) + "\n"


_MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def site_links(text: str) -> str:
    """README Markdown as a page of ``docs/`` reads it: a link into ``docs/`` loses that prefix, a link to
    another repository path becomes the path as code (the site's build links it to the repository), and a
    link to one of the README's own sections keeps only its text (the section is not on the page)."""
    def rebase(m: re.Match) -> str:
        bang, label, target = m.groups()
        if "://" in target or target.startswith("mailto:"):
            return m.group(0)
        if target.startswith("docs/"):
            return f"{bang}[{label}]({target[len('docs/'):]})"
        if target.startswith("#"):
            return label
        return f"{label} (`{target.split('#', 1)[0]}`)"

    return _MD_LINK.sub(rebase, text)


def readme_figure(readme: str, name: str) -> str:
    """The README's figure ``docs/figures/<name>.png`` with its caption (the italic paragraph under it), as
    the site shows it; raises when the README shows no such figure."""
    paragraphs = readme.split("\n\n")
    for i, para in enumerate(paragraphs):
        if para.startswith("![") and f"(docs/figures/{name}.png)" in para:
            caption = paragraphs[i + 1] if i + 1 < len(paragraphs) else ""
            parts = [para.strip()] + ([caption.strip()] if caption.startswith("*") else [])
            return site_links("\n\n".join(parts)) + "\n"
    raise KeyError(f"README.md shows no docs/figures/{name}.png")


def render_all(manifest_path: str) -> dict[str, str]:
    """{path: the text it should hold} for every generated file and block of the manifest."""
    manifest = load_manifest(manifest_path)
    root = manifest["root"]
    out: dict[str, str] = {}
    for spec in manifest["grids"]:
        doc = grid_document(spec, root)
        if doc is not None:
            out[os.path.join(root, spec.page)] = doc
    report = os.path.join(root, "docs", "evidence", "README.md")
    text = _read(report)
    for spec in manifest["grids"]:
        if f"<!-- summary-{spec.name}:start -->" in text:
            text = replace_block(text, f"summary-{spec.name}", summary_table(spec, root))
        for dataset in spec.also_eval:
            name = f"summary-{spec.name}-{dataset}"
            if f"<!-- {name}:start -->" in text:
                text = replace_block(text, name, summary_table(spec, root, extra_result_file(dataset)))
    if manifest["ceilings"] and "<!-- ceilings:start -->" in text:
        text = replace_block(text, "ceilings", ceilings_table(manifest["ceilings"], root))
    for pilot in manifest["pilots"]:
        if f"<!-- pilot-{pilot['name']}:start -->" in text:
            text = replace_block(text, f"pilot-{pilot['name']}", pilot_curve_table(pilot["runs"], root))
    for frontier in manifest["frontiers"]:
        if f"<!-- frontier-{frontier['name']}:start -->" in text:
            text = replace_block(text, f"frontier-{frontier['name']}",
                                 frontier_table(frontier_of(frontier, manifest, root)))
    for gap in manifest["gaps"]:
        if f"<!-- gap-{gap['name']}:start -->" in text:
            text = replace_block(text, f"gap-{gap['name']}", gap_table(gap, manifest, root))
    for regime in manifest["regimes"]:
        if f"<!-- regime-{regime['name']}:start -->" in text:
            text = replace_block(text, f"regime-{regime['name']}", regime_table(regime, root))
    if manifest["findings"] and "<!-- findings:start -->" in text:  # the report opens with its conclusions
        text = replace_block(text, "findings", findings_table(manifest, root))
    out[report] = text
    readme = os.path.join(root, "README.md")
    text = _read(readme)
    if manifest["findings"] and "<!-- findings:start -->" in text:
        text = replace_block(text, "findings", findings_table(manifest, root))
    if manifest["main_job"] and "<!-- mainjob:start -->" in text:
        text = replace_block(text, "mainjob", main_job_text(manifest["main_job"], root))
    if text:
        out[readme] = text
    out.update(_site_pages(manifest, root, text))
    results = os.path.join(root, "docs", "results.md")  # one table per recipe measured
    text = _read(results)
    if "<!-- results:start -->" in text:
        out[results] = replace_block(text, "results", results_text(manifest, root))
    return out


def _site_pages(manifest: dict, root: str, readme: str) -> dict[str, str]:
    """The site's pages that say what the README says: the home page (findings, main job, figures copied
    from the README) and the walk-through (main job), each with its links as seen from ``docs/``."""
    out = {}
    job = manifest["main_job"]
    # the home page does not show the baseline's command; the site's build links code paths to the repository
    baseline = {"index.md": "(`configs/toycity/tiny_nearest.py`)", "getting_started.md": "below"}
    for page, baseline_at in baseline.items():
        path = os.path.join(root, "docs", page)
        text = _read(path)
        if not text:
            continue
        if job and "<!-- mainjob:start -->" in text:
            text = replace_block(text, "mainjob", main_job_text(job, root, runs_at="`results/mainjob/`",
                                                                baseline_at=baseline_at))
        if manifest["findings"] and "<!-- findings:start -->" in text:
            text = replace_block(text, "findings", site_links(findings_table(manifest, root)))
        for name in re.findall(r"<!-- figure-(\S+?):start -->", text):
            text = replace_block(text, f"figure-{name}", readme_figure(readme, name))
        out[path] = text
    return out


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""
