"""PyTorch vs ONNX Runtime on the same uint8 inputs: max |logit diff| and argmax agreement, plus two
checks that a matching pair still works: no NaN or inf on either side, and outputs that change with the
input (a handful of random images must not all give the same answer)."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from softlabelseg.checkpoint_io import factor_problem

from .checkpoint import CheckpointMismatchError
from .metadata import read_metadata
from .runtime import ModelLoadError, check_graph_input, open_session
from .wrapper import ExportWrapper

# (max abs logit difference, min share of pixels whose argmax agrees) per precision
THRESHOLDS = {"fp32": (1e-3, 0.999), "fp16": (5e-2, 0.99)}
SCORES_OUTPUT = "verify_logits"
RANDOM_IMAGES = 3  # random uint8 images whose outputs must not all be equal


@dataclass
class VerifyResult:
    images: int
    pixels: int
    max_abs_diff: float
    agreement: float
    max_diff_limit: float
    min_agreement: float
    nonfinite_onnx: int = 0  # NaN / inf values among the ONNX outputs (verification and random images)
    nonfinite_torch: int = 0  # the same for the PyTorch reference
    constant_onnx: bool = False  # the ONNX outputs are identical for every random image
    constant_torch: bool = False

    @property
    def problems(self) -> list[str]:
        """Why the export does not work, beyond the thresholds: non-finite or input-independent outputs."""
        out = [
            f"the {side} outputs hold {count} NaN or inf value(s)"
            for side, count in (("ONNX", self.nonfinite_onnx), ("PyTorch", self.nonfinite_torch))
            if count
        ]
        constant = [side for side, flag in (("ONNX", self.constant_onnx), ("PyTorch", self.constant_torch))
                    if flag]  # fmt: skip
        if constant:
            out.append(f"the {' and '.join(constant)} model returns the same output for {RANDOM_IMAGES}"
                       " different random images")  # fmt: skip
        if out and (self.nonfinite_torch or self.constant_torch):
            out.append("the checkpoint itself does not work: use one of a run that trained normally")
        elif out:
            out.append("the ONNX file does not work: export it again with export/export_onnx.py")
        return out

    @property
    def passed(self) -> bool:
        return (
            not self.problems
            and self.max_abs_diff <= self.max_diff_limit
            and self.agreement >= self.min_agreement
        )

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{verdict}: {self.images} image(s), {self.pixels} pixels:"
            f" max |logit diff| {self.max_abs_diff:.3g}"
            f" (limit {self.max_diff_limit:g}), argmax agreement {100 * self.agreement:.4f}%"
            f" (min {100 * self.min_agreement:g}%)" + "".join(f"; {p}" for p in self.problems)
        )


def expose_logits(model: onnx.ModelProto) -> onnx.ModelProto:
    """Copy of ``model`` whose extra output ``verify_logits`` is the tensor fed to the final
    Softmax / ArgMax (the logits, after any in-graph upsampling); a logits graph is returned as is."""
    producers = {out: node for node in model.graph.node for out in node.output}
    name = model.graph.output[0].name
    node = producers.get(name)
    while node is not None and node.op_type in ("Cast", "Identity"):
        name = node.input[0]
        node = producers.get(name)
    if node is None or node.op_type not in ("ArgMax", "Softmax"):
        return model
    out = onnx.shape_inference.infer_shapes(model)
    known = {v.name: v.type.tensor_type.elem_type for v in out.graph.value_info}
    elem = known.get(node.input[0]) or onnx.TensorProto.FLOAT  # float16 in fp16 graphs
    out.graph.output.append(onnx.helper.make_tensor_value_info(node.input[0], elem, None))
    return out


def load_onnx(model_path: str) -> onnx.ModelProto:
    """``onnx.load`` with an error naming the file instead of a protobuf traceback."""
    if not os.path.isfile(model_path):
        raise ModelLoadError(f"ONNX model {model_path!r} does not exist")
    try:
        return onnx.load(model_path)
    except Exception as e:
        raise ModelLoadError(
            f"{model_path!r} is not a readable ONNX model ({type(e).__name__}); the file is corrupt or "
            "truncated: export it again with export/export_onnx.py"
        ) from None


class ResolutionMismatchError(CheckpointMismatchError):
    """The recipe, the checkpoint and the exported file disagree on the resolution factor."""


def check_resolution_factor(cfg, checkpoint: str, saved: dict, onnx_factor: float | None = None,
                            onnx_path: str | None = None) -> None:
    """Raises :class:`ResolutionMismatchError` when the recipe (after overrides) differs in resolution factor
    from the checkpoint's training (``saved``: its entries beside the weights, already read; the run
    folder's ``config.yaml`` when it carries none) or from the exported file's metadata."""
    from .recipe import recipe_resolution

    warn = lambda text: print(f"warning: {text}", file=sys.stderr)  # noqa: E731
    problem = factor_problem(cfg, saved, checkpoint, warn)
    problems = [problem] if problem else []
    recipe_factor = recipe_resolution(cfg)["factor"]
    if onnx_factor is not None and not math.isclose(onnx_factor, recipe_factor, rel_tol=1e-6):
        problems.append(f"{onnx_path} was exported for factor {onnx_factor:g}, but the recipe and overrides "
                        f"give {recipe_factor:g}")
    if problems:
        raise ResolutionMismatchError(
            "resolution factor mismatch: " + "; ".join(problems) + ". Use the factor the model was trained "
            "at (e.g. dataloader.train.mapper.factor=<the checkpoint's>); a model served at another "
            "resolution than it learnt is silently worse."
        )


class OrtLogits:
    """ONNX Runtime session returning (logits, labels) for a uint8 (N, 3, h, w) batch."""

    def __init__(self, model_path: str):
        proto = load_onnx(model_path)
        self.meta = read_metadata(proto)
        exposed = expose_logits(proto)
        self.session = open_session(exposed.SerializeToString())
        check_graph_input(self.session, self.meta, model_path)
        self.has_logits = len(exposed.graph.output) > 1 or self.meta.output_kind == "logits"
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray):
        outs = self.session.run(None, {self.input_name: batch})
        kind = self.meta.output_kind
        logits = outs[-1] if self.has_logits else None
        labels = outs[0] if kind == "labels" else (logits if logits is not None else outs[0]).argmax(1)
        return logits, labels


def wrapper_from_metadata(model: torch.nn.Module, meta) -> ExportWrapper:
    """The PyTorch reference for an exported file: same output kind, upsampling and precision."""
    return ExportWrapper(
        model,
        "logits",
        pixel_mean=meta.pixel_mean,
        pixel_std=meta.pixel_std,
        upsample_to=meta.output_size,
        upsample_scale=meta.output_scale,
        align_corners=meta.align_corners,
    ).eval()


def verify(
    reference: ExportWrapper, model_path: str, images, max_diff=None, min_agreement=None
) -> VerifyResult:
    """Run ``reference`` (PyTorch, logits) and the ONNX file on each uint8 (3, h, w) image, then on
    :data:`RANDOM_IMAGES` random images of the first image's size.

    Thresholds default to the file's precision (fp32: 1e-3 and 99.9%, fp16: 5e-2 and 99%). The result
    fails whatever the differences when either side returns NaN or inf, or the same output for every
    random image (:attr:`VerifyResult.problems`).
    """
    runner = OrtLogits(str(model_path))
    default_diff, default_agree = THRESHOLDS[runner.meta.precision]
    max_diff = default_diff if max_diff is None else max_diff
    min_agreement = default_agree if min_agreement is None else min_agreement

    def both(batch):
        with torch.no_grad():
            ref = reference.logits(torch.from_numpy(batch)).float().numpy()
        logits, labels = runner(batch)
        return ref, logits, labels

    diffs, agree, pixels, count = [], 0, 0, 0
    bad_onnx = bad_torch = 0
    shape = None
    for image in images:
        batch = np.ascontiguousarray(np.asarray(image, dtype=np.uint8)[None])
        shape = shape or batch.shape
        ref, logits, labels = both(batch)
        bad_torch += int(ref.size - np.isfinite(ref).sum())
        if logits is not None:
            logits = logits.astype(np.float32)
            bad_onnx += int(logits.size - np.isfinite(logits).sum())
            diffs.append(float(np.abs(logits - ref).max()))  # NaN stays NaN (no max() with 0.0)
        agree += int((labels.astype(np.int64) == ref.argmax(1)).sum())
        pixels += labels.size
        count += 1
    if count == 0:
        raise ValueError("no images to verify on")
    rng = np.random.default_rng(0)
    outs_onnx, outs_torch = [], []
    for _ in range(RANDOM_IMAGES):
        ref, logits, labels = both(rng.integers(0, 256, shape, dtype=np.uint8))
        bad_torch += int(ref.size - np.isfinite(ref).sum())
        onnx_out = logits.astype(np.float32) if logits is not None else labels
        bad_onnx += int(onnx_out.size - np.isfinite(onnx_out).sum()) if logits is not None else 0
        outs_onnx.append(onnx_out)
        outs_torch.append(ref)
    worst = float(np.max(diffs)) if runner.has_logits and diffs else float("nan")
    return VerifyResult(
        count, pixels, worst, agree / pixels, max_diff, min_agreement,
        nonfinite_onnx=bad_onnx, nonfinite_torch=bad_torch,
        constant_onnx=_all_equal(outs_onnx), constant_torch=_all_equal(outs_torch),
    )  # fmt: skip


def _all_equal(arrays) -> bool:
    return all(np.array_equal(a, arrays[0], equal_nan=a.dtype.kind == "f") for a in arrays[1:])
