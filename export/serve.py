"""Serve an exported model over the Open Inference Protocol v2 (KServe's model server; REST + gRPC).

    python export/serve.py --model model.onnx [--port 8080] [--grpc-port 8081] [--host 127.0.0.1] \\
        [--workers 1] [--threads N] [--max-queue 8] [--max-pixels 16777216] [--max-body-mb 64]

The same as the ``softlabelseg-serve`` command (``pip install -e ".[serve]"``). See docs/export.md, "Serve".
Exit code: 0 after SIGTERM / SIGINT (requests in flight finished), 2 a model that cannot be served
or a port already in use.
"""

import sys

from softlabelseg_export.serving.server import main

if __name__ == "__main__":
    sys.exit(main())
