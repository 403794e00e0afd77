#!/usr/bin/env python
"""Run the paper's ablation grid (label mode x factor x MC x seed) for one recipe and tabulate it.

    python tools/run_ablation.py --config-file projects/SoftLabelSeg/configs/toycity/tiny_soft.py \
        --modes nearest soft --factors 1/8 1/4 1/2 --mc on off --seeds 0 1 --output output/ablation_toycity

Every point is a normal training run in ``<output>/<point>/``; finished points are skipped and interrupted
ones resume, so re-running the command continues the sweep. Trailing ``key=value`` arguments are passed to
every run. Writes ``<output>/ablation.md`` (the tables) and ``<output>/ablation_miou.png`` (mIoU vs factor).
"""
import argparse
import os
import sys
import time

from softlabelseg.analysis.ablation import (
    OverrideKeys,
    collect,
    make_grid,
    markdown_tables,
    parse_factor,
    plot_miou,
    run_point,
)

TRAIN_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lazyconfig_train_net.py")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--config-file", required=True)
    ap.add_argument("--modes", nargs="+", default=["nearest", "soft"],
                    choices=["nearest", "soft", "soft_sparse"])
    ap.add_argument("--factors", nargs="+", default=["1/8", "1/4", "1/2"])
    ap.add_argument("--mc", nargs="+", default=["on", "off"], choices=["on", "off"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--output", default="output/ablation")
    ap.add_argument("--aggregate-only", action="store_true", help="tabulate finished runs, train nothing")
    ap.add_argument("overrides", nargs=argparse.REMAINDER, help="key=value passed to every run")
    args = ap.parse_args(argv)

    grid = make_grid(args.modes, [parse_factor(f) for f in args.factors], [m == "on" for m in args.mc],
                     args.seeds)
    os.makedirs(args.output, exist_ok=True)
    start = time.perf_counter()
    if not args.aggregate_only:
        for i, point in enumerate(grid):
            print(f"({i + 1}/{len(grid)})", end=" ", flush=True)
            run_point(point, args.config_file, args.output, args.overrides, OverrideKeys(), TRAIN_SCRIPT)
    results = collect(grid, args.output)
    if not results:
        print("no finished run to tabulate", file=sys.stderr)
        return 1
    from softlabelseg.config import LazyConfig
    from softlabelseg.data import MetadataCatalog

    cfg = LazyConfig.load(args.config_file)
    class_names = list(MetadataCatalog.get(cfg.dataloader.test.dataset).stuff_classes)
    table = markdown_tables(results, class_names)
    with open(os.path.join(args.output, "ablation.md"), "w") as f:
        f.write(f"Recipe: `{args.config_file}`; {len(results)}/{len(grid)} runs finished.\n\n{table}")
    plot_miou(results, os.path.join(args.output, "ablation_miou.png"), os.path.basename(args.config_file))
    print(table)
    print(f"{len(results)}/{len(grid)} runs tabulated in {args.output}/ablation.md; "
          f"this invocation took {time.perf_counter() - start:.0f} s")
    return 0 if len(results) == len(grid) else 2


if __name__ == "__main__":
    sys.exit(main())
