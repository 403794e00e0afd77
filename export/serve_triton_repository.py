"""Write a Triton Inference Server model repository for an exported model.

    python export/serve_triton_repository.py --model model.onnx --output <repository> [--name softlabelseg]

Writes <repository>/<name>/1/model.onnx and <repository>/<name>/config.pbtxt (the graph's input and
output names, dtypes and dims, and the export metadata as parameters). Triton runs the graph only: its
clients resize the image to the graph's input first (docs/export.md, "Serve"). An existing
<repository>/<name> is refused. Exit code: 0 written, 2 refused.
"""

import sys

from softlabelseg_export.serving.triton import main

if __name__ == "__main__":
    sys.exit(main())
