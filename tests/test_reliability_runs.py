"""Runs never report success on wrong weights, never lose an earlier result, and stop early and clearly.

Protects: --eval-only weights, finite checkpoints, resume fallback, the output folder of an earlier run,
checkpoint retention, file modes, early config/dataset checks, clear errors for bad files.
"""

import json
import os

import pytest
import torch
from omegaconf import OmegaConf
from softlabelseg.data import DatasetCatalog, DatasetNotFoundError, dataset_root
from softlabelseg.engine import Checkpointer
from softlabelseg.engine.checkpoint import CheckpointError, atomic_save, nonfinite_tensors
from softlabelseg.engine.cli import main
from softlabelseg.engine.preflight import EVAL_JSON, ConfigValueError, OutputDirError, check_datasets

from tests.helpers.standins import ENGINES, ToySegModel, write_standin_config


@pytest.fixture
def trained(tmp_path):
    """A finished stand-in run (6 iterations, checkpoints every 2) and its config."""
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    main(["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0"])
    return cfg, out


RESULTS = ("config.yaml", "model_final.pth", "inference/sem_seg_evaluation.json")


def _snapshot(out):
    return {p: (out / p).read_bytes() for p in RESULTS}


# -- --eval-only ---------------------------------------------------------------------------------------
def test_eval_only_without_weights_refuses_and_writes_nothing(trained):
    cfg, out = trained
    before = _snapshot(out)
    with pytest.raises(CheckpointError, match="train.init_checkpoint"):
        main(["--config-file", cfg, "--eval-only", f"train.output_dir={out}", "--overwrite"])
    assert _snapshot(out) == before


def test_eval_only_with_mismatched_head_refuses(trained):
    cfg, out = trained
    before = _snapshot(out)
    with pytest.raises(CheckpointError, match=r"head\.weight: checkpoint \(3, 8, 1, 1\) vs model \(5, 8"):
        main(["--config-file", cfg, "--eval-only", "--overwrite", f"train.output_dir={out}",
              f"train.init_checkpoint={out / 'model_final.pth'}", "model.num_classes=5"])
    assert _snapshot(out) == before


def test_eval_only_keeps_the_earlier_evaluation_unless_overwrite(trained):
    cfg, out = trained
    before = _snapshot(out)
    args = ["--config-file", cfg, "--eval-only", f"train.output_dir={out}",
            f"train.init_checkpoint={out / 'model_final.pth'}"]
    with pytest.raises(OutputDirError, match="--overwrite") as refused:
        main(args)
    assert f"{out / 'inference'} holds an earlier evaluation ({EVAL_JSON})" in str(refused.value)
    assert _snapshot(out) == before
    main(args + ["--overwrite"])  # same weights: same numbers; the run's own config.yaml is untouched
    after = _snapshot(out)
    assert after["config.yaml"] == before["config.yaml"]
    assert (out / "inference" / "config.yaml").is_file()
    new, old = (json.loads(x["inference/sem_seg_evaluation.json"]) for x in (after, before))
    assert new["confusion_matrix"] == old["confusion_matrix"]


def test_eval_only_resume_uses_newest_good_checkpoint(trained, caplog):
    cfg, out = trained
    (out / "model_final.pth").write_bytes(os.urandom(200))
    main(["--config-file", cfg, "--eval-only", "--resume", "--overwrite", f"train.output_dir={out}"])
    assert "model_0000003.pth instead" in caplog.text


# -- finite checkpoints, resume fallback -----------------------------------------------------------------
def test_nonfinite_state_is_never_saved(tmp_path):
    model = ToySegModel()
    ck = Checkpointer(model, str(tmp_path))
    ck.save("model_0000001", iteration=2)
    model.bn.running_var.fill_(float("inf"))
    with pytest.raises(FloatingPointError, match=r"bn\.running_var.*model_0000001\.pth.*clip_grad_norm"):
        ck.save("model_0000003", iteration=4)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"


def test_diverged_run_leaves_only_finite_checkpoints(tmp_path):
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(FloatingPointError, match="clip_grad_norm"):
        main(["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0", "optimizer.lr=1e12",
              "train.checkpointer.period=1", "train.max_iter=30"])
    saved = list(out.glob("model_*.pth"))
    assert saved and (out / (out / "last_checkpoint").read_text()).is_file()
    for f in saved:
        assert not nonfinite_tensors(torch.load(f, weights_only=True)), f


