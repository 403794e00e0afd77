"""Export metadata: JSON metadata_props round trip through onnx, onnxruntime and validation errors."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from softlabelseg_export.metadata import PREFIX, ExportMetadata, read_metadata, write_metadata


def _identity_model() -> onnx.ModelProto:
    node = helper.make_node("Identity", ["image"], ["logits"])
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 3, 2, 2])],
        [helper.make_tensor_value_info("logits", TensorProto.UINT8, [1, 3, 2, 2])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _meta(**kw) -> ExportMetadata:
    base = dict(
        class_names=["road", "pole", "sky"], class_colors=[[128, 64, 128], [153, 153, 153], [70, 130, 180]],
        resolution_factor=0.25, input_size=[64, 128], output_kind="labels", output_size=[256, 512],
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
        image_resize="torch:bilinear",
    )  # fmt: skip
    return ExportMetadata(**{**base, **kw})


def test_round_trip_through_file_and_session(tmp_path):
    model = _identity_model()
    model.metadata_props.add(key="author", value="someone")  # foreign keys survive
    meta = _meta()
    write_metadata(model, meta)
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    assert read_metadata(path) == meta
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert read_metadata(session) == meta
    props = session.get_modelmeta().custom_metadata_map
    assert props["author"] == "someone"
    # every value is JSON; derived keys for consumers that read the props directly
    assert json.loads(props[PREFIX + "class_names"]) == ["road", "pole", "sky"]
    assert json.loads(props[PREFIX + "num_classes"]) == 3
    assert json.loads(props[PREFIX + "dynamic"]) is False
    assert json.loads(props[PREFIX + "resolution_factor"]) == 0.25
    session.run(None, {"image": np.zeros((1, 3, 2, 2), np.uint8)})


def test_rewrite_replaces_and_dynamic_is_null():
    model = _identity_model()
    write_metadata(model, _meta())
    write_metadata(model, _meta(input_size=None, output_kind="logits", output_size=None))
    keys = [p.key for p in model.metadata_props]
    assert len(keys) == len(set(keys))
    meta = read_metadata(model)
    assert meta.dynamic and meta.input_size is None and meta.output_kind == "logits"
    assert json.loads({p.key: p.value for p in model.metadata_props}[PREFIX + "input_size"]) is None


def test_validation_errors():
    with pytest.raises(ValueError, match="output_kind"):
        _meta(output_kind="masks")
    with pytest.raises(ValueError, match="3 class names but 2 colours"):
        _meta(class_colors=[[0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="resolution_factor"):
        _meta(resolution_factor=0)
    with pytest.raises(ValueError, match="not written by softlabelseg_export"):
        read_metadata(_identity_model())
    model = _identity_model()
    write_metadata(model, _meta())
    next(p for p in model.metadata_props if p.key == PREFIX + "class_names").value = "[broken"
    with pytest.raises(ValueError, match="class_names.*not valid JSON"):
        read_metadata(model)


@pytest.mark.parametrize("mode, in_float", [
    ("torch:bilinear", True), ("torch:area", True), ("cv2:linear", False), ("cv2:area", False),
    ("pil:bilinear", False)])
def test_the_float32_resize_rule_comes_from_the_registry_and_travels(mode, in_float):
    """Whether the runners resize in float32 is the mode registry's ``float_image``, written as a key of its
    own: the C++ runner reads it instead of the mode's name."""
    from softlabel_ops.modes import spec_of

    assert spec_of(mode).float_image is in_float
    model = _identity_model()
    write_metadata(model, _meta(image_resize=mode))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props[PREFIX + "image_resize_float32"]) is in_float
    assert read_metadata(model).image_resize_float32 is in_float
