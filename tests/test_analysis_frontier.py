"""The budget frontier: percentages of full resolution paired by seed, costs, the table and the figure."""

import json
import math
import os
from fractions import Fraction

import pytest
from softlabelseg_research.frontier import (
    frontier_rows,
    frontier_table,
    pilot_curve_table,
    plot_frontier,
    step_gflops,
)
from softlabelseg_research.sweep import GridPoint, collect

from tests.helpers.repo import REPO


def _run(root, point, miou, cpu):
    d = root / point.name
    (d / "inference").mkdir(parents=True)
    (d / "inference" / "sem_seg_evaluation.json").write_text(json.dumps({"metrics": {"mIoU": miou}}))
    (d / "ablation_time.json").write_text(json.dumps({"seconds": cpu, "invocations": 1, "cpu_seconds": cpu}))


def test_rows_pair_each_run_with_the_reference_of_its_seed(tmp_path):
    grid, ref = tmp_path / "grid", tmp_path / "ref"
    points = [GridPoint(v, Fraction(1, 4), s) for v in ("nearest", "soft") for s in (0, 1)]
    for p, miou in zip(points, (40.0, 44.0, 30.0, 33.0), strict=True):
        _run(grid, p, miou, 3600.0)
    refs = [GridPoint("nearest", Fraction(1), s) for s in (0, 1)]
    for p, miou in zip(refs, (50.0, 55.0), strict=True):
        _run(ref, p, miou, 7200.0)
    rows = frontier_rows(collect(points, str(grid)), collect(refs, str(ref)), 360, 480, gflops=lambda f: 2.0)
    by_target = {r["target"]: r for r in rows}
    nearest = by_target["nearest, centred grid"]
    assert nearest["kept"][0] == pytest.approx((80.0 + 80.0) / 2)  # 40/50 and 44/55, seed by seed
    assert nearest["size"] == "90x120" and nearest["pixels"] == 10800 and nearest["cpu_hours"][0] == 1.0
    soft = next(r for r in rows if r["target"].startswith("soft"))
    assert soft["kept"][0] == pytest.approx((60.0 + 60.0) / 2)
    full = rows[-1]
    assert full["factor"] == 1 and full["kept"][0] == pytest.approx(100.0) and full["cpu_hours"][0] == 2.0
    table = frontier_table(rows)
    row = ("| nearest, centred grid | 1/4 | 90x120 (10,800) | 2 | 42.00 ± 2.83 | 80.0 ± 0.0 | 2.0 | "
           "1.00 ± 0.00 |")
    assert row in table
    plot_frontier(rows, str(tmp_path / "frontier.png"), "test")
    assert (tmp_path / "frontier.png").read_bytes()[:4] == b"\x89PNG"


def test_step_gflops_grows_with_the_pixels():
    config = os.path.join(REPO, "projects/SoftLabelSeg/configs/toycity/tiny_soft.py")
    quarter = step_gflops(config, Fraction(1, 4), 256, 512)
    half = step_gflops(config, Fraction(1, 2), 256, 512)
    assert quarter > 0 and not math.isnan(quarter)
    assert half == pytest.approx(4 * quarter, rel=0.1)  # convolutions: cost in proportion to the pixels


def test_pilot_curve_reads_each_evaluation_of_metrics_json(tmp_path):
    run = tmp_path / "pilot"
    run.mkdir()
    lines = [{"iteration": 249, "loss_sem_seg": 0.5, "sem_seg/mIoU": 38.9},
             {"iteration": 299, "loss_sem_seg": 0.4},
             {"iteration": 499, "loss_sem_seg": 0.3, "sem_seg/mIoU": 45.25},
             {"iteration": 600, "sem_seg/mIoU": 46.0}]
    (run / "config.yaml").write_text("train:\n  max_iter: 600\n")
    (run / "metrics.json").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    table = pilot_curve_table([{"title": "p", "folder": "pilot"}, {"title": "q", "folder": "missing"}],
                              str(tmp_path))
    assert "| pilot | 250 | 500 | 600 |" in table  # the final evaluation logs iteration max_iter
    assert "| p (val mIoU) | 38.90 | 45.25 | 46.00 |" in table
    assert "| p (training loss) | 0.500 | 0.300 | - |" in table
    assert "| q (val mIoU) | - | - | - |" in table
