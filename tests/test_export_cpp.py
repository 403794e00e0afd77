"""The C++ runner (export/cpp, OpenCV DNN): builds with CMake when the toolchain and OpenCV's dnn /
imgcodecs / imgproc development files are installed (skipped otherwise, with the reason), and writes
the same label PNGs as the Python runner on ToyCity val images."""

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from softlabelseg_export.pipeline import export_from_recipe
from softlabelseg_export.runtime import OnnxSegmenter, read_image, segment_files
from softlabelseg_export.testing import toycity_setup

REPO = Path(__file__).resolve().parents[1]
INSTALL = "apt-get install cmake g++ libopencv-dnn-dev libopencv-imgcodecs-dev libopencv-imgproc-dev"


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    """Path of the built ``softlabelseg_infer``; skips when it cannot be built here."""
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"C++ runner not built: {', '.join(missing)} not found ({INSTALL})")
    build = tmp_path_factory.mktemp("cpp_build")
    cmd = ["cmake", "-S", str(REPO / "export/cpp"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"]
    configure = subprocess.run(cmd, capture_output=True, text=True)
    if configure.returncode != 0:
        if "OpenCV" in configure.stdout + configure.stderr:
            pytest.skip(f"C++ runner not built: OpenCV development files not found ({INSTALL})")
        pytest.fail(f"cmake configure failed:\n{configure.stdout}\n{configure.stderr}")
    compiled = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return build / "softlabelseg_infer"


@pytest.fixture(scope="module")
def toycity(tmp_path_factory):
    root = tmp_path_factory.mktemp("toycity_cpp")
    setup = toycity_setup(root, REPO)
    common = dict(config_file=setup["config_file"], checkpoint=setup["checkpoint"])
    export_from_recipe(**common, output=str(root / "logits.onnx"))
    export_from_recipe(
        **common, output=str(root / "labels.onnx"), output_kind="labels", upsample_to="original"
    )
    export_from_recipe(**common, output=str(root / "dynamic.onnx"), dynamic=True)
    images = root / "val_images"
    images.mkdir()
    for record in setup["records"]:
        shutil.copy(record["file_name"], images / Path(record["file_name"]).name)
    return dict(setup, root=root, images=images)


def _run(runner, *args):
    return subprocess.run([str(runner), *map(str, args)], capture_output=True, text=True, timeout=120)


def _margin(segmenter, image):
    """Top-2 gap of the Python runner's upsampled logits: where float rounding may flip the argmax."""
    top2 = np.sort(segmenter.predict_scores(image), axis=0)[-2:]
    return top2[1] - top2[0]


@pytest.mark.parametrize("graph", ["logits", "labels"])
def test_cpp_labels_equal_python_runner_on_toycity_val(runner, toycity, tmp_path, graph):
    model = toycity["root"] / f"{graph}.onnx"
    run = _run(
        runner, "--model", model, "--input", toycity["images"], "--output", tmp_path / "cpp", "--threads", 1
    )
    assert run.returncode == 0, run.stderr
    assert f"{len(toycity['records'])} image(s)" in run.stdout and "images/s" in run.stdout
    segment_files(OnnxSegmenter(model, threads=1), toycity["images"], tmp_path / "py", progress=False)
    scores = OnnxSegmenter(toycity["root"] / "logits.onnx", threads=1)
    differing = pixels = 0
    for py in sorted((tmp_path / "py").glob("*_labels.png")):
        a = cv2.imread(str(py), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "cpp" / py.name), cv2.IMREAD_UNCHANGED)
        assert b is not None and b.dtype == np.uint8 and a.shape == b.shape == (256, 512)
        wrong = a != b
        if wrong.any():  # OpenCV DNN and ONNX Runtime round differently: only near-ties may differ
            image = read_image(toycity["images"] / py.name.replace("_labels.png", ".png"))
            assert (_margin(scores, image)[wrong] < 1e-4).all()
        else:
            overlay = py.name.replace("_labels", "_overlay")
            np.testing.assert_array_equal(cv2.imread(str(tmp_path / "py" / overlay)),
                                          cv2.imread(str(tmp_path / "cpp" / overlay)))  # fmt: skip
        differing += int(wrong.sum())
        pixels += a.size
    print(f"C++ vs Python runner ({graph} graph): {differing} of {pixels} label pixels differ")
    assert differing <= 1e-4 * pixels


def test_cpp_errors(runner, toycity, tmp_path):
    run = _run(
        runner,
        "--model",
        toycity["root"] / "dynamic.onnx",
        "--input",
        toycity["images"],
        "--output",
        tmp_path,
    )
    assert run.returncode == 2 and "dynamic input size" in run.stderr and "--input-size" in run.stderr
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    shutil.copy(next(toycity["images"].iterdir()), tmp_path / "in" / "ok.png")
    run = _run(
        runner,
        "--model",
        toycity["root"] / "logits.onnx",
        "--input",
        tmp_path / "in",
        "--output",
        tmp_path / "o",
    )
    assert run.returncode == 1 and "cannot read image" in run.stderr and "broken.png" in run.stderr
    assert (tmp_path / "o" / "ok_labels.png").exists()
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(b"\x08\x07")  # a ModelProto with ir_version only: no softlabelseg metadata
    run = _run(runner, "--model", plain, "--input", tmp_path / "in", "--output", tmp_path / "o")
    assert run.returncode == 2 and "metadata lacks" in run.stderr
    assert _run(runner, "--model", plain).returncode == 2  # usage
