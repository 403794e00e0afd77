"""SemSegEvaluator metrics against a hand-computed confusion matrix; JSON output; label reading."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from softlabelseg.evaluation import (
    SemSegEvaluator,
    confusion_matrix,
    inference_on_dataset,
    metrics_from_confusion,
)

GT = torch.tensor([[0, 0, 1], [1, 2, 255]])
PRED = torch.tensor([[0, 1, 1], [1, 2, 0]])
# rows: ground truth, columns: prediction; the ignored pixel (255 -> predicted 0) does not count
CONF = [[1, 1, 0], [0, 2, 0], [0, 0, 1]]


def one_hot_probs(pred, c=3):
    return torch.nn.functional.one_hot(pred, c).permute(2, 0, 1).float()


def test_confusion_matrix_by_hand():
    assert confusion_matrix(PRED, GT, 3).tolist() == CONF


def test_metrics_by_hand():
    res = metrics_from_confusion(np.array(CONF), ["a", "b", "c"])
    # IoU = tp / (gt + pred - tp): a 1/(2+1-1), b 2/(2+3-2), c 1/1
    assert res["IoU-a"] == pytest.approx(50.0)
    assert res["IoU-b"] == pytest.approx(200 / 3)
    assert res["IoU-c"] == pytest.approx(100.0)
    assert res["mIoU"] == pytest.approx((50 + 200 / 3 + 100) / 3)
    assert res["fwIoU"] == pytest.approx(100 * (0.5 * 2 + 2 / 3 * 2 + 1 * 1) / 5)
    assert res["mACC"] == pytest.approx(100 * (0.5 + 1 + 1) / 3)
    assert res["pACC"] == pytest.approx(80.0)


def test_absent_classes():
    # class 2 absent in gt and prediction -> NaN, left out; class 1 only false positives -> IoU 0, counted
    conf = np.array([[3, 1, 0], [0, 0, 0], [0, 0, 0]])
    res = metrics_from_confusion(conf)
    assert math.isnan(res["IoU-2"]) and math.isnan(res["ACC-1"])
    assert res["IoU-1"] == 0.0
    assert res["mIoU"] == pytest.approx((75 + 0) / 2)
    assert res["mACC"] == pytest.approx(75.0)


def test_bad_label_value_is_named():
    with pytest.raises(ValueError, match=r"\[7\]"):
        confusion_matrix(PRED, torch.tensor([[0, 0, 7], [1, 2, 255]]), 3)


def test_evaluator_process_evaluate_and_json(tmp_path):
    ev = SemSegEvaluator(output_dir=str(tmp_path), num_classes=3, class_names=["a", "b", "c"])
    # split the example over two images to check accumulation
    inputs = [{"sem_seg": GT[:1], "file_name": "x1.png"}, {"sem_seg": GT[1:], "file_name": "x2.png"}]
    outputs = [{"sem_seg": one_hot_probs(PRED[:1])}, {"sem_seg": one_hot_probs(PRED[1:])}]
    ev.reset()
    ev.process(inputs, outputs)
    res = ev.evaluate()["sem_seg"]
    assert res["mIoU"] == pytest.approx((50 + 200 / 3 + 100) / 3)
    saved = json.loads((tmp_path / "sem_seg_evaluation.json").read_text())
    assert saved["confusion_matrix"] == CONF
    assert saved["metrics"]["pACC"] == pytest.approx(80.0)
    ev.reset()
    assert ev.confusion().sum() == 0


def test_evaluator_reads_label_file_and_shape_mismatch(tmp_path):
    path = tmp_path / "lab.png"
    Image.fromarray(GT.numpy().astype(np.uint8)).save(path)
    ev = SemSegEvaluator(num_classes=3)
    ev.process([{"sem_seg_file_name": str(path)}], [{"sem_seg": one_hot_probs(PRED)}])
    assert ev.confusion().tolist() == CONF
    with pytest.raises(ValueError, match="shape"):
        ev.process([{"sem_seg": GT, "file_name": "f.png"}], [{"sem_seg": torch.zeros(3, 4, 4)}])


def test_inference_on_dataset_restores_mode():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)

        def forward(self, batched):
            assert not self.training
            return [{"sem_seg": one_hot_probs(PRED)} for _ in batched]

    m = M().train()
    ev = SemSegEvaluator(num_classes=3)
    res = inference_on_dataset(m, [[{"sem_seg": GT}], [{"sem_seg": GT}]], ev)
    assert m.training
    assert ev.confusion().sum() == 10
    assert res["sem_seg"]["pACC"] == pytest.approx(80.0)


def test_evaluator_reads_raw_ids_through_record_lut(tmp_path):
    raw = np.array([[7, 7, 8], [8, 26, 0]], dtype=np.uint8)  # Cityscapes-like label ids
    Image.fromarray(raw).save(tmp_path / "raw.png")
    lut = [255] * 256
    lut[7], lut[8], lut[26] = 0, 1, 2
    ev = SemSegEvaluator(num_classes=3)
    ev.process(
        [{"sem_seg_file_name": str(tmp_path / "raw.png"), "label_lut": lut}],
        [{"sem_seg": one_hot_probs(PRED)}],
    )
    assert ev.confusion().tolist() == CONF