def test_resume_after_a_nan_loss_continues_from_the_last_good_checkpoint(tmp_path):
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    common = ["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0", "train.max_iter=8"]
    with pytest.raises(FloatingPointError):
        main(common + ["+model.nan_at_call=6"])
    main(common + ["--resume"])
    assert "Starting training from iteration 4" in (out / "log.txt").read_text()
    assert torch.load(out / "model_final.pth", weights_only=True)["iteration"] == 8


@pytest.mark.parametrize("engine", ENGINES)
def test_resume_falls_back_to_newest_loadable_checkpoint(trained, caplog, engine):
    cfg, out = trained
    (out / "model_final.pth").unlink()  # named by last_checkpoint
    (out / "model_0000003.pth").write_bytes(os.urandom(300))  # the newest periodic one is corrupt
    main(["--config-file", cfg, "--engine", engine, "--resume", f"train.output_dir={out}", "train.max_iter=8",
          "train.eval_period=0"])
    log = (out / "log.txt").read_text()
    assert "model_final.pth (named by last_checkpoint) is missing" in log
    assert "model_0000003.pth is not a readable PyTorch checkpoint" in log
    assert "model_0000001.pth instead" in log and "Starting training from iteration 2" in log


@pytest.mark.parametrize("engine", ENGINES)
def test_resume_with_a_pointer_but_no_usable_checkpoint_refuses(trained, engine):
    cfg, out = trained
    for f in out.glob("model_*.pth"):
        f.unlink()
    with pytest.raises(CheckpointError, match="(?s)no usable checkpoint.*--overwrite"):
        main(["--config-file", cfg, "--engine", engine, "--resume", f"train.output_dir={out}"])


# -- the output folder of an earlier run --------------------------------------------------------------------
def test_new_run_in_an_earlier_runs_folder_is_refused(trained):
    cfg, out = trained
    before = _snapshot(out)
    with pytest.raises(OutputDirError, match="--resume.*--overwrite|--overwrite.*--resume"):
        main(["--config-file", cfg, f"train.output_dir={out}"])
    with pytest.raises(ConfigValueError, match="train.max_iter='abc'"):
        main(["--config-file", cfg, f"train.output_dir={out}", "train.max_iter=abc", "--overwrite"])
    assert _snapshot(out) == before


def test_overwrite_replaces_the_earlier_run_cleanly(trained):
    cfg, out = trained
    main(["--config-file", cfg, f"train.output_dir={out}", "--overwrite", "train.max_iter=4",
          "train.eval_period=0"])
    lines = [json.loads(x) for x in (out / "metrics.json").read_text().splitlines()]
    assert max(x["iteration"] for x in lines) <= 4  # nothing left of the 6-iteration run
    assert not (out / "model_0000005.pth").exists()
    assert torch.load(out / "model_final.pth", weights_only=True)["iteration"] == 4


def test_a_folder_without_run_artefacts_is_not_an_earlier_run(tmp_path):
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "point"
    out.mkdir()
    (out / "ablation_run.log").write_text("[run] point\n")
    main(["--config-file", cfg, f"train.output_dir={out}", "train.max_iter=2", "train.eval_period=0"])
    assert (out / "model_final.pth").is_file()


