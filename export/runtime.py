"""Full-resolution serving pipeline with onnxruntime, numpy and cv2 only (never imports torch).

image (H, W, 3) -> resize by the model's resolution factor with the training filter -> graph ->
bilinear upsampling of the scores to (H, W) with the exported ``align_corners`` -> argmax -> labels.

The upsampling and the argmax run together on bands of output rows (:func:`labels_from_scores`), so
memory stays at the graph's output plus one band, whatever the class count times the full resolution.
A model whose weights hold NaN or inf is refused before any image. An image whose estimated memory
(:func:`estimate_peak_bytes`) exceeds the budget is refused, and a folder run reports and skips an image
that fails (unreadable, too large, NaN scores, an onnxruntime error such as a failed allocation, not
writable) and goes on (:mod:`softlabelseg_export.folder_runner`). ``ImageReadError`` and ``read_image`` are
the folder tools' own (:mod:`softlabelseg.folder_contract`), re-exported here.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import onnxruntime as ort
from softlabelseg.folder_contract import ImageReadError, blend, palette, read_image  # noqa: F401

from softlabel_ops.filters import torch_linear
from softlabel_ops.modes import DEFAULT_OPENCV_MODE, spec_of
from softlabel_ops.taps import apply_taps

from .guards import available_memory, first_names, nonfinite_initializers
from .metadata import ExportMetadata, cv2_flags, read_metadata

# Float32 copies of the graph's class scores alive at once at its end (the upsampled scores and the
# softmax / argmax working copy), and the runner's own bytes per image pixel (RGB image, labels, overlay).
SCORE_COPIES = 2
RUNNER_BYTES_PER_PIXEL = 8
# Every exception class of onnxruntime's bindings (RuntimeException, Fail, ...): they derive from
# Exception only, not from RuntimeError.
ORT_ERRORS = tuple(
    cls for cls in vars(ort.capi.onnxruntime_pybind11_state).values()
    if isinstance(cls, type) and issubclass(cls, Exception)
)  # fmt: skip


class ModelLoadError(RuntimeError):
    """An .onnx file that is missing, corrupt, not an exported SoftLabelSeg model, or holds NaN / inf
    weights."""


class ImageTooLargeError(MemoryError):
    """An image whose estimated peak memory with this export exceeds the runner's budget."""


class NonFiniteOutputError(RuntimeError):
    """The graph returned NaN or inf scores for an image."""


def default_memory_budget() -> int:
    """Half of :func:`~softlabelseg_export.guards.available_memory` (RAM, cgroup or ulimit, the lowest)."""
    return available_memory() // 2


def open_session(model_path, options=None, providers=None) -> ort.InferenceSession:
    """An onnxruntime session for ``model_path`` (a path or serialized bytes); raises
    :class:`ModelLoadError` naming the file instead of onnxruntime's protobuf errors."""
    name = model_path if isinstance(model_path, (str, os.PathLike)) else "<serialized model>"
    if isinstance(model_path, (str, os.PathLike)) and not os.path.isfile(model_path):
        raise ModelLoadError(f"ONNX model {os.fspath(model_path)!r} does not exist")
    try:
        return ort.InferenceSession(
            os.fspath(model_path) if isinstance(model_path, os.PathLike) else model_path,
            options or ort.SessionOptions(),
            providers=providers or ["CPUExecutionProvider"],
        )
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(
            f"{os.fspath(name)!r} is not a loadable ONNX model ({first[:200]}); the file is corrupt or "
            "truncated: export it again with export/export_onnx.py"
        ) from None


def input_size_for(height: int, width: int, meta: ExportMetadata) -> tuple[int, int]:
    """Model input (h, w) for an original (height, width): the static size, or size * factor rounded."""
    if meta.input_size is not None:
        return int(meta.input_size[0]), int(meta.input_size[1])
    f = float(meta.resolution_factor)
    return max(1, int(round(height * f))), max(1, int(round(width * f)))


