#!/usr/bin/env python
"""Times soft-label resampling against nearest and the naive one-hot + F.interpolate baseline.

    python tools/benchmark_ops.py            # full table (a few minutes at most)
    python tools/benchmark_ops.py --quick    # smoke run: fewer cases and repeats

Labels are synthetic and deterministic: a street-like 1024x2048 map with 19 classes (large regions,
thin poles, small objects, ~6% ignore), a 512x683 map with 150 classes (Voronoi regions), and
uniform noise (every footprint mixed; the worst case for the kernel). Times are medians (ms) of
repeated calls on one label (the machine is shared, so medians). "ours" is soft_resize with the
compiled CPU kernel (single-threaded), "torch-path" the pure torch fallback; the naive baseline is
timed with torch's default thread count and with one thread (as in a data-loader worker), and the
speedup uses the faster of the two.

Peak memory: glibc is told to serve every block >= 64 KiB with its own mmap (and transparent huge
pages are disabled for this process), so resident memory follows live allocations; the peak
resident set (VmHWM, reset through /proc/self/clear_refs) minus the resident set before the call is
the call's peak extra memory, output included. It is compared with the output's own size.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from softlabel_ops import hard_resize, native, soft_resize
from softlabel_ops.stats import multi_class_fraction

IGNORE = 255


# ------------------------------------------------------------------------------------------ labels
def city_label(h: int = 1024, w: int = 2048, seed: int = 0) -> np.ndarray:
    """Street-scene-like train-id map: sky, buildings, vegetation, road, sidewalks, cars, poles, signs."""
    rng = np.random.default_rng(seed)
    lab = np.full((h, w), 2, np.uint8)  # building
    cols = np.arange(w)
    sky = (0.25 * h + np.cumsum(rng.normal(0, 3, w // 16 + 1)).repeat(16)[:w]).astype(int).clip(10, h // 2)
    lab[np.arange(h)[:, None] < sky[None]] = 10
    horizon = int(0.55 * h)
    rows = np.arange(h)[:, None]
    road_half = (rows - horizon) * 2.2
    centre = w // 2 + 40
    lab[(rows >= horizon) & (np.abs(cols[None] - centre) < road_half)] = 0
    dist = np.abs(cols[None] - centre)
    lab[(rows >= horizon) & (dist >= road_half) & (dist < road_half * 1.5 + 60)] = 1
    lab[(rows >= horizon) & (lab == 2)] = 9
    for _ in range(25):  # trees and walls
        y, x = rng.integers(int(0.2 * h), horizon, 1)[0], rng.integers(0, w, 1)[0]
        r = rng.integers(20, 90)
        yy, xx = np.ogrid[:h, :w]
        lab[((yy - y) ** 2 + ((xx - x) * 0.8) ** 2 < r * r) & (lab != 10 if rng.random() < 0.3 else True)] = 8
    for _ in range(6):
        y0, x0 = rng.integers(horizon - 150, horizon, 1)[0], rng.integers(0, w - 300, 1)[0]
        lab[y0:y0 + rng.integers(30, 120), x0:x0 + rng.integers(100, 300)] = rng.choice([3, 4])
    for _ in range(40):  # poles, some with lights or signs
        x, top = rng.integers(0, w - 10), rng.integers(int(0.15 * h), horizon - 50)
        wd = rng.integers(3, 9)
        lab[top:horizon + rng.integers(0, 80), x:x + wd] = 5
        if rng.random() < 0.5:
            lab[top:top + rng.integers(15, 40), x - 8:x + wd + 8] = rng.choice([6, 7])
    for _ in range(18):  # vehicles and people
        y, x = rng.integers(horizon, h - 200), rng.integers(0, w - 300)
        cls = rng.choice([13, 13, 13, 14, 15, 11, 12, 17, 18])
        big = cls in (13, 14, 15)
        hh = rng.integers(60, 180 if big else 150)
        ww = rng.integers(120, 300) if big else rng.integers(20, 50)
        lab[y:y + hh, x:x + ww] = cls
    lab[int(0.92 * h):, :] = IGNORE  # ego vehicle
    lab[:, :6] = IGNORE
    return lab


def voronoi_label(h: int = 512, w: int = 683, classes: int = 150, regions: int = 120,
                  seed: int = 1) -> np.ndarray:
    """ADE20K-like map: Voronoi regions with random class ids out of `classes`, a few ignore regions."""
    rng = np.random.default_rng(seed)
    pts = rng.random((regions, 2)) * (h, w)
    ids = rng.integers(0, classes, regions)
    ids[rng.random(regions) < 0.05] = IGNORE
    yy, xx = np.mgrid[:h, :w]
    best = np.zeros((h, w), np.int64)
    dist = np.full((h, w), np.inf)
    for i, (py, px) in enumerate(pts):
        d = (yy - py) ** 2 + (xx - px) ** 2
        closer = d < dist
        best[closer], dist[closer] = i, d[closer]
    return ids[best].astype(np.uint8)


# ------------------------------------------------------------------------------------------ measuring
def _setup_memory_accounting() -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD: fixed, so big blocks are unmapped on free
        libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except (OSError, AttributeError):
        return False


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def peak_extra(fn) -> tuple[float, object]:
    """Peak resident bytes added while fn runs (its result included), and the result."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status("VmRSS")
    out = fn()
    return _status("VmHWM") - before, out


