"""The project inside real detectron2 (these tests skip, saying why, where detectron2 is not installed).

On a tiny generated ToyCity, 20 iterations: detectron2's unmodified ``tools/lazyconfig_train_net.py``
(taken from the vendored source archive) and ``--engine detectron2`` end with the native engine's weights
and mIoU; a SIGKILLed detectron2-engine run resumed with ``--resume`` equals an uninterrupted one;
checkpoints resume and evaluate across engines both ways; detectron2's ``SemSegEvaluator`` on the
project's catalog entries agrees with the project's evaluator, raw-id label files included; every recipe
loads and builds under ``detectron2.config``.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from softlabelseg.data import generate_toycity
from softlabelseg.data.toycity import ToyCityParams
from softlabelseg.engine.cli import main
from softlabelseg.engine.train_config import ConfigValueError

from tests.helpers.repo import CONFIGS, REPO, recipes
from tests.helpers.toycity import overrides as toycity_overrides

try:
    import detectron2  # noqa: F401 (only whether it is installed)

    HAVE_D2 = True
except ImportError:
    HAVE_D2 = False
needs_d2 = pytest.mark.skipif(
    not HAVE_D2,
    reason="detectron2 is not installed; install it as docs/detectron2.md says to run these",
)
RECIPE = os.path.join(CONFIGS, "toycity", "tiny_soft.py")
D2_ARCHIVE = os.path.join(REPO, "..", "shared", "vendor", "detectron2-02b5c4e.tar.gz")
ITERS = 20


def overrides(root, out, *extra):
    """The recipe pointed at the tiny ToyCity (as in test_e2e_toycity), 20 iterations, evaluated at 10."""
    return toycity_overrides(root, out, f"train.max_iter={ITERS}", "train.checkpointer.period=10",
                             "train.eval_period=10", "train.log_period=5", *extra)


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def evaluation(out):
    return json.loads((out / "inference" / "sem_seg_evaluation.json").read_text())


@pytest.fixture(scope="module")
def toycity(tmp_path_factory):
    root = tmp_path_factory.mktemp("toycity") / "toycity"
    generate_toycity(root, ToyCityParams(height=128, width=256, num_train=8, num_val=3, supersample=2))
    return root


@pytest.fixture(scope="module")
def native(toycity, tmp_path_factory):
    """The reference: 20 iterations of the native engine (evaluated at 10 and 20)."""
    out = tmp_path_factory.mktemp("native") / "out"
    main(["--config-file", RECIPE, *overrides(toycity, out)])
    return out


@pytest.fixture(scope="module")
def d2_engine(toycity, native, tmp_path_factory):
    out = tmp_path_factory.mktemp("d2_engine") / "out"
    main(["--config-file", RECIPE, "--engine", "detectron2", *overrides(toycity, out)])
    return out


@needs_d2
def test_detectron2_engine_equals_native(native, d2_engine):
    assert max_diff(weights(native / "model_final.pth"), weights(d2_engine / "model_final.pth")) == 0.0
    assert evaluation(d2_engine)["confusion_matrix"] == evaluation(native)["confusion_matrix"]
    assert evaluation(d2_engine)["metrics"]["mIoU"] == evaluation(native)["metrics"]["mIoU"]
    lines = [json.loads(x) for x in (d2_engine / "metrics.json").read_text().splitlines()]
    assert [x["iteration"] for x in lines if "sem_seg/mIoU" in x] == [9, 20]  # detectron2's numbering
    assert {"loss_sem_seg", "lr", "time", "data_time"} <= set(lines[0])
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(d2_engine))


@needs_d2
@pytest.mark.skipif(not os.path.isfile(D2_ARCHIVE), reason=f"no detectron2 source archive at {D2_ARCHIVE}")
def test_detectron2_unmodified_tool_equals_native(native, toycity, tmp_path):
    with tarfile.open(D2_ARCHIVE) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("tools/lazyconfig_train_net.py"))
        tool = tmp_path / "lazyconfig_train_net.py"
        tool.write_bytes(tar.extractfile(member).read())
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(tool), "--config-file", RECIPE, *overrides(toycity, out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert max_diff(weights(native / "model_final.pth"), weights(out / "model_final.pth")) == 0.0
    # detectron2's own tool knows no train.calibration: it scores the plain argmax, which the native run's
    # evaluation JSON reports beside its calibrated scores
    ours = evaluation(native)
    plain = ours.get("metrics_without_offsets", ours["metrics"])
    assert evaluation(out)["metrics"]["mIoU"] == plain["mIoU"]


KILLER = """
import os, signal, sys
from softlabelseg import d2_bridge
from softlabelseg.engine.cli import main

