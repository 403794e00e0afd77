"""Serving and export never lose an output silently, survive one bad image, and refuse a wrong factor.

Protects: collision-free output names, failed writes and per-image failures in folder runs (exit code),
the memory-bounded fused upsampling + argmax, corrupt .onnx files, and the resolution-factor cross-check
between recipe, checkpoint and exported file; NaN / inf weights refused by export, verify and the runner,
NaN / inf or input-independent outputs failing verify, NaN scores never written as labels, an output
folder inside the input folder refused, exports and output PNGs replaced atomically (a killed export keeps
the earlier file), images over the memory budget and onnxruntime errors skipped with a reason.
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

from tests.helpers.export import nan_scores_model, poison_onnx, toycity_setup

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


def _images(folder: Path, records, names=("a.jpg", "a0.png", "sub/a.png", "b.png")):
    img = cv2.imread(records[0]["file_name"])
    for rel in names:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / rel), img)


def test_folder_outputs_never_collide(exported, tmp_path, capsys):
    _images(tmp_path / "in", exported["records"], ("a.png", "a.jpg", "b.png"))  # both write a_labels.png
    args = ["--model", exported["onnx"], "--output", str(tmp_path / "out"), "--threads", "1"]
    rc = infer_onnx.main([*args, "--input", str(tmp_path / "in")])
    err = capsys.readouterr().err
    both = f"'{tmp_path / 'in' / 'a.jpg'}' and '{tmp_path / 'in' / 'a.png'}' would both write"
    assert rc == 2 and both in err
    assert f"{tmp_path / 'out' / 'a'}_labels.png" in err and not (tmp_path / "out").exists()
    _images(tmp_path / "ok", exported["records"], ("a.png", "sub/a.png", "b.png"))  # other folders: no clash
    assert infer_onnx.main([*args, "--input", str(tmp_path / "ok")]) == 0
    labels = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*_labels.png"))
    assert labels == ["a_labels.png", "b_labels.png", "sub/a_labels.png"]


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


# ---- Reliability v3: broken weights, outputs beside inputs, interrupted writes, memory ----------------
def _write_checkpoint(source, path, edit):
    ckpt = torch.load(source, weights_only=True)
    edit(ckpt["model"])
    torch.save(ckpt, path)
    return str(path)


def test_nonfinite_checkpoint_is_refused_by_export_and_verify(exported, tmp_path, capsys):
    from softlabelseg_export import export_onnx

    def poison(state):
        state["head.classifier.weight"][0, 0] = float("nan")
        state["backbone.stage3.1.1.running_var"][2] = float("inf")

    bad = _write_checkpoint(exported["checkpoint"], tmp_path / "diverged.pth", poison)
    out = tmp_path / "m.onnx"
    rc = export_onnx.main(["--config-file", exported["config_file"], "--checkpoint", bad,
                           "--output", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "diverged.pth" in err and "NaN or inf values in 2 of" in err
    assert "head.classifier.weight" in err and "backbone.stage3.1.1.running_var" in err
    assert "Traceback" not in err and not out.exists()
    rc = verify.main(["--model", exported["onnx"], "--config-file", exported["config_file"], "--checkpoint",
                      bad, "--num-images", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "head.classifier.weight" in err and "checkpoint saved before the divergence" in err


def test_verify_fails_on_nonfinite_or_input_independent_outputs(exported, tmp_path, capsys):
    common = ["--config-file", exported["config_file"], "--num-images", "1"]
    poisoned, _ = poison_onnx(exported["onnx"], tmp_path / "nan.onnx")
    rc = verify.main(["--model", poisoned, "--checkpoint", exported["checkpoint"], *common])
    out = capsys.readouterr().out
    assert rc == 1 and out.startswith("FAIL") and "the ONNX outputs hold" in out and "NaN or inf" in out
    assert "max |logit diff| nan" in out and "export it again" in out
    # finite weights, but the classifier ignores its input: logits are the bias for every image
    flat = _write_checkpoint(exported["checkpoint"], tmp_path / "flat.pth",
                             lambda state: state["head.classifier.weight"].zero_())  # fmt: skip
    export_from_recipe(exported["config_file"], flat, str(tmp_path / "flat.onnx"))
    rc = verify.main(["--model", str(tmp_path / "flat.onnx"), "--checkpoint", flat, *common])
    out = capsys.readouterr().out
    assert rc == 1 and out.startswith("FAIL") and "max |logit diff| 0 " in out
    assert "the ONNX and PyTorch model returns the same output for 3 different random images" in out
    rc = verify.main(["--model", exported["onnx"], "--checkpoint", exported["checkpoint"], *common])
    assert rc == 0 and capsys.readouterr().out.startswith("PASS")


def test_runner_refuses_nonfinite_weights_and_skips_nonfinite_scores(exported, tmp_path, capsys):
    _images(tmp_path / "in", exported["records"])
    poisoned, name = poison_onnx(exported["onnx"], tmp_path / "nan.onnx")
    rc = infer_onnx.main(["--model", poisoned, "--input", str(tmp_path / "in"), "--output",
                          str(tmp_path / "out"), "--threads", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "nan.onnx" in err and f"NaN or inf weights in 1 initializer(s) ({name})" in err
    assert not (tmp_path / "out").exists()  # refused before any image
    nan_model = nan_scores_model(tmp_path / "nan_scores.onnx")
    rc = infer_onnx.main(["--model", str(nan_model), "--input", str(tmp_path / "in"), "--output",
                          str(tmp_path / "out"), "--threads", "1"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 1 and "4 FAILED" in captured.out and "0 image(s)" in captured.out
    assert "b.png: the model returned" in captured.err and "NaN or inf score(s)" in captured.err
    assert not list((tmp_path / "out").rglob("*.png"))  # no all-zero labels


def test_output_folder_inside_the_input_folder_is_refused(exported, tmp_path, capsys):
    folder = tmp_path / "in"
    _images(folder, exported["records"])
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    (tmp_path / "link").symlink_to(folder / "sub")
    for output, where in ((folder, "is the input folder"), (folder / "sub" / "out", "is inside the input"),
                          (tmp_path / "link", "is inside the input")):  # fmt: skip
        rc = infer_onnx.main(["--model", exported["onnx"], "--input", str(folder), "--output", str(output)])
        err = capsys.readouterr().err
        assert rc == 2 and f"output folder {str(output)!r} {where}" in err, err
        assert "Choose an output folder outside the input folder" in err
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before  # nothing written
    rc = infer_onnx.main(["--model", exported["onnx"], "--input", str(folder / "b.png"), "--output",
                          str(folder)])  # one image: its outputs never match an input name  # fmt: skip
    assert rc == 0 and (folder / "b_labels.png").is_file()


KILLED_EXPORT = """
import os, sys, time
from softlabelseg_export import exporter
from softlabelseg_export.pipeline import export_from_recipe
config, checkpoint, output, marker, hook = sys.argv[1:]
folder = os.path.dirname(output)

