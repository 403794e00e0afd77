"""The three "segment a folder" tools agree (softlabelseg.folder_contract): a phone photo stored sideways with
an EXIF Orientation=6 tag comes out upright, as the same pixels saved upright, from tools/demo.py, the Python
runner (export/infer_onnx.py) and the C++ runner; the output names, the same-stem refusal, the extensions
and the palette (ignore black) are one rule.
"""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from softlabelseg.folder_contract import (
    IMAGE_EXTENSIONS,
    SameStemError,
    blend,
    output_stems,
    output_targets,
    palette,
    read_image,
)

from tests import test_export_cpp
from tests.helpers.export import toycity_setup
from tests.helpers.repo import REPO, load_tool

cpp_build = test_export_cpp.cpp_build  # the C++ runner, built once a session (skips without its tools)
ORIENTATION = 0x0112  # the EXIF tag; 6: the stored image is shown turned 90 degrees clockwise
STORED, UPRIGHT = (256, 512), (512, 256)  # (height, width) of the JPEG's pixels and of the photo shown


def write_rotated_jpeg(path: Path, rgb: np.ndarray) -> None:
    """``rgb`` stored as is in a JPEG whose EXIF says Orientation=6 (as a phone held upright writes it)."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(rgb).save(path, "JPEG", quality=95, exif=exif.tobytes())


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder with ``side.jpg`` (a toycity image, stored 512 wide x 256 high, Orientation=6) and
    ``upright.png`` (the pixels OpenCV shows for it, saved losslessly), plus a toycity model, its checkpoint
    and its ONNX export."""
    from softlabelseg_export.pipeline import export_from_recipe

    root = tmp_path_factory.mktemp("photos")
    setup = toycity_setup(root / "toy", REPO, num_val=1)
    stored = cv2.cvtColor(cv2.imread(setup["records"][0]["file_name"]), cv2.COLOR_BGR2RGB)
    assert stored.shape[:2] == STORED
    folder = root / "in"
    folder.mkdir()
    write_rotated_jpeg(folder / "side.jpg", stored)
    upright = read_image(folder / "side.jpg")
    cv2.imwrite(str(folder / "upright.png"), cv2.cvtColor(upright, cv2.COLOR_RGB2BGR))
    onnx = root / "m.onnx"
    export_from_recipe(setup["config_file"], setup["checkpoint"], str(onnx))
    return dict(setup, folder=folder, stored=stored, upright=upright, onnx=str(onnx))


