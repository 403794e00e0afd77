"""Compare PyTorch and ONNX Runtime on N images: max |logit diff| and argmax agreement; non-zero exit
below the thresholds (fp32: 1e-3 and 99.9%; fp16: 5e-2 and 99%).

    python export/verify.py --model model.onnx --config-file <recipe.py> --checkpoint <model.pth> \\
        [--num-images 8] [--dataset toycity_sem_seg_val | --images <folder>] [key=value ...]

A pair that agrees still FAILs when either side returns NaN or inf, or when the model returns the same
output for a few random images (a model that ignores its input is not a working export).

Exit code: 0 PASS, 1 FAIL (thresholds, NaN / inf outputs, input-independent outputs), 2 nothing could be
compared (unreadable model or checkpoint, a checkpoint whose weights hold NaN or inf, mismatching keys
or resolution factor, no images).
"""

from __future__ import annotations

import argparse
import sys

from softlabelseg_export.checkpoint import CheckpointMismatchError
from softlabelseg_export.cli_common import add_recipe_args
from softlabelseg_export.pipeline import verify_from_recipe
from softlabelseg_export.runtime import ImageReadError, ModelLoadError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="exported .onnx file")
    add_recipe_args(parser)
    parser.add_argument("--num-images", type=int, default=8)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="registered dataset name (default: the recipe's test set)")
    source.add_argument("--images", help="a folder of images instead of a dataset")
    parser.add_argument("--max-diff", type=float, default=None, help="max |logit diff| allowed")
    parser.add_argument("--min-agreement", type=float, default=None, help="min argmax agreement (0..1)")
    args = parser.parse_args(argv)
    try:
        result = verify_from_recipe(
            args.model, args.config_file, args.checkpoint, overrides=args.opts,
            num_images=args.num_images, dataset=args.dataset, images=args.images,
            max_diff=args.max_diff, min_agreement=args.min_agreement,
        )  # fmt: skip
    except (CheckpointMismatchError, FileNotFoundError, ImageReadError, ModelLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