run_step = d2_bridge.Detectron2Trainer.run_step

def killed_at_13(self):
    if self.iter == 13:  # after the checkpoint of iteration 9 and three more iterations
        os.kill(os.getpid(), signal.SIGKILL)
    run_step(self)

d2_bridge.Detectron2Trainer.run_step = killed_at_13
main(sys.argv[1:])
"""


@needs_d2
def test_sigkill_then_resume_under_detectron2_engine(native, toycity, tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(KILLER)
    out = tmp_path / "run"
    args = ["--config-file", RECIPE, "--engine", "detectron2", *overrides(toycity, out)]
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == -9, done.stderr[-3000:]
    assert (out / "last_checkpoint").read_text() == "model_0000009.pth"
    assert not (out / "model_final.pth").exists()
    main([*args, "--resume"])
    assert max_diff(weights(native / "model_final.pth"), weights(out / "model_final.pth")) == 0.0
    assert evaluation(out)["confusion_matrix"] == evaluation(native)["confusion_matrix"]


def _resume_from(src, engine, toycity, out):
    """Resumes, under ``engine``, from ``src``'s checkpoint of iteration 9 (copied into ``out``)."""
    out.mkdir()
    shutil.copy(src / "model_0000009.pth", out)
    (out / "last_checkpoint").write_text("model_0000009.pth")
    main(["--config-file", RECIPE, "--engine", engine, "--resume", *overrides(toycity, out)])
    return weights(out / "model_final.pth")


@needs_d2
def test_checkpoints_resume_and_evaluate_across_engines(native, d2_engine, toycity, tmp_path):
    ref = weights(native / "model_final.pth")
    assert max_diff(ref, _resume_from(native, "detectron2", toycity, tmp_path / "n2d")) == 0.0
    assert max_diff(ref, _resume_from(d2_engine, "native", toycity, tmp_path / "d2n")) == 0.0
    for src, engine in ((native, "detectron2"), (d2_engine, "native")):
        out = tmp_path / f"eval_{engine}"
        main(["--config-file", RECIPE, "--engine", engine, "--eval-only",
              *overrides(toycity, out, f"train.init_checkpoint={src / 'model_final.pth'}")])
        assert evaluation(out)["confusion_matrix"] == evaluation(src)["confusion_matrix"]


@pytest.mark.parametrize("engine", ["native", pytest.param("detectron2", marks=needs_d2)])
def test_unknown_train_key_is_refused_by_name(engine, toycity, tmp_path):
    with pytest.raises(ConfigValueError, match=r"train\.warmup_iters"):
        main(["--config-file", RECIPE, "--engine", engine,
              *overrides(toycity, tmp_path / "out", "+train.warmup_iters=5")])
    assert not (tmp_path / "out").exists()


def _raw_id_copy(root, dst):
    """The val split with Cityscapes raw-id ``*_labelIds.png`` files in place of the train-id ones."""
    from softlabelseg.data.datasets.builtin_meta import CITYSCAPES_ID_TO_TRAINID

    to_raw = np.zeros(256, np.uint8)
    for raw, train in enumerate(CITYSCAPES_ID_TO_TRAINID):
        if train != -1 and not to_raw[train]:
            to_raw[train] = raw
    to_raw[255] = 0  # "unlabeled"
    shutil.copytree(root / "leftImg8bit" / "val", dst / "leftImg8bit" / "val")
    for f in sorted((root / "gtFine" / "val").glob("*/*_labelTrainIds.png")):
        target = dst / "gtFine" / "val" / f.parent.name / f.name.replace("labelTrainIds", "labelIds")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(to_raw[np.asarray(Image.open(f))]).save(target)
    return dst


