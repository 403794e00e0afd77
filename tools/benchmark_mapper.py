#!/usr/bin/env python
"""Training-mapper throughput: nearest vs soft (dense) vs soft (sparse) labels, decode included.

Writes a few synthetic 1024 x 2048 samples in the Cityscapes layout (ToyCity scenes) to a temporary folder,
then runs ``SoftLabelDatasetMapper`` with the paper's training geometry (whole image at the factor as
crop, random rescale 0.5-2x, flip, photometric jitter) at 1/2, 1/4 and 1/8. The three label modes see the
same samples and the same random geometry, interleaved so machine load affects them alike. Prints the
median time per sample, samples/s, and the soft / nearest ratio (target <= 1.15x), plus the label-path
time alone; once with glibc's allocator defaults and once keeping large buffers in the heap (what the
training loader's worker processes do, see ``keep_large_allocations``).

    python tools/benchmark_mapper.py [--samples 4] [--repeats 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from softlabel_ops.modes import DEFAULT_MODE

MODES = ("nearest", "soft", "soft_sparse")


def write_samples(root: Path, n: int, hw=(1024, 2048)) -> list[dict]:
    """``n`` ToyCity scenes at ``hw`` written as Cityscapes train files; returns their records."""
    from softlabelseg.data.datasets import load_cityscapes_semantic
    from softlabelseg.data.toycity.generator import _write_png
    from softlabelseg.data.toycity.scene import render_scene

    for i in range(n):
        image, label = render_scene(np.random.default_rng([2024, i]), hw[0], hw[1], ss=2)
        d_img, d_gt = root / "leftImg8bit/train/bench", root / "gtFine/train/bench"
        d_img.mkdir(parents=True, exist_ok=True)
        d_gt.mkdir(parents=True, exist_ok=True)
        _write_png(d_img / f"bench_{i:06d}_000019_leftImg8bit.png", image)
        _write_png(d_gt / f"bench_{i:06d}_000019_gtFine_labelTrainIds.png", label)
    return load_cityscapes_semantic(root, "train")


def bench_factor(records, factor: float, repeats: int, image_mode: str) -> dict:
    """{mode: (median mapper seconds per sample, median label-path seconds per sample)}."""
    from softlabelseg.data import SoftLabelDatasetMapper
    from softlabelseg.data.transforms import sample_geometry, scaled_size

    mappers = {m: SoftLabelDatasetMapper(num_classes=19, factor=factor, crop_size=1.0, label_mode=m,
                                         image_mode=image_mode) for m in MODES}
    times = {m: [] for m in MODES}
    label_times = {m: [] for m in MODES}
    for r in range(repeats + 1):  # round 0 warms up (kernel build, caches)
        for i, rec in enumerate(records):
            order = MODES[(i + r) % 3:] + MODES[: (i + r) % 3]
            for m in order:
                rng = np.random.default_rng([r, i])
                t0 = time.perf_counter()
                mappers[m](rec, rng)
                dt = time.perf_counter() - t0
                if r:
                    times[m].append(dt)
            # the label path alone, on a fixed geometry drawn like the mapper draws it
            _, label = mappers["nearest"].read(rec)
            crop = scaled_size(label.shape, factor)
            geo = sample_geometry(np.random.default_rng([r, i]), label.shape, factor, (0.5, 2.0), crop, 0.5)
            for m in order:
                t0 = time.perf_counter()
                mappers[m].resample_label(label, geo.size, geo.window)
                if r:
                    label_times[m].append(time.perf_counter() - t0)
    return {m: (float(np.median(times[m])), float(np.median(label_times[m]))) for m in MODES}


def run_table(records, args, label: str) -> float:
    """Prints one table; returns the worst soft (dense or sparse) / nearest ratio."""
    head = (f"{'factor':>6} | " + " | ".join(f"{m + ' ms':>14}" for m in MODES) + " | "
            + " | ".join(f"{m + ' /s':>13}" for m in MODES) + " | soft/nearest | sparse/nearest"
            + " | label-path ms (nearest/soft/sparse)")
    print(f"\n{label}\n{head}\n{'-' * len(head)}")
    worst = 0.0
    for f in args.factors:
        res = bench_factor(records, f, args.repeats, args.image_mode)
        ms = {m: res[m][0] * 1e3 for m in MODES}
        ratio, sratio = ms["soft"] / ms["nearest"], ms["soft_sparse"] / ms["nearest"]
        worst = max(worst, ratio, sratio)
        lab = "/".join(f"{res[m][1] * 1e3:.1f}" for m in MODES)
        print(f"{'1/' + str(round(1 / f)):>6} | " + " | ".join(f"{ms[m]:14.1f}" for m in MODES) + " | "
              + " | ".join(f"{1e3 / ms[m]:13.1f}" for m in MODES)
              + f" | {ratio:11.2f}x | {sratio:13.2f}x | {lab}")
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=4, help="synthetic 1024x2048 samples to write")
    ap.add_argument("--repeats", type=int, default=5, help="timed passes over the samples")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (loader workers use 1)")
    ap.add_argument("--factors", type=float, nargs="+", default=[0.5, 0.25, 0.125])
    ap.add_argument("--image-mode", default=DEFAULT_MODE)
    args = ap.parse_args(argv)
    from softlabelseg.data.loader import keep_large_allocations

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="softlabelseg-bench-") as tmp:
        t0 = time.perf_counter()
        records = write_samples(Path(tmp), args.samples)
        print(f"wrote {len(records)} samples of 1024x2048 in {time.perf_counter() - t0:.1f} s; "
              f"torch threads={args.threads}, image mode {args.image_mode}, crop = image at factor, "
              f"rescale 0.5-2, flip, photometric; {args.repeats} x {len(records)} timed samples per cell")
        worst = {}
        settings = (("glibc malloc defaults", False), ("large buffers kept (as in loader workers)", True))
        for label, tuned in settings:
            if tuned:
                keep_large_allocations()
            worst[label] = run_table(records, args, label)
        for label, w in worst.items():
            verdict = "met" if w <= 1.15 else "NOT met"
            print(f"worst soft/nearest ratio, {label}: {w:.2f}x (target <= 1.15x): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