# -- retention, temporaries, modes ----------------------------------------------------------------------
def test_max_to_keep_holds_across_resumes_and_orphans_are_removed(tmp_path):
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    common = ["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0",
              "train.checkpointer.period=1", "train.checkpointer.max_to_keep=2"]
    old = os.umask(0o022)
    try:
        main(common + ["train.max_iter=4"])
        (out / ".tmp_model_0000009.pth.x1y2").write_bytes(b"half a checkpoint")
        main(common + ["--resume", "train.max_iter=8"])
    finally:
        os.umask(old)
    assert sorted(f.name for f in out.glob("model_0*.pth")) == ["model_0000005.pth", "model_0000006.pth"]
    assert not list(out.glob(".tmp_*"))
    for name in ("model_final.pth", "last_checkpoint", "inference/sem_seg_evaluation.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


# -- early, clear errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-5", "abc"])
def test_bad_max_iter_names_the_key_before_anything_is_written(tmp_path, value):
    cfg = write_standin_config(tmp_path)
    with pytest.raises(ConfigValueError, match=r"train\.max_iter=.*expected an integer >= 1"):
        main(["--config-file", cfg, f"train.output_dir={tmp_path / 'o'}", f"train.max_iter={value}"])
    assert not (tmp_path / "o").exists()


def _register(name, fn):
    if name in DatasetCatalog:
        DatasetCatalog.remove(name)
    DatasetCatalog.register(name, fn)


def test_test_split_problems_surface_before_training():
    _register("rel_train", lambda: [{"file_name": "a.png"}])

    def missing():
        raise DatasetNotFoundError("Cityscapes val images: '/x/leftImg8bit/val' does not exist")

    _register("rel_val", missing)
    cfg = OmegaConf.create({"dataloader": {"train": {"dataset": "rel_train"}, "test": {"dataset": "rel_vall"},
                                           "evaluator": {"x": 1}}})
    with pytest.raises(KeyError, match="rel_vall.*did you mean 'rel_val'"):
        check_datasets(cfg)
    cfg.dataloader.test.dataset = "rel_val"
    with pytest.raises(DatasetNotFoundError, match="val images"):
        check_datasets(cfg)
    check_datasets(OmegaConf.merge(cfg, {"dataloader": {"evaluator": None}}))  # no evaluation: not read


def test_evaluator_named_after_another_dataset_is_refused_before_any_listing():
    _register("rel_a", lambda: [{"file_name": "a.png"}])
    _register("rel_b", lambda: pytest.fail("listed before the name check"))
    cfg = OmegaConf.create({"dataloader": {"test": {"dataset": "rel_b"},
                                           "evaluator": {"dataset_name": "rel_a"}}})
    with pytest.raises(ConfigValueError, match=r"evaluator.dataset_name='rel_a'.*test.dataset='rel_b'.*"
                                               r"dataset_name=rel_b too"):
        check_datasets(cfg, eval_only=True)
    cfg.dataloader.evaluator.dataset_name = "${..test.dataset}"  # as the recipes write it
    cfg.dataloader.test.dataset = "rel_a"
    check_datasets(cfg, eval_only=True)


def test_evaluation_folder_outside_the_run_is_announced(trained, tmp_path, caplog):
    cfg, out = trained
    elsewhere = tmp_path / "written_out" / "inference"
    main(["--config-file", cfg, "--eval-only", f"train.output_dir={tmp_path / 'ev'}",
          f"train.init_checkpoint={out / 'model_final.pth'}", f"dataloader.evaluator.output_dir={elsewhere}"])
    assert f"Evaluation results go to {elsewhere}" in caplog.text
    assert (elsewhere / EVAL_JSON).is_file()
    caplog.clear()
    main(["--config-file", cfg, "--eval-only", f"train.output_dir={tmp_path / 'ev2'}",
          f"train.init_checkpoint={out / 'model_final.pth'}"])
    assert "Evaluation results go to" not in caplog.text
    assert (tmp_path / "ev2" / "inference" / EVAL_JSON).is_file()


def test_dataset_root_that_is_a_file(tmp_path, monkeypatch):
    f = tmp_path / "datasets"
    f.write_text("")
    monkeypatch.setenv("SOFTLABELSEG_DATASETS", str(f))
    with pytest.raises(DatasetNotFoundError, match="is a file, not a folder"):
        dataset_root()


def test_random_bytes_checkpoint_gives_a_clear_error(tmp_path):
    bad = tmp_path / "model.pth"
    bad.write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint") as e:
        Checkpointer(ToySegModel()).load(str(bad))
    assert "weights_only=False" not in str(e.value)


def test_disk_full_during_torch_save_names_the_file(tmp_path, monkeypatch):
    def full(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing "
                           "file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full)
    target = tmp_path / "model_final.pth"
    with pytest.raises(OSError, match=r"cannot write .*model_final\.pth: no space left"):
        atomic_save({"x": torch.zeros(1)}, str(target))
    assert os.listdir(tmp_path) == []


def test_command_line_prints_the_error_without_a_traceback(trained, capsys):
    from softlabelseg.engine.cli import console_main

    cfg, out = trained
    assert console_main(["--config-file", cfg, f"train.output_dir={out}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--overwrite" in err and "Traceback" not in err
