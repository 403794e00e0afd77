"""The onnxruntime-only runner: no torch import, PyTorch-equal resizing and upsampling, predictions
equal to the PyTorch evaluator's on ToyCity val, the command line and its errors."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from softlabelseg_export import infer_onnx
from softlabelseg_export.pipeline import export_from_recipe
from softlabelseg_export.runtime import (
    ImageReadError,
    OnnxSegmenter,
    read_image,
    resize_image,
    upsample_scores,
)

import softlabel_ops
from tests.helpers.export import toycity_setup

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toycity(tmp_path_factory):
    root = tmp_path_factory.mktemp("toycity_export")
    setup = toycity_setup(root, REPO)
    common = dict(config_file=setup["config_file"], checkpoint=setup["checkpoint"])
    export_from_recipe(**common, output=str(root / "logits.onnx"))
    export_from_recipe(
        **common, output=str(root / "labels.onnx"), output_kind="labels", upsample_to="original"
    )
    export_from_recipe(**common, output=str(root / "dynamic.onnx"), dynamic=True)
    return dict(setup, root=root)


def _evaluator_prediction(model, mapped):
    """argmax of the segmentor's eval output (probabilities at the record's size) and the top-2 margin
    of the logits PyTorch upsamples, to tell near-ties apart."""
    with torch.no_grad():
        probs = model([mapped])[0]["sem_seg"]
        logits = F.interpolate(
            model.forward_logits(mapped["image"][None]), size=probs.shape[-2:], mode="bilinear"
        )
    top2 = logits[0].topk(2, dim=0).values
    return probs.argmax(0).numpy(), (top2[0] - top2[1]).numpy()


def test_runner_equals_pytorch_evaluator_on_toycity_val(toycity):
    model, mapper = toycity["model"], toycity["mapper"]
    runners = {name: OnnxSegmenter(toycity["root"] / f"{name}.onnx", threads=1)
               for name in ("logits", "labels", "dynamic")}  # fmt: skip
    assert runners["labels"].meta.output_size == [256, 512] and runners["dynamic"].meta.dynamic
    pixels, differing = 0, {name: 0 for name in runners}
    for record in toycity["records"]:
        mapped = mapper(record)
        expected, margin = _evaluator_prediction(model, mapped)
        image = read_image(record["file_name"])
        # the runner's own resize gives the mapper's test image bit for bit
        np.testing.assert_array_equal(runners["logits"].prepare(image)[0], mapped["image"].numpy())
        for name, runner in runners.items():
            labels = runner.predict(image)
            assert labels.shape == image.shape[:2] and labels.dtype == np.uint8
            wrong = labels != expected
            # only float-rounding ties may differ: PyTorch's top-2 logits within 1e-4 of each other
            assert (margin[wrong] < 1e-4).all(), (name, margin[wrong].max())
            differing[name] += int(wrong.sum())
        pixels += expected.size
    assert max(differing.values()) <= 1e-4 * pixels, differing  # ties only (checked above), and rare


@pytest.mark.parametrize("align_corners", [False, True])
def test_upsample_scores_matches_interpolate(align_corners):
    rng = np.random.default_rng(1)
    for src, dst in [((8, 16), (64, 128)), ((7, 13), (50, 97)), ((5, 6), (5, 6))]:
        scores = rng.standard_normal((19, *src)).astype(np.float32) * 10
        ref = F.interpolate(
            torch.from_numpy(scores)[None], size=dst, mode="bilinear", align_corners=align_corners
        )
        # float32 sampling coordinates round differently in cv2 / numpy / PyTorch: ~1e-6 relative
        np.testing.assert_allclose(upsample_scores(scores, dst, align_corners), ref[0].numpy(), atol=5e-5)


@pytest.mark.parametrize("mode", ["torch:bilinear", "torch:nearest", "torch:area", "torch:bicubic",
                                  "cv2:linear", "cv2:area", "cv2:nearest", "cv2:cubic"])  # fmt: skip
def test_image_resize_equals_the_data_mapper_at_paper_factors(mode):
    rng = np.random.default_rng(2)
    image = cv2.GaussianBlur(rng.integers(0, 256, (128, 256, 3), dtype=np.uint8), (3, 3), 0)
    for factor in (0.125, 0.25, 0.5):
        size = (round(128 * factor), round(256 * factor))
        np.testing.assert_array_equal(
            resize_image(image, size, mode), softlabel_ops.resize_image(image, size, mode)
        )


def test_runtime_never_imports_torch(toycity, tmp_path):
    """Blocks torch (import fails) and runs the command line on a folder of images."""
    folder = tmp_path / "images"
    folder.mkdir()
    for record in toycity["records"][:2]:
        (folder / Path(record["file_name"]).name).write_bytes(Path(record["file_name"]).read_bytes())
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from softlabelseg_export import infer_onnx\n"
        f"rc = infer_onnx.main(['--model', {str(toycity['root'] / 'logits.onnx')!r},"
        f" '--input', {str(folder)!r}, '--output', {str(tmp_path / 'out')!r}, '--threads', '1'])\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'torch' and sys.modules[m] is not None]\n"
        "sys.exit(rc)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "2 image(s)" in run.stdout and "images/s" in run.stdout
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(outputs) == 4 and all(n.endswith(("_labels.png", "_overlay.png")) for n in outputs)
    labels = cv2.imread(str(next((tmp_path / "out").glob("*_labels.png"))), cv2.IMREAD_UNCHANGED)
    overlay = cv2.imread(str(next((tmp_path / "out").glob("*_overlay.png"))), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (256, 512) and labels.max() < 19 and overlay.shape == (256, 512, 3)


def test_unreadable_images(toycity, tmp_path, capsys):
    with pytest.raises(ImageReadError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageReadError, match="broken.png.*cannot read image|cannot read image.*broken.png"):
        read_image(tmp_path / "broken.png")
    model = str(toycity["root"] / "logits.onnx")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG not really")
    rc = infer_onnx.main(["--model", model, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")])
    assert rc == 1 and "skipped: cannot read image" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert infer_onnx.main(["--model", model, "--input", str(empty), "--output", str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err
