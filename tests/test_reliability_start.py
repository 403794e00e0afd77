"""Every check that can run before the run folder is touched runs before it: a failed start leaves no trace.

Protects: class counts of model, mappers, evaluator and dataset; the loader's batch size, workers, factor
(above 1 refused) and label mode; the learning rate and the optimizer; a missing or NaN
``train.init_checkpoint`` (named as diverged, not "lower the learning rate"); unloadable config files,
``train.device=cuda`` without CUDA and a missing engine ending in one ``error:`` line, exit code 2.
"""

import os
import re

import pytest
import torch
from softlabelseg.config import LazyConfig, instantiate
from softlabelseg.engine.checkpoint import CheckpointError
from softlabelseg.engine.cli import console_main
from softlabelseg.engine.start_checks import check_training_objects, check_values
from softlabelseg.engine.train_config import ConfigValueError

from tests.helpers.export import TOYCITY_RECIPE
from tests.helpers.repo import REPO
from tests.helpers.standins import HAVE_D2, ToySegModel, write_standin_config


@pytest.fixture(scope="module")
def recipe():
    return LazyConfig.load(os.path.join(REPO, TOYCITY_RECIPE))


def _cfg(recipe, *overrides):
    import copy

    return LazyConfig.apply_overrides(copy.deepcopy(recipe), list(overrides))


@pytest.mark.parametrize("override, message", [
    ("model.num_classes=5", "class counts disagree: model.num_classes=5, .*the 19 classes of toycity"),
    ("model.num_classes=25", "class counts disagree: model.num_classes=25"),
    ("model.num_classes=0", r"model.num_classes=0: expected an integer >= 1"),
    ("dataloader.train.total_batch_size=0", "total_batch_size=0: expected an integer >= 1"),
    ("dataloader.train.num_workers=-1", "num_workers=-1: expected an integer >= 0"),
    ("dataloader.train.mapper.factor=0", r"factor=0: expected a number in \(0, 1\]"),
    ("dataloader.train.mapper.factor=-0.5", r"factor=-0.5: expected a number in \(0, 1\]"),
    ("dataloader.train.mapper.factor=banana", r"factor='banana': expected a number"),
    ("dataloader.train.mapper.factor=3", "factor=3 is above 1: .* 9 times the full resolution"),
    ("dataloader.train.mapper.label_mode=bogus", "dataloader.train.mapper: label_mode must be one of"),
])  # fmt: skip
def test_config_values_are_refused_by_key(recipe, override, message):
    with pytest.raises(ConfigValueError, match=message):
        check_values(_cfg(recipe, override))


def test_the_recipe_itself_passes(recipe):
    cfg = _cfg(recipe)
    check_values(cfg)
    check_training_objects(cfg, instantiate(cfg.model))


@pytest.mark.parametrize("lr", ["nan", "-0.1", "0", "inf"])
def test_a_learning_rate_that_cannot_train_is_refused(recipe, lr):
    cfg = _cfg(recipe, f"optimizer.lr={lr}")
    with pytest.raises(ConfigValueError, match=r"optimizer.lr=.*expected a finite number > 0"):
        check_training_objects(cfg, ToySegModel())


def test_init_checkpoint_missing_nan_or_diverged_is_named(recipe, tmp_path):
    model = ToySegModel()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_training_objects(_cfg(recipe, f"train.init_checkpoint={tmp_path / 'none.pth'}"), model)
    state = model.state_dict()
    state["head.weight"] = torch.full_like(state["head.weight"], float("nan"))
    torch.save({"model": state}, tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match="saved by a diverged run") as err:
        check_training_objects(_cfg(recipe, f"train.init_checkpoint={tmp_path / 'nan.pth'}"), model)
    assert "learning rate" not in str(err.value)
    state["head.weight"] = torch.full_like(state["head.weight"], 1e8)
    torch.save({"model": state}, tmp_path / "big.pth")
    with pytest.raises(CheckpointError, match="diverged weights: 1 parameter"):
        check_training_objects(_cfg(recipe, f"train.init_checkpoint={tmp_path / 'big.pth'}"), model)