@needs_d2
def test_d2_catalogs_and_semseg_evaluator_agree(native, toycity, tmp_path):
    from detectron2.data import DatasetCatalog as D2Datasets
    from detectron2.data import MetadataCatalog as D2Metadata
    from detectron2.evaluation import inference_on_dataset
    from detectron2.utils.visualizer import Visualizer
    from softlabelseg import d2_bridge
    from softlabelseg.config import LazyConfig, instantiate
    from softlabelseg.data import DatasetCatalog, MetadataCatalog
    from softlabelseg.data.datasets import load_cityscapes_semantic

    builtin = {n: D2Metadata.get(n) for n in ("ade20k_sem_seg_train", "cityscapes_fine_sem_seg_val")}
    raw_root = _raw_id_copy(toycity, tmp_path / "raw")
    for name, root in (("tiny_toycity_val", toycity), ("tiny_toycity_raw_val", raw_root)):
        if name not in DatasetCatalog:
            DatasetCatalog.register(name, lambda r=root: load_cityscapes_semantic(r, "val"))
            toycity_meta = MetadataCatalog.get("toycity_sem_seg_val").as_dict()
            MetadataCatalog.get(name).set(**{**toycity_meta, "name": name})
    names = d2_bridge.register_datasets()
    assert "softlabelseg_ade20k_sem_seg_train" in names and "softlabelseg_tiny_toycity_val" in names
    assert all(D2Metadata.get(n) is m for n, m in builtin.items())  # detectron2's built-ins untouched
    meta = D2Metadata.get("softlabelseg_tiny_toycity_val")
    assert len(meta.stuff_classes) == 19 and meta.ignore_label == 255 and meta.evaluator_type == "sem_seg"
    assert len(D2Metadata.get("softlabelseg_ade20k_sem_seg_val").stuff_classes) == 150
    records = D2Datasets.get("softlabelseg_tiny_toycity_raw_val")
    assert all(r["label_lut"] is not None for r in records)
    assert all(r["sem_seg_file_name"].endswith("_labelIds.png") for r in records)

    cfg = LazyConfig.load(RECIPE)
    LazyConfig.apply_overrides(cfg, overrides(toycity, tmp_path / "unused"))
    model = instantiate(cfg.model)
    model.load_state_dict(weights(native / "model_final.pth"))
    ours = evaluation(native).get("metrics_without_offsets", evaluation(native)["metrics"])  # state dict only
    for name in ("tiny_toycity_val", "tiny_toycity_raw_val"):
        cfg.dataloader.test.dataset = name
        loader = instantiate(cfg.dataloader.test)
        theirs = inference_on_dataset(model, loader, d2_bridge.d2_sem_seg_evaluator(name))["sem_seg"]
        assert theirs["mIoU"] == pytest.approx(ours["mIoU"], abs=1e-9), name
        assert theirs["pACC"] == pytest.approx(ours["pACC"], abs=1e-9), name

    image = np.asarray(Image.open(records[0]["file_name"]).convert("RGB"))
    label = np.asarray(Image.open(glob.glob(str(toycity / "gtFine/val/*/*_labelTrainIds.png"))[0]))
    drawn = Visualizer(image, meta).draw_sem_seg(label).get_image()
    assert drawn.shape == image.shape


@needs_d2
def test_every_recipe_loads_and_builds_under_detectron2_config():
    from detectron2.config import LazyConfig, instantiate

    paths = [os.path.join(CONFIGS, r) for r in recipes()]
    assert len(paths) >= 20
    models = {}
    for path in paths:
        cfg = LazyConfig.load(path)
        assert cfg.train.device in ("cpu", "cuda"), path
        assert cfg.dataloader.evaluator.output_dir == f"{cfg.train.output_dir}/inference", path
        if "pretrained" in cfg.model.backbone:
            cfg.model.backbone.pretrained = False
        key = repr(cfg.model)
        if key not in models:
            models[key] = instantiate(cfg.model)
        cfg.optimizer.params.model = models[key]
        optimizer = instantiate(cfg.optimizer)
        assert optimizer.param_groups and instantiate(cfg.lr_multiplier)(0.5) > 0
        for split in ("train", "test"):
            assert callable(instantiate(cfg.dataloader[split].mapper)), path


def test_cli_without_detectron2_says_how_to_install(toycity, tmp_path, monkeypatch):
    import softlabelseg

    for name in [m for m in sys.modules if m.split(".")[0] == "detectron2"] + ["detectron2"]:
        monkeypatch.setitem(sys.modules, name, None)  # import detectron2(.x) -> ImportError
    monkeypatch.delitem(sys.modules, "softlabelseg.d2_bridge", raising=False)
    monkeypatch.delattr(softlabelseg, "d2_bridge", raising=False)
    with pytest.raises(ImportError, match="pip install --no-build-isolation 'git\\+https://github.com/"):
        main(["--config-file", RECIPE, "--engine", "detectron2", *overrides(toycity, tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_native_engine_never_imports_detectron2():
    code = (
        "import sys, softlabelseg.engine.cli, softlabelseg.evaluation, softlabelseg.modeling\n"
        "from softlabelseg.config import LazyConfig, instantiate\n"
        f"cfg = LazyConfig.load({RECIPE!r}); instantiate(cfg.model); instantiate(cfg.dataloader.evaluator)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'detectron2'], 'detectron2 imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