def stop():
    open(marker, "w").close()
    time.sleep(600)

if hook == "traced":
    trace = exporter._trace
    def _trace(*args, **kwargs):
        trace(*args, **kwargs)
        stop()
    exporter._trace = _trace
else:  # the final write: killed after its bytes are written, before they replace the file
    fsync = os.fsync
    def hooked(fd):
        fsync(fd)
        if os.path.dirname(os.readlink(f"/proc/self/fd/{fd}")) == folder:
            stop()
    os.fsync = hooked
export_from_recipe(config, checkpoint, output, output_kind="labels")
"""


@pytest.mark.parametrize("hook", ["traced", "final_write"])
def test_killed_export_leaves_the_previous_file(exported, tmp_path, hook):
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "m.onnx"
    shutil.copy(exported["onnx"], target)
    before = target.read_bytes()
    marker = tmp_path / "marker"
    cmd = [sys.executable, "-c", KILLED_EXPORT, exported["config_file"], exported["checkpoint"], str(target),
           str(marker), hook]  # fmt: skip
    child = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    reached = marker.exists()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert reached, f"export never reached the {hook} point (rc {child.returncode}): {child.stderr.read()}"
    assert target.read_bytes() == before  # the earlier good export is untouched
    others = [p.name for p in tmp_path.iterdir() if p.name not in ("m.onnx", "marker")]
    assert all(name.startswith(".tmp_m.onnx.") for name in others), others


def test_runner_outputs_are_replaced_atomically(exported, tmp_path, capsys, monkeypatch):
    import os

    _images(tmp_path / "in", exported["records"])
    args = ["--model", exported["onnx"], "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
            "--threads", "1"]  # fmt: skip
    assert infer_onnx.main(args) == 0
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*.png")}
    capsys.readouterr()

    def fsync(fd):
        raise OSError(5, "Input/output error")  # the disk fails while the new PNGs are being written

    monkeypatch.setattr(os, "fsync", fsync)
    assert infer_onnx.main(args) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "b_labels.png" in err and "Input/output error" in err
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*.png")} == before  # complete, unchanged
    assert not [p for p in (tmp_path / "out").rglob(".tmp_*")]


def test_large_images_are_refused_by_export_kind(exported, tmp_path, capsys):
    _images(tmp_path / "in", exported["records"])
    labels = tmp_path / "labels_full.onnx"
    export_from_recipe(exported["config_file"], exported["checkpoint"], str(labels), output_kind="labels",
                       dynamic=True, upsample_to="original")  # fmt: skip
    small = ["--max-memory-gb", "0.01", "--threads", "1"]  # 10 MB: the logits export fits, labels_full not
    rc = infer_onnx.main(["--model", str(labels), "--input", str(tmp_path / "in"), "--output",
                          str(tmp_path / "o1"), *small])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 1 and "4 FAILED" in captured.out
    assert ("b.png: 512x256 image needs about 0.02 GB with this export (limit 0.01 GB, --max-memory-gb)"
            in captured.err)
    assert "upsamples 19 class scores to the image's full size" in captured.err
    assert "Export with --output-kind logits and without --upsample-to" in captured.err
    rc = infer_onnx.main(["--model", exported["onnx"], "--input", str(tmp_path / "in"), "--output",
                          str(tmp_path / "o2"), *small])  # fmt: skip
    assert rc == 0 and "4 image(s)" in capsys.readouterr().out


def test_onnxruntime_error_on_one_image_skips_it(exported, tmp_path, capsys, monkeypatch):
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, RuntimeException

    _images(tmp_path / "in", exported["records"])
    real = OnnxSegmenter.run
    errors = [
        RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while "
                         "running Conv node. Failed to allocate memory for requested buffer of size 1073741"),
        Fail("[ONNXRuntimeError] : 1 : FAIL : bad input"),
    ]  # fmt: skip

    def run(self, batch):
        if errors:
            raise errors.pop(0)
        return real(self, batch)

    monkeypatch.setattr(OnnxSegmenter, "run", run)
    rc = infer_onnx.main(["--model", exported["onnx"], "--input", str(tmp_path / "in"), "--output",
                          str(tmp_path / "out"), "--threads", "1"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 1 and "2 image(s)" in captured.out and "2 FAILED" in captured.out
    assert "a.jpg: onnxruntime failed (RuntimeException:" in captured.err and "out of memory" in captured.err
    assert "a0.png: onnxruntime failed (Fail:" in captured.err and "Traceback" not in captured.err
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*_labels.png"))
    assert written == ["b_labels.png", "sub/a_labels.png"]
