"""Exports whose graph takes the full image and resizes it itself (``--resize-in-graph``).

The in-graph resize must match the training filter (softlabel_ops' torch:bilinear on uint8 images:
float32 ``F.interpolate``, align_corners=False, rounded half to even) and the Python runner's resize
(export/runtime.py, OpenCV on float32): equal except one grey level where the exact value sits on a
rounding tie (x.5), which the three break by their own float rounding of the sampling positions.
The runners read ``resize_in_graph`` from the metadata and send the image as it is.
"""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch
from softlabelseg_export.export_onnx import main as export_main
from softlabelseg_export.exporter import ExportError, export_onnx
from softlabelseg_export.metadata import read_metadata
from softlabelseg_export.runtime import OnnxSegmenter, input_size_for, open_session, resize_image
from softlabelseg_export.wrapper import ExportWrapper
from torch import nn

from softlabel_ops import resize_image as training_resize
from softlabel_ops.filters import torch_linear
from softlabel_ops.taps import apply_taps
from tests.helpers.export import StandInSegmentor, stand_in_metadata

# Full-image sizes: integer multiples of the model size (exact) and others, small to 1/2 of Cityscapes.
SIZES = [(360, 480), (256, 512), (363, 481), (100, 37), (257, 511), (33, 17), (513, 1023), (720, 960)]
# Tolerance: values may differ by one grey level only, only where the exact (float64) bilinear value lies
# within TIE levels of a rounding boundary k + 0.5 (float32 sampling positions, as each side computes
# them, move a value by a few thousandths of a level: 0.007 at most measured here; ratios such as
# 37 -> 9 give exact ties), and on at most MAX_SHARE of all values (measured over the eight images: 0.12%
# against the training filter, 0.09% against the runner, whose own resize is 0.13% off the training
# filter; 0.31% on the worst image).
TIE, MAX_SHARE = 0.02, 5e-3
TOYCITY = "projects/SoftLabelSeg/configs/toycity/tiny_soft.py"


class PassThrough(nn.Module):
    """A "segmentor" whose logits are its uint8 input as float32: the graph returns the resized image."""

    def forward_logits(self, image: torch.Tensor) -> torch.Tensor:
        return image.float()


def _meta(factor=0.25):
    meta = stand_in_metadata(3, factor)
    meta.image_resize = "torch:bilinear"
    return meta


def _graph_resize(session, image: np.ndarray) -> np.ndarray:
    out = session.run(None, {"image": np.ascontiguousarray(image.transpose(2, 0, 1)[None])})[0][0]
    return out.transpose(1, 2, 0)


def _exact_resize(image: np.ndarray, size) -> np.ndarray:
    """torch:bilinear of a uint8 (H, W, 3) image in float64, before rounding: the value each side rounds."""
    rows = apply_taps(image.astype(np.float64), *torch_linear(image.shape[0], size[0]), axis=0)
    return apply_taps(rows, *torch_linear(image.shape[1], size[1]), axis=1)


def _differing(a: np.ndarray, b: np.ndarray, exact: np.ndarray) -> int:
    """Values where ``a`` and ``b`` differ; each must be one grey level, at a rounding tie of ``exact``."""
    assert a.shape == b.shape == exact.shape
    diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
    assert diff.max() <= 1, f"{diff.max()} grey levels apart"
    off_tie = np.abs(exact - np.floor(exact) - 0.5)[diff > 0]
    assert (off_tie < TIE).all(), f"values differ {off_tie.max():.3g} away from a rounding tie"
    return int((diff > 0).sum())


@pytest.mark.parametrize("dynamic", [True, False], ids=["by-factor", "to-static-size"])
def test_in_graph_resize_matches_the_runner_and_the_training_filter(tmp_path, dynamic):
    path = tmp_path / "resize.onnx"
    meta = _meta()
    wrapper = ExportWrapper(PassThrough(), resize_factor=0.25) if dynamic else ExportWrapper(
        PassThrough(), resize_to=(90, 120))
    export_onnx(wrapper, path, meta, (90, 120), dynamic=dynamic)
    read = read_metadata(path)
    assert read.resize_in_graph and read.input_size == (None if dynamic else [90, 120])
    session = open_session(path)
    assert session.get_inputs()[0].shape[2:] == ["height", "width"]  # any image size goes in
    rng = np.random.default_rng(0)
    differing = total = 0
    for h, w in SIZES:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        size = input_size_for(h, w, read)
        graph = _graph_resize(session, image)
        assert graph.shape == (*size, 3)
        assert graph.min() >= 0 and graph.max() <= 255 and np.array_equal(graph, np.rint(graph))
        exact = _exact_resize(image, size)
        runner = resize_image(image, size, "torch:bilinear")
        training = training_resize(image, size, "torch:bilinear")
        for reference in (runner, training):
            differing += _differing(graph, reference, exact)
            total += graph.size
    print(f"in-graph resize ({'factor' if dynamic else 'static size'}) vs runner and training filter: "
          f"{differing} of {total} values differ by one grey level")
    assert differing <= MAX_SHARE * total


