#!/usr/bin/env python
"""Resume start-up time of the training data stream: position-only fast-forward vs replaying the mapper.

Builds the recipe's training loader (``dataloader.train``) and measures the time from "resume at batch N"
to the first batch in hand, two ways:

- fast-forward (what ``--resume`` does now): ``loader.load_state_dict({"batch": N})``, then one batch;
- replay (what resuming did before): iterate the loader through N batches, decoding and mapping every
  consumed sample. It is linear in N, so it is timed over ``--replay-batches`` batches and scaled to N
  (printed as such).

    python tools/benchmark_resume.py [--config-file <recipe.py>] [--iteration 10000] [--replay-batches 200]
"""
from __future__ import annotations

import argparse
import statistics
import time

DEFAULT_RECIPE = "projects/SoftLabelSeg/configs/toycity/tiny_soft.py"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config-file", default=DEFAULT_RECIPE)
    ap.add_argument("--iteration", type=int, default=10000, help="resume position N (batches consumed)")
    ap.add_argument("--replay-batches", type=int, default=200, help="batches timed for the replay estimate")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("opts", nargs="*", default=[], help="config overrides key=value")
    args = ap.parse_args(argv)

    from softlabelseg.config import LazyConfig, instantiate

    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    loader = instantiate(cfg.dataloader.train)
    next(iter(loader))  # warm-up: dataset listing, imports, caches

    ff = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        loader.load_state_dict({"batch": args.iteration})
        next(iter(loader))
        ff.append(time.perf_counter() - t0)

    per_batch = []
    for _ in range(args.repeats):
        loader.load_state_dict({"batch": 0})
        t0 = time.perf_counter()
        it = iter(loader)
        for _ in range(args.replay_batches):
            next(it)
        per_batch.append((time.perf_counter() - t0) / args.replay_batches)
    fast = statistics.median(ff)
    replay = statistics.median(per_batch) * (args.iteration + 1)
    bs = cfg.dataloader.train.total_batch_size
    print(f"recipe {args.config_file}, batch {bs}, resume at iteration {args.iteration} "
          f"({args.iteration * bs} consumed samples), median of {args.repeats}")
    print(f"fast-forward (load_state_dict + first batch): {fast * 1000:.1f} ms")
    print(f"replay (decode + map every consumed sample): {replay:.1f} s "
          f"(measured {statistics.median(per_batch) * 1000:.2f} ms/batch over {args.replay_batches} batches, "
          f"scaled to {args.iteration + 1})")
    print(f"speed-up: {replay / fast:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
