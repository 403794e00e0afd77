"""Trace an :class:`ExportWrapper` to ONNX, attach metadata, run ``onnx.checker``.

Exporter choice: torch 2.14 has both the TorchScript exporter (``dynamo=False``, deprecated but
working) and the torch.export-based one (``dynamo=True``, the default). Both give graphs that match
PyTorch here. We default to TorchScript because it (1) exports HRNetV2-W48 / SegFormer several times
faster on a small CPU, (2) writes graphs that simpler importers (OpenCV's DNN module) parse more often
than the dynamo ones, and (3) supports opsets down to 11. ``exporter="dynamo"`` is available for
opset >= 18 consumers.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
from contextlib import redirect_stdout

import numpy as np
import onnx
import torch
from softlabelseg.utils.fileio import TMP_PREFIX, atomic_write

from .fold import fold_static_shapes
from .metadata import ExportMetadata, write_metadata
from .wrapper import ExportWrapper

EXPORTERS = ("torchscript", "dynamo")
MIN_OPSET = 11  # Resize with align_corners / half_pixel modes
TORCHSCRIPT_MAX_OPSET = 20
DYNAMO_MIN_OPSET = 18
DYNAMO_MAX_OPSET = 23


class ExportError(RuntimeError):
    """The model could not be exported as asked (unsupported op for the opset, bad arguments)."""


def check_opset(opset: int, exporter: str) -> None:
    """Raise :class:`ExportError` when ``opset`` is outside what ``exporter`` supports."""
    if exporter not in EXPORTERS:
        raise ExportError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    low, high = (
        (MIN_OPSET, TORCHSCRIPT_MAX_OPSET)
        if exporter == "torchscript"
        else (DYNAMO_MIN_OPSET, DYNAMO_MAX_OPSET)
    )
    if not low <= opset <= high:
        raise ExportError(f"opset {opset} is not supported by the {exporter} exporter: choose {low}..{high}")


def _unsupported_message(err: Exception, opset: int) -> str:
    text = str(err)
    op = re.search(r"operator '([^']+)'", text) or re.search(r"(aten::\w+|aten\.\w+[.\w]*)", text)
    name = op.group(1) if op else "an operator"
    first_line = text.splitlines()[0] if text else type(err).__name__
    return (
        f"{name} cannot be exported to ONNX opset {opset}: {first_line}."
        f" Try a newer --opset (up to {TORCHSCRIPT_MAX_OPSET} with the TorchScript exporter, "
        f"{DYNAMO_MAX_OPSET} with --exporter dynamo)."
    )


def _trace(wrapper, example, path, opset, dynamic, exporter):
    names = dict(input_names=["image"], output_names=[wrapper.output_kind])
    if exporter == "torchscript":
        axes = {"image": {0: "batch", 2: "height", 3: "width"}} if dynamic else None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", message=".*will be removed.*")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                wrapper, (example,), path, dynamo=False, opset_version=opset, do_constant_folding=True,
                dynamic_axes=axes, **names,
            )  # fmt: skip
    else:
        dim = torch.export.Dim.AUTO
        shapes = ({0: dim, 2: dim, 3: dim},) if dynamic else None
        program = torch.onnx.export(
            wrapper, (example,), dynamo=True, opset_version=opset, dynamic_shapes=shapes,
            external_data=False, optimize=True, **names,
        )  # fmt: skip
        program.save(path, external_data=False)


def declare_static_outputs(model: onnx.ModelProto, example: np.ndarray) -> onnx.ModelProto:
    """``model`` with ONNX shape inference stored in it (outputs and intermediate ``value_info``).

    The TorchScript exporter names output dimensions symbolically (``Castlogits_dim_0``) even when the
    graph is static; after folding, shape inference recovers the numbers. Any dimension it still
    leaves open is taken from one ONNX Runtime run on ``example``, so a static export always declares
    a fully static output.
    """
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    outputs = model.graph.output
    if all(d.HasField("dim_value") for o in outputs for d in o.type.tensor_type.shape.dim):
        return model
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    results = session.run([o.name for o in outputs], {model.graph.input[0].name: example})
    for output, value in zip(outputs, results, strict=True):
        shape = output.type.tensor_type.shape
        del shape.dim[:]
        for n in value.shape:
            shape.dim.add().dim_value = int(n)
    return model


def check_resize_in_graph(
    wrapper: ExportWrapper, metadata: ExportMetadata, fp16: bool, exporter: str = "torchscript"
) -> bool:
    """Whether ``wrapper`` resizes the image in the graph; raises :class:`ExportError` when it cannot do
    so faithfully: only the ``torch:bilinear`` filter without antialias is built in the graph (the one
    :func:`~.wrapper.shrink_image` reproduces), in float32 (not with ``fp16``: float16 holds 0..255 to
    1/8 only), not together with in-graph upsampling, and a size that follows the input's shape only with
    the TorchScript exporter (torch.export cannot trace it)."""
    if wrapper.resize_to is None and wrapper.resize_factor is None:
        return False
    mode = metadata.image_resize
    if mode != "torch:bilinear" or metadata.image_antialias:
        aa = " with antialias" if metadata.image_antialias else ""
        raise ExportError(
            f"--resize-in-graph builds the torch:bilinear filter (no antialias) only; this model trains with"
            f" {mode}{aa}: export without --resize-in-graph (the runners resize with that filter)")
    if fp16:
        raise ExportError("--resize-in-graph with --fp16: the in-graph resize needs float32 to round like "
                          "the training; export without one of them")
    if wrapper.upsample_to is not None or wrapper.upsample_scale is not None:
        raise ExportError("--resize-in-graph with --upsample-to is not supported: the graph returns scores at"
                          " the model's size and the runners upsample them; leave --upsample-to out")
    if wrapper.resize_factor is not None and exporter != "torchscript":
        raise ExportError("--resize-in-graph with --dynamic needs --exporter torchscript (the dynamo "
                          "exporter cannot size the resize from the image's shape); or export a static size")
    return True


def export_onnx(
    wrapper: ExportWrapper,
    path: str | os.PathLike,
    metadata: ExportMetadata,
    input_size: tuple[int, int],
    dynamic: bool = False,
    opset: int = 17,
    exporter: str = "torchscript",
    fp16: bool = False,
) -> onnx.ModelProto:
    """Export ``wrapper`` traced on a (1, 3, *input_size) uint8 image and write ``path``.

    A static graph is fully static (batch 1) with its shape arithmetic folded (:mod:`.fold`) and
    static output shapes declared (:func:`declare_static_outputs`); ``dynamic`` makes batch,
    height and width dynamic (``input_size`` is then only the tracing size). ``metadata`` is completed
    (input size, opset, exporter, output kind) and stored as JSON ``metadata_props``. ``fp16``
    converts weights and compute to float16 after tracing (input uint8 and outputs unchanged).
    A ``wrapper`` that resizes in the graph (:func:`check_resize_in_graph`) takes the full image: its
    height and width are dynamic, it is traced at ``input_size`` / the metadata's factor, and
    ``input_size`` is the model size it resizes to (with ``dynamic``: only the tracing size).
    Returns the checked ``onnx.ModelProto``.

    ``path`` is replaced atomically: the graph is traced to a temporary file in its folder and the
    final model written through :func:`softlabelseg.utils.fileio.atomic_write`, so an export that fails
    or is killed leaves an earlier file at ``path`` as it was (at most a ``.tmp_*`` file beside it).
    """
    check_opset(opset, exporter)
    resizes = check_resize_in_graph(wrapper, metadata, fp16, exporter)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    wrapper = wrapper.eval()
    # a graph that resizes takes the full image (any H x W): traced at the size the model size comes from
    f = float(metadata.resolution_factor)
    traced_size = tuple(max(1, round(v / f)) for v in input_size) if resizes else tuple(input_size)
    example = torch.randint(0, 256, (1, 3, *traced_size), dtype=torch.uint8)
    fd, traced = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.path.basename(path)}.", suffix=".onnx", dir=folder)
    os.close(fd)
    try:
        with torch.no_grad(), redirect_stdout(io.StringIO()):  # progress lines and IR dumps
            _trace(wrapper, example, traced, opset, dynamic or resizes, exporter)
        model = onnx.load(traced)
    except torch.onnx.errors.UnsupportedOperatorError as e:
        raise ExportError(_unsupported_message(e, opset)) from e
    except torch.onnx.errors.SymbolicValueError as e:
        raise ExportError(_unsupported_message(e, opset)) from e
    except Exception as e:
        if "Unsupported" in type(e).__name__ or "not supported" in str(e) or "No decompositions" in str(e):
            raise ExportError(_unsupported_message(e, opset)) from e
        raise
    finally:
        if os.path.exists(traced):
            os.remove(traced)
    static = not (dynamic or resizes)
    if static:
        model = fold_static_shapes(model)
    if fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(model, keep_io_types=True)
    if static:
        model = declare_static_outputs(model, example.numpy())
    metadata.input_size = None if dynamic else [int(v) for v in input_size]
    metadata.output_kind = wrapper.output_kind
    metadata.output_size = list(wrapper.upsample_to) if wrapper.upsample_to else None
    metadata.output_scale = wrapper.upsample_scale
    metadata.align_corners = wrapper.align_corners
    metadata.resize_in_graph = resizes
    metadata.precision = "fp16" if fp16 else "fp32"
    metadata.opset, metadata.exporter = opset, exporter
    write_metadata(model, metadata)
    model.producer_name = "softlabelseg_export"
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return model
