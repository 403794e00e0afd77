"""KServe's ``ModelServer`` for one :class:`~.model.SegmentationModel`, bound to one host.

KServe binds 0.0.0.0 (REST) and [::] (gRPC) itself; :class:`LocalModelServer` binds the address it is
given instead, and adds the request-body limit, the status codes of the service's refusals and the
model metadata's ``parameters`` (classes, colours, resize contract) to KServe's REST app. Imported only
by ``server.main`` after it has cleared ``sys.argv`` (kserve parses it on import).
"""

from __future__ import annotations

import logging
from concurrent import futures

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, ORJSONResponse, Response
from grpc import aio
from kserve import InferInput, InferRequest, ModelServer
from kserve.errors import ModelNotReady
from kserve.model_server import app
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import RequestedOutput
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from pydantic import ValidationError

from .model import Busy, Refused, SegmentationModel
from .requests import ImageLimits
from .server import BodyLimit

BINARY_HEADER = "inference-header-content-length"  # the binary tensor extension's JSON length


def decode_rest(body: bytes, headers: dict, model_name: str) -> InferRequest:
    """An ``InferRequest`` from a REST body: JSON, or JSON + binary tensors (the extension tritonclient
    uses). Binary tensors keep their bytes: KServe 0.21's own decoder turns them into Python lists
    (6 M objects for a 1024x2048 RGB image) and refuses BYTES that are not UTF-8, such as a PNG."""
    length = headers.get(BINARY_HEADER)
    if length is None:
        try:
            return InferRequest.from_inference_request(InferenceRequest.model_validate_json(body), model_name)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ()))
            raise Refused(f"the body is not an inference request: {where}: {first.get('msg')}") from None
    try:
        n = int(length)
        header = orjson.loads(body[:n])
        specs = list(header["inputs"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise Refused(f"the first {length} bytes ({BINARY_HEADER}) are not a JSON inference header") from None
    if not all(isinstance(spec, dict) for spec in specs):
        raise Refused("'inputs' of the inference header must be a list of objects")
    if any("binary_data_size" not in (spec.get("parameters") or {}) for spec in specs):
        return InferRequest.from_bytes(body, n, model_name)  # some data in the JSON: KServe's decoder
    inputs, raw, offset = [], [], n
    for spec in specs:
        params = dict(spec["parameters"])
        size = params["binary_data_size"]
        if not isinstance(size, int) or size < 0 or offset + size > len(body):
            raise Refused(f"input {spec.get('name')!r}: binary_data_size {size!r} does not fit the body"
                          f" ({len(body) - offset} bytes left after the header)")  # fmt: skip
        inputs.append(InferInput(name=spec.get("name"), shape=spec.get("shape") or [],
                                 datatype=spec.get("datatype"), parameters=params))  # fmt: skip
        raw.append(body[offset : offset + size])
        offset += size
    outputs = [RequestedOutput(str(o.get("name")), o.get("parameters"))
               for o in header.get("outputs") or [] if isinstance(o, dict)]  # fmt: skip
    return InferRequest(model_name, inputs, request_id=header.get("id"), raw_inputs=raw,
                        parameters=header.get("parameters"), request_outputs=outputs or None)  # fmt: skip


class LocalGRPCServer(GRPCServer):
    """KServe's gRPC server on ``host:port`` with ``max_message`` bytes per message."""

    def __init__(self, host: str, max_message: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.host, self.max_message = host, int(max_message)

    async def start(self, max_workers):
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(ExceptionToStatusInterceptor(),),
            options=[("grpc.max_send_message_length", self.max_message),
                     ("grpc.max_receive_message_length", self.max_message)],
        )  # fmt: skip
        servicer = InferenceServicer(self._data_plane, self._model_repository_extension)
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        if not self._server.add_insecure_port(f"{self.host}:{self._port}"):
            raise OSError(f"cannot bind gRPC to {self.host}:{self._port}")
        await self._server.start()
        await self._server.wait_for_termination()


class LocalModelServer(ModelServer):
    """``ModelServer`` on ``host`` with a ``max_body`` byte limit on REST bodies and gRPC messages."""

    def __init__(self, host: str, max_body: int, max_connections: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.host, self.max_body, self.max_connections = host, int(max_body), max_connections

    def start(self, models) -> None:
        self._install_app_extras()
        enable_grpc, self.enable_grpc = self.enable_grpc, False  # started below, on our host
        try:
            self._register_and_check_atleast_one_model_is_ready(models)
        finally:
            self.enable_grpc = enable_grpc
        from kserve.protocol.rest.server import RESTServer

        self._rest_server = RESTServer(
            "kserve.model_server:app", self.dataplane, self.model_repository_extension, self.http_port,
            workers=1, grace_period=self.grace_period, timeout_keep_alive=self.timeout_keep_alive,
        )  # fmt: skip
        self._rest_server.config.host = self.host
        self._rest_server.config.limit_concurrency = self.max_connections  # uvicorn answers 503 beyond
        self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            self._grpc_server = LocalGRPCServer(
                self.host, self.max_body, self.grpc_port, self.dataplane, self.model_repository_extension,
                kwargs={}, grace_period=self.grace_period,
            )  # fmt: skip
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()
        import asyncio

        asyncio.run(self._serve())

    def _install_app_extras(self) -> None:
        """Body limit, refusal status codes and the metadata route, registered before KServe's own
        routes and handlers (the first matching route wins; a handler is found by exception class)."""
        app.add_middleware(BodyLimit, max_bytes=self.max_body)

        async def refused(_, exc: Refused):
            return JSONResponse(status_code=exc.status, content={"error": exc.reason})

        async def busy(_, exc: Busy):
            return JSONResponse(status_code=503, content={"error": exc.details}, headers={"Retry-After": "1"})

        app.add_exception_handler(Refused, refused)
        app.add_exception_handler(Busy, busy)
        dataplane = self.dataplane

        async def model_metadata(model_name: str):
            base = await dataplane.model_metadata(model_name)  # ModelNotFound -> 404
            model = dataplane.get_model_from_registry(model_name)
            return {**base, "versions": [model.version], "platform": "onnxruntime_onnx",
                    "parameters": model.parameters()}  # fmt: skip

        async def infer(model_name: str, request: Request):
            if not await dataplane.model_ready(model_name, True):  # ModelNotFound -> 404
                raise ModelNotReady(model_name)
            headers = dict(request.headers)
            infer_request = decode_rest(await request.body(), headers, model_name)
            response, response_headers = await dataplane.infer(model_name, infer_request, headers)
            body, extra = dataplane.encode(model_name, response, headers, req_attributes={})
            response_headers = {k: v for k, v in {**response_headers, **extra}.items()
                                if k.lower() not in ("content-length", "content-type")}  # fmt: skip
            if isinstance(body, bytes):
                return Response(body, headers=response_headers, media_type="application/octet-stream")
            return ORJSONResponse(body, headers=response_headers)

        app.add_api_route("/v2/models/{model_name}", model_metadata, methods=["GET"])
        app.add_api_route("/v2/models/{model_name}/infer", infer, methods=["POST"])


def serve(args) -> int:
    """Load the model (raises ``ModelLoadError``), then serve until SIGTERM / SIGINT; returns 0."""
    limits = ImageLimits(max_pixels=args.max_pixels, min_side=args.min_side)
    budget = None if args.max_memory_gb is None else int(args.max_memory_gb * 2**30)
    model = SegmentationModel(args.name, args.model, version=args.version, threads=args.threads,
                              workers=args.workers, max_queue=args.max_queue, limits=limits,
                              max_memory=budget)  # fmt: skip
    server = LocalModelServer(
        host=args.host, max_body=int(args.max_body_mb * 2**20), max_connections=args.max_connections,
        http_port=args.port,
        grpc_port=args.grpc_port or 1, enable_grpc=bool(args.grpc_port), grace_period=args.grace_s,
        enable_latency_logging=False,
    )  # fmt: skip
    if not args.access_log:  # uvicorn's line and KServe's timing lines, per request
        logging.getLogger("uvicorn.access").disabled = True
        logging.getLogger("kserve.trace").disabled = True
    print(f"serving {args.model} as '{args.name}' on http://{args.host}:{args.port}"
          + (f" and grpc {args.host}:{args.grpc_port}" if args.grpc_port else ""), flush=True)  # fmt: skip
    server.start([model])
    return 0