def resize_image(
    image: np.ndarray, size: tuple[int, int], mode: str = DEFAULT_OPENCV_MODE, antialias: bool = False
) -> np.ndarray:
    """Resize a uint8 (H, W, 3) image to ``size`` (h, w) the way the training data mapper does for
    ``mode`` ("<library>:<filter>"), with cv2 only: the mode's OpenCV flags (:func:`cv2_flags`). cv2 modes
    are the reference itself; modes whose library resizes in float32 (the registry's ``float_image``:
    torch) resize float32 and round half to even as the data mapper does (same geometry, equal up to float
    rounding); torch antialias and Pillow modes are approximated (box filter for downscaling)."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    shrinking = size[0] < image.shape[0] and size[1] < image.shape[1]
    flag = cv2_flags(mode, antialias)[1 if shrinking else 0]
    if spec_of(mode).float_image:
        out = cv2.resize(image.astype(np.float32), (size[1], size[0]), interpolation=flag)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return cv2.resize(image, (size[1], size[0]), interpolation=flag)


def _bilinear(n_in: int, n_out: int, align_corners: bool):
    """Tap table of PyTorch's bilinear ``F.interpolate`` of float32 scores along one axis (softlabel_ops'
    torch:bilinear taps, in float32 arithmetic as PyTorch computes them for float32 tensors)."""
    return torch_linear(n_in, n_out, align_corners, np.float32)


def upsample_scores(scores: np.ndarray, size: tuple[int, int], align_corners: bool = False) -> np.ndarray:
    """Bilinear resize of (C, h, w) float scores to (C, H, W) with PyTorch ``align_corners`` semantics.

    ``align_corners=False`` uses cv2.resize (same half-pixel geometry as PyTorch, ~50x faster than a
    numpy gather), True a separable numpy gather. Values match ``F.interpolate`` up to float32
    rounding of the sampling coordinates (~1e-6 relative).
    """
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    c, h, w = scores.shape
    if (h, w) == tuple(size):
        return scores
    if not align_corners:
        chunks = [
            cv2.resize(
                scores[i : i + 256].transpose(1, 2, 0), (size[1], size[0]), interpolation=cv2.INTER_LINEAR
            )
            for i in range(0, c, 256)
        ]
        chunks = [ch[:, :, None] if ch.ndim == 2 else ch for ch in chunks]
        return np.concatenate(chunks, axis=2).transpose(2, 0, 1)
    rows = apply_taps(scores, *_bilinear(w, size[1], True), axis=2)
    return apply_taps(rows, *_bilinear(h, size[0], True), axis=1)


def graph_output_pixels(height: int, width: int, meta: ExportMetadata) -> int:
    """Pixels of the class scores the graph computes for an original (height, width) image: the model
    input, or the in-graph upsampling's size (``output_size``, or the input times ``output_scale``)."""
    if meta.output_size:
        return int(meta.output_size[0]) * int(meta.output_size[1])
    h, w = input_size_for(height, width, meta)
    if meta.output_scale:
        s = float(meta.output_scale)
        return int(round(h * s)) * int(round(w * s))
    return h * w


def estimate_peak_bytes(height: int, width: int, meta: ExportMetadata) -> int:
    """Estimated memory to segment an original (height, width) image: :data:`SCORE_COPIES` float32 copies
    of the graph's (C, h, w) scores plus the runner's image, labels and overlay. The model's own
    activations are not counted; with in-graph upsampling the scores dominate at large sizes."""
    scores = SCORE_COPIES * 4 * meta.num_classes * graph_output_pixels(height, width, meta)
    return scores + RUNNER_BYTES_PER_PIXEL * int(height) * int(width)


