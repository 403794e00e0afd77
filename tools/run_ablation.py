#!/usr/bin/env python
"""Run the evidence grid (label variant x factor x seed) for one recipe and tabulate it.

    python tools/run_ablation.py --config-file projects/SoftLabelSeg/configs/toycity/evidence_hrnet_w18s.py \
        --variants nearest_topleft nearest soft soft_area full_res --factors 1/8 1/4 1/2 \
        --seeds 0 1 2 --seeds-at 1/2=0 --output output/evidence

Variants (the rows of ``softlabelseg.data.label_targets``): ``nearest`` (cell-centred nearest, the fair
baseline), ``nearest_topleft`` (top-left nearest, torch 'nearest' / OpenCV INTER_NEAREST), ``soft`` (soft
labels with the recipe's image filter), ``soft_mc_off``, ``soft_sparse``, ``soft_area`` (image and label
both torch:area), ``full_res`` (cross-entropy on logits up-sampled to the full-resolution label), and two
that take soft_area apart: ``soft_area_label`` (area label, the recipe's image) and ``nearest_area_image``
(centred nearest label, area image); ``nearest_ls`` (centred nearest labels with cross-entropy label
smoothing ``--label-smoothing``: a regulariser that adds no information, the control for soft labels).

Every point is a normal training run in ``<output>/<point>/``; finished points are skipped and interrupted
ones resume, so re-running the command continues the grid; stopping the runner (Ctrl-C, ``kill``) stops the
run it started, so none goes on training unattended. ``--lane i/n`` runs every n-th point only, so n
processes (each with ``OMP_NUM_THREADS=1``) share the grid without overlap. ``--also-eval DATASET ...``
scores every finished point's final weights on more registered datasets too (e.g. val when the recipe tests
on test), into ``<point>/inference_<DATASET>/``, and tabulates each. Trailing ``key=value``
arguments are passed to every run. ``--ceilings <dataset>_summary.csv`` (from
``tools/analyze_downsampling.py`` with ``--modes nearest-topleft nearest bilinear area``) adds the label
ceilings and their decomposition. Writes ``<output>/ablation.md`` and ``<output>/ablation_miou.png``.
"""
import argparse
import os
import sys
import time

from softlabelseg.data.label_targets import default_targets
from softlabelseg_research.evidence import GridSpec, grid_document
from softlabelseg_research.grid_report import plot_miou
from softlabelseg_research.sweep import (
    VARIANTS,
    OverrideKeys,
    collect,
    eval_point,
    exit_on_sigterm,
    run_point,
)

TRAIN_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lazyconfig_train_net.py")
DEFAULT_VARIANTS = default_targets()


def _seeds_at(items: list[str]) -> dict[str, list[int]]:
    out = {}
    for item in items:
        factor, _, seeds = item.partition("=")
        if not seeds:
            raise ValueError(f"--seeds-at takes FACTOR=SEED[,SEED...], got {item!r}")
        out[factor] = [int(s) for s in seeds.split(",")]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--config-file", required=True)
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    ap.add_argument("--factors", nargs="+", default=["1/8", "1/4", "1/2"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--seeds-at", nargs="*", default=[], metavar="FACTOR=SEEDS",
                    help="fewer seeds at some factors, e.g. 1/2=0 or 1/2=0,1")
    ap.add_argument("--lane", default="0/1", help="i/n: run only points i, i+n, i+2n, ... of the grid")
    ap.add_argument("--output", default="output/ablation")
    ap.add_argument("--ceilings", help="analyze_downsampling *_summary.csv of the same dataset")
    ap.add_argument("--aggregate-only", action="store_true", help="tabulate finished runs, train nothing")
    ap.add_argument("--label-smoothing", type=float,
                    help="cross-entropy label smoothing of the variants that smooth (nearest_ls)")
    ap.add_argument("--also-eval", nargs="+", default=[], metavar="DATASET",
                    help="also score each finished point on these registered datasets (tabulated apart)")
    ap.add_argument("overrides", nargs=argparse.REMAINDER, help="key=value passed to every run")
    args = ap.parse_args(argv)
    try:
        lane, lanes = (int(x) for x in args.lane.split("/"))
        if not 0 <= lane < lanes:
            raise ValueError
    except ValueError:
        ap.error(f"--lane must be i/n with 0 <= i < n, got {args.lane!r}")
    try:
        spec = GridSpec("cli", args.output, args.config_file, tuple(args.variants), tuple(args.factors),
                        tuple(args.seeds), _seeds_at(args.seeds_at), args.ceilings, tuple(args.also_eval))
        grid = spec.points()
    except ValueError as e:
        ap.error(str(e))
    if args.label_smoothing is None and any(VARIANTS[v].label_smoothing for v in args.variants):
        ap.error("a variant that smooths (nearest_ls) needs --label-smoothing")

    os.makedirs(args.output, exist_ok=True)
    exit_on_sigterm()
    start = time.perf_counter()
    failed = []
    if not args.aggregate_only:
        mine = grid[lane::lanes]
        for i, point in enumerate(mine):
            print(f"({i + 1}/{len(mine)})", end=" ", flush=True)
            try:
                run_point(point, args.config_file, args.output, args.overrides, OverrideKeys(), TRAIN_SCRIPT,
                          label_smoothing=args.label_smoothing)
                for dataset in args.also_eval:
                    eval_point(point, args.config_file, args.output, dataset, args.overrides, OverrideKeys(),
                               TRAIN_SCRIPT, label_smoothing=args.label_smoothing)
            except RuntimeError as e:  # one broken point must not stop the rest of the grid
                print(e, file=sys.stderr, flush=True)
                failed.append(point.name)
    results = collect(grid, args.output)
    table = grid_document(spec, root="")
    if table is None:
        print("no finished run to tabulate", file=sys.stderr)
        return 1
    with open(os.path.join(args.output, "ablation.md"), "w") as f:
        f.write(table)
    plot_miou(results, os.path.join(args.output, "ablation_miou.png"), os.path.basename(args.config_file))
    print(table)
    print(f"{len(results)}/{len(grid)} runs tabulated in {args.output}/ablation.md; "
          f"this invocation took {time.perf_counter() - start:.0f} s")
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0 if len(results) == len(grid) else 2


if __name__ == "__main__":
    sys.exit(main())
