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
    with pytest.raises(ConfigValueError, match=r"model.num_classes=5, dataloader.evaluator.num_classes=3"):
        main(["--config-file", cfg, "--eval-only", "--overwrite", f"train.output_dir={out}",
              f"train.init_checkpoint={out / 'model_final.pth'}", "model.num_classes=5"])
    with pytest.raises(CheckpointError, match=r"head\.weight: checkpoint \(3, 8, 1, 1\) vs model \(5, 8"):
        main(["--config-file", cfg, "--eval-only", "--overwrite", f"train.output_dir={out}",
              f"train.init_checkpoint={out / 'model_final.pth'}", "model.num_classes=5",
              "dataloader.evaluator.num_classes=5"])
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
    with pytest.raises(FloatingPointError, match="clip_grad_norm"):  # the non-finite guard alone
        main(["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0", "optimizer.lr=1e12",
              "train.checkpointer.period=1", "train.max_iter=30", "train.divergence.max_loss=null",
              "train.divergence.max_abs_weight=null"])
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
    assert console_main(["--config-file", cfg, f"train.output_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--overwrite" in err and "Traceback" not in err


# -- divergence: healthy, not only finite ------------------------------------------------------------------
def test_an_exploding_loss_stops_the_run_and_the_advice_followed_literally_recovers(tmp_path):
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    common = ["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0",
              "train.checkpointer.period=1", "train.max_iter=30"]
    with pytest.raises(FloatingPointError) as stop:
        main(common + ["optimizer.lr=20"])
    advice = str(stop.value)
    assert "train.divergence.max_loss" in advice and "optimizer.lr=" in advice and "--resume" in advice
    kept = sorted(out.glob("model_*.pth"))
    assert kept, "healthy checkpoints before the explosion are kept"
    assert len(list(out.glob("model_*.pth.diverged"))) == 1  # the state that produced the exploding step
    main(common + ["--resume", "optimizer.lr=0.05", "train.clip_grad_norm=1.0"])  # what the message says
    log = (out / "log.txt").read_text()
    assert "the checkpoint's schedule ran at base lr 20" in log and "the config's 0.05 is used" in log
    final = torch.load(out / "model_final.pth", weights_only=True)
    assert final["iteration"] == 30 and not nonfinite_tensors(final)
    assert max(float(t.abs().max()) for t in final["model"].values()) < 1e6


def test_diverged_weights_are_never_saved_nor_resumed_from(tmp_path):
    model = ToySegModel()
    ck = Checkpointer(model, str(tmp_path))
    ck.max_abs_weight = 100.0
    ck.save("model_0000001", iteration=2)
    good = dict(torch.load(tmp_path / "model_0000001.pth", weights_only=True))
    with torch.no_grad():
        model.head.weight.fill_(1e34)  # finite, and useless
    with pytest.raises(FloatingPointError, match=r"exceed \|100\|.*head\.weight"):
        ck.save("model_0000003", iteration=4)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]
    atomic_save({**good, "model": model.state_dict(), "iteration": 4}, str(tmp_path / "model_0000003.pth"))
    (tmp_path / "last_checkpoint").write_text("model_0000003.pth")
    fresh = Checkpointer(ToySegModel(), str(tmp_path))
    fresh.max_abs_weight = 100.0
    fresh.resume_or_load(None, resume=True)
    assert fresh.resumed_from == str(tmp_path / "model_0000001.pth")


def test_the_command_line_resume_passes_over_diverged_weights(trained):
    """--resume through the command line judges candidates as the training checkpointer does: a newer
    checkpoint whose weights exceed train.divergence.max_abs_weight is passed over, said in the log."""
    cfg, out = trained  # model_final.pth holds iteration 6
    data = torch.load(out / "model_final.pth", weights_only=True)
    data["model"] = {k: v * 1e34 if v.is_floating_point() else v for k, v in data["model"].items()}
    data["iteration"], data["trainer"]["iteration"] = 8, 7
    atomic_save(data, str(out / "model_0000007.pth"))
    (out / "last_checkpoint").write_text("model_0000007.pth")
    main(["--config-file", cfg, "--resume", f"train.output_dir={out}", "train.max_iter=10",
          "train.eval_period=0"])
    log = (out / "log.txt").read_text()
    assert "diverged weights" in log and "Resuming from " + str(out / "model_final.pth") in log


def test_resume_takes_the_learning_rate_of_the_config(tmp_path):
    """A resumed run with a new optimizer.lr continues the schedule from the new base: from the resumed
    iteration on, its lr equals that of a run trained with the new lr from the start."""
    cfg = write_standin_config(tmp_path)
    common = ["--config-file", cfg, "train.eval_period=0", "train.log_period=1", "train.max_iter=8"]
    main(common + [f"train.output_dir={tmp_path / 'a'}", "train.max_iter=4"])
    main(common + [f"train.output_dir={tmp_path / 'a'}", "--resume", "optimizer.lr=0.01"])
    main(common + [f"train.output_dir={tmp_path / 'b'}", "optimizer.lr=0.01"])

    def lrs(run):
        lines = [json.loads(x) for x in (tmp_path / run / "metrics.json").read_text().splitlines()]
        return {x["iteration"]: x["lr"] for x in lines if "lr" in x}

    resumed, fresh = lrs("a"), lrs("b")
    assert [resumed[i] for i in range(4, 8)] == pytest.approx([fresh[i] for i in range(4, 8)], rel=1e-12)
    assert resumed[3] != pytest.approx(fresh[3])  # before the resume: the old base


def test_resume_picks_the_newest_checkpoint_by_iteration_not_by_name(trained, caplog):
    cfg, out = trained  # model_final.pth holds iteration 6
    data = torch.load(out / "model_final.pth", weights_only=True)
    data["iteration"], data["trainer"]["iteration"] = 8, 7
    atomic_save(data, str(out / "model_0000007.pth"))  # a newer periodic file (iteration 8)
    (out / "last_checkpoint").unlink()
    main(["--config-file", cfg, "--resume", f"train.output_dir={out}", "train.max_iter=10",
          "train.eval_period=0"])
    assert "Resuming from " + str(out / "model_0000007.pth") in (out / "log.txt").read_text()
    assert "Starting training from iteration 8" in (out / "log.txt").read_text()


def test_a_resumed_run_reads_its_checkpoint_once(trained, monkeypatch):
    """The start checks read the checkpoint --resume continues from (its factors, label mode, classes) and
    the run resumes from what they read: the file is loaded once per command, beside one memory-mapped
    peek at the iteration ``model_final.pth`` holds (to order it among the periodic files)."""
    cfg, out = trained
    reads, real = [], torch.load

    def counting_load(f, *args, **kwargs):
        if str(f) == str(out / "model_final.pth"):
            reads.append("peek" if kwargs.get("mmap") else "full")
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    main(["--config-file", cfg, "--resume", f"train.output_dir={out}", "train.max_iter=8",
          "train.eval_period=0"])
    assert sorted(reads) == ["full", "peek"], reads
    assert "Resuming from " + str(out / "model_final.pth") in (out / "log.txt").read_text()


def test_resumed_metrics_hold_each_iteration_once(tmp_path):
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    common = ["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0", "train.max_iter=8",
              "train.log_period=1"]
    with pytest.raises(FloatingPointError):
        main(common + ["+model.nan_at_call=6"])  # iterations 0-4 logged, checkpoint after iteration 3
    main(common + ["--resume"])
    its = [json.loads(x)["iteration"] for x in (out / "metrics.json").read_text().splitlines()]
    assert its == sorted(set(its)) and its[-1] == 8  # the last line: the final evaluation


# -- one writer per run folder; a run stopped before its evaluation ----------------------------------------
def test_a_second_writer_is_refused_with_the_holders_pid_until_it_dies(tmp_path):
    import subprocess
    import sys

    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom softlabelseg.engine.run_lock import RunLock\n"
         "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputDirError, match=f"in use by another run \\(PID {holder.pid}\\)"):
            main(["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0"])
        assert sorted(p.name for p in out.iterdir()) == [".softlabelseg.lock"]  # nothing else written
    finally:
        holder.kill()
        holder.wait()
    main(["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0", "train.max_iter=2"])
    assert (out / "model_final.pth").is_file()


def test_a_run_stopped_before_its_evaluation_resumes_into_it(trained):
    cfg, out = trained
    (out / "inference" / EVAL_JSON).unlink()  # killed after the last step, before the JSON
    main(["--config-file", cfg, "--resume", f"train.output_dir={out}", "train.eval_period=0"])
    assert (out / "inference" / EVAL_JSON).is_file()
    assert "before its final evaluation; evaluating now" in (out / "log.txt").read_text()
    before = (out / "inference" / EVAL_JSON).stat().st_mtime_ns
    main(["--config-file", cfg, "--resume", f"train.output_dir={out}", "train.eval_period=0"])
    assert (out / "inference" / EVAL_JSON).stat().st_mtime_ns == before  # evaluated once, not again


def test_a_model_that_cannot_be_built_leaves_the_folder_as_it_was(tmp_path, capsys):
    from softlabelseg.engine.cli import console_main

    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    assert console_main(["--config-file", cfg, f"train.output_dir={out}", "model.num_classes=-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model" in err and "Traceback" not in err
    assert not out.exists()
    main(["--config-file", cfg, f"train.output_dir={out}", "train.eval_period=0", "train.max_iter=2"])


def test_overwrite_removes_only_what_a_run_writes(trained):
    cfg, out = trained
    (out / "model_best.pth").write_bytes(b"the user's own")
    (out / "notes.txt").write_text("mine")
    main(["--config-file", cfg, f"train.output_dir={out}", "--overwrite", "train.max_iter=2",
          "train.eval_period=0"])
    assert (out / "model_best.pth").read_bytes() == b"the user's own" and (out / "notes.txt").is_file()
    assert not (out / "model_0000005.pth").exists()


def test_an_output_dir_that_is_a_file_ends_in_a_message(tmp_path, capsys):
    from softlabelseg.engine.cli import console_main

    cfg = write_standin_config(tmp_path)
    (tmp_path / "out").write_text("not a folder")
    assert console_main(["--config-file", cfg, f"train.output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert "exists and is not a folder" in err and "Traceback" not in err


def test_a_datasets_root_that_loops_is_named(tmp_path, monkeypatch):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    monkeypatch.setenv("SOFTLABELSEG_DATASETS", str(tmp_path / "a"))
    with pytest.raises(DatasetNotFoundError, match=f"{tmp_path / 'a'}.*symbolic link that leads nowhere"):
        DatasetCatalog.get("toycity_sem_seg_val")
