"""The C++ runner (export/cpp, ONNX Runtime C API): built once per session with CMake against the
installed onnxruntime wheel and the vendored C API headers (skipped, with the reason, when cmake, a
compiler, OpenCV's imgcodecs / imgproc development files or the headers are missing). Its label PNGs
must equal the Python runner's (export/infer_onnx.py) and PyTorch's except at score near-ties: on
ToyCity val for every output kind, and on the paper models (random weights, small inputs)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from softlabelseg_export.exporter import export_onnx
from softlabelseg_export.folder_runner import segment_files
from softlabelseg_export.pipeline import export_from_recipe
from softlabelseg_export.random_models import paper_model
from softlabelseg_export.recipe import recipe_metadata
from softlabelseg_export.runtime import OnnxSegmenter, read_image
from softlabelseg_export.wrapper import ExportWrapper

from tests.helpers.export import PAPER_MODELS, nan_scores_model, poison_onnx, toycity_setup

REPO = Path(__file__).resolve().parents[1]
INSTALL = "apt-get install cmake g++ libopencv-imgcodecs-dev libopencv-imgproc-dev"
# Python runner vs C++ runner: the same ONNX Runtime scores, upsampled in a different summation
# order, so labels may differ only where the top two classes tie to float rounding.
TIE = 1e-4


@pytest.fixture(scope="session")
def cpp_build(tmp_path_factory):
    """(path of the built ``softlabelseg_infer``, CMake's configure output); skips when it cannot be
    built here."""
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"C++ runner not built: {', '.join(missing)} not found ({INSTALL})")
    build = tmp_path_factory.mktemp("cpp_build")
    cmd = ["cmake", "-S", str(REPO / "export/cpp"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
           f"-DPython3_EXECUTABLE={sys.executable}"]  # fmt: skip
    configure = subprocess.run(cmd, capture_output=True, text=True)
    printed = configure.stdout + configure.stderr
    if configure.returncode != 0:
        if "OpenCV" in printed:
            pytest.skip(f"C++ runner not built: OpenCV development files not found ({INSTALL})")
        if "C API headers not found" in printed:
            pytest.skip("C++ runner not built: ONNX Runtime C API headers (../shared/vendor) not found")
        pytest.fail(f"cmake configure failed:\n{printed}")
    compiled = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return build / "softlabelseg_infer", printed


@pytest.fixture(scope="session")
def runner(cpp_build):
    return cpp_build[0]


def _run(runner, *args):
    return subprocess.run([str(runner), *map(str, args)], capture_output=True, text=True, timeout=300)


def _top2_gap(scores: np.ndarray) -> np.ndarray:
    top2 = np.sort(scores, axis=0)[-2:]
    return top2[1] - top2[0]


def _compare(a: np.ndarray, b: np.ndarray, scores: np.ndarray, tie: float) -> int:
    """Number of pixels where label maps ``a`` and ``b`` differ; each must be a near-tie of ``scores``
    (C, H, W): its top-two gap below ``tie``."""
    assert a.shape == b.shape == scores.shape[1:] and a.dtype == b.dtype == np.uint8
    wrong = a != b
    if wrong.any():
        gaps = _top2_gap(scores)[wrong]
        assert (gaps < tie).all(), f"labels differ where the scores do not tie (gap {gaps.max():.3g})"
    return int(wrong.sum())


def test_cmake_says_which_runtime_it_found(cpp_build, tmp_path):
    _, printed = cpp_build
    assert f"ONNX Runtime: Python wheel onnxruntime {ort.__version__}" in printed
    assert "C API 29" in printed and "libonnxruntime.so.1" in printed

    def configure(*options):
        build = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        cmd = ["cmake", "-S", str(REPO / "export/cpp"), "-B", str(build), *options]
        done = subprocess.run(cmd, capture_output=True, text=True)
        return done.returncode, done.stdout + done.stderr

    # an official release layout: include/onnxruntime_c_api.h, lib/libonnxruntime.so
    headers = Path(printed.split("ONNX Runtime headers: ")[1].split(" (C API")[0])
    wheel_lib = next((Path(ort.__file__).parent / "capi").glob("libonnxruntime.so.1.*"))
    release = tmp_path / "onnxruntime-linux-x64"
    (release / "lib").mkdir(parents=True)
    (release / "include").symlink_to(headers)
    for name in ("libonnxruntime.so", "libonnxruntime.so.1"):
        (release / "lib" / name).symlink_to(wheel_lib)
    rc, out = configure(f"-DONNXRUNTIME_ROOT={release}")
    assert rc == 0 and f"ONNX Runtime: release folder {release}" in out, out
    rc, out = configure(f"-DONNXRUNTIME_ROOT={tmp_path / 'nothing'}")
    assert rc != 0 and "is not an ONNX Runtime release" in out and "include/onnxruntime_c_api.h" in out
    rc, out = configure(f"-DPython3_EXECUTABLE={sys.executable}", f"-DORT_HEADERS={tmp_path / 'nothing'}")
    assert rc != 0 and "C API headers not found" in out and "-DONNXRUNTIME_ROOT" in out


@pytest.fixture(scope="module")
def toycity(tmp_path_factory):
    root = tmp_path_factory.mktemp("toycity_cpp")
    setup = toycity_setup(root, REPO)
    common = dict(config_file=setup["config_file"], checkpoint=setup["checkpoint"])
    graphs = {
        "logits": {},
        "dynamic": dict(dynamic=True),
        "labels": dict(output_kind="labels", upsample_to="original"),
        "labels_small": dict(output_kind="labels"),  # no in-graph upsampling: nearest in the runner
        "probs": dict(output_kind="probs", upsample_to="original"),
        "probs_dynamic": dict(output_kind="probs", dynamic=True, upsample_to="original"),
        "fp16": dict(fp16=True),  # float16 compute, float32 output
        "resize_in_graph": dict(resize_in_graph=True),  # the full image in: the runner must not resize
        "resize_in_graph_dynamic": dict(resize_in_graph=True, dynamic=True),
    }
    for name, kw in graphs.items():
        export_from_recipe(**common, output=str(root / f"{name}.onnx"), **kw)
    images = root / "val_images"
    images.mkdir()
    for record in setup["records"]:
        shutil.copy(record["file_name"], images / Path(record["file_name"]).name)
    return dict(setup, root=root, images=images, graphs=list(graphs))


@pytest.mark.parametrize(
    "graph", ["logits", "dynamic", "labels", "labels_small", "probs", "probs_dynamic", "fp16",
              "resize_in_graph", "resize_in_graph_dynamic"]
)
def test_cpp_labels_equal_python_runner_on_toycity_val(runner, toycity, tmp_path, graph):
    model = toycity["root"] / f"{graph}.onnx"
    run = _run(runner, "--model", model, "--input", toycity["images"], "--output", tmp_path / "cpp",
               "--threads", 1)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"{len(toycity['records'])} image(s)" in run.stdout and "images/s" in run.stdout
    segment_files(OnnxSegmenter(model, threads=1), toycity["images"], tmp_path / "py", progress=False)
    scores = OnnxSegmenter(toycity["root"] / "logits.onnx", threads=1)
    differing = pixels = 0
    for py in sorted((tmp_path / "py").glob("*_labels.png")):
        a = cv2.imread(str(py), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "cpp" / py.name), cv2.IMREAD_UNCHANGED)
        assert b is not None and a.shape == (256, 512)
        image = read_image(toycity["images"] / py.name.replace("_labels.png", ".png"))
        wrong = _compare(a, b, scores.predict_scores(image), TIE)
        if not wrong:
            overlay = py.name.replace("_labels", "_overlay")
            np.testing.assert_array_equal(cv2.imread(str(tmp_path / "py" / overlay)),
                                          cv2.imread(str(tmp_path / "cpp" / overlay)))  # fmt: skip
        differing += wrong
        pixels += a.size
    print(f"C++ vs Python runner ({graph} graph): {differing} of {pixels} label pixels differ")
    assert differing <= 1e-4 * pixels


def test_cpp_keeps_sub_folders_and_threads(runner, toycity, tmp_path):
    nested = tmp_path / "in" / "city_a"
    nested.mkdir(parents=True)
    first = sorted(toycity["images"].iterdir())[0]
    shutil.copy(first, nested / first.name)
    shutil.copy(first, tmp_path / "in" / first.name)  # same name, other folder: no collision
    outs = []
    for threads in (1, 2):
        out = tmp_path / f"out{threads}"
        run = _run(runner, "--model", toycity["root"] / "dynamic.onnx", "--input", tmp_path / "in",
                   "--output", out, "--threads", threads)  # fmt: skip
        assert run.returncode == 0, run.stderr
        pair = (out / f"{first.stem}_labels.png", out / "city_a" / f"{first.stem}_labels.png")
        outs.append([cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in pair])
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)  # the thread count does not change a pixel
    np.testing.assert_array_equal(outs[0][0], outs[0][1])


def test_cpp_errors(runner, toycity, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    shutil.copy(next(toycity["images"].iterdir()), tmp_path / "in" / "ok.png")
    run = _run(runner, "--model", toycity["root"] / "logits.onnx", "--input", tmp_path / "in",
               "--output", tmp_path / "o")  # fmt: skip
    assert run.returncode == 1 and "cannot read image" in run.stderr and "broken.png" in run.stderr
    assert "1 image(s)" in run.stdout and "(1 failed)" in run.stdout
    assert (tmp_path / "o" / "ok_labels.png").exists()  # the failure did not stop the run
    shutil.copy(tmp_path / "in" / "ok.png", tmp_path / "in" / "ok.jpg")  # same output name
    run = _run(runner, "--model", toycity["root"] / "logits.onnx", "--input", tmp_path / "in",
               "--output", tmp_path / "o2")  # fmt: skip
    assert run.returncode == 2 and "would both write" in run.stderr and "ok.jpg" in run.stderr
    assert not (tmp_path / "o2").exists()  # refused before writing anything
    (tmp_path / "in" / "ok.jpg").unlink()
    # a graph without our metadata: named key, what to do
    plain = tmp_path / "plain.onnx"
    proto = onnx.load(toycity["root"] / "logits.onnx")
    del proto.metadata_props[:]
    onnx.save(proto, plain)
    run = _run(runner, "--model", plain, "--input", tmp_path / "in", "--output", tmp_path / "o")
    assert run.returncode == 2 and "metadata lacks 'softlabelseg.class_names'" in run.stderr
    assert "export_onnx.py" in run.stderr
    # the float32-resize rule is read from its own key, not from the mode's name
    no_rule = tmp_path / "no_rule.onnx"
    proto = onnx.load(toycity["root"] / "logits.onnx")
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key != "softlabelseg.image_resize_float32"]
    del proto.metadata_props[:]
    for key, value in keep:
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, no_rule)
    run = _run(runner, "--model", no_rule, "--input", tmp_path / "in", "--output", tmp_path / "o")
    assert run.returncode == 2 and "'softlabelseg.image_resize_float32' is missing" in run.stderr
    assert "export_onnx.py" in run.stderr
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07junk")
    junk = tmp_path / "junk.onnx"
    run = _run(runner, "--model", junk, "--input", tmp_path / "in", "--output", tmp_path / "o")
    assert run.returncode == 2 and "cannot load model" in run.stderr and "junk.onnx" in run.stderr
    run = _run(runner, "--model", toycity["root"] / "logits.onnx", "--input", tmp_path / "nothing",
               "--output", tmp_path / "o")  # fmt: skip
    assert run.returncode == 2 and "does not exist" in run.stderr
    assert _run(runner, "--model", plain).returncode == 2  # usage
    assert _run(runner, "--model", plain, "--input", "x", "--output", "y", "--threads", "two").returncode == 2


def test_cpp_refuses_nonfinite_weights_and_skips_nonfinite_scores(runner, toycity, tmp_path):
    for graph in ("logits", "labels", "fp16"):  # float32 and float16 initializers; an in-graph argmax
        poisoned, name = poison_onnx(toycity["root"] / f"{graph}.onnx", tmp_path / f"{graph}_nan.onnx")
        run = _run(runner, "--model", poisoned, "--input", toycity["images"], "--output", tmp_path / "o")
        assert run.returncode == 2, run.stderr
        assert f"{graph}_nan.onnx' holds NaN or inf weights in 1 initializer(s) ({name})" in run.stderr
        assert "export_onnx.py" in run.stderr and not (tmp_path / "o").exists()
    nan_scores = nan_scores_model(tmp_path / "nan_scores.onnx")
    run = _run(runner, "--model", nan_scores, "--input", toycity["images"], "--output", tmp_path / "o")
    count = len(toycity["records"])
    assert run.returncode == 1 and f"({count} failed)" in run.stdout
    assert run.stderr.count("NaN or inf score(s)") == count
    assert not list((tmp_path / "o").rglob("*.png"))  # never all-zero labels


def test_cpp_never_writes_inside_the_input_folder(runner, toycity, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(toycity["images"], folder)
    before = {p: p.read_bytes() for p in folder.rglob("*")}
    (tmp_path / "link").symlink_to(folder)
    for output, where in ((folder, "is the input folder"), (folder / "out", "is inside the input folder"),
                          (tmp_path / "link" / "x", "is inside the input folder")):  # fmt: skip
        run = _run(runner, "--model", toycity["root"] / "logits.onnx", "--input", folder, "--output", output)
        assert run.returncode == 2 and f"output folder '{output}' {where}" in run.stderr, run.stderr
        assert "Choose an output folder outside the input folder" in run.stderr
    assert {p: p.read_bytes() for p in folder.rglob("*")} == before


def test_cpp_memory_budget_and_atomic_outputs(runner, toycity, tmp_path):
    limit = ["--max-memory-gb", "0.01", "--threads", 1]
    run = _run(runner, "--model", toycity["root"] / "probs_dynamic.onnx", "--input", toycity["images"],
               "--output", tmp_path / "o1", *limit)  # fmt: skip
    count = len(toycity["records"])
    assert run.returncode == 1 and "0 image(s)" in run.stdout and f"({count} failed)" in run.stdout
    assert "512x256 image needs about 0.02 GB with this export (limit 0.01 GB, --max-memory-gb)" in run.stderr
    assert "upsamples 19 class scores to the image's full size" in run.stderr
    assert "Export with --output-kind logits and without --upsample-to" in run.stderr
    out = tmp_path / "o2"
    first = sorted(toycity["images"].iterdir())[0]
    (out / f"{first.stem}_labels.png").mkdir(parents=True)  # this output cannot replace a folder
    run = _run(runner, "--model", toycity["root"] / "logits.onnx", "--input", toycity["images"],
               "--output", out, *limit)  # fmt: skip
    assert run.returncode == 1 and f"{count - 1} image(s)" in run.stdout and "(1 failed)" in run.stdout
    assert f"cannot write '{out / first.stem}_labels.png' (rename)" in run.stderr
    assert not list(out.glob(".tmp_*"))  # the temporary file is removed
    umask = os.umask(0o022)
    os.umask(umask)
    written = next(out.glob("*_overlay.png"))
    assert written.stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would create it


# ---- the paper models: random weights, calibrated BatchNorm, small inputs --------------------------
PAPER_SIZE = (64, 128)  # model input; images are twice as large (resolution factor 1/2)


def _paper_exports(name, root):
    cfg, model = paper_model(name, REPO, PAPER_SIZE)
    wrapper = ExportWrapper(model, "logits").eval()
    paths = {}
    for dynamic in (False, True):
        meta = recipe_metadata(cfg, model, name)
        meta.resolution_factor = 0.5
        paths[dynamic] = root / f"{name}_{'dynamic' if dynamic else 'static'}.onnx"
        export_onnx(wrapper, paths[dynamic], meta, PAPER_SIZE, dynamic=dynamic)
    return wrapper, paths


def _torch_scores(wrapper, segmenter, image):
    """PyTorch's float32 scores (C, H, W) for an RGB image, prepared as the Python runner does."""
    with torch.no_grad():
        logits = wrapper(torch.from_numpy(segmenter.prepare(image)))
        return F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)[0].numpy()


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_cpp_serves_paper_models(runner, name, tmp_path):
    wrapper, paths = _paper_exports(name, tmp_path)
    static = onnx.load(paths[False])
    dims = [d.dim_value for d in static.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 19, *PAPER_SIZE]  # a static export declares a fully static output
    rng = np.random.default_rng(1)
    images = tmp_path / "images"
    images.mkdir()
    for i, (h, w) in enumerate([(128, 256), (100, 180)]):  # 100x180 -> 50x90: not a multiple of the stride
        cv2.imwrite(str(images / f"im{i}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    for dynamic, path in paths.items():
        run = _run(runner, "--model", path, "--input", images, "--output", tmp_path / f"cpp{dynamic}",
                   "--threads", 1)  # fmt: skip
        assert run.returncode == 0, run.stderr
        python = OnnxSegmenter(path, threads=1)
        differing = vs_torch = pixels = 0
        for file in sorted(images.iterdir()):
            image = read_image(file)
            written = tmp_path / f"cpp{dynamic}" / f"{file.stem}_labels.png"
            ours = cv2.imread(str(written), cv2.IMREAD_UNCHANGED)
            differing += _compare(python.predict(image), ours, python.predict_scores(image), TIE)
            reference = _torch_scores(wrapper, python, image)
            ort_diff = float(np.abs(python.predict_scores(image) - reference).max())
            vs_torch += _compare(reference.argmax(0).astype(np.uint8), ours, reference, 2 * ort_diff + TIE)
            pixels += ours.size
        kind = "dynamic" if dynamic else "static"
        print(f"{name} {kind}: C++ vs infer_onnx.py {differing} of {pixels} label pixels differ,"
              f" vs PyTorch {vs_torch}")  # fmt: skip
        assert differing <= 1e-4 * pixels and vs_torch <= 1e-3 * pixels


def test_class_offsets_are_baked_into_the_graph_and_served_alike(runner, toycity, tmp_path):
    """A checkpoint with class offsets: the exported graph's logits equal the calibrated PyTorch model's,
    the metadata records them, verify passes against the calibrated model, and both runners serve the
    calibrated decision, pixel-identical to each other (up to score ties)."""
    from softlabelseg_export.metadata import read_metadata
    from softlabelseg_export.pipeline import verify_from_recipe
    from softlabelseg_export.recipe import build_model, load_recipe

    data = torch.load(toycity["checkpoint"], weights_only=True)
    offsets = torch.zeros(19)
    offsets[5] = 3.0  # pole: decisions move
    data["calibration"] = {"offsets": offsets, "method": "prior matching", "fit_images": 7,
                           "fit_dataset": "toycity_sem_seg_train"}
    calibrated = tmp_path / "calibrated.pth"
    torch.save(data, calibrated)
    graph = tmp_path / "calibrated.onnx"
    export_from_recipe(config_file=toycity["config_file"], checkpoint=str(calibrated), output=str(graph))
    meta = read_metadata(graph)
    assert meta.class_offsets[5] == 3.0 and "prior matching on 7 training images" in meta.calibration
    assert read_metadata(toycity["root"] / "logits.onnx").class_offsets is None  # none without them
    model = build_model(load_recipe(toycity["config_file"]), str(calibrated))
    image = toycity["mapper"](toycity["records"][0])["image"][None]
    onnx_logits = ort.InferenceSession(str(graph)).run(None, {"image": image.numpy()})[0]
    with torch.no_grad():
        torch_logits = model.forward_logits(image).numpy()
        model.apply_offsets = False
        plain = model.forward_logits(image).numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)
    assert (onnx_logits.argmax(1) != plain.argmax(1)).any()  # the offsets change decisions
    assert verify_from_recipe(str(graph), toycity["config_file"], str(calibrated), num_images=2).passed
    run = _run(runner, "--model", graph, "--input", toycity["images"], "--output", tmp_path / "cpp",
               "--threads", 1)  # fmt: skip
    assert run.returncode == 0, run.stderr
    segment_files(OnnxSegmenter(graph, threads=1), toycity["images"], tmp_path / "py", progress=False)
    scores = OnnxSegmenter(graph, threads=1)
    for py in sorted((tmp_path / "py").glob("*_labels.png")):
        a = cv2.imread(str(py), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "cpp" / py.name), cv2.IMREAD_UNCHANGED)
        image = read_image(toycity["images"] / py.name.replace("_labels.png", ".png"))
        assert _compare(a, b, scores.predict_scores(image), TIE) <= 1e-4 * a.size
