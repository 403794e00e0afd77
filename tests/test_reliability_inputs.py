"""No command destroys a file it reads, and one odd input never ends a whole run.

Protects: export, calibrate_prior and demo outputs that would replace their own inputs (checkpoint, recipe,
input image) or an existing file of another kind; ``--overwrite`` with ``train.init_checkpoint`` inside the
run folder; file names that are not UTF-8 in the runners' folders; names too long for the demo's outputs;
a bad training sample naming the file, the problem and ``skip_bad_samples``.
"""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf
from softlabelseg.engine.preflight import OutputDirError, check_output_dir
from softlabelseg.utils.fileio import OutputPathError, check_output_file
from softlabelseg_export import export_onnx

from tests.helpers.export import TOYCITY_RECIPE, stand_in_metadata, toycity_setup
from tests.helpers.repo import REPO, load_tool

RECIPE = os.path.join(REPO, TOYCITY_RECIPE)


# -- no tool writes to a path it reads -----------------------------------------------------------------------
def test_check_output_file_refuses_inputs_other_kinds_and_folders(tmp_path):
    ckpt = tmp_path / "model_final.pth"
    ckpt.write_bytes(b"weights")
    (tmp_path / "link.onnx").symlink_to(ckpt)
    with pytest.raises(OutputPathError, match="is the file this command reads"):
        check_output_file(tmp_path / "link.onnx", reads=[str(ckpt)], suffixes=(".onnx",))
    with pytest.raises(OutputPathError, match="exists and is not a .onnx file"):
        check_output_file(ckpt, suffixes=(".onnx",))
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_file(tmp_path, suffixes=(".onnx",))
    with pytest.raises(OutputPathError, match="which is a file"):
        check_output_file(ckpt / "sub" / "m.onnx", suffixes=(".onnx",))
    (tmp_path / "old.onnx").write_bytes(b"an earlier export")
    check_output_file(tmp_path / "old.onnx", reads=[str(ckpt)], suffixes=(".onnx",))  # may be replaced
    check_output_file(tmp_path / "new.onnx", reads=[str(ckpt)], suffixes=(".onnx",))


