#!/usr/bin/env python
"""Fit per-class logit offsets on training images (prior matching): on a run folder, or as an analysis.

    python tools/calibrate_prior.py --run output/toycity_tiny_soft_0.125 [--fit-images 48] [--iters 12]
    python tools/calibrate_prior.py --config-file <run>/config.yaml --checkpoint <run>/model_final.pth \\
        [--fit-images 48] [--output offsets.json] [key=value ...]

``--run``: the offsets become part of the run: written into its newest checkpoint (so ``--eval-only``,
export and both runners apply them) and its evaluation JSON is rewritten with the scores with and without
them. A recipe does the same after training with ``train.calibration.enabled=True``.

``--config-file/--checkpoint``: an analysis that changes nothing: it prints (and with ``--output`` writes)
the offsets and the test split's scores with and without them (pass the run's own saved ``config.yaml`` or
its recipe with the same overrides, so the test images are resized as in training). ``--output`` may not be
the checkpoint, the config, or an existing file other than ``.json``.

A bad argument, file or folder ends in one ``error:`` line and exit code 2.

The offsets match the predicted class shares to the label shares of ``--fit-images`` training images
(evenly spaced over the split, seen through the test mapper); validation and test images are never used.
"""
import argparse
import os
import sys

import torch


def _analysis(args) -> int:
    from softlabelseg.config import LazyConfig, instantiate
    from softlabelseg.engine.calibration import fit_class_offsets
    from softlabelseg.engine.checkpoint import Checkpointer
    from softlabelseg.evaluation import (
        metrics_from_confusion,
        scored_class_groups,
        scored_class_names,
        write_json_atomic,
    )
    from softlabelseg.evaluation.calibration import cache_predictions, confusion_with_bias
    from softlabelseg_research.grid_stats import group_scores

    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.overrides)
    model = instantiate(cfg.model)
    Checkpointer(model).load(args.checkpoint, checkpointables=[], strict=True)
    model.set_class_offsets(None)  # an analysis of the plain logits
    state = fit_class_offsets(cfg, model, args.fit_images, args.iters)
    names, groups = scored_class_names(cfg), scored_class_groups(cfg)
    test = cache_predictions(model, instantiate(cfg.dataloader.test))
    rows = {}
    for tag, b in (("argmax", None), ("prior-matched", state["offsets"])):
        m = metrics_from_confusion(confusion_with_bias(test, b), names)
        rows[tag] = {**group_scores(m, names, groups), **{f"IoU-{n}": m[f"IoU-{n}"] for n in names}}
    print(f"fitted on {state['fit_images']} training images in {state['seconds']:.1f} s")
    offsets = zip(names, state["offsets"], strict=True)
    print("offsets: " + ", ".join(f"{n} {float(v):+.2f}" for n, v in offsets))
    print(f"test ({len(test.logits)} images)   mIoU   thin   stuff")
    for tag, r in rows.items():
        print(f"{tag:15s} {r['mIoU']:6.2f} {r['thin']:6.2f} {r['stuff']:6.2f}")
    if args.output:
        write_json_atomic(args.output, {"offsets": dict(zip(names, state["offsets"].tolist(), strict=True)),
                                        "fit_images": state["fit_images"], "history": state["history"],
                                        "seconds": state["seconds"],
                                        "val": rows})
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--run", help="a training run's folder: calibrate it in place")
    ap.add_argument("--config-file", help="analysis: the run's config.yaml (or its recipe)")
    ap.add_argument("--checkpoint", help="analysis: trained weights (model_final.pth)")
    ap.add_argument("--fit-images", type=int, default=48, help="training images to fit on")
    ap.add_argument("--iters", type=int, default=12)
    ap.add_argument("--output", help="analysis: write offsets and both scores as JSON here")
    ap.add_argument("overrides", nargs=argparse.REMAINDER, help="analysis: key=value config overrides")
    args = ap.parse_args(argv)
    if bool(args.run) == bool(args.config_file or args.checkpoint):
        ap.error("pass either --run FOLDER, or --config-file and --checkpoint")
    if not args.run and not (args.config_file and args.checkpoint):
        ap.error("the analysis needs both --config-file and --checkpoint")
    if args.fit_images < 1 or args.iters < 1:
        ap.error(f"--fit-images and --iters must be at least 1, got {args.fit_images} and {args.iters}")
    if args.output and args.run:
        ap.error("--output belongs to the analysis (--config-file/--checkpoint); --run writes into the run")
    torch.set_num_threads(1)
    from softlabelseg.engine.checkpoint import CheckpointError
    from softlabelseg.engine.preflight import OutputDirError
    from softlabelseg.engine.train_config import ConfigValueError
    from softlabelseg.utils.fileio import OutputPathError, check_output_file

    try:
        if args.output:  # fail before the minutes of inference, not after; never replace an input
            check_output_file(args.output, reads=(args.checkpoint, args.config_file), suffixes=(".json",))
            os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        if args.run:
            from softlabelseg.engine.defaults import setup_logger
            from softlabelseg.engine.training import calibrate_run

            setup_logger(None)
            calibrate_run(args.run, args.fit_images, args.iters)
            return 0
        return _analysis(args)
    except (CheckpointError, ConfigValueError, OutputDirError, OutputPathError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
