"""One reader of inference weights (softlabelseg.checkpoint_io): safe loading, the ``module.`` strip, the
NaN / inf and diverged-weight refusals, strict loading with the class offsets, the one rule for a config's
resolution factors and the one check against a checkpoint's; export imports no part of the training engine.
"""

import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf
from softlabelseg.checkpoint_io import (
    CheckpointError,
    NonFiniteWeightsError,
    check_factors,
    config_factors,
    load_weights,
    read_weights,
    resolution_factor,
)
from torch import nn

from tests.helpers.repo import REPO


def _cfg(train=None, test=None, test_factor=None):
    mapper = {k: v for k, v in (("factor", test), ("test_factor", test_factor)) if v is not None}
    return OmegaConf.create({"dataloader": {"train": {"mapper": {"factor": train} if train else {}},
                                            "test": {"mapper": mapper}}})


def test_the_factor_rule_prefers_the_test_factor():
    assert config_factors(_cfg(0.25, 0.25)) == {"train_factor": 0.25, "resolution_factor": 0.25}
    assert config_factors(_cfg(0.25, 0.5, test_factor=0.125)) == {"train_factor": 0.25,
                                                                   "resolution_factor": 0.125}
    assert resolution_factor(_cfg(0.25)) == 1.0 and config_factors(OmegaConf.create({})) == {}


def test_the_factor_check_names_both_and_falls_back_to_the_run_folder(tmp_path):
    saved = {"meta": {"train_factor": 0.125, "resolution_factor": 0.125}}
    check_factors(_cfg(0.125, 0.125), saved, "m.pth")
    with pytest.raises(CheckpointError, match=r"train_factor: checkpoint 0.125, config 0.25.*trained for "
                                              r"factor 0.125 \(m.pth \(saved with it\)\).*0.25.*--allow"):
        check_factors(_cfg(0.25, 0.25), saved, "m.pth", "--allow")
    check_factors(_cfg(0.25, 0.25), saved, "m.pth", "--allow", allow=True)  # logged, not raised
    run = tmp_path / "run"
    run.mkdir()
    OmegaConf.save(_cfg(0.5, 0.5), run / "config.yaml")
    with pytest.raises(CheckpointError, match=r"for factor 0.5 \(.*config.yaml\)"):
        check_factors(_cfg(0.25, 0.25), {}, str(run / "plain.pth"))
    told = []
    check_factors(_cfg(0.25, 0.25), {}, str(tmp_path / "plain.pth"), warn=told.append)
    assert len(told) == 1 and "carries no training facts" in told[0] and "0.25" in told[0]


def test_read_strips_the_prefix_and_refuses_bad_weights(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    path = tmp_path / "ddp.pth"
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}, "meta": {"x": 1}}, path)
    data = read_weights(str(path), model, 1e6)
    assert set(data["model"]) == set(model.state_dict())
    fresh = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    assert load_weights(fresh, data, str(path)) == {"meta": {"x": 1}}
    torch.testing.assert_close(fresh[0].weight, model[0].weight)
    state = model.state_dict()
    state["1.running_var"] = state["1.running_var"] + 1e9
    torch.save(state, tmp_path / "big.pth")
    with pytest.raises(NonFiniteWeightsError, match=r"diverged weights: 1 parameter\(s\) exceed \|1e\+06\|"):
        read_weights(str(tmp_path / "big.pth"), model, 1e6)
    read_weights(str(tmp_path / "big.pth"))  # no limit: finite weights pass
    state["0.weight"][0] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(NonFiniteWeightsError, match=r"NaN or inf values in 1 of 7 tensors \(model.0.weight"):
        read_weights(str(tmp_path / "nan.pth"))
    with pytest.raises(CheckpointError, match="(?s)2 missing key.*Use the recipe"):
        load_weights(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1)),
                     read_weights(str(path)), str(path))


def test_export_imports_no_part_of_the_training_engine():
    code = ("import sys\nimport softlabelseg_export.pipeline, softlabelseg_export.verification\n"
            "import softlabelseg_export.checkpoint, softlabelseg_export.recipe, softlabelseg_export.runtime\n"
            "print(sorted(m for m in sys.modules if m.startswith('softlabelseg.engine')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