@pytest.mark.parametrize("override", ["model.num_classes=5", "optimizer.lr=nan", "train.init_checkpoint=nan"])
def test_a_failed_start_leaves_no_trace_and_the_corrected_command_runs(tmp_path, capsys, override):
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    if override.endswith("=nan") and override.startswith("train."):
        state = ToySegModel().state_dict()
        state["conv1.weight"] = torch.full_like(state["conv1.weight"], float("nan"))
        torch.save(state, tmp_path / "nan.pth")  # a plain state dict
        override = f"train.init_checkpoint={tmp_path / 'nan.pth'}"
    assert console_main(["--config-file", cfg, f"train.output_dir={out}", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    assert console_main(["--config-file", cfg, f"train.output_dir={out}", "train.max_iter=1",
                         "train.eval_period=0"]) == 0


@pytest.mark.parametrize("content, expect", [
    (None, "is a folder"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "cannot be loaded"),
    (b"train: [unclosed\n", "cannot be loaded"),
    (b"x = (\n", r"cannot be loaded \(line 1\)"),
])  # fmt: skip
def test_a_config_file_that_cannot_load_is_one_error_line(tmp_path, capsys, content, expect):
    path = tmp_path / ("cfg.py" if content == b"x = (\n" else "cfg.yaml")
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    assert console_main(["--config-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --config-file") and err.count("\n") == 1
    assert re.search(expect, err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_error_line(tmp_path, capsys):
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "o"
    assert console_main(["--config-file", cfg, f"train.output_dir={out}", "train.device=cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.skipif(HAVE_D2, reason="detectron2 is installed")
def test_a_missing_engine_is_one_error_line(tmp_path, capsys):
    cfg = write_standin_config(tmp_path)
    args = ["--config-file", cfg, "--engine", "detectron2", f"train.output_dir={tmp_path / 'o'}"]
    assert console_main(args) == 2
    assert "needs detectron2" in capsys.readouterr().err


@pytest.mark.parametrize("override, message", [
    ("train.amp.precision=fp8", r"train\.amp\.precision='fp8': expected one of 'bf16', 'fp16'"),
    ("train.device=gpu", r"train\.device='gpu': expected one of 'auto', 'cpu', 'cuda', 'cuda:<index>'"),
])  # fmt: skip
def test_a_string_key_outside_its_allowed_values_is_one_error_line(tmp_path, capsys, override, message):
    # on the CPU, with mixed precision off: a precision no device could use is still refused, by name
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "o"
    assert console_main(["--config-file", cfg, f"train.output_dir={out}", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and re.search(message, err)
    assert not out.exists()


def test_allowed_device_names_pass_the_schema(recipe):
    from softlabelseg.engine.train_config import check_train_config

    for device in ("auto", "cpu", "cuda", "cuda:1"):
        check_train_config(_cfg(recipe, f"train.device={device}", "train.amp.precision=fp16"))
    with pytest.raises(ConfigValueError, match=r"train\.device='cuda:x'"):
        check_train_config(_cfg(recipe, "train.device=cuda:x"))


# -- resume holds a run to its label mode, class count and factors ---------------------------------------
def _checkpoint_with_meta(folder, **meta):
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "iteration": 10, "meta": meta}, folder / "model_0000009.pth")
    (folder / "last_checkpoint").write_text("model_0000009.pth")


def test_resume_refuses_another_label_mode_unless_allowed(recipe, tmp_path, caplog):
    from softlabelseg.engine.start_checks import check_labels, check_resume

    out = tmp_path / "run"
    _checkpoint_with_meta(out, train_factor=0.125, resolution_factor=0.125, label_mode="soft", num_classes=19)
    cfg = _cfg(recipe, f"train.output_dir={out}", "dataloader.train.mapper.label_mode=nearest")
    with pytest.raises(CheckpointError, match="label_mode=soft, this config says nearest.*"
                                              "--allow-label-mode-change"):
        check_resume(cfg)
    check_resume(cfg, allow_label_mode_change=True)
    check_labels(cfg, {"label_mode": "soft"}, "ckpt.pth", allow_label_mode_change=True)
    assert "--allow-label-mode-change: ckpt.pth was trained with label_mode=soft" in caplog.text
    check_resume(_cfg(recipe, f"train.output_dir={out}"))  # the run's own label mode
    with pytest.raises(CheckpointError, match="another resolution factor"):
        check_resume(_cfg(recipe, f"train.output_dir={out}", "dataloader.train.mapper.factor=0.25"))


def test_resume_with_another_class_count_is_refused_before_anything_is_written(tmp_path, capsys):
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    args = ["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0", "train.max_iter=2"]
    assert console_main(args + ["model.num_classes=3"]) == 0
    before = (out / "config.yaml").read_bytes()
    capsys.readouterr()
    rc = console_main(args + ["--resume", "train.max_iter=4", "model.num_classes=5",
                              "dataloader.evaluator.num_classes=5"])
    err = capsys.readouterr().err
    assert rc == 2 and "was trained with model.num_classes=3, this config says 5" in err
    assert (out / "config.yaml").read_bytes() == before


def test_a_plain_state_dict_says_its_factor_was_not_checked(recipe, caplog):
    from softlabelseg.engine.training import check_factors

    check_factors(_cfg(recipe), {}, "plain.pth")
    assert "plain.pth carries no training facts" in caplog.text and "0.125" in caplog.text


# -- output folders that cannot be written end in one line, before anything is written ------------------
@pytest.mark.parametrize("where", ["under a file", "name too long"])
def test_an_output_dir_that_cannot_hold_files_is_one_error_line(tmp_path, capsys, where):
    cfg = write_standin_config(tmp_path)
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "run" if where == "under a file" else tmp_path / ("r" * 300)
    assert console_main(["--config-file", cfg, f"train.output_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: train.output_dir=") and err.count("\n") == 1
    assert ("is a file, not a folder" if where == "under a file" else "300 bytes long") in err
