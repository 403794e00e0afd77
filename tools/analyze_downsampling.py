#!/usr/bin/env python
"""How much label information survives down-sampling, nearest vs soft labels (paper Fig. 3b and Fig. 4).

Over a registered dataset split, for each factor x mode: per-class change of the label-mass share,
multi-class pixel fraction, soft-label entropy (and the share of the footprint entropy it keeps), mass
kept, and the recoverable mIoU (reduced labels up-sampled back and scored at full resolution).

    python tools/analyze_downsampling.py --dataset toycity_sem_seg_val --factors 1/2 1/4 1/8 \\
        --modes nearest bilinear area --output results/retention_toycity

Writes <output>/<dataset>_retention.csv (one row per factor x mode x class), <dataset>_summary.csv,
<dataset>_share_change_1-N.png (bar chart per factor) and <dataset>_example_1-N.png (one label at full
resolution, nearest and soft), and prints the tables.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from softlabelseg.utils.factors import factor_label, parse_factor
from softlabelseg_research import analyze_records
from softlabelseg_research.retention_plots import plot_example, plot_share_change

from softlabel_ops.modes import mode_name


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="toycity_sem_seg_val", help="registered dataset name")
    ap.add_argument("--factors", nargs="+", default=["1/2", "1/4", "1/8"], help="e.g. 1/2 0.25")
    ap.add_argument("--modes", nargs="+", default=["nearest", "bilinear", "area"],
                    help="nearest (= torch:nearest-exact, cell centres), nearest-topleft (= torch:nearest), "
                         "bilinear, area, bicubic or <lib>:<filter> (e.g. cv2:area)")
    ap.add_argument("--antialias", action="store_true", help="antialias flag for torch bilinear/bicubic")
    ap.add_argument("--split-limit", type=int, default=0, help="use only the first N records (0: all)")
    ap.add_argument("--recoverable-images", type=int, default=100,
                    help="images (evenly spaced) for the recoverable mIoU; -1: all, 0: skip")
    ap.add_argument("--workers", type=int, default=0, help="worker processes (0: this process)")
    ap.add_argument("--example", type=int, default=0, help="record index of the example picture")
    ap.add_argument("--output", default="output/retention", help="output folder")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        factors = [float(parse_factor(f)) for f in args.factors]
        modes = list(dict.fromkeys(mode_name(m) for m in args.modes))
    except ValueError as e:
        ap.error(str(e))

    from softlabelseg.data import DatasetCatalog, MetadataCatalog, class_groups, read_sem_seg

    t0 = time.perf_counter()
    records = DatasetCatalog.get(args.dataset)[: args.split_limit or None]
    if not records:
        ap.error(f"{args.dataset} has no records")
    meta = MetadataCatalog.get(args.dataset)
    names, ignore = list(meta.stuff_classes), int(meta.get("ignore_label", 255))
    result = analyze_records(records, names, factors, modes, antialias=args.antialias,
                             recoverable_images=args.recoverable_images, workers=args.workers,
                             ignore_value=ignore, dataset=args.dataset, progress=not args.no_progress,
                             thin_classes=class_groups(meta)["thin"])
    os.makedirs(args.output, exist_ok=True)
    stem = os.path.join(args.output, args.dataset)
    result.write_csv(f"{stem}_retention.csv")
    result.write_csv(f"{stem}_summary.csv", result.summary_rows())
    example = records[min(max(args.example, 0), len(records) - 1)]
    label = read_sem_seg(example, len(names), ignore)
    name = os.path.basename(example["sem_seg_file_name"])
    for f in factors:
        tag = factor_label(f).replace("/", "-")
        plot_share_change(result, f, f"{stem}_share_change_{tag}.png")
        plot_example(label, names, meta.get("stuff_colors"), f, modes, f"{stem}_example_{tag}.png",
                     antialias=args.antialias, ignore_value=ignore,
                     title=f"{name} down-sampled to {factor_label(f)}")
    print(result.format_tables())
    print(f"\nwrote {stem}_retention.csv, {stem}_summary.csv and {2 * len(factors)} PNGs "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
