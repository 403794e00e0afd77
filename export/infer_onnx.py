"""Segment an image or a folder with an exported model: onnxruntime + numpy + cv2, no torch.

python export/infer_onnx.py --model model.onnx --input <image or folder> --output <folder>

Outputs keep each image's sub-folder: <folder>/<sub>/<stem>_labels.png (train ids) and _overlay.png;
when two images of one folder share a stem (a.png, a.jpg) the extension stays in the name
(a.png_labels.png, a.jpg_labels.png). An image that fails is reported and skipped. Exit code: 0 all
written, 1 some images failed, 2 nothing could be done (bad model, no input).
"""

from __future__ import annotations

import argparse
import sys

from softlabelseg_export.runtime import ImageReadError, ModelLoadError, OnnxSegmenter, segment_files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="exported .onnx file")
    parser.add_argument("--input", required=True, help="an image or a folder of images")
    parser.add_argument("--output", required=True, help="folder for <name>_labels.png and <name>_overlay.png")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the colours")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    args = parser.parse_args(argv)

    try:
        segmenter = OnnxSegmenter(args.model, threads=args.threads)
        stats = segment_files(segmenter, args.input, args.output, alpha=args.alpha)
    except (ImageReadError, ModelLoadError) as e:
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