def _band_rows(num_classes: int, width: int, max_bytes: int) -> int:
    return max(1, int(max_bytes) // max(1, num_classes * width * 4 * 3))


def labels_from_scores(
    scores: np.ndarray, size: tuple[int, int], align_corners: bool = False, max_bytes: int = 64 << 20
) -> np.ndarray:
    """argmax over classes of the bilinear upsampling of (C, h, w) ``scores`` to ``size`` = (H, W), as
    uint8 (H, W) labels (int32 above 255 classes), without materialising the (C, H, W) scores.

    Bands of output rows are interpolated (PyTorch ``F.interpolate`` geometry, float32) and reduced at
    once; a band's temporaries stay under about ``max_bytes``. Equal to ``upsample_scores(...).argmax(0)``
    except at near-ties (top-2 gap of float rounding size), where either class may win.
    """
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    c, h, w = scores.shape
    height, width = int(size[0]), int(size[1])
    iy, wy = _bilinear(h, height, align_corners)
    ix, wx = _bilinear(w, width, align_corners)
    out = np.empty((height, width), np.uint8 if c <= 256 else np.int32)
    band = _band_rows(c, width, max_bytes)
    for top in range(0, height, band):
        rows = slice(top, min(top + band, height))
        vert = apply_taps(scores, iy[rows], wy[rows], axis=1)  # (C, band, w)
        full = apply_taps(vert, ix, wx, axis=2)  # (C, band, W)
        out[rows] = full.argmax(axis=0)
    return out


def colorize(labels: np.ndarray, colors, ignore_value: int = 255) -> np.ndarray:
    """RGB uint8 (H, W, 3) picture of a label map with the folder tools' palette (ignore and unknown ids
    black, :func:`softlabelseg.folder_contract.palette`)."""
    return palette(colors, ignore_value)[labels]


def overlay(image: np.ndarray, color: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the colourised labels over the RGB image."""
    return cv2.addWeighted(image, 1.0 - alpha, color, alpha, 0.0)


def overlay_labels(image: np.ndarray, labels: np.ndarray, meta: ExportMetadata, alpha: float = 0.5
                   ) -> np.ndarray:
    """RGB uint8 (H, W, 3): the labels in the model's class colours blended over the image, as every folder
    tool draws it (:func:`softlabelseg.folder_contract.blend`)."""
    return blend(image, labels, palette(meta.class_colors, meta.ignore_value), alpha)


def check_graph_input(session: ort.InferenceSession, meta: ExportMetadata, name: str) -> None:
    """Raise :class:`ModelLoadError` when the metadata's ``input_size`` is not what the graph's input takes
    (a static size the graph does not have, or a dynamic one where the graph is static): every image
    would fail in onnxruntime instead. A graph that resizes itself takes any size (nothing to check)."""
    if meta.resize_in_graph:
        return
    shape = session.get_inputs()[0].shape
    graph = [d if isinstance(d, int) else None for d in shape[-2:]] if len(shape) == 4 else [None, None]
    said = list(meta.input_size) if meta.input_size is not None else [None, None]
    if all(g is None or s == g for g, s in zip(graph, said, strict=True)):
        return
    raise ModelLoadError(
        f"{name!r}: its metadata says input_size {meta.input_size or 'dynamic'}, but the graph takes "
        f"{'x'.join(str(g) if g else '?' for g in graph)}: the metadata does not belong to this graph; "
        "export it again with export/export_onnx.py")


class OnnxSegmenter:
    """An exported model plus its metadata; ``predict`` maps an RGB image to full-size labels.

    Raises :class:`ModelLoadError` for a file that cannot serve: corrupt, without our metadata, or with
    initializers holding NaN or inf (named). ``max_memory`` (bytes, default :func:`default_memory_budget`)
    bounds :func:`estimate_peak_bytes` of an image; ``predict`` refuses a larger one.
    """

    def __init__(
        self, model_path: str | os.PathLike, threads: int | None = None, providers=None, max_memory=None
    ):
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = open_session(model_path, options, providers)
        name = os.fspath(model_path) if isinstance(model_path, (str, os.PathLike)) else "<serialized model>"
        broken = nonfinite_initializers(model_path)
        if broken:
            raise ModelLoadError(
                f"{name!r} holds NaN or inf weights in {len(broken)} initializer(s) ({first_names(broken)}): "
                "every prediction would be meaningless. Export it again from a checkpoint with finite "
                "weights (export/export_onnx.py names the tensors of a broken checkpoint)."
            )
        self.max_memory = int(max_memory) if max_memory is not None else default_memory_budget()
        try:
            self.meta = read_metadata(self.session)
        except (KeyError, ValueError, TypeError) as e:
            raise ModelLoadError(
                f"{os.fspath(model_path)!r} carries no usable SoftLabelSeg export metadata ({e}); export it "
                "with export/export_onnx.py"
            ) from None
        self.input_name = self.session.get_inputs()[0].name
        check_graph_input(self.session, self.meta, name)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """uint8 (1, 3, h, w) model input for an RGB (H, W, 3) image (the image itself, (1, 3, H, W), when
        the graph resizes it: ``meta.resize_in_graph``)."""
        if self.meta.resize_in_graph:
            return np.ascontiguousarray(image.transpose(2, 0, 1)[None])
        size = input_size_for(image.shape[0], image.shape[1], self.meta)
        small = resize_image(image, size, self.meta.image_resize, self.meta.image_antialias)
        return np.ascontiguousarray(small.transpose(2, 0, 1)[None])

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Raw graph output for a uint8 (N, 3, h, w) batch; raises :class:`NonFiniteOutputError` when
        float scores hold NaN or inf."""
        out = self.session.run(None, {self.input_name: batch})[0]
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            bad = int(out.size - np.isfinite(out).sum())
            raise NonFiniteOutputError(
                f"the model returned {bad} NaN or inf score(s) of {out.size}: its weights are broken or a "
                "float16 export overflows; export it again from a good checkpoint (without --fp16)"
            )
        return out

    def check_size(self, height: int, width: int) -> None:
        """Raise :class:`ImageTooLargeError` when :func:`estimate_peak_bytes` exceeds ``max_memory``."""
        need = estimate_peak_bytes(height, width, self.meta)
        if need <= self.max_memory:
            return
        m = self.meta
        text = f"{width}x{height} image needs about {need / 2**30:.2f} GB with this export"
        text += f" (limit {self.max_memory / 2**30:.2f} GB, --max-memory-gb)"
        if m.output_size or m.output_scale:
            size = "a fixed size" if m.output_size else "the image's full size"
            text += (
                f": the graph upsamples {m.num_classes} class scores to {size} in memory. Export with"
                " --output-kind logits and without --upsample-to (the runner then upsamples in bounded"
                " memory), or resize the image"
            )
        else:
            text += ": resize the image, or raise --max-memory-gb if the machine has the memory"
        raise ImageTooLargeError(text)

    def predict_scores(self, image: np.ndarray) -> np.ndarray:
        """Float32 (C, H, W) logits or probabilities at the image's size (not for "labels" graphs)."""
        if self.meta.output_kind == "labels":
            raise ValueError(
                "this graph returns labels; export with --output-kind logits or probs for scores"
            )
        scores = self.run(self.prepare(image))[0]
        return upsample_scores(scores, image.shape[:2], self.meta.align_corners)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """uint8 (H, W) train-id labels for an RGB (H, W, 3) image (upsampling fused with the argmax);
        refuses an image over the memory budget (:meth:`check_size`) before running it."""
        self.check_size(*image.shape[:2])
        if self.meta.output_kind != "labels":
            scores = self.run(self.prepare(image))[0]
            return labels_from_scores(scores, image.shape[:2], self.meta.align_corners)
        labels = self.run(self.prepare(image))[0]
        if labels.shape != image.shape[:2]:  # labels graph without in-graph upsampling: nearest only
            labels = cv2.resize(
                labels, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST_EXACT
            )
        return labels.astype(np.uint8)
