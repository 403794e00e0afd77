"""End to end on a tiny generated ToyCity through the real recipe and the command-line entry: both label
modes train, checkpoint, evaluate at full resolution; an interrupted run resumed with --resume ends with
the same weights as an uninterrupted one; --eval-only reproduces the final evaluation. The slow test
runs the same recipe with two gloo processes (--num-gpus 2)."""

import json
import os

import pytest
import softlabelseg.engine.train_loop as train_loop
import torch
import yaml
from softlabelseg.data import generate_toycity
from softlabelseg.data.toycity import ToyCityParams
from softlabelseg.engine.cli import main

from tests.helpers.repo import load_tool
from tests.helpers.toycity import overrides

RECIPE = os.path.join(
    os.path.dirname(__file__), "..", "projects", "SoftLabelSeg", "configs", "toycity", "tiny_soft.py"
)


@pytest.fixture(scope="module")
def toycity(tmp_path_factory):
    root = tmp_path_factory.mktemp("toycity") / "toycity"
    generate_toycity(root, ToyCityParams(height=128, width=256, num_train=8, num_val=3, supersample=2))
    return root


def final_eval(out):
    return json.loads((out / "inference" / "sem_seg_evaluation.json").read_text())


@pytest.mark.parametrize("label_mode", ["soft", "nearest"])
def test_both_label_modes_train_and_evaluate(toycity, tmp_path, label_mode):
    out = tmp_path / label_mode
    main(
        [
            "--config-file",
            RECIPE,
            *overrides(toycity, out, f"dataloader.train.mapper.label_mode={label_mode}"),
        ]
    )
    assert (out / "model_final.pth").exists() and (out / "config.yaml").exists()
    assert f"label_mode: {label_mode}" in (out / "config.yaml").read_text()
    res = final_eval(out)
    assert res["dataset"] == "toycity_sem_seg_val" and len(res["class_names"]) == 19
    assert sum(map(sum, res["confusion_matrix"])) == 3 * 128 * 256 - res_ignored(toycity)
    assert 0 <= res["metrics"]["mIoU"] <= 100
    lines = [json.loads(x) for x in (out / "metrics.json").read_text().splitlines()]
    assert lines[-1]["iteration"] == 6 and "sem_seg/mIoU" in lines[-1]


def res_ignored(root):
    import numpy as np
    from PIL import Image

    files = sorted((root / "gtFine" / "val").glob("*/*_labelTrainIds.png"))
    return sum(int((np.asarray(Image.open(f)) == 255).sum()) for f in files)


def test_interrupt_resume_and_eval_only(toycity, tmp_path, monkeypatch):
    ref = tmp_path / "ref"
    main(["--config-file", RECIPE, *overrides(toycity, ref)])

    run = tmp_path / "run"
    original = train_loop.SimpleTrainer.run_step

    def killed_at_4(self):
        if self.iter == 4:
            raise KeyboardInterrupt("simulated kill")
        return original(self)

    monkeypatch.setattr(train_loop.SimpleTrainer, "run_step", killed_at_4)
    with pytest.raises(KeyboardInterrupt):
        main(["--config-file", RECIPE, *overrides(toycity, run)])
    monkeypatch.undo()
    assert (run / "last_checkpoint").read_text() == "model_0000003.pth"
    assert not (run / "model_final.pth").exists()

    main(["--config-file", RECIPE, "--resume", *overrides(toycity, run)])
    a = torch.load(ref / "model_final.pth", weights_only=True)["model"]
    b = torch.load(run / "model_final.pth", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=k)
    assert final_eval(run)["confusion_matrix"] == final_eval(ref)["confusion_matrix"]

    ev = tmp_path / "ev"
    main(
        [
            "--config-file",
            RECIPE,
            "--eval-only",
            *overrides(toycity, ev, f"train.init_checkpoint={ref / 'model_final.pth'}"),
        ]
    )
    assert final_eval(ev)["confusion_matrix"] == final_eval(ref)["confusion_matrix"]
    assert not (ev / "model_final.pth").exists()


