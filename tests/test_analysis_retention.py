"""Label-retention analysis (softlabelseg_research.retention + tools/analyze_downsampling.py) on tiny maps."""
from __future__ import annotations

import csv
import importlib.util
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from softlabelseg.data import DatasetCatalog, MetadataCatalog
from softlabelseg.utils.factors import factor_label, parse_factor
from softlabelseg_research import RetentionResult, analyze_records, measure_label

from softlabel_ops import soft_resize
from softlabel_ops.modes import mode_name
from softlabel_ops.stats import soft_class_share

NAMES = ["road", "pole", "car"]
DATASET = "retention_tiny_test"
TOOL = Path(__file__).resolve().parents[1] / "tools" / "analyze_downsampling.py"


def _labels() -> list[np.ndarray]:
    """32 x 64 maps: road with a car block, a 1-px wide pole at an odd column, a few ignore pixels."""
    out = []
    for i in range(3):
        lab = np.zeros((32, 64), np.uint8)
        lab[8:24, 16 + 8 * i: 40 + 8 * i] = 2
        lab[:, 5 + 2 * i] = 1
        lab[0, :3] = 255
        out.append(lab)
    return out


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_labels")
    recs = []
    for i, lab in enumerate(_labels()):
        path = root / f"img{i}_labelTrainIds.png"
        Image.fromarray(lab).save(path)
        recs.append({"file_name": str(path), "sem_seg_file_name": str(path), "height": 32, "width": 64,
                     "image_id": f"img{i}"})
    if DATASET not in DatasetCatalog:
        DatasetCatalog.register(DATASET, lambda: recs)
        MetadataCatalog.get(DATASET).set(stuff_classes=NAMES, stuff_colors=[(128, 64, 128), (153, 153, 153),
                                                                           (0, 0, 142)], ignore_label=255)
    return recs


def test_parsing():
    assert parse_factor("1/4") == 0.25 and parse_factor("0.5") == 0.5
    assert mode_name("area") == "torch:area" and mode_name("cv2:linear") == "cv2:linear"
    assert mode_name("nearest") == "torch:nearest-exact" and mode_name("nearest-topleft") == "torch:nearest"
    with pytest.raises(ValueError):
        parse_factor("2")
    with pytest.raises(ValueError, match="unknown mode"):
        mode_name("lanczos")


def test_factors_are_fractions_that_floats_read_back_as():
    assert parse_factor("1/8") == Fraction(1, 8) and parse_factor(0.125) == Fraction(1, 8)
    assert parse_factor(repr(1 / 3)) == Fraction(1, 3)  # the float a CSV holds for 1/3
    assert parse_factor("0.333") == Fraction(333, 1000)  # a decimal that is no such float stays exact
    assert factor_label(Fraction(1, 4)) == factor_label(0.25) == "1/4"


def test_area_keeps_shares_nearest_drops_thin_class(records):
    res = analyze_records(records, NAMES, ["1/2", "1/4"], ["nearest-topleft", "nearest", "bilinear", "area"],
                          recoverable_images=-1, progress=False)
    assert res.images == 3 and res.recoverable_images == 3
    for f in (0.5, 0.25):
        np.testing.assert_allclose(res.share_change(f, "torch:area"), 0, atol=1e-6)
        assert res.mass_kept_pct(f, "torch:area") == pytest.approx(100)
        assert res.entropy_kept_pct(f, "torch:area") == pytest.approx(100)
        assert res.multi_class_fraction(f, "torch:area") > 0
        assert res.multi_class_fraction(f, "torch:nearest") == 0 and res.mean_entropy(f, "torch:nearest") == 0
        assert res.entropy_kept_pct(f, "torch:nearest") == 0
    # the odd-column poles never fall on top-left nearest's even sampling columns at 1/2; the centred grid
    # samples the odd columns and so doubles their share
    assert res.share_change(0.5, "torch:nearest")[1] == pytest.approx(-100)
    assert res.share_change(0.5, "torch:nearest-exact")[1] > 50
    assert res.mode_label("torch:nearest") == "torch:nearest (top-left)"
    assert res.mode_label("torch:nearest-exact") == "torch:nearest-exact (centred)"
    # bilinear at 1/2 averages exactly the 2 x 2 footprint (= area); at 1/4 it sees only part of it
    np.testing.assert_allclose(res.share(0.5, "torch:bilinear"), res.share(0.5, "torch:area"), atol=1e-6)
    assert res.entropy_kept_pct(0.25, "torch:bilinear") < 99
    rec_near, rec_soft = res.recoverable(0.5, "torch:nearest"), res.recoverable(0.5, "torch:area")
    assert rec_near["IoU-pole"] == 0 and rec_soft["mIoU"] >= rec_near["mIoU"] > 0
    rows = res.summary_rows()
    assert len(rows) == 8 and rows[0]["factor"] == "1/2" and rows[0]["kind"] == "hard"
    assert len(res.class_rows()) == 2 * 4 * 3
    assert "recoverable mIoU" in res.format_tables()


