"""Model metadata carried inside the ONNX file (``metadata_props``, one JSON value per key).

A runner needs nothing but the file: the class names and colours, how far the image is shrunk before
the graph (the training-resolution factor, the resize filter and its OpenCV flags), the input size the
graph accepts, what the graph returns and how to upsample it. Torch-free: the runtime-only runner
imports this.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

from softlabel_ops.modes import DEFAULT_OPENCV_MODE

FORMAT_VERSION = 1
OUTPUT_KINDS = ("logits", "probs", "labels")
PREFIX = "softlabelseg."
UNTRAINED = "untrained (random init)"


@dataclass
class ExportMetadata:
    """What a service needs to run an exported segmentation graph.

    input_size: (h, w) the graph was traced at, or None when height and width are dynamic.
    output_size: (H, W) when the graph upsamples in-graph to a fixed size; None otherwise.
    output_scale: in-graph upsampling factor (output = input * scale) or None.
    resolution_factor: model input size / original image size (0.25 for a model trained at 1/4).
    image_resize: the filter that shrinks the image to the model input ("cv2:area", "torch:bilinear"...),
        as the training data mapper names it; ``image_antialias`` its antialias flag (torch modes).
    image_cv2_flags: the OpenCV interpolation flags the runners resize the image with, [any size, both
        sides shrinking]: filled in from the mode's registry entry (softlabel_ops.modes.opencv_flags),
        so the C++ runner needs no table of modes.
    image_resize_float32: the runners resize the image in float32 and round half to even back to uint8
        (what the mapper's library does for this mode: ModeSpec.float_image); False: OpenCV's uint8 path.
        Filled in from the registry like the flags.
    resize_in_graph: the graph takes the full image (uint8, any H x W) and does this resize itself (to
        ``input_size``, or by ``resolution_factor`` when that is None); runners then send the image as it
        is.
    align_corners: PyTorch ``align_corners`` for upsampling the graph output to the original size.
    weights: the checkpoint file the weights came from, or :data:`UNTRAINED` for a random-init export.
    class_offsets: per-class logit offsets the graph adds to its logits (a decision rule fitted after
        training, e.g. prior matching; None: none); ``calibration`` says how they were fitted. Recorded
        for information: the graph applies them, so no runner needs them.
    """

    class_names: list[str]
    class_colors: list[list[int]]
    resolution_factor: float = 1.0
    input_size: list[int] | None = None
    output_kind: str = "logits"
    output_size: list[int] | None = None
    output_scale: float | None = None
    pixel_mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    pixel_std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    ignore_value: int = 255
    image_resize: str = DEFAULT_OPENCV_MODE
    image_antialias: bool = False
    image_cv2_flags: list[int] | None = None
    image_resize_float32: bool | None = None
    resize_in_graph: bool = False
    align_corners: bool = False
    input_format: str = "uint8 RGB NCHW, normalisation in the graph"
    precision: str = "fp32"
    opset: int | None = None
    exporter: str | None = None
    model_name: str | None = None
    weights: str | None = None
    class_offsets: list[float] | None = None
    calibration: str | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        if self.output_kind not in OUTPUT_KINDS:
            raise ValueError(f"output_kind must be one of {OUTPUT_KINDS}, got {self.output_kind!r}")
        if len(self.class_colors) != len(self.class_names):
            raise ValueError(
                f"{len(self.class_names)} class names but {len(self.class_colors)} colours:"
                " give one colour per class"
            )
        if not float(self.resolution_factor) > 0:
            raise ValueError(f"resolution_factor must be > 0, got {self.resolution_factor}")
        self._check_values()
        if self.image_cv2_flags is None:
            self.image_cv2_flags = cv2_flags(self.image_resize, self.image_antialias)
        if self.image_resize_float32 is None:
            from softlabel_ops.modes import spec_of

            self.image_resize_float32 = spec_of(self.image_resize).float_image

    def _check_values(self) -> None:
        """Raise ValueError naming the key whose value a runner cannot use: a format version newer than this
        reader, colours that are not three 0..255 integers, a mean / std that is not three finite numbers
        (std > 0), an input size that is not two positive integers."""
        if not isinstance(self.format_version, int) or not 1 <= self.format_version <= FORMAT_VERSION:
            raise ValueError(f"format_version {self.format_version!r}: this reader understands 1 to "
                             f"{FORMAT_VERSION}; update softlabelseg or export the model again")

        def numbers(value, n):
            if not isinstance(value, (list, tuple)) or len(value) != n:
                return False
            try:
                return all(not isinstance(v, (bool, str)) and math.isfinite(float(v)) for v in value)
            except (TypeError, ValueError):
                return False

        bad = [i for i, c in enumerate(self.class_colors)
               if not (numbers(c, 3) and all(float(v).is_integer() and 0 <= float(v) <= 255 for v in c))]
        if bad:
            raise ValueError(f"class_colors[{bad[0]}] is {self.class_colors[bad[0]]!r}: expected [r, g, b] "
                             "with integers 0..255")
        for key in ("pixel_mean", "pixel_std"):
            value = getattr(self, key)
            if not numbers(value, 3) or (key == "pixel_std" and min(value) <= 0):
                raise ValueError(f"{key} is {value!r}: expected three finite numbers"
                                 + (" > 0" if key == "pixel_std" else ""))
        if self.input_size is not None and not (numbers(self.input_size, 2) and all(
                float(v).is_integer() and v > 0 for v in self.input_size)):
            raise ValueError(f"input_size is {self.input_size!r}: expected [height, width], positive "
                             "integers")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def dynamic(self) -> bool:
        return self.input_size is None

    def to_props(self) -> dict[str, str]:
        """Flat ``{prefix+key: json}`` mapping for ``onnx.ModelProto.metadata_props``."""
        props = {PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}
        props[PREFIX + "num_classes"] = json.dumps(self.num_classes)
        props[PREFIX + "dynamic"] = json.dumps(self.dynamic)
        return props

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ExportMetadata:
        """Inverse of :meth:`to_props`; unknown keys are ignored, missing required ones named."""
        known = {f.name for f in fields(cls)}
        values = {}
        for key, raw in props.items():
            if not key.startswith(PREFIX) or key[len(PREFIX) :] not in known:
                continue
            try:
                values[key[len(PREFIX) :]] = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ValueError(f"metadata key {key!r} is not valid JSON: {raw[:80]!r}") from e
        missing = [k for k in ("class_names", "class_colors") if k not in values]
        if missing:
            raise ValueError(
                f"ONNX metadata lacks {missing}: the file was not written by softlabelseg_export "
                "(re-export it with export/export_onnx.py)"
            )
        return cls(**values)


def cv2_flags(mode: str, antialias: bool = False) -> list[int]:
    """OpenCV interpolation flags [any size, both sides shrinking] with which the runners resize an
    image for ``mode``; raises ValueError for an unknown mode."""
    import cv2

    from softlabel_ops.modes import opencv_flags

    return [int(getattr(cv2, name)) for name in opencv_flags(mode, antialias)]


def write_metadata(model_proto, meta: ExportMetadata) -> None:
    """Replace our keys in ``model_proto.metadata_props`` (an ``onnx.ModelProto``) by ``meta``."""
    keep = [(p.key, p.value) for p in model_proto.metadata_props if not p.key.startswith(PREFIX)]
    del model_proto.metadata_props[:]
    for key, value in keep + sorted(meta.to_props().items()):
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(source) -> ExportMetadata:
    """Metadata from an ``onnx.ModelProto``, an ``onnxruntime.InferenceSession`` or a path."""
    if hasattr(source, "metadata_props"):
        props = {p.key: p.value for p in source.metadata_props}
    elif hasattr(source, "get_modelmeta"):
        props = dict(source.get_modelmeta().custom_metadata_map)
    else:
        import onnx

        props = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}
    return ExportMetadata.from_props(props)
