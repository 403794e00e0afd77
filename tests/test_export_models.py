"""Export of the recipe models through the command lines: the ToyCity model end to end (export, verify,
checkpoint errors) and each paper model (SegFormer-B2 by default; HRNetV2-W48 and DeepLabV3+ R101 are
slow: ~60M parameters, 10-20 s each to build and trace on two cores) at a small input size."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from softlabelseg.data import DatasetCatalog, MetadataCatalog
from softlabelseg_export import export_onnx as export_cli
from softlabelseg_export import verify as verify_cli
from softlabelseg_export.metadata import UNTRAINED, read_metadata
from softlabelseg_export.random_models import paper_model
from softlabelseg_export.verification import verify, wrapper_from_metadata

from tests.helpers.export import PAPER_MODELS, toycity_setup

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "projects/SoftLabelSeg/configs/common/models"
SMALL = (64, 128)



@pytest.fixture(scope="module")
def toycity(tmp_path_factory):
    root = tmp_path_factory.mktemp("toycity_models")
    setup = toycity_setup(root, REPO)
    name = "toycity_export_test_val"
    if name not in DatasetCatalog:
        DatasetCatalog.register(name, lambda: setup["records"])
        MetadataCatalog.get(name).set(**MetadataCatalog.get("toycity_sem_seg_val").as_dict() | {"name": name})
    return dict(setup, root=root, dataset=name)


def test_toycity_model_export_and_verify_cli(toycity, capsys):
    out = toycity["root"] / "toycity.onnx"
    common = ["--config-file", toycity["config_file"], "--checkpoint", toycity["checkpoint"]]
    assert (
        export_cli.main(
            [*common, "--output", str(out), "--output-kind", "labels", "--upsample-to", "original"]
        )
        == 0
    )
    assert "onnx.checker passed" in capsys.readouterr().out
    onnx.checker.check_model(onnx.load(out), full_check=True)
    meta = read_metadata(out)
    assert meta.class_names[:3] == ["road", "sidewalk", "building"] and meta.class_colors[0] == [128, 64, 128]
    assert (meta.resolution_factor, meta.input_size, meta.output_size) == (0.125, [32, 64], [256, 512])
    assert (meta.image_resize, meta.output_kind, meta.ignore_value) == ("torch:bilinear", "labels", 255)
    assert meta.pixel_mean == pytest.approx([123.675, 116.28, 103.53])
    assert meta.weights == "tiny_toycity.pth"
    rc = verify_cli.main(["--model", str(out), *common, "--dataset", toycity["dataset"], "--num-images", "4"])
    printed = capsys.readouterr().out
    assert rc == 0 and printed.startswith("PASS: 4 image(s), 524288 pixels")
    # thresholds that cannot be met -> non-zero exit
    rc = verify_cli.main(["--model", str(out), *common, "--dataset", toycity["dataset"], "--num-images", "1",
                          "--max-diff", "0", "--min-agreement", "1.01"])  # fmt: skip
    assert rc == 1 and capsys.readouterr().out.startswith("FAIL")


def test_random_init_export_warns_and_says_so(toycity, tmp_path, capsys):
    out = tmp_path / "untrained.onnx"
    args = ["--config-file", toycity["config_file"], "--random-init", "--output", str(out)]
    assert export_cli.main(args) == 0
    printed = capsys.readouterr()
    assert "warning: --random-init" in printed.err and "untrained" in printed.err
    assert "weights untrained (random init)" in printed.out
    assert read_metadata(out).weights == UNTRAINED
    with pytest.raises(SystemExit):  # weights from a file or explicitly none, never both
        export_cli.main(["--config-file", toycity["config_file"], "--random-init", "--checkpoint",
                         toycity["checkpoint"], "--output", str(out)])  # fmt: skip
    with pytest.raises(SystemExit):  # and never silently untrained
        export_cli.main(["--config-file", toycity["config_file"], "--output", str(out)])
    assert "one of the arguments --checkpoint --random-init is required" in capsys.readouterr().err


def test_cli_errors(toycity, tmp_path, capsys):
    common = ["--config-file", toycity["config_file"], "--checkpoint", toycity["checkpoint"]]
    # the checkpoint does not fit the recipe once num_classes is overridden
    assert export_cli.main([*common, "--output", str(tmp_path / "m.onnx"), "model.num_classes=5"]) == 2
    err = capsys.readouterr().err
    assert "does not match the model built by" in err and "head.classifier.weight: checkpoint (19" in err
    assert export_cli.main([*common, "--output", str(tmp_path / "m.onnx"), "--opset", "9"]) == 2
    assert "opset 9 is not supported" in capsys.readouterr().err
    bad = ["--config-file", toycity["config_file"], "--checkpoint", str(tmp_path / "missing.pth")]
    assert export_cli.main([*bad, "--output", str(tmp_path / "m.onnx")]) == 2
    assert "missing.pth" in capsys.readouterr().err


def _paper_model(name):
    return paper_model(name, REPO, SMALL)[1]


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_paper_model_export(name, tmp_path, capsys):
    model = _paper_model(name)
    checkpoint = tmp_path / f"{name}.pth"
    torch.save({"model": model.state_dict()}, checkpoint)
    common = [
        "--config-file",
        str(MODELS / f"{name}.py"),
        "--checkpoint",
        str(checkpoint),
        "model.num_classes=19",
    ]
    rng = np.random.default_rng(1)
    for dynamic in (False, True):
        out = tmp_path / f"{name}_{dynamic}.onnx"
        args = ["--dynamic"] if dynamic else ["--input-size", "x".join(map(str, SMALL))]
        assert export_cli.main([*common, "--output", str(out), *args]) == 0, capsys.readouterr().err
        onnx.checker.check_model(onnx.load(out), full_check=True)
        meta = read_metadata(out)
        assert meta.dynamic == dynamic and meta.num_classes == 19
        sizes = [SMALL, (72, 136), (50, 90)] if dynamic else [SMALL]  # 50x90: not a multiple of the stride
        images = [rng.integers(0, 256, (3, *hw), dtype=np.uint8) for hw in sizes]
        result = verify(wrapper_from_metadata(model, meta), out, images)
        print(f"{name} {'dynamic' if dynamic else 'static'}: {result.summary()}")
        assert result.passed, result.summary()
