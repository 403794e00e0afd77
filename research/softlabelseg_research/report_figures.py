"""The report's grid figures (``docs/figures``) drawn from the committed runs, each with a hash of its data.

``miou_vs_factor.png`` and ``decomposition.png`` are drawn from the finished runs of grids in
``results/grids.json``. Each PNG records, as text metadata, the grids it was drawn from and the
SHA-256 of the data it plots (every run's mIoU, the label ceilings): :func:`stale_figures` recomputes that
hash from the runs without drawing anything, so a figure left behind by new runs is found as cheaply as a
stale table. ``targets_<factor>.png`` is not covered: it needs CamVid's images and the weights of a grid's
runs, which the repository does not hold.
"""

from __future__ import annotations

import hashlib
import json
import os

from .evidence import load_manifest, read_ceilings
from .figures import decomposition_figure, miou_figure
from .sweep import collect

__all__ = ["DEFAULT_GRIDS", "GRID_FIGURES", "draw_grid_figures", "figure_data", "recorded", "stale_figures"]

GRID_FIGURES = ("miou_vs_factor.png", "decomposition.png")
DEFAULT_GRIDS = ("toycity_hrnet_w18s", "toycity_tiny_wide", "camvid_tiny_wide")
HASH_KEY = "SoftLabelSeg data sha256"
GRIDS_KEY = "SoftLabelSeg grids"


def _grid_inputs(manifest: dict, grids) -> tuple[list, list]:
    """``(panels, rows)`` of :func:`miou_figure` and :func:`decomposition_figure` for the named grids
    (a grid with no finished run is left out); raises KeyError naming a grid the manifest lacks."""
    specs = {g.name: g for g in manifest["grids"]}
    root = manifest["root"]
    panels, rows = [], []
    for name in grids:
        if name not in specs:
            raise KeyError(f"grid {name!r} is not in the manifest (known: {', '.join(specs)})")
        spec = specs[name]
        results = collect(spec.points(), os.path.join(root, spec.folder))
        if not results:
            continue
        panels.append((spec.title or name, results))
        ceilings = read_ceilings(os.path.join(root, spec.ceilings)) if spec.ceilings else None
        rows.append((spec.short or name, results, ceilings))
    return panels, rows


def _scores(results: dict) -> dict[str, float]:
    return {p.name: m["mIoU"] for p, m in sorted(results.items(), key=lambda kv: kv[0].name)}


def figure_data(manifest: dict, grids=DEFAULT_GRIDS) -> dict[str, str]:
    """{figure file name: SHA-256 of the data it plots}: per grid, its label, each run's mIoU and, for the
    decomposition, the label ceilings."""
    panels, rows = _grid_inputs(manifest, grids)
    data = {
        "miou_vs_factor.png": [[title, _scores(results)] for title, results in panels],
        "decomposition.png": [[label, _scores(results),
                               {f"{v} {f}": c for (v, f), c in sorted((ceilings or {}).items(), key=str)}]
                              for label, results, ceilings in rows],
    }
    return {name: hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
            for name, value in data.items()}


def draw_grid_figures(manifest_path: str, output: str, grids=DEFAULT_GRIDS) -> list[str]:
    """Draw :data:`GRID_FIGURES` into ``output`` from the runs of ``grids``, each with its data hash and
    grid list as PNG text; returns the paths written."""
    manifest = load_manifest(manifest_path)
    panels, rows = _grid_inputs(manifest, grids)
    hashes = figure_data(manifest, grids)
    os.makedirs(output, exist_ok=True)
    paths = [os.path.join(output, name) for name in GRID_FIGURES]
    meta = {name: {HASH_KEY: hashes[name], GRIDS_KEY: " ".join(grids)} for name in GRID_FIGURES}
    miou_figure(panels, paths[0], metadata=meta[GRID_FIGURES[0]])
    decomposition_figure(rows, paths[1], metadata=meta[GRID_FIGURES[1]])
    return paths


def recorded(path: str) -> dict[str, str]:
    """The PNG text metadata of ``path`` ({} for a PNG without any)."""
    from PIL import Image

    with Image.open(path) as image:
        return dict(getattr(image, "text", {}) or {})


def stale_figures(manifest_path: str, folder: str) -> list[str]:
    """The grid figures in ``folder`` whose recorded data hash differs from their runs' data now (or that
    record none), each as ``"<path>: <why>"``; a figure not in ``folder`` is not checked."""
    manifest = load_manifest(manifest_path)
    hashes: dict[str, dict[str, str]] = {}  # per grid list: the figures drawn from one read of the runs
    stale = []
    for name in GRID_FIGURES:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        text = recorded(path)
        if HASH_KEY not in text or GRIDS_KEY not in text:
            stale.append(f"{path}: records no data hash")
            continue
        try:
            grids = text[GRIDS_KEY]
            if grids not in hashes:
                hashes[grids] = figure_data(manifest, grids.split())
            now = hashes[grids][name]
        except KeyError as e:
            stale.append(f"{path}: {e.args[0]}")
            continue
        if now != text[HASH_KEY]:
            stale.append(f"{path}: drawn from other data than the runs hold now")
    return stale