def test_measure_label_matches_stats_and_identity():
    lab = _labels()[0]
    out = measure_label(lab, 3, (0.5,), ("torch:bilinear",), recoverable=True)
    entry = out[(0.5, "torch:bilinear")]
    soft = soft_resize(lab, 3, scale=0.5, mode="torch:bilinear")
    share = soft_class_share(soft)
    np.testing.assert_allclose(entry["mass"] / entry["mass"].sum(), share, atol=1e-6)
    assert entry["valid_px"] == float((soft.valid > 0).sum())
    assert np.bincount(lab.ravel(), minlength=256)[:3].tolist() == out["full"].tolist()
    # factor 1: nothing is lost, every pixel recovered
    same = measure_label(lab, 3, (1.0,), ("torch:nearest", "torch:area"), recoverable=True)
    for m in ("torch:nearest", "torch:area"):
        conf = same[(1.0, m)]["conf"]
        assert conf.sum() == (lab < 3).sum() and np.trace(conf) == conf.sum()


def test_workers_match_single_process(records):
    kw = dict(recoverable_images=2, progress=False)
    one = analyze_records(records, NAMES, ["1/4"], ["nearest", "area"], **kw)
    two = analyze_records(records, NAMES, ["1/4"], ["nearest", "area"], workers=2, **kw)
    assert two.images == 3 and two.recoverable_images == 2
    for m in ("torch:nearest-exact", "torch:area"):
        np.testing.assert_allclose(one.share(0.25, m), two.share(0.25, m))
        np.testing.assert_array_equal(one.sums[(0.25, m)]["conf"], two.sums[(0.25, m)]["conf"])


def test_cli_end_to_end(records, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("analyze_downsampling", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "retention"
    assert tool.main(["--dataset", DATASET, "--factors", "1/2", "1/4", "--modes", "nearest", "area",
                      "torch:bicubic", "--output", str(out), "--no-progress", "--split-limit", "2"]) == 0
    printed = capsys.readouterr().out
    assert "2 label maps" in printed and "torch:bicubic" in printed
    with open(out / f"{DATASET}_retention.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 3 * 3
    assert {r["mode"] for r in rows} == {"torch:nearest-exact (centred)", "torch:area", "torch:bicubic"}
    area = [r for r in rows if r["mode"] == "torch:area"]
    assert all(abs(float(r["share_change_pct"])) < 1e-3 for r in area)
    with open(out / f"{DATASET}_summary.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 6
    for tag in ("1-2", "1-4"):
        for kind in ("share_change", "example"):
            png = out / f"{DATASET}_{kind}_{tag}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        tool.main(["--dataset", DATASET, "--modes", "lanczos", "--output", str(out)])


def test_non_argmax_mass_is_what_a_hard_decision_drops():
    label = np.ones((4, 4), np.uint8)
    label[:, 0] = 0  # at 1/2 area the left cells are half class 0, half class 1; the right ones pure class 1
    sums = measure_label(label, 2, (0.5,), ("torch:area", "torch:nearest-exact"), recoverable=False)
    res = RetentionResult("x", ["a", "b"], (0.5,), ("torch:area", "torch:nearest-exact"), False, sums)
    assert res.non_argmax_mass(0.5, "torch:area") == pytest.approx(0.25)
    assert res.non_argmax_mass(0.5, "torch:nearest-exact") == 0
    assert res.summary_row(0.5, "torch:area")["non_argmax_mass_pct"] == pytest.approx(25.0)
