#!/usr/bin/env python
"""Training-step time and peak memory: soft labels (dense, sparse) vs nearest, same model and batch.

    python tools/benchmark_train_step.py                                   # tiny model, 1/8 Cityscapes size
    python tools/benchmark_train_step.py --model deeplabv3plus_r101 --batch 2 --size 256 512 --device cuda

Every variant trains the same model (same initial weights) on the same images; only the targets differ:
``nearest`` int64 (h, w) + cross-entropy, ``soft`` DenseSoftLabel (C, h, w) + KL, ``soft_sparse``
SparseSoftLabel (K, h, w) + KL. Targets are prepared once, as the loader would deliver them (the mapper's
cost is reported separately, per sample); a step = host->device copy of the batch, forward, loss,
backward, SGD step. Timing rounds interleave the variants and report medians.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, per variant
in this process (exact for the caching allocator). On CPU neither ``tracemalloc`` (it sees Python
objects, not torch's C++ allocations) nor ``torch.cuda`` stats apply, and freed CPU memory stays in
the process (glibc arenas), so each variant runs in a fresh subprocess that reads the kernel's peak
resident set (VmHWM, reset through /proc/self/clear_refs right before the steps): ``step MB`` is that
peak minus the resident set just before the first step (activations, gradients, optimizer state,
targets), ``peak MB`` the absolute value.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

import softlabel_ops
from softlabel_ops.modes import DEFAULT_MODE

VARIANTS = ("nearest", "soft", "soft_sparse")
CONFIG_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "projects", "SoftLabelSeg", "configs"
)


def synthetic_label(rng: np.random.Generator, size: tuple[int, int], num_classes: int) -> np.ndarray:
    """Street-like label (H, W): smooth random regions plus thin vertical/horizontal structures."""
    import cv2

    h, w = size
    low = rng.random((num_classes, max(2, h // 64), max(2, w // 64))).astype(np.float32)
    fields = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in low])
    label = fields.argmax(0).astype(np.uint8)
    for _ in range(40):  # poles / lines 1-6 px wide
        c = rng.integers(num_classes)
        t = int(rng.integers(1, 7))
        if rng.random() < 0.7:
            x, y0 = rng.integers(0, w - t), rng.integers(0, h // 2)
            label[y0 : y0 + int(rng.integers(h // 8, h // 2)), x : x + t] = c
        else:
            y, x0 = rng.integers(0, h - t), rng.integers(0, w // 2)
            label[y : y + t, x0 : x0 + int(rng.integers(w // 8, w // 2))] = c
    label[rng.random((h, w)) < 0.002] = 255
    return label


def build_model(name: str, num_classes: int, device: torch.device):
    from softlabelseg.config import LazyConfig, instantiate

    path = name if name.endswith(".py") else os.path.join(CONFIG_DIR, "common", "models", f"{name}.py")
    cfg = LazyConfig.load(path)
    cfg.model.num_classes = num_classes
    torch.manual_seed(0)
    return instantiate(cfg.model).to(device).train()


def make_batches(args) -> tuple[dict[str, list[dict]], dict[str, float]]:
    """Per variant the same batch of mapper-like dicts; plus the label preparation time per sample (ms)."""
    rng = np.random.default_rng(0)
    h, w = args.size
    full = (h * args.factor_inv, w * args.factor_inv)
    labels = [synthetic_label(rng, full, args.num_classes) for _ in range(min(args.batch, 4))]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(args.batch)]
    batches = {v: [] for v in VARIANTS}
    prep = {v: [] for v in VARIANTS}
    for i in range(args.batch):
        label = labels[i % len(labels)]
        image = torch.from_numpy(images[i]).permute(2, 0, 1).contiguous()
        for v in VARIANTS:
            t0 = time.perf_counter()
            if v == "nearest":
                target = softlabel_ops.hard_resize(label, (h, w), mode=args.mode)  # centred nearest
            else:
                target = softlabel_ops.soft_resize(
                    label,
                    args.num_classes,
                    size=(h, w),
                    mode=args.mode,
                    sparse=v == "soft_sparse",
                    top_k=args.top_k,
                )
            prep[v].append(time.perf_counter() - t0)
            batches[v].append({"image": image, "sem_seg": target, "height": full[0], "width": full[1]})
    return batches, {v: 1000 * statistics.median(t) for v, t in prep.items()}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_step(model, opt, batch, device):
    loss = sum(model(batch).values())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    _sync(device)


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_worker(args) -> dict:
    """Runs in a fresh process: peak RSS of ``args.worker`` training steps."""
    device = torch.device("cpu")
    batches, _ = make_batches(args)
    batch = batches[args.worker]
    del batches
    model = build_model(args.model, args.num_classes, device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    base = _rss_mb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    for _ in range(args.mem_steps):
        train_step(model, opt, batch, device)
    peak = _rss_mb("VmHWM")
    return {"step_mb": peak - base, "peak_mb": peak}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="tiny_cnn", help="a configs/common/models name or a config path")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, nargs=2, default=[128, 256], help="training image (h, w)")
    p.add_argument("--factor-inv", type=int, default=8, help="full-resolution label = size x this")
    p.add_argument("--num-classes", type=int, default=19)
    p.add_argument("--mode", default=DEFAULT_MODE, help="softlabel_ops mode of image and soft label")
    p.add_argument("--top-k", type=int, default=None, help="cap K of the sparse targets")
    p.add_argument("--iters", type=int, default=10, help="timed rounds (each runs every variant once)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mem-steps", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(memory_worker(args)))
        return None

    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    batches, prep_ms = make_batches(args)
    model = build_model(args.model, args.num_classes, device)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    ks = {v: int(b[0]["sem_seg"].indices.shape[0]) for v, b in batches.items() if v == "soft_sparse"}
    times = {v: [] for v in VARIANTS}
    mem = {}
    opts = {}
    for v in VARIANTS:  # one optimizer per variant, same start weights
        model.load_state_dict(init)
        opts[v] = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    for r in range(args.warmup + args.iters):
        for v in VARIANTS:
            model.load_state_dict(init)
            t0 = time.perf_counter()
            train_step(model, opts[v], batches[v], device)
            if r >= args.warmup:
                times[v].append(time.perf_counter() - t0)
    if device.type == "cuda":
        for v in VARIANTS:
            model.load_state_dict(init)
            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            for _ in range(args.mem_steps):
                train_step(model, opt, batches[v], device)
            mem[v] = {"peak_mb": torch.cuda.max_memory_allocated() / 2**20}
    else:
        base = [
            "--model",
            args.model,
            "--batch",
            str(args.batch),
            "--size",
            *map(str, args.size),
            "--factor-inv",
            str(args.factor_inv),
            "--num-classes",
            str(args.num_classes),
            "--mode",
            args.mode,
            "--mem-steps",
            str(args.mem_steps),
        ]
        base += ["--top-k", str(args.top_k)] if args.top_k else []
        base += ["--threads", str(args.threads)] if args.threads else []
        for v in VARIANTS:
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), *base, "--worker", v],
                capture_output=True,
                text=True,
                check=True,
            )
            mem[v] = json.loads(out.stdout.strip().splitlines()[-1])

    med = {v: 1000 * statistics.median(t) for v, t in times.items()}
    rows = []
    for v in VARIANTS:
        row = {
            "variant": v,
            "step_ms": med[v],
            "x_time": med[v] / med["nearest"],
            "label_prep_ms": prep_ms[v],
        }
        for k, val in mem[v].items():
            row[k] = val
            row["x_" + k] = val / mem["nearest"][k]
        rows.append(row)
    print(
        f"device={device} ({torch.get_num_threads()} threads) model={args.model} batch={args.batch} "
        f"size={tuple(args.size)} full={args.size[0] * args.factor_inv}x{args.size[1] * args.factor_inv} "
        f"classes={args.num_classes} mode={args.mode} sparse K={ks.get('soft_sparse')} "
        f"rounds={args.iters} (median)"
    )
    try:
        from tabulate import tabulate

        print(tabulate(rows, headers="keys", floatfmt=".3f", tablefmt="pipe"))
    except ImportError:
        for r in rows:
            print(r)
    print("targets: soft <= 1.10x step time, <= 1.05x peak memory of nearest")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
