#!/usr/bin/env python
"""Regenerate every generated block and file of the repository: the evidence report from the runs' own
outputs and the manual's tables from the code.

    python tools/make_report.py            # rewrite what is stale
    python tools/make_report.py --check    # list what is stale, exit 1 if anything is (CI, tests)

The grids, the over-fitting study and the README's findings are listed in ``results/grids.json``; each
grid's page under ``docs/evidence/grids/``, the summary blocks of ``docs/evidence/README.md`` and the
findings table of ``README.md`` are made from the finished runs under ``results/``
(``softlabelseg_research.evidence``). The ``train.*`` keys of ``docs/training.md`` and the error messages of
``docs/troubleshooting.md`` are read from the code (``softlabelseg_research.docs_tables``): run this after
changing a key, its default or doc, or an error message. Both kinds are generated blocks between
``<!-- name:start -->`` and ``<!-- name:end -->`` lines (``softlabelseg_research.markdown_blocks``).
``--plots`` also redraws each grid's mIoU-vs-factor plot, each budget frontier's figure and the report's
grid figures in ``docs/figures`` (as ``tools/make_figures.py`` does); those figures record a hash of the data
they plot, and ``--check`` also fails when one differs from the runs (no drawing: it hashes the inputs).
"""
import argparse
import os
import sys

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results", "grids.json")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--manifest", default=MANIFEST)
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is stale")
    ap.add_argument("--plots", action="store_true", help="also redraw the grids' plots")
    args = ap.parse_args(argv)

    from softlabelseg.utils.fileio import atomic_write
    from softlabelseg_research.docs_tables import render_pages
    from softlabelseg_research.evidence import frontier_of, load_manifest, render_all
    from softlabelseg_research.frontier import plot_frontier
    from softlabelseg_research.grid_report import plot_miou
    from softlabelseg_research.report_figures import DEFAULT_GRIDS, draw_grid_figures, stale_figures
    from softlabelseg_research.sweep import collect

    manifest = load_manifest(args.manifest)
    stale = []
    for path, text in {**render_all(args.manifest), **render_pages(manifest["root"])}.items():
        try:
            with open(path) as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        stale.append(os.path.relpath(path))
        if not args.check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write(path, lambda f, t=text: f.write(t.encode()))
    figures = os.path.join(manifest["root"], "docs", "figures")
    old_figures = stale_figures(args.manifest, figures)
    if args.check:
        stale += old_figures
    elif old_figures and not args.plots:
        print(f"{len(old_figures)} figure(s) stale (redraw them with --plots): " + ", ".join(old_figures))
    if args.plots and not args.check:
        known = {g.name for g in manifest["grids"]}
        grids = [g for g in DEFAULT_GRIDS if g in known]
        if grids:
            draw_grid_figures(args.manifest, figures, grids)
        plotted = set()  # one plot per folder, of its first grid (a folder can hold two)
        for spec in manifest["grids"]:
            results = collect(spec.points(), os.path.join(manifest["root"], spec.folder))
            if results and spec.folder not in plotted:
                plotted.add(spec.folder)
                plot = os.path.join(manifest["root"], spec.folder, "ablation_miou.png")
                plot_miou(results, plot, spec.title)
        for item in manifest["frontiers"]:
            plot_frontier(frontier_of(item, manifest, manifest["root"]),
                          os.path.join(manifest["root"], item["figure"]), item["title"])
    verb = "stale" if args.check else "rewritten"
    print(f"{len(stale)} file(s) {verb}" + (": " + ", ".join(stale) if stale else ""))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