def test_decoding_applies_the_exif_orientation(photos):
    raw = cv2.imread(str(photos["folder"] / "side.jpg"), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert raw.shape[:2] == STORED and photos["upright"].shape[:2] == UPRIGHT
    np.testing.assert_array_equal(photos["upright"], cv2.cvtColor(cv2.rotate(raw, cv2.ROTATE_90_CLOCKWISE),
                                                                  cv2.COLOR_BGR2RGB))
    from PIL import ImageOps  # Pillow agrees once told to apply the tag (its decoder rounds differently)

    pil = np.asarray(ImageOps.exif_transpose(Image.open(photos["folder"] / "side.jpg")).convert("RGB"))
    assert pil.shape == photos["upright"].shape
    assert np.abs(pil.astype(int) - photos["upright"]).mean() < 2


def test_the_model_server_decodes_the_photo_upright(photos):
    """A request's image bytes are decoded as the folder tools decode the file: the same upright pixels."""
    from softlabelseg_export.serving.requests import ImageLimits, decode_image

    data = (photos["folder"] / "side.jpg").read_bytes()
    np.testing.assert_array_equal(decode_image(data, ImageLimits()), photos["upright"])


def _outputs(folder: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    labels, overlay = output_targets(folder, stem)
    return cv2.imread(str(labels), cv2.IMREAD_UNCHANGED), cv2.imread(str(overlay), cv2.IMREAD_COLOR)


def _same_as_upright(out: Path, legend: bool = False) -> None:
    """The rotated photo's outputs equal the upright copy's, at the upright size."""
    labels, overlay = _outputs(out, "side")
    labels_up, overlay_up = _outputs(out, "upright")
    assert labels.shape == UPRIGHT
    np.testing.assert_array_equal(labels, labels_up)
    np.testing.assert_array_equal(overlay, overlay_up)
    assert overlay.shape[0] > UPRIGHT[0] if legend else overlay.shape[:2] == UPRIGHT


def test_the_demo_segments_the_photo_upright(photos, tmp_path):
    demo = load_tool("demo")
    assert demo.main(["--config-file", photos["config_file"], "--input", str(photos["folder"]), "--output",
                      str(tmp_path), f"train.init_checkpoint={photos['checkpoint']}"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "side_labels.png", "side_overlay.png", "upright_labels.png", "upright_overlay.png"]
    _same_as_upright(tmp_path, legend=True)


def test_the_python_runner_segments_the_photo_upright(photos, tmp_path):
    from softlabelseg_export import infer_onnx

    assert infer_onnx.main(["--model", photos["onnx"], "--input", str(photos["folder"]), "--output",
                            str(tmp_path), "--threads", "1"]) == 0
    _same_as_upright(tmp_path)


def test_the_cpp_runner_segments_the_photo_upright(photos, cpp_build, tmp_path):
    run = test_export_cpp._run(cpp_build[0], "--model", photos["onnx"], "--input", photos["folder"],
                               "--output", tmp_path, "--threads", "1")
    assert run.returncode == 0, run.stderr
    _same_as_upright(tmp_path)
    from softlabelseg_export import infer_onnx  # and the Python runner's labels, pixel for pixel

    assert infer_onnx.main(["--model", photos["onnx"], "--input", str(photos["folder"]), "--output",
                            str(tmp_path / "py"), "--threads", "1"]) == 0
    np.testing.assert_array_equal(_outputs(tmp_path, "side")[0], _outputs(tmp_path / "py", "side")[0])


def test_two_inputs_of_one_stem_are_refused_by_every_tool(photos, cpp_build, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes((photos["folder"] / "upright.png").read_bytes())
    (folder / "a.jpg").write_bytes((photos["folder"] / "side.jpg").read_bytes())
    with pytest.raises(SameStemError, match=r"a.jpg' and '.*a.png' would both write '.*a_labels.png'"):
        output_stems(sorted(folder.iterdir()), folder, tmp_path / "out")
    demo = load_tool("demo")
    assert demo.main(["--config-file", photos["config_file"], "--input", str(folder), "--output",
                      str(tmp_path / "demo"), f"train.init_checkpoint={photos['checkpoint']}"]) == 2
    run = test_export_cpp._run(cpp_build[0], "--model", photos["onnx"], "--input", folder, "--output",
                               tmp_path / "cpp", "--threads", "1")
    assert run.returncode == 2 and "a.jpg' and '" in run.stderr and "would both write" in run.stderr
    assert not (tmp_path / "demo").exists() and not list((tmp_path / "cpp").rglob("*.png"))


def test_one_list_of_extensions_and_one_ignore_colour():
    source = (Path(REPO) / "export/cpp/src/folder.cpp").read_text()
    listed = re.search(r"kImageExtensions = \{([^}]*)\}", source).group(1)
    assert tuple(re.findall(r'"([^"]+)"', listed)) == IMAGE_EXTENSIONS  # the C++ runner's copy of the list
    lut = palette([[10, 20, 30], [40, 50, 60]], ignore_value=1)
    assert lut[0].tolist() == [10, 20, 30] and lut[1].tolist() == [0, 0, 0] and lut[7].tolist() == [0, 0, 0]
    image = np.full((1, 3, 3), 200, np.uint8)
    mixed = blend(image, np.array([[0, 1, 7]], np.uint8), lut, alpha=0.5)
    assert mixed[0].tolist() == [[105, 110, 115], [100, 100, 100], [100, 100, 100]]


def test_the_python_runner_refuses_a_same_stem_folder_without_writing(photos, tmp_path, capsys):
    from softlabelseg_export import infer_onnx

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("sub/x.png", "sub/x.webp"):
        cv2.imwrite(str(folder / name), cv2.cvtColor(photos["upright"], cv2.COLOR_RGB2BGR))
    rc = infer_onnx.main(["--model", photos["onnx"], "--input", str(folder), "--output", str(tmp_path / "o")])
    assert rc == 2 and "sub/x_labels.png" in capsys.readouterr().err and not (tmp_path / "o").exists()
