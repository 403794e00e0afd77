"""Constant-fold the shape arithmetic of a fully static ONNX graph.

The TorchScript exporter keeps ``Shape -> Gather -> Mod -> Concat ...`` chains (padding amounts,
resize sizes, reshape targets, crop indices) even when every shape is known. Folding them gives a
smaller graph that consumers without shape arithmetic (OpenCV 4.6's DNN importer: no Mod, no Range)
can parse, and drops the identities, pads and gathers that turn out to be no-ops.

One pass in graph (topological) order: a node whose inputs are all constants is evaluated with
``onnx.reference``; a kept node gets its output shapes from ONNX shape inference on that node alone,
so the shapes after a folded Reshape / Resize are known to the nodes that follow.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

FOLDABLE = {
    "Abs", "Add", "And", "Cast", "Ceil", "Clip", "Concat", "ConstantOfShape", "Div", "Equal", "Expand",
    "Floor", "Gather", "Greater", "GreaterOrEqual", "Identity", "Less", "LessOrEqual", "Max", "Min", "Mod",
    "Mul", "Neg", "Not", "Or", "Pow", "Range", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSum",
    "Reshape", "Round", "Shape", "Sign", "Size", "Slice", "Sqrt", "Squeeze", "Sub", "Tile", "Transpose",
    "Unsqueeze", "Where",
}  # fmt: skip
MAX_FOLDED = 1 << 16  # elements; larger results stay computed in the graph


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _single_node_model(node, inputs, opset):
    """Copy of ``node`` reading ``inputs`` (name -> ValueInfo or TensorProto initializer)."""
    graph = helper.make_graph(
        [helper.make_node(node.op_type, list(node.input), list(node.output), **_attrs(node))],
        "node",
        [v for v in inputs.values() if isinstance(v, onnx.ValueInfoProto)],
        [helper.make_empty_tensor_value_info(o) for o in node.output if o],
        initializer=[v for v in inputs.values() if isinstance(v, onnx.TensorProto)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


class _Folder:
    def __init__(self, model: onnx.ModelProto):
        self.opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        self.consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.types: dict[str, onnx.TypeProto] = {}
        for v in model.graph.input:
            self.types[v.name] = v.type

    def shape(self, name):
        if name in self.consts:
            return list(self.consts[name].shape)
        t = self.types.get(name)
        if t is None or not t.tensor_type.HasField("shape"):
            return None
        dims = t.tensor_type.shape.dim
        return [d.dim_value for d in dims] if all(d.HasField("dim_value") for d in dims) else None

    def evaluate(self, node) -> list[np.ndarray] | None:
        if node.op_type == "Shape":
            shape = self.shape(node.input[0])
            if shape is None:
                return None
            a = _attrs(node)
            return [np.array(shape[a.get("start", 0) : a.get("end", None)], dtype=np.int64)]
        if node.op_type == "Constant" or (
            node.op_type in FOLDABLE and all(i in self.consts for i in node.input if i)
        ):
            inputs = {i: numpy_helper.from_array(np.asarray(self.consts[i]), i) for i in node.input if i}
            values = ReferenceEvaluator(_single_node_model(node, inputs, self.opset)).run(None, {})
            if all(np.asarray(v).size <= MAX_FOLDED for v in values):
                return [np.asarray(v) for v in values]
        return None

    def infer(self, node) -> None:
        """Record the output types of a kept node from shape inference on the node alone."""
        inputs = {}
        for i in node.input:
            if not i or i in inputs:
                continue
            if i in self.consts and self.consts[i].size <= MAX_FOLDED:
                inputs[i] = numpy_helper.from_array(np.asarray(self.consts[i]), i)
            elif i in self.consts:
                c = self.consts[i]
                inputs[i] = helper.make_tensor_value_info(
                    i, helper.np_dtype_to_tensor_dtype(c.dtype), c.shape
                )
            elif i in self.types:
                inputs[i] = helper.make_value_info(i, self.types[i])
            else:
                return
        try:
            inferred = onnx.shape_inference.infer_shapes(
                _single_node_model(node, inputs, self.opset), strict_mode=True
            )
        except Exception:  # unknown to shape inference: later nodes just see no shape
            return
        for v in inferred.graph.output:
            self.types[v.name] = v.type

    def is_noop(self, node) -> bool:
        """An Identity, a Pad by zeros, or a Gather of every index of its axis in order (the crop)."""
        if node.op_type == "Identity":
            return True
        if node.op_type == "Pad" and len(node.input) > 1 and node.input[1] in self.consts:
            return not np.any(self.consts[node.input[1]])
        if node.op_type == "Gather" and node.input[1] in self.consts:
            shape, idx = self.shape(node.input[0]), self.consts[node.input[1]]
            n = shape[_attrs(node).get("axis", 0)] if shape else -1
            return idx.ndim == 1 and idx.size == n and np.array_equal(idx, np.arange(n))
        return False


def fold_static_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold every value computable from static shapes and constants; remove no-op Pad / Gather."""
    folder = _Folder(model)
    outputs = {o.name for o in model.graph.output}
    rename: dict[str, str] = {}
    kept = []
    for original in model.graph.node:
        node = onnx.NodeProto()
        node.CopyFrom(original)
        node.input[:] = [rename.get(i, i) for i in node.input]
        values = None if outputs & set(node.output) else folder.evaluate(node)
        if values is not None:
            folder.consts.update(zip(node.output, values, strict=True))
        elif not outputs & set(node.output) and folder.is_noop(node):
            rename[node.output[0]] = node.input[0]
        else:
            kept.append(node)
            folder.infer(node)
    used = {i for n in kept for i in n.input}
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    del folded.graph.node[:], folded.graph.initializer[:], folded.graph.value_info[:]
    folded.graph.node.extend(kept)
    folded.graph.initializer.extend(
        numpy_helper.from_array(np.asarray(v), k) for k, v in folder.consts.items() if k in used
    )
    return folded
