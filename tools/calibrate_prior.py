#!/usr/bin/env python
"""Fit per-class logit offsets on training images (prior matching) and score val with and without them.

    python tools/calibrate_prior.py --config-file <run>/config.yaml --checkpoint <run>/model_final.pth \
        [--fit-images 48] [--output offsets.json] [key=value ...]

Pass the run's own saved ``config.yaml`` (or its recipe with the same overrides): the test images must be
resized with the filter and factor the model was trained with.

The offsets are a decision rule at evaluation (``softlabelseg.analysis.calibration``): they let thin
classes win the argmax where soft labels taught the model a minority share per cell. They are fitted on
``dataloader.train.dataset`` through the evaluation mapper (full-resolution labels), never on val.
"""
import argparse
import os
import sys

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--config-file", required=True)
    ap.add_argument("--checkpoint", required=True, help="trained weights (model_final.pth)")
    ap.add_argument("--fit-images", type=int, default=48, help="training images to fit on")
    ap.add_argument("--iters", type=int, default=12)
    ap.add_argument("--output", help="write offsets and both scores as JSON here")
    ap.add_argument("overrides", nargs=argparse.REMAINDER, help="key=value config overrides")
    args = ap.parse_args(argv)
    if args.output:  # fail before the minutes of inference, not after
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)

    from softlabelseg.analysis.calibration import cache_predictions, confusion_with_bias, fit_prior_bias
    from softlabelseg.analysis.grid_stats import group_miou
    from softlabelseg.config import LazyConfig, instantiate
    from softlabelseg.evaluation import (
        metrics_from_confusion,
        scored_class_groups,
        scored_class_names,
        write_json_atomic,
    )
    from softlabelseg.modeling.backbone import load_state_dict_file

    torch.set_num_threads(1)
    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.overrides)
    model = instantiate(cfg.model)
    model.load_state_dict(load_state_dict_file(args.checkpoint), strict=True)
    names, groups = scored_class_names(cfg), scored_class_groups(cfg)

    fit_cfg = cfg.dataloader.test.copy()
    fit_cfg.dataset = cfg.dataloader.train.dataset
    fit = cache_predictions(model, instantiate(fit_cfg), args.fit_images)
    bias, history = fit_prior_bias(fit, iters=args.iters)
    val = cache_predictions(model, instantiate(cfg.dataloader.test))
    rows = {}
    for tag, b in (("argmax", None), ("prior-matched", bias)):
        m = metrics_from_confusion(confusion_with_bias(val, b), names)
        rows[tag] = {"mIoU": m["mIoU"], "thin": group_miou(m, names, groups["thin"]),
                     "stuff": group_miou(m, names, groups["stuff"]),
                     **{f"IoU-{n}": m[f"IoU-{n}"] for n in names}}
    print(f"fitted on {len(fit.logits)} training images; mean |log share ratio| per step: "
          + " ".join(f"{h:.3f}" for h in history))
    print("offsets: " + ", ".join(f"{n} {float(v):+.2f}" for n, v in zip(names, bias, strict=True)))
    print(f"val ({len(val.logits)} images)   mIoU   thin   stuff")
    for tag, r in rows.items():
        print(f"{tag:15s} {r['mIoU']:6.2f} {r['thin']:6.2f} {r['stuff']:6.2f}")
    if args.output:
        write_json_atomic(args.output, {"offsets": dict(zip(names, bias.tolist(), strict=True)),
                                        "fit_images": len(fit.logits), "history": history, "val": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
