"""Export a trained recipe + checkpoint to ONNX (uint8 RGB in, logits / probs / labels out, metadata inside).

    python export/export_onnx.py --config-file <recipe.py> (--checkpoint <model.pth> | --random-init) \\
        --output model.onnx [--opset 17] [--input-size HxW | --dynamic] [--fp16] \\
        [--output-kind logits|probs|labels] [--upsample-to HxW|original] [--resize-in-graph] [key=value ...]

--resize-in-graph: the graph takes the full image (uint8 RGB, any size) and shrinks it itself with the
training filter (torch:bilinear recipes only), so a client that runs the graph alone (Triton) sends the
image as it is; the runners and the server read it from the metadata and skip their own resize.

--random-init exports the recipe's untrained model (with a warning, recorded in the metadata): a check
that a recipe deploys before any training.

A checkpoint whose weights hold NaN or inf (a diverged training) is refused, naming the tensors. The
.onnx file is written atomically: an export that fails or is killed leaves an earlier file at --output
unchanged (at most a .tmp_* file beside it). --output may not be the checkpoint or recipe it reads, nor an
existing file that is not .onnx (refused before anything is built). Exit code: 0 written, 2 refused
(unreadable or mismatching checkpoint, NaN / inf weights, unsupported operator or arguments, an output that
cannot be written).
"""

from __future__ import annotations

import argparse
import sys

from softlabelseg.utils.fileio import OutputPathError
from softlabelseg_export.checkpoint import CheckpointMismatchError
from softlabelseg_export.cli_common import add_recipe_args, parse_hw
from softlabelseg_export.exporter import EXPORTERS, ExportError
from softlabelseg_export.metadata import OUTPUT_KINDS, UNTRAINED
from softlabelseg_export.pipeline import export_from_recipe


def _upsample(text: str):
    return "original" if text == "original" else parse_hw(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_recipe_args(parser, allow_random_init=True)
    parser.add_argument("--output", required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (TorchScript exporter: 11..20)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--input-size", type=parse_hw, help="model input HxW (default: dataset size x factor)")
    size.add_argument("--dynamic", action="store_true", help="dynamic height and width")
    parser.add_argument(
        "--fp16", action="store_true", help="float16 weights and compute (uint8 in, same outputs)"
    )
    parser.add_argument("--output-kind", choices=OUTPUT_KINDS, default="logits")
    parser.add_argument(
        "--upsample-to",
        type=_upsample,
        default=None,
        help="bilinear upsampling in the graph (align_corners=False): HxW, or 'original' for the full size",
    )
    parser.add_argument("--exporter", choices=EXPORTERS, default="torchscript")
    parser.add_argument(
        "--resize-in-graph",
        action="store_true",
        help="the graph takes the full image and resizes it with the training filter (torch:bilinear)",
    )
    args = parser.parse_args(argv)
    if args.random_init:
        print(
            "warning: --random-init: exporting the recipe's untrained (randomly initialised) weights; the"
            " predictions are meaningless (the export only checks deployability). The metadata says"
            f" weights={UNTRAINED!r}.",
            file=sys.stderr,
        )
    try:
        report = export_from_recipe(
            args.config_file, args.checkpoint, args.output, overrides=args.opts, opset=args.opset,
            input_size=args.input_size, dynamic=args.dynamic, fp16=args.fp16, output_kind=args.output_kind,
            upsample_to=args.upsample_to, exporter=args.exporter, resize_in_graph=args.resize_in_graph,
        )  # fmt: skip
    except (CheckpointMismatchError, ExportError, FileNotFoundError, OutputPathError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
