#!/usr/bin/env python
"""Peak memory of turning low-resolution scores into full-resolution labels: evaluation and the ONNX runner.

One image of ``--size`` (default 2048x4096, a large Mapillary frame) with ``--classes`` (default 65)
classes, scores on the 1/8 grid. Each variant runs in a fresh process; it prints the peak resident memory
above the process's footprint just before the step (inputs allocated), and the step's time.

- eval, full probabilities (before): the segmentor's ``postprocess`` (two bilinear resizes and a softmax at
  full size), then the evaluator's argmax;
- eval, fused top-1 (after): ``modeling.top1.fused_top1``, what ``predict_labels`` and evaluation use;
- runner, full scores (before): ``upsample_scores`` to full size, then argmax;
- runner, fused (after): ``runtime.labels_from_scores``.

    python tools/benchmark_memory.py [--size 2048x4096] [--classes 65] [--factor 0.125]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

VARIANTS = ("eval_full", "eval_top1", "runner_full", "runner_fused")

CHILD = r"""
import json, resource, sys, time
variant, H, W, C, h, w = sys.argv[1], *map(int, sys.argv[2:7])

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

if variant.startswith("eval"):
    import torch
    torch.set_num_threads(1)
    from softlabelseg.modeling.segmentor import SemanticSegmentor
    from softlabelseg.modeling.top1 import fused_top1
    logits = torch.randn(1, C, h, w)
else:
    import sys as _s; _s.modules["torch"] = None  # the runner never imports torch
    import numpy as np
    from softlabelseg_export.runtime import labels_from_scores, upsample_scores
    scores = np.random.default_rng(0).standard_normal((C, h, w), dtype=np.float32)
base = rss_mb()
t0 = time.perf_counter()
if variant == "eval_full":
    with torch.no_grad():
        probs = SemanticSegmentor.postprocess(None, logits, [{"height": H, "width": W}], [(h, w)], (h, w))
        labels = probs[0]["sem_seg"].argmax(0)
elif variant == "eval_top1":
    with torch.no_grad():
        labels = fused_top1(logits[0], (h, w), (h, w), (H, W))
elif variant == "runner_full":
    labels = upsample_scores(scores, (H, W)).argmax(0)
else:
    labels = labels_from_scores(scores, (H, W))
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"variant": variant, "peak_above_base_mb": peak - base, "seconds": dt}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="2048x4096")
    ap.add_argument("--classes", type=int, default=65)
    ap.add_argument("--factor", type=float, default=0.125, help="score grid relative to the image")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = ap.parse_args(argv)
    H, W = (int(v) for v in args.size.lower().split("x"))
    h, w = round(H * args.factor), round(W * args.factor)
    full_gb = args.classes * H * W * 4 / 2**30
    print(f"{H}x{W}, {args.classes} classes, scores {h}x{w}; one float32 (C, H, W) copy = {full_gb:.2f} GiB")
    res = {}
    for v in args.variants:
        cmd = [sys.executable, "-c", CHILD, v, *map(str, (H, W, args.classes, h, w))]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            tail = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.returncode}"
            print(f"{v}: failed ({tail})")
            continue
        r = json.loads(run.stdout.strip().splitlines()[-1])
        res[v] = r
        print(f"{v:13s} peak +{r['peak_above_base_mb']:8.0f} MiB  {r['seconds']:6.2f} s")
    for a, b in (("eval_full", "eval_top1"), ("runner_full", "runner_fused")):
        if a in res and b in res:
            print(f"{b} / {a}: memory {res[b]['peak_above_base_mb'] / res[a]['peak_above_base_mb']:.3f}x, "
                  f"time {res[b]['seconds'] / res[a]['seconds']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
