"""Export and verify judge weights as ``--eval-only`` does, and say when a factor could not be checked.

Protects: weights beyond ``train.divergence.max_abs_weight`` refused by export and verify (they exported as
an "onnx.checker passed" graph of NaN outputs), the warning for a plain state dict, whose training factor
is unknown, the divergence guard on a run that starts diverged and on exploding BatchNorm statistics, and
both runners refusing metadata that lies (colours, mean / std, format version, input size).
"""

import math
import os

import cv2
import numpy as np
import pytest
import torch
from softlabelseg_export import export_onnx, verify
from softlabelseg_export.recipe import build_model, load_recipe

from tests import test_export_cpp
from tests.helpers.export import TOYCITY_RECIPE
from tests.helpers.repo import REPO

RECIPE = os.path.join(REPO, TOYCITY_RECIPE)
cpp_build = test_export_cpp.cpp_build  # the C++ runner, built once a session (skips without its tools)


@pytest.fixture(scope="module")
def state():
    torch.manual_seed(0)
    return build_model(load_recipe(RECIPE)).state_dict()


def test_export_and_verify_refuse_weights_beyond_max_abs_weight(state, tmp_path, capsys):
    big = dict(state)
    name = next(k for k, v in big.items() if k.endswith("weight") and v.is_floating_point() and v.dim() == 4)
    big[name] = big[name] * 1e8
    ckpt = tmp_path / "diverged.pth"
    torch.save({"model": big, "meta": {"train_factor": 0.125, "resolution_factor": 0.125}}, ckpt)
    rc = export_onnx.main(["--config-file", RECIPE, "--checkpoint", str(ckpt), "--output",
                           str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and "diverged weights: 1 parameter(s) exceed |1e+06|" in err and name in err
    assert not (tmp_path / "m.onnx").exists()
    from tests.test_reliability_inputs import _two_class_onnx

    model = _two_class_onnx(tmp_path / "other.onnx", factor=0.125)
    rc = verify.main(["--model", model, "--config-file", RECIPE, "--checkpoint", str(ckpt),
                      "--images", str(tmp_path)])
    assert rc == 2 and "diverged weights" in capsys.readouterr().err


def test_a_plain_state_dict_warns_that_its_factor_was_not_checked(state, tmp_path, capsys):
    ckpt = tmp_path / "plain.pth"
    torch.save(state, ckpt)
    rc = export_onnx.main(["--config-file", RECIPE, "--checkpoint", str(ckpt), "--output",
                           str(tmp_path / "m.onnx")])
    captured = capsys.readouterr()
    assert rc == 0 and (tmp_path / "m.onnx").is_file()
    assert "plain.pth carries no training facts" in captured.err and "recipe's 0.125" in captured.err


# -- the divergence guard catches a run that starts bad ------------------------------------------------------
def _step(**kw):
    from softlabelseg.engine.train_loop import TrainStep
    from torch import nn

    model = nn.Linear(1, 1)
    return TrainStep(model, [], torch.optim.SGD(model.parameters(), lr=0.1), max_loss=1e3, max_loss_ratio=20,
                     chance_loss=math.log(19), **kw)


def test_a_run_that_starts_diverged_stops_at_its_fifth_iteration():
    step = _step(max_start_loss_ratio=4.0)
    reasons = [step._divergence(v) for v in (2.9, 20.0, 32.0, 25.0, 28.0)]  # AdamW at lr=20, measured
    assert reasons[:4] == [None] * 4
    assert "25 over its first 5 iterations (median), 8.5 times the 2.94 of a uniform guess" in reasons[4]
    healthy = _step(max_start_loss_ratio=4.0)
    assert [healthy._divergence(v) for v in (3.1, 2.9, 2.8, 2.6, 2.5, 2.4)] == [None] * 6
    off = _step(max_start_loss_ratio=None)
    assert [off._divergence(v) for v in (2.9, 20.0, 32.0, 25.0, 28.0)] == [None] * 5


def test_exploding_batchnorm_statistics_count_as_diverged(tmp_path):
    from softlabelseg.engine import Checkpointer
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    checkpointer = Checkpointer(model, str(tmp_path))
    checkpointer.max_abs_weight = 1e6
    model[1].running_var.fill_(3.7e11)  # measured on a run at optimizer.lr=20
    assert checkpointer.exploded_parameters(model.state_dict()) == ["1.running_var"]
    with pytest.raises(FloatingPointError, match=r"exceed \|1e\+06\| .*\(1.running_var\)"):
        checkpointer.save("model_0000009", iteration=10)
    assert not list(tmp_path.iterdir())


# -- the runners use only metadata they can trust ------------------------------------------------------------
def _with_props(source, path, **props):
    """Copy of the .onnx ``source`` with ``softlabelseg.<key>`` metadata values replaced (raw JSON text)."""
    import onnx

    proto = onnx.load(source)
    for entry in proto.metadata_props:
        key = entry.key.removeprefix("softlabelseg.")
        if key in props:
            entry.value = props[key]
    onnx.save(proto, path)
    return str(path)


@pytest.mark.parametrize("props, message", [
    ({"class_colors": "[[0, 0, 0]]"}, "2 class names but 1 colours"),
    ({"class_colors": "[[0, 0, 0], [300, 0, 0]]"}, r"class_colors\[1\] is \[300, 0, 0\]"),
    ({"pixel_mean": '"abc"'}, "pixel_mean is 'abc': expected three finite numbers"),
    ({"pixel_std": "[1, 0, 1]"}, "pixel_std is .*> 0"),
    ({"format_version": "999"}, "format_version 999: this reader understands 1 to 1"),
    ({"input_size": "[64, 64]"}, r"metadata says input_size \[64, 64\], but the graph takes 8x12"),
])  # fmt: skip
def test_the_python_runner_refuses_metadata_that_lies(tmp_path, capsys, props, message):
    from softlabelseg_export import infer_onnx
    from softlabelseg_export.runtime import ModelLoadError, OnnxSegmenter

    from tests.test_reliability_inputs import _two_class_onnx

    good = _two_class_onnx(tmp_path / "good.onnx", static=(8, 12))
    OnnxSegmenter(good)  # the untouched file serves
    lying = _with_props(good, tmp_path / "lying.onnx", **props)
    with pytest.raises(ModelLoadError, match=message):
        OnnxSegmenter(lying)
    rc = infer_onnx.main(["--model", lying, "--input", str(tmp_path), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("props, message", [
    ({"class_colors": "[[0, 0, 0]]"}, "metadata names 2 classes ('softlabelseg.class_names') but 1 colours"),
    ({"class_colors": "[[0, 0, 0], [300, 0, 0]]"}, "colours are RGB integers 0..255"),
    ({"pixel_mean": '"abc"'}, "'softlabelseg.pixel_mean' is \"abc\": expected three finite numbers"),
    ({"format_version": "999"}, "'softlabelseg.format_version' is 999: this runner reads 1 to 1"),
])  # fmt: skip
def test_the_cpp_runner_refuses_metadata_that_lies(cpp_build, tmp_path, props, message):
    from tests.test_reliability_inputs import _two_class_onnx

    def run_on(model, out):
        return test_export_cpp._run(cpp_build[0], "--model", model, "--input", tmp_path / "in",
                                    "--output", out)

    good = _two_class_onnx(tmp_path / "good.onnx")
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.zeros((8, 12, 3), np.uint8))
    assert run_on(good, tmp_path / "o").returncode == 0
    run = run_on(_with_props(good, tmp_path / "lying.onnx", **props), tmp_path / "o2")
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert not (tmp_path / "o2").exists()
