"""Checks the runners make around the serving pipeline, with onnx, numpy and the standard library only
(no torch): weights that are NaN or inf, the memory a machine allows, an output folder inside the input
folder, and output files that are either complete or absent.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import numpy as np

TMP_PREFIX = ".tmp_"  # as softlabelseg.utils.fileio: a killed write leaves only such a file


class OutputFolderError(ValueError):
    """The output folder is the input folder or inside it: outputs would be read back as inputs."""


def first_names(names: list[str], shown: int = 5) -> str:
    """``"a, b, c, d, e and 3 more"``: the names an error message lists."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def nonfinite_initializers(model) -> list[str]:
    """Names of the floating-point initializers (and ``Constant`` node values, subgraphs included) of
    ``model`` (an ``onnx.ModelProto``, serialized bytes or a path) that hold NaN or inf."""
    import onnx
    from onnx import numpy_helper

    if isinstance(model, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model))
    elif not isinstance(model, onnx.ModelProto):
        model = onnx.load(os.fspath(model))
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
              onnx.TensorProto.BFLOAT16}  # fmt: skip
    bad = []
    for name, tensor in _graph_tensors(model.graph):
        if tensor.data_type in floats:
            values = numpy_helper.to_array(tensor)
            if values.dtype.kind != "f":  # bfloat16 (ml_dtypes) in recent onnx releases
                values = values.astype(np.float32)
            if not np.isfinite(values).all():
                bad.append(name)
    return bad


def _graph_tensors(graph):
    for tensor in graph.initializer:
        yield tensor.name, tensor
    for node in graph.node:
        label = f"{node.name or node.output[0]} ({node.op_type} attribute)"
        for attr in node.attribute:
            if attr.HasField("t"):
                yield label, attr.t
            for tensor in attr.tensors:
                yield label, tensor
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _graph_tensors(sub)


def available_memory() -> int:
    """Bytes this process may use: the lowest of the physical memory, the cgroup limit (v2 or v1) and
    the address-space ulimit that apply (8 GiB when none can be read)."""
    limits = []
    with contextlib.suppress(ValueError, OSError, AttributeError):
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError), open(path) as f:
            text = f.read().strip()
            if text.isdigit():
                limits.append(int(text))
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    limits = [v for v in limits if v > 0]
    return min(limits) if limits else 8 << 30


def check_output_folder(inputs, output_dir) -> None:
    """Raise :class:`OutputFolderError` when ``inputs`` is a folder and ``output_dir`` is that folder or
    inside it (symbolic links resolved): the runners never write where they read."""
    if not os.path.isdir(inputs):
        return
    source, target = os.path.realpath(inputs), os.path.realpath(output_dir)
    if os.path.commonpath([source, target]) != source:
        return
    where = "is the input folder" if source == target else f"is inside the input folder {os.fspath(inputs)!r}"
    raise OutputFolderError(
        f"output folder {os.fspath(output_dir)!r} {where}: its _labels.png and _overlay.png files would "
        "overwrite input images of the same name and be read as images by the next run. Choose an output "
        "folder outside the input folder."
    )


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in its folder (fsynced, then ``os.replace``d),
    so ``path`` holds either its old content or all of ``data``, also when the process is killed.

    The approach of ``softlabelseg.utils.fileio.atomic_write``, which the torch-free serving path cannot
    import (``softlabelseg.utils`` imports torch).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.path.basename(path)}.", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
