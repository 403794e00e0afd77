"""The exported model as a ``kserve.Model``: admission, request checks, segmentation, response tensors.

Segmentation is :class:`softlabelseg_export.runtime.OnnxSegmenter`, the code ``infer_onnx.py`` runs
(the resize by the model's factor with the training filter, the graph with its calibrated offsets,
the banded bilinear upsampling and argmax), so the service returns the runner's labels pixel for
pixel. Work runs on a pool of ``workers`` threads (onnxruntime and OpenCV release the GIL); at most
``max_queue`` requests are admitted at once (running or waiting) and the next one is answered at once
with :class:`Busy` (HTTP 503, gRPC RESOURCE_EXHAUSTED) instead of growing a queue without bound.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from grpc_interceptor.exceptions import ResourceExhausted
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InferenceError, InvalidInput
from prometheus_client import Gauge

from ..runtime import ORT_ERRORS, ImageTooLargeError, NonFiniteOutputError, OnnxSegmenter, labels_from_scores
from .requests import (
    INPUT_IMAGE,
    INPUT_RGB,
    OUTPUT_LABELS,
    OUTPUT_SCORES,
    BadRequest,
    ImageLimits,
    decode_image,
    encoded_bytes,
    label_dtype,
    output_names,
    raw_image,
)

# On KServe's /metrics: what --max-queue bounds, for operators (and the tests, which wait on it).
ADMITTED = Gauge("softlabelseg_admitted_requests", "requests running or waiting for a worker", ["model"])
DATATYPES = {np.dtype(np.uint8): "UINT8", np.dtype(np.uint16): "UINT16", np.dtype(np.float32): "FP32"}


class Refused(InvalidInput):
    """A :class:`~.requests.BadRequest` on its way out: REST answers ``status`` (400 or 413), gRPC
    INVALID_ARGUMENT, both with the reason."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


class Busy(ResourceExhausted):
    """Every admission slot is taken (``--max-queue``): REST 503 with Retry-After, gRPC RESOURCE_EXHAUSTED."""


