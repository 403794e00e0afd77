#!/usr/bin/env python
"""Inference latency: PyTorch eager vs ONNX Runtime (CPU) for HRNetV2-W48 and DeepLabV3+ R101.

    python tools/benchmark_export.py                       # 1/8, 1/4, 1/2 of 1024x2048, ~2-5 minutes
    python tools/benchmark_export.py --threads 4           # a dedicated machine: more threads
    python tools/benchmark_export.py --models hrnet_w48 --sizes 128x256 --repeats 5

Both engines compute the same thing: the exported graph (uint8 image -> logits at the input size,
normalisation inside), PyTorch as ``ExportWrapper`` under ``torch.inference_mode``, ONNX Runtime on a
static export at each size (all graph optimisations, CPU provider). Same thread count for both:
one by default, because on a small machine shared with other jobs two-thread timings swing by 10x
(an OpenMP thread preempted mid-barrier stalls the whole op) while one-thread medians repeat.
Weights are random with calibrated BatchNorm statistics (trained-like activations; latency does not
depend on the weights otherwise). Rounds alternate the two engines after one warm-up run each and
the table reports medians (and minima: on a loaded machine eager PyTorch's OpenMP threads suffer
most from preemption), so load from other processes hits both engines alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
from softlabelseg_export.exporter import export_onnx
from softlabelseg_export.random_models import paper_model
from softlabelseg_export.recipe import recipe_metadata
from softlabelseg_export.wrapper import ExportWrapper
from tabulate import tabulate

FULL = (1024, 2048)
DEFAULT_SIZES = ["128x256", "256x512", "512x1024"]  # 1/8, 1/4, 1/2 of Cityscapes


def build(name: str):
    return paper_model(name, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def time_once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(wrapper, session, image: np.ndarray, n: int) -> tuple[dict, float]:
    """Seconds per run of each engine over ``n`` alternating rounds, after one warm-up run each;
    and the max |logit difference| between them."""
    tensor = torch.from_numpy(image)

    def run_torch():
        with torch.inference_mode():
            return wrapper(tensor)

    def run_ort():
        return session.run(None, {"image": image})[0]

    diff = float(np.abs(run_ort() - run_torch().numpy()).max())
    times = {"torch": [], "ort": []}
    for _ in range(n):
        times["torch"].append(time_once(run_torch))
        times["ort"].append(time_once(run_ort))
    return times, diff


def bench(name: str, sizes, repeats, threads: int, workdir: str) -> list[dict]:
    cfg, model = build(name)
    wrapper = ExportWrapper(model, "logits").eval()
    rows = []
    for (h, w), n in zip(sizes, repeats, strict=True):
        path = os.path.join(workdir, f"{name}_{h}x{w}.onnx")
        t0 = time.perf_counter()
        export_onnx(wrapper, path, recipe_metadata(cfg, model, name), (h, w))
        export_s = time.perf_counter() - t0
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        image = np.random.default_rng(0).integers(0, 256, (1, 3, h, w), dtype=np.uint8)
        times, diff = measure(wrapper, session, image, n)
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        rows.append(dict(model=name, size=(h, w), n=n, torch_ms=med["torch"], ort_ms=med["ort"], diff=diff,
                         export_s=export_s, torch_min=min(times["torch"]) * 1000,
                         ort_min=min(times["ort"]) * 1000))  # fmt: skip
        print(f"  {name} {h}x{w}: eager {med['torch']:.0f} ms, ORT {med['ort']:.0f} ms (n={n}, "
              f"max |diff| {diff:.1e}, export {export_s:.0f} s)", flush=True)  # fmt: skip
        del session
        os.remove(path)
    return rows


def parse_size(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["hrnet_w48", "deeplabv3plus_r101"])
    parser.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, help="HxW model input sizes")
    parser.add_argument("--repeats", nargs="+", type=int, default=[5, 3, 2], help="timed runs per size")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads, both engines")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes]
    repeats = (args.repeats + args.repeats[-1:] * len(sizes))[: len(sizes)]
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} threads,"
          f" {os.cpu_count()} CPUs visible (shared: medians of alternating runs)")  # fmt: skip
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models:
            rows += bench(name, sizes, repeats, args.threads, workdir)
    table = []
    for r in rows:
        h, w = r["size"]
        base = next(x for x in rows if x["model"] == r["model"] and x["size"] == sizes[-1])
        table.append([
            r["model"], f"{h}x{w}", f"1/{FULL[0] // h}" if FULL[0] % h == 0 else f"{h / FULL[0]:.3g}", r["n"],
            f"{r['torch_ms']:.0f}", f"{r['ort_ms']:.0f}", f"{r['torch_ms'] / r['ort_ms']:.2f}x",
            f"{r['torch_min']:.0f} / {r['ort_min']:.0f}",
            f"{r['ort_ms'] / base['ort_ms']:.2f}", f"{r['diff']:.1e}",
        ])  # fmt: skip
    headers = ["model", "input", "of 1024x2048", "runs", "eager ms", "ORT ms", "eager/ORT", "min eager / ORT",
               f"ORT vs {sizes[-1][0]}x{sizes[-1][1]}", "max |diff|"]  # fmt: skip
    print()
    print(tabulate(table, headers=headers, tablefmt="github"))
    slower = [f"{r['model']} {r['size'][0]}x{r['size'][1]}" for r in rows if r["ort_ms"] > r["torch_ms"]]
    print(f"\nORT at least as fast as eager: {'yes' if not slower else 'no (' + ', '.join(slower) + ')'}; "
          f"total {time.perf_counter() - start:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
