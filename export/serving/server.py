"""``softlabelseg-serve``: an exported model behind KServe's ``ModelServer`` (Open Inference Protocol v2,
REST and gRPC), bound to one host (127.0.0.1 unless told otherwise).

KServe provides the protocol: health, readiness, model metadata, infer with the binary-tensor
extension, gRPC, and a graceful stop on SIGTERM (uvicorn finishes the requests in flight, then gRPC
is stopped with the same grace). This module adds what a shared machine needs around it: the bind
address, a request-body limit (413 before the body is read), the status codes of the service's own
refusals, and the classes and colours in the model metadata (``parameters``).
"""

from __future__ import annotations

import argparse
import json
import sys

DEFAULT_MAX_BODY_MB = 64


class BodyLimit:
    """ASGI middleware: a request whose body exceeds ``max_bytes`` gets 413 and is not passed on (by its
    Content-Length when given, else by counting the chunks as they arrive)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self.refuse(send, int(length))
        if length is not None:
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:  # chunked body: read it up to the limit, then replay it
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self.refuse(send, size)
            if not message.get("more_body", False):
                break
        pending = iter(chunks)

        async def replay():
            return next(pending, None) or await receive()

        return await self.app(scope, replay, send)

    async def refuse(self, send, size: int):
        body = json.dumps({"error": f"request body of {size} bytes is above the limit of {self.max_bytes}"
                                    " bytes (--max-body-mb): send a smaller image"}).encode()  # fmt: skip
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="softlabelseg-serve", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="exported .onnx file (export/export_onnx.py)")
    p.add_argument("--name", default="softlabelseg", help="model name in the URLs (/v2/models/<name>)")
    p.add_argument("--version", default="1", help="model version reported in responses")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port")
    p.add_argument("--grpc-port", type=int, default=8081, help="gRPC port; 0 turns gRPC off")
    p.add_argument("--workers", type=int, default=1, help="images segmented at once (threads)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads per image")
    p.add_argument("--max-queue", type=int, default=8,
                   help="requests admitted at once (running + waiting); more get 503")  # fmt: skip
    p.add_argument("--max-connections", type=int, default=64,
                   help="HTTP connections at once; more get 503 (bounds the bodies held)")  # fmt: skip
    p.add_argument("--max-pixels", type=int, default=4096 * 4096, help="largest image H*W accepted (413)")
    p.add_argument("--min-side", type=int, default=8, help="smallest image side accepted (400)")
    p.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_MB, help="largest body (413)")
    p.add_argument(
        "--max-memory-gb",
        type=float,
        default=None,
        help="refuse an image whose estimated memory exceeds this (default: half the machine's)",
    )
    p.add_argument("--grace-s", type=int, default=30, help="seconds SIGTERM waits for requests in flight")
    p.add_argument("--access-log", action="store_true", help="log every request")
    return p


def check_args(parser, args) -> None:
    for key in ("port", "workers", "max_queue", "max_connections", "max_pixels", "min_side", "grace_s"):
        if getattr(args, key) < (0 if key == "grace_s" else 1):
            parser.error(f"--{key.replace('_', '-')} must be positive, got {getattr(args, key)}")
    for key in ("max_body_mb", "max_memory_gb", "threads"):
        value = getattr(args, key)
        if value is not None and not value > 0:
            parser.error(f"--{key.replace('_', '-')} must be > 0, got {value}")
    if args.grpc_port < 0 or args.grpc_port == args.port:
        parser.error(f"--grpc-port must be 0 (off) or a port other than --port, got {args.grpc_port}")


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound now (e.g. another server holds it), or None."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, port))
    except OSError as e:
        return e.strerror or str(e)
    return None


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    for flag, port in (("--port", args.port), ("--grpc-port", args.grpc_port)):
        reason = port_in_use(args.host, port) if port else None
        if reason:
            print(f"error: cannot listen on {args.host}:{port} ({flag}): {reason}; stop the other server"
                  " or choose another port", file=sys.stderr)  # fmt: skip
            return 2
    # kserve parses sys.argv when imported (its own flags, e.g. --model_name): give it none of ours.
    sys.argv = sys.argv[:1]
    from softlabelseg_export.runtime import ModelLoadError

    from .kserve_app import serve

    try:
        return serve(args)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def console_main() -> None:
    sys.exit(main())