def _plain_and_inside_exports(tmp_path):
    """One stand-in model exported twice, dynamic: plain and with the 1/4 resize inside the graph."""
    torch.manual_seed(0)
    model = StandInSegmentor(num_classes=5).eval()
    plain, inside = tmp_path / "plain.onnx", tmp_path / "inside.onnx"
    export_onnx(ExportWrapper(model), plain, _meta(), (16, 32), dynamic=True)
    export_onnx(ExportWrapper(model, resize_factor=0.25), inside, _meta(), (16, 32), dynamic=True)
    return plain, inside


def test_segmenter_sends_the_full_image_and_labels_match(tmp_path):
    plain, inside = _plain_and_inside_exports(tmp_path)
    a, b = OnnxSegmenter(plain, threads=1), OnnxSegmenter(inside, threads=1)
    rng = np.random.default_rng(1)
    for h, w in [(64, 128), (120, 96), (61, 130)]:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert b.prepare(image).shape == (1, 3, h, w)  # the image as it is
        assert a.prepare(image).shape == (1, 3, *input_size_for(h, w, a.meta))
        sa, sb = a.predict_scores(image), b.predict_scores(image)
        assert sa.shape == sb.shape == (5, h, w)
        if h % 4 == 0 and w % 4 == 0:  # the same model input: the same scores
            np.testing.assert_allclose(sb, sa, atol=1e-5)
            np.testing.assert_array_equal(b.predict(image), a.predict(image))
        else:  # a few input values one grey level apart
            assert np.abs(sb - sa).max() < 0.05


def test_resize_in_graph_refusals(tmp_path):
    model = StandInSegmentor(num_classes=3).eval()
    area = stand_in_metadata(3, 0.25)
    area.image_resize = "cv2:area"
    with pytest.raises(ExportError, match="torch:bilinear filter .* trains with cv2:area"):
        export_onnx(ExportWrapper(model, resize_to=(16, 32)), tmp_path / "a.onnx", area, (16, 32))
    with pytest.raises(ExportError, match="--fp16"):
        wrapper = ExportWrapper(model, resize_to=(16, 32))
        export_onnx(wrapper, tmp_path / "b.onnx", _meta(), (16, 32), fp16=True)
    with pytest.raises(ExportError, match="--upsample-to"):
        wrapper = ExportWrapper(model, resize_to=(16, 32), upsample_to=(64, 128))
        export_onnx(wrapper, tmp_path / "c.onnx", _meta(), (16, 32))
    with pytest.raises(ExportError, match="--exporter torchscript"):
        wrapper = ExportWrapper(model, resize_factor=0.25)
        export_onnx(wrapper, tmp_path / "d.onnx", _meta(), (16, 32), dynamic=True, exporter="dynamo",
                    opset=18)
    assert not list(tmp_path.iterdir())  # nothing written


def test_export_cli_resize_in_graph(tmp_path, capsys):
    out = tmp_path / "toy.onnx"
    args = ["--config-file", TOYCITY, "--random-init", "--output", str(out), "--resize-in-graph"]
    assert export_main(args) == 0
    assert "resized in the graph to 32x64" in capsys.readouterr().out
    meta = read_metadata(out)
    assert meta.resize_in_graph and meta.input_size == [32, 64] and meta.image_resize == "torch:bilinear"
    image = np.random.default_rng(2).integers(0, 256, (256, 512, 3), dtype=np.uint8)
    assert OnnxSegmenter(out, threads=1).predict(image).shape == (256, 512)
    code = export_main(["--config-file", TOYCITY, "--random-init", "--output", str(tmp_path / "b.onnx"),
                        "--resize-in-graph", "--fp16"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "error: --resize-in-graph with --fp16" in err
    assert not (tmp_path / "b.onnx").exists()


_SERVED_CHECK = """
import sys
import numpy as np
from softlabelseg_export.serving.model import SegmentationModel

served = SegmentationModel("m", sys.argv[1], threads=1)
reference = SegmentationModel("p", sys.argv[2], threads=1)
assert served.parameters()["resize_in_graph"] is True
assert reference.parameters()["resize_in_graph"] is False
image = np.random.default_rng(3).integers(0, 256, (96, 160, 3), dtype=np.uint8)
labels, scores = served.segment(image, with_scores=True)
expected, expected_scores = reference.segment(image, with_scores=True)
assert scores.shape == expected_scores.shape == (5, 24, 40), scores.shape  # the graph shrank it
np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
np.testing.assert_array_equal(labels, expected)
print("same")
"""


@pytest.mark.skipif(importlib.util.find_spec("kserve") is None, reason="kserve (the [serve] extra) missing")
def test_server_model_sends_the_full_image(tmp_path):
    plain, inside = _plain_and_inside_exports(tmp_path)
    # its own process: KServe's and tritonclient.grpc's protobuf modules cannot share one (the serving tests
    # import the latter)
    done = subprocess.run([sys.executable, "-c", _SERVED_CHECK, str(inside), str(plain)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "same", done.stderr[-2000:]