def test_calibrate_prior_tool_scores_like_the_evaluator(toycity, tmp_path):
    """tools/calibrate_prior.py on a trained run: its argmax row is the run's own final evaluation, and its
    JSON lands in a folder that did not exist yet."""
    run = tmp_path / "run"
    main(["--config-file", RECIPE, *overrides(toycity, run)])
    tool = load_tool("calibrate_prior")
    out = tmp_path / "calibration" / "run.json"
    assert tool.main(["--config-file", str(run / "config.yaml"), "--checkpoint", str(run / "model_final.pth"),
                      "--fit-images", "4", "--iters", "3", "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["fit_images"] == 4 and len(res["history"]) == 3 and len(res["offsets"]) == 19
    plain = final_eval(run).get("metrics_without_offsets", final_eval(run)["metrics"])  # calibrated recipe
    assert res["val"]["argmax"]["mIoU"] == pytest.approx(plain["mIoU"], abs=1e-6)
    assert set(res["val"]) == {"argmax", "prior-matched"}
    assert not [p for p in os.listdir(out.parent) if p.startswith(".tmp_")]


@pytest.mark.slow
def test_two_process_ddp_via_cli(toycity, tmp_path):
    out = tmp_path / "ddp"
    url = f"file://{tmp_path}/rendezvous"
    main(["--config-file", RECIPE, "--num-gpus", "2", "--dist-url", url, *overrides(toycity, out)])
    ck = torch.load(out / "model_final.pth", weights_only=True)
    assert ck["iteration"] == 6 and len(ck["trainer"]["rng"]) == 2
    res = final_eval(out)
    assert sum(map(sum, res["confusion_matrix"])) == 3 * 128 * 256 - res_ignored(toycity)
    assert (out / "log.txt").exists() and (out / "log.txt.rank1").exists()


def test_bad_test_files_stop_the_run_before_training_and_checks_are_remembered(toycity, tmp_path, caplog):
    """A label value the dataset does not define and a truncated image in the test split end the run before
    anything is written; a second check of unchanged files decodes nothing; --skip-data-check and
    skip_bad_samples are the ways past it."""
    import logging
    import shutil

    import numpy as np
    from PIL import Image
    from softlabelseg.data import BadSampleError

    root = tmp_path / "toycity"
    shutil.copytree(toycity, root)
    labels = sorted((root / "gtFine" / "val").glob("*/*_labelTrainIds.png"))
    images = sorted((root / "leftImg8bit" / "val").glob("*/*.png"))
    bad = np.asarray(Image.open(labels[0])).copy()
    bad[0, 0] = 77
    Image.fromarray(bad).save(labels[0])
    images[1].write_bytes(images[1].read_bytes()[:200])  # truncated
    out = tmp_path / "out"
    with pytest.raises(BadSampleError) as err:
        main(["--config-file", RECIPE, *overrides(root, out)])
    text = str(err.value)
    assert "2 bad file(s)" in text and labels[0].name in text and "[77]" in text and images[1].name in text
    assert not out.exists()
    labels[0].unlink()
    shutil.copy(toycity / labels[0].relative_to(root), labels[0])
    images[1].unlink()
    shutil.copy(toycity / images[1].relative_to(root), images[1])
    with caplog.at_level(logging.INFO):
        main(["--config-file", RECIPE, *overrides(root, out, "train.max_iter=1")])
        assert "checked 2 of 3 samples' files (1 unchanged" in caplog.text
        caplog.clear()
        main(["--config-file", RECIPE, "--eval-only", *overrides(root, tmp_path / "ev",
              f"train.init_checkpoint={out / 'model_final.pth'}")])
        assert "checked 0 of 3 samples' files (3 unchanged" in caplog.text
    bad_again = np.asarray(Image.open(labels[0])).copy()
    bad_again[0, 0] = 77
    Image.fromarray(bad_again).save(labels[0])
    main(["--config-file", RECIPE, "--skip-data-check", "--eval-only", "--overwrite",
          *overrides(root, tmp_path / "ev", f"train.init_checkpoint={out / 'model_final.pth'}",
                     "dataloader.test.skip_bad_samples=True")])


def test_a_checkpoint_is_scored_and_resumed_only_at_its_own_factor(toycity, tmp_path):
    from softlabelseg.engine.checkpoint import CheckpointError

    run = tmp_path / "run"
    main(["--config-file", RECIPE, *overrides(toycity, run, "train.max_iter=4")])
    weights = f"train.init_checkpoint={run / 'model_final.pth'}"
    quarter = "dataloader.train.mapper.factor=0.25"
    with pytest.raises(CheckpointError, match=r"another resolution factor.*train_factor: checkpoint 0.125, "
                                              r"config 0.25.*--allow-factor-change"):
        main(["--config-file", RECIPE, "--eval-only", *overrides(toycity, tmp_path / "ev", weights, quarter)])
    assert not (tmp_path / "ev" / "inference").exists()
    with pytest.raises(CheckpointError, match="another resolution factor"):
        main(["--config-file", RECIPE, "--resume", *overrides(toycity, run, "train.max_iter=6", quarter)])
    main(["--config-file", RECIPE, "--eval-only", "--allow-factor-change",
          *overrides(toycity, tmp_path / "ev", weights, quarter)])
    assert "--allow-factor-change" in (tmp_path / "ev" / "log.txt").read_text()
    assert final_eval(tmp_path / "ev")["metrics"]["mIoU"] >= 0


def test_a_checkpoint_records_the_normalisation_it_was_trained_with(toycity, tmp_path):
    """The segmentor keeps pixel_mean/std as non-persistent buffers; the checkpoint's meta records them, and
    scoring it with a config that normalises differently is refused, naming the key."""
    from softlabelseg.engine.checkpoint import CheckpointError

    run = tmp_path / "run"
    main(["--config-file", RECIPE, *overrides(toycity, run, "train.max_iter=2")])
    meta = torch.load(run / "model_final.pth", weights_only=True)["meta"]
    saved = yaml.safe_load((run / "config.yaml").read_text())["model"]
    assert meta["pixel_mean"] == pytest.approx(saved["pixel_mean"], abs=1e-4)  # float32 buffers
    assert meta["pixel_std"] == pytest.approx(saved["pixel_std"], abs=1e-4)
    weights = f"train.init_checkpoint={run / 'model_final.pth'}"
    with pytest.raises(CheckpointError, match=r"trained with pixel_mean=.*model.pixel_mean"):
        main(["--config-file", RECIPE, "--eval-only",
              *overrides(toycity, tmp_path / "ev", weights, "model.pixel_mean=[0.0,0.0,0.0]")])


def test_calibration_is_a_step_of_the_run_carried_by_the_checkpoint(toycity, tmp_path, caplog):
    """train.calibration.enabled: the offsets are fitted on training images after the last step, saved in
    model_final, and the evaluation JSON holds the scores with and without them; --eval-only applies them
    (and says so), --no-calibration leaves them out; a run calibrated afterwards with the tool ends the
    same way."""
    import logging

    run = tmp_path / "run"
    main(["--config-file", RECIPE, *overrides(toycity, run, "train.calibration.enabled=True",
                                              "train.calibration.fit_images=8")])
    final = torch.load(run / "model_final.pth", weights_only=True)
    cal = final["calibration"]
    assert cal["method"] == "prior matching" and cal["fit_images"] == 8 and cal["offsets"].shape == (19,)
    res = final_eval(run)
    assert {"metrics", "metrics_without_offsets", "confusion_matrix_without_offsets"} <= set(res)
    ev = tmp_path / "ev"
    weights = f"train.init_checkpoint={run / 'model_final.pth'}"
    with caplog.at_level(logging.INFO):
        main(["--config-file", RECIPE, "--eval-only", *overrides(toycity, ev, weights)])
    assert "carries class offsets (prior matching on 8 training images): applied" in caplog.text
    assert final_eval(ev)["confusion_matrix"] == res["confusion_matrix"]
    main(["--config-file", RECIPE, "--eval-only", "--no-calibration", "--overwrite",
          *overrides(toycity, ev, weights)])
    assert final_eval(ev)["confusion_matrix"] == res["confusion_matrix_without_offsets"]
    assert "metrics_without_offsets" not in final_eval(ev)

    resumed = tmp_path / "resumed"  # killed after its last step, before the offsets: --resume fits them
    main(["--config-file", RECIPE, *overrides(toycity, resumed, "train.calibration.enabled=False")])
    main(["--config-file", RECIPE, "--resume",
          *overrides(toycity, resumed, "train.calibration.fit_images=8")])
    assert torch.equal(torch.load(resumed / "model_final.pth", weights_only=True)["calibration"]["offsets"],
                       cal["offsets"])
    assert "metrics_without_offsets" in final_eval(resumed)

    later = tmp_path / "later"
    main(["--config-file", RECIPE, *overrides(toycity, later, "train.calibration.enabled=False")])
    assert "calibration" not in torch.load(later / "model_final.pth", weights_only=True)
    plain = final_eval(later)
    tool = load_tool("calibrate_prior")
    assert tool.main(["--run", str(later), "--fit-images", "8"]) == 0
    again = final_eval(later)
    assert again["metrics_without_offsets"] == plain["metrics"]
    assert torch.equal(torch.load(later / "model_final.pth", weights_only=True)["calibration"]["offsets"],
                       cal["offsets"])  # deterministic: the same fit as the run's own


def test_calibration_refuses_too_few_training_images(toycity, tmp_path):
    from softlabelseg.engine.train_config import ConfigValueError

    with pytest.raises(ConfigValueError, match="train.calibration.fit_images"):
        main(["--config-file", RECIPE, *overrides(toycity, tmp_path / "r", "train.calibration.enabled=True",
                                                  "train.calibration.fit_images=2")])


def test_demo_writes_overlays_with_a_legend_from_a_checkpoint(toycity, tmp_path, capsys):
    run = tmp_path / "run"
    main(["--config-file", RECIPE, *overrides(toycity, run, "train.max_iter=2")])
    assert len(os.listdir(run / "inference" / "overlays")) == 3  # the recipe writes the val overlays
    demo = load_tool("demo")
    images = toycity / "leftImg8bit" / "val"
    args = ["--config-file", str(run / "config.yaml"), "--input", str(images), "--output",
            str(tmp_path / "demo"), f"train.init_checkpoint={run / 'model_final.pth'}"]
    assert demo.main(args) == 0
    written = sorted(p.relative_to(tmp_path / "demo") for p in (tmp_path / "demo").rglob("*.png"))
    sources = sorted(p.relative_to(images) for p in images.rglob("*.png"))
    assert [str(p) for p in written] == sorted(str(s.with_suffix("")) + e for s in sources
                                               for e in ("_overlay.png", "_labels.png"))
    from PIL import Image

    overlay = Image.open(tmp_path / "demo" / str(sources[0]).replace(".png", "_overlay.png"))
    labels = Image.open(tmp_path / "demo" / str(sources[0]).replace(".png", "_labels.png"))
    assert labels.size == (256, 128) and overlay.size[0] == 256 and overlay.size[1] > 128  # + legend
    assert demo.main(args[:5] + [str(images / "inside")] + args[6:]) == 2  # never writes where it reads
    assert "inside --input" in capsys.readouterr().err
    broken = tmp_path / "mixed"
    broken.mkdir()
    (broken / "broken.png").write_bytes(b"not an image")
    (broken / "good.png").write_bytes(next(images.rglob("*.png")).read_bytes())
    assert demo.main(["--config-file", str(run / "config.yaml"), "--input", str(broken), "--output",
                      str(tmp_path / "demo2"), f"train.init_checkpoint={run / 'model_final.pth'}"]) == 1
    assert (tmp_path / "demo2" / "good_overlay.png").is_file()
    assert not list((tmp_path / "demo2").glob("broken*"))
