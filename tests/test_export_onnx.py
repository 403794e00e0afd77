"""ONNX export of a stand-in segmentor: static vs dynamic shapes, output kinds, in-graph upsampling,
checker, opset / unsupported-op / checkpoint errors, verify thresholds, fp16."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from softlabelseg_export.checkpoint import CheckpointMismatchError, load_checkpoint
from softlabelseg_export.exporter import ExportError, export_onnx
from softlabelseg_export.metadata import read_metadata
from softlabelseg_export.random_models import calibrate_batchnorm
from softlabelseg_export.verification import verify, wrapper_from_metadata
from softlabelseg_export.wrapper import ExportWrapper
from torch import nn

from tests.helpers.export import StandInSegmentor, stand_in_metadata

SIZE = (24, 40)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = StandInSegmentor(num_classes=5)
    return calibrate_batchnorm(m, torch.randint(0, 256, (2, 3, *SIZE), dtype=torch.uint8))


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _images(n, hw, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, *hw), dtype=np.uint8))


def _export(model, path, **kw):
    wrapper_kw = {
        k: kw.pop(k) for k in ("output_kind", "upsample_to", "upsample_scale", "align_corners") if k in kw
    }
    wrapper = ExportWrapper(model, **wrapper_kw).eval()
    export_onnx(wrapper, path, stand_in_metadata(5), kw.pop("size", SIZE), **kw)
    return wrapper, _session(path)


def test_dynamic_equals_static_and_matches_pytorch_at_other_sizes(model, tmp_path):
    wrapper, static = _export(model, tmp_path / "static.onnx")
    _, dynamic = _export(model, tmp_path / "dynamic.onnx", dynamic=True)
    x = _images(1, SIZE)
    a, b = static.run(None, {"image": x.numpy()})[0], dynamic.run(None, {"image": x.numpy()})[0]
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    with torch.no_grad():
        np.testing.assert_allclose(a, wrapper(x).numpy(), atol=1e-4, rtol=0)
        # other batch sizes, other sizes, sizes the stride does not divide
        for n, hw in [(2, SIZE), (1, (32, 48)), (1, (17, 29)), (3, (61, 90))]:
            x = _images(n, hw, seed=hw[0])
            out = dynamic.run(None, {"image": x.numpy()})[0]
            assert out.shape == (n, 5, *hw)
            np.testing.assert_allclose(out, wrapper(x).numpy(), atol=1e-4, rtol=0)
    for shape in [(1, 32, 48), (2, *SIZE)]:  # a static graph is fully static
        with pytest.raises(Exception, match="(?i)dimension|shape"):
            static.run(None, {"image": _images(shape[0], shape[1:]).numpy()})


def test_graph_interface_and_checker(model, tmp_path):
    _export(model, tmp_path / "m.onnx", output_kind="labels")
    proto = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(proto, full_check=True)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "image" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert dims == [1, 3, *SIZE]
    assert out.name == "labels" and out.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    meta = read_metadata(proto)
    assert (meta.input_size, meta.output_kind, meta.opset, meta.exporter) == (
        [24, 40],
        "labels",
        17,
        "torchscript",
    )


@pytest.mark.parametrize("kind", ["logits", "probs", "labels"])
def test_output_kinds_match_pytorch(model, tmp_path, kind):
    wrapper, session = _export(model, tmp_path / f"{kind}.onnx", output_kind=kind)
    x = _images(1, SIZE)
    out = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        ref = wrapper(x).numpy()
        logits = ExportWrapper(model).eval()(x)
    if kind == "labels":
        assert out.dtype == np.uint8 and out.shape == (1, *SIZE)
        assert (out == logits.argmax(1).numpy()).mean() > 0.999
    else:
        assert out.dtype == np.float32 and out.shape == (1, 5, *SIZE)
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)
    if kind == "probs":
        np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("align_corners", [False, True])
def test_in_graph_upsampling_keeps_pytorch_semantics(model, tmp_path, align_corners):
    full = (96, 160)
    _, session = _export(model, tmp_path / "up.onnx", upsample_to=full, align_corners=align_corners)
    x = _images(1, SIZE)
    with torch.no_grad():
        small = ExportWrapper(model).eval()(x)
        ref = F.interpolate(small, size=full, mode="bilinear", align_corners=align_corners).numpy()
    np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], ref, atol=1e-5, rtol=0)
    assert read_metadata(tmp_path / "up.onnx").output_size == list(full)
    # dynamic graph, upsampling by the inverse factor
    _, session = _export(model, tmp_path / "dyn.onnx", dynamic=True, upsample_scale=4.0)
    x = _images(1, (20, 36))
    with torch.no_grad():
        ref = F.interpolate(ExportWrapper(model).eval()(x), size=(80, 144), mode="bilinear").numpy()
    np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], ref, atol=1e-5, rtol=0)


def test_opset_and_unsupported_operator_errors(model, tmp_path):
    class GridSampler(nn.Module):  # grid_sample exists in ONNX from opset 16
        def forward_logits(self, image):
            grid = torch.zeros(image.shape[0], 4, 4, 2)
            return F.grid_sample(image.float(), grid, align_corners=False)

    with pytest.raises(ExportError, match=r"aten::grid_sampler.*opset 15.*--opset"):
        export_onnx(ExportWrapper(GridSampler()), tmp_path / "g.onnx", stand_in_metadata(3), (8, 8), opset=15)
    export_onnx(ExportWrapper(GridSampler()), tmp_path / "g.onnx", stand_in_metadata(3), (8, 8), opset=16)
    with pytest.raises(
        ExportError, match="opset 9 is not supported by the torchscript exporter: choose 11..20"
    ):
        export_onnx(ExportWrapper(model), tmp_path / "m.onnx", stand_in_metadata(5), SIZE, opset=9)
    with pytest.raises(ExportError, match="opset 17 is not supported by the dynamo exporter"):
        export_onnx(ExportWrapper(model), tmp_path / "m.onnx", stand_in_metadata(5), SIZE, exporter="dynamo")


def test_checkpoint_mismatch_names_the_keys(model, tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"model": model.state_dict(), "iteration": 3}, good)
    load_checkpoint(StandInSegmentor(5), good)
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, tmp_path / "ddp.pth")
    load_checkpoint(StandInSegmentor(5), tmp_path / "ddp.pth")

    state = dict(model.state_dict())
    state.pop("body.0.weight")
    state["head.extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(StandInSegmentor(5), tmp_path / "bad.pth", "recipe.py")
    assert "1 missing key(s): body.0.weight" in str(err.value)
    assert "1 unexpected key(s): head.extra" in str(err.value) and "recipe.py" in str(err.value)
    with pytest.raises(
        CheckpointMismatchError, match=r"body.6.weight: checkpoint \(5, 8, 1, 1\) vs model \(7, 8"
    ):
        load_checkpoint(StandInSegmentor(7), good)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint(model, tmp_path / "nope.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="text.pth is not a readable PyTorch checkpoint"):
        load_checkpoint(model, tmp_path / "text.pth")


def test_checkpoint_reader_is_the_trainings(model, tmp_path):
    """Export reads checkpoints with softlabelseg.checkpoint_io, .safetensors included."""
    from safetensors.torch import save_file

    save_file(model.state_dict(), tmp_path / "weights.safetensors")
    loaded = load_checkpoint(StandInSegmentor(5), tmp_path / "weights.safetensors")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_verify_thresholds(model, tmp_path):
    path = tmp_path / "labels.onnx"
    _export(model, path, output_kind="labels", upsample_to=(48, 80))
    meta = read_metadata(path)
    images = [_images(1, SIZE, seed=i)[0].numpy() for i in range(3)]
    result = verify(wrapper_from_metadata(model, meta), path, images)
    assert result.passed and result.max_abs_diff < 1e-4 and result.agreement > 0.999
    assert result.pixels == 3 * 48 * 80 and "PASS" in result.summary()
    # a perturbed classifier bias: logits move by 0.01 -> over the 1e-3 limit
    proto = onnx.load(path)
    bias = next(t for t in proto.graph.initializer if t.name.endswith("body.6.bias"))
    values = onnx.numpy_helper.to_array(bias) + 0.01
    bias.CopyFrom(onnx.numpy_helper.from_array(values.astype(np.float32), bias.name))
    onnx.save(proto, tmp_path / "bad.onnx")
    bad = verify(wrapper_from_metadata(model, meta), tmp_path / "bad.onnx", images)
    assert not bad.passed and 5e-3 < bad.max_abs_diff < 2e-2 and "FAIL" in bad.summary()


def test_fp16_export(model, tmp_path):
    path = tmp_path / "fp16.onnx"
    export_onnx(ExportWrapper(model, "labels"), path, stand_in_metadata(5), SIZE, fp16=True)
    meta = read_metadata(path)
    assert meta.precision == "fp16"
    assert _session(path).run(None, {"image": _images(1, SIZE).numpy()})[0].dtype == np.uint8
    result = verify(wrapper_from_metadata(model, meta), path, [_images(1, SIZE)[0].numpy()])
    assert result.passed and result.max_diff_limit == 5e-2 and 0 < result.max_abs_diff


def _declared(path):
    return [[d.dim_value if d.HasField("dim_value") else d.dim_param for d in o.type.tensor_type.shape.dim]
            for o in onnx.load(path).graph.output]  # fmt: skip


@pytest.mark.parametrize(
    "kw, shape",
    [
        (dict(output_kind="logits"), [1, 5, *SIZE]),
        (dict(output_kind="probs", upsample_to=(96, 160)), [1, 5, 96, 160]),
        (dict(output_kind="labels", upsample_to=(96, 160)), [1, 96, 160]),
        (dict(output_kind="labels", fp16=True), [1, *SIZE]),
    ],
)
def test_static_exports_declare_static_output_shapes(model, tmp_path, kw, shape):
    _, session = _export(model, tmp_path / "m.onnx", **kw)
    assert _declared(tmp_path / "m.onnx") == [shape]  # no symbolic dimension left
    assert list(session.run(None, {"image": _images(1, SIZE).numpy()})[0].shape) == shape
    _export(model, tmp_path / "d.onnx", dynamic=True, **{k: v for k, v in kw.items() if k != "upsample_to"})
    assert all(isinstance(d, str) for d in _declared(tmp_path / "d.onnx")[0][-2:])  # dynamic stays dynamic
