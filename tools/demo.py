#!/usr/bin/env python
"""Segment your own images with a trained checkpoint and write overlays with a legend (detectron2's demo).

    python tools/demo.py --config-file output/toycity_tiny_soft_0.125/config.yaml \
        --input <image or folder> --output <folder> \
        train.init_checkpoint=output/toycity_tiny_soft_0.125/model_final.pth

Per image: ``<folder>/<stem>_overlay.png`` (the image with the predicted classes blended in, ignore black,
and a legend of the classes present) and ``<stem>_labels.png`` (train ids); a folder's sub-folders are
kept. These are the ONNX runners' names, extensions and decoding (OpenCV, EXIF orientation applied); two
images of one stem (a.png, a.jpg) are refused before any is read. The recipe's test mapper resizes each
image (its factor and filter) and the prediction is at the image's own size, with the class offsets the
checkpoint carries. The checkpoint must fit the recipe's model (it is loaded strictly, as
``--eval-only`` and export load it) and have been trained at the recipe's resolution factor
(``--allow-factor-change`` goes on at the config's).
An image that cannot be read or whose outputs cannot be written (e.g. a name too long) is reported and
skipped, the others go on; the exit code is then 1. The outputs never replace the input image; a bad
argument, checkpoint or output folder ends in one ``error:`` line and exit code 2.
"""

import argparse
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--config-file", required=True, help="the recipe or a run's config.yaml")
    ap.add_argument("--input", required=True, help="an image or a folder of images")
    ap.add_argument("--output", required=True, help="folder for the overlays and label maps")
    ap.add_argument("--alpha", type=float, default=0.5, help="opacity of the class colours")
    ap.add_argument("--allow-factor-change", action="store_true",
                    help="go on at the config's resolution factor when the checkpoint was trained at another")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides (train.init_checkpoint=...)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.alpha <= 1.0:  # also refuses nan
        ap.error(f"--alpha must be between 0 and 1, got {args.alpha}")

    from softlabelseg.checkpoint_io import CheckpointError, check_factors, load_weights, read_weights
    from softlabelseg.config import LazyConfig, instantiate
    from softlabelseg.data import BadSampleError, MetadataCatalog
    from softlabelseg.demo import draw_overlay, list_images, predict_image, write_prediction
    from softlabelseg.engine.train_config import train_value
    from softlabelseg.evaluation.sem_seg_evaluation import scored_class_names
    from softlabelseg.modeling.pretrained import skip_initial_weights
    from softlabelseg.utils.fileio import folder_problem

    try:
        cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.overrides)
        weights = cfg.train.get("init_checkpoint") or ""
        if not weights:
            raise CheckpointError("pass the trained weights as train.init_checkpoint=<model_final.pth>")
        paths = list_images(args.input, args.output)
        problem = folder_problem(args.output)
        if problem:
            raise PermissionError(f"--output {args.output} cannot hold the overlays: {problem}; choose "
                                  "another folder")
        with skip_initial_weights():  # the trained weights replace the backbone's ImageNet ones
            model = instantiate(cfg.model)
        data = read_weights(weights, model, train_value(cfg, "divergence.max_abs_weight"))
        check_factors(cfg, load_weights(model, data, weights), weights, "--allow-factor-change",
                      args.allow_factor_change)
    except (CheckpointError, OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = scored_class_names(cfg)
    meta = MetadataCatalog.get(cfg.dataloader.evaluator.dataset_name)
    colors, ignore = meta.get("stuff_colors"), int(meta.get("ignore_label", 255))
    mapper = instantiate(cfg.dataloader.test.mapper)
    model.eval()
    start, failed = time.perf_counter(), []
    for path in paths:
        try:  # this image only: an unreadable file, a name too long for its outputs, a failed write
            image, labels = predict_image(model, mapper, path)
            overlay = draw_overlay(image, labels, colors, names, args.alpha, ignore)
            write_prediction(args.output, path, args.input, overlay, labels)
        except BadSampleError as e:
            failed.append(path)
            print(f"skipped: {e}", file=sys.stderr)
        except OSError as e:
            failed.append(path)
            print(f"skipped: {path}: {e.strerror or e}"
                  + (f" ({e.filename})" if e.filename and e.filename != path else ""), file=sys.stderr)
    done = len(paths) - len(failed)
    offsets = " with its class offsets" if getattr(model, "offsets_active", False) else ""
    print(f"{done} image(s) in {time.perf_counter() - start:.1f} s{offsets} -> {args.output}"
          + (f"; {len(failed)} skipped" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