def median_ms(fn, repeats: int, sync=None) -> float:
    fn()  # warm-up (tables, caches, compiled kernel)
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def naive(lab: torch.Tensor, c: int, size, mode: str) -> torch.Tensor:
    """One-hot the full-resolution label (ignore as an extra plane, then dropped) and interpolate."""
    oh = F.one_hot(lab.long().clamp(max=c), c + 1)[..., :c].permute(2, 0, 1)[None].float()
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(oh, size=size, mode=mode, **kw)


def nbytes(out) -> int:
    ts = [out.probs, out.valid] if hasattr(out, "probs") else [out.indices, out.weights, out.valid]
    return sum(t.numel() * t.element_size() for t in ts)


# ------------------------------------------------------------------------------------------ main
def _cases(quick: bool):
    city, ade = torch.from_numpy(city_label()), torch.from_numpy(voronoi_label())
    noise = torch.randint(0, 19, (1024, 2048), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cases = [("city 1024x2048 C=19", city, 19, f) for f in (2, 4, 8)]
    cases += [("ade 512x683 C=150", ade, 150, f) for f in (2, 4)]
    cases += [("noise 1024x2048 C=19", noise, 19, f) for f in (2, 8)]
    return [cases[0], cases[2], cases[3]] if quick else cases


def _time_case(lab, c, size, mode, reps, naive_reps, threads):
    m = "torch:" + mode
    r = {}
    torch.set_num_threads(threads)
    r["naive_mt"] = median_ms(lambda: naive(lab, c, size, mode), naive_reps)
    torch.set_num_threads(1)
    r["naive_1t"] = median_ms(lambda: naive(lab, c, size, mode), naive_reps)
    r["nearest"] = median_ms(lambda: hard_resize(lab, size, m), reps)
    r["dense"] = median_ms(lambda: soft_resize(lab, c, size=size, mode=m), reps)
    r["sparse"] = median_ms(lambda: soft_resize(lab, c, size=size, mode=m, sparse=True), reps)
    r["torch"] = median_ms(lambda: soft_resize(lab, c, size=size, mode=m, backend="torch"), naive_reps)
    d = soft_resize(lab, c, size=size, mode=m)
    s = soft_resize(lab, c, size=size, mode=m, sparse=True)
    r.update(k=s.k, mc=100 * float(multi_class_fraction(d)), out=nbytes(d), sp_out=nbytes(s))
    return r


def _memory_case(lab, c, size, mode):
    m = "torch:" + mode
    torch.set_num_threads(1)
    return {"pk_dense": peak_extra(lambda: soft_resize(lab, c, size=size, mode=m))[0],
            "pk_sparse": peak_extra(lambda: soft_resize(lab, c, size=size, mode=m, sparse=True))[0],
            "pk_naive": peak_extra(lambda: naive(lab, c, size, mode))[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few cases, few repeats (smoke run)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per timing (default 9, quick 3)")
    ap.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_only:
        ok = _setup_memory_accounting()
        out = {}
        for name, lab, c, f in _cases(args.quick) if ok else []:
            for mode in ("bilinear", "area"):
                out[f"{name}|{f}|{mode}"] = _memory_case(lab, c, (lab.shape[0] // f, lab.shape[1] // f), mode)
        print(json.dumps(out))
        return
    reps = args.repeats or (3 if args.quick else 9)
    naive_reps = max(1, reps // 3)
    threads = torch.get_num_threads()
    cases = _cases(args.quick)
    modes = ("bilinear", "area")
    print(f"torch {torch.__version__}, compiled kernel: "
          f"{'yes' if native.available() else 'no (' + str(native.error()) + ')'}; medians of {reps} "
          f"(naive, torch-path: {naive_reps}) runs, ms", flush=True)
    rows = {}
    for name, lab, c, f in cases:  # timing first, with the allocator in its normal configuration
        for mode in modes:
            size = (lab.shape[0] // f, lab.shape[1] // f)
            rows[name, f, mode] = _time_case(lab, c, size, mode, reps, naive_reps, threads)
            print(f"  timed {name} 1/{f} {mode}", file=sys.stderr, flush=True)
    # memory in a fresh process: allocator settings must be in place before the first big block
    cmd = [sys.executable, __file__, "--memory-only"] + (["--quick"] if args.quick else [])
    res = subprocess.run(cmd, capture_output=True, text=True)
    mem = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else {}
    nan = {"pk_dense": float("nan"), "pk_sparse": float("nan"), "pk_naive": float("nan")}
    for (name, f, mode), r in rows.items():
        r.update(mem.get(f"{name}|{f}|{mode}", nan))
    torch.set_num_threads(threads)
    print(f"nearest = hard_resize; naive = one-hot + F.interpolate, {threads} threads / 1 thread; "
          "dense, sparse = soft_resize (compiled kernel, 1 thread); torchp = torch fallback (1 thread);\n"
          "x = the faster naive / ours; K = sparse K; MC% = multi-class pixels; out MB = output size; "
          "peak = peak extra resident MB during the call (output included); ratio = peak / output")
    head = (f"{'label':21s} {'mode':8s} {'f':>3s} {'nearest':>7s} {'naive':>7s} {'naive1t':>7s} "
            f"{'dense':>6s} {'sparse':>6s} {'torchp':>7s} {'x dense':>7s} {'x sprs':>6s} {'K':>2s} "
            f"{'MC%':>4s} {'out MB':>6s} {'peak':>6s} {'ratio':>5s} {'sp MB':>6s} {'sp pk':>6s} "
            f"{'ratio':>5s} {'naive pk':>8s}")
    print(head)
    print("-" * len(head))
    for (name, f, mode), r in rows.items():
        best = min(r["naive_mt"], r["naive_1t"])
        print(f"{name:21s} {mode:8s} {'1/' + str(f):>3s} {r['nearest']:7.3f} {r['naive_mt']:7.1f} "
              f"{r['naive_1t']:7.1f} {r['dense']:6.2f} {r['sparse']:6.2f} {r['torch']:7.1f} "
              f"{best / r['dense']:7.0f} {best / r['sparse']:6.0f} {r['k']:2d} {r['mc']:4.1f} "
              f"{r['out'] / 2**20:6.2f} {r['pk_dense'] / 2**20:6.2f} {r['pk_dense'] / r['out']:5.2f} "
              f"{r['sp_out'] / 2**20:6.2f} {r['pk_sparse'] / 2**20:6.2f} {r['pk_sparse'] / r['sp_out']:5.2f} "
              f"{r['pk_naive'] / 2**20:8.0f}")
    if torch.cuda.is_available():
        _cuda_table(cases, reps)


def _cuda_row(name, lab, c, f, mode, reps):
    sync = torch.cuda.synchronize
    size = (lab.shape[0] // f, lab.shape[1] // f)
    m = "torch:" + mode
    t_near = median_ms(lambda: hard_resize(lab, size, m), reps, sync)
    t_naive = median_ms(lambda: naive(lab, c, size, mode), reps, sync)
    t_dense = median_ms(lambda: soft_resize(lab, c, size=size, mode=m), reps, sync)
    t_sparse = median_ms(lambda: soft_resize(lab, c, size=size, mode=m, sparse=True), reps, sync)
    peaks, ob = [], 0
    for fn in (lambda: soft_resize(lab, c, size=size, mode=m), lambda: naive(lab, c, size, mode)):
        sync()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out = fn()
        sync()
        peaks.append(torch.cuda.max_memory_allocated() - base)
        ob = ob or nbytes(out)
        del out
    print(f"{name:21s} {mode:8s} {'1/' + str(f):>3s} {t_near:8.3f} {t_naive:8.2f} {t_dense:7.2f} "
          f"{t_sparse:7.2f} {t_naive / t_dense:8.1f} {ob / 2**20:7.2f} {peaks[0] / 2**20:8.2f} "
          f"{peaks[1] / 2**20:8.0f}", flush=True)


def _cuda_table(cases, reps: int) -> None:
    dev = torch.device("cuda")
    print(f"\nCUDA ({torch.cuda.get_device_name(dev)}): medians in ms; ours = pure torch path on the GPU; "
          "peak MB = growth of torch.cuda.max_memory_allocated during the call")
    head = (f"{'label':21s} {'mode':8s} {'f':>3s} {'nearest':>8s} {'naive':>8s} {'dense':>7s} {'sparse':>7s} "
            f"{'x dense':>8s} {'out MB':>7s} {'peak MB':>8s} {'naive pk':>8s}")
    print(head)
    print("-" * len(head))
    for name, lab_cpu, c, f in cases:
        lab = lab_cpu.to(dev)
        for mode in ("bilinear", "area"):
            _cuda_row(name, lab, c, f, mode, reps)


if __name__ == "__main__":
    main()
