"""Export and verify judge weights as ``--eval-only`` does, and say when a factor could not be checked.

Protects: weights beyond ``train.divergence.max_abs_weight`` refused by export and verify (they exported as
an "onnx.checker passed" graph of NaN outputs), and the warning for a plain state dict, whose training
factor is unknown.
"""

import os

import pytest
import torch
from softlabelseg_export import export_onnx, verify
from softlabelseg_export.recipe import build_model, load_recipe

from tests.helpers.export import TOYCITY_RECIPE
from tests.helpers.repo import REPO

RECIPE = os.path.join(REPO, TOYCITY_RECIPE)


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
