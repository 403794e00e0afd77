"""A Triton Inference Server model repository for an export: ``<root>/<name>/1/model.onnx`` and
``<root>/<name>/config.pbtxt`` (platform ``onnxruntime_onnx``).

The config names the graph's real input and output with their dtypes and dims (a dynamic dim is -1;
``max_batch_size: 0``, so the batch dim is listed as the graph has it) and carries the export's
metadata as ``parameters`` (one JSON string per key, as in the ONNX file). Triton runs the graph only:
a Triton client resizes the image to the graph's input itself (see ``parameters``: resolution factor,
``image_resize`` filter, ``input_size``) and upsamples the scores back, which ``softlabelseg-serve``
does for its clients. Written with the standard library and ``onnx``; no Triton package needed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

# ONNX TensorProto element type -> Triton data_type
ONNX_TO_TRITON = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16", 5: "TYPE_INT16",
                  6: "TYPE_INT32", 7: "TYPE_INT64", 9: "TYPE_BOOL", 10: "TYPE_FP16",
                  11: "TYPE_FP64"}  # fmt: skip


class RepositoryError(ValueError):
    """The repository cannot be written (target exists, graph with an unsupported dtype)."""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _tensor(value_info) -> str:
    kind = value_info.type.tensor_type
    if kind.elem_type not in ONNX_TO_TRITON:
        raise RepositoryError(f"tensor {value_info.name!r} has ONNX dtype {kind.elem_type}, not supported")
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim]
    return (f"  {{\n    name: {_quote(value_info.name)}\n    data_type: {ONNX_TO_TRITON[kind.elem_type]}\n"
            f"    dims: [ {', '.join(str(d) for d in dims)} ]\n  }}")  # fmt: skip


def triton_config(model, name: str) -> str:
    """config.pbtxt text for an ``onnx.ModelProto`` served as ``name``."""
    from ..metadata import PREFIX

    lines = [f"name: {_quote(name)}", 'platform: "onnxruntime_onnx"', "max_batch_size: 0"]
    lines.append("input [\n" + ",\n".join(_tensor(v) for v in model.graph.input) + "\n]")
    lines.append("output [\n" + ",\n".join(_tensor(v) for v in model.graph.output) + "\n]")
    for prop in sorted(model.metadata_props, key=lambda p: p.key):
        if prop.key.startswith(PREFIX):
            value = f"value {{ string_value: {_quote(prop.value)} }}"
            lines.append(f"parameters {{\n  key: {_quote(prop.key)}\n  {value}\n}}")
    lines.append("instance_group [ { count: 1, kind: KIND_CPU } ]")
    return "\n".join(lines) + "\n"


def write_repository(model_path, root, name: str = "softlabelseg") -> Path:
    """Write ``root/name/{config.pbtxt, 1/model.onnx}``; returns ``root/name``. Refuses an existing
    ``root/name`` (nothing is overwritten) and a graph without SoftLabelSeg metadata."""
    import onnx

    from ..metadata import read_metadata

    model_path, folder = Path(model_path), Path(root) / name
    if not model_path.is_file():
        raise RepositoryError(f"ONNX model {str(model_path)!r} does not exist")
    if folder.exists():
        raise RepositoryError(
            f"{str(folder)!r} exists: choose another --output or --name (nothing is overwritten)"
        )
    model = onnx.load(str(model_path), load_external_data=False)
    try:
        read_metadata(model)
    except (KeyError, ValueError, TypeError) as e:
        raise RepositoryError(f"{str(model_path)!r} is not a SoftLabelSeg export ({e})") from None
    config = triton_config(model, name)
    (folder / "1").mkdir(parents=True)
    shutil.copyfile(model_path, folder / "1" / "model.onnx")
    (folder / "config.pbtxt").write_text(config)
    return folder


def main(argv=None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="exported .onnx file")
    parser.add_argument("--output", required=True, help="repository root (created if missing)")
    parser.add_argument("--name", default="softlabelseg", help="model name (folder and config name)")
    args = parser.parse_args(argv)
    try:
        folder = write_repository(args.model, args.output, args.name)
    except (RepositoryError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {folder}/config.pbtxt and {folder}/1/model.onnx")
    return 0