@pytest.mark.parametrize("target", ["checkpoint", "recipe", "other"])
def test_export_never_replaces_its_checkpoint_recipe_or_another_file(tmp_path, capsys, target):
    ckpt = tmp_path / "model_final.pth"
    ckpt.write_bytes(b"trained weights")
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    recipe = tmp_path / "recipe.py"
    recipe.write_text(Path(RECIPE).read_text())
    output = {"checkpoint": ckpt, "recipe": recipe, "other": other}[target]
    before = output.read_bytes()
    rc = export_onnx.main(["--config-file", str(recipe), "--checkpoint", str(ckpt), "--output", str(output)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: --output") and "Traceback" not in err
    assert output.read_bytes() == before


def test_export_output_a_folder_is_one_error_line(tmp_path, capsys):
    rc = export_onnx.main(["--config-file", RECIPE, "--random-init", "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "is a folder" in err and err.count("\n") == 2  # the warning and the error


def test_calibrate_prior_analysis_never_replaces_its_checkpoint(tmp_path, capsys):
    tool = load_tool("calibrate_prior")
    ckpt = tmp_path / "model_final.pth"
    ckpt.write_bytes(b"trained weights")
    rc = tool.main(["--config-file", RECIPE, "--checkpoint", str(ckpt), "--output", str(ckpt)])
    assert rc == 2 and "is the file this command reads" in capsys.readouterr().err
    assert ckpt.read_bytes() == b"trained weights"


@pytest.mark.parametrize("flag", [["--fit-images", "-3"], ["--iters", "-1"]])
def test_calibrate_prior_refuses_non_positive_counts(tmp_path, capsys, flag):
    tool = load_tool("calibrate_prior")
    with pytest.raises(SystemExit) as stop:
        tool.main(["--run", str(tmp_path), *flag])
    assert stop.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def _run_folder(tmp_path) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("train: {}\n")
    (out / "model_final.pth").write_bytes(b"the run's weights")
    (out / "last_checkpoint").write_text("model_final.pth")
    return out


@pytest.mark.parametrize("overwrite", [True, False])
def test_init_checkpoint_inside_the_run_folder_is_never_deleted(tmp_path, overwrite):
    out = _run_folder(tmp_path)
    init = str(out / "model_final.pth")
    cfg = OmegaConf.create({"train": {"output_dir": str(out), "init_checkpoint": init}})
    with pytest.raises(OutputDirError, match=r"init_checkpoint=.*model_final.pth is a file of the earlier "
                                             r"run.*Copy it out of the folder"):
        check_output_dir(cfg, resume=False, overwrite=overwrite, eval_only=False)
    cfg.train.init_checkpoint = str(tmp_path / "elsewhere.pth")  # what the message says: then it starts
    assert init in check_output_dir(cfg, resume=False, overwrite=True, eval_only=False)


def test_overwrite_with_init_checkpoint_in_the_folder_keeps_every_file(tmp_path, capsys):
    from softlabelseg.engine.cli import console_main

    from tests.helpers.standins import write_standin_config

    cfg = write_standin_config(tmp_path)
    out = _run_folder(tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rc = console_main(["--config-file", cfg, "--overwrite", f"train.output_dir={out}",
                       f"train.init_checkpoint={out / 'model_final.pth'}"])
    assert rc == 2 and "Copy it out of the folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_demo_never_writes_over_its_single_input_image(tmp_path, capsys):
    demo = load_tool("demo")
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.full((8, 8, 3), 7, np.uint8))
    before = image.read_bytes()
    rc = demo.main(["--config-file", RECIPE, "--input", str(image), "--output", str(tmp_path),
                    f"train.init_checkpoint={tmp_path / 'm.pth'}"])
    # the outputs are a_labels.png and a_overlay.png: beside the image, never over it
    assert rc == 2 and "m.pth does not exist" in capsys.readouterr().err
    assert image.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    (tmp_path / "file").write_text("x")
    rc = demo.main(["--config-file", RECIPE, "--input", str(image), "--output", str(tmp_path / "file"),
                    f"train.init_checkpoint={tmp_path / 'm.pth'}"])
    assert rc == 2 and "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("alpha", ["5", "-1", "nan"])
def test_demo_refuses_an_opacity_outside_0_1(tmp_path, capsys, alpha):
    demo = load_tool("demo")
    with pytest.raises(SystemExit) as stop:
        demo.main(["--config-file", RECIPE, "--input", str(tmp_path), "--output", str(tmp_path / "o"),
                   "--alpha", alpha])
    assert stop.value.code == 2 and "--alpha" in capsys.readouterr().err


# -- odd files in a folder are skipped with their name and reason --------------------------------------------
@pytest.fixture(scope="module")
def toycity(tmp_path_factory):
    return toycity_setup(tmp_path_factory.mktemp("inputs"), REPO, num_val=2)


def test_demo_skips_a_name_too_long_for_its_outputs_and_goes_on(toycity, tmp_path, capsys):
    demo = load_tool("demo")
    folder = tmp_path / "in"
    folder.mkdir()
    image = Path(toycity["records"][0]["file_name"]).read_bytes()
    long_name = "x" * 250 + ".png"  # a valid name; "<stem>_labels.png" is 261 bytes
    (folder / long_name).write_bytes(image)
    (folder / "y.png").write_bytes(image)
    rc = demo.main(["--config-file", toycity["config_file"], "--input", str(folder), "--output",
                    str(tmp_path / "out"), f"train.init_checkpoint={toycity['checkpoint']}"])
    captured = capsys.readouterr()
    assert rc == 1 and "1 image(s)" in captured.out and "1 skipped" in captured.out
    assert f"skipped: {folder / long_name}: File name too long" in captured.err
    assert (tmp_path / "out" / "y_overlay.png").is_file() and (tmp_path / "out" / "y_labels.png").is_file()


def _two_class_onnx(path, factor: float = 0.5, static: tuple[int, int] | None = None):
    """A hand-built 2-class logits graph (red and green channel) with the export metadata; ``static``:
    a fixed (h, w) input, recorded as the metadata's input_size."""
    import onnx
    from onnx import TensorProto, helper
    from softlabelseg_export.metadata import write_metadata

    nodes = [helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Slice", ["f", "zero", "two", "axis"], ["logits"])]
    inits = [helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
             helper.make_tensor("two", TensorProto.INT64, [1], [2]),
             helper.make_tensor("axis", TensorProto.INT64, [1], [1])]
    hw = list(static or "hw")
    graph = helper.make_graph(
        nodes, "two_class", [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 3, *hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, *hw])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = stand_in_metadata(2, factor=factor)
    meta.input_size = list(static) if static else None
    write_metadata(model, meta)
    onnx.save(model, path)
    return str(path)


def _odd_folder(folder: Path) -> bytes:
    """good.png, a corrupt .png and an image whose name is not UTF-8 (bytes 0xff 0xfe); returns that name."""
    folder.mkdir()
    image = np.zeros((8, 12, 3), np.uint8)
    image[:, :6, 1] = 200
    cv2.imwrite(str(folder / "good.png"), image)
    (folder / "corrupt.png").write_bytes(b"not an image")
    odd = os.fsencode(folder) + b"/odd\xff\xfe.png"
    with open(odd, "wb") as f:
        f.write((folder / "good.png").read_bytes())
    return odd


def test_runner_reads_a_file_name_that_is_not_utf8_and_goes_on(tmp_path):
    model = _two_class_onnx(tmp_path / "m.onnx")
    _odd_folder(tmp_path / "in")
    run = subprocess.run([sys.executable, "export/infer_onnx.py", "--model", model, "--input",
                          str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--threads", "1"],
                         cwd=REPO, capture_output=True, text=True, errors="replace", timeout=120)
    assert run.returncode == 1, run.stderr  # not -11 (SIGSEGV)
    assert "2 image(s)" in run.stdout and "corrupt.png" in run.stderr
    written = sorted(os.listdir(os.fsencode(tmp_path / "out")))
    assert written == [b"good_labels.png", b"good_overlay.png", b"odd\xff\xfe_labels.png",
                       b"odd\xff\xfe_overlay.png"]


def test_verify_images_skips_unreadable_files_by_name(tmp_path, capsys):
    from softlabelseg_export.pipeline import folder_images

    _odd_folder(tmp_path / "in")
    inputs = list(folder_images(str(tmp_path / "in"), stand_in_metadata(2, factor=0.5), num_images=8))
    assert [x.shape for x in inputs] == [(3, 4, 6), (3, 4, 6)]  # good.png and the odd name
    assert "skipped: cannot read image" in capsys.readouterr().err


# -- a bad training sample -----------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [0, 1])
def test_a_bad_training_sample_names_the_file_the_problem_and_the_switch(tmp_path, workers):
    from softlabelseg.data import BadSampleError
    from softlabelseg.data.loader import build_train_loader
    from softlabelseg.data.mapper import SoftLabelDatasetMapper

    from tests.helpers.fixtures import cityscapes_tree

    cityscapes_tree(tmp_path, "train", n=1, hw=(16, 32))
    image = next(tmp_path.rglob("*_leftImg8bit.png"))
    label = next(tmp_path.rglob("*_labelTrainIds.png"))
    values = np.zeros((16, 32), np.uint8)
    values[0, 0] = 77
    cv2.imwrite(str(label), values)
    records = [dict(file_name=str(image), sem_seg_file_name=str(label), height=16, width=32, image_id="a")]
    mapper = SoftLabelDatasetMapper(True, num_classes=19, factor=0.5, crop_size=None)
    loader = build_train_loader(records, mapper, total_batch_size=1, num_workers=workers)
    with pytest.raises(BadSampleError) as err:
        next(iter(loader))
    text = str(err.value)
    assert err.value.path == str(label) and "label values [77]" in text
    assert "dataloader.train.skip_bad_samples=True" in text and "Caught" not in text


def test_export_refuses_an_input_size_beyond_the_machine_before_tracing(tmp_path, capsys):
    rc = export_onnx.main(["--config-file", RECIPE, "--random-init", "--output", str(tmp_path / "m.onnx"),
                           "--input-size", "100000x100000"])
    err = capsys.readouterr().err
    assert rc == 2 and "--input-size 100000x100000: tracing needs more than" in err
    assert not (tmp_path / "m.onnx").exists()


def test_runner_output_that_is_a_file_and_a_bad_alpha_are_refused(tmp_path, capsys):
    from softlabelseg_export import infer_onnx

    model = _two_class_onnx(tmp_path / "m.onnx")
    _odd_folder(tmp_path / "in")
    (tmp_path / "out").write_text("a file")
    rc = infer_onnx.main(["--model", model, "--input", str(tmp_path / "in" / "good.png"),
                          "--output", str(tmp_path / "out")])
    assert rc == 2 and "is a file" in capsys.readouterr().err
    for alpha in ("5", "-1", "nan"):
        with pytest.raises(SystemExit) as stop:
            infer_onnx.main(["--model", model, "--input", str(tmp_path / "in"), "--output",
                             str(tmp_path / "o"), "--alpha", alpha])
        assert stop.value.code == 2 and "--alpha" in capsys.readouterr().err


def test_folder_problem_names_each_reason(tmp_path, monkeypatch):
    from softlabelseg.utils.fileio import folder_problem

    (tmp_path / "f").write_text("x")
    assert folder_problem(tmp_path / "new" / "deeper") is None
    assert "is a file, not a folder" in folder_problem(tmp_path / "f" / "sub")
    assert "(at most 255)" in folder_problem(tmp_path / ("n" * 256))
    monkeypatch.setattr(os, "access", lambda *a, **k: False)  # a read-only folder (the tests may run as root)
    assert "is not writable by this user" in folder_problem(tmp_path / "new")
    with pytest.raises(OutputPathError, match="cannot be written: .* not writable"):
        check_output_file(tmp_path / "m.onnx", suffixes=(".onnx",))