class SegmentationModel(Model):
    """An exported ``.onnx`` served under ``name``; see the module docstring for the contract."""

    def __init__(self, name: str, model_path, version: str = "1", threads=None, workers: int = 1,
                 max_queue: int = 8, limits: ImageLimits | None = None, max_memory=None):  # fmt: skip
        super().__init__(name)
        self.segmenter = OnnxSegmenter(model_path, threads=threads, max_memory=max_memory)
        self.meta = self.segmenter.meta
        self.version = str(version)
        self.limits = limits or ImageLimits()
        self.max_queue = int(max_queue)
        self.admitted = 0
        self.executor = ThreadPoolExecutor(max_workers=int(workers), thread_name_prefix="segment")
        self.ready = True

    # Model metadata (OIP v2): tensors, plus the classes and the resize contract as parameters.
    def get_input_types(self) -> list[dict]:
        return [
            {"name": INPUT_IMAGE, "datatype": "BYTES", "shape": [1]},
            {"name": INPUT_RGB, "datatype": "UINT8", "shape": [-1, -1, 3]},
        ]

    def get_output_types(self) -> list[dict]:
        labels = {"name": OUTPUT_LABELS, "datatype": DATATYPES[np.dtype(label_dtype(self.meta.num_classes))],
                  "shape": [-1, -1]}  # fmt: skip
        if self.meta.output_kind == "labels":
            return [labels]
        return [labels, {"name": OUTPUT_SCORES, "datatype": "FP32", "shape": [self.meta.num_classes, -1, -1]}]

    def parameters(self) -> dict:
        """What a client needs beyond the tensors: classes, colours, and how the server (or, with
        ``resize_in_graph``, the graph) resizes."""
        m = self.meta
        return {
            "class_names": list(m.class_names), "class_colors": [list(c) for c in m.class_colors],
            "ignore_value": m.ignore_value, "resolution_factor": m.resolution_factor,
            "image_resize": m.image_resize, "input_size": m.input_size, "resize_in_graph": m.resize_in_graph,
            "output_kind": m.output_kind,
            "weights": m.weights, "max_pixels": self.limits.max_pixels, "min_side": self.limits.min_side,
        }  # fmt: skip

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        if self.admitted >= self.max_queue:
            raise Busy(
                f"server busy: {self.admitted} requests running or queued, the limit (--max-queue) is"
                f" {self.max_queue}; retry later"
            )
        self.admitted += 1
        ADMITTED.labels(self.name).set(self.admitted)
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, self.infer, payload)
        finally:
            self.admitted -= 1
            ADMITTED.labels(self.name).set(self.admitted)

    def infer(self, request: InferRequest) -> InferResponse:
        """The whole request on a worker thread: check and decode, segment, build the response."""
        try:
            image = self.image(request)
            names = output_names([o.name for o in request.request_outputs or []],
                                 self.meta.output_kind != "labels")  # fmt: skip
            labels, scores = self.segment(image, OUTPUT_SCORES in names)
        except BadRequest as e:
            raise Refused(str(e), e.status) from None
        except ImageTooLargeError as e:
            raise Refused(f"{e} (--max-memory-gb)", 413) from None
        except (NonFiniteOutputError, MemoryError, *ORT_ERRORS) as e:
            raise InferenceError(f"{type(e).__name__}: {str(e)[:300]}") from None
        tensors = {OUTPUT_LABELS: labels, OUTPUT_SCORES: scores}
        outputs = []
        for name in names:
            t = tensors[name]
            out = InferOutput(name, list(t.shape), DATATYPES[t.dtype])
            if request.from_grpc:  # raw bytes (KServe 0.21's gRPC encoder cannot take a numpy array)
                out.set_data_from_numpy(t, binary_data=True)
            else:  # numpy: KServe's REST encoder serialises it once, binary or JSON as the client asked
                out.data = t
            outputs.append(out)
        return InferResponse(
            response_id=request.id or str(uuid.uuid4()), model_name=self.name, model_version=self.version,
            infer_outputs=outputs, from_grpc=request.from_grpc,
            use_binary_outputs=request.use_binary_outputs, requested_outputs=request.request_outputs,
        )  # fmt: skip

    def image(self, request: InferRequest) -> np.ndarray:
        """The request's RGB image; exactly one of the two inputs, checked (:mod:`.requests`)."""
        given = [i.name for i in request.inputs]
        if len(given) != 1 or given[0] not in (INPUT_IMAGE, INPUT_RGB):
            raise BadRequest(
                f"send exactly one input, '{INPUT_IMAGE}' (BYTES [1], PNG/JPEG) or '{INPUT_RGB}' (UINT8"
                f" [H, W, 3]); got {given}"
            )
        tensor = request.inputs[0]
        if tensor.name == INPUT_RGB:
            return raw_image(tensor.datatype, tensor.shape, tensor.as_numpy, self.limits)
        if tensor.datatype != "BYTES" or int(np.prod(tensor.shape)) != 1:
            raise BadRequest(
                f"input '{INPUT_IMAGE}' must be BYTES of shape [1] (one encoded image), got"
                f" {tensor.datatype} {list(tensor.shape)}"
            )
        try:
            element = tensor.as_numpy().reshape(-1)[0]
        except (ValueError, TypeError, IndexError) as e:
            raise BadRequest(f"input '{INPUT_IMAGE}' cannot be read as one BYTES element ({e})") from None
        return decode_image(encoded_bytes(element, tensor.parameters), self.limits)

    def segment(self, image: np.ndarray, with_scores: bool):
        """(labels (H, W), graph scores (C, h, w) or None): ``OnnxSegmenter.predict`` when no scores are
        asked for, else its steps with the graph's output kept."""
        dtype = label_dtype(self.meta.num_classes)
        if not with_scores:
            return self.segmenter.predict(image).astype(dtype, copy=False), None
        s = self.segmenter
        s.check_size(*image.shape[:2])
        scores = s.run(s.prepare(image))[0]
        labels = labels_from_scores(scores, image.shape[:2], self.meta.align_corners)
        return labels.astype(dtype, copy=False), np.ascontiguousarray(scores, dtype=np.float32)
