"""Recipe-level steps behind the command-line tools: export a checkpoint, verify an exported file."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np
from softlabelseg.utils.fileio import check_output_file

from .exporter import ExportError, export_onnx
from .metadata import UNTRAINED, ExportMetadata, read_metadata
from .recipe import default_input_size, load_model, load_recipe, recipe_metadata, recipe_resolution
from .verification import VerifyResult, check_resolution_factor, load_onnx, verify, wrapper_from_metadata
from .wrapper import ExportWrapper

TRACE_SIZE = (64, 128)  # tracing size of dynamic exports when the recipe fixes none


@dataclass
class ExportReport:
    path: str
    metadata: ExportMetadata
    seconds: float

    def summary(self) -> str:
        m = self.metadata
        size_mb = os.path.getsize(self.path) / 2**20
        shape = "dynamic" if m.input_size is None else "x".join(map(str, m.input_size))
        if m.resize_in_graph:
            to = "the factor" if m.input_size is None else shape
            shape = f"HxW (the full image, resized in the graph to {to})"
        out = (
            m.output_size
            and "x".join(map(str, m.output_size))
            or (f"input x {m.output_scale:g}" if m.output_scale else "input size")
        )
        return (
            f"wrote {self.path} ({size_mb:.1f} MB) in {self.seconds:.1f} s: input uint8 1x3x{shape}"
            f" (factor {m.resolution_factor:g}, {m.image_resize}), output {m.output_kind} at {out},"
            f" opset {m.opset} ({m.exporter}), {m.precision}, {m.num_classes} classes,"
            f" weights {m.weights}; onnx.checker passed"
        )


def check_trace_memory(size: tuple[int, int], num_classes: int) -> None:
    """Raise :class:`ExportError` when tracing at ``size`` cannot fit this machine: the float32 input and
    class scores alone (a lower bound; activations come on top) against half of its memory."""
    from .guards import available_memory

    need = 4 * int(size[0]) * int(size[1]) * (3 + int(num_classes))
    budget = available_memory() // 2
    if need > budget:
        raise ExportError(
            f"--input-size {size[0]}x{size[1]}: tracing needs more than {need / 2**30:.1f} GB (input and "
            f"{num_classes} class scores in float32, before any activation), over half of this machine's "
            f"memory ({budget / 2**30:.1f} GB). Export at the model's input size (leave --input-size out) or "
            "with --dynamic; the runners upsample to any image size.")


def resolve_upsampling(upsample_to, input_size, dynamic: bool, cfg):
    """(upsample_to, upsample_scale) for ``--upsample-to``: None, (H, W), or "original" (the dataset's
    evaluation size for static graphs, input / factor for dynamic ones)."""
    if upsample_to is None:
        return None, None
    if upsample_to != "original":
        if dynamic:
            raise ExportError(
                "--upsample-to HxW needs a static input: use --upsample-to original with --dynamic"
            )
        return tuple(upsample_to), None
    res = recipe_resolution(cfg)
    if dynamic:
        return None, 1.0 / res["factor"]
    if res["full_size"] is not None and default_input_size(cfg) == tuple(input_size):
        return tuple(res["full_size"]), None
    return (round(input_size[0] / res["factor"]), round(input_size[1] / res["factor"])), None


def export_from_recipe(
    config_file: str,
    checkpoint: str | None,
    output: str,
    *,
    overrides=(),
    opset: int = 17,
    input_size: tuple[int, int] | None = None,
    dynamic: bool = False,
    fp16: bool = False,
    output_kind: str = "logits",
    upsample_to=None,
    exporter: str = "torchscript",
    resize_in_graph: bool = False,
) -> ExportReport:
    """Build the recipe's model, load ``checkpoint`` strictly (None: keep the untrained
    initialisation, recorded as such in the metadata), export it to ``output``. ``resize_in_graph``:
    the graph takes the full image and shrinks it itself (to the model size, or by the factor when
    ``dynamic``; :func:`~.exporter.check_resize_in_graph`)."""
    start = time.perf_counter()
    # before the minutes of building and tracing: never replace the checkpoint, the recipe or another file
    check_output_file(output, reads=(checkpoint, config_file), suffixes=(".onnx",))
    cfg = load_recipe(config_file, overrides)
    model, saved = load_model(cfg, checkpoint, config_name=config_file)  # the checkpoint's one read
    if checkpoint:  # untrained weights have no training factor to cross-check
        check_resolution_factor(cfg, checkpoint, saved)
    meta = recipe_metadata(cfg, model, model_name=os.path.splitext(os.path.basename(config_file))[0])
    meta.weights = os.path.basename(checkpoint) if checkpoint else UNTRAINED
    size = input_size or default_input_size(cfg)
    if size is None:
        if not dynamic:
            raise ExportError(
                f"{config_file} fixes no evaluation size for its dataset: give --input-size HxW or --dynamic"
            )
        size = TRACE_SIZE
    check_trace_memory(size, meta.num_classes)
    up_to, up_scale = resolve_upsampling(upsample_to, size, dynamic, cfg)
    resize = {}
    if resize_in_graph:
        resize = {"resize_factor": meta.resolution_factor} if dynamic else {"resize_to": size}
    wrapper = ExportWrapper(model, output_kind, upsample_to=up_to, upsample_scale=up_scale, **resize)
    export_onnx(wrapper, output, meta, size, dynamic=dynamic, opset=opset, exporter=exporter, fp16=fp16)
    return ExportReport(os.fspath(output), meta, time.perf_counter() - start)


def _fit(image_chw: np.ndarray, meta: ExportMetadata) -> np.ndarray:
    """The mapper's test image, resized to a static graph's input size when they differ."""
    if meta.input_size is None or tuple(image_chw.shape[1:]) == tuple(meta.input_size):
        return image_chw
    from .runtime import resize_image

    hwc = resize_image(image_chw.transpose(1, 2, 0), tuple(meta.input_size), meta.image_resize)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))


def dataset_images(cfg, meta: ExportMetadata, num_images: int, dataset: str | None = None):
    """Yield up to ``num_images`` uint8 (3, h, w) test images of ``dataset`` (default: the recipe's
    test set) through the recipe's test mapper, or as the Python runner prepares files when the
    recipe defines no test mapper (a model-only config)."""
    from softlabelseg.config import instantiate
    from softlabelseg.data import DatasetCatalog

    test = cfg.get("dataloader", {}).get("test") if hasattr(cfg, "get") else None
    dataset = dataset or (test.get("dataset") if test is not None else None)
    if not dataset:
        raise ValueError("the recipe has no dataloader.test.dataset: give --dataset NAME or --images FOLDER")
    records = DatasetCatalog.get(dataset)[:num_images]
    if test is None or test.get("mapper") is None:
        yield from _prepared_files([r["file_name"] for r in records], meta)
        return
    mapper = instantiate(test.mapper)
    for record in records:
        yield _fit(mapper(record)["image"].numpy(), meta)


def _prepared_files(paths, meta: ExportMetadata, skip_unreadable: bool = False):
    from .runtime import ImageReadError, input_size_for, read_image, resize_image

    for path in paths:
        try:
            image = read_image(path)
        except ImageReadError as e:
            if not skip_unreadable:
                raise
            print(f"skipped: {e}", file=sys.stderr)  # a folder of the user's: the others are compared
            continue
        size = input_size_for(*image.shape[:2], meta)
        small = resize_image(image, size, meta.image_resize, meta.image_antialias)
        yield np.ascontiguousarray(small.transpose(2, 0, 1))


def folder_images(folder: str, meta: ExportMetadata, num_images: int):
    """Yield model inputs for up to ``num_images`` image files, prepared as the Python runner does; a file
    that cannot be read is reported on stderr and skipped (the next file takes its place)."""
    from itertools import islice

    from .folder_runner import list_images

    yield from islice(_prepared_files(list_images(folder), meta, skip_unreadable=True), num_images)


def verify_from_recipe(
    model_path: str,
    config_file: str,
    checkpoint: str,
    *,
    overrides=(),
    num_images: int = 8,
    dataset: str | None = None,
    images: str | None = None,
    max_diff: float | None = None,
    min_agreement: float | None = None,
) -> VerifyResult:
    """PyTorch (recipe + checkpoint) vs ONNX Runtime (``model_path``) on dataset or folder images."""
    meta = read_metadata(load_onnx(model_path))
    cfg = load_recipe(config_file, overrides)
    model, saved = load_model(cfg, checkpoint, config_name=config_file)  # the checkpoint's one read
    check_resolution_factor(cfg, checkpoint, saved, meta.resolution_factor, model_path)
    reference = wrapper_from_metadata(model, meta)
    inputs = (
        folder_images(images, meta, num_images) if images else dataset_images(cfg, meta, num_images, dataset)
    )
    return verify(reference, model_path, inputs, max_diff=max_diff, min_agreement=min_agreement)
