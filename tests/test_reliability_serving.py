"""Serving and export never lose an output silently, survive one bad image, and refuse a wrong factor.

Protects: collision-free output names, failed writes and per-image failures in folder runs (exit code),
the memory-bounded fused upsampling + argmax, corrupt .onnx files, and the resolution-factor cross-check
between recipe, checkpoint and exported file.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from softlabelseg_export import infer_onnx, verify
from softlabelseg_export.pipeline import export_from_recipe
from softlabelseg_export.runtime import OnnxSegmenter, labels_from_scores, upsample_scores
from softlabelseg_export.verification import ResolutionMismatchError

from tests.helpers.export import toycity_setup

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    setup = toycity_setup(root, REPO, num_val=2)
    ckpt = torch.load(setup["checkpoint"], weights_only=True)
    ckpt["meta"] = {"train_factor": 0.125, "resolution_factor": 0.125}  # as the trainer saves it
    torch.save(ckpt, setup["checkpoint"])
    export_from_recipe(setup["config_file"], setup["checkpoint"], str(root / "m.onnx"))
    return dict(setup, onnx=str(root / "m.onnx"), root=root)


def _images(folder: Path, records):
    img = cv2.imread(records[0]["file_name"])
    for rel in ("a.png", "a.jpg", "sub/a.png", "b.png"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / rel), img)


def test_folder_outputs_never_collide(exported, tmp_path, capsys):
    _images(tmp_path / "in", exported["records"])
    rc = infer_onnx.main(["--model", exported["onnx"], "--input", str(tmp_path / "in"),
                          "--output", str(tmp_path / "out"), "--threads", "1"])
    assert rc == 0 and "4 image(s)" in capsys.readouterr().out
    labels = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*_labels.png"))
    assert labels == ["a.jpg_labels.png", "a.png_labels.png", "b_labels.png", "sub/a_labels.png"]


def test_one_failing_image_is_reported_and_the_run_goes_on(exported, tmp_path, capsys, monkeypatch):
    _images(tmp_path / "in", exported["records"])
    (tmp_path / "out" / "b_labels.png").mkdir(parents=True)  # this output cannot be written
    real = OnnxSegmenter.predict

    def predict(self, image):
        predict.calls += 1
        if predict.calls == 1:
            raise MemoryError  # one allocation failure, e.g. an 8000 x 8000 image
        return real(self, image)

    predict.calls = 0
    monkeypatch.setattr(OnnxSegmenter, "predict", predict)
    rc = infer_onnx.main(["--model", exported["onnx"], "--input", str(tmp_path / "in"),
                          "--output", str(tmp_path / "out"), "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 1 and "2 FAILED" in captured.out and "2 image(s)" in captured.out
    assert "a.jpg: out of memory" in captured.err and "b_labels.png" in captured.err
    assert (tmp_path / "out" / "sub" / "a_labels.png").is_file()


@pytest.mark.parametrize("align_corners", [False, True])
def test_fused_labels_equal_full_upsampling_except_near_ties(align_corners):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(7, 9, 13)).astype(np.float32)
    full = upsample_scores(scores, (45, 70), align_corners)
    fused = labels_from_scores(scores, (45, 70), align_corners, max_bytes=7 * 70 * 4 * 3 * 4)  # 4-row bands
    top2 = np.sort(full, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 1e-5
    assert fused.dtype == np.uint8 and fused.shape == (45, 70)
    np.testing.assert_array_equal(fused[clear], full.argmax(0)[clear])


def test_corrupt_onnx_gives_a_clear_error(exported, tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(Path(exported["onnx"]).read_bytes()[:500])
    (tmp_path / "x.png").write_bytes(Path(exported["records"][0]["file_name"]).read_bytes())
    assert infer_onnx.main(["--model", str(bad), "--input", str(tmp_path / "x.png"), "--output",
                            str(tmp_path / "o")]) == 2
    assert "not a loadable ONNX model" in capsys.readouterr().err
    assert verify.main(["--model", str(bad), "--config-file", exported["config_file"], "--checkpoint",
                        exported["checkpoint"], "--num-images", "1"]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err


def test_export_and_verify_refuse_a_different_factor(exported, tmp_path, capsys):
    with pytest.raises(ResolutionMismatchError, match="trained for factor 0.125.*give 0.25"):
        export_from_recipe(exported["config_file"], exported["checkpoint"], str(tmp_path / "q.onnx"),
                           overrides=["dataloader.train.mapper.factor=0.25"])
    assert not (tmp_path / "q.onnx").exists()
    rc = verify.main(["--model", exported["onnx"], "--config-file", exported["config_file"], "--checkpoint",
                      exported["checkpoint"], "--num-images", "1", "dataloader.train.mapper.factor=0.25"])
    err = capsys.readouterr().err
    assert rc == 2 and "m.onnx was exported for factor 0.125" in err and "trained for factor 0.125" in err


def test_evaluation_top1_equals_the_argmax_of_full_probabilities():
    from softlabelseg.config import LazyConfig, instantiate
    from softlabelseg.evaluation import build_test_model

    cfg = LazyConfig.load(str(REPO / "projects/SoftLabelSeg/configs/toycity/tiny_soft.py"))
    cfg.model.backbone.output_stride = 4  # logits on a coarser grid than the image: two resizes to fuse
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    inputs = [{"image": torch.randint(0, 255, (3, 30, 61), dtype=torch.uint8), "height": 243, "width": 487}]
    with torch.no_grad():
        probs = model(inputs)[0]["sem_seg"]
        labels = build_test_model(model)(inputs)[0]["sem_seg_labels"]
        small = model.predict_labels(inputs, max_bytes=1 << 16)[0]["sem_seg_labels"]  # many bands
    top2 = probs.topk(2, dim=0).values
    clear = (top2[0] - top2[1]) > 1e-5
    assert labels.shape == (243, 487) and clear.float().mean() > 0.99
    assert torch.equal(labels[clear], probs.argmax(0)[clear]) and torch.equal(small, labels)
