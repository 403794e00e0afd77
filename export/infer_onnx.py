"""Segment an image or a folder with an exported model: onnxruntime + numpy + cv2, no torch.

python export/infer_onnx.py --model model.onnx --input <image or folder> --output <folder> \\
    [--max-memory-gb G] [--threads N] [--alpha 0.5]

Outputs keep each image's sub-folder: <folder>/<sub>/<stem>_labels.png (train ids) and _overlay.png, as
tools/demo.py and the C++ runner write them; two images of one folder that share a stem (a.png, a.jpg) are
refused before any image, naming both. Images are decoded with OpenCV (EXIF orientation applied). Each
PNG is written atomically (complete or absent). The output
folder may not be the input folder or inside it (refused: outputs would overwrite inputs and be read as
inputs by the next run).

Refused before any image: a model whose weights hold NaN or inf (the initializers are named). Skipped and
reported, the run going on: an image that cannot be read, one whose estimated memory exceeds
--max-memory-gb (default: half of this machine's memory; an export that upsamples class scores in-graph
needs the most, the message says which export to use instead), one whose scores come back NaN or inf, an
onnxruntime error (e.g. a failed allocation), an output that cannot be written.

Exit code: 0 all written, 1 some images failed, 2 nothing could be done (bad or broken model, no input,
output folder inside the input folder, two inputs of one stem).
"""

from __future__ import annotations

import argparse
import sys

from softlabelseg.folder_contract import SameStemError
from softlabelseg_export.folder_runner import segment_files
from softlabelseg_export.guards import OutputFolderError
from softlabelseg_export.runtime import ImageReadError, ModelLoadError, OnnxSegmenter


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="exported .onnx file")
    parser.add_argument("--input", required=True, help="an image or a folder of images")
    parser.add_argument(
        "--output", required=True,
        help="folder for <name>_labels.png and <name>_overlay.png (not the input folder nor inside it)",
    )  # fmt: skip
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the colours")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--max-memory-gb", type=float, default=None,
        help="refuse an image whose estimated memory exceeds this (default: half of the machine's memory)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not 0.0 <= args.alpha <= 1.0:  # also refuses nan
        parser.error(f"--alpha must be between 0 and 1, got {args.alpha}")
    if args.max_memory_gb is not None and not args.max_memory_gb > 0:
        parser.error(f"--max-memory-gb must be > 0, got {args.max_memory_gb}")
    budget = None if args.max_memory_gb is None else int(args.max_memory_gb * 2**30)

    try:
        segmenter = OnnxSegmenter(args.model, threads=args.threads, max_memory=budget)
        stats = segment_files(segmenter, args.input, args.output, alpha=args.alpha)
    except (ImageReadError, ModelLoadError, OutputFolderError, SameStemError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for reason in stats.failed:
        print(f"skipped: {reason}", file=sys.stderr)
    print(
        f"{stats.images} image(s) in {stats.seconds:.2f} s: {stats.images_per_second:.2f} images/s"
        f" -> {args.output}" + (f"; {len(stats.failed)} FAILED (listed above)" if stats.failed else "")
    )
    return 1 if stats.failed else 0


if __name__ == "__main__":
    sys.exit(main())
